//! Lua scripts through `Script`: the reference page's example, NOSCRIPT recovery, other
//! servers, and script errors.

use redis_client::prelude::*;
use redis_client::{Error, ErrorCode, Redis, Script};
use redis_tests::TestServer;

const MULTIPLY: &str = "local value = redis.call('GET', KEYS[1])\n\
                        value = tonumber(value)\n\
                        return value * ARGV[1]";

#[test]
fn reference_example_on_two_servers() {
    let (s1, s2) = (TestServer::start(), TestServer::start());
    let r = Redis::open(&s1.url()).unwrap();
    let multiply = r.register_script(MULTIPLY);
    r.set("foo", 2).unwrap();
    let ten: i64 = multiply.key("foo").arg(5).invoke().unwrap();
    assert_eq!(ten, 10);
    // The same script on a completely different server, which has never seen it.
    let r2 = Redis::open(&s2.url()).unwrap();
    r2.set("foo", 3).unwrap();
    let fifteen: i64 = multiply.key("foo").arg(5).invoke_on(&r2).unwrap();
    assert_eq!(fifteen, 15);
    assert_eq!(s2.raw(&["SCRIPT", "EXISTS", multiply.sha()]), "*1");
}

#[test]
fn survives_script_flush() {
    let server = TestServer::start();
    let r = Redis::open(&server.url()).unwrap();
    let script = r.register_script("return ARGV[1] .. '!'");
    let first: String = script.arg("hi").invoke().unwrap();
    assert_eq!(first, "hi!");
    server.raw(&["SCRIPT", "FLUSH"]);
    let again: String = script.arg("again").invoke().unwrap();
    assert_eq!(again, "again!");
}

#[test]
fn sha_matches_the_server() {
    let server = TestServer::start();
    let script = Script::new(MULTIPLY);
    assert_eq!(server.raw(&["SCRIPT", "LOAD", MULTIPLY]), script.sha());
}

#[test]
fn script_errors_carry_their_message() {
    let server = TestServer::start();
    let r = Redis::open(&server.url()).unwrap();
    let bad = r.register_script("return redis.error_reply('MYCODE something went wrong')");
    let err = bad.call().invoke::<i64>().unwrap_err();
    assert!(
        matches!(&err, Error::Server(e) if e.code() == ErrorCode::new("MYCODE")),
        "{err:?}"
    );
    assert!(err.to_string().contains("something went wrong"), "{err}");
    let runtime = r.register_script("return redis.call('INCR', KEYS[1])");
    r.set("text", "abc").unwrap();
    let err = runtime.key("text").invoke::<i64>().unwrap_err();
    assert!(err.to_string().contains("not an integer"), "{err}");
}

#[test]
fn unbound_script_needs_a_client() {
    let err = Script::new("return 1").call().invoke::<i64>().unwrap_err();
    assert!(matches!(err, Error::Script(_)), "{err:?}");
}

#[test]
fn replies_convert_like_commands() {
    let server = TestServer::start();
    let r = Redis::open(&server.url()).unwrap();
    let s = r.register_script("return {1, 'two', {3}}");
    let v: (i64, String, Vec<i64>) = s.call().invoke().unwrap();
    assert_eq!(v, (1, "two".to_owned(), vec![3]));
}

#[test]
fn scripts_in_pipelines_are_loaded_before_sending() {
    let server = TestServer::start();
    let r = Redis::open(&server.url()).unwrap();
    let multiply = r.register_script(MULTIPLY);
    for transactional in [true, false] {
        // Fresh server cache each time: the pipeline must load the script itself, since a
        // NOSCRIPT inside MULTI would abort the transaction.
        server.raw(&["SCRIPT", "FLUSH"]);
        let mut pipe = r.pipeline();
        pipe.transaction(transactional);
        pipe.set("foo", 5).invoke_script(multiply.key("foo").arg(5));
        let results = pipe.execute().unwrap();
        assert_eq!(
            results,
            vec![
                redis_client::Value::Boolean(true),
                redis_client::Value::Integer(25)
            ]
        );
    }
    // Typed, as the reference's [True, 25].
    let mut pipe = r.pipeline();
    pipe.set("foo", 5).invoke_script(multiply.key("foo").arg(5));
    assert_eq!(pipe.query::<(bool, i64)>().unwrap(), (true, 25));
}
