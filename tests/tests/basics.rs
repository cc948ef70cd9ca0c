//! The thin slice end to end: open a client by URL, SET and GET against a real server.

use redis_client::prelude::*;
use redis_client::{Error, ErrorCode, Redis};
use redis_tests::{ServerConfig, TestServer};

#[test]
fn set_then_get() {
    let server = TestServer::start();
    let r = Redis::open(&server.url()).unwrap();
    assert!(r.set("foo", "bar").unwrap());
    assert_eq!(r.get("foo").unwrap().as_deref(), Some(&b"bar"[..]));
    assert_eq!(r.get("missing").unwrap(), None);
}

#[test]
fn binary_values_round_trip() {
    let server = TestServer::start();
    let r = Redis::open(&server.url()).unwrap();
    let value: Vec<u8> = (0..=255).collect();
    assert!(r.set(&b"k\x00\xff"[..], &value[..]).unwrap());
    assert_eq!(
        r.get(&b"k\x00\xff"[..]).unwrap().as_deref(),
        Some(&value[..])
    );
}

#[test]
fn server_error_is_typed() {
    let server = TestServer::start();
    let r = Redis::open(&server.url()).unwrap();
    r.sadd("set", "x").unwrap();
    let err = r.get("set").unwrap_err();
    assert!(matches!(err, Error::Server(_)), "{err:?}");
    assert_eq!(err.code(), Some(ErrorCode::WRONGTYPE));
    // The connection is still fine after a server error.
    assert_eq!(r.incr("n").unwrap(), 1);
}

/// Issue 16: a server error from a direct call names the command it answered, and its
/// code stays matchable.
#[test]
fn server_errors_name_the_command() {
    let server = TestServer::start();
    let r = Redis::open(&server.url()).unwrap();
    r.set("text", "abc").unwrap();
    let err = r.incr("text").unwrap_err();
    assert_eq!(
        err.to_string(),
        "INCR: ERR value is not an integer or out of range"
    );
    assert_eq!(err.code(), Some(ErrorCode::ERR));
    let Error::Server(e) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(e.command(), Some("INCR"));
    assert_eq!(e.code(), ErrorCode::ERR);
    // A subcommand is named whole; the dynamic path names the first word.
    let err = r.config_set("no-such-parameter", "1").unwrap_err();
    assert!(err.to_string().starts_with("CONFIG SET: ERR "), "{err}");
    let err = r.execute_command(("ZADD", "z", "member", 1.5)).unwrap_err();
    assert_eq!(err.to_string(), "ZADD: ERR value is not a valid float");
}

#[test]
fn unix_socket_and_db_in_url() {
    let server = ServerConfig::default().unix_socket().start();
    let r = Redis::open(&format!("{}?db=3", server.unix_url())).unwrap();
    assert!(r.set("only-in-3", "yes").unwrap());
    assert_eq!(server.raw(&["DBSIZE"]), ":0");
    assert_eq!(r.dbsize().unwrap(), 1);
}

#[test]
fn closed_port_fails_to_connect() {
    let server = TestServer::start();
    let url = server.url();
    drop(server);
    let r = Redis::open(&url).unwrap();
    let err = r.get("k").unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
}

#[test]
fn execute_command_applies_default_callbacks() {
    let server = TestServer::start();
    let r = Redis::open(&server.url()).unwrap();
    assert_eq!(
        r.execute_command(("SET", "k", "v")).unwrap(),
        redis_client::Value::Boolean(true)
    );
    assert_eq!(
        r.execute_command(("SET", "k", "v", "NX")).unwrap(),
        redis_client::Value::Boolean(false)
    );
    r.execute_command(("HSET", "h", "f", "1")).unwrap();
    assert!(
        matches!(r.execute_command(("HGETALL", "h")).unwrap(), redis_client::Value::Map(m) if m.len() == 1)
    );
}

#[test]
fn response_callback_override_applies_to_typed_methods() {
    let server = TestServer::start();
    let mut r = Redis::open(&server.url()).unwrap();
    r.set_response_callback("get", |v, _| {
        Ok(if v.is_nil() {
            redis_client::Value::BulkString("none".into())
        } else {
            v
        })
    });
    assert_eq!(r.get("missing").unwrap().as_deref(), Some(&b"none"[..]));
    assert_eq!(
        r.execute_command(("GET", "missing")).unwrap(),
        redis_client::Value::BulkString("none".into())
    );
}

mod common;

#[test]
fn both_protocols_give_the_same_typed_replies() {
    let server = TestServer::start();
    common::for_each_protocol(&server, |r| {
        assert!(r.set("k", "v").unwrap());
        assert_eq!(r.get("k").unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(r.incr("n").unwrap(), 1);
        assert_eq!(r.exists(["k", "n", "none"]).unwrap(), 2);
    });
}

#[test]
fn withscores_on_the_dynamic_path_gives_the_same_pairs_over_both_protocols() {
    use redis_client::Value;
    let server = TestServer::start();
    common::for_each_protocol(&server, |r| {
        r.execute_command(("ZADD", "z", 1.5, "a", 2, "b")).unwrap();
        let got = r
            .execute_command(("ZRANGE", "z", 0, -1, "WITHSCORES"))
            .unwrap();
        let pair = |m: &str, s: f64| {
            Value::Array(vec![
                Value::BulkString(m.to_owned().into()),
                Value::Double(s),
            ])
        };
        assert_eq!(got, Value::Array(vec![pair("a", 1.5), pair("b", 2.0)]));
    });
}

#[test]
fn variadic_arguments_from_sets_and_iterators() {
    use redis_client::IterArgs;
    use std::collections::{BTreeSet, HashSet};
    let server = TestServer::start();
    let r = Redis::open(&server.url()).unwrap();
    let members: BTreeSet<&str> = ["a", "b", "c"].into();
    assert_eq!(r.sadd("s", &members).unwrap(), 3);
    let more: HashSet<String> = ["c", "d"].iter().map(|s| s.to_string()).collect();
    assert_eq!(r.sadd("s", &more).unwrap(), 1);
    for i in 0..5 {
        r.set(format!("k{i}"), i).unwrap();
    }
    assert_eq!(r.del(IterArgs((0..5).map(|i| format!("k{i}")))).unwrap(), 5);
}

mod glob_import {
    //! `use redis_client::*` alone makes the command methods callable.
    use redis_client::*;

    #[test]
    fn commands_through_a_glob_import() {
        let server = redis_tests::TestServer::start();
        let r = Redis::open(&server.url()).unwrap();
        assert!(r.set("foo", "bar").unwrap());
        assert_eq!(r.get("foo").unwrap().as_deref(), Some(&b"bar"[..]));
    }
}
