//! Allocation counts of the fast decoder, with a counting global allocator: an array of N
//! bulk strings costs the same few allocations whatever N is (the array, not N strings),
//! and a declared huge length reserves nothing. The peak of live bytes shows that an
//! endless streamed reply is refused at the reply limit with bounded memory.

// A global allocator can only be written with `unsafe`; it forwards to `System` unchanged.
#![allow(unsafe_code)]

use bytes::BytesMut;
use resp_proto::{
    encode_value, AnyDecoder, Decode, Decoder, DecoderKind, Limits, ProtocolErrorKind, Value,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    // Per thread, so tests running in parallel do not count each other's allocations.
    static COUNT: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
    // Bytes live now and their highest mark, on this thread.
    static LIVE: Cell<(isize, isize)> = const { Cell::new((0, 0)) };
}

fn note(size: usize) {
    let _ = COUNT.try_with(|c| {
        let (n, bytes) = c.get();
        c.set((n + 1, bytes + size));
    });
}

fn live(delta: isize) {
    let _ = LIVE.try_with(|c| {
        let (now, peak) = c.get();
        c.set((now + delta, peak.max(now + delta)));
    });
}

// SAFETY: every call forwards to `System` with the caller's arguments, so `System`'s
// guarantees hold; the counting touches only a const-initialised thread local.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        live(layout.size() as isize);
        // SAFETY: forwarded unchanged, see the impl.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        live(-(layout.size() as isize));
        // SAFETY: forwarded unchanged, see the impl.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        live(new_size as isize - layout.size() as isize);
        // SAFETY: forwarded unchanged, see the impl.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Allocations (count, bytes) made by `f` on this thread.
fn allocations<T>(f: impl FnOnce() -> T) -> ((usize, usize), T) {
    let before = COUNT.with(Cell::get);
    let out = f();
    let after = COUNT.with(Cell::get);
    ((after.0 - before.0, after.1 - before.1), out)
}

/// The most bytes live at once on this thread while `f` runs, above those live before.
fn peak<T>(f: impl FnOnce() -> T) -> (usize, T) {
    let (before, _) = LIVE.with(Cell::get);
    LIVE.with(|c| c.set((before, before)));
    let out = f();
    let (_, peak) = LIVE.with(Cell::get);
    ((peak - before).max(0) as usize, out)
}

/// Feeds `head` and then `item` over and over, in reads of `read` bytes, to a decoder of
/// `kind` until it fails (or `max_fed` bytes went in): the error's kind, the bytes fed
/// when it came, and the peak of live bytes meanwhile (the read buffer included).
fn feed_endless(
    kind: DecoderKind,
    limits: Limits,
    head: &[u8],
    item: &[u8],
    read: usize,
    max_fed: usize,
) -> (Option<ProtocolErrorKind>, usize, usize) {
    let mut stream = head.to_vec();
    while stream.len() < head.len() + item.len() + read {
        stream.extend_from_slice(item);
    }
    let (peak, (err, fed)) = peak(|| {
        let mut d = AnyDecoder::new(kind, limits);
        let mut buf = BytesMut::new();
        let mut fed = 0;
        // The head once, then reads that continue the items where the last one stopped.
        let mut at = 0;
        while fed < max_fed {
            let piece = &stream[at..at + read];
            buf.extend_from_slice(piece);
            fed += read;
            at += read;
            if at + read > stream.len() {
                at = head.len() + (at - head.len()) % item.len();
            }
            match d.decode(&mut buf) {
                Ok(None) => {}
                Ok(Some(v)) => panic!("{kind:?}: an endless reply ended: {v:?}"),
                Err(e) => return (Some(e.kind().clone()), fed),
            }
        }
        (None, fed)
    });
    (err, fed, peak)
}

#[test]
fn an_endless_streamed_aggregate_fails_at_the_reply_limit_with_bounded_memory() {
    const MIB: usize = 1 << 20;
    let limits = Limits {
        max_reply_bytes: MIB,
        ..Limits::default()
    };
    let read = 64 * 1024;
    for kind in [DecoderKind::Fast, DecoderKind::Reference] {
        let (err, fed, peak) = feed_endless(kind, limits, b"*?\r\n", b":1\r\n", read, 64 * MIB);
        assert_eq!(
            err,
            Some(ProtocolErrorKind::ReplyTooLong { limit: MIB }),
            "{kind:?}"
        );
        // Refused in the read that passed the limit, not at the end.
        assert!(fed <= MIB + read, "{kind:?}: {fed} bytes fed");
        // The read buffer (which doubles as it grows), plus for the reference decoder the
        // values of each call's parse: nothing grows with what the peer keeps sending.
        let values = (MIB / 4) * std::mem::size_of::<Value>() * 2;
        let bound = match kind {
            DecoderKind::Fast => 3 * MIB,
            DecoderKind::Reference => 3 * MIB + values,
        };
        assert!(peak < bound, "{kind:?}: peak {peak} bytes");
    }
}

#[test]
fn an_endless_streamed_string_fails_at_the_string_or_the_reply_limit() {
    const MIB: usize = 1 << 20;
    let read = 16 * 1024;
    let chunk = [b";1024\r\n".as_slice(), &[b'x'; 1024], b"\r\n"].concat();
    let limits = Limits {
        max_bulk_len: MIB / 4,
        ..Limits::default()
    };
    for kind in [DecoderKind::Fast, DecoderKind::Reference] {
        // Large chunks: the string limit comes first, counted as each chunk's header
        // arrives.
        let (err, fed, peak) = feed_endless(kind, limits, b"$?\r\n", &chunk, read, 64 * MIB);
        assert_eq!(
            err,
            Some(ProtocolErrorKind::BulkTooLong {
                len: (MIB / 4 + 1024) as u64,
                limit: MIB / 4
            }),
            "{kind:?}"
        );
        assert!(
            fed <= MIB / 4 + MIB / 64 + read,
            "{kind:?}: {fed} bytes fed"
        );
        assert!(peak < 2 * MIB, "{kind:?}: peak {peak} bytes");
        // One-byte chunks: seven bytes of input per byte of string, so the reply limit
        // comes first.
        let tiny = Limits {
            max_reply_bytes: MIB,
            ..Limits::default()
        };
        let (err, fed, peak) = feed_endless(kind, tiny, b"$?\r\n", b";1\r\nx\r\n", read, 64 * MIB);
        assert_eq!(
            err,
            Some(ProtocolErrorKind::ReplyTooLong { limit: MIB }),
            "{kind:?}"
        );
        assert!(fed <= MIB + read, "{kind:?}: {fed} bytes fed");
        assert!(peak < 4 * MIB, "{kind:?}: peak {peak} bytes");
    }
}

#[test]
fn a_plain_array_over_the_element_limit_is_refused_from_its_header() {
    let limits = Limits {
        max_aggregate_len: 1000,
        ..Limits::default()
    };
    for kind in [DecoderKind::Fast, DecoderKind::Reference] {
        let mut buf = BytesMut::from(&b"*1001\r\n:1\r\n"[..]);
        let ((count, _), r) = allocations(|| AnyDecoder::new(kind, limits).decode(&mut buf));
        let e = r.expect_err("over the limit");
        assert_eq!(
            e.kind(),
            &ProtocolErrorKind::AggregateTooLong {
                len: 1001,
                limit: 1000
            }
        );
        assert_eq!(e.offset(), 1);
        assert!(count <= 1, "{kind:?}: {count} allocations");
    }
}

fn array_of_bulks(n: usize) -> BytesMut {
    let mut out = BytesMut::new();
    let item = Value::BulkString(vec![b'x'; 100].into());
    encode_value(&mut out, &Value::Array(vec![item; n]));
    out
}

#[test]
fn array_of_n_bulk_strings_allocates_the_array_only() {
    let mut counts = Vec::new();
    for n in [1, 10, 1_000, 10_000] {
        let mut buf = array_of_bulks(n);
        let mut decoder = Decoder::new();
        let ((count, _), value) = allocations(|| decoder.decode(&mut buf));
        let value = value.expect("valid").expect("complete");
        assert!(matches!(&value, Value::Array(items) if items.len() == n));
        counts.push(count);
    }
    // The array's Vec, the buffer turning shared when the frame is split off, and the
    // decoder's two reusable stacks on first use: the same for every N.
    assert!(counts.iter().all(|&c| c == counts[0]), "{counts:?}");
    assert!(counts[0] <= 4, "{counts:?}");
}

#[test]
fn a_reused_decoder_allocates_only_the_array_and_the_split() {
    let mut decoder = Decoder::new();
    let mut buf = array_of_bulks(3);
    decoder.decode(&mut buf).expect("valid").expect("complete");
    let mut buf = array_of_bulks(5_000);
    let ((count, _), value) = allocations(|| decoder.decode(&mut buf));
    value.expect("valid").expect("complete");
    assert!(count <= 2, "{count}");
}

#[test]
fn declared_huge_lengths_reserve_nothing() {
    let mut decoder = Decoder::new();
    // Just under the 512 MiB bulk limit, with a few bytes of payload at hand.
    let mut buf = BytesMut::from(&b"$536870911\r\nabc"[..]);
    let ((count, _), r) = allocations(|| decoder.decode(&mut buf));
    assert_eq!(r, Ok(None));
    assert_eq!(count, 0);

    // Over the limit: refused, nothing reserved.
    let mut buf = BytesMut::from(&b"$536870913\r\n"[..]);
    let ((count, _), r) = allocations(|| Decoder::new().decode(&mut buf));
    assert!(r.is_err());
    assert_eq!(count, 0);

    // The most elements the default limit allows, three present: only the scan's small
    // stack grows.
    let mut decoder = Decoder::new();
    let mut buf = BytesMut::from(&b"*16777216\r\n:1\r\n:2\r\n:3\r\n"[..]);
    let ((_, bytes), r) = allocations(|| decoder.decode(&mut buf));
    assert_eq!(r, Ok(None));
    assert!(bytes < 1024, "{bytes} bytes reserved");

    // Nested declarations at every level, with no bound on a reply's elements: still
    // bounded by the bytes at hand.
    let mut input = Vec::new();
    for _ in 0..100 {
        input.extend_from_slice(b"%16777216\r\n");
    }
    let unbounded = resp_proto::Limits {
        max_reply_elements: usize::MAX,
        ..resp_proto::Limits::default()
    };
    let mut buf = BytesMut::from(&input[..]);
    let ((_, bytes), r) = allocations(|| Decoder::with_limits(unbounded).decode(&mut buf));
    assert_eq!(r, Ok(None));
    assert!(bytes < 16 * 1024, "{bytes} bytes reserved");
    // By default the first header already declares more than one reply may hold.
    let mut buf = BytesMut::from(&input[..]);
    let ((count, _), r) = allocations(|| Decoder::new().decode(&mut buf));
    assert_eq!(
        r.map_err(|e| e.kind().clone()),
        Err(resp_proto::ProtocolErrorKind::TooManyElements { limit: 1 << 24 })
    );
    assert_eq!(count, 0);
}
