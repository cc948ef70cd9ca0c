//! Encoding for a protocol: what a real Redis 7 server sends a RESP2 and a RESP3 client for
//! the same reply, checked byte for byte; and round trips as properties over random
//! values: decode then encode in the same protocol gives bytes a client of that protocol
//! reads as the same reply (RESP2: the very same bytes, nulls of both shapes included).

mod common;

use bytes::{BufMut, BytesMut};
use common::{encode_streamy, random_value, Kind, Rng, KINDS};
use resp_proto::{
    encode_value, encode_value_as, encode_value_as_resp2, Decode, Limits, Protocol, Resp2Null,
    ServerError, Value,
};
use std::collections::HashMap;

/// Decodes one whole frame with each decoder (the splitter included); they must agree.
fn decode(input: &[u8]) -> Value {
    let mut values = KINDS.map(|kind: Kind| {
        let mut buf = BytesMut::from(input);
        let v = kind.start(Limits::default()).decode(&mut buf);
        assert!(buf.is_empty(), "{kind:?} left {buf:?} of {input:?}");
        format!("{:?}", v.expect("valid").expect("complete"))
    });
    values.sort();
    assert!(values.windows(2).all(|w| w[0] == w[1]), "{values:?}");
    let mut buf = BytesMut::from(input);
    Kind::Fast
        .start(Limits::default())
        .decode(&mut buf)
        .unwrap()
        .unwrap()
}

fn resp2(v: &Value, nulls: impl FnMut(&[usize]) -> Resp2Null) -> BytesMut {
    let mut out = BytesMut::new();
    encode_value_as_resp2(&mut out, v, nulls);
    out
}

/// Which null a position calls for.
type NullShape = fn(&[usize]) -> Resp2Null;

fn bulk(_: &[usize]) -> Resp2Null {
    Resp2Null::Bulk
}

fn array(_: &[usize]) -> Resp2Null {
    Resp2Null::Array
}

/// Replies of Redis 7.0.15 to the same command from a RESP3 client (`HELLO 3`) and from a
/// RESP2 one, as read off the wire. The RESP3 reply re-encoded for RESP2, with the null
/// shape the command calls for, must be the RESP2 reply to the byte; re-encoded for RESP3,
/// the RESP3 reply itself.
#[test]
fn what_redis_7_sends_each_protocol() {
    #[rustfmt::skip]
    let cases: &[(&str, &str, &str, NullShape)] = &[
        ("GET missing", "_\r\n", "$-1\r\n", bulk),
        ("ZSCORE", ",1.5\r\n", "$3\r\n1.5\r\n", bulk),
        ("ZSCORE missing", "_\r\n", "$-1\r\n", bulk),
        ("ZINCRBY", ",2.5\r\n", "$3\r\n2.5\r\n", bulk),
        ("HGETALL", "%2\r\n$1\r\nf\r\n$1\r\n1\r\n$1\r\ng\r\n$1\r\n2\r\n",
            "*4\r\n$1\r\nf\r\n$1\r\n1\r\n$1\r\ng\r\n$1\r\n2\r\n", bulk),
        ("SMEMBERS", "~1\r\n$1\r\na\r\n", "*1\r\n$1\r\na\r\n", bulk),
        ("CONFIG GET maxmemory", "%1\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n",
            "*2\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n", bulk),
        ("MGET k missing", "*2\r\n$1\r\nv\r\n_\r\n", "*2\r\n$1\r\nv\r\n$-1\r\n", bulk),
        ("ZMSCORE", "*2\r\n,1.5\r\n_\r\n", "*2\r\n$3\r\n1.5\r\n$-1\r\n", bulk),
        ("COMMAND INFO unknown", "*1\r\n_\r\n", "*1\r\n$-1\r\n", bulk),
        ("BLPOP timeout", "_\r\n", "*-1\r\n", array),
        ("LPOP missing 2", "_\r\n", "*-1\r\n", array),
        ("XREAD nothing", "_\r\n", "*-1\r\n", array),
        ("EXEC aborted", "_\r\n", "*-1\r\n", array),
        ("XPENDING empty group", "*4\r\n:0\r\n_\r\n_\r\n_\r\n",
            "*4\r\n:0\r\n$-1\r\n$-1\r\n*-1\r\n", |at| if at == [3] { Resp2Null::Array } else { Resp2Null::Bulk }),
        // MULTI, GET missing, BLPOP on an empty list, GEOPOS of a missing member, EXEC.
        ("EXEC", "*3\r\n_\r\n_\r\n*1\r\n_\r\n", "*3\r\n$-1\r\n*-1\r\n*1\r\n*-1\r\n",
            |at| if at == [0] { Resp2Null::Bulk } else { Resp2Null::Array }),
        ("BZPOPMIN", "*3\r\n$2\r\nz2\r\n$1\r\na\r\n,1\r\n", "*3\r\n$2\r\nz2\r\n$1\r\na\r\n$1\r\n1\r\n", bulk),
        ("ZMPOP", "*2\r\n$2\r\nz2\r\n*1\r\n*2\r\n$1\r\na\r\n,1\r\n",
            "*2\r\n$2\r\nz2\r\n*1\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n", bulk),
        ("CLIENT TRACKINGINFO", "%3\r\n$5\r\nflags\r\n~1\r\n$3\r\noff\r\n$8\r\nredirect\r\n:-1\r\n$8\r\nprefixes\r\n*0\r\n",
            "*6\r\n$5\r\nflags\r\n*1\r\n$3\r\noff\r\n$8\r\nredirect\r\n:-1\r\n$8\r\nprefixes\r\n*0\r\n", bulk),
        ("EVAL return false", "_\r\n", "$-1\r\n", bulk),
        ("EVAL return {double=1.5}", ",1.5\r\n", "$3\r\n1.5\r\n", bulk),
        ("EVAL return {big_number='123'}", "(123\r\n", "$3\r\n123\r\n", bulk),
        ("EVAL verbatim_string", "=6\r\ntxt:hi\r\n", "$2\r\nhi\r\n", bulk),
        ("EVAL setresp(3) true", "#t\r\n", ":1\r\n", bulk),
        ("EVAL setresp(3) map", "%1\r\n$1\r\na\r\n:1\r\n", "*2\r\n$1\r\na\r\n:1\r\n", bulk),
        ("INFO keyspace", "=48\r\ntxt:# Keyspace\r\ndb0:keys=7,expires=0,avg_ttl=0\r\n\r\n",
            "$44\r\n# Keyspace\r\ndb0:keys=7,expires=0,avg_ttl=0\r\n\r\n", bulk),
        ("SUBSCRIBE", ">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n", "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n", bulk),
        ("UNSUBSCRIBE", ">3\r\n$11\r\nunsubscribe\r\n$2\r\nch\r\n:0\r\n", "*3\r\n$11\r\nunsubscribe\r\n$2\r\nch\r\n:0\r\n", bulk),
        ("DEBUG PROTOCOL string", "$11\r\nHello World\r\n", "$11\r\nHello World\r\n", bulk),
        ("DEBUG PROTOCOL integer", ":12345\r\n", ":12345\r\n", bulk),
        ("DEBUG PROTOCOL double", ",3.141\r\n", "$5\r\n3.141\r\n", bulk),
        ("DEBUG PROTOCOL bignum", "(1234567999999999999999999999999999999\r\n",
            "$37\r\n1234567999999999999999999999999999999\r\n", bulk),
        ("DEBUG PROTOCOL null", "_\r\n", "$-1\r\n", bulk),
        ("DEBUG PROTOCOL array", "*3\r\n:0\r\n:1\r\n:2\r\n", "*3\r\n:0\r\n:1\r\n:2\r\n", bulk),
        ("DEBUG PROTOCOL set", "~3\r\n:0\r\n:1\r\n:2\r\n", "*3\r\n:0\r\n:1\r\n:2\r\n", bulk),
        ("DEBUG PROTOCOL map", "%3\r\n:0\r\n#f\r\n:1\r\n#t\r\n:2\r\n#f\r\n",
            "*6\r\n:0\r\n:0\r\n:1\r\n:1\r\n:2\r\n:0\r\n", bulk),
        ("DEBUG PROTOCOL attrib", "|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n$39\r\nSome real reply following the attribute\r\n",
            "$39\r\nSome real reply following the attribute\r\n", bulk),
        ("DEBUG PROTOCOL verbatim", "=29\r\ntxt:This is a verbatim\nstring\r\n",
            "$25\r\nThis is a verbatim\nstring\r\n", bulk),
        ("DEBUG PROTOCOL true", "#t\r\n", ":1\r\n", bulk),
        ("DEBUG PROTOCOL false", "#f\r\n", ":0\r\n", bulk),
        ("an error", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
            "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n", bulk),
        ("PING", "+PONG\r\n", "+PONG\r\n", bulk),
    ];
    for &(what, resp3, resp2_bytes, nulls) in cases {
        let v = decode(resp3.as_bytes());
        assert_eq!(resp2(&v, nulls), resp2_bytes.as_bytes(), "{what}: RESP2");
        let mut out = BytesMut::new();
        encode_value_as(&mut out, &v, Protocol::Resp3);
        assert_eq!(String::from_utf8_lossy(&out), resp3, "{what}: RESP3");
    }
}

/// Without a hint every null is `$-1`, the one Redis sends for nearly every null; the
/// hint is asked once per null, with the null's position in the RESP2 arrays written
/// (a map's pairs flattened, an attribute adding no level).
#[test]
fn null_shapes_by_position() {
    let v = decode(b"*3\r\n_\r\n%2\r\n+k\r\n_\r\n_\r\n*1\r\n_\r\n|1\r\n+a\r\n_\r\n*1\r\n_\r\n");
    let mut out = BytesMut::new();
    encode_value_as(&mut out, &v, Protocol::Resp2);
    assert_eq!(
        &out[..],
        b"*3\r\n$-1\r\n*4\r\n+k\r\n$-1\r\n$-1\r\n*1\r\n$-1\r\n*1\r\n$-1\r\n"
    );
    let mut asked = Vec::new();
    let written = resp2(&v, |at| {
        asked.push(at.to_vec());
        if at.len() == 2 {
            Resp2Null::Array
        } else {
            Resp2Null::Bulk
        }
    });
    assert_eq!(
        asked,
        [vec![0], vec![1, 1], vec![1, 2], vec![1, 3, 0], vec![2, 0]]
    );
    assert_eq!(
        &written[..],
        b"*3\r\n$-1\r\n*4\r\n+k\r\n*-1\r\n*-1\r\n*1\r\n$-1\r\n*1\r\n*-1\r\n"
    );
    assert_eq!(&resp2(&Value::Nil, array)[..], b"*-1\r\n");
}

/// What RESP2 cannot carry as RESP3 does: errors are one line (CR and LF become spaces, as
/// Redis writes them), a simple string holding CR or LF becomes a bulk string, doubles
/// become the bulk strings Redis writes for them.
#[test]
fn what_resp2_cannot_carry() {
    let error = Value::Error(ServerError::new("ERR My\r\nError"));
    assert_eq!(&resp2(&error, bulk)[..], b"-ERR My  Error\r\n");
    let mut out = BytesMut::new();
    encode_value_as(&mut out, &error, Protocol::Resp3);
    assert_eq!(&out[..], b"!13\r\nERR My\r\nError\r\n");
    let simple = Value::SimpleString("a\nb".into());
    assert_eq!(&resp2(&simple, bulk)[..], b"$3\r\na\nb\r\n");
    for (x, text) in [
        (f64::INFINITY, "inf"),
        (f64::NEG_INFINITY, "-inf"),
        (f64::NAN, "nan"),
        (0.1, "0.1"),
        (100.0, "100"),
        (-2.5e-10, "-2.5e-10"),
        (1e300, "1e300"),
    ] {
        let written = resp2(&Value::Double(x), bulk);
        let expected = format!("${}\r\n{text}\r\n", text.len());
        assert_eq!(written, expected.as_bytes(), "{x}");
    }
}

/// A RESP2 value written with the null at each position recorded, so the test knows the
/// shape a re-encoding must give each null.
fn write_resp2(out: &mut BytesMut, v: &Value, at: &mut Vec<usize>, nulls: &mut NullShapes) {
    match v {
        Value::Nil => {
            let shape = nulls.pick(at.clone());
            out.put_slice(match shape {
                Resp2Null::Bulk => b"$-1\r\n",
                Resp2Null::Array => b"*-1\r\n",
            });
        }
        Value::Array(items) => {
            out.put_slice(format!("*{}\r\n", items.len()).as_bytes());
            for (i, item) in items.iter().enumerate() {
                at.push(i);
                write_resp2(out, item, at, nulls);
                at.pop();
            }
        }
        other => encode_value(out, other),
    }
}

/// The shape of each null of a RESP2 frame, by position, drawn at random.
struct NullShapes {
    rng: Rng,
    shapes: HashMap<Vec<usize>, Resp2Null>,
}

impl NullShapes {
    fn pick(&mut self, at: Vec<usize>) -> Resp2Null {
        let shape = if self.rng.below(2) == 0 {
            Resp2Null::Bulk
        } else {
            Resp2Null::Array
        };
        self.shapes.insert(at, shape);
        shape
    }
}

/// A random value of the RESP2 types only.
fn random_resp2(rng: &mut Rng, depth: usize) -> Value {
    loop {
        let v = random_value(rng, depth);
        if let Some(v) = only_resp2(v) {
            return v;
        }
    }
}

fn only_resp2(v: Value) -> Option<Value> {
    match v {
        Value::Nil | Value::Integer(_) | Value::BulkString(_) | Value::SimpleString(_) => Some(v),
        Value::Error(ref e) if !e.as_bytes().iter().any(|b| matches!(b, b'\r' | b'\n')) => Some(v),
        Value::Array(items) => items
            .into_iter()
            .map(only_resp2)
            .collect::<Option<_>>()
            .map(Value::Array),
        _ => None,
    }
}

/// Every RESP2 frame (nulls of both shapes, in any position) decoded and encoded again for
/// RESP2, with the null shapes the frame had, is the same frame to the byte; without the
/// shapes, a frame that decodes to the same value.
#[test]
fn resp2_round_trip_is_byte_exact() {
    let mut rng = Rng::new(28);
    let mut nulls = NullShapes {
        rng: Rng::new(29),
        shapes: HashMap::new(),
    };
    let mut arrays = 0;
    for _ in 0..4000 {
        let v = random_resp2(&mut rng, 4);
        nulls.shapes.clear();
        let mut input = BytesMut::new();
        write_resp2(&mut input, &v, &mut Vec::new(), &mut nulls);
        arrays += nulls
            .shapes
            .values()
            .filter(|s| **s == Resp2Null::Array)
            .count();
        let decoded = decode(&input);
        assert_eq!(decoded, v);
        let again = resp2(&decoded, |at| nulls.shapes[at]);
        assert_eq!(again, input, "{v:?}");
        let mut plain = BytesMut::new();
        encode_value_as(&mut plain, &decoded, Protocol::Resp2);
        assert_eq!(decode(&plain), v);
    }
    assert!(arrays > 200, "{arrays} null arrays");
}

/// Every valid frame, in any form (streamed strings and aggregates, attributes, pushes),
/// decoded and encoded again for RESP3 reads as the same value; a frame in the sized form
/// the encoder writes comes back to the byte.
#[test]
fn resp3_round_trip() {
    let mut rng = Rng::new(30);
    for _ in 0..3000 {
        let v = random_value(&mut rng, 4);
        let mut input = BytesMut::new();
        encode_streamy(&mut input, &v, &mut rng);
        let decoded = decode(&input);
        let mut again = BytesMut::new();
        encode_value_as(&mut again, &decoded, Protocol::Resp3);
        assert_eq!(format!("{:?}", decode(&again)), format!("{v:?}"));
        let mut sized = BytesMut::new();
        encode_value(&mut sized, &v);
        let mut again = BytesMut::new();
        encode_value_as(&mut again, &decode(&sized), Protocol::Resp3);
        assert_eq!(again, sized, "{v:?}");
    }
}

/// Every value, of every RESP3 type, encoded for RESP2 is RESP2 only (no RESP3 marker
/// anywhere) and reads as the value's RESP2 form, type by type as the docs of
/// `encode_value_as_resp2` say.
#[test]
fn any_value_in_resp2() {
    let mut rng = Rng::new(31);
    for _ in 0..4000 {
        let v = random_value(&mut rng, 4);
        let mut out = BytesMut::new();
        encode_value_as(&mut out, &v, Protocol::Resp2);
        let end = resp2_frame_end(&out, 0).unwrap_or_else(|| panic!("not RESP2: {out:?}"));
        assert_eq!(end, out.len(), "{out:?}");
        let read = decode(&out);
        assert!(reads_as_resp2_of(&read, &v), "{v:?} written {out:?}");
    }
}

/// Where the RESP2 frame at `at` ends; `None` if it is not RESP2 (a RESP3 type marker, a
/// null other than `$-1` and `*-1`, or bad framing).
fn resp2_frame_end(b: &[u8], at: usize) -> Option<usize> {
    let nl = at + b[at..].windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&b[at + 1..nl]).ok();
    let next = nl + 2;
    match b[at] {
        b'+' | b'-' => Some(next),
        b':' => line?.parse::<i64>().ok().map(|_| next),
        b'$' => match line?.parse::<i64>().ok()? {
            -1 => Some(next),
            n if n >= 0 => {
                let end = next + n as usize;
                (b.get(end..end + 2)? == b"\r\n").then_some(end + 2)
            }
            _ => None,
        },
        b'*' => match line?.parse::<i64>().ok()? {
            -1 => Some(next),
            n if n >= 0 => (0..n).try_fold(next, |pos, _| resp2_frame_end(b, pos)),
            _ => None,
        },
        _ => None,
    }
}

/// Whether `read` (a RESP2 frame decoded) is what RESP2 makes of `v`.
fn reads_as_resp2_of(read: &Value, v: &Value) -> bool {
    let all = |read: &[Value], expected: &[&Value]| {
        read.len() == expected.len()
            && read
                .iter()
                .zip(expected)
                .all(|(r, e)| reads_as_resp2_of(r, e))
    };
    match (read, v) {
        (_, Value::Attribute { value, .. }) => reads_as_resp2_of(read, value),
        (Value::Nil, Value::Nil) => true,
        (Value::SimpleString(a), Value::SimpleString(b)) => a == b,
        (Value::BulkString(a), Value::SimpleString(b)) => {
            a == b && b.iter().any(|&c| c == b'\r' || c == b'\n')
        }
        (Value::Error(a), Value::Error(b)) => {
            let clean: Vec<u8> = b
                .as_bytes()
                .iter()
                .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c })
                .collect();
            a.as_bytes()[..] == clean[..]
        }
        (Value::Integer(a), Value::Integer(b)) => a == b,
        (Value::Integer(a), Value::Boolean(b)) => *a == i64::from(*b),
        (Value::BulkString(a), Value::BulkString(b) | Value::BigNumber(b)) => a == b,
        (Value::BulkString(a), Value::Verbatim { text, .. }) => a == text,
        (Value::BulkString(a), Value::Double(x)) => match &a[..] {
            b"nan" => x.is_nan(),
            b"inf" => *x == f64::INFINITY,
            b"-inf" => *x == f64::NEG_INFINITY,
            text => {
                std::str::from_utf8(text)
                    .ok()
                    .and_then(|t| t.parse::<f64>().ok())
                    == Some(*x)
            }
        },
        (Value::Array(read), Value::Array(items) | Value::Set(items) | Value::Push(items)) => {
            all(read, &items.iter().collect::<Vec<_>>())
        }
        (Value::Array(read), Value::Map(pairs)) => all(
            read,
            &pairs.iter().flat_map(|(k, v)| [k, v]).collect::<Vec<_>>(),
        ),
        _ => false,
    }
}
