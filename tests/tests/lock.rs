//! The lock: the reference client's lock tests, translated, and what it adds (tokens, a
//! holder whose lease expired cannot release the next holder's lock).

use redis_client::prelude::*;
use redis_client::{Error, LockError, Redis};
use redis_tests::TestServer;
use std::time::{Duration, Instant};

fn client(server: &TestServer) -> Redis {
    Redis::open(&server.url()).unwrap()
}

#[test]
fn acquire_and_release() {
    let server = TestServer::start();
    let r = client(&server);
    let guard = r.lock("l").acquire().unwrap();
    assert!(guard.is_held().unwrap());
    let ttl: i64 = match r.execute_command(("PTTL", "l")).unwrap() {
        redis_client::Value::Integer(n) => n,
        other => panic!("{other:?}"),
    };
    assert!(ttl > 0 && ttl <= 10_000, "a lease is always set: {ttl}");
    guard.release().unwrap();
    assert_eq!(r.exists("l").unwrap(), 0);
}

#[test]
fn non_blocking_acquire_fails_while_held() {
    let server = TestServer::start();
    let r = client(&server);
    let _held = r.lock("l").acquire().unwrap();
    assert!(r.lock("l").try_acquire().unwrap().is_none());
}

#[test]
fn blocking_acquire_times_out() {
    let server = TestServer::start();
    let r = client(&server);
    let _held = r.lock("l").acquire().unwrap();
    let start = Instant::now();
    let err = r
        .lock("l")
        .sleep(Duration::from_millis(20))
        .timeout(Some(Duration::from_millis(200)))
        .acquire()
        .unwrap_err();
    assert!(
        matches!(err, Error::Lock(LockError::Timeout { .. })),
        "{err:?}"
    );
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_millis(600),
        "{took:?}"
    );
}

#[test]
fn lease_expiry_lets_another_holder_in() {
    let server = TestServer::start();
    let r = client(&server);
    let first = r
        .lock("l")
        .lease(Duration::from_millis(100))
        .acquire()
        .unwrap();
    let start = Instant::now();
    let second = r
        .lock("l")
        .sleep(Duration::from_millis(10))
        .timeout(Some(Duration::from_secs(2)))
        .acquire()
        .unwrap();
    assert!(start.elapsed() >= Duration::from_millis(50));
    assert!(second.is_held().unwrap());
    // The first holder's lease ran out: it cannot release the second holder's lock.
    let err = first.release().unwrap_err();
    assert!(
        matches!(err, Error::Lock(LockError::NotHeld { .. })),
        "{err:?}"
    );
    assert!(
        second.is_held().unwrap(),
        "the new holder's lock is untouched"
    );
    second.release().unwrap();
}

#[test]
fn releasing_an_unheld_lock_errors() {
    let server = TestServer::start();
    let r = client(&server);
    let guard = r.lock("l").acquire().unwrap();
    r.del("l").unwrap();
    assert!(matches!(
        guard.release().unwrap_err(),
        Error::Lock(LockError::NotHeld { .. })
    ));
}

#[test]
fn extend_adds_time_only_while_held() {
    let server = TestServer::start();
    let r = client(&server);
    let guard = r
        .lock("l")
        .lease(Duration::from_millis(300))
        .acquire()
        .unwrap();
    guard.extend(Duration::from_secs(10)).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    assert!(guard.is_held().unwrap(), "extended past its first lease");
    r.del("l").unwrap();
    assert!(matches!(
        guard.extend(Duration::from_secs(1)).unwrap_err(),
        Error::Lock(LockError::NotHeld { .. })
    ));
}

#[test]
fn released_on_drop_and_on_panic() {
    let server = TestServer::start();
    let r = client(&server);
    {
        let _guard = r.lock("l").acquire().unwrap();
        assert_eq!(r.exists("l").unwrap(), 1);
    }
    assert_eq!(r.exists("l").unwrap(), 0, "released on drop");
    let r2 = r.clone();
    let result = std::thread::spawn(move || {
        let _guard = r2.lock("l").acquire().unwrap();
        panic!("work failed");
    })
    .join();
    assert!(result.is_err());
    assert_eq!(r.exists("l").unwrap(), 0, "released while unwinding");
}

#[test]
fn sixteen_threads_increment_exactly_under_the_lock() {
    let server = TestServer::start();
    let r = client(&server);
    r.set("counter", 0).unwrap();
    std::thread::scope(|s| {
        for _ in 0..16 {
            let r = r.clone();
            s.spawn(move || {
                for _ in 0..100 {
                    let guard = r
                        .lock("counter-lock")
                        .sleep(Duration::from_millis(1))
                        .acquire()
                        .unwrap();
                    // A read-modify-write that would lose updates without the lock.
                    let n: i64 = String::from_utf8(r.get("counter").unwrap().unwrap().to_vec())
                        .unwrap()
                        .parse()
                        .unwrap();
                    r.set("counter", n + 1).unwrap();
                    guard.release().unwrap();
                }
            });
        }
    });
    assert_eq!(r.get("counter").unwrap().as_deref(), Some(&b"1600"[..]));
}

/// redis-py 2.7.6's `Lock.__init__` refuses a sleep longer than the timeout; so does the
/// builder, before sending anything.
#[test]
fn a_sleep_longer_than_the_lease_is_refused() {
    let server = TestServer::start();
    let r = client(&server);
    let builder = r
        .lock("l")
        .lease(Duration::from_millis(50))
        .sleep(Duration::from_millis(51));
    for err in [
        builder.acquire().unwrap_err(),
        builder.try_acquire().unwrap_err(),
    ] {
        assert!(
            matches!(
                err,
                Error::Lock(LockError::SleepLongerThanLease { sleep, lease, .. })
                    if sleep == Duration::from_millis(51) && lease == Duration::from_millis(50)
            ),
            "{err:?}"
        );
    }
    assert_eq!(r.exists("l").unwrap(), 0, "nothing was sent");
    // Equal is allowed, as in the reference.
    let guard = r
        .lock("l")
        .lease(Duration::from_millis(50))
        .sleep(Duration::from_millis(50))
        .acquire()
        .unwrap();
    guard.release().unwrap();
}

/// The guard says when its lease ends; extending moves it.
#[test]
fn acquired_until_follows_the_lease() {
    let server = TestServer::start();
    let r = client(&server);
    let before = Instant::now();
    let guard = r
        .lock("l")
        .lease(Duration::from_secs(10))
        .acquire()
        .unwrap();
    let after = Instant::now();
    let until = guard.acquired_until();
    assert!(until >= before + Duration::from_secs(10));
    assert!(until <= after + Duration::from_secs(10));
    guard.extend(Duration::from_secs(5)).unwrap();
    assert_eq!(guard.acquired_until(), until + Duration::from_secs(5));
    // The server's expiry is no earlier than the estimate.
    let server_left = r.pttl("l").unwrap().expires_in().unwrap();
    assert!(Instant::now() + server_left + Duration::from_millis(1) >= guard.acquired_until());
    guard.release().unwrap();
}

/// A lease of 1.9 ms is sent as `PX 2`: rounded up, as the docs say (seen in the
/// server's slow log, which records every command's arguments at threshold 0).
#[test]
fn a_fractional_lease_is_rounded_up() {
    let server = TestServer::start();
    let r = client(&server);
    r.config_set("slowlog-log-slower-than", 0).unwrap();
    r.slowlog_reset().unwrap();
    let guard = r
        .lock("l")
        .lease(Duration::from_micros(1_900))
        .sleep(Duration::from_millis(1))
        .try_acquire()
        .unwrap();
    drop(guard);
    let set = r
        .slowlog_get(Some(100))
        .unwrap()
        .into_iter()
        .find(|e| e.args[0].eq_ignore_ascii_case(b"SET"))
        .expect("the SET is in the slow log");
    let px = set.args.iter().position(|a| &a[..] == b"PX").unwrap();
    assert_eq!(&set.args[px + 1][..], b"2");
}
