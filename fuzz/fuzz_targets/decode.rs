//! Differential fuzzing of the two decoders and the frame splitter: on any input, fed whole
//! and split at a point the input chooses, under default and tight limits, the fast
//! decoder and the reference decoder must give the same values and the same error, the
//! frame splitter must split off frames that the reference decoder reads whole as those
//! same values (so it ends every frame where the decoders do) and give the same error, and
//! none may panic.
//!
//! Then the buffer is changed between two calls, as the input chooses (cleared, cut,
//! replaced by the rest of the input in a new or the same allocation, or rewritten in
//! place), and every call after, of the fast decoder and of the splitter, must give what a
//! new reference decoder gives for the bytes then in the buffer, as `Decode`'s contract
//! says: the one exception it allows, an `Ok(None)` after a rewrite that left the buffer no
//! shorter, must end at `reset`.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use resp_proto::{
    AnyDecoder, Decode, Decoder, DecoderKind, FrameSplitter, Limits, ProtocolError,
    ReferenceDecoder, Value,
};

type Outcome = (Vec<Value>, Option<ProtocolError>);

/// A decoder, or the frame splitter with each frame it splits off decoded by a new
/// reference decoder, which must take the whole frame.
enum Subject {
    Decoder(AnyDecoder),
    Splitter(FrameSplitter),
}

impl Subject {
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Value>, ProtocolError> {
        match self {
            Subject::Decoder(d) => d.decode(buf),
            Subject::Splitter(s) => {
                let Some(frame) = s.split(buf)? else {
                    return Ok(None);
                };
                let mut whole = BytesMut::from(&frame[..]);
                let v = ReferenceDecoder::with_limits(*s.limits()).decode(&mut whole);
                match v {
                    Ok(Some(v)) if whole.is_empty() => Ok(Some(v)),
                    other => panic!("split off {frame:?}, which decodes to {other:?}"),
                }
            }
        }
    }

    fn reset(&mut self) {
        match self {
            Subject::Decoder(d) => d.reset(),
            Subject::Splitter(s) => s.reset(),
        }
    }
}

fn run(kind: DecoderKind, limits: Limits, input: &[u8], split: usize) -> Outcome {
    drive(Subject::Decoder(AnyDecoder::new(kind, limits)), input, split)
}

fn drive(mut d: Subject, input: &[u8], split: usize) -> Outcome {
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

/// Feeds `input[..split]` to `d` (the fast decoder or the splitter), changes the buffer as
/// `op` says, then checks each following call against a new reference decoder given the
/// same bytes.
fn changed(mut d: Subject, limits: Limits, input: &[u8], split: usize, op: u8, cut: usize) {
    let mut buf = BytesMut::from(&input[..split]);
    loop {
        match d.decode(&mut buf) {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(_) => return,
        }
    }
    let rest = &input[split..];
    let len = buf.len();
    let mut no_shorter = rest.len() >= len;
    match op % 5 {
        0 => buf.clear(),
        1 => buf.truncate(cut % (len + 1)),
        2 => buf = BytesMut::from(rest),
        3 => {
            buf.clear();
            buf.extend_from_slice(rest);
        }
        _ => {
            no_shorter = true;
            let at = cut % (len + 1);
            for (b, &x) in buf[at..].iter_mut().zip(rest) {
                *b = x;
            }
        }
    }
    if op % 5 < 2 {
        no_shorter = false;
    }
    loop {
        let mut fresh = buf.clone();
        let expected = ReferenceDecoder::with_limits(limits).decode(&mut fresh);
        let mut got = d.decode(&mut buf);
        let show = |r: &Result<Option<Value>, ProtocolError>| format!("{r:?}");
        if no_shorter && got == Ok(None) && show(&expected) != show(&got) {
            d.reset();
            got = d.decode(&mut buf);
        }
        assert_eq!(show(&got), show(&expected), "after change {}", op % 5);
        assert_eq!(buf, fresh, "other bytes left after change {}", op % 5);
        match got {
            Ok(Some(_)) => no_shorter = false,
            _ => return,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    let split = usize::from(first) % (input.len() + 1);
    // The change between calls: the input's last two bytes say which and where, so the
    // first byte keeps its meaning (the split) for inputs kept before this was added.
    let (op, cut) = match input {
        [.., op, cut] => (*op, usize::from(*cut)),
        _ => (0, 0),
    };
    let tight = Limits {
        max_bulk_len: 64,
        max_aggregate_len: 8,
        max_depth: 5,
        max_line_len: 32,
        max_reply_bytes: 200,
        max_reply_elements: 12,
        resp3: true,
    };
    for limits in [Limits::default(), tight] {
        let reference = run(DecoderKind::Reference, limits, input, input.len());
        let fast = run(DecoderKind::Fast, limits, input, input.len());
        let fast_split = run(DecoderKind::Fast, limits, input, split);
        let splitter = || Subject::Splitter(FrameSplitter::with_limits(limits));
        let frames = drive(splitter(), input, input.len());
        let frames_split = drive(splitter(), input, split);
        // Debug text, so that NaN doubles compare equal to themselves.
        let show = |o: &Outcome| format!("{o:?}");
        assert_eq!(show(&reference), show(&fast), "decoders disagree");
        assert_eq!(show(&fast), show(&fast_split), "split at {split} changes the result");
        assert_eq!(show(&reference), show(&frames), "the splitter disagrees");
        assert_eq!(show(&frames), show(&frames_split), "split at {split} moves a frame");
        let fast = Subject::Decoder(AnyDecoder::Fast(Decoder::with_limits(limits)));
        changed(fast, limits, input, split, op, cut);
        changed(splitter(), limits, input, split, op, cut);
    }
});
