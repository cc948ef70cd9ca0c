//! Allocation counts of the fast decoder, with a counting global allocator: an array of N
//! bulk strings costs the same few allocations whatever N is (the array, not N strings),
//! and a declared huge length reserves nothing.

// A global allocator can only be written with `unsafe`; it forwards to `System` unchanged.
#![allow(unsafe_code)]

use bytes::BytesMut;
use resp_proto::{encode_value, Decode, Decoder, Value};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    // Per thread, so tests running in parallel do not count each other's allocations.
    static COUNT: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

fn note(size: usize) {
    let _ = COUNT.try_with(|c| {
        let (n, bytes) = c.get();
        c.set((n + 1, bytes + size));
    });
}

// SAFETY: every call forwards to `System` with the caller's arguments, so `System`'s
// guarantees hold; the counting touches only a const-initialised thread local.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded unchanged, see the impl.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged, see the impl.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
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

    // Nested declarations at every level: still bounded by the bytes at hand.
    let mut input = Vec::new();
    for _ in 0..100 {
        input.extend_from_slice(b"%16777216\r\n");
    }
    let mut buf = BytesMut::from(&input[..]);
    let ((_, bytes), r) = allocations(|| Decoder::new().decode(&mut buf));
    assert_eq!(r, Ok(None));
    assert!(bytes < 16 * 1024, "{bytes} bytes reserved");
}
