//! tokio-util's `Decoder` and `Encoder` for [`Value`] and for raw frames (feature
//! `codec`), for a proxy, a server or a tool that frames RESP over an async stream with
//! `resp-proto` alone.

use crate::{
    encode_value_as, AnyDecoder, Decode, DecoderKind, FrameSplitter, Limits, Protocol,
    ProtocolError, Value,
};
use bytes::{Bytes, BytesMut};
use std::io;

/// Frames RESP2 and RESP3 values: decodes with the crate's decoders and their
/// [`Limits`], encodes with [`encode_value_as`] for the protocol the peer speaks (RESP3
/// unless [`with_protocol`](Codec::with_protocol) says otherwise).
///
/// [`encode_value`]: crate::encode_value
///
/// ```
/// use bytes::BytesMut;
/// use resp_proto::{codec::Codec, Value};
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let mut codec = Codec::new();
/// let mut buf = BytesMut::from(&b"+PONG\r\n:4"[..]);
/// assert_eq!(codec.decode(&mut buf)?, Some(Value::SimpleString("PONG".into())));
/// assert_eq!(codec.decode(&mut buf)?, None); // ":4" is not complete yet
/// codec.encode(Value::Integer(7), &mut buf)?;
/// # Ok::<(), resp_proto::codec::CodecError>(())
/// ```
#[derive(Debug)]
pub struct Codec {
    decoder: AnyDecoder,
    protocol: Protocol,
}

impl Default for Codec {
    fn default() -> Self {
        Codec::new()
    }
}

impl Codec {
    /// The default (fast) decoder with the default limits.
    pub fn new() -> Codec {
        Codec::with_decoder(DecoderKind::default(), Limits::default())
    }

    /// A codec decoding with `kind` within `limits`.
    pub fn with_decoder(kind: DecoderKind, limits: Limits) -> Codec {
        Codec {
            decoder: AnyDecoder::new(kind, limits),
            protocol: Protocol::Resp3,
        }
    }

    /// The same codec, encoding values for a peer that speaks `protocol`: RESP3 writes
    /// every type as it is ([`encode_value`](crate::encode_value), the default); RESP2
    /// writes each RESP3 type as a Redis server writes it for a RESP2 client, every null as
    /// `$-1` (see [`encode_value_as_resp2`](crate::encode_value_as_resp2) for the table and
    /// for nulls of the other shape).
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use resp_proto::{codec::Codec, Protocol, Value};
    /// use tokio_util::codec::Encoder;
    ///
    /// let mut codec = Codec::new().with_protocol(Protocol::Resp2);
    /// let mut out = BytesMut::new();
    /// codec.encode(Value::Boolean(true), &mut out)?;
    /// codec.encode(Value::Nil, &mut out)?;
    /// assert_eq!(&out[..], b":1\r\n$-1\r\n");
    /// # Ok::<(), resp_proto::codec::CodecError>(())
    /// ```
    pub fn with_protocol(mut self, protocol: Protocol) -> Codec {
        self.protocol = protocol;
        self
    }
}

/// What can go wrong framing values: the stream failed, or its bytes are not RESP.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// Reading or writing the stream failed.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// The bytes are not valid RESP, or a value exceeds the limits; the stream cannot be
    /// read further.
    #[error("invalid resp: {0}")]
    Protocol(#[from] ProtocolError),
}

impl tokio_util::codec::Decoder for Codec {
    type Item = Value;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Value>, CodecError> {
        Ok(self.decoder.decode(src)?)
    }
}

impl tokio_util::codec::Encoder<Value> for Codec {
    type Error = CodecError;

    fn encode(&mut self, item: Value, dst: &mut BytesMut) -> Result<(), CodecError> {
        encode_value_as(dst, &item, self.protocol);
        Ok(())
    }
}

impl tokio_util::codec::Encoder<&Value> for Codec {
    type Error = CodecError;

    fn encode(&mut self, item: &Value, dst: &mut BytesMut) -> Result<(), CodecError> {
        encode_value_as(dst, item, self.protocol);
        Ok(())
    }
}

/// Frames RESP2 and RESP3 without values: decodes each complete frame as the bytes
/// received ([`FrameSplitter`], zero-copy, under its [`Limits`]) and encodes frames by
/// writing them as they are. What an async proxy forwards between two peers that speak
/// the same protocol.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use resp_proto::codec::FrameCodec;
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let mut codec = FrameCodec::new();
/// let mut from_server = BytesMut::from(&b"%1\r\n+k\r\n:1\r\n>2\r\n+pu"[..]);
/// let frame = codec.decode(&mut from_server)?.expect("complete");
/// assert_eq!(frame, &b"%1\r\n+k\r\n:1\r\n"[..]);
/// assert_eq!(codec.decode(&mut from_server)?, None); // the push is not complete yet
/// let mut to_client = BytesMut::new();
/// codec.encode(frame, &mut to_client)?;
/// assert_eq!(&to_client[..], b"%1\r\n+k\r\n:1\r\n");
/// # Ok::<(), resp_proto::codec::CodecError>(())
/// ```
#[derive(Debug, Default)]
pub struct FrameCodec {
    splitter: FrameSplitter,
}

impl FrameCodec {
    /// A codec with the default [`Limits`].
    pub fn new() -> FrameCodec {
        FrameCodec::default()
    }

    /// A codec splitting frames within `limits`.
    pub fn with_limits(limits: Limits) -> FrameCodec {
        FrameCodec {
            splitter: FrameSplitter::with_limits(limits),
        }
    }
}

impl tokio_util::codec::Decoder for FrameCodec {
    type Item = Bytes;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        Ok(self.splitter.split(src)?)
    }
}

impl tokio_util::codec::Encoder<Bytes> for FrameCodec {
    type Error = CodecError;

    fn encode(&mut self, frame: Bytes, dst: &mut BytesMut) -> Result<(), CodecError> {
        dst.extend_from_slice(&frame);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_util::codec::{Decoder, Encoder};

    fn sample() -> Vec<Value> {
        vec![
            Value::SimpleString("OK".into()),
            Value::Integer(-3),
            Value::BulkString("hello".into()),
            Value::Nil,
            Value::Array(vec![Value::BulkString("a".into()), Value::Integer(1)]),
            Value::Map(vec![(Value::BulkString("k".into()), Value::Double(1.5))]),
            Value::Push(vec![Value::BulkString("message".into())]),
        ]
    }

    #[test]
    fn values_round_trip_fed_a_byte_at_a_time() {
        let mut codec = Codec::new();
        let mut wire = BytesMut::new();
        for v in sample() {
            codec.encode(v, &mut wire).unwrap();
        }
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for b in wire.iter() {
            buf.extend_from_slice(&[*b]);
            while let Some(v) = codec.decode(&mut buf).unwrap() {
                out.push(v);
            }
        }
        assert_eq!(out, sample());
        assert!(buf.is_empty());
    }

    #[test]
    fn encodes_for_the_peers_protocol() {
        let map = Value::Map(vec![(Value::Integer(1), Value::Boolean(false))]);
        let mut out = BytesMut::new();
        Codec::new().encode(&map, &mut out).unwrap();
        assert_eq!(&out[..], b"%1\r\n:1\r\n#f\r\n");
        out.clear();
        let mut resp2 = Codec::new().with_protocol(Protocol::Resp2);
        resp2.encode(&map, &mut out).unwrap();
        resp2.encode(map, &mut out).unwrap();
        assert_eq!(&out[..], b"*2\r\n:1\r\n:0\r\n*2\r\n:1\r\n:0\r\n");
    }

    #[test]
    fn frames_split_a_byte_at_a_time_are_the_bytes_received() {
        let mut wire = BytesMut::new();
        for v in sample() {
            Codec::new().encode(v, &mut wire).unwrap();
        }
        wire.extend_from_slice(b"*?\r\n$?\r\n;1\r\na\r\n;0\r\n.\r\n");
        let mut codec = FrameCodec::new();
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for b in wire.iter() {
            buf.extend_from_slice(&[*b]);
            while let Some(f) = codec.decode(&mut buf).unwrap() {
                frames.push(f);
            }
        }
        assert_eq!(frames.len(), sample().len() + 1);
        let mut out = BytesMut::new();
        for f in frames {
            codec.encode(f, &mut out).unwrap();
        }
        assert_eq!(out, wire);
        let mut tight = FrameCodec::with_limits(Limits {
            max_depth: 1,
            ..Limits::default()
        });
        let mut buf = BytesMut::from(&b"*1\r\n*0\r\n"[..]);
        assert!(matches!(
            tight.decode(&mut buf),
            Err(CodecError::Protocol(_))
        ));
    }

    #[test]
    fn limits_apply() {
        let limits = Limits {
            max_bulk_len: 4,
            ..Limits::default()
        };
        let mut codec = Codec::with_decoder(DecoderKind::default(), limits);
        let mut buf = BytesMut::from(&b"$5\r\nhello\r\n"[..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(CodecError::Protocol(_))
        ));
    }
}
