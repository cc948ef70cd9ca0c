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
//! [`Decoder`] is the default. It is incremental: on partial input it returns `Ok(None)`
//! and keeps its place, so bytes already scanned are not scanned again and a reply arriving
//! in many small reads decodes in time linear in its size. Once a frame is complete it is
//! split off the buffer without copying, and bulk strings, simple strings, errors, big
//! numbers and verbatim strings become [`bytes::Bytes`] views of it: an array of N bulk
//! strings allocates the array, not N strings. Only a streamed string (`$?`) is copied,
//! to join its chunks.
//!
//! [`ReferenceDecoder`] is short and plainly correct, re-parses from the start on every
//! call and copies payloads; it is the yardstick the default one is tested against, value
//! for value and error for error. Both implement [`Decode`]; [`AnyDecoder`] picks one at
//! run time.
//!
//! # Encoding for a protocol
//! [`encode_command`] writes a command; [`encode_value`] writes any [`Value`] in RESP3.
//! A server, or a proxy whose client speaks RESP2 while its server speaks RESP3, writes
//! values with [`encode_value_as`] for the protocol the peer speaks: in RESP2 each RESP3
//! type becomes what a Redis server sends a RESP2 client (a map a flat array, a set or a
//! push an array, a double, big number or verbatim string a bulk string, a boolean `:1` or
//! `:0`, an attribute left out; the table is on [`encode_value_as_resp2`]).
//! RESP2 has two nulls, `$-1` and `*-1`, and a [`Value::Nil`] does not say which it was:
//! [`encode_value_as`] writes `$-1`, and [`encode_value_as_resp2`] asks which for each
//! null ([`Resp2Null`] lists the replies Redis 7 sends as `*-1`).
//!
//! ```
//! use bytes::BytesMut;
//! use resp_proto::{encode_value_as, Decode, Decoder, Protocol};
//!
//! // ZRANGE … WITHSCORES of one member as a RESP3 server sends it ...
//! let mut from_server = BytesMut::from(&b"*1\r\n*2\r\n$1\r\na\r\n,1.5\r\n"[..]);
//! let reply = Decoder::new().decode(&mut from_server)?.expect("complete");
//! // ... and what a RESP2 client is given for it: the score as a bulk string.
//! let mut to_client = BytesMut::new();
//! encode_value_as(&mut to_client, &reply, Protocol::Resp2);
//! assert_eq!(&to_client[..], b"*1\r\n*2\r\n$1\r\na\r\n$3\r\n1.5\r\n");
//! # Ok::<(), resp_proto::ProtocolError>(())
//! ```
//!
//! A few commands also nest their reply differently in the two protocols (ZRANGE
//! WITHSCORES is flat in RESP2, XREAD's map is an array of pairs): see
//! [`encode_value_as_resp2`] for the list, which a caller that knows the command applies.
//!
//! `examples/proxy.rs` in the repository is a proxy built on this crate alone (std
//! threads and sockets): it speaks RESP3 to the server, forwards frames byte for byte
//! between the server and a RESP3 client, and re-encodes replies for a RESP2 client,
//! nulls and nesting as Redis itself sends them. The test suite runs it between
//! redis-client and a real server in both protocols.
//!
//! # Frames without values
//! A proxy forwards what it receives; a traffic analyser counts it. [`FrameSplitter`]
//! finds where the next complete frame ends (any RESP2 or RESP3 type, streamed ones
//! included, under the same [`Limits`]) and splits it off the buffer as the bytes
//! received, without copying and without building a [`Value`]. It shares the fast
//! decoder's resumable scan, so a frame arriving in many reads is scanned once, and it
//! ends every frame where the decoders do, with the same errors.
//!
//! # Input safety
//! No input, however malformed, makes either decoder or the splitter panic or loop; the
//! three are run against each other on random and mutated bytes in the test suite, and
//! under `cargo fuzz` (see `fuzz/` in the repository). They enforce the same [`Limits`]
//! with the same error kinds and offsets, however the input is split into reads.
//!
//! - Every declared length is checked against [`Limits`] before anything is allocated: a
//!   bulk string over [`Limits::max_bulk_len`] (512 MiB by default, Redis's
//!   `proto-max-bulk-len`) or an aggregate over [`Limits::max_aggregate_len`] (2^24
//!   elements by default) is refused from its header alone.
//! - What is not declared is counted as it arrives: the chunks of a streamed string (`$?`)
//!   against [`Limits::max_bulk_len`], the elements of a streamed aggregate (`*?`, `~?`,
//!   `%?`) against [`Limits::max_aggregate_len`].
//! - The bytes of one whole reply, streamed or not, are bounded by
//!   [`Limits::max_reply_bytes`] (1 GiB by default): a reply is refused as soon as a part of
//!   it would end past the limit, a payload from its header and a line once the limit is
//!   passed without its end, so an endless stream fails at the limit, not at its end.
//!   The decoded value adds one [`Value`] (40 bytes) per element to the input its payloads
//!   view, and the elements of one whole reply, at every depth, are bounded by
//!   [`Limits::max_reply_elements`] (2^24 by default, so 640 MiB of values), counted from a
//!   declared aggregate's header and as a streamed one's arrive.
//! - A declared aggregate length reserves memory only for as many elements as the bytes
//!   at hand can hold (each takes at least three bytes), so `*16777216` followed by a
//!   few bytes costs a few bytes.
//! - Nesting is bounded by [`Limits::max_depth`] (128 by default); an attribute counts as a
//!   level for the value it annotates. The fast decoder and the splitter keep their
//!   nesting on a heap stack, never the call stack; the reference decoder recurses at most
//!   `max_depth` deep.
//! - A line (simple string, error, number, length) that never ends is refused past
//!   [`Limits::max_line_len`] rather than buffered forever.
//! - A caller may clear, truncate or replace the buffer between calls: the next call
//!   decodes what the buffer then holds, never panics, and never returns a value made of
//!   bytes no longer there (see [`Decode`] for the contract and its one limit).
//!
//! Errors are [`ProtocolError`]s naming what was wrong and at which byte of the frame.
//!
//! # What this crate does not do
//! It does not read sockets, know Redis commands, or convert values into Rust types beyond
//! the variants of [`Value`]: those belong to `redis-conn` and `redis-commands`. So what
//! depends on the command when translating between protocols (the shape of a null, the
//! nesting of a few replies) is the caller's to say.
//!
//! # Crate features
//! - `codec`: [`codec::Codec`], tokio-util's `Decoder` and `Encoder` for [`Value`], for
//!   framing RESP over an async stream (encoding for RESP3, or RESP2 with
//!   [`codec::Codec::with_protocol`]); and [`codec::FrameCodec`], the same for frames as
//!   the bytes received ([`FrameSplitter`]). Off by default: without it the crate depends on
//!   `bytes`, `memchr` and `thiserror` only.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "codec")]
pub mod codec;
mod decode;
mod encode;
mod error;
mod fast;
mod limits;
mod reference;
mod scan;
mod split;
mod value;

pub use decode::{AnyDecoder, Decode, DecoderKind};
pub use encode::{
    bulk_len, encode_command, encode_value, encode_value_as, encode_value_as_resp2,
    write_array_len, write_bulk, write_bulk_f64, write_bulk_i64, Protocol, Resp2Null,
};
pub use error::{ProtocolError, ProtocolErrorKind};
pub use fast::Decoder;
pub use limits::Limits;
pub use reference::ReferenceDecoder;
pub use split::FrameSplitter;
pub use value::{ErrorCode, ServerError, Value};
