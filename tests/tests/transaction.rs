//! WATCH, immediate mode, the watch error, reset and drop, and the retrying
//! `transaction` helper under contention.

mod common;

use common::for_each_protocol;
use redis_client::prelude::*;
use redis_client::{ConnectionInfo, ConnectionPool, Error, PoolOptions, Redis, Value};
use redis_tests::TestServer;
use std::sync::atomic::{AtomicUsize, Ordering};

fn int(v: Option<bytes::Bytes>) -> i64 {
    v.and_then(|b| std::str::from_utf8(&b).ok()?.parse().ok())
        .unwrap_or(0)
}

/// A client whose pool holds one connection, so every call reuses the same one.
fn single_connection(server: &TestServer) -> Redis {
    let info = ConnectionInfo::tcp("127.0.0.1", server.port());
    Redis::from_pool(ConnectionPool::with_options(
        info,
        PoolOptions::default().with_max_size(1),
    ))
}

#[test]
fn reference_watch_loop_increments() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        r.set("OUR-SEQUENCE-KEY", 41).unwrap();
        loop {
            let mut watched = r.pipeline().watch("OUR-SEQUENCE-KEY").unwrap();
            let current = int(watched.get("OUR-SEQUENCE-KEY").unwrap());
            let mut tx = watched.multi();
            tx.set("OUR-SEQUENCE-KEY", current + 1);
            match tx.execute() {
                Ok(values) => {
                    assert_eq!(values, [Value::Boolean(true)]);
                    break;
                }
                Err(Error::Watch) => continue,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(int(r.get("OUR-SEQUENCE-KEY").unwrap()), 42);
    });
}

#[test]
fn immediate_mode_returns_values_at_once() {
    let server = TestServer::start();
    let r = Redis::open(&server.url()).unwrap();
    r.set("k", "v").unwrap();
    let mut watched = r.pipeline().watch("k").unwrap();
    assert_eq!(watched.get("k").unwrap().as_deref(), Some(&b"v"[..]));
    // A write in immediate mode is visible to others before any EXEC.
    assert_eq!(watched.incr("counter").unwrap(), 1);
    assert_eq!(
        watched.execute_command(("EXISTS", "counter")).unwrap(),
        Value::Integer(1)
    );
    assert_eq!(int(r.get("counter").unwrap()), 1);
}

#[test]
fn watch_error_when_another_client_writes_the_key() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        let other = Redis::open(&server.url()).unwrap();
        r.set("k", 1).unwrap();
        let mut watched = r.pipeline().watch("k").unwrap();
        let current = int(watched.get("k").unwrap());
        other.set("k", 100).unwrap();
        let mut pipe = watched.multi();
        pipe.set("k", current + 1);
        let err = pipe.execute().unwrap_err();
        assert!(matches!(err, Error::Watch), "{err:?}");
        // Nothing ran.
        assert_eq!(int(r.get("k").unwrap()), 100);
        // The pipeline is usable again, unwatched.
        pipe.set("k", 7);
        assert_eq!(pipe.execute().unwrap(), [Value::Boolean(true)]);
    });
}

#[test]
fn watching_more_keys_in_immediate_mode() {
    let server = TestServer::start();
    let r = Redis::open(&server.url()).unwrap();
    let other = Redis::open(&server.url()).unwrap();
    let mut watched = r.pipeline().watch("a").unwrap();
    watched.watch("b").unwrap();
    other.set("b", 1).unwrap();
    let mut pipe = watched.multi();
    pipe.set("a", 1);
    assert!(matches!(pipe.execute(), Err(Error::Watch)));
}

#[test]
fn dropping_a_watched_pipeline_leaves_no_watch() {
    let server = TestServer::start();
    let r = single_connection(&server);
    let other = Redis::open(&server.url()).unwrap();
    let id = r.execute_command(("CLIENT", "ID")).unwrap();
    {
        let mut watched = r.pipeline().watch("k").unwrap();
        watched.get("k").unwrap();
    }
    other.set("k", "changed").unwrap();
    // The same pooled connection runs the next transaction, and it is not aborted.
    assert_eq!(r.execute_command(("CLIENT", "ID")).unwrap(), id);
    let mut pipe = r.pipeline();
    pipe.set("k", "mine");
    assert_eq!(pipe.execute().unwrap(), [Value::Boolean(true)]);
    assert_eq!(r.get("k").unwrap().as_deref(), Some(&b"mine"[..]));
}

#[test]
fn reset_unwatches_and_returns_the_connection() {
    let server = TestServer::start();
    let r = single_connection(&server);
    let other = Redis::open(&server.url()).unwrap();
    let mut watched = r.pipeline().watch("k").unwrap();
    watched.get("k").unwrap();
    let mut pipe = watched.multi();
    pipe.reset();
    other.set("k", "changed").unwrap();
    // The pool's only connection is free again (no checkout timeout) and unwatched.
    let mut tx = r.pipeline();
    tx.set("k", "mine");
    assert_eq!(tx.execute().unwrap(), [Value::Boolean(true)]);
    // `Watched::reset` does the same.
    r.pipeline().watch("k").unwrap().reset();
    other.set("k", "again").unwrap();
    tx.set("k", "mine");
    assert_eq!(tx.execute().unwrap(), [Value::Boolean(true)]);
}

#[test]
fn watch_without_multi_executes_nothing_and_unwatches() {
    let server = TestServer::start();
    let r = single_connection(&server);
    let other = Redis::open(&server.url()).unwrap();
    let mut pipe = r.pipeline().watch("k").unwrap().multi();
    assert_eq!(pipe.execute().unwrap(), Vec::<Value>::new());
    other.set("k", "changed").unwrap();
    pipe.set("k", "mine");
    assert_eq!(pipe.execute().unwrap(), [Value::Boolean(true)]);
}

#[test]
fn transaction_helper_returns_exec_results() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        let values = r
            .transaction("OUR-SEQUENCE-KEY", |mut pipe| {
                let current = int(pipe.get("OUR-SEQUENCE-KEY")?);
                let mut tx = pipe.multi();
                tx.set("OUR-SEQUENCE-KEY", current + 1).incr("calls");
                Ok(tx)
            })
            .unwrap();
        assert_eq!(values, [Value::Boolean(true), Value::Integer(1)]);
        assert_eq!(int(r.get("OUR-SEQUENCE-KEY").unwrap()), 1);
    });
}

#[test]
fn transaction_helper_retries_after_a_watch_error() {
    let server = TestServer::start();
    let r = Redis::open(&server.url()).unwrap();
    let other = Redis::open(&server.url()).unwrap();
    let mut attempts = 0;
    r.transaction(["a", "b"], |mut pipe| {
        attempts += 1;
        let current = int(pipe.get("a")?);
        if attempts == 1 {
            // Another client writes a watched key between the read and EXEC.
            other.set("b", "interference").unwrap();
        }
        let mut tx = pipe.multi();
        tx.set("a", current + 1);
        Ok(tx)
    })
    .unwrap();
    assert_eq!(attempts, 2);
    assert_eq!(int(r.get("a").unwrap()), 1);
}

#[test]
fn transaction_helper_passes_other_errors_through_unwatched() {
    let server = TestServer::start();
    let r = single_connection(&server);
    let other = Redis::open(&server.url()).unwrap();
    r.sadd("set", "x").unwrap();
    let err = r
        .transaction("k", |mut pipe| {
            pipe.get("set")?; // WRONGTYPE
            Ok(pipe.multi())
        })
        .unwrap_err();
    assert!(matches!(err, Error::Server(_)), "{err:?}");
    other.set("k", "changed").unwrap();
    let mut pipe = r.pipeline();
    pipe.set("k", "mine");
    assert_eq!(pipe.execute().unwrap(), [Value::Boolean(true)]);
}

#[test]
fn eight_threads_increment_through_transaction() {
    const THREADS: usize = 8;
    const EACH: usize = 200;
    let server = TestServer::start();
    let r = Redis::open(&server.url()).unwrap();
    let attempts = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for _ in 0..EACH {
                    r.transaction("counter", |mut pipe| {
                        attempts.fetch_add(1, Ordering::Relaxed);
                        let current = int(pipe.get("counter")?);
                        // Give the other threads a chance to get between read and EXEC.
                        std::thread::yield_now();
                        let mut tx = pipe.multi();
                        tx.set("counter", current + 1);
                        Ok(tx)
                    })
                    .unwrap();
                }
            });
        }
    });
    assert_eq!(int(r.get("counter").unwrap()), (THREADS * EACH) as i64);
    let retries = attempts.into_inner() - THREADS * EACH;
    assert!(retries >= 1, "no retry observed");
}

/// A server that answers WATCH 250 ms late, everything else at once.
fn slow_watch() -> redis_tests::FakeServer {
    redis_tests::FakeServer::start(|mut c: redis_tests::FakeConn| {
        while let Some(args) = c.read_request() {
            if args[0].eq_ignore_ascii_case(b"WATCH") {
                std::thread::sleep(std::time::Duration::from_millis(250));
            }
            c.write(b"+OK\r\n");
        }
    })
}

#[test]
fn one_budget_covers_a_watch_and_the_wait_for_its_connection() {
    use std::time::{Duration, Instant};
    // The pool's one connection is busy for 200 ms, then WATCH takes 250 ms: together past
    // the 300 ms budget, which a WATCH given a fresh budget after its checkout would not
    // see.
    let fake = slow_watch();
    let budget = Duration::from_millis(300);
    let info: ConnectionInfo = fake.url().parse().unwrap();
    let pool = ConnectionPool::with_options(info, PoolOptions::default().with_max_size(1));
    let r = Redis::from_pool(pool)
        .with_retry_policy(redis_client::RetryPolicy::default().with_budget(Some(budget)));
    let held = r.pool().get().unwrap();
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        drop(held);
    });
    let start = Instant::now();
    let err = r.pipeline().watch("k").unwrap_err();
    let took = start.elapsed();
    releaser.join().unwrap();
    assert!(matches!(err, Error::Timeout), "{err:?}");
    assert!(took < budget + Duration::from_millis(150), "took {took:?}");
}
