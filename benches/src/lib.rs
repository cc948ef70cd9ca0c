//! Corpora shared by the benchmarks, the hiredis harness and the runner; the benchmarks
//! themselves are under `benches/`.

pub mod live;

use bytes::{BufMut, BytesMut};
use resp_proto::{encode_value, Decode, Decoder, ProtocolError, Value};

/// A decode corpus: a name, its bytes, and how many top-level replies they hold.
#[derive(Debug)]
pub struct Corpus {
    /// Short name, used for benchmark ids and corpus file names.
    pub name: &'static str,
    /// The encoded replies.
    pub bytes: BytesMut,
    /// Top-level replies in `bytes`.
    pub replies: u64,
}

/// Socket-sized reads: every parser is fed the corpus this many bytes at a time, as a
/// client reading a socket would (hiredis reads 16 KiB at a time).
pub const READ_SIZE: usize = 16 * 1024;

/// Every decode corpus of the codec benchmarks.
pub fn corpora() -> Vec<Corpus> {
    vec![
        Corpus {
            name: "array_1000x100",
            bytes: bulk_array(1000, 100),
            replies: 1,
        },
        Corpus {
            name: "integers_1m",
            bytes: integers(1_000_000),
            replies: 1_000_000,
        },
        Corpus {
            name: "nested_100x10",
            bytes: nested(100, 10, 10),
            replies: 1,
        },
        Corpus {
            name: "bulk_10mb",
            bytes: bulk(10 << 20),
            replies: 1,
        },
        Corpus {
            name: "map_1000",
            bytes: map(1000),
            replies: 1,
        },
    ]
}

/// One array of `n` bulk strings of `len` bytes each, encoded.
pub fn bulk_array(n: usize, len: usize) -> BytesMut {
    let mut out = BytesMut::new();
    let item = Value::BulkString(vec![b'x'; len].into());
    encode_value(&mut out, &Value::Array(vec![item; n]));
    out
}

/// `n` integer replies back to back (`:0`, `:1`, … so lengths vary as counters do).
pub fn integers(n: usize) -> BytesMut {
    let mut out = BytesMut::new();
    for i in 0..n {
        encode_value(&mut out, &Value::Integer(i as i64));
    }
    out
}

/// An array of `outer` arrays of `inner` bulk strings of `len` bytes.
pub fn nested(outer: usize, inner: usize, len: usize) -> BytesMut {
    let item = Value::BulkString(vec![b'y'; len].into());
    let row = Value::Array(vec![item; inner]);
    let mut out = BytesMut::new();
    encode_value(&mut out, &Value::Array(vec![row; outer]));
    out
}

/// One bulk string of `len` bytes.
pub fn bulk(len: usize) -> BytesMut {
    let mut out = BytesMut::with_capacity(len + 16);
    encode_value(&mut out, &Value::BulkString(vec![b'z'; len].into()));
    out
}

/// A RESP3 map of `n` field/value pairs (10-byte fields, 32-byte values), as HGETALL
/// answers over RESP3.
pub fn map(n: usize) -> BytesMut {
    let pairs = (0..n)
        .map(|i| {
            (
                Value::BulkString(format!("field:{i:04}").into()),
                Value::BulkString(vec![b'v'; 32].into()),
            )
        })
        .collect();
    let mut out = BytesMut::new();
    encode_value(&mut out, &Value::Map(pairs));
    out
}

/// Decodes `input` with resp-proto's fast decoder as a connection would: appended to a
/// read buffer [`READ_SIZE`] bytes at a time, decoding after each read. Returns the
/// replies decoded.
///
/// # Errors
/// When `input` is not valid RESP.
pub fn decode_like_a_socket(input: &[u8]) -> Result<u64, ProtocolError> {
    let mut decoder = Decoder::new();
    let mut buf = BytesMut::with_capacity(4 * READ_SIZE);
    let mut replies = 0;
    for chunk in input.chunks(READ_SIZE) {
        if let Some(wanted) = decoder.bytes_wanted() {
            // A large payload is on its way: make room for it once.
            buf.reserve(wanted.saturating_sub(buf.len()));
        }
        buf.put_slice(chunk);
        while let Some(v) = decoder.decode(&mut buf)? {
            replies += 1;
            drop(v);
        }
    }
    Ok(replies)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_corpus_decodes_to_its_reply_count() {
        for c in corpora() {
            assert_eq!(decode_like_a_socket(&c.bytes), Ok(c.replies), "{}", c.name);
        }
    }
}
