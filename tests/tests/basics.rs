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
