//! The decoder interface and the choice between the two decoders.

use crate::{Limits, ProtocolError, ReferenceDecoder, Value};
use bytes::BytesMut;

/// Turns bytes read from a peer into [`Value`]s, one complete value per call.
///
/// `decode` consumes the bytes of the value it returns from the front of `buf` and leaves
/// the rest. It returns `Ok(None)` while `buf` does not yet hold a complete value; append
/// more bytes and call again. After an `Err` the stream is out of step and must be dropped.
pub trait Decode {
    /// Decodes the next complete value at the front of `buf`.
    ///
    /// # Errors
    /// [`ProtocolError`] when the bytes are not valid RESP or break a [`Limits`] bound.
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Value>, ProtocolError>;
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
}
