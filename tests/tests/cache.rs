//! Client-side caching against real servers: reads served from memory, and never the old
//! value once a write is acknowledged and the invalidation had a moment to arrive, over
//! RESP2 (redirect to a subscriber) and RESP3 (pushes), with the invalidation connection
//! killed mid-run, flushes, the entry, byte and time limits, statistics, broadcast and
//! opt-in modes, the race between a read in flight and its invalidation, and the command
//! table's cacheable flags checked against the server's own command facts.

use redis_client::prelude::*;
use redis_client::redis_commands::{cmd, Flags};
use redis_client::{Bytes, Cache, CacheMode, CacheOptions, ConnectionInfo, Protocol, Redis};
use redis_tests::TestServer;
use std::time::{Duration, Instant};

/// How long an invalidation may take to arrive after the write that caused it was
/// acknowledged: generous, since the machine may be busy; typically it takes microseconds.
const SETTLE: Duration = Duration::from_secs(2);

fn info(server: &TestServer, protocol: Protocol) -> ConnectionInfo {
    ConnectionInfo::tcp("127.0.0.1", server.port()).with_protocol(protocol)
}

fn cached(server: &TestServer, protocol: Protocol, options: CacheOptions) -> (Redis, Cache) {
    let r = Redis::from_info(info(server, protocol)).with_cache(options);
    let cache = r.cache().expect("cache on");
    wait_tracking(&cache);
    (r, cache)
}

/// Waits until the invalidation connection is up (caching starts then).
fn wait_tracking(cache: &Cache) -> i64 {
    let start = Instant::now();
    loop {
        if let Some(id) = cache.invalidation_client_id() {
            return id;
        }
        assert!(start.elapsed() < SETTLE, "invalidation connection not up");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Reads `key` until it is `want`, within [`SETTLE`]; returns the reads that were not.
fn read_until(r: &Redis, key: &str, want: &[u8]) -> usize {
    let start = Instant::now();
    let mut stale = 0;
    loop {
        if r.get(key).unwrap().as_deref() == Some(want) {
            return stale;
        }
        stale += 1;
        assert!(
            start.elapsed() < SETTLE,
            "{key} still not {:?} after {SETTLE:?}",
            String::from_utf8_lossy(want)
        );
        std::thread::yield_now();
    }
}

/// Another client writes `writes` times to 16 keys this client reads: after each write is
/// acknowledged, the new value shows within the settling time, and from then on no read of
/// any key returns anything but the last value written to it. With `kill_at`, the
/// invalidation connection is killed (CLIENT KILL ID) before that write.
fn no_stale_reads(protocol: Protocol, writes: usize, kill_at: Option<usize>) {
    const KEYS: usize = 16;
    let server = TestServer::start();
    let (r, cache) = cached(&server, protocol, CacheOptions::default());
    let writer = Redis::open(&server.url()).unwrap();
    let mut current: Vec<Vec<u8>> = (0..KEYS).map(|k| format!("init{k}").into_bytes()).collect();
    for (k, v) in current.iter().enumerate() {
        writer.set(format!("k{k}"), v.as_slice()).unwrap();
    }
    let mut waited = 0;
    let mut killed_id = None;
    for i in 0..writes {
        if kill_at == Some(i) {
            let id = wait_tracking(&cache);
            let killed = writer
                .execute_command(("CLIENT", "KILL", "ID", id))
                .unwrap();
            assert_eq!(killed, redis_client::Value::Integer(1));
            killed_id = Some(id);
        }
        let k = i % KEYS;
        let key = format!("k{k}");
        let value = format!("v{i}").into_bytes();
        writer.set(&key, value.as_slice()).unwrap();
        current[k] = value;
        waited += read_until(&r, &key, &current[k]);
        // Every other key holds what was last written to it, cached or not.
        for j in [(k + 1) % KEYS, (k + 7) % KEYS] {
            let got = r.get(format!("k{j}")).unwrap();
            assert_eq!(
                got.as_deref(),
                Some(current[j].as_slice()),
                "k{j} at write {i}"
            );
        }
    }
    let stats = cache.stats();
    eprintln!("{protocol:?}: {stats:?}, reads of the old value within the settling time: {waited}");
    assert!(
        stats.hits > writes as u64,
        "the cache served reads: {stats:?}"
    );
    assert!(stats.invalidations > 0, "{stats:?}");
    if let Some(old) = killed_id {
        let new = wait_tracking(&cache);
        assert_ne!(old, new, "a new invalidation connection");
        assert!(stats.flushes >= 2, "the loss cleared the cache: {stats:?}");
    }
}

#[test]
fn no_stale_read_over_resp2_redirect() {
    no_stale_reads(Protocol::Resp2, 10_000, None);
}

#[test]
fn no_stale_read_over_resp3_pushes() {
    no_stale_reads(Protocol::Resp3, 10_000, None);
}

#[test]
fn no_stale_read_when_the_invalidation_connection_is_killed_resp2() {
    no_stale_reads(Protocol::Resp2, 2_000, Some(1_000));
}

#[test]
fn no_stale_read_when_the_invalidation_connection_is_killed_resp3() {
    no_stale_reads(Protocol::Resp3, 2_000, Some(1_000));
}

/// The longest a cached read may be stale after a fault the client can see, with the
/// default options: the health check's interval plus its timeout (docs/caching.md).
fn staleness_bound() -> Duration {
    let d = CacheOptions::default();
    d.ping_interval + d.ping_timeout
}

/// Scheduling slack on a busy machine, on top of the bound.
const SLACK: Duration = Duration::from_millis(700);

/// How long the run goes on after the stall: well past the bound, so that a client that
/// never noticed the silence would be caught serving stale reads throughout.
const AFTER_STALL: Duration = Duration::from_millis(4_500);

/// The port the server sees client `id` coming from.
fn client_port(admin: &Redis, id: i64) -> u16 {
    let clients = admin.client_list_ids(&[id as u64]).unwrap();
    let addr = clients[0].addr().expect("an addr field").to_owned();
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

/// A cached client whose connections go through a proxy, whose invalidation connection
/// then goes silent without closing (the proxy holds it open and forwards nothing), while
/// another client writes new versions of a key and the cached client reads it: no read is
/// stale longer than the documented bound after the write it missed was acknowledged; the
/// cache notices, clears, opens a new invalidation connection and caches again.
fn a_silent_invalidation_connection(protocol: Protocol) {
    let server = TestServer::start();
    let proxy = redis_tests::FaultProxy::start(server.port());
    let r =
        Redis::from_info(ConnectionInfo::tcp("127.0.0.1", proxy.port()).with_protocol(protocol))
            .with_cache(CacheOptions::default());
    let cache = r.cache().unwrap();
    let id = wait_tracking(&cache);
    let writer = Redis::open(&server.url()).unwrap();
    writer.set("k", 0).unwrap();
    assert_eq!(r.get("k").unwrap().as_deref(), Some(&b"0"[..]));
    assert!(proxy.stall_connection_from(client_port(&writer, id)));
    let stalled = Instant::now();
    // When each version was acknowledged to the writer.
    let mut acked: Vec<Instant> = vec![stalled];
    let (mut stale_reads, mut worst) = (0, Duration::ZERO);
    let mut version = 0u64;
    while stalled.elapsed() < AFTER_STALL {
        version += 1;
        writer.set("k", version).unwrap();
        acked.push(Instant::now());
        for _ in 0..5 {
            let got: u64 = std::str::from_utf8(&r.get("k").unwrap().unwrap())
                .unwrap()
                .parse()
                .unwrap();
            if got < version {
                // Stale since the first version it does not show was acknowledged.
                stale_reads += 1;
                worst = worst.max(acked[got as usize + 1].elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let stats = cache.stats();
    eprintln!(
        "{protocol:?}: {stale_reads} stale reads, the worst {worst:?} after its write; {stats:?}"
    );
    assert!(
        stale_reads > 0,
        "the stall made reads stale until it was noticed"
    );
    assert!(
        worst <= staleness_bound() + SLACK,
        "a read stale {worst:?} after its write, past the bound of {:?}",
        staleness_bound()
    );
    let now = wait_tracking(&cache);
    assert_ne!(now, id, "a new invalidation connection");
    // Caching again, and kept true by the new connection.
    let hits = cache.stats().hits;
    assert_eq!(r.get("k").unwrap().unwrap(), version.to_string().as_bytes());
    assert_eq!(r.get("k").unwrap().unwrap(), version.to_string().as_bytes());
    assert!(cache.stats().hits > hits, "served from memory again");
    writer.set("k", "after").unwrap();
    read_until(&r, "k", b"after");
}

#[test]
fn a_silent_invalidation_connection_is_noticed_within_the_bound_resp2() {
    a_silent_invalidation_connection(Protocol::Resp2);
}

#[test]
fn a_silent_invalidation_connection_is_noticed_within_the_bound_resp3() {
    a_silent_invalidation_connection(Protocol::Resp3);
}

/// The server forgets the keys a connection read once that connection is gone, and
/// reports nobody their changes: whatever was read through a data connection the server
/// closed must go, even while the connection sits idle and nobody reads through it.
#[test]
fn what_was_read_through_a_closed_data_connection_is_forgotten() {
    let server = TestServer::start();
    for protocol in [Protocol::Resp2, Protocol::Resp3] {
        let (r, cache) = cached(&server, protocol, CacheOptions::default());
        let key = format!("closed-{protocol:?}");
        server.raw(&["SET", &key, "old"]);
        r.get(&key).unwrap();
        let hits = cache.stats().hits;
        assert_eq!(r.get(&key).unwrap().as_deref(), Some(&b"old"[..]));
        assert_eq!(cache.stats().hits, hits + 1, "served from memory");
        assert!(server.kill_tracking_clients() >= 1);
        server.raw(&["SET", &key, "new"]);
        read_until(&r, &key, b"new");
        // The invalidation connection was not touched: caching goes on.
        assert!(cache.invalidation_client_id().is_some());
        r.get(&key).unwrap();
        let hits = cache.stats().hits;
        r.get(&key).unwrap();
        assert_eq!(cache.stats().hits, hits + 1);
    }
}

#[test]
fn hits_misses_and_stored_are_counted() {
    let server = TestServer::start();
    for protocol in [Protocol::Resp2, Protocol::Resp3] {
        let (r, cache) = cached(&server, protocol, CacheOptions::default());
        r.set("counted", "1").unwrap();
        r.hset("h", "f", "x").unwrap();
        let before = cache.stats();
        assert_eq!(r.get("counted").unwrap().as_deref(), Some(&b"1"[..]));
        for _ in 0..5 {
            assert_eq!(r.get("counted").unwrap().as_deref(), Some(&b"1"[..]));
        }
        assert_eq!(r.hget("h", "f").unwrap().as_deref(), Some(&b"x"[..]));
        assert_eq!(r.hgetall("h").unwrap().len(), 1);
        assert_eq!(r.hgetall("h").unwrap().len(), 1);
        let after = cache.stats();
        assert_eq!(after.misses - before.misses, 3, "{after:?}");
        assert_eq!(after.hits - before.hits, 6, "{after:?}");
        assert_eq!(after.stored - before.stored, 3, "{after:?}");
        assert_eq!(after.entries, 3);
        assert!(after.bytes > 0);
        // Not cacheable: neither a hit nor a miss.
        r.ttl("counted").unwrap();
        r.mget(["counted", "h"]).unwrap();
        r.exists(["counted", "h"]).unwrap();
        let later = cache.stats();
        assert_eq!((later.hits, later.misses), (after.hits, after.misses));
        server.raw(&["FLUSHALL"]);
    }
}

#[test]
fn this_clients_writes_are_read_back_at_once() {
    let server = TestServer::start();
    let (r, cache) = cached(&server, Protocol::Resp2, CacheOptions::default());
    r.set("mine", "1").unwrap();
    r.get("mine").unwrap();
    r.get("mine").unwrap();
    assert!(cache.stats().hits >= 1);
    // A typed write, a raw one, a pipeline, a transaction: each read right after sees it.
    r.set("mine", "2").unwrap();
    assert_eq!(r.get("mine").unwrap().as_deref(), Some(&b"2"[..]));
    r.get("mine").unwrap();
    r.execute_command(("SET", "mine", "3")).unwrap();
    assert_eq!(r.get("mine").unwrap().as_deref(), Some(&b"3"[..]));
    r.get("mine").unwrap();
    let mut pipe = r.pipeline();
    pipe.set("mine", "4");
    pipe.execute().unwrap();
    assert_eq!(r.get("mine").unwrap().as_deref(), Some(&b"4"[..]));
    r.get("mine").unwrap();
    r.transaction("mine", |mut w| {
        let v = w.get("mine")?;
        assert_eq!(v.as_deref(), Some(&b"4"[..]));
        let mut tx = w.multi();
        tx.set("mine", "5");
        Ok(tx)
    })
    .unwrap();
    assert_eq!(r.get("mine").unwrap().as_deref(), Some(&b"5"[..]));
    r.del("mine").unwrap();
    assert_eq!(r.get("mine").unwrap(), None);
}

#[test]
fn pipelines_are_not_served_from_memory() {
    let server = TestServer::start();
    let (r, cache) = cached(&server, Protocol::Resp3, CacheOptions::default());
    r.set("p", "1").unwrap();
    r.get("p").unwrap();
    r.get("p").unwrap();
    let hits = cache.stats().hits;
    let mut pipe = r.pipeline();
    pipe.transaction(false);
    pipe.get("p").get("p");
    let values = pipe.execute().unwrap();
    assert_eq!(values.len(), 2);
    assert_eq!(cache.stats().hits, hits);
}

#[test]
fn flushall_clears_the_cache() {
    let server = TestServer::start();
    for protocol in [Protocol::Resp2, Protocol::Resp3] {
        let (r, cache) = cached(&server, protocol, CacheOptions::default());
        let other = Redis::open(&server.url()).unwrap();
        other.set("f", "1").unwrap();
        r.get("f").unwrap();
        assert_eq!(r.get("f").unwrap().as_deref(), Some(&b"1"[..]));
        let flushes = cache.stats().flushes;
        // Another client's FLUSHALL: the server's null invalidation clears everything.
        other.flushall(None).unwrap();
        read_none(&r, "f");
        assert!(cache.stats().flushes > flushes);
        // This client's own FLUSHDB clears at once.
        other.set("f", "2").unwrap();
        r.get("f").unwrap();
        r.get("f").unwrap();
        r.flushdb(None).unwrap();
        assert_eq!(r.get("f").unwrap(), None);
    }
}

fn read_none(r: &Redis, key: &str) {
    let start = Instant::now();
    while r.get(key).unwrap().is_some() {
        assert!(start.elapsed() < SETTLE, "{key} still cached");
        std::thread::yield_now();
    }
}

#[test]
fn entries_beyond_the_limit_are_evicted() {
    let server = TestServer::start();
    let (r, cache) = cached(
        &server,
        Protocol::Resp2,
        CacheOptions::default().with_max_entries(10),
    );
    for i in 0..30 {
        r.set(format!("e{i}"), i).unwrap();
    }
    for i in 0..30 {
        r.get(format!("e{i}")).unwrap();
    }
    let stats = cache.stats();
    assert_eq!(stats.entries, 10);
    assert_eq!(stats.evictions, 20);
    // The most recent ten are the ones kept.
    let hits = stats.hits;
    for i in 20..30 {
        assert_eq!(
            r.get(format!("e{i}")).unwrap(),
            Some(Bytes::from(i.to_string()))
        );
    }
    assert_eq!(cache.stats().hits, hits + 10);
}

#[test]
fn bytes_beyond_the_limit_are_evicted() {
    let server = TestServer::start();
    let (r, cache) = cached(
        &server,
        Protocol::Resp3,
        CacheOptions::default().with_max_bytes(10_000),
    );
    let big = "x".repeat(2_000);
    for i in 0..20 {
        r.set(format!("b{i}"), &big).unwrap();
        r.get(format!("b{i}")).unwrap();
        assert!(cache.stats().bytes <= 10_000);
    }
    let stats = cache.stats();
    assert!(stats.entries <= 4 && stats.entries >= 3, "{stats:?}");
    assert_eq!(stats.evictions as usize, 20 - stats.entries);
    // A value larger than the whole budget is served, never stored.
    r.set("huge", "y".repeat(20_000)).unwrap();
    assert_eq!(r.get("huge").unwrap().map(|v| v.len()), Some(20_000));
    assert_eq!(cache.stats().stored, stats.stored);
}

#[test]
fn entries_expire_at_the_ttl_ceiling() {
    let server = TestServer::start();
    let (r, cache) = cached(
        &server,
        Protocol::Resp2,
        CacheOptions::default().with_ttl(Some(Duration::from_millis(500))),
    );
    r.set("t", "1").unwrap();
    r.get("t").unwrap();
    r.get("t").unwrap();
    assert_eq!(cache.stats().hits, 1);
    std::thread::sleep(Duration::from_millis(600));
    r.get("t").unwrap();
    let stats = cache.stats();
    assert_eq!(stats.expired, 1);
    assert_eq!(stats.hits, 1);
    assert_eq!(stats.misses, 2);
}

/// Redis 7.0 reports no invalidation for another client's SWAPDB (docs/caching.md, "What
/// it does not guarantee"): a cached read of a swapped database stays what it was, and
/// the `ttl` ceiling is what bounds it, over RESP2 and RESP3.
#[test]
fn another_clients_swapdb_is_not_reported_and_the_ttl_ceiling_bounds_it() {
    let ttl = Duration::from_millis(800);
    for protocol in [Protocol::Resp2, Protocol::Resp3] {
        let server = TestServer::start();
        let (r, cache) = cached(
            &server,
            protocol,
            CacheOptions::default().with_ttl(Some(ttl)),
        );
        let other = Redis::open(&server.url()).unwrap();
        // Database 1 is written before any tracked read of the key: nothing to report.
        let mut db1 = other.dedicated_connection().unwrap();
        db1.select(1).unwrap();
        db1.set("s", "db1").unwrap();
        other.set("s", "db0").unwrap();
        assert_eq!(r.get("s").unwrap().as_deref(), Some(&b"db0"[..]));
        let cached_at = Instant::now();
        assert_eq!(r.get("s").unwrap().as_deref(), Some(&b"db0"[..]));
        assert!(cache.stats().hits >= 1);
        other.swapdb(0, 1).unwrap();
        assert_eq!(
            other.get("s").unwrap().as_deref(),
            Some(&b"db1"[..]),
            "swapped"
        );
        if server.version() < (7, 2, 0) {
            // The gap: the server said nothing, so memory still has the old database's.
            std::thread::sleep(Duration::from_millis(100));
            assert_eq!(
                r.get("s").unwrap().as_deref(),
                Some(&b"db0"[..]),
                "{protocol:?}: a SWAPDB by another client is not reported"
            );
        }
        // Past the ceiling, the entry is not served any more.
        std::thread::sleep((cached_at + ttl).saturating_duration_since(Instant::now()));
        assert_eq!(
            r.get("s").unwrap().as_deref(),
            Some(&b"db1"[..]),
            "{protocol:?}: fresh once the ttl ceiling passed"
        );
    }
}

#[test]
fn broadcast_mode_caches_only_its_prefixes() {
    let server = TestServer::start();
    for protocol in [Protocol::Resp2, Protocol::Resp3] {
        let options = CacheOptions::default().with_mode(CacheMode::Broadcast(vec![
            Bytes::from("user:"),
            Bytes::from("cfg:"),
        ]));
        let (r, cache) = cached(&server, protocol, options);
        let other = Redis::open(&server.url()).unwrap();
        other.set("user:1", "ada").unwrap();
        other.set("other", "x").unwrap();
        let before = cache.stats();
        r.get("user:1").unwrap();
        r.get("user:1").unwrap();
        r.get("other").unwrap();
        r.get("other").unwrap();
        let after = cache.stats();
        assert_eq!(after.hits - before.hits, 1);
        assert_eq!(after.misses - before.misses, 1, "only user:1 is looked up");
        // The server reports changes under the prefix, read or not.
        other.set("user:1", "grace").unwrap();
        read_until(&r, "user:1", b"grace");
        server.raw(&["FLUSHALL"]);
    }
}

#[test]
fn opt_in_mode_tracks_what_it_caches() {
    let server = TestServer::start();
    let (r, cache) = cached(
        &server,
        Protocol::Resp2,
        CacheOptions::default().with_mode(CacheMode::OptIn),
    );
    let other = Redis::open(&server.url()).unwrap();
    other.set("o", "1").unwrap();
    r.get("o").unwrap();
    assert_eq!(r.get("o").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(cache.stats().hits, 1);
    other.set("o", "2").unwrap();
    read_until(&r, "o", b"2");
    // A read that is not cached is not tracked either: no invalidation for it.
    r.execute_command(("GET", "untracked")).unwrap();
    let inv = cache.stats().invalidations;
    other.set("untracked", "z").unwrap();
    other.set("o", "3").unwrap();
    read_until(&r, "o", b"3");
    assert_eq!(cache.stats().invalidations, inv + 1);
}

#[test]
fn text_mode_reads_through_the_cache() {
    let server = TestServer::start();
    let (r, cache) = cached(&server, Protocol::Resp3, CacheOptions::default());
    r.set("txt", "héllo").unwrap();
    let t = r.text();
    assert_eq!(t.get("txt").unwrap().as_deref(), Some("héllo"));
    assert_eq!(t.get("txt").unwrap().as_deref(), Some("héllo"));
    assert_eq!(cache.stats().hits, 1);
    Redis::open(&server.url())
        .unwrap()
        .set("txt", "wörld")
        .unwrap();
    let start = Instant::now();
    while t.get("txt").unwrap().as_deref() != Some("wörld") {
        assert!(start.elapsed() < SETTLE);
    }
}

/// The race of the tracking documentation: the invalidation of a key arrives while the
/// reply to a read of it is still on its way. A 16 MiB value keeps the reply in flight
/// long enough for another client's write, made once the server has run the read, to be
/// reported first; the old reply must not be stored.
#[test]
fn a_reply_racing_its_invalidation_is_not_stored() {
    let server = TestServer::start();
    for protocol in [Protocol::Resp2, Protocol::Resp3] {
        let (r, cache) = cached(&server, protocol, CacheOptions::default());
        let writer = Redis::open(&server.url()).unwrap();
        let old = "o".repeat(16 << 20);
        writer.set("race", &old).unwrap();
        writer.config_resetstat().unwrap();
        std::thread::scope(|s| {
            let reader = s.spawn(|| r.get("race").unwrap().map(|v| v.len()));
            // Wait until the server has run the GET, then change the key.
            let start = Instant::now();
            loop {
                let info = writer.execute_command(("INFO", "commandstats")).unwrap();
                let text = format!("{info:?}");
                if text.contains("cmdstat_get") {
                    break;
                }
                assert!(start.elapsed() < SETTLE);
            }
            writer.set("race", "new").unwrap();
            assert_eq!(reader.join().unwrap(), Some(16 << 20));
        });
        read_until(&r, "race", b"new");
        assert_eq!(r.get("race").unwrap().as_deref(), Some(&b"new"[..]));
        let stats = cache.stats();
        eprintln!("{protocol:?}: {stats:?}");
        // Whichever arrived first, the old value is gone: not stored, or stored and
        // dropped.
        assert!(stats.discarded + stats.invalidations >= 1, "{stats:?}");
        server.raw(&["FLUSHALL"]);
    }
}

/// Every command declared cacheable is, by the server's own facts, read-only, about one
/// key (its first argument), and gives the same output for the same input.
#[test]
fn cacheable_flags_agree_with_the_server() {
    let server = TestServer::start();
    let r = Redis::open(&server.url()).unwrap();
    let mut facts = std::collections::HashMap::new();
    for c in r.command().unwrap() {
        for s in &c.subcommands {
            facts.insert(s.name.replace('|', " ").to_ascii_uppercase(), s.clone());
        }
        facts.insert(c.name.to_ascii_uppercase(), c);
    }
    let mut checked = 0;
    for info in cmd::all().filter(|i| i.flags.contains(Flags::CACHEABLE)) {
        let f = facts
            .get(info.name)
            .unwrap_or_else(|| panic!("{} unknown to the server", info.name));
        assert!(
            f.flags.iter().any(|x| x == "readonly"),
            "{} not read-only",
            info.name
        );
        assert_eq!(f.first_key, 1, "{}: first key", info.name);
        // EXISTS takes any number of keys: the client caches it only with one.
        if info.name != "EXISTS" {
            assert_eq!(f.last_key, 1, "{}: one key", info.name);
        }
        assert!(
            !f.tips.iter().any(|t| t == "nondeterministic_output"),
            "{} is not deterministic",
            info.name
        );
        checked += 1;
    }
    assert!(checked >= 40, "{checked}");
    // Commands whose output depends on the time or on chance are not cacheable.
    for name in [
        "TTL",
        "PTTL",
        "SRANDMEMBER",
        "HRANDFIELD",
        "ZRANDMEMBER",
        "OBJECT FREQ",
    ] {
        let rows: Vec<_> = cmd::all().filter(|i| i.name == name).collect();
        assert!(!rows.is_empty(), "{name}");
        assert!(
            rows.iter().all(|i| !i.flags.contains(Flags::CACHEABLE)),
            "{name}"
        );
    }
}

/// A restarted server (as after a failover) knows nothing of the tracking: the lost
/// invalidation connection clears the cache, so a value written after the restart is
/// read, not the one cached before.
#[test]
fn a_server_restart_clears_the_cache() {
    let mut server = TestServer::start();
    let (r, cache) = cached(&server, Protocol::Resp2, CacheOptions::default());
    r.set("s", "before").unwrap();
    r.get("s").unwrap();
    assert_eq!(r.get("s").unwrap().as_deref(), Some(&b"before"[..]));
    server.restart();
    Redis::open(&server.url())
        .unwrap()
        .set("s", "after")
        .unwrap();
    let start = Instant::now();
    loop {
        match r.get("s") {
            Ok(v) if v.as_deref() == Some(&b"after"[..]) => break,
            _ => assert!(start.elapsed() < SETTLE, "still the value from before"),
        }
    }
    wait_tracking(&cache);
    assert!(cache.stats().flushes >= 2);
}

#[test]
fn this_clients_raw_write_swapdb_and_flushall_clear_the_whole_cache() {
    let server = TestServer::start();
    let (r, cache) = cached(&server, Protocol::Resp3, CacheOptions::default());
    // Every key is written before any of them is read: a write to a key the server
    // tracks sends an invalidation that may arrive after the next read was stored,
    // which would take an entry out from under the count below.
    for round in 0..3 {
        r.set(format!("a{round}"), "1").unwrap();
        r.set(format!("b{round}"), "1").unwrap();
    }
    let fill = |round: usize| {
        r.get(format!("a{round}")).unwrap();
        r.get(format!("b{round}")).unwrap();
        assert_eq!(cache.stats().entries, 2, "round {round}");
    };
    // A raw write names no key the client can know of: it clears everything, even the
    // entry of a key it did not touch.
    fill(0);
    r.execute_command(("SET", "a0", "2")).unwrap();
    assert_eq!(cache.stats().entries, 0, "raw SET");
    fill(1);
    r.swapdb(0, 1).unwrap();
    assert_eq!(cache.stats().entries, 0, "SWAPDB");
    r.swapdb(0, 1).unwrap();
    fill(2);
    r.flushall(None).unwrap();
    assert_eq!(cache.stats().entries, 0, "FLUSHALL");
    assert_eq!(r.get("b2").unwrap(), None);
}

#[test]
fn commands_built_by_hand_in_lower_case_clear_the_cache_as_their_upper_case_names_do() {
    let server = TestServer::start();
    let (r, cache) = cached(&server, Protocol::Resp3, CacheOptions::default());
    let other = Redis::open(&server.url()).unwrap();
    let mut db1 = other.dedicated_connection().unwrap();
    db1.select(1).unwrap();
    for (i, name) in ["swapdb", "SwapDB", "flushdb", "flushall"]
        .into_iter()
        .enumerate()
    {
        let key = format!("k{i}");
        let swap = name.eq_ignore_ascii_case("swapdb");
        if swap {
            // Written before any tracked read of the key, so the server reports nothing.
            db1.set(&key, "2").unwrap();
        }
        cache.clear();
        r.set(&key, "1").unwrap();
        assert_eq!(r.get(&key).unwrap().as_deref(), Some(&b"1"[..]));
        assert_eq!(cache.stats().entries, 1, "{name}: cached");
        let flushes = cache.stats().flushes;
        let mut cmd = redis_client::Cmd::new(name);
        if swap {
            cmd.arg(0).arg(1);
        }
        r.run(redis_client::Typed::<redis_client::Value>::new(cmd))
            .unwrap();
        assert_eq!(cache.stats().entries, 0, "{name} clears the cache");
        let want = swap.then_some(&b"2"[..]);
        assert_eq!(r.get(&key).unwrap().as_deref(), want, "{name}");
        if swap {
            r.run(redis_client::Typed::<redis_client::Value>::new({
                let mut back = redis_client::Cmd::new("SWAPDB");
                back.arg(0).arg(1);
                back
            }))
            .unwrap();
        } else {
            // The server's own report of the flush comes on the invalidation connection:
            // taken before the next round caches anything (the client cleared twice).
            let start = Instant::now();
            while cache.stats().flushes < flushes + 3 {
                assert!(start.elapsed() < SETTLE, "the flush was reported");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

#[test]
fn transactions_watched_reads_raw_reads_and_connections_are_never_answered_from_memory() {
    let server = TestServer::start();
    let (r, cache) = cached(&server, Protocol::Resp3, CacheOptions::default());
    r.set("k", "1").unwrap();
    r.get("k").unwrap();
    r.get("k").unwrap();
    let hits = cache.stats().hits;
    assert!(hits >= 1, "cached");

    let mut tx = r.pipeline();
    tx.get("k");
    assert_eq!(tx.execute().unwrap().len(), 1);
    r.transaction("k", |mut w| {
        assert_eq!(w.get("k")?.as_deref(), Some(&b"1"[..]));
        let mut tx = w.multi();
        tx.get("k");
        Ok(tx)
    })
    .unwrap();
    r.execute_command(("GET", "k")).unwrap();
    let mut conn = r.get_connection().unwrap();
    assert_eq!(conn.get("k").unwrap().as_deref(), Some(&b"1"[..]));
    drop(conn);
    let mut conn = r.dedicated_connection().unwrap();
    assert_eq!(conn.get("k").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(
        cache.stats().hits,
        hits,
        "every one of them went to the server"
    );
}

#[test]
fn reads_while_the_invalidation_connection_is_down_are_not_cached() {
    let server = TestServer::start();
    let (r, cache) = cached(&server, Protocol::Resp3, CacheOptions::default());
    r.set("k", "1").unwrap();
    let other = Redis::open(&server.url()).unwrap();
    // Keep the invalidation connection from coming back: the server takes no new client
    // once the current one is killed (connections already open stay).
    let clients = other.client_list().unwrap().len();
    other
        .config_set("maxclients", (clients - 1).to_string())
        .unwrap();
    let id = wait_tracking(&cache);
    other.execute_command(("CLIENT", "KILL", "ID", id)).unwrap();
    let start = Instant::now();
    while cache.invalidation_client_id().is_some() {
        assert!(start.elapsed() < SETTLE, "the kill was never noticed");
        std::thread::sleep(Duration::from_millis(1));
    }
    let before = cache.stats();
    assert_eq!(r.get("k").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(r.get("k").unwrap().as_deref(), Some(&b"1"[..]));
    let after = cache.stats();
    assert_eq!(after.misses - before.misses, 2, "both went to the server");
    assert_eq!(
        after.stored, before.stored,
        "nothing stored while no invalidation can come"
    );
    // Once a new invalidation connection is up, caching resumes.
    other.config_set("maxclients", "10000").unwrap();
    assert_ne!(wait_tracking(&cache), id);
    r.get("k").unwrap();
    r.get("k").unwrap();
    assert!(cache.stats().stored > after.stored);
}

/// Issue 29: the reads made right after `with_cache` returns are cached, with no waiting by
/// the caller: a first cacheable read waits (within the connect timeout) for the
/// invalidation connection, so docs/caching.md's second read is served from memory, every
/// time (it missed in 5 runs of 5 before).
#[test]
fn reads_right_after_with_cache_are_cached() {
    let server = TestServer::start();
    for protocol in [Protocol::Resp2, Protocol::Resp3] {
        for run in 0..10 {
            let r = Redis::from_info(info(&server, protocol)).with_cache(CacheOptions::default());
            r.hset("user:42", "name", "ada").unwrap();
            let first = r.hgetall("user:42").unwrap(); // from the server
            let second = r.hgetall("user:42").unwrap(); // from memory
            assert_eq!(first, second);
            let stats = r.cache().unwrap().stats();
            assert_eq!(
                (stats.misses, stats.hits),
                (1, 1),
                "{protocol:?} run {run}: {stats:?}"
            );
        }
    }
}
