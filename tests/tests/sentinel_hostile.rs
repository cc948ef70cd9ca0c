//! Hostile and broken sentinels, for the blocking and the async Sentinel clients:
//! sentinels that stall, answer with garbage, send malformed events, or name a "primary"
//! that is a replica. Each call ends within the data nodes' connect timeout with a typed
//! error, and nothing spins.
//!
//! The sentinels are scripted fakes, since a real sentinel cannot be made to send these.

use redis_client::prelude::*;
use redis_client::{ConnectionInfo, ErrorKind, PoolOptions, Redis, RetryPolicy, Sentinel};
use redis_tests::{FakeConn, FakeServer};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The data nodes' connect timeout: every call here must end within it (plus slack).
const CONNECT: Duration = Duration::from_millis(400);
/// How late past it a call may end (scheduling on a busy machine).
const SLACK: Duration = Duration::from_millis(400);

/// A fake sentinel: `script` gets every request but the handshake's `PING`.
fn sentinel(script: impl Fn(&mut FakeConn, &[Vec<u8>]) + Send + Sync + 'static) -> FakeServer {
    FakeServer::start(move |mut c: FakeConn| {
        while let Some(args) = c.read_request() {
            script(&mut c, &args);
        }
    })
}

/// A `SENTINEL MASTER` answer naming `ip:port`, with a config epoch when given.
fn master_reply(ip: &str, port: &str, epoch: Option<u64>) -> String {
    let (fields, epoch) = match epoch {
        Some(e) => (
            6,
            format!("$12\r\nconfig-epoch\r\n${}\r\n{e}\r\n", e.to_string().len()),
        ),
        None => (4, String::new()),
    };
    format!(
        "*{fields}\r\n$2\r\nip\r\n${}\r\n{ip}\r\n$4\r\nport\r\n${}\r\n{port}\r\n{epoch}",
        ip.len(),
        port.len()
    )
}

/// A sentinel that names `127.0.0.1:port` as the primary and says nothing to anything
/// else.
fn naming(port: u16, epoch: Option<u64>) -> FakeServer {
    let reply = master_reply("127.0.0.1", &port.to_string(), epoch);
    sentinel(move |c, args| {
        if is(args.first(), "SENTINEL") {
            c.write(reply.as_bytes());
        } else {
            c.hold(Duration::from_secs(15));
        }
    })
}

fn is(arg: Option<&Vec<u8>>, word: &str) -> bool {
    arg.is_some_and(|a| a.eq_ignore_ascii_case(word.as_bytes()))
}

/// A Sentinel for the service `svc` watched by `fakes`, the data nodes' connect timeout
/// [`CONNECT`] and no retries (each call is one attempt to open a connection).
fn watch(fakes: &[&FakeServer]) -> Sentinel {
    Sentinel::builder(fakes.iter().map(|f| f.url()), "svc")
        .unwrap()
        .with_node_info(ConnectionInfo::tcp("", 0).with_connect_timeout(Some(CONNECT)))
        .with_pool_options(PoolOptions::default())
        .build()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The call ended within the connect timeout.
fn in_time(took: Duration, what: &str) {
    assert!(took < CONNECT + SLACK, "{what} took {took:?}");
}

/// One GET through `client`, tried once and timed; it must fail with a connection error.
fn fails_in_time(client: &Redis, what: &str) {
    let client = client.clone().with_retry_policy(RetryPolicy::none());
    let t = Instant::now();
    let r = client.get::<_>("k");
    in_time(t.elapsed(), what);
    let e = r.expect_err(what);
    assert_eq!(e.kind(), ErrorKind::Connection, "{what}: {e}");
}

async fn fails_in_time_async(client: &redis_client::aio::Redis, what: &str) {
    let client = client.clone().with_retry_policy(RetryPolicy::none());
    let t = Instant::now();
    let r = client.get::<_>("k").await;
    in_time(t.elapsed(), what);
    let e = r.expect_err(what);
    assert_eq!(e.kind(), ErrorKind::Connection, "{what}: {e}");
}

// ---------------------------------------------------------------------------------------
// A sentinel that stalls.

/// Accepts, answers the handshake, then never answers a question.
fn stalling() -> FakeServer {
    sentinel(|c, _| c.hold(Duration::from_secs(15)))
}

#[test]
fn a_stalling_sentinel_holds_no_call_past_the_connect_timeout() {
    let fake = stalling();
    let s = watch(&[&fake]);
    let t = Instant::now();
    let primary = s.primary();
    in_time(t.elapsed(), "making the primary client");
    fails_in_time(&primary, "primary");
    fails_in_time(&s.replicas(), "replicas");
    // Callers at once do not queue behind one another's question.
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let p = primary.clone();
            std::thread::spawn(move || fails_in_time(&p, "one of four threads"))
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let rt = rt();
    rt.block_on(async {
        fails_in_time_async(&s.primary_async(), "async primary").await;
        fails_in_time_async(&s.replicas_async(), "async replicas").await;
    });
}

// ---------------------------------------------------------------------------------------
// Garbage answers.

/// Answers `SENTINEL MASTER` and `SENTINEL REPLICAS` with `reply`; holds subscriptions.
fn answering(reply: &'static [u8]) -> FakeServer {
    sentinel(move |c, args| {
        if is(args.first(), "SENTINEL") {
            c.write(reply);
        } else {
            c.hold(Duration::from_secs(15));
        }
    })
}

#[test]
fn garbage_answers_are_connection_errors_in_time() {
    let rt = rt();
    let cases: &[(&str, &[u8])] = &[
        ("nil", b"$-1\r\n"),
        ("null array", b"*-1\r\n"),
        ("integer", b":1\r\n"),
        (
            "odd fields",
            b"*3\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$4\r\nport\r\n",
        ),
        (
            "non-numeric port",
            b"*4\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$4\r\nport\r\n$4\r\nsoon\r\n",
        ),
        (
            "port past 65535",
            b"*4\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$4\r\nport\r\n$5\r\n70000\r\n",
        ),
        ("nested garbage", b"*2\r\n*1\r\n*0\r\n:5\r\n"),
        ("error", b"-ERR no such master with that name\r\n"),
        ("protocol garbage", b"&&&\r\n"),
    ];
    for &(what, reply) in cases {
        let fake = answering(reply);
        let s = watch(&[&fake]);
        fails_in_time(&s.primary(), what);
        fails_in_time(&s.replicas(), what);
        assert!(s.discover_primary().is_err(), "{what}");
        rt.block_on(fails_in_time_async(&s.primary_async(), what));
    }
}

// ---------------------------------------------------------------------------------------
// The event subscription.

/// Confirms `PSUBSCRIBE *`, then sends `events` and, with `close`, closes the
/// connection; answers `SENTINEL MASTER` with nil. Counts the subscriptions.
fn subscribed(events: &'static [u8], close: bool, subscriptions: Arc<AtomicUsize>) -> FakeServer {
    FakeServer::start(move |mut c: FakeConn| {
        while let Some(args) = c.read_request() {
            if is(args.first(), "PSUBSCRIBE") {
                subscriptions.fetch_add(1, Ordering::SeqCst);
                c.write(b"*3\r\n$10\r\npsubscribe\r\n$1\r\n*\r\n:1\r\n");
                c.write(events);
                if close {
                    return;
                }
            } else {
                c.write(b"*-1\r\n");
            }
        }
    })
}

#[test]
fn a_subscription_fed_garbage_is_renewed_with_a_backoff_not_in_a_loop() {
    let cases: &[(&str, &[u8], bool)] = &[
        ("protocol garbage", b"&&&\r\n", false),
        ("a reply that is no message", b":12\r\n", false),
        (
            "a message of the wrong arity",
            b"*2\r\n$8\r\npmessage\r\n$1\r\n*\r\n",
            false,
        ),
        ("an error reply", b"-ERR no\r\n", false),
        ("closed once confirmed", b"", true),
    ];
    for &(what, events, close) in cases {
        let subscriptions = Arc::new(AtomicUsize::new(0));
        let fake = subscribed(events, close, subscriptions.clone());
        let s = watch(&[&fake]);
        std::thread::sleep(Duration::from_secs(1));
        let n = subscriptions.load(Ordering::SeqCst);
        drop(s);
        // With the backoff: at 0, 0.1, 0.3, 0.7 s (and a little more for the slow).
        assert!(n <= 6, "{what}: {n} subscriptions in one second");
    }
}

#[test]
fn malformed_switch_master_events_change_nothing() {
    let pm = |payload: &str| {
        format!(
            "*4\r\n$8\r\npmessage\r\n$1\r\n*\r\n$14\r\n+switch-master\r\n${}\r\n{payload}\r\n",
            payload.len()
        )
    };
    let events: String = [
        "svc",
        "svc 127.0.0.1 1 127.0.0.1",
        "svc 127.0.0.1 1 127.0.0.1 soon",
        "svc 127.0.0.1 1 127.0.0.1 70000",
        "svc 127.0.0.1 1 127.0.0.1 -1",
        "svc  1 127.0.0.1 1 extra",
        "svc 127.0.0.1 1  6380",
        "svc 127.0.0.1 1 127.0.0.1 0",
        "",
    ]
    .iter()
    .map(|p| pm(p))
    .collect();
    let events: &'static [u8] = Box::leak(events.into_bytes().into_boxed_slice());
    let subscriptions = Arc::new(AtomicUsize::new(0));
    let fake = subscribed(events, false, subscriptions.clone());
    let s = watch(&[&fake]);
    // The events arrive with the subscription; give them time to be read.
    while subscriptions.load(Ordering::SeqCst) < 1 {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(s.stats().switches, 0, "{s:?}");
    assert!(s.discover_primary().is_err());
}

// ---------------------------------------------------------------------------------------
// A "primary" that is a replica.

#[test]
fn a_primary_that_answers_role_as_a_replica_is_refused_in_time() {
    let node = FakeServer::start(|mut c: FakeConn| {
        while let Some(args) = c.read_request() {
            if is(args.first(), "ROLE") {
                c.write(b"*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:1\r\n$9\r\nconnected\r\n:1\r\n");
            } else {
                c.write(b"$1\r\nv\r\n");
            }
        }
    });
    let fake = naming(node.port(), Some(1));
    let s = watch(&[&fake]);
    fails_in_time(&s.primary(), "primary");
    assert!(s.stats().role_mismatches >= 1);
    rt().block_on(fails_in_time_async(&s.primary_async(), "async primary"));
}

#[test]
fn a_primary_that_never_answers_role_is_refused_in_time() {
    let node = FakeServer::start(|mut c: FakeConn| {
        if c.read_request().is_some() {
            c.hold(Duration::from_secs(15));
        }
    });
    let fake = naming(node.port(), None);
    let s = watch(&[&fake]);
    let timed_out = |r: redis_client::Result<Option<redis_client::Bytes>>, took, what: &str| {
        in_time(took, what);
        let e = r.expect_err(what);
        assert!(
            matches!(e.kind(), ErrorKind::Timeout | ErrorKind::Connection),
            "{what}: {e}"
        );
    };
    let primary = s.primary().with_retry_policy(RetryPolicy::none());
    let t = Instant::now();
    timed_out(primary.get("k"), t.elapsed(), "primary");
    let primary = s.primary_async().with_retry_policy(RetryPolicy::none());
    let t = Instant::now();
    timed_out(
        rt().block_on(primary.get("k")),
        t.elapsed(),
        "async primary",
    );
}

#[test]
fn a_sentinel_naming_no_usable_address_leaves_the_next_to_answer() {
    let node = FakeServer::start(|mut c: FakeConn| {
        while let Some(args) = c.read_request() {
            if is(args.first(), "ROLE") {
                c.write(b"*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n");
            } else {
                c.write(b"$5\r\nright\r\n");
            }
        }
    });
    let master = |ip: &str, port: &str| master_reply(ip, port, None);
    let good = master("127.0.0.1", &node.port().to_string());
    let answering_with = |reply: String| {
        sentinel(move |c, args| {
            if is(args.first(), "SENTINEL") {
                c.write(reply.as_bytes());
            } else {
                c.hold(Duration::from_secs(15));
            }
        })
    };
    for (what, bad) in [
        ("port 0", master("127.0.0.1", "0")),
        ("empty ip", master("", "6379")),
    ] {
        let first = answering_with(bad);
        let second = answering_with(good.clone());
        let s = watch(&[&first, &second]);
        let primary = s.primary().with_retry_policy(RetryPolicy::none());
        assert_eq!(primary.get("k").unwrap(), Some("right".into()), "{what}");
    }
}
