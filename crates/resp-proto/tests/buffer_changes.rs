//! The contract of `Decode` for a buffer changed between calls: cleared, truncated,
//! replaced by other bytes (shorter, longer or as long, same allocation or a new one), in
//! the middle of a large array and of a large bulk string, for both decoders and the frame
//! splitter. After any change the next call gives what a new decoder gives for the bytes
//! now in the buffer; it never panics, never hangs on a complete value, never returns
//! bytes no longer there.

mod common;

use bytes::BytesMut;
use common::{decode_with_changes, encode_streamy, random_value, Kind, Rng, Subject, KINDS};
use resp_proto::{AnyDecoder, Decode, DecoderKind, Limits, ProtocolError, Value};

fn show(r: &Result<Option<Value>, ProtocolError>) -> String {
    match r {
        Ok(Some(v)) => format!("{v:?}"),
        Ok(None) => "need more".to_string(),
        Err(e) => format!("error: {e}"),
    }
}

/// What a new decoder makes of `buf`: the result and the bytes it leaves.
fn fresh(buf: &BytesMut) -> (String, BytesMut) {
    let mut copy = buf.clone();
    let r = AnyDecoder::new(DecoderKind::Reference, Limits::default()).decode(&mut copy);
    (show(&r), copy)
}

/// A decoder of `kind` that has decoded nothing yet from `buf`, which holds the start of
/// a frame: it said "need more" after every piece of `first` it was fed.
fn started(kind: Kind, first: &[u8]) -> (Subject, BytesMut) {
    let mut d = kind.start(Limits::default());
    let mut buf = BytesMut::new();
    // Large pieces: the reference decoder parses the whole buffer again on every call.
    for piece in first.chunks(64 * 1024) {
        buf.extend_from_slice(piece);
        assert_eq!(show(&d.decode(&mut buf)), "need more", "{kind:?}");
    }
    (d, buf)
}

/// Starts a decoder on `first`, applies `change` to the buffer, and checks that the next
/// call gives what a new decoder gives, then that `expected` is that result (so each case
/// also says what it is about).
fn check(first: &[u8], change: impl Fn(&mut BytesMut), expected: &str) {
    for kind in KINDS {
        let (mut d, mut buf) = started(kind, first);
        change(&mut buf);
        let (want, left) = fresh(&buf);
        let got = show(&d.decode(&mut buf));
        assert_eq!(got, want, "{kind:?}");
        assert_eq!(buf, left, "{kind:?} left other bytes");
        let shown: String = got.chars().take(200).collect();
        assert!(shown.starts_with(expected), "{kind:?}: {shown}");
    }
}

fn replace_with(bytes: &'static [u8]) -> impl Fn(&mut BytesMut) {
    move |buf: &mut BytesMut| *buf = BytesMut::from(bytes)
}

fn rewrite_with(bytes: &'static [u8]) -> impl Fn(&mut BytesMut) {
    move |buf: &mut BytesMut| {
        buf.clear();
        buf.extend_from_slice(bytes);
    }
}

/// Half of an array of 100,000 bulk strings of 5 bytes: 50,000 of them scanned.
fn half_array() -> Vec<u8> {
    let mut a = b"*100000\r\n".to_vec();
    for _ in 0..50_000 {
        a.extend_from_slice(b"$5\r\nhello\r\n");
    }
    a
}

/// The header of a 1,000,000-byte bulk string and half its payload: the decoder waits for
/// the rest without looking at it.
fn half_bulk() -> Vec<u8> {
    let mut b = b"$1000000\r\n".to_vec();
    b.resize(b.len() + 500_000, b'z');
    b
}

#[test]
fn the_reported_cases() {
    // `Ok(None)` forever on `+OK\r\n`: the fast decoder waited for the old payload.
    check(
        b"$100\r\nabc",
        rewrite_with(b"+OK\r\n"),
        r#"SimpleString(b"OK")"#,
    );
    check(
        b"$100\r\nabc",
        replace_with(b"+OK\r\n"),
        r#"SimpleString(b"OK")"#,
    );
    check(
        b"+hello wor",
        rewrite_with(b"+OK\r\n"),
        r#"SimpleString(b"OK")"#,
    );
    // A reply swallowed: the old count of the array took the new reply as its element.
    check(b"*2\r\n:1\r\n", rewrite_with(b":7\r\n:8\r\n"), "Integer(7)");
    check(
        b"*2\r\n:1\r\n",
        replace_with(b"*1\r\n:9\r\n"),
        "Array([Integer(9)])",
    );
    // A panic in the build: the old scan's offsets applied to shorter or other bytes.
    check(
        b"*3\r\n+abc\r\n+de",
        rewrite_with(b"*3\r\n+\n"),
        "error: expected CRLF",
    );
    check(
        b"*3\r\n$3\r\nabc\r\n",
        rewrite_with(b"*3\r\n$3\r\n\r\n\r\n"),
        "need more",
    );
    check(b"%1\r\n+k\r\n", rewrite_with(b"%1\r\n+k\r\n"), "need more");
}

#[test]
fn clear_and_truncate() {
    for first in [half_array(), half_bulk()] {
        check(&first, |b| b.clear(), "need more");
        check(&first, |b| b.truncate(3), "need more");
        check(&first, |b| b.truncate(first.len() / 2), "need more");
        check(&first, |b| b.truncate(first.len() - 1), "need more");
        // Cleared, then a new complete reply.
        check(
            &first,
            |b| {
                b.clear();
                b.extend_from_slice(b"+OK\r\n");
            },
            r#"SimpleString(b"OK")"#,
        );
        // Truncated to the start of a reply that then comes whole.
        check(
            &first,
            |b| {
                b.truncate(1);
                b[0] = b':';
                b.extend_from_slice(b"42\r\n");
            },
            "Integer(42)",
        );
    }
}

#[test]
fn replaced_in_the_middle_of_a_large_array() {
    let first = half_array();
    // Shorter, a complete reply followed by the start of another.
    check(
        &first,
        rewrite_with(b"*1\r\n$2\r\nhi\r\n:1"),
        r#"Array([BulkString(b"hi")])"#,
    );
    // Longer: another array, complete, of different elements.
    let mut longer = b"*60000\r\n".to_vec();
    for _ in 0..60_000 {
        longer.extend_from_slice(b":12345678\r\n");
    }
    let longer: &'static [u8] = longer.leak();
    check(&first, rewrite_with(longer), "Array([Integer(12345678), ");
    check(&first, replace_with(longer), "Array([Integer(12345678), ");
    // As long: the same header with leading zeros and half the count, so the elements
    // already there complete it.
    let mut same = first.clone();
    same[1..7].copy_from_slice(b"050000");
    let same: &'static [u8] = same.leak();
    check(
        &first,
        rewrite_with(same),
        r#"Array([BulkString(b"hello"), "#,
    );
    // As long, every element another type of the same size: still incomplete, and then
    // an element the old scan would have taken as a payload.
    let mut other = b"*100000\r\n".to_vec();
    for _ in 0..50_000 {
        other.extend_from_slice(b"+hello_wo\r\n");
    }
    let other: &'static [u8] = other.leak();
    check(&first, rewrite_with(other), "need more");
    let mut bad = other.to_vec();
    bad[22] = b'\n';
    let bad: &'static [u8] = bad.leak();
    check(&first, rewrite_with(bad), "error: expected CRLF at byte 22");
    // As long, one payload byte changed in the middle: the value holds the new byte.
    let at = first.len() / 2;
    let mut one = first.clone();
    let payload = (at..).find(|&i| one[i] == b'h').expect("a payload");
    one[payload] = b'J';
    one.extend_from_slice(&b"$5\r\nhello\r\n".repeat(50_000));
    let one: &'static [u8] = one.leak();
    for kind in KINDS {
        let (mut d, mut buf) = started(kind, &first);
        buf[payload] = b'J';
        buf.extend_from_slice(&one[first.len()..]);
        let v = d.decode(&mut buf).expect("valid").expect("complete");
        let Value::Array(items) = v else {
            panic!("{kind:?}: not an array")
        };
        assert_eq!(items.len(), 100_000);
        let changed: Vec<_> = items
            .iter()
            .filter(|i| i.as_bytes().map(|b| &b[..]) == Some(b"Jello"))
            .collect();
        assert_eq!(changed.len(), 1, "{kind:?}");
    }
}

#[test]
fn replaced_in_the_middle_of_a_large_bulk_string() {
    let first = half_bulk();
    check(
        &first,
        rewrite_with(b"$3\r\nabc\r\n"),
        r#"BulkString(b"abc")"#,
    );
    check(
        &first,
        replace_with(b"$3\r\nabc\r\n"),
        r#"BulkString(b"abc")"#,
    );
    // The same header, now complete at a shorter length: as long as before, with another
    // length in the header whose payload is already there.
    let mut same = first.clone();
    same[1..8].copy_from_slice(b"0000010");
    same[20..22].copy_from_slice(b"\r\n");
    let same: &'static [u8] = same.leak();
    check(&first, rewrite_with(same), r#"BulkString(b"zzzzzzzzzz")"#);
    // Longer: another bulk string, complete.
    let mut longer = b"$600000\r\n".to_vec();
    longer.resize(longer.len() + 600_000, b'y');
    longer.extend_from_slice(b"\r\n");
    let longer: &'static [u8] = longer.leak();
    check(&first, replace_with(longer), r#"BulkString(b"yyyy"#);
    check(&first, rewrite_with(longer), r#"BulkString(b"yyyy"#);
    // As long, another type.
    let mut other = vec![b'+'; 1];
    other.resize(first.len(), b'a');
    let other: &'static [u8] = other.leak();
    check(&first, rewrite_with(other), "need more");
}

/// The one change the fast decoder cannot see without reading everything again: bytes
/// rewritten in place in the middle of the part already scanned, the length and every
/// byte it samples unchanged. It may then answer "need more" for a value that is already
/// complete, until more bytes arrive or `reset` is called; it never gives a wrong value.
#[test]
fn a_rewrite_in_place_out_of_sight_is_caught_by_the_next_bytes_or_reset() {
    let mut first = b"*4\r\n+".to_vec();
    first.extend_from_slice(&[b'a'; 24]);
    first.extend_from_slice(b"\r\n:123\r\n+");
    first.extend_from_slice(&[b'c'; 40]);
    first.extend_from_slice(b"\r\n+");
    first.extend_from_slice(&[b'd'; 40]);
    let element = first
        .windows(6)
        .position(|w| w == b":123\r\n")
        .expect("there");
    // `:123\r\n` becomes two elements, `_\r\n_\r\n`: the array now ends before the `d`s.
    let rewrite = |buf: &mut BytesMut| buf[element..element + 6].copy_from_slice(b"_\r\n_\r\n");
    let expected = "Array([SimpleString(b\"aaaaaaaaaaaaaaaaaaaaaaaa\"), Nil, Nil, SimpleString(";

    // The frame splitter shares the fast decoder's scan, and so its one limit.
    for kind in [Kind::Fast, Kind::Splitter] {
        let (mut d, mut buf) = started(kind, &first);
        rewrite(&mut buf);
        assert!(fresh(&buf).0.starts_with(expected));
        // The documented limit of the contract: the rewrite is not seen yet.
        assert_eq!(show(&d.decode(&mut buf)), "need more", "{kind:?}");
        d.reset();
        assert!(show(&d.decode(&mut buf)).starts_with(expected), "{kind:?}");

        // Without `reset`, the next bytes bring it back in step: the value is built (the
        // frame's end confirmed) from the bytes now there, never from what was scanned
        // before.
        let (mut d, mut buf) = started(kind, &first);
        rewrite(&mut buf);
        assert_eq!(show(&d.decode(&mut buf)), "need more", "{kind:?}");
        buf.extend_from_slice(b"\r\n");
        assert!(show(&d.decode(&mut buf)).starts_with(expected), "{kind:?}");
        assert_eq!(&buf[..], &[&[b'+'][..], &[b'd'; 40], b"\r\n"].concat()[..]);
    }

    // The reference decoder keeps no place, so it sees the rewrite at once.
    let (mut d, mut buf) = started(Kind::Reference, &first);
    rewrite(&mut buf);
    assert!(show(&d.decode(&mut buf)).starts_with(expected));
}

/// Rewrites out of the fingerprint's sight that break an element the scan accepted in an
/// earlier call: when the frame completes, the build checks every item again, so the
/// answer is the error a new decoder gives, never a value of the old shape.
#[test]
fn rewrites_out_of_sight_never_give_a_wrong_value() {
    let cases: [(&[u8], &[u8], &str); 7] = [
        (
            b"$5\r\nhello\r\n",
            b"$5\r\nhelloXY",
            "error: expected CRLF at byte 36",
        ),
        (b"#t\r\n", b"#x\r\n", "error: invalid boolean at byte 28"),
        (b":12\r\n", b":1x\r\n", "error: invalid integer at byte 28"),
        (b",1.5\r\n", b",1.x\r\n", "error: invalid double at byte 28"),
        (
            b"(12\r\n",
            b"(1a\r\n",
            "error: invalid big number at byte 28",
        ),
        (
            b"=8\r\ntxt:abcd\r\n",
            b"=8\r\ntxt;abcd\r\n",
            "error: invalid verbatim string at byte 31",
        ),
        (b"_\r\n", b"_x\n", "error: expected CRLF at byte 29"),
    ];
    for (element, rewritten, expected) in cases {
        let mut first = b"*4\r\n+".to_vec();
        first.extend_from_slice(&[b'a'; 20]);
        first.extend_from_slice(b"\r\n");
        let at = first.len();
        first.extend_from_slice(element);
        first.push(b'+');
        first.extend_from_slice(&[b'c'; 40]);
        first.extend_from_slice(b"\r\n+");
        first.extend_from_slice(&[b'd'; 40]);
        for kind in KINDS {
            let (mut d, mut buf) = started(kind, &first);
            buf[at..at + element.len()].copy_from_slice(rewritten);
            let mut got = show(&d.decode(&mut buf));
            if got == "need more" {
                // Not seen yet (the documented limit); the next bytes complete the frame.
                buf.extend_from_slice(b"\r\n");
                got = show(&d.decode(&mut buf));
            }
            assert_eq!(got, fresh(&buf).0, "{kind:?} on {element:?}");
            assert_eq!(got, expected, "{kind:?} on {element:?}");
        }
    }
}

/// Random streams, fed in random pieces, with random clears, truncations, replacements and
/// rewrites between calls: every call must give what a new decoder gives.
#[test]
fn random_changes_between_calls() {
    let mut rng = Rng::new(15);
    let tight = Limits {
        max_bulk_len: 64,
        max_aggregate_len: 8,
        max_depth: 5,
        max_line_len: 32,
        max_reply_bytes: 200,
        max_reply_elements: 12,
        resp3: true,
    };
    let mut total = common::ChangeStats::default();
    for case in 0..3000 {
        let stream = |rng: &mut Rng| {
            let mut out = BytesMut::new();
            for _ in 0..1 + rng.below(4) {
                encode_streamy(&mut out, &random_value(rng, 4), rng);
            }
            out.to_vec()
        };
        let input = if case % 5 == 1 {
            // RESP-looking noise, so that errors and their offsets are checked too.
            let alphabet = b"+-:$*%~|>_#,(!=.?;\r\n\r\n0123456789-tfx";
            (0..rng.below(64))
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect()
        } else {
            stream(&mut rng)
        };
        let other = if case % 4 == 0 {
            // A mutated copy: the same start, so only a closer look tells them apart.
            let mut o = input.clone();
            if !o.is_empty() {
                let at = rng.below(o.len());
                o[at] = b"\r\n:$*.0123"[rng.below(10)];
            }
            o
        } else {
            stream(&mut rng)
        };
        let limits = if case % 3 == 0 {
            tight
        } else {
            Limits::default()
        };
        for kind in KINDS {
            let s = decode_with_changes(kind, limits, &input, &other, &mut rng);
            total.changes += s.changes;
            total.checked += s.checked;
            total.missed_rewrites += s.missed_rewrites;
            if kind == Kind::Reference {
                assert_eq!(s.missed_rewrites, 0, "the reference decoder keeps no place");
            }
        }
    }
    assert!(total.changes > 5_000, "{total:?}");
    // Rewrites out of the fingerprint's sight are possible but must stay rare.
    assert!(total.missed_rewrites * 100 < total.changes, "{total:?}");
}
