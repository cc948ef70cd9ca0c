//! Typed pipelines (`Redis::typed_pipeline`): a fixed sequence of commands whose results
//! come back as a tuple of each command's reply type, with no annotation.

use redis_client::prelude::*;
use redis_client::{Bytes, Error, FromValueError, Redis};
use redis_tests::TestServer;

mod common;

/// Compiles only if `value` has type `T`: proves what the pipeline inferred.
fn has_type<T>(_: &T) {}

#[test]
fn replies_are_typed_by_the_commands_queued() {
    let server = TestServer::start();
    common::for_each_protocol(&server, |r: &Redis| {
        let result = r.typed_pipeline().set("a", 1).get("a").incr("n").execute();
        let (stored, value, n) = result.unwrap();
        has_type::<(bool, Option<Bytes>, i64)>(&(stored, value.clone(), n));
        assert!(stored);
        assert_eq!(value.as_deref(), Some(&b"1"[..]));
        assert_eq!(n, 1);

        let (score, missing, members) = r
            .typed_pipeline()
            .zincrby("z", 2.5, "m")
            .zscore("z", "nope")
            .smembers("none")
            .transaction(false)
            .execute()
            .unwrap();
        assert_eq!(score, 2.5);
        assert_eq!(missing, None);
        assert!(members.is_empty());
    });
}

#[test]
fn sixteen_commands_and_an_empty_pipeline() {
    let server = TestServer::start();
    let r = Redis::open(&server.url()).unwrap();
    let p = r.typed_pipeline();
    assert!(p.is_empty());
    p.execute().unwrap();
    let t = r
        .typed_pipeline()
        .incr("c")
        .incr("c")
        .incr("c")
        .incr("c")
        .incr("c")
        .incr("c")
        .incr("c")
        .incr("c")
        .incr("c")
        .incr("c")
        .incr("c")
        .incr("c")
        .incr("c")
        .incr("c")
        .incr("c")
        .get("c");
    assert_eq!(t.len(), 16);
    let (a, _, _, _, _, _, _, _, _, _, _, _, _, _, o, last) = t.execute().unwrap();
    assert_eq!((a, o), (1, 15));
    assert_eq!(last.as_deref(), Some(&b"15"[..]));
}

#[test]
fn a_reply_that_does_not_convert_names_its_command() {
    let server = TestServer::start();
    let r = Redis::open(&server.url()).unwrap();
    r.set("bin", &b"\xff"[..]).unwrap();
    let err = r
        .text()
        .typed_pipeline()
        .incr("n")
        .get("bin")
        .execute()
        .unwrap_err();
    match err {
        Error::Reply {
            command,
            source: FromValueError::Type { expected, .. },
        } => {
            assert_eq!(command, "command #1 (GET)");
            assert_eq!(expected, "UTF-8 string");
        }
        other => panic!("{other:?}"),
    }
    // A failed command fails the pipeline, as the dynamic one does.
    r.rpush("list", ["x"]).unwrap();
    let err = r.typed_pipeline().get("list").execute().unwrap_err();
    assert!(matches!(err, Error::PipelineCommand { .. }), "{err:?}");
}
