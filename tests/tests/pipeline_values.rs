//! The values of the dynamic pipeline and of `execute_command` follow the reference's
//! response callbacks: floats as floats, and the reference page's chained example.

use redis_client::prelude::*;
use redis_client::{Redis, Value};
use redis_tests::TestServer;

mod common;

#[test]
fn dynamic_pipeline_floats_are_floats_as_in_the_reference() {
    let server = TestServer::start();
    common::for_each_protocol(&server, |r: &Redis| {
        let mut pipe = r.pipeline();
        pipe.zincrby("z", 2.0, "m")
            .zscore("z", "m")
            .zscore("z", "missing")
            .incrbyfloat("f", 1.5)
            .hincrbyfloat("h", "x", 0.5);
        assert_eq!(
            pipe.execute().unwrap(),
            [
                Value::Double(2.0),
                Value::Double(2.0),
                Value::Nil,
                Value::Double(1.5),
                Value::Double(0.5)
            ]
        );
        assert_eq!(
            r.execute_command(("ZSCORE", "z", "m")).unwrap(),
            Value::Double(2.0)
        );
        assert_eq!(
            r.execute_command(("INCRBYFLOAT", "f", "1")).unwrap(),
            Value::Double(2.5)
        );
    });
}

/// The reference page's chained example. Its text shows `[True, True, 6]`, but the
/// reference's own SADD callback is `int`, so redis-py 2.7.6 returns `[True, 1, 6]`
/// (and `1 == True` in Python): SADD's reply is the number of members added.
#[test]
fn the_reference_chained_example() {
    let server = TestServer::start();
    common::for_each_protocol(&server, |r: &Redis| {
        r.set("auto_number", 5).unwrap();
        let mut pipe = r.pipeline();
        let results = pipe
            .set("foo", "bar")
            .sadd("faz", "baz")
            .incr("auto_number")
            .execute()
            .unwrap();
        assert_eq!(
            results,
            [Value::Boolean(true), Value::Integer(1), Value::Integer(6)]
        );
    });
}
