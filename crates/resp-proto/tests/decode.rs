//! Decoding: one-line vectors per type and per error, each fed whole, split at every byte
//! offset and byte by byte to both decoders and the frame splitter; round trips; the
//! decoders and the splitter against each other on random valid values and on random and
//! mutated bytes.

mod common;

use bytes::BytesMut;
use common::{decode_all, differential, encode_streamy, random_value, Kind, Rng, KINDS};
use resp_proto::{encode_value, Decode, Limits, ProtocolError, Value};

/// What decoding one frame gives, as text: the value's `Debug`, or `error: <message>`.
fn show(r: &Result<Option<Value>, ProtocolError>) -> String {
    match r {
        Ok(Some(v)) => format!("{v:?}"),
        Ok(None) => "need more".to_string(),
        Err(e) => format!("error: {e}"),
    }
}

fn check(input: &str, expected: &str) {
    check_with(Limits::default(), input, expected)
}

/// Decodes `input` with both decoders and the frame splitter, whole, split at every offset
/// and byte by byte; each must give `expected` (the splitter: a frame of the whole input,
/// whose value it is), and before the input is complete only "need more" (or, for invalid
/// input, the same error early).
fn check_with(limits: Limits, input: &str, expected: &str) {
    let input = input.as_bytes();
    for kind in KINDS {
        let mut d = kind.start(limits);
        let mut buf = BytesMut::from(input);
        let got = show(&d.decode(&mut buf));
        assert_eq!(got, expected, "{kind:?} on {input:?}");
        if !expected.starts_with("error") {
            assert!(buf.is_empty(), "{kind:?} left {buf:?} of {input:?}");
        }
        for split in 0..input.len() {
            let mut d = kind.start(limits);
            let mut buf = BytesMut::from(&input[..split]);
            let early = show(&d.decode(&mut buf));
            if early == expected && expected.starts_with("error") {
                continue;
            }
            assert_eq!(early, "need more", "{kind:?} on {input:?} cut at {split}");
            buf.extend_from_slice(&input[split..]);
            let got = show(&d.decode(&mut buf));
            assert_eq!(got, expected, "{kind:?} on {input:?} split at {split}");
        }
        let mut d = kind.start(limits);
        let mut buf = BytesMut::new();
        let mut got = "need more".to_string();
        for &b in input {
            buf.extend_from_slice(&[b]);
            got = show(&d.decode(&mut buf));
            if got != "need more" {
                break;
            }
        }
        assert_eq!(got, expected, "{kind:?} on {input:?} byte by byte");
    }
}

#[test]
fn simple_types() {
    check("+OK\r\n", r#"SimpleString(b"OK")"#);
    check("+\r\n", r#"SimpleString(b"")"#);
    check("+a\rb\r\n", r#"SimpleString(b"a\rb")"#);
    check(
        "-WRONGTYPE bad kind\r\n",
        r#"Error(ServerError("WRONGTYPE bad kind"))"#,
    );
    check(":0\r\n", "Integer(0)");
    check(":-42\r\n", "Integer(-42)");
    check(":9223372036854775807\r\n", "Integer(9223372036854775807)");
    check(":-9223372036854775808\r\n", "Integer(-9223372036854775808)");
    check(":000000000000000000000000007\r\n", "Integer(7)");
    check(":-0\r\n", "Integer(0)");
    check("_\r\n", "Nil");
    check("#t\r\n", "Boolean(true)");
    check("#f\r\n", "Boolean(false)");
    check(",1.5\r\n", "Double(1.5)");
    check(",-2e10\r\n", "Double(-20000000000.0)");
    check(",inf\r\n", "Double(inf)");
    check(",-inf\r\n", "Double(-inf)");
    check(",nan\r\n", "Double(NaN)");
    check(
        "(3492890328409238509324850943850943825024385\r\n",
        r#"BigNumber(b"3492890328409238509324850943850943825024385")"#,
    );
    check("(-12\r\n", r#"BigNumber(b"-12")"#);
}

#[test]
fn blobs() {
    check("$3\r\nfoo\r\n", r#"BulkString(b"foo")"#);
    check("$0\r\n\r\n", r#"BulkString(b"")"#);
    check("$4\r\na\r\nb\r\n", r#"BulkString(b"a\r\nb")"#);
    check("$-1\r\n", "Nil");
    check("!9\r\nERR fault\r\n", r#"Error(ServerError("ERR fault"))"#);
    check(
        "=15\r\ntxt:Some string\r\n",
        r#"Verbatim { format: [116, 120, 116], text: b"Some string" }"#,
    );
    check(
        "=4\r\nmkd:\r\n",
        r#"Verbatim { format: [109, 107, 100], text: b"" }"#,
    );
    check(
        "$?\r\n;4\r\nHell\r\n;5\r\no wor\r\n;2\r\nld\r\n;0\r\n",
        r#"BulkString(b"Hello world")"#,
    );
    check("$?\r\n;0\r\n", r#"BulkString(b"")"#);
}

#[test]
fn aggregates() {
    check("*0\r\n", "Array([])");
    check("*-1\r\n", "Nil");
    check(
        "*2\r\n$3\r\nfoo\r\n:42\r\n",
        r#"Array([BulkString(b"foo"), Integer(42)])"#,
    );
    check(
        "*2\r\n*1\r\n+a\r\n*0\r\n",
        r#"Array([Array([SimpleString(b"a")]), Array([])])"#,
    );
    check("~2\r\n:1\r\n:2\r\n", "Set([Integer(1), Integer(2)])");
    // RESP2 nulls inside aggregates (MGET of missing keys, HMGET): the bulk-string fast
    // path must hand them to the general one.
    check(
        "*3\r\n$-1\r\n$1\r\na\r\n$-1\r\n",
        r#"Array([Nil, BulkString(b"a"), Nil])"#,
    );
    check(
        "*4\r\n$1\r\na\r\n*-1\r\n$-1\r\n$0\r\n\r\n",
        r#"Array([BulkString(b"a"), Nil, Nil, BulkString(b"")])"#,
    );
    check(
        "%2\r\n$1\r\na\r\n$-1\r\n$1\r\nb\r\n$1\r\nc\r\n",
        r#"Map([(BulkString(b"a"), Nil), (BulkString(b"b"), BulkString(b"c"))])"#,
    );
    check(
        ">3\r\n+message\r\n+ch\r\n$2\r\nhi\r\n",
        r#"Push([SimpleString(b"message"), SimpleString(b"ch"), BulkString(b"hi")])"#,
    );
    check(
        "%2\r\n+a\r\n:1\r\n+b\r\n_\r\n",
        r#"Map([(SimpleString(b"a"), Integer(1)), (SimpleString(b"b"), Nil)])"#,
    );
    check("%0\r\n", "Map([])");
    check(
        "|1\r\n+ttl\r\n:3600\r\n$1\r\nv\r\n",
        r#"Attribute { attributes: [(SimpleString(b"ttl"), Integer(3600))], value: BulkString(b"v") }"#,
    );
    check(
        "|0\r\n*1\r\n:1\r\n",
        "Attribute { attributes: [], value: Array([Integer(1)]) }",
    );
    check(
        "*2\r\n|1\r\n+k\r\n+v\r\n:1\r\n:2\r\n",
        r#"Array([Attribute { attributes: [(SimpleString(b"k"), SimpleString(b"v"))], value: Integer(1) }, Integer(2)])"#,
    );
    check("*?\r\n:1\r\n:2\r\n.\r\n", "Array([Integer(1), Integer(2)])");
    check("*?\r\n.\r\n", "Array([])");
    check("~?\r\n+a\r\n.\r\n", r#"Set([SimpleString(b"a")])"#);
    check(
        "%?\r\n+a\r\n:1\r\n.\r\n",
        r#"Map([(SimpleString(b"a"), Integer(1))])"#,
    );
    check(
        "*?\r\n*?\r\n$?\r\n;1\r\nx\r\n;0\r\n.\r\n*1\r\n#t\r\n.\r\n",
        r#"Array([Array([BulkString(b"x")]), Array([Boolean(true)])])"#,
    );
}

#[test]
fn errors() {
    check("?\r\n", "error: invalid type byte 0x3f at byte 0");
    check("*1\r\n@\r\n", "error: invalid type byte 0x40 at byte 4");
    check("+OK\n", "error: expected CRLF at byte 3");
    check("$3\r\nfooXY", "error: expected CRLF at byte 7");
    check("_x\r\n", "error: expected CRLF at byte 1");
    check(":12a\r\n", "error: invalid integer at byte 1");
    check(":+1\r\n", "error: invalid integer at byte 1");
    check(":\r\n", "error: invalid integer at byte 1");
    check(
        ":99999999999999999999\r\n",
        "error: invalid integer at byte 1",
    );
    check("$-2\r\n", "error: invalid length -2 at byte 1");
    check("!-1\r\n", "error: invalid length -1 at byte 1");
    check("%-1\r\n", "error: invalid length -1 at byte 1");
    check(",1.5x\r\n", "error: invalid double at byte 1");
    check(",infinity\r\n", "error: invalid double at byte 1");
    check("#x\r\n", "error: invalid boolean at byte 1");
    check("(12a\r\n", "error: invalid big number at byte 1");
    check("(\r\n", "error: invalid big number at byte 1");
    check("=3\r\ntxt\r\n", "error: invalid verbatim string at byte 4");
    check(
        "=5\r\ntxt-x\r\n",
        "error: invalid verbatim string at byte 4",
    );
    check(
        "$?\r\n:1\r\n",
        "error: invalid streamed string chunk at byte 4",
    );
    check("$?\r\n;-1\r\n", "error: invalid length -1 at byte 5");
    check("$?x\r\n", "error: invalid integer at byte 1");
    check("!?\r\n", "error: invalid length -1 at byte 1");
    check(">?\r\n", "error: invalid length -1 at byte 1");
    check("|?\r\n", "error: invalid length -1 at byte 1");
    check("*?x\r\n", "error: invalid integer at byte 1");
    check(
        ".\r\n",
        "error: unexpected end-of-aggregate marker at byte 0",
    );
    check(
        "*1\r\n.\r\n",
        "error: unexpected end-of-aggregate marker at byte 4",
    );
    check(
        "%?\r\n+a\r\n.\r\n",
        "error: unexpected end-of-aggregate marker at byte 8",
    );
    check(
        "|0\r\n.\r\n",
        "error: unexpected end-of-aggregate marker at byte 7",
    );
    check(".x\r\n", "error: expected CRLF at byte 1");
}

#[test]
fn limits() {
    let small = Limits {
        max_bulk_len: 4,
        max_aggregate_len: 2,
        max_depth: 2,
        max_line_len: 8,
        max_reply_bytes: 24,
        max_reply_elements: 16,
        resp3: true,
    };
    check_with(small, "$4\r\nabcd\r\n", r#"BulkString(b"abcd")"#);
    check_with(
        small,
        "$5\r\n",
        "error: bulk length 5 exceeds the limit of 4 at byte 1",
    );
    check_with(
        small,
        "$?\r\n;3\r\nabc\r\n;2\r\n",
        "error: bulk length 5 exceeds the limit of 4 at byte 14",
    );
    check_with(
        small,
        "*3\r\n",
        "error: aggregate length 3 exceeds the limit of 2 at byte 1",
    );
    check_with(
        small,
        "%3\r\n",
        "error: aggregate length 3 exceeds the limit of 2 at byte 1",
    );
    check_with(
        small,
        "*?\r\n:1\r\n:2\r\n:3\r\n",
        "error: aggregate length 3 exceeds the limit of 2 at byte 12",
    );
    check_with(small, "*1\r\n*1\r\n:1\r\n", "Array([Array([Integer(1)])])");
    check_with(
        small,
        "*1\r\n*1\r\n*1\r\n",
        "error: nesting deeper than the limit of 2 at byte 8",
    );
    check_with(
        small,
        "|0\r\n|0\r\n|0\r\n",
        "error: nesting deeper than the limit of 2 at byte 8",
    );
    check_with(small, "+12345678\r\n", r#"SimpleString(b"12345678")"#);
    check_with(
        small,
        "+123456789\r\n",
        "error: line longer than the limit of 8 at byte 1",
    );
    check_with(
        small,
        "+123456789ab",
        "error: line longer than the limit of 8 at byte 1",
    );
    check_with(
        small,
        ":-123456789\r\n",
        "error: line longer than the limit of 8 at byte 1",
    );
    // Over the default limits, refused on the header alone.
    check(
        "$536870913\r\n",
        "error: bulk length 536870913 exceeds the limit of 536870912 at byte 1",
    );
    check(
        "*16777217\r\n",
        "error: aggregate length 16777217 exceeds the limit of 16777216 at byte 1",
    );
}

/// `max_reply_bytes` counts every byte of one reply, streamed or not, and refuses it as
/// soon as a part would end past the cap: a payload from its header, a line once the cap
/// is passed without its end.
#[test]
fn reply_limit() {
    let cap = |n| Limits {
        max_reply_bytes: n,
        ..Limits::default()
    };
    // A streamed aggregate of endless elements: refused at the element that passes 16.
    check_with(
        cap(16),
        "*?\r\n:1\r\n:2\r\n:3\r\n:4\r\n:5\r\n",
        "error: reply longer than the limit of 16 bytes at byte 17",
    );
    check_with(
        cap(16),
        "*?\r\n:1\r\n:2\r\n.\r\n",
        "Array([Integer(1), Integer(2)])",
    );
    // Exactly at the cap, and one byte over.
    check_with(
        cap(17),
        "$10\r\n0123456789\r\n",
        r#"BulkString(b"0123456789")"#,
    );
    check_with(
        cap(16),
        "$10\r\n0123456789\r\n",
        "error: reply longer than the limit of 16 bytes at byte 1",
    );
    // A payload is refused from its header, before it arrives.
    check_with(
        cap(16),
        "*2\r\n:1\r\n$100\r\n",
        "error: reply longer than the limit of 16 bytes at byte 9",
    );
    // A streamed string's framing counts too: three one-byte chunks take 21 bytes.
    check_with(
        cap(16),
        "$?\r\n;1\r\na\r\n;1\r\nb\r\n;1\r\nc\r\n;0\r\n",
        "error: reply longer than the limit of 16 bytes at byte 12",
    );
    // An endless line: the cap or the line limit, whichever the bytes pass first.
    check_with(
        cap(16),
        "+aaaaaaaaaaaaaaaaaaaa",
        "error: reply longer than the limit of 16 bytes at byte 1",
    );
    check_with(
        cap(16),
        "+aaaaaaaaaaaaaaaaaaaa\r\n",
        "error: reply longer than the limit of 16 bytes at byte 1",
    );
    let both = |line, reply| Limits {
        max_line_len: line,
        max_reply_bytes: reply,
        ..Limits::default()
    };
    check_with(
        both(8, 16),
        "+aaaaaaaaaaaaaaaaaaaa\r\n",
        "error: line longer than the limit of 8 at byte 1",
    );
    check_with(
        both(20, 8),
        "+aaaaaaaaaaaaaaaaaaaa\r\n",
        "error: reply longer than the limit of 8 bytes at byte 1",
    );
    // A tie goes to the line.
    check_with(
        both(8, 10),
        "+aaaaaaaaaaaaaaaaaaaa\r\n",
        "error: line longer than the limit of 8 at byte 1",
    );
    // Nested, a map, an attribute: all one reply.
    check_with(
        cap(20),
        "%1\r\n+k\r\n*3\r\n:1\r\n:2\r\n:3\r\n",
        "error: reply longer than the limit of 20 bytes at byte 21",
    );
    check_with(
        cap(12),
        "|1\r\n+k\r\n+v\r\n:1\r\n",
        "error: reply longer than the limit of 12 bytes at byte 13",
    );
    // The cap is per reply: replies back to back each start from zero.
    for kind in KINDS {
        let (values, end, left) = decode_all(kind, cap(6), b"+abc\r\n+def\r\n:12345\r\n");
        assert_eq!(values.len(), 2, "{kind:?}");
        assert_eq!(
            end.map_err(|e| e.to_string()),
            Err("reply longer than the limit of 6 bytes at byte 1".to_string())
        );
        assert_eq!(left, 8);
    }
}

/// The element limit bounds plain and streamed aggregates alike, and the defaults are the
/// documented ones.
#[test]
fn element_limit_and_defaults() {
    let two = Limits {
        max_aggregate_len: 2,
        ..Limits::default()
    };
    check_with(two, "*2\r\n:1\r\n:2\r\n", "Array([Integer(1), Integer(2)])");
    check_with(
        two,
        "~3\r\n",
        "error: aggregate length 3 exceeds the limit of 2 at byte 1",
    );
    check_with(
        two,
        "~?\r\n:1\r\n:2\r\n:3\r\n",
        "error: aggregate length 3 exceeds the limit of 2 at byte 12",
    );
    check_with(
        two,
        "%?\r\n:1\r\n:2\r\n:3\r\n:4\r\n:5\r\n:6\r\n",
        "error: aggregate length 3 exceeds the limit of 2 at byte 24",
    );
    for kind in KINDS {
        // At the default limit: accepted, waiting for its elements.
        let (values, end, left) = decode_all(kind, Limits::default(), b"*16777216\r\n");
        assert_eq!((values.len(), end, left), (0, Ok(()), 11), "{kind:?}");
    }
    let d = Limits::default();
    assert_eq!(d.max_bulk_len, 512 << 20);
    assert_eq!(d.max_aggregate_len, 1 << 24);
    assert_eq!(d.max_reply_bytes, 1 << 30);
    assert_eq!(d.max_reply_elements, 1 << 24);
    assert!(
        d.max_reply_bytes > d.max_bulk_len + 32,
        "a longest string must fit"
    );
    // The docs of `Limits` and of the crate count 40 bytes per decoded value.
    if cfg!(target_pointer_width = "64") {
        assert_eq!(std::mem::size_of::<Value>(), 40);
    }
}

/// `max_reply_elements` counts the elements of one whole reply at every depth: a declared
/// aggregate from its header, a streamed one's as each completes.
#[test]
fn reply_element_limit() {
    let five = Limits {
        max_reply_elements: 5,
        ..Limits::default()
    };
    check_with(
        five,
        "*2\r\n*2\r\n:1\r\n:2\r\n:3\r\n",
        "Array([Array([Integer(1), Integer(2)]), Integer(3)])",
    );
    // Each aggregate within its own limit, but not all of them together: refused from the
    // header that passes the bound, before its elements arrive.
    check_with(
        five,
        "*2\r\n*2\r\n:1\r\n:2\r\n*2\r\n",
        "error: reply holds more than the limit of 5 elements at byte 17",
    );
    check_with(
        five,
        "*6\r\n",
        "error: reply holds more than the limit of 5 elements at byte 1",
    );
    // A map counts its keys and values, an attribute also the value it annotates.
    check_with(
        five,
        "%3\r\n",
        "error: reply holds more than the limit of 5 elements at byte 1",
    );
    check_with(
        five,
        "|2\r\n+a\r\n:1\r\n+b\r\n:2\r\n:0\r\n",
        r#"Attribute { attributes: [(SimpleString(b"a"), Integer(1)), (SimpleString(b"b"), Integer(2))], value: Integer(0) }"#,
    );
    check_with(
        five,
        "|2\r\n+a\r\n:1\r\n+b\r\n:2\r\n*0\r\n",
        r#"Attribute { attributes: [(SimpleString(b"a"), Integer(1)), (SimpleString(b"b"), Integer(2))], value: Array([]) }"#,
    );
    check_with(
        five,
        "|2\r\n+a\r\n:1\r\n+b\r\n:2\r\n*1\r\n",
        "error: reply holds more than the limit of 5 elements at byte 21",
    );
    // Streamed elements count as they complete, nested ones before their parent.
    check_with(
        five,
        "*?\r\n:1\r\n:2\r\n:3\r\n:4\r\n:5\r\n.\r\n",
        "Array([Integer(1), Integer(2), Integer(3), Integer(4), Integer(5)])",
    );
    check_with(
        five,
        "*?\r\n:1\r\n:2\r\n:3\r\n:4\r\n:5\r\n:6\r\n",
        "error: reply holds more than the limit of 5 elements at byte 24",
    );
    check_with(
        five,
        "*?\r\n*3\r\n:1\r\n:2\r\n:3\r\n*?\r\n:1\r\n.\r\n",
        "error: reply holds more than the limit of 5 elements at byte 20",
    );
    check_with(
        five,
        "~?\r\n%?\r\n:1\r\n:2\r\n:3\r\n:4\r\n.\r\n:5\r\n",
        "error: reply holds more than the limit of 5 elements at byte 27",
    );
    // A streamed aggregate's own limit is checked first when both are passed at once.
    let both = Limits {
        max_aggregate_len: 2,
        max_reply_elements: 2,
        ..Limits::default()
    };
    check_with(
        both,
        "*?\r\n:1\r\n:2\r\n:3\r\n",
        "error: aggregate length 3 exceeds the limit of 2 at byte 12",
    );
    // The bound is per reply: replies back to back each start from zero.
    for kind in KINDS {
        let (values, end, left) =
            decode_all(kind, five, b"*5\r\n:1\r\n:2\r\n:3\r\n:4\r\n:5\r\n*5\r\n");
        assert_eq!((values.len(), end, left), (1, Ok(()), 4), "{kind:?}");
    }
    // By default a reply may declare 2^24 elements in all, however nested.
    for kind in KINDS {
        let (values, end, left) = decode_all(kind, Limits::default(), b"*2\r\n*16777214\r\n");
        assert_eq!((values.len(), end, left), (0, Ok(()), 15), "{kind:?}");
    }
    check(
        "*2\r\n*16777214\r\n*2\r\n",
        "error: reply holds more than the limit of 16777216 elements at byte 16",
    );
}

/// With `resp3` off (a RESP2 connection), every type only RESP3 has, and streamed
/// strings and aggregates, are refused at their first byte that RESP2 lacks; RESP2's own
/// frames, nulls included, decode as before.
#[test]
fn resp2_refuses_what_only_resp3_has() {
    let resp2 = Limits::default().with_resp3(false);
    for (input, kind) in [
        ("_\r\n", "_"),
        (",1.5\r\n", ","),
        ("#t\r\n", "#"),
        ("!3\r\nerr\r\n", "!"),
        ("=7\r\ntxt:abc\r\n", "="),
        ("(12\r\n", "("),
        ("%1\r\n+a\r\n:1\r\n", "%"),
        ("~1\r\n:1\r\n", "~"),
        ("|1\r\n+a\r\n:1\r\n:2\r\n", "|"),
        (">2\r\n+a\r\n+b\r\n", ">"),
        (".\r\n", "."),
        (";1\r\n", ";"),
    ] {
        let byte = kind.as_bytes()[0];
        check_with(
            resp2,
            input,
            &format!("error: invalid type byte 0x{byte:02x} at byte 0"),
        );
        // The same inside an array, at its own offset.
        check_with(
            resp2,
            &format!("*2\r\n:1\r\n{input}"),
            &format!("error: invalid type byte 0x{byte:02x} at byte 8"),
        );
        // And a type RESP3 knows (a chunk or an end marker only inside a stream).
        let resp3 = show(
            &resp_proto::Decoder::with_limits(Limits::default())
                .decode(&mut BytesMut::from(input.as_bytes())),
        );
        assert!(
            !resp3.starts_with("error: invalid type") || kind == ";",
            "{input:?}: {resp3}"
        );
    }
    // A streamed string or aggregate: refused at the `?`, before its line ends.
    for input in ["$?", "$?\r\n;1\r\na\r\n;0\r\n", "*?", "*?\r\n:1\r\n.\r\n"] {
        check_with(resp2, input, "error: invalid integer at byte 1");
    }
    check_with(
        resp2,
        "*1\r\n*?\r\n.\r\n",
        "error: invalid integer at byte 5",
    );
    // RESP2 as servers send it.
    check_with(
        resp2,
        "*4\r\n$-1\r\n*-1\r\n+?\r\n-ERR ?\r\n",
        r#"Array([Nil, Nil, SimpleString(b"?"), Error(ServerError("ERR ?"))])"#,
    );
    check_with(
        resp2,
        "*1\r\n$3\r\nabc\r\n",
        r#"Array([BulkString(b"abc")])"#,
    );
    assert!(Limits::default().resp3, "RESP3 is accepted by default");
}

#[test]
fn frames_back_to_back() {
    let input = b"+OK\r\n:1\r\n*1\r\n$1\r\na\r\n:2\r\n";
    for kind in KINDS {
        let (values, end, left) = decode_all(kind, Limits::default(), input);
        assert_eq!(
            format!("{values:?}"),
            r#"[SimpleString(b"OK"), Integer(1), Array([BulkString(b"a")]), Integer(2)]"#
        );
        assert_eq!((end, left), (Ok(()), 0));
    }
}

#[test]
fn round_trip_random_values() {
    let mut rng = Rng::new(1);
    for _ in 0..3000 {
        let v = random_value(&mut rng, 4);
        let mut out = BytesMut::new();
        encode_value(&mut out, &v);
        for kind in KINDS {
            let mut buf = out.clone();
            let got = kind
                .start(Limits::default())
                .decode(&mut buf)
                .expect("encoder output decodes");
            assert_eq!(got.as_ref(), Some(&v), "{kind:?} on {out:?}");
            assert!(buf.is_empty());
        }
    }
}

#[test]
fn decoders_agree_on_random_valid_streams() {
    let mut rng = Rng::new(2);
    for _ in 0..1500 {
        let mut out = BytesMut::new();
        for _ in 0..1 + rng.below(4) {
            let v = random_value(&mut rng, 4);
            encode_streamy(&mut out, &v, &mut rng);
        }
        differential(&out, Limits::default(), &mut rng);
        differential(&out, Limits::default().with_resp3(false), &mut rng);
        let (_, end, left) = decode_all(Kind::Fast, Limits::default(), &out);
        assert_eq!((end, left), (Ok(()), 0), "{out:?}");
    }
}

/// Random mutations of valid streams, and plain random bytes: both decoders must give the
/// same values and the same error, and neither may panic.
#[test]
fn decoders_agree_on_mutated_and_random_bytes() {
    let mut rng = Rng::new(3);
    let tight = Limits {
        max_bulk_len: 64,
        max_aggregate_len: 8,
        max_depth: 5,
        max_line_len: 32,
        max_reply_bytes: 200,
        max_reply_elements: 12,
        resp3: true,
    };
    for case in 0..20_000 {
        let mut bytes = BytesMut::new();
        encode_streamy(&mut bytes, &random_value(&mut rng, 4), &mut rng);
        let mut bytes = bytes.to_vec();
        match case % 5 {
            0 => bytes = rng.bytes(40, false),
            1 => {
                // RESP-looking noise: markers, digits, CRLF.
                let alphabet = b"+-:$*%~|>_#,(!=.?;\r\n\r\n0123456789-tfx";
                bytes = (0..rng.below(48))
                    .map(|_| alphabet[rng.below(alphabet.len())])
                    .collect();
            }
            _ => {
                for _ in 0..1 + rng.below(3) {
                    if bytes.is_empty() {
                        break;
                    }
                    let at = rng.below(bytes.len());
                    match rng.below(4) {
                        0 => bytes[at] = rng.next() as u8,
                        1 => {
                            bytes.remove(at);
                        }
                        2 => bytes.insert(at, b"\r\n-:$*.?;0123"[rng.below(13)]),
                        _ => bytes.truncate(at),
                    }
                }
            }
        }
        // Each also as a RESP2 connection's decoder sees it.
        let limits = match case % 4 {
            0 => tight,
            1 => Limits::default(),
            2 => tight.with_resp3(false),
            _ => Limits::default().with_resp3(false),
        };
        differential(&bytes, limits, &mut rng);
    }
}

/// RESP2 replies as servers send them (nulls as `$-1` and `*-1`, which `encode_value`
/// never writes): random arrays of them decode alike in both decoders.
#[test]
fn decoders_agree_on_resp2_nulls_in_arrays() {
    use bytes::BytesMut;
    use resp_proto::{Decode, Decoder, ReferenceDecoder};
    let mut seed = 0x0005_DEEC_E66D_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..2_000 {
        let n = (next() % 12) as usize;
        let mut wire = format!("*{n}\r\n").into_bytes();
        for _ in 0..n {
            match next() % 4 {
                0 => wire.extend_from_slice(b"$-1\r\n"),
                1 => wire.extend_from_slice(b"*-1\r\n"),
                2 => wire.extend_from_slice(format!(":{}\r\n", next() % 1000).as_bytes()),
                _ => {
                    let len = (next() % 5) as usize;
                    wire.extend_from_slice(format!("${len}\r\n{}\r\n", "x".repeat(len)).as_bytes());
                }
            }
        }
        let fast = Decoder::new().decode(&mut BytesMut::from(&wire[..]));
        let reference = ReferenceDecoder::new().decode(&mut BytesMut::from(&wire[..]));
        assert_eq!(fast, reference, "{}", String::from_utf8_lossy(&wire));
        assert!(matches!(fast, Ok(Some(_))));
    }
}
