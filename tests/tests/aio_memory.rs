//! What the async client holds of a large value while sending it: the command's own
//! storage, once, measured by a counting allocator (this test binary's only test, so no
//! other test's allocations are counted).

use redis_client::aio::Redis;
use redis_client::prelude::*;
use redis_client::ConnectionInfo;
use redis_tests::{FakeConn, FakeServer, TestServer};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Counts the bytes allocated now and the most at any moment since the last reset.
struct Counting;

static NOW: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are
// added.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = NOW.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        NOW.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            let now = NOW.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size
                - layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        } else {
            NOW.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const SIZE: usize = 32 << 20;

/// The most the client allocated beyond `baseline` while `set` of a `SIZE` value ran.
async fn extra_peak(r: &Redis, value: &[u8]) -> usize {
    let baseline = NOW.load(Ordering::Relaxed);
    PEAK.store(baseline, Ordering::Relaxed);
    r.set("big", value).await.unwrap();
    PEAK.load(Ordering::Relaxed) - baseline
}

#[tokio::test(flavor = "current_thread")]
async fn a_large_set_holds_its_value_once() {
    let server = TestServer::start();
    let value = vec![7u8; SIZE];
    // The connection opens while the request waits: the first SET connects.
    let r = Redis::from_info(ConnectionInfo::tcp("127.0.0.1", server.port()));
    let first = extra_peak(&r, &value).await;
    // And on an open connection.
    let second = extra_peak(&r, &value).await;
    for (when, extra) in [("connecting", first), ("connected", second)] {
        assert!(
            extra < SIZE + SIZE / 4,
            "{when}: {extra} bytes allocated for a {SIZE}-byte value"
        );
    }
    assert_eq!(r.strlen("big").await.unwrap(), SIZE as i64);

    // A server slow to answer the handshake: the request waits longest there. (It drops
    // what it reads, since it allocates in this process too.)
    let slow = FakeServer::start(|mut c: FakeConn| {
        std::thread::sleep(Duration::from_millis(200));
        if c.read_any_request().is_some() {
            c.write(b"+PONG\r\n");
        }
        let head = format!("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n${SIZE}\r\n");
        if c.discard(head.len() + SIZE + 2) {
            c.write(b"+OK\r\n");
        }
        c.hold(Duration::from_secs(5));
    });
    let r = Redis::from_info(ConnectionInfo::tcp("127.0.0.1", slow.port()));
    let extra = extra_peak(&r, &value).await;
    assert!(
        extra < SIZE + SIZE / 4,
        "slow handshake: {extra} bytes allocated for a {SIZE}-byte value"
    );
}
