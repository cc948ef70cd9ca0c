//! Memory accounting for the runs: a counting allocator the simulation's binaries install
//! (`#[global_allocator]`), which keeps, per thread, the bytes live now and their highest
//! mark, so a run (which lives on one thread) can check that no reply took more than the
//! limits allow.
//!
//! A global allocator can only be written with `unsafe`; this one forwards every call to
//! the system allocator unchanged.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    // Per thread, so runs on parallel test threads do not count each other's bytes.
    static LIVE: Cell<(isize, isize)> = const { Cell::new((0, 0)) };
}

fn note(delta: isize) {
    let _ = LIVE.try_with(|c| {
        let (now, peak) = c.get();
        c.set((now + delta, peak.max(now + delta)));
    });
}

/// The counting allocator: install it with
/// `#[global_allocator] static A: redis_sim::memory::Counting = redis_sim::memory::Counting;`.
#[derive(Debug)]
pub struct Counting;

// SAFETY: every call forwards to `System` with the caller's arguments, so `System`'s
// guarantees hold; the counting touches only a const-initialised thread local.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as isize);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(-(layout.size() as isize));
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as isize);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size as isize - layout.size() as isize);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Starts a new highest mark on this thread at the bytes live now; returns them.
pub fn reset_peak() -> isize {
    LIVE.with(|c| {
        let (now, _) = c.get();
        c.set((now, now));
        now
    })
}

/// The most bytes live on this thread since [`reset_peak`] (0 without the counting
/// allocator installed).
pub fn peak() -> isize {
    LIVE.with(|c| c.get().1)
}

/// Whether the counting allocator is installed (it has counted anything).
pub fn counting() -> bool {
    let probe = Box::new(0u64);
    let before = LIVE.with(|c| c.get().0);
    drop(probe);
    LIVE.with(|c| c.get().0) != before
}
