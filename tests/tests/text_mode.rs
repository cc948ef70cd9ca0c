//! Text mode (`text()`, the reference's `decode_responses=True`): every typed command
//! method gives `String`s on the client, a connection, a pipeline, a WATCH-ed pipeline,
//! a typed pipeline and the legacy client; numbers stay numbers; non-UTF-8 is an error
//! naming the command. Also `reply_as`, which reads a counter as a number in any mode.

use redis_client::compat::LegacyRedis;
use redis_client::prelude::*;
use redis_client::redis_commands::ZRange;
use redis_client::{Error, FromValueError, Redis, Value};
use redis_tests::TestServer;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

mod common;

#[test]
fn client_replies_are_strings_over_both_protocols() {
    let server = TestServer::start();
    common::for_each_protocol(&server, |r: &Redis| {
        let t = r.text();
        assert!(t.set("greeting", "héllo wörld").unwrap());
        let greeting: Option<String> = t.get("greeting").unwrap();
        assert_eq!(greeting.as_deref(), Some("héllo wörld"));
        assert_eq!(t.get("missing").unwrap(), None::<String>);
        t.hset_multiple("h", [("naïve", "café"), ("b", "2")])
            .unwrap();
        let map: HashMap<String, String> = t.hgetall("h").unwrap();
        assert_eq!(map["naïve"], "café");
        t.rpush("l", ["x", "y"]).unwrap();
        let list: Vec<String> = t.lrange("l", 0, -1).unwrap();
        assert_eq!(list, ["x", "y"]);
        t.sadd("s", ["m"]).unwrap();
        let set: HashSet<String> = t.smembers("s").unwrap();
        assert!(set.contains("m"));
        t.zadd("z", [(1.5, "a"), (2.0, "b")]).unwrap();
        let scored: Vec<(String, f64)> = t.zrange_withscores("z", ZRange::by_index(0, -1)).unwrap();
        assert_eq!(scored, [("a".to_owned(), 1.5), ("b".to_owned(), 2.0)]);
        // Numbers stay numbers.
        let n: i64 = t.incr("n").unwrap();
        assert_eq!(n, 1);
        let score: Option<f64> = t.zscore("z", "a").unwrap();
        assert_eq!(score, Some(1.5));
        // The byte mode of the same client is unchanged.
        assert_eq!(
            r.get("greeting").unwrap().as_deref(),
            Some("héllo wörld".as_bytes())
        );
    });
}

#[test]
fn non_utf8_is_a_reply_error_naming_the_command() {
    let server = TestServer::start();
    let r = Redis::open(&server.url()).unwrap().text();
    r.binary().set("bin", &b"\xff\xfe"[..]).unwrap();
    match r.get("bin").unwrap_err() {
        Error::Reply {
            command,
            source: FromValueError::Type { expected, .. },
        } => {
            assert_eq!(command, "GET");
            assert_eq!(expected, "UTF-8 string");
        }
        other => panic!("{other:?}"),
    }
    // Byte mode reads the same value.
    assert_eq!(
        r.binary().get("bin").unwrap().as_deref(),
        Some(&b"\xff\xfe"[..])
    );
}

#[test]
fn connections_watched_pipelines_and_transactions_in_text_mode() {
    let server = TestServer::start();
    let r = Redis::open(&server.url()).unwrap().text();
    r.set("k", "v").unwrap();

    let mut conn = r.dedicated_connection().unwrap();
    let v: Option<String> = conn.get("k").unwrap();
    assert_eq!(v.as_deref(), Some("v"));

    let mut watched = r.pipeline().watch("k").unwrap();
    let seen: Option<String> = watched.get("k").unwrap();
    assert_eq!(seen.as_deref(), Some("v"));
    let mut pipe = watched.multi();
    pipe.set("k", "w");
    assert_eq!(pipe.execute().unwrap(), [Value::Boolean(true)]);

    let mut read = None;
    r.transaction("k", |mut w| {
        read = w.get("k")?;
        let mut tx = w.multi();
        tx.set("k", "x");
        Ok(tx)
    })
    .unwrap();
    assert_eq!(read.as_deref(), Some("w"));
}

#[test]
fn legacy_client_in_text_mode_keeps_its_argument_orders() {
    let server = TestServer::start();
    let r = LegacyRedis::open(&server.url()).unwrap().text();
    // The legacy order: name, score.
    assert_eq!(r.zadd("z", [("a", 1.0)]).unwrap(), 1);
    assert!(r.setex("k", "v", Duration::from_secs(100)).unwrap());
    assert!(r.ttl("k").unwrap().is_some());
    r.set("p", "q").unwrap();
    assert_eq!(r.ttl("p").unwrap(), None);
    let v: Option<String> = r.get("k").unwrap();
    assert_eq!(v.as_deref(), Some("v"));
    let members: Vec<String> = r.zrange("z", ZRange::by_index(0, -1)).unwrap();
    assert_eq!(members, ["a"]);
}

#[test]
fn reply_as_reads_a_counter_as_a_number_in_any_mode() {
    let server = TestServer::start();
    let r = Redis::open(&server.url()).unwrap();
    r.set("seq", 41).unwrap();
    let n: Option<i64> = r.reply_as::<Option<i64>>().get("seq").unwrap();
    assert_eq!(n, Some(41));
    let t = r.text();
    assert_eq!(t.reply_as::<Option<i64>>().get("none").unwrap(), None);

    // Inside WATCH's immediate mode: the reference's client-side INCR, with no parsing.
    t.transaction("seq", |mut pipe| {
        let current = pipe.reply_as::<Option<i64>>().get("seq")?.unwrap_or(0);
        let mut tx = pipe.multi();
        tx.set("seq", current + 1);
        Ok(tx)
    })
    .unwrap();
    assert_eq!(r.reply_as::<i64>().get("seq").unwrap(), 42);
    // A value that is not a number is a reply error naming the command.
    r.set("word", "abc").unwrap();
    let err = r.reply_as::<i64>().get("word").unwrap_err();
    assert!(
        matches!(err, Error::Reply { ref command, .. } if command == "GET"),
        "{err:?}"
    );
}

#[test]
fn typed_pipeline_in_text_mode_gives_strings() {
    let server = TestServer::start();
    let r = Redis::open(&server.url()).unwrap().text();
    let (stored, value, n) = r
        .typed_pipeline()
        .set("a", "é")
        .get("a")
        .incr("n")
        .execute()
        .unwrap();
    assert!(stored);
    assert_eq!(value, Some("é".to_owned()));
    assert_eq!(n, 1);
}

#[test]
fn scan_iterators_and_messages_in_text_mode() {
    let server = TestServer::start();
    let r = Redis::open(&server.url()).unwrap().text();
    r.mset([("user:1", "a"), ("user:2", "b"), ("other", "c")])
        .unwrap();
    let mut keys: Vec<String> = r
        .scan_iter(redis_client::ScanOptions::new().pattern("user:*"))
        .collect::<Result<_, _>>()
        .unwrap();
    keys.sort();
    assert_eq!(keys, ["user:1", "user:2"]);
    r.hset_multiple("h", [("f", "v")]).unwrap();
    let fields: Vec<(String, String)> = r
        .hscan_iter("h", redis_client::ScanOptions::new())
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(fields, [("f".to_owned(), "v".to_owned())]);
    r.binary().set("bin:\u{0}", "x").unwrap();
    r.binary().set(&b"bin:\xff"[..], "x").unwrap();
    let walk: Vec<_> = r
        .scan_iter(redis_client::ScanOptions::new().pattern("bin:*"))
        .collect();
    assert!(walk.iter().any(|k| k.is_err()), "{walk:?}");

    let mut p = r.pubsub();
    p.subscribe("chat").unwrap();
    while r.publish("chat", "héllo").unwrap() == 0 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let message = loop {
        let m = p
            .get_message(Some(std::time::Duration::from_secs(5)))
            .unwrap()
            .unwrap();
        if m.kind == redis_client::MessageKind::Message {
            break m;
        }
    };
    assert_eq!(message.channel_str().unwrap(), "chat");
    assert_eq!(message.payload_str().unwrap(), "héllo");
}
