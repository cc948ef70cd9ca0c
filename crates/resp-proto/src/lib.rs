//! RESP2 and RESP3, the Redis serialization protocols, as values, decoders and an encoder.
//!
//! This crate does no I/O: it turns bytes into [`Value`]s and values into bytes. A client,
//! a proxy or a server can use it alone, without pulling in any network code.
//!
//! ```
//! use bytes::BytesMut;
//! use resp_proto::{Decode, Decoder, Value};
//!
//! let mut buf = BytesMut::from(&b"*2\r\n$3\r\nfoo\r\n:42\r\n"[..]);
//! let value = Decoder::new().decode(&mut buf)?;
//! assert_eq!(
//!     value,
//!     Some(Value::Array(vec![Value::BulkString("foo".into()), Value::Integer(42)]))
//! );
//! assert!(buf.is_empty());
//!
//! let mut out = BytesMut::new();
//! resp_proto::encode_command(&mut out, &["GET", "foo"]);
//! assert_eq!(&out[..], b"*2\r\n$3\r\nGET\r\n$3\r\nfoo\r\n");
//! # Ok::<(), resp_proto::ProtocolError>(())
//! ```
//!
//! # Decoders
//! [`Decoder`] is the default. [`ReferenceDecoder`] is short and plainly correct, and serves
//! as the yardstick the default one is tested against. Both implement [`Decode`];
//! [`AnyDecoder`] picks one at run time.
//!
//! # Input safety
//! No input, however malformed, makes a decoder panic or loop. Every declared length is
//! checked against [`Limits`] before anything is allocated, nesting is bounded by
//! [`Limits::max_depth`], and a line that never ends is refused past
//! [`Limits::max_line_len`]. Errors are [`ProtocolError`]s naming what was wrong and where.
//!
//! # What this crate does not do
//! It does not read sockets, know Redis commands, or convert values into Rust types beyond
//! the variants of [`Value`]: those belong to `redis-conn` and `redis-commands`.
//!
//! # Crate features
//! None.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod decode;
mod encode;
mod error;
mod fast;
mod limits;
mod reference;
mod value;

pub use decode::{AnyDecoder, Decode, DecoderKind};
pub use encode::{
    bulk_len, encode_command, encode_value, write_array_len, write_bulk, write_bulk_f64,
    write_bulk_i64,
};
pub use error::{ProtocolError, ProtocolErrorKind};
pub use fast::Decoder;
pub use limits::Limits;
pub use reference::ReferenceDecoder;
pub use value::{ErrorCode, ServerError, Value};
