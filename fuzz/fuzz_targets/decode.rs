//! Differential fuzzing of the two decoders: on any input, fed whole and split at a point
//! the input chooses, under default and tight limits, the fast decoder and the reference
//! decoder must give the same values and the same error, and neither may panic.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use resp_proto::{AnyDecoder, Decode, DecoderKind, Limits, ProtocolError, Value};

type Outcome = (Vec<Value>, Option<ProtocolError>);

fn run(kind: DecoderKind, limits: Limits, input: &[u8], split: usize) -> Outcome {
    let mut d = AnyDecoder::new(kind, limits);
    let mut buf = BytesMut::from(&input[..split]);
    let mut rest = &input[split..];
    let mut values = Vec::new();
    loop {
        match d.decode(&mut buf) {
            Ok(Some(v)) => values.push(v),
            Ok(None) if rest.is_empty() => return (values, None),
            Ok(None) => {
                buf.extend_from_slice(rest);
                rest = &[];
            }
            Err(e) => return (values, Some(e)),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    let split = usize::from(first) % (input.len() + 1);
    let tight = Limits {
        max_bulk_len: 64,
        max_aggregate_len: 8,
        max_depth: 5,
        max_line_len: 32,
        max_reply_bytes: 200,
    };
    for limits in [Limits::default(), tight] {
        let reference = run(DecoderKind::Reference, limits, input, input.len());
        let fast = run(DecoderKind::Fast, limits, input, input.len());
        let fast_split = run(DecoderKind::Fast, limits, input, split);
        // Debug text, so that NaN doubles compare equal to themselves.
        let show = |o: &Outcome| format!("{o:?}");
        assert_eq!(show(&reference), show(&fast), "decoders disagree");
        assert_eq!(show(&fast), show(&fast_split), "split at {split} changes the result");
    }
});
