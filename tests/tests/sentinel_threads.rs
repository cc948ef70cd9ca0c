//! The Sentinel client's background threads end with the last handle (alone in its test
//! binary, since it counts the process's threads).

use redis_client::prelude::*;
use redis_client::Sentinel;
use redis_tests::{SentinelSet, SENTINEL_SERVICE};
use std::time::{Duration, Instant};

/// Threads of this process whose name starts with `sentinel-`.
fn sentinel_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("sentinel-"))
        .count()
}

#[test]
fn threads_end_when_the_sentinel_and_its_clients_are_dropped() {
    let set = SentinelSet::start();
    let sentinel = Sentinel::builder(set.sentinel_urls(), SENTINEL_SERVICE)
        .unwrap()
        .build();
    let primary = sentinel.primary();
    assert!(primary.set("k", 1).unwrap());
    // One per sentinel, and the refresher (a thread names itself once it runs).
    let deadline = Instant::now() + Duration::from_secs(5);
    while sentinel_threads() < 4 {
        assert!(Instant::now() < deadline, "threads not started");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(sentinel_threads(), 4);
    drop(sentinel);
    // A client keeps them alive: it still follows failovers.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sentinel_threads(), 4);
    drop(primary);
    let deadline = Instant::now() + Duration::from_secs(5);
    while sentinel_threads() > 0 {
        assert!(Instant::now() < deadline, "threads still running");
        std::thread::sleep(Duration::from_millis(20));
    }
}
