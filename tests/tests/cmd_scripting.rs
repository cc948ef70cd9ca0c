//! Lua scripts and functions over RESP2 and RESP3.

mod common;

use bytes::Bytes;
use common::for_each_protocol;
use redis_client::prelude::*;
use redis_client::redis_commands::{
    cmd, FlushMode, FunctionListOptions, RestorePolicy, ScriptDebugMode,
};
use redis_client::{ErrorCode, FromValue, Value};
use redis_tests::TestServer;

const NONE: &[&str] = &[];

const LIBRARY: &str = "#!lua name=mylib
redis.register_function('echo_arg', function(keys, args) return args[1] end)
redis.register_function{function_name='get_key', callback=function(keys, args) return redis.call('GET', keys[1]) end, flags={'no-writes'}, description='reads a key'}
";

#[test]
fn eval_and_eval_ro() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        let v = r
            .eval("return {KEYS[1], KEYS[2], ARGV[1]}", ["k1", "k2"], ["a"])
            .unwrap();
        assert_eq!(Vec::<String>::from_value(v).unwrap(), vec!["k1", "k2", "a"]);
        let set = r
            .eval("return redis.call('SET', KEYS[1], ARGV[1])", ["k"], ["v"])
            .unwrap();
        assert!(bool::from_value(set).unwrap());
        let got = r
            .eval_ro("return redis.call('GET', KEYS[1])", ["k"], NONE)
            .unwrap();
        assert_eq!(Bytes::from_value(got).unwrap(), Bytes::from("v"));
        let err = r
            .eval_ro("return redis.call('SET', KEYS[1], 'x')", ["k"], NONE)
            .unwrap_err();
        assert!(
            err.to_string().contains("Write commands are not allowed"),
            "{err}"
        );
        let e = cmd::scripting::eval("return 1", ["a", "b"], ["c"]);
        let args: Vec<_> = e.cmd.args().collect();
        assert_eq!(
            args,
            vec![&b"EVAL"[..], b"return 1", b"2", b"a", b"b", b"c"]
        );
        assert_eq!(e.cmd.keys().count(), 2);
    });
}

#[test]
fn script_cache_and_evalsha() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        let sha = r.script_load("return ARGV[1] .. KEYS[1]").unwrap();
        assert_eq!(sha.len(), 40);
        let zero = "0".repeat(40);
        assert_eq!(
            r.script_exists([sha.as_str(), zero.as_str()]).unwrap(),
            vec![true, false]
        );
        let v = r.evalsha(&sha, ["k"], ["x-"]).unwrap();
        assert_eq!(String::from_value(v).unwrap(), "x-k");
        let v = r.evalsha_ro(&sha, ["k"], ["y-"]).unwrap();
        assert_eq!(String::from_value(v).unwrap(), "y-k");
        r.script_flush(Some(FlushMode::Sync)).unwrap();
        assert_eq!(r.script_exists([sha.as_str()]).unwrap(), vec![false]);
        let err = r.evalsha(&sha, NONE, NONE).unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::NOSCRIPT));
        r.script_load("return 1").unwrap();
        r.script_flush(None).unwrap();
        let err = r.script_kill().unwrap_err();
        assert!(err.to_string().contains("NOTBUSY"), "{err}");
        r.script_debug(ScriptDebugMode::No).unwrap();
        assert!(!r.script_help().unwrap().is_empty());
    });
}

#[test]
fn functions_load_call_list_dump_restore() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        r.function_flush(Some(FlushMode::Sync)).unwrap();
        assert_eq!(r.function_load(LIBRARY).unwrap(), "mylib");
        let err = r.function_load(LIBRARY).unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        assert_eq!(r.function_load_replace(LIBRARY).unwrap(), "mylib");
        let v = r.fcall("echo_arg", NONE, ["x"]).unwrap();
        assert_eq!(String::from_value(v).unwrap(), "x");
        r.set("k", "stored").unwrap();
        let v = r.fcall_ro("get_key", ["k"], NONE).unwrap();
        assert_eq!(String::from_value(v).unwrap(), "stored");

        let libs = r.function_list(FunctionListOptions::new()).unwrap();
        assert_eq!(libs.len(), 1);
        assert_eq!(
            (libs[0].name.as_str(), libs[0].engine.as_str()),
            ("mylib", "LUA")
        );
        assert_eq!(libs[0].code, None);
        let get_key = libs[0]
            .functions
            .iter()
            .find(|f| f.name == "get_key")
            .unwrap();
        assert_eq!(get_key.description.as_deref(), Some("reads a key"));
        assert_eq!(get_key.flags, vec!["no-writes".to_owned()]);
        let with_code = r
            .function_list(FunctionListOptions::new().library_name("my*").with_code())
            .unwrap();
        assert_eq!(with_code[0].code.as_deref(), Some(LIBRARY));
        assert!(r
            .function_list(FunctionListOptions::new().library_name("zz*"))
            .unwrap()
            .is_empty());

        let dump = r.function_dump().unwrap();
        r.function_flush(None).unwrap();
        assert!(r
            .function_list(FunctionListOptions::new())
            .unwrap()
            .is_empty());
        r.function_restore(dump.clone(), None).unwrap();
        assert_eq!(
            r.function_list(FunctionListOptions::new()).unwrap().len(),
            1
        );
        r.function_restore(dump.clone(), Some(RestorePolicy::Replace))
            .unwrap();
        let err = r
            .function_restore(dump.clone(), Some(RestorePolicy::Append))
            .unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        r.function_restore(dump, Some(RestorePolicy::Flush))
            .unwrap();

        let stats = r.function_stats().unwrap();
        assert_eq!(stats["running_script"], Value::Nil);
        assert!(stats.contains_key("engines"));
        let err = r.function_kill().unwrap_err();
        assert!(err.to_string().contains("NOTBUSY"), "{err}");
        r.function_delete("mylib").unwrap();
        assert!(r
            .function_list(FunctionListOptions::new())
            .unwrap()
            .is_empty());
        assert!(!r.function_help().unwrap().is_empty());
    });
}
