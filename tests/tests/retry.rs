//! The retry policy against real faults: a reply cut by the fault proxy, a server that
//! restarts, a server that is not up yet.

use redis_client::prelude::*;
use redis_client::{ConnectionInfo, Error, Redis, RetryPolicy};
use redis_tests::{FakeServer, FaultProxy, TestServer};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn through(proxy: &FaultProxy) -> ConnectionInfo {
    ConnectionInfo::tcp("127.0.0.1", proxy.port()).with_timeout(Some(Duration::from_secs(2)))
}

#[test]
fn a_write_whose_reply_was_lost_is_not_resent() {
    let server = TestServer::start();
    let proxy = FaultProxy::start(server.port());
    let r = Redis::from_info(through(&proxy));
    assert_eq!(r.incr("n").unwrap(), 1);
    // The request reaches the server, which runs it; the reply never comes back.
    proxy.cut_after(0);
    let err = r.incr("n").unwrap_err();
    assert!(err.is_connection_lost(), "{err:?}");
    assert_eq!(
        server.raw(&["GET", "n"]),
        "2",
        "it ran exactly once and was not resent"
    );
}

#[test]
fn a_write_is_resent_when_the_user_allows() {
    let server = TestServer::start();
    let proxy = FaultProxy::start(server.port());
    let r = Redis::from_info(through(&proxy))
        .with_retry_policy(RetryPolicy::default().with_retry_writes(true));
    assert_eq!(r.incr("n").unwrap(), 1);
    proxy.cut_after(0);
    // The first INCR ran but its reply was lost; the resent one answers.
    assert_eq!(r.incr("n").unwrap(), 3);
}

#[test]
fn a_read_whose_reply_was_lost_is_retried() {
    let server = TestServer::start();
    let proxy = FaultProxy::start(server.port());
    let r = Redis::from_info(through(&proxy));
    r.set("k", "v").unwrap();
    proxy.cut_after(3);
    assert_eq!(
        r.get("k").unwrap().as_deref(),
        Some(&b"v"[..]),
        "GET is read-only: retried on a new connection"
    );
}

#[test]
fn no_retry_policy_surfaces_the_first_failure() {
    let server = TestServer::start();
    let proxy = FaultProxy::start(server.port());
    let r = Redis::from_info(through(&proxy)).with_retry_policy(RetryPolicy::none());
    r.set("k", "v").unwrap();
    proxy.cut_after(3);
    assert!(r.get("k").unwrap_err().is_connection_lost());
}

#[test]
fn connect_failures_are_retried_until_the_server_is_up() {
    let mut server = TestServer::start();
    let info = ConnectionInfo::tcp("127.0.0.1", server.port());
    server.stop();
    let r = Redis::from_info(info).with_retry_policy(
        RetryPolicy::default()
            .with_max_retries(20)
            .with_backoff(Duration::from_millis(50), Duration::from_millis(200)),
    );
    let starter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        server.restart();
        server
    });
    assert!(
        r.set("k", "v").unwrap(),
        "a connect failure never reached the server, so even a write retries"
    );
    let server = starter.join().unwrap();
    assert_eq!(server.raw(&["GET", "k"]), "v");
}

#[test]
fn a_restart_is_survived_without_retries() {
    let mut server = TestServer::start();
    let r = Redis::open(&server.url())
        .unwrap()
        .with_retry_policy(RetryPolicy::none());
    r.set("k", "v").unwrap();
    server.stop();
    server.restart();
    // The pooled connection died with the old process; the checkout look finds it closed
    // and opens a new one before the request is written, so even a write goes through
    // with retries off (the data is gone: persistence is off).
    assert!(r.set("k2", "v").unwrap());
    assert_eq!(r.get("k").unwrap(), None);
    assert_eq!(r.pool().stats().discarded, 1);
}

#[test]
fn errors_from_the_server_are_not_retried() {
    let server = TestServer::start();
    let r = Redis::open(&server.url()).unwrap();
    r.sadd("s", "x").unwrap();
    assert!(matches!(r.get("s").unwrap_err(), Error::Server(_)));
}

#[test]
fn connections_closed_by_the_server_idle_timeout_are_replaced_before_use() {
    let server = redis_tests::ServerConfig::default()
        .line("timeout 1")
        .start();
    let r = Redis::open(&server.url())
        .unwrap()
        .with_retry_policy(RetryPolicy::none());
    assert_eq!(r.incr("n").unwrap(), 1);
    // The server drops clients idle longer than 1 s (checked about once a second).
    let start = std::time::Instant::now();
    while server
        .raw(&["CLIENT", "LIST", "TYPE", "normal"])
        .lines()
        .count()
        > 1
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "server never closed the idle connection"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Even a write, with retries off, goes through: the dead connection is noticed before
    // the request is written to it.
    assert_eq!(r.incr("n").unwrap(), 2);
    assert_eq!(r.pool().stats().discarded, 1);
}

/// A fake server whose first connection answers every command twice in one write (a
/// reply nobody asked for); later connections answer once. `seen` counts the commands
/// other than the handshake's.
fn doubling_first_connection(seen: Arc<AtomicUsize>) -> FakeServer {
    let first = Arc::new(AtomicBool::new(true));
    FakeServer::start(move |mut c| {
        let doubled = first.swap(false, Ordering::SeqCst);
        while let Some(args) = c.read_request() {
            let reply: &[u8] = if args[0].eq_ignore_ascii_case(b"GET") {
                b"$1\r\nv\r\n"
            } else {
                b"+OK\r\n"
            };
            seen.fetch_add(1, Ordering::SeqCst);
            if doubled {
                c.write(&[reply, reply].concat());
            } else {
                c.write(reply);
            }
        }
    })
}

#[test]
fn a_write_answered_out_of_step_is_not_resent_unless_the_user_allows() {
    let seen = Arc::new(AtomicUsize::new(0));
    let fake = doubling_first_connection(Arc::clone(&seen));
    let r = Redis::from_info(ConnectionInfo::tcp("127.0.0.1", fake.port()));
    let err = r.set("k", "v").unwrap_err();
    assert!(matches!(err, Error::OutOfStep(_)), "{err:?}");
    assert_eq!(seen.load(Ordering::SeqCst), 1, "the SET was sent once");

    let seen = Arc::new(AtomicUsize::new(0));
    let fake = doubling_first_connection(Arc::clone(&seen));
    let r = Redis::from_info(ConnectionInfo::tcp("127.0.0.1", fake.port()))
        .with_retry_policy(RetryPolicy::default().with_retry_writes(true));
    assert!(r.set("k", "v").unwrap(), "resent on a new connection");
    assert_eq!(seen.load(Ordering::SeqCst), 2);
}

#[test]
fn a_read_answered_out_of_step_is_retried() {
    let seen = Arc::new(AtomicUsize::new(0));
    let fake = doubling_first_connection(Arc::clone(&seen));
    let r = Redis::from_info(ConnectionInfo::tcp("127.0.0.1", fake.port()));
    assert_eq!(r.get("k").unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(
        seen.load(Ordering::SeqCst),
        2,
        "sent again on a new connection"
    );
}

#[test]
fn a_server_error_is_not_retried_even_for_a_read() {
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&seen);
    let fake = FakeServer::start(move |mut c| {
        while c.read_request().is_some() {
            counter.fetch_add(1, Ordering::SeqCst);
            c.write(b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
        }
    });
    let r = Redis::from_info(ConnectionInfo::tcp("127.0.0.1", fake.port()))
        .with_retry_policy(RetryPolicy::default().with_retry_writes(true));
    assert!(matches!(r.get("s").unwrap_err(), Error::Server(_)));
    assert_eq!(seen.load(Ordering::SeqCst), 1, "answered: never sent again");
}

#[test]
fn a_pipeline_whose_reply_was_lost_is_not_resent_even_with_retry_writes() {
    let server = TestServer::start();
    let proxy = FaultProxy::start(server.port());
    let policy = RetryPolicy::default().with_retry_writes(true);
    let r = Redis::from_info(through(&proxy)).with_retry_policy(policy);
    for (transaction, key) in [(true, "in-multi"), (false, "plain")] {
        assert_eq!(r.incr(key).unwrap(), 1);
        // The pipeline reaches the server, which runs it; the replies never come back.
        proxy.cut_after(0);
        let mut pipe = r.pipeline();
        pipe.transaction(transaction);
        pipe.incr(key);
        let err = pipe.execute().unwrap_err();
        assert!(err.is_connection_lost(), "{err:?}");
        proxy.no_cut();
        assert_eq!(
            server.raw(&["GET", key]),
            "2",
            "transaction {transaction}: ran once, not resent"
        );
    }
}
