//! Writing RESP: commands (arrays of bulk strings) and any [`Value`], in RESP3 or RESP2.
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

/// A version of the protocol, as a peer speaks it: what [`encode_value_as`] writes for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// RESP2, what every Redis server speaks to a connection until it sends `HELLO 3`.
    /// The default.
    #[default]
    Resp2,
    /// RESP3, negotiated with `HELLO 3` (Redis 6 and newer).
    Resp3,
}

/// Which of RESP2's two nulls a [`Value::Nil`] is written as, for a RESP2 peer.
///
/// RESP3 has one null (`_`); RESP2 has two, and Redis picks one per reply, as the reply's
/// shape would be if it were there: the null bulk string `$-1` for a missing string (GET,
/// HGET, ZSCORE, LPOP without a count, each missing key of MGET …), the null array `*-1`
/// for a missing list of things. Both decode to [`Value::Nil`], so which one was meant is
/// not in the value: a RESP3 server's `_` does not say, and a decoder that kept the
/// difference would have to change [`Value`] (every match on it, in every crate that
/// uses it) for a distinction that only matters when writing RESP2 again.
///
/// So the shape is a choice of the writer: [`encode_value_as`] writes every null as
/// `$-1`, the one Redis uses for nearly every null, and [`encode_value_as_resp2`] asks
/// for each null which to write. A proxy that reads replies from a RESP3 server and
/// serves a RESP2 client knows the command each reply answers, and so which nulls are
/// arrays. What Redis 7 answers a RESP2 client with `*-1`:
///
/// - the whole reply, when a blocking pop times out (BLPOP, BRPOP, BRPOPLPUSH, BLMOVE,
///   BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP), when LPOP or RPOP with a count, LMPOP or ZMPOP
///   find nothing, when XREAD or XREADGROUP have nothing to read, and when EXEC is
///   aborted by a WATCH-ed key;
/// - inside a reply: each missing member of GEOPOS (`[[lon, lat], *-1]`), the consumers
///   of XPENDING's summary of an empty group (its fourth element), the fields of an entry
///   deleted from a stream but still pending, read from XREADGROUP's history (`[id, *-1]`);
///   and inside EXEC's array, each of those at the position of its command.
///
/// Every other null Redis 7 sends a RESP2 client is `$-1`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Resp2Null {
    /// `$-1`, the null bulk string. The default.
    #[default]
    Bulk,
    /// `*-1`, the null array.
    Array,
}

/// Appends `v` as a peer speaking `protocol` reads it: [`encode_value`] for RESP3, and for
/// RESP2 each RESP3 type as a Redis server writes it for a RESP2 client (see
/// [`encode_value_as_resp2`]), every null as `$-1`.
///
/// ```
/// use bytes::BytesMut;
/// use resp_proto::{encode_value_as, Protocol, Value};
///
/// // HGETALL's reply, as a RESP3 server sends it.
/// let reply = Value::Map(vec![(Value::BulkString("f".into()), Value::BulkString("1".into()))]);
/// let mut out = BytesMut::new();
/// encode_value_as(&mut out, &reply, Protocol::Resp3);
/// assert_eq!(&out[..], b"%1\r\n$1\r\nf\r\n$1\r\n1\r\n");
/// out.clear();
/// encode_value_as(&mut out, &reply, Protocol::Resp2);
/// assert_eq!(&out[..], b"*2\r\n$1\r\nf\r\n$1\r\n1\r\n");
/// ```
pub fn encode_value_as(out: &mut BytesMut, v: &Value, protocol: Protocol) {
    match protocol {
        Protocol::Resp3 => encode_value(out, v),
        Protocol::Resp2 => encode_value_as_resp2(out, v, |_| Resp2Null::Bulk),
    }
}

/// Appends `v` in RESP2, each type as Redis 7 writes it for a RESP2 client, asking
/// `null_shape` which null to write for each [`Value::Nil`].
///
/// | `Value` | RESP2 |
/// | --- | --- |
/// | `Nil` | `$-1` or `*-1`, as `null_shape` says (see [`Resp2Null`]) |
/// | `SimpleString` | `+text` (a bulk string if it holds CR or LF, which a line cannot) |
/// | `Error` | `-text`; CR and LF become spaces, as Redis does to error text, since RESP2 has no blob error |
/// | `Integer` | `:n` |
/// | `BulkString` | `$len` and the bytes |
/// | `Array` | `*n` and the elements |
/// | `Double` | a bulk string: the shortest decimal that reads back as the same `f64` (as Redis 7.2 and later write it; 7.0 and 7.1 write 17 significant digits, the same number), `inf`, `-inf` or `nan` |
/// | `Boolean` | `:1` or `:0` |
/// | `BigNumber` | a bulk string of its digits |
/// | `Verbatim` | a bulk string of its text, without the format |
/// | `Map` | a flat array of 2n elements: key, value, key, value … |
/// | `Set` | an array |
/// | `Attribute` | left out: only the value it annotates is written |
/// | `Push` | an array (pub/sub messages are arrays in RESP2) |
///
/// `null_shape` is called once per null with its position: the index of the element
/// in each enclosing RESP2 array, outermost first (empty for a null that is the whole
/// value; a map's key `i` is at `2 * i` and its value at `2 * i + 1`, as in the flat array
/// written; an attribute adds no level).
///
/// What a type-by-type mapping cannot know, since it depends on the command: a few Redis 7
/// commands also change the nesting of their reply between protocols. The sorted set
/// commands WITHSCORES (ZRANGE and its variants, ZRANDMEMBER, ZINTER, ZUNION, ZDIFF),
/// ZPOPMIN and ZPOPMAX with a count, and HRANDFIELD WITHVALUES give RESP3 an array of
/// `[member, score]` pairs and RESP2 one flat array; XREAD and XREADGROUP give RESP3 a map
/// of streams and RESP2 an array of `[stream, entries]` pairs. A proxy reshapes those
/// values before encoding them, as `examples/proxy.rs` in the repository does.
///
/// ```
/// use bytes::BytesMut;
/// use resp_proto::{encode_value_as_resp2, Resp2Null, Value};
///
/// // GEOPOS of a member and of a missing one: the missing one is a null array.
/// let reply = Value::Array(vec![
///     Value::Array(vec![Value::Double(13.5), Value::Double(38.25)]),
///     Value::Nil,
/// ]);
/// let mut out = BytesMut::new();
/// encode_value_as_resp2(&mut out, &reply, |_| Resp2Null::Array);
/// assert_eq!(&out[..], &b"*2\r\n*2\r\n$4\r\n13.5\r\n$5\r\n38.25\r\n*-1\r\n"[..]);
///
/// // XPENDING's summary of an empty group: only its fourth element is an array.
/// let reply = Value::Array(vec![Value::Integer(0), Value::Nil, Value::Nil, Value::Nil]);
/// out.clear();
/// encode_value_as_resp2(&mut out, &reply, |at| match at {
///     [3] => Resp2Null::Array,
///     _ => Resp2Null::Bulk,
/// });
/// assert_eq!(&out[..], b"*4\r\n:0\r\n$-1\r\n$-1\r\n*-1\r\n");
/// ```
pub fn encode_value_as_resp2(
    out: &mut BytesMut,
    v: &Value,
    mut null_shape: impl FnMut(&[usize]) -> Resp2Null,
) {
    let mut at = Vec::new();
    resp2(out, v, &mut at, &mut null_shape);
}

/// [`encode_value_as_resp2`] at position `at`, which it leaves as it found it.
fn resp2(
    out: &mut BytesMut,
    v: &Value,
    at: &mut Vec<usize>,
    null_shape: &mut dyn FnMut(&[usize]) -> Resp2Null,
) {
    match v {
        Value::Nil => out.put_slice(match null_shape(at) {
            Resp2Null::Bulk => b"$-1\r\n",
            Resp2Null::Array => b"*-1\r\n",
        }),
        // RESP2 types, written as in RESP3.
        Value::SimpleString(_) | Value::Integer(_) | Value::BulkString(_) => encode_value(out, v),
        Value::Error(e) => {
            // RESP2 has no blob error: an error is one line, so CR and LF cannot be in it.
            // Redis replaces them with spaces in the error text it sends.
            let text = e.as_bytes();
            out.reserve(text.len() + 3);
            out.put_u8(b'-');
            for &b in text.iter() {
                out.put_u8(if b == b'\r' || b == b'\n' { b' ' } else { b });
            }
            out.put_slice(b"\r\n");
        }
        Value::Array(items) | Value::Set(items) | Value::Push(items) => {
            write_header(out, b'*', items.len() as i64);
            for (i, item) in items.iter().enumerate() {
                at.push(i);
                resp2(out, item, at, null_shape);
                at.pop();
            }
        }
        Value::Map(pairs) => {
            write_header(out, b'*', 2 * pairs.len() as i64);
            for (i, (k, v)) in pairs.iter().enumerate() {
                at.push(2 * i);
                resp2(out, k, at, null_shape);
                at.pop();
                at.push(2 * i + 1);
                resp2(out, v, at, null_shape);
                at.pop();
            }
        }
        Value::Double(x) => write_bulk_f64(out, *x),
        Value::Boolean(b) => out.put_slice(if *b { b":1\r\n" } else { b":0\r\n" }),
        Value::BigNumber(digits) => write_bulk(out, digits),
        Value::Verbatim { text, .. } => write_bulk(out, text),
        // Attributes are RESP3 only: a RESP2 client is sent the annotated value alone.
        Value::Attribute { value, .. } => resp2(out, value, at, null_shape),
    }
}

/// Appends any value in its RESP3 form (RESP2 types keep their RESP2 markers).
///
/// [`Value::Nil`] is written as RESP3 `_`; an error whose text holds CR or LF is written
/// as a blob error; a simple string holding CR or LF as a bulk string. `decode(encode(v))
/// == v` for every other value (NaN aside, which is never equal to itself), sized forms
/// standing for streamed ones. For a RESP2 peer, see [`encode_value_as`].
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
