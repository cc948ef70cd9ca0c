//! The cache's invalidation thread ends once the client is gone. A file of its own: the
//! check counts this process's threads by name, which other tests running alongside
//! would disturb.

use redis_client::{CacheOptions, Redis};
use redis_tests::TestServer;
use std::time::{Duration, Instant};

/// Threads of this process named as the invalidation thread (names are cut to 15 bytes).
fn invalidation_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == "redis-cache-inv")
        .count()
}

#[test]
fn the_invalidation_thread_ends_with_the_client() {
    let server = TestServer::start();
    let r = Redis::open(&server.url())
        .unwrap()
        .with_cache(CacheOptions::default());
    let clone = r.clone();
    let cache = r.cache().unwrap();
    let start = Instant::now();
    while cache.invalidation_client_id().is_none() {
        assert!(start.elapsed() < Duration::from_secs(2));
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(invalidation_threads(), 1);
    drop((r, cache));
    std::thread::sleep(Duration::from_millis(300));
    // A clone keeps it alive.
    assert_eq!(invalidation_threads(), 1);
    drop(clone);
    let start = Instant::now();
    while invalidation_threads() > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "the thread outlived the client"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Its connection is closed too: only this check's connection remains.
    let clients = server.raw(&["CLIENT", "LIST"]);
    assert_eq!(
        clients.lines().filter(|l| l.contains("id=")).count(),
        1,
        "{clients}"
    );
}
