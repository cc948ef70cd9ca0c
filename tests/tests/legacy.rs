//! `compat::LegacyRedis`: the reference's backward-compatible argument orders and TTL
//! replies, on the client and in its pipeline.

mod common;

use common::both_protocols;
use redis_client::compat::LegacyRedis;
use redis_client::prelude::*;
use redis_client::{Redis, Value};
use redis_tests::TestServer;
use std::time::Duration;

/// Runs `check` with a legacy client over each protocol, on a flushed database.
fn for_each_legacy(server: &TestServer, check: impl Fn(&LegacyRedis, &Redis)) {
    for (protocol, strict) in both_protocols(server) {
        strict.execute_command("FLUSHALL").unwrap();
        let legacy = LegacyRedis::from(strict.clone());
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&legacy, &strict)));
        if let Err(e) = result {
            eprintln!("failed over {protocol:?}");
            std::panic::resume_unwind(e);
        }
    }
}

fn list(r: &Redis, key: &str) -> Vec<String> {
    let v = r.execute_command(("LRANGE", key, 0, -1)).unwrap();
    redis_client::FromValue::from_value(v).unwrap()
}

fn score(r: &Redis, key: &str, member: &str) -> f64 {
    let v = r.execute_command(("ZSCORE", key, member)).unwrap();
    redis_client::FromValue::from_value(v).unwrap()
}

#[test]
fn lrem_takes_value_before_num() {
    let server = TestServer::start();
    for_each_legacy(&server, |legacy, strict| {
        strict
            .execute_command(("RPUSH", "l", ["a", "b", "a", "a"]))
            .unwrap();
        assert_eq!(legacy.lrem("l", "a", 2).unwrap(), 2);
        assert_eq!(list(strict, "l"), ["b", "a"]);
        // num 0 removes every occurrence, the reference's default.
        assert_eq!(legacy.lrem("l", "a", 0).unwrap(), 1);
        assert_eq!(list(strict, "l"), ["b"]);
    });
}

#[test]
fn zadd_takes_member_before_score() {
    let server = TestServer::start();
    for_each_legacy(&server, |legacy, strict| {
        assert_eq!(
            legacy.zadd("z", [("alice", 10.0), ("bob", 7.5)]).unwrap(),
            2
        );
        assert_eq!(score(strict, "z", "alice"), 10.0);
        assert_eq!(score(strict, "z", "bob"), 7.5);
    });
}

#[test]
fn setex_takes_value_before_time() {
    let server = TestServer::start();
    for_each_legacy(&server, |legacy, strict| {
        assert!(legacy.setex("k", "v", Duration::from_secs(100)).unwrap());
        assert_eq!(strict.get("k").unwrap().as_deref(), Some(&b"v"[..]));
        let ttl = legacy.ttl("k").unwrap().unwrap();
        assert!((1..=100).contains(&ttl), "{ttl}");
    });
}

#[test]
fn ttl_and_pttl_are_none_without_expiry() {
    let server = TestServer::start();
    for_each_legacy(&server, |legacy, strict| {
        strict.set("persistent", "v").unwrap();
        assert_eq!(legacy.ttl("persistent").unwrap(), None);
        assert_eq!(legacy.pttl("persistent").unwrap(), None);
        // A missing key is -2, as the server says.
        assert_eq!(legacy.ttl("missing").unwrap(), Some(-2));
        assert_eq!(legacy.pttl("missing").unwrap(), Some(-2));
        legacy.setex("k", "v", Duration::from_secs(100)).unwrap();
        let pttl = legacy.pttl("k").unwrap().unwrap();
        assert!((1..=100_000).contains(&pttl), "{pttl}");
    });
}

#[test]
fn strict_commands_are_unchanged() {
    let server = TestServer::start();
    let legacy = LegacyRedis::open(&server.url()).unwrap();
    assert!(legacy.set("k", "v").unwrap());
    assert_eq!(legacy.get("k").unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(legacy.incr("n").unwrap(), 1);
    assert_eq!(legacy.strict().incr("n").unwrap(), 2);
    assert_eq!(
        legacy.execute_command(("EXISTS", "k")).unwrap(),
        Value::Integer(1)
    );
}

#[test]
fn legacy_pipeline_uses_the_legacy_orders() {
    let server = TestServer::start();
    for_each_legacy(&server, |legacy, strict| {
        strict
            .execute_command(("RPUSH", "l", ["a", "b", "a"]))
            .unwrap();
        let mut pipe = legacy.pipeline();
        // Strict and legacy commands chain in any order.
        pipe.set("plain", "v")
            .setex("k", "v", Duration::from_secs(100))
            .zadd("z", [("m", 2.5)])
            .lrem("l", "a", 0)
            .ttl("plain")
            .ttl("k")
            .pttl("missing");
        let values = pipe.execute().unwrap();
        assert_eq!(
            values[..4],
            [
                Value::Boolean(true),
                Value::Boolean(true),
                Value::Integer(1),
                Value::Integer(2),
            ]
        );
        assert_eq!(values[4], Value::Nil);
        assert!(matches!(values[5], Value::Integer(1..=100)), "{values:?}");
        assert_eq!(values[6], Value::Integer(-2));
        assert_eq!(score(strict, "z", "m"), 2.5);
        assert_eq!(list(strict, "l"), ["b"]);
    });
}

#[test]
fn legacy_pipeline_typed_and_without_transaction() {
    let server = TestServer::start();
    let legacy = LegacyRedis::open(&server.url()).unwrap();
    let mut pipe = legacy.pipeline();
    pipe.transaction(false);
    pipe.set("k", "v")
        .ttl("k")
        .setex("e", "v", Duration::from_secs(50))
        .ttl("e");
    let (set, none, setex, ttl): (bool, Option<i64>, bool, Option<i64>) = pipe.query().unwrap();
    assert!(set && setex);
    assert_eq!(none, None);
    assert!(matches!(ttl, Some(1..=50)), "{ttl:?}");
}
