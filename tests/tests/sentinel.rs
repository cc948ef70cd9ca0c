//! The Sentinel client against a real set: a primary, a replica and three sentinels.

use redis_client::prelude::*;
use redis_client::{Addr, ConnectionInfo, ErrorKind, Redis, Sentinel};
use redis_tests::{FakeServer, SentinelSet, SentinelSetConfig, SENTINEL_SERVICE};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

fn tcp(port: u16) -> Addr {
    Addr::Tcp {
        host: "127.0.0.1".into(),
        port,
    }
}

fn watch(set: &SentinelSet) -> Sentinel {
    Sentinel::builder(set.sentinel_urls(), SENTINEL_SERVICE)
        .unwrap()
        .build()
}

/// What one writer thread saw: the keys whose SET was acknowledged, and when each error
/// happened.
#[derive(Default)]
struct Written {
    acked: Vec<String>,
    errors: Vec<(Instant, String)>,
}

/// `threads` threads writing distinct keys through `client` until `stop`.
fn write_load(client: &Redis, threads: usize, stop: &Arc<AtomicBool>) -> Vec<JoinHandle<Written>> {
    (0..threads)
        .map(|t| {
            let client = client.clone();
            let stop = Arc::clone(stop);
            std::thread::spawn(move || {
                let mut w = Written::default();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("k:{t}:{i}");
                    match client.set(&key, i) {
                        Ok(_) => w.acked.push(key),
                        Err(e) => w.errors.push((Instant::now(), e.to_string())),
                    }
                    i += 1;
                }
                w
            })
        })
        .collect()
}

/// The acknowledged keys missing on the server at `port`.
fn missing_on(port: u16, acked: &[String]) -> usize {
    let r = Redis::open(&format!("redis://127.0.0.1:{port}/0")).unwrap();
    acked
        .chunks(1000)
        .map(|keys| r.mget(keys).unwrap().iter().filter(|v| v.is_none()).count())
        .sum()
}

/// Waits until the client has followed a switch; returns when it saw it.
fn wait_switch(sentinel: &Sentinel, timeout: Duration) -> Instant {
    let deadline = Instant::now() + timeout;
    while sentinel.stats().switches == 0 {
        assert!(Instant::now() < deadline, "no switch seen: {sentinel:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
    Instant::now()
}

#[test]
fn discovers_the_primary_and_replicas_and_serves_commands() {
    let set = SentinelSet::start();
    let (p, r) = (set.nodes[0].port(), set.nodes[1].port());
    let sentinel = watch(&set);
    assert_eq!(sentinel.discover_primary().unwrap(), tcp(p));
    assert_eq!(sentinel.discover_replicas().unwrap(), vec![tcp(r)]);

    let primary = sentinel.primary();
    assert!(primary.set("greeting", "hello").unwrap());
    let mut pipe = primary.pipeline();
    pipe.incr("n").incr("n");
    assert_eq!(pipe.execute().unwrap().len(), 2);
    assert_eq!(
        primary.text().get("greeting").unwrap().as_deref(),
        Some("hello")
    );
    // The commands went to the primary the sentinels named.
    assert_eq!(set.nodes[0].raw(&["GET", "greeting"]), "hello");

    let replicas = sentinel.replicas();
    let deadline = Instant::now() + Duration::from_secs(5);
    while replicas.get("greeting").unwrap().is_none() {
        assert!(Instant::now() < deadline, "the replica never got the write");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The replica client reads from a replica: it refuses writes.
    let err = replicas.set("x", 1).unwrap_err();
    assert!(err.to_string().contains("READONLY"), "{err}");
    assert_eq!(sentinel.stats().switches, 0);
}

#[test]
fn forced_failover_under_load_is_followed_without_losing_acknowledged_writes() {
    let set = SentinelSet::start();
    let old = set.primary_port();
    let sentinel = watch(&set);
    let primary = sentinel.primary();
    primary.ping().unwrap();
    set.wait_subscribed(Duration::from_secs(5));
    let stop = Arc::new(AtomicBool::new(false));
    let mut sub = primary.pubsub();
    sub.ignore_subscribe_messages(true);
    sub.subscribe("news").unwrap();
    let writers = write_load(&primary, 4, &stop);
    std::thread::sleep(Duration::from_millis(300));

    let started = Instant::now();
    set.force_failover();
    let switched = wait_switch(&sentinel, Duration::from_secs(10));
    let new = set.wait_for_new_primary(old, Duration::from_secs(10));
    assert_ne!(new, old);
    // Keep writing past the switch: every write now goes to the new primary.
    std::thread::sleep(Duration::from_millis(1000));
    stop.store(true, Ordering::Relaxed);
    let written: Vec<Written> = writers.into_iter().map(|h| h.join().unwrap()).collect();

    let acked: Vec<String> = written.iter().flat_map(|w| w.acked.clone()).collect();
    let errors: Vec<&(Instant, String)> = written.iter().flat_map(|w| &w.errors).collect();
    let missing = missing_on(new, &acked);
    let late_errors = errors
        .iter()
        .filter(|(at, _)| *at > switched + Duration::from_millis(200))
        .count();
    eprintln!(
        "forced failover: switch seen after {:?}; {} writes acknowledged, {} missing on the \
         new primary, {} errors ({} after the switch)",
        switched - started,
        acked.len(),
        missing,
        errors.len(),
        late_errors
    );
    assert!(acked.len() > 1000, "the load ran: {}", acked.len());
    // The client stops writing to the old primary when the failover is announced, before
    // the replica is promoted: nothing it acknowledged is lost.
    assert_eq!(missing, 0, "acknowledged writes lost");
    // The calls that waited through the failover complete on the new primary: none fails.
    assert!(
        errors.is_empty(),
        "calls failed during the failover: {errors:?}"
    );
    let stats = sentinel.stats();
    assert!(stats.failovers >= 1, "{stats:?}");
    // The subscriber's connection was retired with the old primary's epoch: it renews its
    // subscription on the new primary at its next read, without waiting for the sentinels
    // to demote the old one (up to 10 s after the switch).
    until_reconnected(
        || sub.get_message(Some(Duration::from_millis(200))),
        Duration::from_secs(3),
    );
    assert_eq!(primary.publish("news", "after").unwrap(), 1);
    let got = sub.get_message(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(got.map(|m| m.payload), Some("after".into()));
}

#[test]
fn killed_primary_is_followed_once_the_sentinels_promote_the_replica() {
    let mut set = SentinelSet::start();
    let old = set.primary_port();
    let sentinel = watch(&set);
    let primary = sentinel.primary();
    let replicas = sentinel.replicas();
    primary.ping().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writers = write_load(&primary, 2, &stop);
    // Watchers asking the sentinels all through the failover, as a monitor would, one per
    // sentinel: the one on the sentinel that leads the failover asks it while it reports
    // the failover's new epoch beside the old address, before it announces the switch.
    let watchers: Vec<Sentinel> = set
        .sentinel_urls()
        .into_iter()
        .map(|url| Sentinel::builder([url], SENTINEL_SERVICE).unwrap().build())
        .collect();
    let askers: Vec<JoinHandle<()>> = watchers
        .iter()
        .map(|watcher| {
            let (watcher, stop) = (watcher.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let _ = watcher.discover_primary();
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));

    set.node(old).stop();
    let killed = Instant::now();
    let switched = wait_switch(&sentinel, Duration::from_secs(20));
    let new = set.wait_for_new_primary(old, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    for asker in askers {
        asker.join().unwrap();
    }
    let written: Vec<Written> = writers.into_iter().map(|h| h.join().unwrap()).collect();

    let acked: Vec<String> = written.iter().flat_map(|w| w.acked.clone()).collect();
    let errors: Vec<&(Instant, String)> = written.iter().flat_map(|w| &w.errors).collect();
    let late_errors = errors
        .iter()
        .filter(|(at, _)| *at > switched + Duration::from_millis(200))
        .count();
    let missing = missing_on(new, &acked);
    eprintln!(
        "killed primary: switch after {:?}; {} acknowledged, {} missing, {} errors",
        switched - killed,
        acked.len(),
        missing,
        errors.len()
    );
    assert_eq!(late_errors, 0, "errors after the switch: {errors:?}");
    // Writes kept being acknowledged after the failover, by the new primary.
    assert!(primary.set("after", 1).unwrap());
    assert_eq!(
        Redis::open(&format!("redis://127.0.0.1:{new}/0"))
            .unwrap()
            .get("after")
            .unwrap()
            .as_deref(),
        Some(&b"1"[..])
    );
    // At most the write in flight per thread when the process died can be unreplicated.
    assert!(missing <= 2, "{missing} acknowledged writes lost");
    // Asking the sentinels again gives the new primary, to every watcher (a sentinel that
    // did not lead hears of the new configuration a little later): the answers after the
    // switch carry the epoch the leader reported beside the old address.
    assert_eq!(sentinel.discover_primary().unwrap(), tcp(new));
    for watcher in &watchers {
        let start = Instant::now();
        loop {
            match watcher.discover_primary() {
                Ok(addr) if addr == tcp(new) => break,
                other => assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "a watcher still gets {other:?}"
                ),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // With no replica left up, the replica client says so instead of reaching the primary.
    let err = replicas.get("after").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
}

#[test]
fn sentinels_and_data_nodes_authenticate_separately() {
    let set = SentinelSet::start_with(SentinelSetConfig {
        data_password: Some("data-secret".into()),
        sentinel_password: Some("sentinel-secret".into()),
        ..SentinelSetConfig::default()
    });
    let node: ConnectionInfo = "redis://:data-secret@127.0.0.1/0".parse().unwrap();
    let sentinel = Sentinel::builder(set.sentinel_urls(), SENTINEL_SERVICE)
        .unwrap()
        .with_node_info(node)
        .build();
    let primary = sentinel.primary();
    assert!(primary.set("k", "v").unwrap());
    assert_eq!(primary.get("k").unwrap().as_deref(), Some(&b"v"[..]));
    let shown = format!("{sentinel:?} {primary:?}");
    assert!(!shown.contains("secret"), "{shown}");

    // The sentinels' password does not open the data nodes, nor the reverse.
    let wrong_nodes = Sentinel::builder(set.sentinel_urls(), SENTINEL_SERVICE)
        .unwrap()
        .with_node_info("redis://:sentinel-secret@127.0.0.1/0".parse().unwrap())
        .build();
    let err = wrong_nodes.primary().get("k").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    assert!(!err.to_string().contains("secret"), "{err}");

    let urls: Vec<String> = set
        .sentinel_urls()
        .iter()
        .map(|u| u.replace("sentinel-secret", "data-secret"))
        .collect();
    let wrong_sentinels = Sentinel::builder(urls, SENTINEL_SERVICE).unwrap().build();
    let err = wrong_sentinels.discover_primary().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
    assert!(!err.to_string().contains("secret"), "{err}");
}

#[test]
fn a_sentinel_down_leaves_the_others_to_answer() {
    let mut set = SentinelSet::start();
    let p = set.primary_port();
    set.sentinels[0].stop();
    let sentinel = watch(&set);
    assert_eq!(sentinel.discover_primary().unwrap(), tcp(p));
    let primary = sentinel.primary();
    assert!(primary.set("k", 1).unwrap());
    // The one that answered is asked first from now on; losing it too leaves the third.
    set.sentinels[1].stop();
    assert_eq!(sentinel.discover_primary().unwrap(), tcp(p));
    assert_eq!(primary.get("k").unwrap().as_deref(), Some(&b"1"[..]));

    // A sentinel that does not know the service and one that refuses the credentials are
    // skipped; the one that answered is asked first next time.
    let asked = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&asked);
    let unknown = FakeServer::start(move |mut c| {
        while let Some(args) = c.read_request() {
            // Only questions about the service count, not the event listener's PSUBSCRIBE.
            if args[0].eq_ignore_ascii_case(b"SENTINEL") {
                count.fetch_add(1, Ordering::SeqCst);
            }
            c.write(b"-ERR No such master with that name\r\n");
        }
    });
    let live = set.sentinels[2].port();
    let urls = [
        unknown.url(),
        format!("redis://:wrong@127.0.0.1:{live}"),
        format!("redis://127.0.0.1:{live}"),
    ];
    let picky = Sentinel::builder(urls, SENTINEL_SERVICE).unwrap().build();
    assert_eq!(picky.discover_primary().unwrap(), tcp(p));
    assert!(
        asked.load(Ordering::SeqCst) >= 1,
        "the unknown-service sentinel was asked first"
    );
    // The client's refresher asks too; one that began before the answer may still reach
    // the fake. Let it finish, then every question starts with the one that answered.
    std::thread::sleep(Duration::from_millis(300));
    let first_round = asked.load(Ordering::SeqCst);
    for _ in 0..3 {
        assert_eq!(picky.discover_primary().unwrap(), tcp(p));
    }
    assert_eq!(
        asked.load(Ordering::SeqCst),
        first_round,
        "the sentinel that answered was asked first"
    );
}

#[test]
fn a_node_whose_role_is_not_the_one_wanted_is_refused() {
    let set = SentinelSet::start();
    let sentinel = watch(&set);
    let replicas = sentinel.replicas();
    assert!(replicas.get("k").unwrap().is_none());
    // Promoted behind the sentinels' back: they still list it as a replica for seconds.
    set.nodes[1].raw(&["REPLICAOF", "NO", "ONE"]);
    let fresh = sentinel.replicas();
    let err = fresh.get("k").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
    assert!(err.to_string().contains("ROLE master"), "{err}");
    assert!(sentinel.stats().role_mismatches >= 1);

    // A primary's mismatch also retires the connections opened before it: a read through
    // a client whose pooled connection reaches the demoted node is not served from it.
    let primary = sentinel.primary();
    assert!(primary.get("k").unwrap().is_none());
    let b = set.nodes[1].port().to_string();
    set.nodes[0].raw(&["REPLICAOF", "127.0.0.1", &b]);
    let err = sentinel.primary().get("k").unwrap_err();
    assert!(err.to_string().contains("ROLE slave"), "{err}");
    let err = primary.get("k").unwrap_err();
    assert!(err.to_string().contains("ROLE slave"), "{err}");
}

#[test]
fn a_primary_demoted_behind_the_sentinels_back_gets_no_further_command() {
    let set = SentinelSet::start();
    let sentinel = watch(&set);
    let primary = sentinel.primary();
    assert!(primary.set("k", 1).unwrap());
    // A switch the sentinels have not seen yet: the replica promoted, the primary made
    // its replica.
    set.nodes[1].raw(&["REPLICAOF", "NO", "ONE"]);
    let b = set.nodes[1].port().to_string();
    set.nodes[0].raw(&["REPLICAOF", "127.0.0.1", &b]);
    let err = primary.set("k", 2).unwrap_err();
    assert!(err.to_string().contains("READONLY"), "{err}");
    assert_eq!(sentinel.stats().readonly_replies, 1);
    // The pooled connection is not used again, and the node the sentinels still name is
    // refused by ROLE rather than written to.
    let err = primary.set("k", 3).unwrap_err();
    assert!(err.to_string().contains("ROLE slave"), "{err}");
    assert_eq!(sentinel.stats().readonly_replies, 1);
}

#[test]
fn async_clients_follow_a_forced_failover_without_losing_acknowledged_writes() {
    let set = SentinelSet::start();
    let old = set.primary_port();
    let sentinel = watch(&set);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let primary = sentinel.primary_async();
    let replicas = sentinel.replicas_async();
    set.wait_subscribed(Duration::from_secs(5));
    let mut sub = primary.pubsub();
    sub.ignore_subscribe_messages(true);
    rt.block_on(sub.subscribe("news")).unwrap();
    rt.block_on(async {
        assert!(primary.set("greeting", "hello").await.unwrap());
        // The replica client reads from the replica, which refuses writes.
        let err = replicas.set("x", 1).await.unwrap_err();
        assert!(err.to_string().contains("READONLY"), "{err}");
    });
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let client = primary.clone();
            let stop = Arc::clone(&stop);
            rt.spawn(async move {
                let mut w = Written::default();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("a:{t}:{i}");
                    match client.set(&key, i).await {
                        Ok(_) => w.acked.push(key),
                        Err(e) => w.errors.push((Instant::now(), e.to_string())),
                    }
                    i += 1;
                }
                w
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    set.force_failover();
    let switched = wait_switch(&sentinel, Duration::from_secs(10));
    let new = set.wait_for_new_primary(old, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(1000));
    stop.store(true, Ordering::Relaxed);
    let written: Vec<Written> = writers
        .into_iter()
        .map(|h| rt.block_on(h).unwrap())
        .collect();
    let acked: Vec<String> = written.iter().flat_map(|w| w.acked.clone()).collect();
    let errors: Vec<&(Instant, String)> = written.iter().flat_map(|w| &w.errors).collect();
    let late_errors = errors
        .iter()
        .filter(|(at, _)| *at > switched + Duration::from_millis(200))
        .count();
    let missing = missing_on(new, &acked);
    eprintln!(
        "async forced failover: {} acknowledged, {} missing, {} errors ({} after the switch)",
        acked.len(),
        missing,
        errors.len(),
        late_errors
    );
    assert!(acked.len() > 1000, "the load ran: {}", acked.len());
    assert_eq!(missing, 0, "acknowledged writes lost");
    assert!(
        errors.is_empty(),
        "calls failed during the failover: {errors:?}"
    );
    // The subscriber moves with the epoch, as the blocking one does.
    until_reconnected(
        || rt.block_on(sub.get_message(Some(Duration::from_millis(200)))),
        Duration::from_secs(3),
    );
    assert_eq!(rt.block_on(primary.publish("news", "after")).unwrap(), 1);
    let got = rt
        .block_on(sub.get_message(Some(Duration::from_secs(5))))
        .unwrap();
    assert_eq!(got.map(|m| m.payload), Some("after".into()));
}

/// Reads `next` until it yields a `Reconnected` marker, tolerating the errors of the
/// attempts made while no primary was up; panics after `timeout`.
fn until_reconnected<F: FnMut() -> redis_client::Result<Option<redis_client::Message>>>(
    mut next: F,
    timeout: Duration,
) {
    let deadline = Instant::now() + timeout;
    loop {
        assert!(
            Instant::now() < deadline,
            "the subscriber never reconnected"
        );
        if let Ok(Some(m)) = next() {
            if m.kind == redis_client::MessageKind::Reconnected {
                return;
            }
        }
    }
}

#[test]
fn subscribers_and_dedicated_connections_follow_a_killed_primary() {
    let mut set = SentinelSet::start();
    let old = set.primary_port();
    let sentinel = watch(&set);
    let primary = sentinel.primary();
    let primary_async = sentinel.primary_async();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut sub = primary.pubsub();
    sub.ignore_subscribe_messages(true);
    sub.subscribe("news").unwrap();
    let mut async_sub = primary_async.pubsub();
    async_sub.ignore_subscribe_messages(true);
    rt.block_on(async_sub.subscribe("news")).unwrap();
    assert_eq!(primary.publish("news", "before").unwrap(), 2);

    set.node(old).stop();
    wait_switch(&sentinel, Duration::from_secs(20));
    let new = set.wait_for_new_primary(old, Duration::from_secs(10));

    // Both subscribers renew their subscription on the new primary, not on the address
    // they first had (whose server is gone for good).
    let wait = Duration::from_millis(200);
    until_reconnected(|| sub.get_message(Some(wait)), Duration::from_secs(20));
    until_reconnected(
        || rt.block_on(async_sub.get_message(Some(wait))),
        Duration::from_secs(20),
    );
    assert_eq!(primary.publish("news", "after").unwrap(), 2);
    let got = sub
        .get_message(Some(Duration::from_secs(5)))
        .unwrap()
        .unwrap();
    assert_eq!(&got.payload[..], b"after");
    let got = rt
        .block_on(async_sub.get_message(Some(Duration::from_secs(5))))
        .unwrap()
        .unwrap();
    assert_eq!(&got.payload[..], b"after");

    // A dedicated connection opened now goes to the new primary too.
    let mut conn = primary.dedicated_connection().unwrap();
    let port: u16 = conn
        .config_get("port")
        .unwrap()
        .get("port")
        .and_then(|p| p.parse().ok())
        .unwrap();
    assert_eq!(port, new);
}

#[test]
fn event_subscriptions_dropped_by_the_sentinels_are_renewed() {
    let set = SentinelSet::start();
    let old = set.primary_port();
    let sentinel = watch(&set);
    let primary = sentinel.primary();
    primary.ping().unwrap();
    set.wait_subscribed(Duration::from_secs(5));
    for s in &set.sentinels {
        s.raw(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    }
    // Renewed on every sentinel; the failover is then announced to the client.
    set.wait_subscribed(Duration::from_secs(5));
    set.force_failover();
    wait_switch(&sentinel, Duration::from_secs(10));
    let new = set.wait_for_new_primary(old, Duration::from_secs(10));
    assert!(sentinel.stats().failovers >= 1, "{:?}", sentinel.stats());
    assert!(primary.set("after", 1).unwrap());
    assert_eq!(missing_on(new, &["after".to_owned()]), 0);
}

#[test]
fn without_the_events_the_refresher_follows_a_failover() {
    let set = SentinelSet::start();
    let old = set.primary_port();
    // A sentinel user that may ask but not subscribe: the client hears no event and
    // learns of the failover from its refresher alone.
    for s in &set.sentinels {
        assert_eq!(
            s.raw(&[
                "ACL",
                "SETUSER",
                "asker",
                "on",
                ">pw",
                "+@all",
                "-psubscribe",
                "-subscribe",
            ]),
            "+OK"
        );
    }
    let urls: Vec<String> = set
        .sentinels
        .iter()
        .map(|s| format!("redis://asker:pw@127.0.0.1:{}", s.port()))
        .collect();
    let sentinel = Sentinel::builder(urls, SENTINEL_SERVICE)
        .unwrap()
        .with_refresh_interval(Duration::from_millis(500))
        .build();
    let primary = sentinel.primary();
    primary.ping().unwrap();
    set.force_failover();
    let new = set.wait_for_new_primary(old, Duration::from_secs(10));
    let promoted = Instant::now();
    wait_switch(&sentinel, Duration::from_secs(10));
    assert!(
        promoted.elapsed() < Duration::from_secs(3),
        "learnt {:?} after the sentinels named the new primary",
        promoted.elapsed()
    );
    assert_eq!(sentinel.stats().failovers, 0, "no event was heard");
    assert!(primary.set("after", 1).unwrap());
    assert_eq!(missing_on(new, &["after".to_owned()]), 0);
}
