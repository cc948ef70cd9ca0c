//! The decoder interface and the choice between the two decoders.

use crate::{Limits, ProtocolError, ReferenceDecoder, Value};
use bytes::BytesMut;

/// Turns bytes read from a peer into [`Value`]s, one complete value per call.
///
/// `decode` consumes the bytes of the value it returns from the front of `buf` and leaves
/// the rest. It returns `Ok(None)` while `buf` does not yet hold a complete value; append
/// more bytes and call again. After an `Err` the stream is out of step and must be dropped.
///
/// # Changing the buffer between calls
/// `buf` is meant to be one read buffer that only grows at its end between calls, and a
/// decoder may keep its place in it across calls that return `Ok(None)` ([`Decoder`]
/// does, so it never scans a byte twice). A caller may still do anything to `buf` between
/// calls: clear it, truncate it, or replace its contents with other bytes, shorter, longer
/// or of the same length, in the same allocation or a new one. The next call then decodes
/// what `buf` holds at that moment:
///
/// - it never panics, and never returns a value made of bytes no longer in `buf`: a value
///   it returns is exactly what a new decoder would return for the bytes now in `buf`;
/// - when `buf` is shorter than at the previous call (cleared, truncated, replaced by
///   fewer bytes), or differs in the bytes the saved place depends on most (the first
///   bytes, each open aggregate's header, the bytes around where the scan stopped and the
///   last bytes it saw), it starts over from the first byte and returns exactly what a new
///   decoder would: the value, `Ok(None)`, or the same [`ProtocolError`];
/// - an error is likewise confirmed against `buf` as it is now before it is returned.
///
/// What no decoder that keeps its place can see without reading everything again, and so
/// [`Decoder`] does not: bytes rewritten in place in the middle of the part already
/// scanned, with `buf` no shorter and every byte above unchanged. If such a rewrite moves
/// the end of the value earlier, the decoder may answer `Ok(None)` for a value that is
/// already complete, until more bytes arrive (whatever it returns then is again exact).
/// A caller that rewrites a buffer in place calls [`reset`](Decode::reset) first.
/// [`ReferenceDecoder`] keeps no place and is exact in every case.
///
/// [`Decoder`]: crate::Decoder
pub trait Decode {
    /// Decodes the next complete value at the front of `buf`.
    ///
    /// # Errors
    /// [`ProtocolError`] when the bytes are not valid RESP or break a [`Limits`] bound.
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Value>, ProtocolError>;

    /// Forgets any frame in progress, so the next call decodes `buf` from its first byte
    /// as a new decoder would.
    ///
    /// Never needed for correctness (see [Changing the buffer between
    /// calls](Decode#changing-the-buffer-between-calls)), but a caller that rewrites the
    /// buffer in place can say so rather than rely on the decoder noticing. Cost: O(1).
    fn reset(&mut self) {}
}

/// Which decoder a connection uses (redis-py 2.7.6's parser classes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DecoderKind {
    /// The incremental zero-copy decoder. The default.
    #[default]
    Fast,
    /// The short, plainly correct [`ReferenceDecoder`].
    Reference,
}

/// A decoder chosen at run time by [`DecoderKind`], without dynamic dispatch.
#[derive(Debug)]
pub enum AnyDecoder {
    /// The fast decoder.
    Fast(crate::Decoder),
    /// The reference decoder.
    Reference(ReferenceDecoder),
}

impl AnyDecoder {
    /// A decoder of `kind` enforcing `limits`.
    pub fn new(kind: DecoderKind, limits: Limits) -> Self {
        match kind {
            DecoderKind::Fast => AnyDecoder::Fast(crate::Decoder::with_limits(limits)),
            DecoderKind::Reference => AnyDecoder::Reference(ReferenceDecoder::with_limits(limits)),
        }
    }
}

impl AnyDecoder {
    /// The buffer length the value being received needs, when the decoder knows it (a bulk
    /// payload still arriving); see [`Decoder::bytes_wanted`](crate::Decoder::bytes_wanted).
    pub fn bytes_wanted(&self) -> Option<usize> {
        match self {
            AnyDecoder::Fast(d) => d.bytes_wanted(),
            AnyDecoder::Reference(_) => None,
        }
    }
}

impl Decode for AnyDecoder {
    #[inline]
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Value>, ProtocolError> {
        match self {
            AnyDecoder::Fast(d) => d.decode(buf),
            AnyDecoder::Reference(d) => d.decode(buf),
        }
    }

    fn reset(&mut self) {
        match self {
            AnyDecoder::Fast(d) => d.reset(),
            AnyDecoder::Reference(d) => d.reset(),
        }
    }
}
