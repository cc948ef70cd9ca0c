//! Corpora shared by the benchmarks; the benchmarks themselves are under `benches/`.

use bytes::BytesMut;
use resp_proto::{encode_value, Value};

/// One array of `n` bulk strings of `len` bytes each, encoded.
pub fn bulk_array(n: usize, len: usize) -> BytesMut {
    let mut out = BytesMut::new();
    let item = Value::BulkString(vec![b'x'; len].into());
    encode_value(&mut out, &Value::Array(vec![item; n]));
    out
}
