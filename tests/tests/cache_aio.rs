//! Client-side caching on the async client: reads served from memory, another client's
//! writes seen once acknowledged and settled (RESP2 and RESP3), the invalidation
//! connection killed mid-run, this client's own writes (direct and pipelined) read back
//! at once, and a read dropped part way leaving nothing behind.

use redis_client::aio::Redis;
use redis_client::prelude::*;
use redis_client::{Cache, CacheOptions, ConnectionInfo, Protocol, Value};
use redis_tests::TestServer;
use std::time::{Duration, Instant};

/// How long an invalidation may take to arrive after the write was acknowledged.
const SETTLE: Duration = Duration::from_secs(2);

async fn wait_tracking(cache: &Cache) -> i64 {
    let start = Instant::now();
    loop {
        if let Some(id) = cache.invalidation_client_id() {
            return id;
        }
        assert!(start.elapsed() < SETTLE, "invalidation connection not up");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn cached(server: &TestServer, protocol: Protocol) -> (Redis, Cache) {
    let info = ConnectionInfo::tcp("127.0.0.1", server.port()).with_protocol(protocol);
    let r = Redis::from_info(info).with_cache(CacheOptions::default());
    let cache = r.cache().expect("cache on");
    wait_tracking(&cache).await;
    (r, cache)
}

async fn read_until(r: &Redis, key: &str, want: &[u8]) {
    let start = Instant::now();
    while r.get(key).await.unwrap().as_deref() != Some(want) {
        assert!(start.elapsed() < SETTLE, "{key} not updated");
        tokio::task::yield_now().await;
    }
}

async fn no_stale_reads(protocol: Protocol, writes: usize, kill_at: Option<usize>) {
    const KEYS: usize = 8;
    let server = TestServer::start();
    let (r, cache) = cached(&server, protocol).await;
    let writer = Redis::open(&server.url()).unwrap();
    let mut current: Vec<Vec<u8>> = (0..KEYS).map(|k| format!("i{k}").into_bytes()).collect();
    for (k, v) in current.iter().enumerate() {
        writer.set(format!("k{k}"), v.as_slice()).await.unwrap();
    }
    for i in 0..writes {
        if kill_at == Some(i) {
            let id = wait_tracking(&cache).await;
            let killed = writer
                .execute_command(("CLIENT", "KILL", "ID", id))
                .await
                .unwrap();
            assert_eq!(killed, Value::Integer(1));
        }
        let k = i % KEYS;
        let value = format!("v{i}").into_bytes();
        writer.set(format!("k{k}"), value.as_slice()).await.unwrap();
        current[k] = value;
        read_until(&r, &format!("k{k}"), &current[k]).await;
        let j = (k + 3) % KEYS;
        let got = r.get(format!("k{j}")).await.unwrap();
        assert_eq!(
            got.as_deref(),
            Some(current[j].as_slice()),
            "k{j} at write {i}"
        );
    }
    let stats = cache.stats();
    eprintln!("{protocol:?}: {stats:?}");
    assert!(stats.hits > writes as u64, "{stats:?}");
    assert!(stats.invalidations > 0, "{stats:?}");
}

#[tokio::test]
async fn no_stale_read_over_resp2_and_resp3() {
    no_stale_reads(Protocol::Resp2, 2_000, None).await;
    no_stale_reads(Protocol::Resp3, 2_000, None).await;
}

/// As the blocking client's test (`cache.rs`): the invalidation connection goes silent
/// without closing (a proxy holds it open and forwards nothing) while another client
/// writes new versions of a key; no read is stale longer than the health check's interval
/// plus its timeout (plus scheduling slack) after the write it missed was acknowledged,
/// and caching resumes on a new invalidation connection.
async fn a_silent_invalidation_connection(protocol: Protocol) {
    let defaults = CacheOptions::default();
    let bound = defaults.ping_interval + defaults.ping_timeout;
    let server = TestServer::start();
    let proxy = redis_tests::FaultProxy::start(server.port());
    let r =
        Redis::from_info(ConnectionInfo::tcp("127.0.0.1", proxy.port()).with_protocol(protocol))
            .with_cache(defaults);
    let cache = r.cache().unwrap();
    let id = wait_tracking(&cache).await;
    let writer = Redis::open(&server.url()).unwrap();
    writer.set("k", 0).await.unwrap();
    assert_eq!(r.get("k").await.unwrap().as_deref(), Some(&b"0"[..]));
    let clients = writer.client_list_ids(&[id as u64]).await.unwrap();
    let addr = clients[0].addr().unwrap().to_owned();
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    assert!(proxy.stall_connection_from(port));
    let stalled = Instant::now();
    let mut acked: Vec<Instant> = vec![stalled];
    let (mut stale_reads, mut worst) = (0, Duration::ZERO);
    let mut version = 0u64;
    while stalled.elapsed() < Duration::from_millis(4_500) {
        version += 1;
        writer.set("k", version).await.unwrap();
        acked.push(Instant::now());
        for _ in 0..5 {
            let got: u64 = std::str::from_utf8(&r.get("k").await.unwrap().unwrap())
                .unwrap()
                .parse()
                .unwrap();
            if got < version {
                stale_reads += 1;
                worst = worst.max(acked[got as usize + 1].elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    eprintln!(
        "{protocol:?}: {stale_reads} stale reads, the worst {worst:?} after its write; {:?}",
        cache.stats()
    );
    assert!(
        stale_reads > 0,
        "the stall made reads stale until it was noticed"
    );
    assert!(
        worst <= bound + Duration::from_millis(700),
        "a read stale {worst:?} after its write, past the bound of {bound:?}"
    );
    assert_ne!(
        wait_tracking(&cache).await,
        id,
        "a new invalidation connection"
    );
    let hits = cache.stats().hits;
    let want = version.to_string();
    assert_eq!(r.get("k").await.unwrap().unwrap(), want.as_bytes());
    assert_eq!(r.get("k").await.unwrap().unwrap(), want.as_bytes());
    assert!(cache.stats().hits > hits, "served from memory again");
    writer.set("k", "after").await.unwrap();
    read_until(&r, "k", b"after").await;
}

#[tokio::test]
async fn a_silent_invalidation_connection_is_noticed_within_the_bound() {
    a_silent_invalidation_connection(Protocol::Resp2).await;
    a_silent_invalidation_connection(Protocol::Resp3).await;
}

#[tokio::test]
async fn no_stale_read_when_the_invalidation_connection_is_killed() {
    no_stale_reads(Protocol::Resp2, 1_000, Some(500)).await;
    no_stale_reads(Protocol::Resp3, 1_000, Some(500)).await;
}

/// What was read through a data connection the server closed is forgotten, even while
/// that connection sits idle in the pool (the server reports changes to those keys to
/// nobody once the connection is gone).
#[tokio::test]
async fn what_was_read_through_a_closed_data_connection_is_forgotten() {
    let server = TestServer::start();
    for protocol in [Protocol::Resp2, Protocol::Resp3] {
        let (r, cache) = cached(&server, protocol).await;
        let key = format!("closed-{protocol:?}");
        server.raw(&["SET", &key, "old"]);
        r.get(&key).await.unwrap();
        let hits = cache.stats().hits;
        assert_eq!(r.get(&key).await.unwrap().as_deref(), Some(&b"old"[..]));
        assert_eq!(cache.stats().hits, hits + 1, "served from memory");
        assert!(server.kill_tracking_clients() >= 1);
        server.raw(&["SET", &key, "new"]);
        read_until(&r, &key, b"new").await;
        assert!(cache.invalidation_client_id().is_some());
    }
}

#[tokio::test]
async fn own_writes_are_read_back_at_once_and_counted() {
    let server = TestServer::start();
    let (r, cache) = cached(&server, Protocol::Resp3).await;
    r.set("a", "1").await.unwrap();
    assert_eq!(r.get("a").await.unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(r.get("a").await.unwrap().as_deref(), Some(&b"1"[..]));
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.stored), (1, 1, 1));
    r.set("a", "2").await.unwrap();
    assert_eq!(r.get("a").await.unwrap().as_deref(), Some(&b"2"[..]));
    r.get("a").await.unwrap();
    let mut pipe = r.pipeline();
    pipe.set("a", "3");
    pipe.execute().await.unwrap();
    assert_eq!(r.get("a").await.unwrap().as_deref(), Some(&b"3"[..]));
    r.get("a").await.unwrap();
    r.execute_command(("SET", "a", "4")).await.unwrap();
    assert_eq!(r.get("a").await.unwrap().as_deref(), Some(&b"4"[..]));
    // The text mode reads through the same cache. A key not read before its write, so no
    // invalidation of the server's for it can arrive after the read stored it.
    r.set("t", "4").await.unwrap();
    r.get("t").await.unwrap();
    let hits = cache.stats().hits;
    assert_eq!(r.text().get("t").await.unwrap().as_deref(), Some("4"));
    assert_eq!(cache.stats().hits, hits + 1);
}

#[tokio::test]
async fn a_read_dropped_part_way_stores_nothing() {
    let server = TestServer::start();
    let (r, cache) = cached(&server, Protocol::Resp2).await;
    r.set("big", "x".repeat(8 << 20)).await.unwrap();
    // Dropped as soon as it is sent: the reply never reaches the cache.
    let _ = tokio::time::timeout(Duration::from_micros(10), r.get("big")).await;
    Redis::open(&server.url())
        .unwrap()
        .set("big", "small")
        .await
        .unwrap();
    read_until(&r, "big", b"small").await;
    assert_eq!(r.get("big").await.unwrap().as_deref(), Some(&b"small"[..]));
    assert!(cache.stats().entries <= 1);
}

/// Issue 29: the async client's reads made right after `with_cache` returns are cached:
/// the first cacheable read waits (within the connect timeout) for the invalidation
/// connection, without blocking the runtime.
#[tokio::test(flavor = "current_thread")]
async fn reads_right_after_with_cache_are_cached() {
    let server = TestServer::start();
    for protocol in [Protocol::Resp2, Protocol::Resp3] {
        for run in 0..10 {
            let info = ConnectionInfo::tcp("127.0.0.1", server.port()).with_protocol(protocol);
            let r = Redis::from_info(info).with_cache(CacheOptions::default());
            r.set("greeting", "hello").await.unwrap();
            assert_eq!(
                r.get("greeting").await.unwrap().as_deref(),
                Some(&b"hello"[..])
            );
            assert_eq!(
                r.get("greeting").await.unwrap().as_deref(),
                Some(&b"hello"[..])
            );
            let stats = r.cache().unwrap().stats();
            assert_eq!(
                (stats.misses, stats.hits),
                (1, 1),
                "{protocol:?} run {run}: {stats:?}"
            );
        }
    }
}
