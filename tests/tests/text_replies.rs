//! Replies as text: `Redis::query` into `String` types, UTF-8 checked, with a typed error
//! naming the command otherwise.

use redis_client::prelude::*;
use redis_client::redis_commands::cmd;
use redis_client::{Error, FromValueError, Redis};
use redis_tests::TestServer;
use std::collections::HashMap;

mod common;

#[test]
fn text_replies_over_both_protocols() {
    let server = TestServer::start();
    common::for_each_protocol(&server, |r: &Redis| {
        r.set("greeting", "héllo wörld").unwrap();
        let text: Option<String> = r.query(cmd::strings::get("greeting")).unwrap();
        assert_eq!(text.as_deref(), Some("héllo wörld"));
        let missing: Option<String> = r.query(cmd::strings::get("nope")).unwrap();
        assert_eq!(missing, None);
        r.execute_command(("HSET", "h", "naïve", "café")).unwrap();
        let map: HashMap<String, String> = r
            .query(redis_client::Typed::<redis_client::Value>::new(
                redis_client::Cmd::from_args(("HGETALL", "h")),
            ))
            .unwrap();
        assert_eq!(map.get("naïve").map(String::as_str), Some("café"));
    });
}

#[test]
fn non_utf8_is_a_typed_error_naming_the_command() {
    let server = TestServer::start();
    let r = Redis::open(&server.url()).unwrap();
    r.set("bin", &b"\xff\xfe"[..]).unwrap();
    let err = r
        .query::<Option<String>, _>(cmd::strings::get("bin"))
        .unwrap_err();
    match err {
        Error::Reply {
            command,
            source: FromValueError::Type { expected, .. },
        } => {
            assert_eq!(command, "GET");
            assert_eq!(expected, "UTF-8 string");
        }
        other => panic!("{other:?}"),
    }
    // The bytes are still there for whoever asks for bytes.
    assert_eq!(r.get("bin").unwrap().as_deref(), Some(&b"\xff\xfe"[..]));
}

#[test]
fn dedicated_connection_queries_text_too() {
    let server = TestServer::start();
    let r = Redis::open(&server.url()).unwrap();
    let mut conn = r.dedicated_connection().unwrap();
    conn.set("k", "v").unwrap();
    let v: String = conn.query(cmd::strings::get("k")).unwrap();
    assert_eq!(v, "v");
}
