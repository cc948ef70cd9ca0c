//! The client-side cache's byte budget against the memory it really takes: the resident
//! memory a process gains while its cache fills to `max_bytes` (and keeps evicting) is
//! within 20% of what `Cache::stats().bytes` counts, for small (16-byte) and large
//! (64 KiB) values (docs/caching.md, "Bounded memory").
//!
//! Resident memory is read from `/proc/self/statm`. Each case runs in a process of its own
//! (the test binary started again for that one case), so memory another case freed, which
//! the allocator keeps, does not hide what this one takes.

use redis_client::prelude::*;
use redis_client::{CacheOptions, ConnectionInfo, Protocol, Redis};
use redis_tests::TestServer;
use std::process::Command;
use std::time::{Duration, Instant};

/// Set in the process that runs one case.
const CASE: &str = "REDIS_TESTS_CACHE_MEMORY_CASE";

/// Resident bytes of this process.
fn resident() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("procfs");
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("resident pages");
    pages * 4096
}

/// Runs `test` (this binary's test of that name) in a process of its own, where `case`
/// measures; fails if it fails.
fn in_own_process(test: &str, case: impl FnOnce()) {
    if std::env::var_os(CASE).is_some() {
        case();
        return;
    }
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CASE, "1")
        .output()
        .expect("test binary runs");
    let text = String::from_utf8_lossy(&out.stderr);
    eprintln!("{text}");
    assert!(out.status.success(), "{test} failed in its own process");
    assert!(text.contains("cache memory:"), "the case ran");
}

/// Fills a cache of `budget` bytes by reading `keys` keys holding `value_len` bytes each,
/// and compares the resident memory gained with what the cache counts.
fn measure(value_len: usize, budget: usize, keys: usize) {
    let server = TestServer::start();
    // Written by the server itself: a client writing them would leave freed memory the
    // allocator hands to the cache later, unseen by the resident count.
    let writer = Redis::open(&server.url()).unwrap();
    writer
        .eval(
            "for i = 0, tonumber(ARGV[1]) - 1 do \
               redis.call('SET', 'key:' .. i, string.rep('v', tonumber(ARGV[2]))) \
             end",
            &[] as &[&str],
            (keys, value_len),
        )
        .unwrap();
    let names: Vec<String> = (0..keys).map(|i| format!("key:{i}")).collect();
    let r = Redis::from_info(
        ConnectionInfo::tcp("127.0.0.1", server.port()).with_protocol(Protocol::Resp3),
    )
    .with_cache(
        CacheOptions::default()
            .with_max_entries(usize::MAX)
            .with_max_bytes(budget),
    );
    let cache = r.cache().unwrap();
    let start = Instant::now();
    while cache.invalidation_client_id().is_none() {
        assert!(start.elapsed() < Duration::from_secs(5), "caching started");
        std::thread::sleep(Duration::from_millis(2));
    }
    // The data connection and its buffers, before measuring.
    r.get("warm-up").unwrap();
    let before = resident();
    for name in &names {
        r.get(name).unwrap();
    }
    let gained = resident().saturating_sub(before);
    let stats = cache.stats();
    eprintln!(
        "cache memory: {value_len}-byte values, budget {budget}: {} entries, {} bytes counted, \
         {gained} resident bytes gained ({} and {} per entry)",
        stats.entries,
        stats.bytes,
        stats.bytes / stats.entries.max(1),
        gained / stats.entries.max(1)
    );
    assert!(stats.evictions > 0, "filled past the budget: {stats:?}");
    assert!(stats.bytes <= budget, "{stats:?}");
    let off = stats.bytes.abs_diff(gained);
    assert!(
        off * 5 <= gained,
        "{} bytes counted, {gained} resident: off by {}%",
        stats.bytes,
        off * 100 / gained.max(1)
    );
}

#[test]
fn the_budget_counts_what_small_values_take() {
    in_own_process("the_budget_counts_what_small_values_take", || {
        measure(16, 8 << 20, 40_000)
    });
}

#[test]
fn the_budget_counts_what_large_values_take() {
    in_own_process("the_budget_counts_what_large_values_take", || {
        measure(64 << 10, 16 << 20, 400)
    });
}
