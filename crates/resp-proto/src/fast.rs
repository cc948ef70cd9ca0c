//! The default decoder.

use crate::{Decode, Limits, ProtocolError, ReferenceDecoder, Value};
use bytes::BytesMut;

/// The default decoder.
///
/// FIXME: for now this delegates to [`ReferenceDecoder`]; the incremental zero-copy
/// implementation replaces it without changing this interface.
#[derive(Clone, Debug, Default)]
pub struct Decoder {
    inner: ReferenceDecoder,
}

impl Decoder {
    /// A decoder with the default [`Limits`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder enforcing `limits`.
    pub fn with_limits(limits: Limits) -> Self {
        Decoder {
            inner: ReferenceDecoder::with_limits(limits),
        }
    }
}

impl Decode for Decoder {
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Value>, ProtocolError> {
        self.inner.decode(buf)
    }
}
