//! Writing RESP: commands (arrays of bulk strings) and any [`Value`].
//!
//! Numbers are formatted on the stack, never through a heap `String`.

use crate::Value;
use bytes::{BufMut, BytesMut};
use std::fmt::Write as _;

/// Appends a whole command, an array of bulk strings, reserving the exact space once.
///
/// ```
/// let mut out = bytes::BytesMut::new();
/// resp_proto::encode_command(&mut out, &[b"SET".as_slice(), b"k", b"v"]);
/// assert_eq!(&out[..], b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n");
/// ```
pub fn encode_command<A: AsRef<[u8]>>(out: &mut BytesMut, args: &[A]) {
    let size = header_len(args.len() as u64)
        + args
            .iter()
            .map(|a| bulk_len(a.as_ref().len()))
            .sum::<usize>();
    out.reserve(size);
    write_array_len(out, args.len());
    for a in args {
        write_bulk(out, a.as_ref());
    }
}

/// Bytes that `write_bulk` of `len` payload bytes appends.
#[inline]
pub fn bulk_len(len: usize) -> usize {
    header_len(len as u64) + len + 2
}

/// Bytes of a `<marker><n>\r\n` header.
#[inline]
fn header_len(n: u64) -> usize {
    1 + decimal_len(n) + 2
}

#[inline]
fn decimal_len(mut n: u64) -> usize {
    let mut len = 1;
    while n >= 10 {
        n /= 10;
        len += 1;
    }
    len
}

/// Appends an array header `*<n>\r\n`.
#[inline]
pub fn write_array_len(out: &mut BytesMut, n: usize) {
    write_header(out, b'*', n as i64);
}

/// Appends one bulk string `$<len>\r\n<data>\r\n`.
#[inline]
pub fn write_bulk(out: &mut BytesMut, data: &[u8]) {
    out.reserve(bulk_len(data.len()));
    write_header(out, b'$', data.len() as i64);
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

/// Appends an integer as a bulk string, in the decimal form Redis parses.
#[inline]
pub fn write_bulk_i64(out: &mut BytesMut, n: i64) {
    let mut buf = IntBuf::new();
    write_bulk(out, buf.format(n));
}

/// Appends a float as a bulk string in a form Redis parses: `inf`, `-inf`, or the shortest
/// decimal (or exponent, for very large or small magnitudes) that reads back as the same
/// `f64`.
///
/// NaN is written as `nan`; Redis refuses it for scores and increments, which is the honest
/// outcome for a NaN argument.
#[inline]
pub fn write_bulk_f64(out: &mut BytesMut, x: f64) {
    let mut buf = FloatBuf::new();
    write_bulk(out, buf.format(x));
}

/// Appends any value in its RESP3 form (RESP2 types keep their RESP2 markers).
///
/// [`Value::Nil`] is written as RESP3 `_`; an error whose text holds CR or LF is written
/// as a blob error. `decode(encode(v)) == v` for every value (NaN aside, which is never
/// equal to itself).
pub fn encode_value(out: &mut BytesMut, v: &Value) {
    match v {
        Value::Nil => out.put_slice(b"_\r\n"),
        Value::SimpleString(s) if !s.contains(&b'\r') && !s.contains(&b'\n') => line(out, b'+', s),
        // A simple string cannot hold CR/LF; fall back to the binary-safe form.
        Value::SimpleString(s) => write_bulk(out, s),
        Value::Error(e) => {
            let text = e.as_bytes();
            if text.contains(&b'\r') || text.contains(&b'\n') {
                write_header(out, b'!', text.len() as i64);
                out.put_slice(text);
                out.put_slice(b"\r\n");
            } else {
                line(out, b'-', text);
            }
        }
        Value::Integer(n) => {
            let mut buf = IntBuf::new();
            line(out, b':', buf.format(*n));
        }
        Value::BulkString(b) => write_bulk(out, b),
        Value::Array(items) => {
            write_header(out, b'*', items.len() as i64);
            items.iter().for_each(|i| encode_value(out, i));
        }
        Value::Double(x) => {
            let mut buf = FloatBuf::new();
            line(out, b',', buf.format(*x));
        }
        Value::Boolean(b) => out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
        Value::BigNumber(digits) => line(out, b'(', digits),
        Value::Verbatim { format, text } => {
            write_header(out, b'=', text.len() as i64 + 4);
            out.put_slice(format);
            out.put_u8(b':');
            out.put_slice(text);
            out.put_slice(b"\r\n");
        }
        Value::Map(pairs) => pairs_out(out, b'%', pairs),
        Value::Set(items) => {
            write_header(out, b'~', items.len() as i64);
            items.iter().for_each(|i| encode_value(out, i));
        }
        Value::Attribute { attributes, value } => {
            pairs_out(out, b'|', attributes);
            encode_value(out, value);
        }
        Value::Push(items) => {
            write_header(out, b'>', items.len() as i64);
            items.iter().for_each(|i| encode_value(out, i));
        }
    }
}

fn pairs_out(out: &mut BytesMut, marker: u8, pairs: &[(Value, Value)]) {
    write_header(out, marker, pairs.len() as i64);
    for (k, v) in pairs {
        encode_value(out, k);
        encode_value(out, v);
    }
}

fn line(out: &mut BytesMut, marker: u8, text: &[u8]) {
    out.reserve(text.len() + 3);
    out.put_u8(marker);
    out.put_slice(text);
    out.put_slice(b"\r\n");
}

#[inline]
fn write_header(out: &mut BytesMut, marker: u8, n: i64) {
    let mut buf = IntBuf::new();
    line(out, marker, buf.format(n));
}

/// Decimal formatting of an `i64` into a stack buffer.
struct IntBuf([u8; 20]);

impl IntBuf {
    fn new() -> Self {
        IntBuf([0; 20])
    }

    #[inline]
    fn format(&mut self, n: i64) -> &[u8] {
        let mut i = self.0.len();
        let mut m = n.unsigned_abs();
        loop {
            i -= 1;
            self.0[i] = b'0' + (m % 10) as u8;
            m /= 10;
            if m == 0 {
                break;
            }
        }
        if n < 0 {
            i -= 1;
            self.0[i] = b'-';
        }
        &self.0[i..]
    }
}

/// Float formatting into a stack buffer.
struct FloatBuf {
    buf: [u8; 40],
    len: usize,
}

impl FloatBuf {
    fn new() -> Self {
        FloatBuf {
            buf: [0; 40],
            len: 0,
        }
    }

    fn format(&mut self, x: f64) -> &[u8] {
        if x.is_nan() {
            return b"nan";
        }
        if x.is_infinite() {
            return if x > 0.0 { b"inf" } else { b"-inf" };
        }
        let a = x.abs();
        // `{}` never uses an exponent, so it is short only in a middle range; `{:e}` is
        // the shortest round-tripping form elsewhere (at most 24 bytes).
        let res = if a == 0.0 || (1e-5..1e16).contains(&a) {
            write!(self, "{x}")
        } else {
            write!(self, "{x:e}")
        };
        debug_assert!(res.is_ok(), "40 bytes hold any f64 in these forms");
        &self.buf[..self.len]
    }
}

impl std::fmt::Write for FloatBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk_of(f: impl FnOnce(&mut BytesMut)) -> String {
        let mut out = BytesMut::new();
        f(&mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn integers() {
        assert_eq!(bulk_of(|o| write_bulk_i64(o, 0)), "$1\r\n0\r\n");
        assert_eq!(bulk_of(|o| write_bulk_i64(o, -42)), "$3\r\n-42\r\n");
        assert_eq!(
            bulk_of(|o| write_bulk_i64(o, i64::MIN)),
            "$20\r\n-9223372036854775808\r\n"
        );
    }

    #[test]
    fn floats() {
        assert_eq!(bulk_of(|o| write_bulk_f64(o, 1.5)), "$3\r\n1.5\r\n");
        assert_eq!(
            bulk_of(|o| write_bulk_f64(o, f64::INFINITY)),
            "$3\r\ninf\r\n"
        );
        assert_eq!(
            bulk_of(|o| write_bulk_f64(o, f64::NEG_INFINITY)),
            "$4\r\n-inf\r\n"
        );
        assert_eq!(bulk_of(|o| write_bulk_f64(o, 1e100)), "$5\r\n1e100\r\n");
        assert_eq!(bulk_of(|o| write_bulk_f64(o, -5e-324)), "$7\r\n-5e-324\r\n");
        for x in [0.1, 1.0 / 3.0, f64::MAX, f64::MIN_POSITIVE, 123456789.125] {
            let s = bulk_of(|o| write_bulk_f64(o, x));
            let text = s.split("\r\n").nth(1).unwrap();
            assert_eq!(text.parse::<f64>().unwrap(), x, "{text}");
        }
    }
}
