//! Helpers shared by the decoder tests: a tiny deterministic PRNG, random values, a
//! streaming-form encoder, the frame splitter seen as a decoder, and the differential
//! runner.

#![allow(dead_code)] // Each test binary uses a different part of this module.

use bytes::{BufMut, BytesMut};
use resp_proto::{
    encode_value, AnyDecoder, Decode, DecoderKind, FrameSplitter, Limits, ProtocolError,
    ReferenceDecoder, ServerError, Value,
};

/// What the differential tests run: the two decoders, and the frame splitter.
///
/// The splitter is seen as a decoder: each frame it splits off is decoded by a new
/// reference decoder, which must take the whole frame and find it complete. So every check
/// that holds the decoders together (values, errors and their offsets, bytes left, any
/// split of the input, buffers changed between calls) also holds the splitter to the same
/// frame ends and errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Reference,
    Fast,
    Splitter,
}

pub const KINDS: [Kind; 3] = [Kind::Reference, Kind::Fast, Kind::Splitter];

impl Kind {
    /// A new decoder (or splitter) of this kind enforcing `limits`.
    pub fn start(self, limits: Limits) -> Subject {
        match self {
            Kind::Reference => Subject::Decoder(AnyDecoder::new(DecoderKind::Reference, limits)),
            Kind::Fast => Subject::Decoder(AnyDecoder::new(DecoderKind::Fast, limits)),
            Kind::Splitter => Subject::Splitter(FrameSplitter::with_limits(limits)),
        }
    }
}

/// A decoder, or a frame splitter whose frames are decoded by a new reference decoder.
#[derive(Debug)]
pub enum Subject {
    Decoder(AnyDecoder),
    Splitter(FrameSplitter),
}

impl Decode for Subject {
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Value>, ProtocolError> {
        match self {
            Subject::Decoder(d) => d.decode(buf),
            Subject::Splitter(s) => {
                let before = buf.len();
                let Some(frame) = s.split(buf)? else {
                    return Ok(None);
                };
                assert_eq!(frame.len() + buf.len(), before, "the frame is the front");
                Ok(Some(frame_value(&frame, *s.limits())))
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

/// The value of a frame the splitter split off: a new reference decoder must find it
/// complete and take every byte of it, or the splitter ended it in the wrong place.
pub fn frame_value(frame: &[u8], limits: Limits) -> Value {
    let mut buf = BytesMut::from(frame);
    match ReferenceDecoder::with_limits(limits).decode(&mut buf) {
        Ok(Some(v)) if buf.is_empty() => v,
        other => panic!(
            "the splitter split off {:?}, which decodes to {other:?} leaving {} bytes",
            String::from_utf8_lossy(frame),
            buf.len()
        ),
    }
}

/// xorshift64*: deterministic, no dependency, good enough to pick test cases.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn bytes(&mut self, max: usize, printable: bool) -> Vec<u8> {
        let n = self.below(max + 1);
        (0..n)
            .map(|_| {
                if printable {
                    b'a' + self.below(26) as u8
                } else {
                    self.next() as u8
                }
            })
            .collect()
    }
}

/// A random value of every kind, nested at most `depth` levels.
pub fn random_value(rng: &mut Rng, depth: usize) -> Value {
    let kinds = if depth == 0 { 9 } else { 15 };
    match rng.below(kinds) {
        0 => Value::Nil,
        1 => Value::SimpleString(rng.bytes(12, true).into()),
        2 => {
            let mut text = b"ERR ".to_vec();
            let printable = rng.below(2) == 0;
            text.extend(rng.bytes(10, printable));
            Value::Error(ServerError::new(text))
        }
        3 => Value::Integer(match rng.below(4) {
            0 => i64::MIN,
            1 => i64::MAX,
            _ => rng.next() as i64 >> rng.below(64),
        }),
        4 => Value::BulkString(rng.bytes(40, false).into()),
        5 => Value::Double(match rng.below(5) {
            0 => f64::INFINITY,
            1 => f64::NEG_INFINITY,
            2 => (rng.next() as i64 >> rng.below(64)) as f64 / 8.0,
            _ => f64::from_bits(rng.next() >> 2) * if rng.below(2) == 0 { -1.0 } else { 1.0 },
        }),
        6 => Value::Boolean(rng.below(2) == 0),
        7 => {
            let mut digits = if rng.below(2) == 0 {
                b"-".to_vec()
            } else {
                Vec::new()
            };
            digits.extend((0..1 + rng.below(40)).map(|_| b'0' + rng.below(10) as u8));
            Value::BigNumber(digits.into())
        }
        8 => Value::Verbatim {
            format: *b"txt",
            text: rng.bytes(20, false).into(),
        },
        9 => Value::Array(list(rng, depth)),
        10 => Value::Set(list(rng, depth)),
        11 => Value::Push(list(rng, depth)),
        12 => Value::Map(pairs(rng, depth)),
        13 => Value::Attribute {
            attributes: pairs(rng, depth),
            value: Box::new(random_value(rng, depth - 1)),
        },
        _ => Value::Array(Vec::new()),
    }
}

fn list(rng: &mut Rng, depth: usize) -> Vec<Value> {
    (0..rng.below(5))
        .map(|_| random_value(rng, depth - 1))
        .collect()
}

fn pairs(rng: &mut Rng, depth: usize) -> Vec<(Value, Value)> {
    (0..rng.below(4))
        .map(|_| (random_value(rng, depth - 1), random_value(rng, depth - 1)))
        .collect()
}

/// Encodes `v`, sometimes in RESP3's streamed forms (`$?`, `*?`, `~?`, `%?`), which decode
/// to the same value as the sized forms.
pub fn encode_streamy(out: &mut BytesMut, v: &Value, rng: &mut Rng) {
    let streamed = rng.below(3) == 0;
    match v {
        Value::BulkString(b) if streamed && !b.is_empty() => {
            out.put_slice(b"$?\r\n");
            let mut rest = &b[..];
            while !rest.is_empty() {
                let n = 1 + rng.below(rest.len());
                out.put_slice(format!(";{n}\r\n").as_bytes());
                out.put_slice(&rest[..n]);
                out.put_slice(b"\r\n");
                rest = &rest[n..];
            }
            out.put_slice(b";0\r\n");
        }
        Value::Array(items) | Value::Set(items) if streamed => {
            out.put_slice(if matches!(v, Value::Array(_)) {
                b"*?\r\n"
            } else {
                b"~?\r\n"
            });
            items.iter().for_each(|i| encode_streamy(out, i, rng));
            out.put_slice(b".\r\n");
        }
        Value::Array(items) | Value::Set(items) | Value::Push(items) => {
            let marker = match v {
                Value::Array(_) => '*',
                Value::Set(_) => '~',
                _ => '>',
            };
            out.put_slice(format!("{marker}{}\r\n", items.len()).as_bytes());
            items.iter().for_each(|i| encode_streamy(out, i, rng));
        }
        Value::Map(kv) => {
            if streamed {
                out.put_slice(b"%?\r\n");
            } else {
                out.put_slice(format!("%{}\r\n", kv.len()).as_bytes());
            }
            for (k, v) in kv {
                encode_streamy(out, k, rng);
                encode_streamy(out, v, rng);
            }
            if streamed {
                out.put_slice(b".\r\n");
            }
        }
        Value::Attribute { attributes, value } => {
            out.put_slice(format!("|{}\r\n", attributes.len()).as_bytes());
            for (k, v) in attributes {
                encode_streamy(out, k, rng);
                encode_streamy(out, v, rng);
            }
            encode_streamy(out, value, rng);
        }
        other => encode_value(out, other),
    }
}

/// Everything a decoder makes of `input` fed whole: the values, then how it stopped.
pub type Outcome = (Vec<Value>, Result<(), ProtocolError>, usize);

pub fn decode_all(kind: Kind, limits: Limits, input: &[u8]) -> Outcome {
    let mut d = kind.start(limits);
    let mut buf = BytesMut::from(input);
    let mut values = Vec::new();
    loop {
        match d.decode(&mut buf) {
            Ok(Some(v)) => values.push(v),
            Ok(None) => return (values, Ok(()), buf.len()),
            Err(e) => return (values, Err(e), buf.len()),
        }
    }
}

/// The same, fed in pieces whose sizes `rng` picks.
pub fn decode_in_pieces(kind: Kind, limits: Limits, input: &[u8], rng: &mut Rng) -> Outcome {
    let mut d = kind.start(limits);
    let mut buf = BytesMut::new();
    let mut values = Vec::new();
    let mut rest = input;
    loop {
        match d.decode(&mut buf) {
            Ok(Some(v)) => values.push(v),
            Ok(None) if rest.is_empty() => return (values, Ok(()), buf.len()),
            Ok(None) => {
                let n = 1 + rng.below(rest.len().min(64));
                buf.extend_from_slice(&rest[..n]);
                rest = &rest[n..];
            }
            Err(e) => return (values, Err(e), buf.len() + rest.len()),
        }
    }
}

/// Values equal, NaN included (a NaN double equals a NaN double here).
pub fn same(a: &Outcome, b: &Outcome) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

/// Both decoders and the splitter, fed whole and in pieces, must agree on `input`: the same
/// values (so the same frame ends), the same error, the same bytes left. None may panic.
pub fn differential(input: &[u8], limits: Limits, rng: &mut Rng) {
    let reference = decode_all(Kind::Reference, limits, input);
    for kind in [Kind::Fast, Kind::Splitter] {
        let whole = decode_all(kind, limits, input);
        assert!(
            same(&reference, &whole),
            "{kind:?} disagrees with the reference decoder on {:?}\nreference: {reference:?}\n{kind:?}: {whole:?}",
            String::from_utf8_lossy(input)
        );
        let pieces = decode_in_pieces(kind, limits, input, rng);
        assert!(
            same(&whole, &pieces),
            "fed in pieces, {kind:?} differs on {:?}\nwhole: {whole:?}\npieces: {pieces:?}",
            String::from_utf8_lossy(input)
        );
    }
}

/// What happened when a buffer was changed between calls.
#[derive(Debug, Default)]
pub struct ChangeStats {
    /// Changes made to the buffer (clears, cuts, replacements, rewrites).
    pub changes: usize,
    /// Calls checked against a new decoder.
    pub checked: usize,
    /// Calls that answered `Ok(None)` where a new decoder gave a value or an error, each
    /// after the buffer's bytes were replaced by as many or more, or rewritten in place:
    /// the one case the contract lets a decoder that keeps its place miss.
    pub missed_rewrites: usize,
}

/// One step's result as text, so NaN doubles compare equal.
fn shown(r: &Result<Option<Value>, ProtocolError>) -> String {
    format!("{r:?}")
}

/// Feeds `input` to a decoder of `kind` in random pieces and, between calls, sometimes
/// does to the buffer what a careless caller might: clears it, truncates it, replaces it
/// with bytes of `other` (shorter, longer or as long, in the same allocation or a new one),
/// or rewrites part of it in place. After every call the result and the bytes left must
/// equal what a new reference decoder makes of the same buffer (the contract of `Decode`),
/// except that after a rewrite that left the buffer no shorter the decoder may still
/// answer `Ok(None)`; then `reset` must bring it back in step.
pub fn decode_with_changes(
    kind: Kind,
    limits: Limits,
    input: &[u8],
    other: &[u8],
    rng: &mut Rng,
) -> ChangeStats {
    let mut stats = ChangeStats::default();
    let mut d = kind.start(limits);
    let mut buf = BytesMut::new();
    let mut rest = input;
    // A rewrite in place since the decoder last consumed a value or failed.
    let mut rewritten = false;
    loop {
        if !buf.is_empty() && rng.below(3) == 0 {
            stats.changes += 1;
            let len = buf.len();
            // Shorter, as long, or longer than the buffer, within `other`.
            let n = match rng.below(3) {
                0 => rng.below(len),
                1 => len,
                _ => len + 1 + rng.below(64),
            }
            .min(other.len());
            match rng.below(6) {
                0 => buf.clear(),
                1 => buf.truncate(rng.below(len)),
                2 => {
                    // Same allocation, other bytes.
                    buf.clear();
                    buf.extend_from_slice(&other[..n]);
                    rewritten |= n >= len;
                }
                3 => {
                    buf = BytesMut::from(&other[..n]);
                    rewritten |= n >= len;
                }
                4 => {
                    // Part of it rewritten in place, the length kept.
                    let at = rng.below(len);
                    let end = (at + 1 + rng.below(16)).min(len);
                    for b in &mut buf[at..end] {
                        *b = other
                            .get(rng.below(other.len().max(1)))
                            .copied()
                            .unwrap_or(b'x');
                    }
                    rewritten = true;
                }
                _ => {
                    // Cut, then the same bytes again: nothing changed after all.
                    let kept = buf.split_to(rng.below(len + 1));
                    let cut = std::mem::replace(&mut buf, kept);
                    buf.extend_from_slice(&cut);
                }
            }
        }
        let appended = !rest.is_empty() && rng.below(4) != 0;
        if appended {
            let n = 1 + rng.below(rest.len().min(64));
            buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
        }
        let mut fresh_buf = buf.clone();
        let expected = AnyDecoder::new(DecoderKind::Reference, limits).decode(&mut fresh_buf);
        let before = buf.clone();
        let mut got = d.decode(&mut buf);
        stats.checked += 1;
        if rewritten && got == Ok(None) && shown(&expected) != shown(&got) {
            stats.missed_rewrites += 1;
            d.reset();
            got = d.decode(&mut buf);
        }
        assert_eq!(
            shown(&got),
            shown(&expected),
            "{kind:?} on {:?} (input {:?})",
            String::from_utf8_lossy(&before),
            String::from_utf8_lossy(input)
        );
        assert_eq!(buf, fresh_buf, "{kind:?} left other bytes");
        match got {
            Ok(Some(_)) => rewritten = false,
            Ok(None) if rest.is_empty() && !appended => return stats,
            Ok(None) => {}
            Err(_) => {
                // The stream is out of step: a caller drops it and starts a new one.
                d = kind.start(limits);
                buf.clear();
                rewritten = false;
            }
        }
    }
}
