//! Client-side caching on clients whose pool has a custom connector: a Sentinel client's
//! cache follows a failover (its data connections and its invalidation connection move to
//! the new primary together), and a data connection that reaches another server than the
//! invalidation connection's is refused, so no read is ever served stale because its
//! invalidation went to an unrelated client on another server. Also the edges of that
//! check: a restored connection is checked again, a cache wrapping another checks only its
//! own connections, a server without `INFO` is served uncached, and an async pooled
//! connection left behind by a new invalidation connection is replaced.

use redis_client::prelude::*;
use redis_client::{
    Cache, CacheOptions, ConnError, ConnectionInfo, ConnectionPool, Connector, DefaultConnector,
    PoolOptions, RawConnection, Redis, Sentinel, Transport, Value,
};
use redis_tests::{SentinelSet, ServerConfig, TestServer, SENTINEL_SERVICE};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long an invalidation (or the cache's move to a new server) may take to show:
/// generous, since the machine may be busy.
const SETTLE: Duration = Duration::from_secs(3);

fn watch(set: &SentinelSet) -> Sentinel {
    Sentinel::builder(set.sentinel_urls(), SENTINEL_SERVICE)
        .unwrap()
        .build()
}

fn direct(port: u16) -> Redis {
    Redis::open(&format!("redis://127.0.0.1:{port}/0")).unwrap()
}

/// Waits until the invalidation connection is up; returns its client id.
fn wait_tracking(cache: &Cache) -> i64 {
    let deadline = Instant::now() + SETTLE;
    loop {
        if let Some(id) = cache.invalidation_client_id() {
            return id;
        }
        assert!(Instant::now() < deadline, "invalidation connection not up");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until the client has followed a switch.
fn wait_switch(sentinel: &Sentinel) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while sentinel.stats().switches == 0 {
        assert!(Instant::now() < deadline, "no switch seen: {sentinel:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Reads through `read` until it gives `want`, within [`SETTLE`].
fn read_until(mut read: impl FnMut() -> Option<Vec<u8>>, want: &str) {
    let deadline = Instant::now() + SETTLE;
    loop {
        let got = read();
        if got.as_deref() == Some(want.as_bytes()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still {:?}, not {want:?}, after {SETTLE:?}",
            got.map(|v| String::from_utf8_lossy(&v).into_owned())
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_cached_sentinel_client_follows_a_forced_failover() {
    let set = SentinelSet::start();
    let old = set.primary_port();
    let sentinel = watch(&set);
    let primary = sentinel.primary().with_cache(CacheOptions::default());
    let cache = primary.cache().unwrap();
    set.wait_subscribed(Duration::from_secs(5));
    direct(old).set("k", "before").unwrap();
    wait_tracking(&cache);
    assert_eq!(primary.get("k").unwrap().as_deref(), Some(&b"before"[..]));
    assert_eq!(primary.get("k").unwrap().as_deref(), Some(&b"before"[..]));
    assert!(cache.stats().hits >= 1, "{:?}", cache.stats());

    set.force_failover();
    wait_switch(&sentinel);
    let new = set.wait_for_new_primary(old, Duration::from_secs(10));

    // A write through the cached client lands on the new primary.
    assert!(primary.set("w", "after").unwrap());
    assert_eq!(
        direct(new).get("w").unwrap().as_deref(),
        Some(&b"after"[..])
    );
    // A change made on the new primary by another client is read, not the value cached
    // from the old one.
    direct(new).set("k", "changed").unwrap();
    read_until(|| primary.get("k").unwrap().map(|v| v.to_vec()), "changed");
    // The cache works on the new primary: a hit, then another client's change seen once
    // its invalidation (sent by the new primary) arrives.
    wait_tracking(&cache);
    serves_from_memory_and_hears_changes(&primary, &cache, new);
}

/// `primary` (whose cache is `cache`) answers `k` from memory, then reads the new value
/// once another client changed it on the server at `port` and its invalidation arrived.
fn serves_from_memory_and_hears_changes(primary: &Redis, cache: &Cache, port: u16) {
    let hits = cache.stats().hits;
    read_until(
        || {
            primary.get("k").unwrap();
            (cache.stats().hits > hits).then(|| b"hit".to_vec())
        },
        "hit",
    );
    direct(port).set("k", "again").unwrap();
    read_until(|| primary.get("k").unwrap().map(|v| v.to_vec()), "again");
}

#[test]
fn a_cached_async_sentinel_client_follows_a_forced_failover() {
    let set = SentinelSet::start();
    let old = set.primary_port();
    let sentinel = watch(&set);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let primary = sentinel.primary_async().with_cache(CacheOptions::default());
    let cache = primary.cache().unwrap();
    set.wait_subscribed(Duration::from_secs(5));
    direct(old).set("k", "before").unwrap();
    wait_tracking(&cache);
    let get = |key: &str| rt.block_on(primary.get(key)).unwrap().map(|v| v.to_vec());
    assert_eq!(get("k").as_deref(), Some(&b"before"[..]));
    assert_eq!(get("k").as_deref(), Some(&b"before"[..]));
    assert!(cache.stats().hits >= 1, "{:?}", cache.stats());

    set.force_failover();
    wait_switch(&sentinel);
    let new = set.wait_for_new_primary(old, Duration::from_secs(10));

    assert!(rt.block_on(primary.set("w", "after")).unwrap());
    assert_eq!(
        direct(new).get("w").unwrap().as_deref(),
        Some(&b"after"[..])
    );
    direct(new).set("k", "changed").unwrap();
    read_until(|| get("k"), "changed");
    wait_tracking(&cache);
    let hits = cache.stats().hits;
    read_until(
        || {
            get("k");
            (cache.stats().hits > hits).then(|| b"hit".to_vec())
        },
        "hit",
    );
    direct(new).set("k", "again").unwrap();
    read_until(|| get("k"), "again");
}

/// A connector whose connections go in turn to two independent servers: the
/// invalidation connection lands on one, and every other data connection on the other.
struct Alternating {
    info: ConnectionInfo,
    ports: [u16; 2],
    /// Connections opened to each server.
    opened: Arc<[AtomicUsize; 2]>,
    next: AtomicUsize,
}

impl Connector for Alternating {
    fn info(&self) -> &ConnectionInfo {
        &self.info
    }

    fn connect(&self, deadline: Option<Instant>) -> Result<Box<dyn Transport>, ConnError> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % 2;
        self.opened[i].fetch_add(1, Ordering::Relaxed);
        DefaultConnector::new(ConnectionInfo::tcp("127.0.0.1", self.ports[i])).connect(deadline)
    }
}

fn client_id(conn: &mut RawConnection) -> i64 {
    match conn.command(&["CLIENT", "ID"]).unwrap() {
        Value::Integer(id) => id,
        other => panic!("CLIENT ID answered {other:?}"),
    }
}

/// Two independent servers, the first's client ids run ahead of the second's: a test can
/// then hold a client on the second whose id is the invalidation connection's id on the
/// first, so a data connection on the second redirecting to that id is accepted there,
/// and the second's invalidations would go to that client.
fn two_servers_with_ids_ahead_on_the_first() -> (TestServer, TestServer) {
    let a = TestServer::start();
    let b = TestServer::start();
    for _ in 0..30 {
        RawConnection::open(&ConnectionInfo::tcp("127.0.0.1", a.port())).unwrap();
    }
    (a, b)
}

#[test]
fn a_data_connection_on_another_server_than_the_invalidation_connection_is_refused() {
    let (a, b) = two_servers_with_ids_ahead_on_the_first();
    let tcp = |s: &TestServer| ConnectionInfo::tcp("127.0.0.1", s.port());
    let opened = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let connector = Alternating {
        info: tcp(&a),
        ports: [a.port(), b.port()],
        opened: Arc::clone(&opened),
        next: AtomicUsize::new(0),
    };
    let r = Redis::from_pool(ConnectionPool::with_connector(
        connector,
        PoolOptions::default(),
    ))
    .with_cache(CacheOptions::default());
    let cache = r.cache().unwrap();
    let id = wait_tracking(&cache);
    assert_eq!(opened[0].load(Ordering::Relaxed), 1, "the listener is on A");
    let mut namesake = RawConnection::open(&tcp(&b)).unwrap();
    while client_id(&mut namesake) < id {
        namesake = RawConnection::open(&tcp(&b)).unwrap();
    }
    assert_eq!(client_id(&mut namesake), id, "B's ids were ahead of A's");

    let (ra, rb) = (direct(a.port()), direct(b.port()));
    for round in 0..20 {
        let (va, vb) = (format!("a{round}"), format!("b{round}"));
        ra.set("k", &va).unwrap();
        rb.set("k", &vb).unwrap();
        // Every round opens new data connections: half of them reach B.
        r.pool().disconnect();
        read_until(|| r.get("k").unwrap().map(|v| v.to_vec()), &va);
        for _ in 0..20 {
            let got = r.get("k").unwrap();
            assert_eq!(got.as_deref(), Some(va.as_bytes()), "round {round}");
        }
    }
    assert!(cache.stats().hits >= 20 * 19, "{:?}", cache.stats());
    // The connections that reached B were refused (and counted as failed opens).
    assert!(opened[1].load(Ordering::Relaxed) >= 20, "{opened:?}");
    assert!(r.pool().stats().failed >= 20, "{:?}", r.pool().stats());
    drop(namesake);
}

/// A connector that sends every connection to the server `to` names, which the test may
/// change behind the client's back (as a DNS name that moves would).
struct Movable {
    info: ConnectionInfo,
    to: Arc<AtomicUsize>,
}

impl Connector for Movable {
    fn info(&self) -> &ConnectionInfo {
        &self.info
    }

    fn connect(&self, deadline: Option<Instant>) -> Result<Box<dyn Transport>, ConnError> {
        let port = self.to.load(Ordering::Relaxed) as u16;
        DefaultConnector::new(ConnectionInfo::tcp("127.0.0.1", port)).connect(deadline)
    }
}

#[test]
fn the_invalidation_connection_follows_a_connector_that_moved_without_saying_so() {
    let a = TestServer::start();
    let b = TestServer::start();
    let to = Arc::new(AtomicUsize::new(a.port().into()));
    let connector = Movable {
        info: ConnectionInfo::tcp("127.0.0.1", a.port()),
        to: Arc::clone(&to),
    };
    let r = Redis::from_pool(ConnectionPool::with_connector(
        connector,
        PoolOptions::default(),
    ))
    .with_cache(CacheOptions::default());
    let cache = r.cache().unwrap();
    let first = wait_tracking(&cache);
    let (ra, rb) = (direct(a.port()), direct(b.port()));
    ra.set("k", "on a").unwrap();
    rb.set("k", "on b").unwrap();
    assert_eq!(r.get("k").unwrap().as_deref(), Some(&b"on a"[..]));

    // The connector now points at B; the invalidation connection, on A, is not told.
    to.store(b.port().into(), Ordering::Relaxed);
    r.pool().disconnect();
    // The data connections reach B and are refused until the invalidation connection,
    // after a few such refusals, is opened again through the connector: on B.
    let deadline = Instant::now() + SETTLE;
    while r.get("k").ok().flatten().as_deref() != Some(&b"on b"[..]) {
        assert!(Instant::now() < deadline, "the client never reached B");
        std::thread::sleep(Duration::from_millis(5));
    }
    let deadline = Instant::now() + SETTLE;
    while cache.invalidation_client_id().is_none() || cache.invalidation_client_id() == Some(first)
    {
        assert!(
            Instant::now() < deadline,
            "the invalidation connection stayed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // Cached on B, and B's invalidations arrive.
    let hits = cache.stats().hits;
    read_until(
        || {
            r.get("k").unwrap();
            (cache.stats().hits > hits).then(|| b"hit".to_vec())
        },
        "hit",
    );
    rb.set("k", "changed on b").unwrap();
    read_until(|| r.get("k").unwrap().map(|v| v.to_vec()), "changed on b");
    assert!(r.pool().stats().failed >= 1, "{:?}", r.pool().stats());
}

#[test]
fn a_restored_data_connection_is_checked_again_and_still_caches() {
    let server = TestServer::start();
    let r = Redis::from_pool(ConnectionPool::with_options(
        ConnectionInfo::tcp("127.0.0.1", server.port()),
        PoolOptions::default().with_max_size(1),
    ))
    .with_cache(CacheOptions::default());
    let cache = r.cache().unwrap();
    wait_tracking(&cache);
    direct(server.port()).set("k", "v").unwrap();
    for round in 0..3 {
        // SELECT changes the connection's state: handed back, it is restored (RESET and
        // the handshake, a new tracking registration), then checked again.
        let mut conn = r.get_connection().unwrap();
        conn.select(1).unwrap();
        drop(conn);
        let hits = cache.stats().hits;
        r.get("k").unwrap();
        r.get("k").unwrap();
        assert!(
            cache.stats().hits > hits,
            "round {round}: not cached through the restored connection: {:?}",
            cache.stats()
        );
    }
    assert_eq!(r.pool().stats().created, 1, "{:?}", r.pool().stats());
}

/// The async form of [`Alternating`]: each new connection's address in turn.
#[derive(Debug)]
struct AsyncAlternating {
    ports: [u16; 2],
    opened: Arc<[AtomicUsize; 2]>,
    next: AtomicUsize,
}

impl redis_client::redis_conn::aio::Connector for AsyncAlternating {
    fn connect<'a>(
        &'a self,
        dialer: &'a redis_client::redis_conn::aio::Dialer,
        deadline: Option<Instant>,
    ) -> redis_client::redis_conn::aio::BoxFuture<
        'a,
        Result<redis_client::redis_conn::aio::Opened, ConnError>,
    > {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % 2;
        self.opened[i].fetch_add(1, Ordering::Relaxed);
        let addr = redis_client::Addr::Tcp {
            host: "127.0.0.1".into(),
            port: self.ports[i],
        };
        Box::pin(async move {
            let transport = dialer.dial(&addr, deadline).await?;
            Ok(redis_client::redis_conn::aio::Opened {
                transport,
                epoch: 0,
            })
        })
    }
}

#[test]
fn an_async_data_connection_on_another_server_than_the_invalidation_connection_is_refused() {
    let (a, b) = two_servers_with_ids_ahead_on_the_first();
    let tcp = |s: &TestServer| ConnectionInfo::tcp("127.0.0.1", s.port());
    let opened = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let connector = AsyncAlternating {
        ports: [a.port(), b.port()],
        opened: Arc::clone(&opened),
        next: AtomicUsize::new(0),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let r = redis_client::aio::Redis::with_connector(
        tcp(&a),
        Arc::new(connector),
        PoolOptions::default(),
    )
    .with_cache(CacheOptions::default());
    let cache = r.cache().unwrap();
    let id = wait_tracking(&cache);
    assert_eq!(opened[0].load(Ordering::Relaxed), 1, "the listener is on A");
    let mut namesake = RawConnection::open(&tcp(&b)).unwrap();
    while client_id(&mut namesake) < id {
        namesake = RawConnection::open(&tcp(&b)).unwrap();
    }
    assert_eq!(client_id(&mut namesake), id, "B's ids were ahead of A's");

    let (ra, rb) = (direct(a.port()), direct(b.port()));
    let get = || rt.block_on(r.get("k")).unwrap().map(|v| v.to_vec());
    for round in 0..20 {
        let (va, vb) = (format!("a{round}"), format!("b{round}"));
        ra.set("k", &va).unwrap();
        rb.set("k", &vb).unwrap();
        r.pool().disconnect();
        read_until(get, &va);
        for _ in 0..20 {
            assert_eq!(get().as_deref(), Some(va.as_bytes()), "round {round}");
        }
    }
    assert!(cache.stats().hits >= 20 * 19, "{:?}", cache.stats());
    assert!(opened[1].load(Ordering::Relaxed) >= 20, "{opened:?}");
    assert!(r.pool().stats().failed >= 20, "{:?}", r.pool().stats());
    drop(namesake);
}

#[test]
fn a_cache_on_a_client_that_had_one_checks_only_its_own_connections() {
    let server = TestServer::start();
    let first = Redis::from_info(ConnectionInfo::tcp("127.0.0.1", server.port()))
        .with_cache(CacheOptions::default());
    wait_tracking(&first.cache().unwrap());
    // The second cache's pool opens through the first's connector, whose check must
    // leave the second's tracking registrations alone.
    let r = first.clone().with_cache(CacheOptions::default());
    let cache = r.cache().unwrap();
    wait_tracking(&cache);
    direct(server.port()).set("k", "v1").unwrap();
    assert_eq!(r.get("k").unwrap().as_deref(), Some(&b"v1"[..]));
    assert_eq!(r.get("k").unwrap().as_deref(), Some(&b"v1"[..]));
    assert!(cache.stats().hits >= 1, "{:?}", cache.stats());
    direct(server.port()).set("k", "v2").unwrap();
    read_until(|| r.get("k").unwrap().map(|v| v.to_vec()), "v2");
    assert_eq!(r.pool().stats().failed, 0, "{:?}", r.pool().stats());
}

/// A runtime, and an async client of `server` with a cache and a pool of one connection.
fn async_cached_with_one_connection(
    server: &TestServer,
) -> (tokio::runtime::Runtime, redis_client::aio::Redis, Cache) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let r = redis_client::aio::Redis::with_pool_options(
        ConnectionInfo::tcp("127.0.0.1", server.port()),
        PoolOptions::default().with_max_size(1),
    )
    .with_cache(CacheOptions::default());
    let cache = r.cache().unwrap();
    (rt, r, cache)
}

#[test]
fn an_async_data_connection_held_while_the_invalidation_connection_changed_is_replaced() {
    let server = TestServer::start();
    let (rt, r, cache) = async_cached_with_one_connection(&server);
    let first = wait_tracking(&cache);
    direct(server.port()).set("k", "v").unwrap();
    // The pool's only connection is held while the invalidation connection is replaced:
    // it still redirects to the old one when handed back.
    let held = rt.block_on(r.pool().get()).unwrap();
    direct(server.port())
        .execute_command(("CLIENT", "KILL", "ID", first))
        .unwrap();
    let deadline = Instant::now() + SETTLE;
    while cache
        .invalidation_client_id()
        .map_or(true, |id| id == first)
    {
        assert!(Instant::now() < deadline, "no new invalidation connection");
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(held);
    // Caching resumes: that connection is replaced by one redirecting to the new one.
    let hits = cache.stats().hits;
    read_until(
        || {
            rt.block_on(r.get("k")).unwrap();
            (cache.stats().hits > hits).then(|| b"hit".to_vec())
        },
        "hit",
    );
}

#[test]
fn a_cached_sentinel_client_follows_a_killed_primary() {
    let mut set = SentinelSet::start();
    let old = set.primary_port();
    let sentinel = watch(&set);
    let primary = sentinel.primary().with_cache(CacheOptions::default());
    let cache = primary.cache().unwrap();
    direct(old).set("k", "before").unwrap();
    wait_tracking(&cache);
    assert_eq!(primary.get("k").unwrap().as_deref(), Some(&b"before"[..]));

    set.node(old).stop();
    wait_switch(&sentinel);
    let new = set.wait_for_new_primary(old, Duration::from_secs(10));
    // Calls may fail until the client reaches the new primary, not after.
    let deadline = Instant::now() + SETTLE;
    while primary.set("w", "after").is_err() {
        assert!(
            Instant::now() < deadline,
            "no write reached the new primary"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        direct(new).get("w").unwrap().as_deref(),
        Some(&b"after"[..])
    );
    direct(new).set("k", "changed").unwrap();
    read_until(|| primary.get("k").unwrap().map(|v| v.to_vec()), "changed");
    // The invalidation connection moved to the new primary: served from memory there,
    // and its invalidations arrive.
    serves_from_memory_and_hears_changes(&primary, &cache, new);
}

#[test]
fn a_server_that_does_not_answer_info_serves_a_cached_client_uncached() {
    let server = ServerConfig::default()
        .line("rename-command INFO \"\"")
        .start();
    let r = Redis::from_info(ConnectionInfo::tcp("127.0.0.1", server.port()))
        .with_cache(CacheOptions::default());
    let cache = r.cache().unwrap();
    wait_tracking(&cache);
    direct(server.port()).set("k", "v1").unwrap();
    for _ in 0..5 {
        assert_eq!(r.get("k").unwrap().as_deref(), Some(&b"v1"[..]));
    }
    direct(server.port()).set("k", "v2").unwrap();
    assert_eq!(r.get("k").unwrap().as_deref(), Some(&b"v2"[..]));
    // Which server a data connection is on cannot be checked: nothing is stored, and
    // nothing is refused.
    assert_eq!(cache.stats().stored, 0, "{:?}", cache.stats());
    assert_eq!(r.pool().stats().failed, 0, "{:?}", r.pool().stats());
}

#[test]
fn an_async_restored_data_connection_is_checked_again_and_still_caches() {
    let server = TestServer::start();
    let (rt, r, cache) = async_cached_with_one_connection(&server);
    wait_tracking(&cache);
    direct(server.port()).set("k", "v").unwrap();
    rt.block_on(r.get("k")).unwrap();
    for round in 0..3 {
        // SELECT goes over a pooled connection, which is restored when handed back (on a
        // task), then checked again.
        rt.block_on(async {
            let mut conn = r.pool().get().await.unwrap();
            conn.command(&["SELECT", "1"]).await.unwrap();
            drop(conn);
            // The restore runs on a task: let it finish.
            while r.pool().stats().idle == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        let hits = cache.stats().hits;
        rt.block_on(r.get("k")).unwrap();
        rt.block_on(r.get("k")).unwrap();
        assert!(
            cache.stats().hits > hits,
            "round {round}: not cached through the restored connection: {:?}",
            cache.stats()
        );
    }
    assert_eq!(r.pool().stats().created, 1, "{:?}", r.pool().stats());
}
