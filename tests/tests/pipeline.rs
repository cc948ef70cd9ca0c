//! Pipelines: the reference's examples, transaction on and off, errors with their index,
//! EXECABORT, typed results, blocking commands, and connections left in step.

mod common;

use bytes::Bytes;
use common::for_each_protocol;
use redis_client::prelude::*;
use redis_client::{
    Cmd, ConnectionInfo, ConnectionPool, Error, ErrorCode, PoolOptions, Redis, Value,
};
use redis_tests::TestServer;
use std::time::{Duration, Instant};

fn bulk(s: &str) -> Value {
    Value::BulkString(Bytes::copy_from_slice(s.as_bytes()))
}

/// `calls=` of `cmdstat_<name>` in INFO commandstats (0 when the command never ran).
fn calls(server: &TestServer, name: &str) -> u64 {
    let info = server.raw(&["INFO", "commandstats"]);
    let prefix = format!("cmdstat_{name}:calls=");
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().expect("calls count"))
}

#[test]
fn reference_example_gives_true_and_baz() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        r.set("bing", "baz").unwrap();
        let mut pipe = r.pipeline();
        pipe.set("foo", "bar");
        pipe.get("bing");
        assert_eq!(pipe.execute().unwrap(), [Value::Boolean(true), bulk("baz")]);
        assert!(pipe.is_empty());
    });
}

#[test]
fn chained_reference_example_gives_true_true_6() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        r.set("auto_number", 5).unwrap();
        let mut pipe = r.pipeline();
        let (set, added, n): (bool, bool, i64) = pipe
            .set("foo", "bar")
            .sadd("faz", "baz")
            .incr("auto_number")
            .query()
            .unwrap();
        assert_eq!((set, added, n), (true, true, 6));
        // The same pipeline again, as values: SET gives a boolean through its callback.
        let values = pipe
            .set("foo", "bar")
            .sadd("faz", "baz")
            .incr("auto_number")
            .execute()
            .unwrap();
        assert_eq!(
            values,
            [Value::Boolean(true), Value::Integer(0), Value::Integer(7)]
        );
    });
}

#[test]
fn typed_query_of_a_tuple() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        let mut pipe = r.pipeline();
        pipe.transaction(false);
        pipe.set("k", "v").get("k").get("missing");
        let (stored, value, missing): (bool, Option<Bytes>, Option<Bytes>) = pipe.query().unwrap();
        assert!(stored);
        assert_eq!(value.as_deref(), Some(&b"v"[..]));
        assert_eq!(missing, None);
    });
}

#[test]
fn query_names_the_command_that_does_not_convert() {
    let server = TestServer::start();
    let mut r = Redis::open(&server.url()).unwrap();
    r.set("text", "not a number").unwrap();
    let mut pipe = r.pipeline();
    pipe.incr("n").get("text");
    // The caller's type is wrong for a reply that fits its own method's type.
    let err = pipe.query::<(i64, i64)>().unwrap_err();
    assert!(
        matches!(&err, Error::Reply { command, .. } if command == "pipeline"),
        "{err:?}"
    );
    // A reply that does not fit its own method's type is named with its index.
    r.set_response_callback("INCR", |_, _| Ok(Value::BulkString("many".into())));
    let mut pipe = r.pipeline();
    pipe.get("text").incr("n");
    let err = pipe.query::<(Option<Bytes>, i64)>().unwrap_err();
    assert!(
        matches!(&err, Error::Reply { command, .. } if command == "command #1 (INCR)"),
        "{err:?}"
    );
}

#[test]
fn transaction_false_sends_no_multi() {
    let server = TestServer::start();
    let r = Redis::open(&server.url()).unwrap();
    let before = calls(&server, "multi");
    let mut pipe = r.pipeline();
    pipe.transaction(false);
    pipe.set("a", 1).incr("a").incr("a");
    assert_eq!(
        pipe.execute().unwrap(),
        [Value::Boolean(true), Value::Integer(2), Value::Integer(3)]
    );
    assert_eq!(calls(&server, "multi"), before);
    assert_eq!(calls(&server, "exec"), 0);
    // The default does wrap in MULTI … EXEC.
    let mut pipe = r.pipeline();
    pipe.incr("a");
    pipe.execute().unwrap();
    assert_eq!(calls(&server, "multi"), before + 1);
    assert_eq!(calls(&server, "exec"), 1);
}

#[test]
fn explicit_multi_makes_a_buffering_pipeline_transactional() {
    let server = TestServer::start();
    let r = Redis::open(&server.url()).unwrap();
    let mut pipe = r.pipeline();
    pipe.transaction(false);
    pipe.multi().incr("a");
    pipe.execute().unwrap();
    assert_eq!(calls(&server, "multi"), 1);
}

#[test]
fn error_in_the_middle_is_reported_with_its_index() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        r.sadd("set", "x").unwrap();
        for transaction in [true, false] {
            r.del(("n",)).unwrap();
            let mut pipe = r.pipeline();
            pipe.transaction(transaction);
            pipe.incr("n").get("set").incr("n");
            let err = pipe.execute().unwrap_err();
            match &err {
                Error::PipelineCommand { index, command, .. } => {
                    assert_eq!((*index, command.as_str()), (1, "GET"))
                }
                other => panic!("expected a pipeline command error, got {other:?}"),
            }
            assert_eq!(err.code(), Some(ErrorCode::WRONGTYPE));
            assert!(err.to_string().contains("#1 (GET)"), "{err}");
            // The commands around it ran, and the connection is in step.
            assert_eq!(r.get("n").unwrap().as_deref(), Some(&b"2"[..]));
        }
    });
}

#[test]
fn errors_in_place_on_request() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        r.sadd("set", "x").unwrap();
        let mut pipe = r.pipeline();
        pipe.raise_on_error(false);
        pipe.incr("n").get("set").incr("n");
        let values = pipe.execute().unwrap();
        assert_eq!(values.len(), 3);
        assert_eq!(values[0], Value::Integer(1));
        assert!(
            matches!(&values[1], Value::Error(e) if e.code() == ErrorCode::WRONGTYPE),
            "{values:?}"
        );
        assert_eq!(values[2], Value::Integer(2));
    });
}

#[test]
fn execabort_names_the_refused_command() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        let mut pipe = r.pipeline();
        // SET with one argument is refused while queueing: wrong number of arguments.
        pipe.set("a", 1)
            .execute_command(("SET", "only-key"))
            .incr("n");
        let err = pipe.execute().unwrap_err();
        match &err {
            Error::ExecAbort {
                index,
                command,
                error,
            } => {
                assert_eq!((*index, command.as_str()), (1, "SET"));
                assert!(error.message().contains("wrong number"), "{error:?}");
            }
            other => panic!("expected EXECABORT, got {other:?}"),
        }
        // Nothing ran.
        assert_eq!(r.exists(("a", "n")).unwrap(), 0);
    });
}

#[test]
fn raw_commands_queue_beside_typed_ones() {
    let server = TestServer::start();
    let r = Redis::open(&server.url()).unwrap();
    let mut get = Cmd::new("GET");
    get.key("k");
    let mut pipe = r.pipeline();
    pipe.set("k", "v")
        .queue(get)
        .execute_command(("STRLEN", "k"));
    assert_eq!(
        pipe.execute().unwrap(),
        [Value::Boolean(true), bulk("v"), Value::Integer(1)]
    );
}

#[test]
fn empty_pipeline_does_no_io() {
    let server = TestServer::start();
    let url = server.url();
    drop(server);
    // Nothing listens there any more: any I/O would fail.
    let r = Redis::open(&url).unwrap();
    assert_eq!(r.pipeline().execute().unwrap(), Vec::<Value>::new());
    assert_eq!(
        r.pipeline().transaction(false).query::<Vec<i64>>().unwrap(),
        Vec::<i64>::new()
    );
}

#[test]
fn a_thousand_commands_in_one_pipeline() {
    let server = TestServer::start();
    let r = Redis::open(&server.url()).unwrap();
    let mut pipe = r.pipeline();
    pipe.transaction(false);
    for i in 0..1000 {
        pipe.set(format!("k{i}"), i);
    }
    let values = pipe.execute().unwrap();
    assert_eq!(values.len(), 1000);
    assert!(values.iter().all(|v| *v == Value::Boolean(true)));
    assert_eq!(r.dbsize().unwrap(), 1000);
}

#[test]
fn blocking_command_in_a_pipeline_waits_past_the_read_timeout() {
    let server = TestServer::start();
    let info = ConnectionInfo::tcp("127.0.0.1", server.port())
        .with_read_timeout(Some(Duration::from_millis(500)));
    let r = Redis::from_info(info);
    let mut blpop = Cmd::new("BLPOP");
    blpop.key("queue").arg(2).block_for(Duration::from_secs(2));
    let mut pipe = r.pipeline();
    pipe.transaction(false);
    pipe.incr("n").queue(blpop);
    let started = Instant::now();
    let values = pipe.execute().unwrap();
    assert!(started.elapsed() >= Duration::from_millis(1900));
    assert_eq!(values, [Value::Integer(1), Value::Nil]);
}

#[test]
fn a_pipeline_that_times_out_does_not_return_its_connection_dirty() {
    let server = TestServer::start();
    let info = ConnectionInfo::tcp("127.0.0.1", server.port())
        .with_read_timeout(Some(Duration::from_millis(300)));
    // One connection, so a dirty one would be handed to the next caller.
    let pool = ConnectionPool::with_options(info, PoolOptions::default().with_max_size(1));
    let r = Redis::from_pool(pool);
    r.set("k", "mine").unwrap();
    // BLPOP not marked as blocking: its reply comes after the read timeout.
    let mut pipe = r.pipeline();
    pipe.transaction(false);
    pipe.incr("n")
        .execute_command(("BLPOP", "queue", "1"))
        .get("k");
    let err = pipe.execute().unwrap_err();
    assert!(matches!(err, Error::Timeout), "{err:?}");
    // The late replies belong to nobody: the next command gets its own reply.
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(r.get("k").unwrap().as_deref(), Some(&b"mine"[..]));
    assert_eq!(r.incr("n").unwrap(), 2);
}

#[test]
fn a_pipeline_is_one_call_within_the_policys_budget() {
    // A server that takes the requests and never answers: each reply alone would wait the
    // 10 s read timeout; the whole pipeline stops at the 300 ms budget.
    let silent = redis_tests::FakeServer::start(
        |mut c: redis_tests::FakeConn| {
            while c.read_request().is_some() {}
        },
    );
    let budget = Duration::from_millis(300);
    let r = redis_client::Redis::open(&silent.url())
        .unwrap()
        .with_retry_policy(redis_client::RetryPolicy::default().with_budget(Some(budget)));
    let mut pipe = r.pipeline();
    pipe.get("a").get("b").get("c");
    let start = Instant::now();
    let err = pipe.execute().unwrap_err();
    let took = start.elapsed();
    assert!(matches!(err, redis_client::Error::Timeout), "{err:?}");
    assert!(
        took >= budget && took < budget + Duration::from_millis(500),
        "took {took:?} under a {budget:?} budget"
    );
}
