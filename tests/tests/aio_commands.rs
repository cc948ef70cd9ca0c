//! Every command group through the async client and the blocking one, with the same
//! assertions, over RESP2 and RESP3: strings, keys, lists, hashes, sets, sorted sets,
//! streams, geo, HyperLogLog, bitmaps, scripting, server and connection basics, pub/sub
//! introspection, pipelines and typed pipelines.
//!
//! Each case is written once as a macro whose calls are wrapped in `$c!(…)`; a test runs
//! it with `$c` = [`blocking`] (the call as it is) and with `$c` = [`awaited`] (the call
//! `.await`ed), so the two clients are held to one expectation and a reply the async
//! path types or converts differently fails here.

use bytes::Bytes;
use redis_client::prelude::*;
use redis_client::redis_commands::{
    BitOp, BitUnit, GeoBy, GeoFrom, GeoSearchOptions, GeoUnit, StreamEntry, XReadOptions, ZRange,
};
use redis_client::{ConnectionInfo, Error, ErrorCode, FromValue, Protocol, Ttl, Value};
use redis_tests::TestServer;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// The blocking client's call, as it is.
macro_rules! blocking {
    ($e:expr) => {
        $e
    };
}

/// The async client's call, awaited.
macro_rules! awaited {
    ($e:expr) => {
        $e.await
    };
}

/// One test per case: the case through the blocking client, then through the async
/// client, over RESP2 then RESP3, each on a flushed database.
macro_rules! both_clients {
    ($($test:ident => $case:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $test() {
            let server = TestServer::start();
            for protocol in [Protocol::Resp2, Protocol::Resp3] {
                let info =
                    ConnectionInfo::tcp("127.0.0.1", server.port()).with_protocol(protocol);
                eprintln!("blocking client over {protocol:?}");
                let sync = redis_client::Redis::from_info(info.clone());
                tokio::task::block_in_place(|| {
                    sync.execute_command("FLUSHALL").unwrap();
                    let r = &sync;
                    $case!(r, blocking);
                });
                eprintln!("async client over {protocol:?}");
                let r = &redis_client::aio::Redis::from_info(info);
                r.execute_command("FLUSHALL").await.unwrap();
                $case!(r, awaited);
            }
        }
    )*};
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn list(items: &[&str]) -> Vec<Bytes> {
    items.iter().map(|s| b(s)).collect()
}

fn set(items: &[&str]) -> HashSet<Bytes> {
    items.iter().map(|s| b(s)).collect()
}

macro_rules! strings_case {
    ($r:ident, $c:ident) => {
        assert!($c!($r.set("k", "v1")).unwrap());
        assert_eq!($c!($r.get("k")).unwrap(), Some(b("v1")));
        assert_eq!($c!($r.get("missing")).unwrap(), None);
        assert!(!$c!($r.setnx("k", "no")).unwrap());
        assert_eq!($c!($r.getset("k", "v2")).unwrap(), Some(b("v1")));
        assert_eq!($c!($r.append("k", "!")).unwrap(), 3);
        assert_eq!($c!($r.strlen("k")).unwrap(), 3);
        assert_eq!($c!($r.getrange("k", 0, 1)).unwrap(), b("v2"));
        assert_eq!($c!($r.incr("n")).unwrap(), 1);
        assert_eq!($c!($r.incrby("n", 41)).unwrap(), 42);
        assert_eq!($c!($r.decr("n")).unwrap(), 41);
        assert_eq!($c!($r.incrbyfloat("f", 1.5)).unwrap(), 1.5);
        assert!($c!($r.mset([("a", "1"), ("b", "2")])).unwrap());
        assert_eq!(
            $c!($r.mget(["a", "nope", "b"])).unwrap(),
            vec![Some(b("1")), None, Some(b("2"))]
        );
        assert!($c!($r.setex("e", Duration::from_secs(100), "v")).unwrap());
        assert!($c!($r.ttl("e")).unwrap().expires_in().unwrap().as_secs() > 90);
        assert_eq!($c!($r.getdel("a")).unwrap(), Some(b("1")));
        // A server error is typed, with its code.
        $c!($r.lpush("l", "x")).unwrap();
        let e = $c!($r.incr("l")).unwrap_err();
        assert!(
            matches!(e, Error::Server(ref s) if s.code() == ErrorCode::WRONGTYPE),
            "{e:?}"
        );
    };
}

macro_rules! keys_case {
    ($r:ident, $c:ident) => {
        $c!($r.mset([("a", "1"), ("b", "2"), ("user:1", "x"), ("user:2", "y")])).unwrap();
        assert_eq!($c!($r.exists(["a", "b", "a", "zz"])).unwrap(), 3);
        assert_eq!($c!($r.ttl("a")).unwrap(), Ttl::Persistent);
        assert_eq!($c!($r.ttl("missing")).unwrap(), Ttl::Missing);
        assert!($c!($r.expire("a", Duration::from_secs(100))).unwrap());
        assert!($c!($r.persist("a")).unwrap());
        assert!(!$c!($r.expire("missing", Duration::from_secs(100))).unwrap());
        let mut users = $c!($r.keys("user:*")).unwrap();
        users.sort();
        assert_eq!(users, list(&["user:1", "user:2"]));
        $c!($r.rename("b", "c")).unwrap();
        assert_eq!($c!($r.get("c")).unwrap(), Some(b("2")));
        assert_eq!($c!($r.del(["c", "user:1", "nope"])).unwrap(), 2);
        assert_eq!($c!($r.unlink("user:2")).unwrap(), 1);
        assert_eq!($c!($r.dbsize()).unwrap(), 1);
    };
}

macro_rules! lists_case {
    ($r:ident, $c:ident) => {
        assert_eq!($c!($r.lpushx("l", "x")).unwrap(), 0);
        assert_eq!($c!($r.rpush("l", ["b", "c"])).unwrap(), 2);
        assert_eq!($c!($r.lpush("l", ["a", "z"])).unwrap(), 4);
        assert_eq!(
            $c!($r.lrange("l", 0, -1)).unwrap(),
            list(&["z", "a", "b", "c"])
        );
        assert_eq!($c!($r.llen("l")).unwrap(), 4);
        assert_eq!($c!($r.lindex("l", -1)).unwrap(), Some(b("c")));
        assert_eq!($c!($r.lindex("l", 99)).unwrap(), None);
        assert!($c!($r.lset("l", 0, "y")).unwrap());
        assert_eq!($c!($r.lpop("l")).unwrap(), Some(b("y")));
        assert_eq!($c!($r.rpop("l")).unwrap(), Some(b("c")));
        assert_eq!($c!($r.lpop_count("l", 5)).unwrap(), Some(list(&["a", "b"])));
        assert_eq!($c!($r.lpop("l")).unwrap(), None);
        assert_eq!($c!($r.lpop_count("l", 2)).unwrap(), None);
        // A blocking pop of a list that has an element answers at once.
        $c!($r.rpush("q", "job")).unwrap();
        assert_eq!(
            $c!($r.blpop("q", Duration::from_secs(1))).unwrap(),
            Some((b("q"), b("job")))
        );
    };
}

macro_rules! hashes_case {
    ($r:ident, $c:ident) => {
        assert_eq!($c!($r.hset("h", "f1", "v1")).unwrap(), 1);
        assert_eq!($c!($r.hset("h", "f1", "v1b")).unwrap(), 0);
        assert_eq!(
            $c!($r.hset_multiple("h", [("f2", "v2"), ("f3", "v3")])).unwrap(),
            2
        );
        assert!(!$c!($r.hsetnx("h", "f1", "no")).unwrap());
        assert_eq!($c!($r.hget("h", "f1")).unwrap(), Some(b("v1b")));
        assert_eq!(
            $c!($r.hmget("h", ["f2", "nope"])).unwrap(),
            vec![Some(b("v2")), None]
        );
        assert!($c!($r.hexists("h", "f3")).unwrap());
        assert_eq!($c!($r.hlen("h")).unwrap(), 3);
        assert_eq!($c!($r.hdel("h", ["f3", "nope"])).unwrap(), 1);
        assert_eq!(
            $c!($r.hgetall("h")).unwrap(),
            HashMap::from([(b("f1"), b("v1b")), (b("f2"), b("v2"))])
        );
        assert!($c!($r.hgetall("missing")).unwrap().is_empty());
        assert_eq!($c!($r.hincrby("h", "n", 5)).unwrap(), 5);
        assert_eq!($c!($r.hincrbyfloat("h", "x", 2.5)).unwrap(), 2.5);
    };
}

macro_rules! sets_case {
    ($r:ident, $c:ident) => {
        assert_eq!($c!($r.sadd("s", ["a", "b", "c"])).unwrap(), 3);
        assert_eq!($c!($r.sadd("s", "a")).unwrap(), 0);
        assert_eq!($c!($r.scard("s")).unwrap(), 3);
        assert_eq!($c!($r.smembers("s")).unwrap(), set(&["a", "b", "c"]));
        assert!($c!($r.sismember("s", "a")).unwrap());
        assert!(!$c!($r.sismember("s", "z")).unwrap());
        $c!($r.sadd("t", ["b", "c", "d"])).unwrap();
        assert_eq!($c!($r.sinter(["s", "t"])).unwrap(), set(&["b", "c"]));
        assert_eq!(
            $c!($r.sunion(["s", "t"])).unwrap(),
            set(&["a", "b", "c", "d"])
        );
        assert_eq!($c!($r.sdiff(["s", "t"])).unwrap(), set(&["a"]));
        assert_eq!($c!($r.srem("s", ["a", "z"])).unwrap(), 1);
        assert!($c!($r.smove("s", "u", "b")).unwrap());
        assert_eq!($c!($r.smembers("u")).unwrap(), set(&["b"]));
        assert_eq!($c!($r.spop("missing")).unwrap(), None);
    };
}

macro_rules! sorted_sets_case {
    ($r:ident, $c:ident) => {
        assert_eq!(
            $c!($r.zadd("z", [(1.0, "a"), (2.0, "b"), (3.0, "c")])).unwrap(),
            3
        );
        assert_eq!($c!($r.zcard("z")).unwrap(), 3);
        assert_eq!($c!($r.zscore("z", "b")).unwrap(), Some(2.0));
        assert_eq!($c!($r.zscore("z", "nope")).unwrap(), None);
        assert_eq!($c!($r.zincrby("z", 0.5, "a")).unwrap(), 1.5);
        assert_eq!($c!($r.zrank("z", "c")).unwrap(), Some(2));
        assert_eq!($c!($r.zrank("z", "nope")).unwrap(), None);
        assert_eq!($c!($r.zcount("z", "-inf", "+inf")).unwrap(), 3);
        assert_eq!(
            $c!($r.zrange("z", ZRange::by_index(0, -1))).unwrap(),
            list(&["a", "b", "c"])
        );
        assert_eq!(
            $c!($r.zrange_withscores("z", ZRange::by_index(0, 1))).unwrap(),
            vec![(b("a"), 1.5), (b("b"), 2.0)]
        );
        assert_eq!($c!($r.zrem("z", ["a", "nope"])).unwrap(), 1);
        assert_eq!(
            $c!($r.zpopmin("z", 1)).unwrap(),
            vec![(b("b"), 2.0)]
        );
    };
}

macro_rules! streams_case {
    ($r:ident, $c:ident) => {
        assert_eq!($c!($r.xadd("s", "1-0", [("n", "1")])).unwrap(), b("1-0"));
        assert_eq!(
            $c!($r.xadd("s", "2-0", [("n", "2"), ("extra", "x")])).unwrap(),
            b("2-0")
        );
        let id = $c!($r.xadd("auto", "*", [("k", "v")])).unwrap();
        assert!(id.contains(&b'-'), "{id:?}");
        assert_eq!($c!($r.xlen("s")).unwrap(), 2);
        let entry = |id: &str, fields: &[(&str, &str)]| StreamEntry {
            id: b(id),
            fields: fields.iter().map(|&(f, v)| (b(f), b(v))).collect(),
        };
        assert_eq!(
            $c!($r.xrange("s", "-", "+", None)).unwrap(),
            vec![
                entry("1-0", &[("n", "1")]),
                entry("2-0", &[("n", "2"), ("extra", "x")])
            ]
        );
        assert_eq!(
            $c!($r.xread(XReadOptions::default(), "s", "1-0")).unwrap(),
            vec![(b("s"), vec![entry("2-0", &[("n", "2"), ("extra", "x")])])]
        );
        assert_eq!($c!($r.xdel("s", ["1-0", "9-0"])).unwrap(), 1);
        assert_eq!($c!($r.xlen("s")).unwrap(), 1);
    };
}

macro_rules! geo_case {
    ($r:ident, $c:ident) => {
        assert_eq!(
            $c!($r.geoadd(
                "sicily",
                [
                    (13.361389, 38.115556, "Palermo"),
                    (15.087269, 37.502669, "Catania")
                ]
            ))
            .unwrap(),
            2
        );
        let km = $c!($r.geodist("sicily", "Palermo", "Catania", GeoUnit::Kilometers))
            .unwrap()
            .unwrap();
        assert!((km - 166.2742).abs() < 0.001, "{km}");
        assert_eq!(
            $c!($r.geodist("sicily", "Palermo", "Atlantis", GeoUnit::Miles)).unwrap(),
            None
        );
        assert_eq!(
            $c!($r.geohash("sicily", ["Palermo", "Atlantis"])).unwrap(),
            [Some("sqc8b49rny0".to_owned()), None]
        );
        let pos = $c!($r.geopos("sicily", ["Palermo", "Atlantis"])).unwrap();
        let (lon, lat) = pos[0].unwrap();
        assert!((lon - 13.361389).abs() < 1e-5 && (lat - 38.115556).abs() < 1e-5);
        assert_eq!(pos[1], None);
        assert_eq!(
            $c!($r.geosearch(
                "sicily",
                GeoFrom::LonLat(15.0, 37.0),
                GeoBy::Radius(200.0, GeoUnit::Kilometers),
                GeoSearchOptions::default().asc()
            ))
            .unwrap(),
            [b("Catania"), b("Palermo")]
        );
    };
}

macro_rules! hyperloglog_case {
    ($r:ident, $c:ident) => {
        assert!($c!($r.pfadd("h1", ["a", "b", "c"])).unwrap());
        assert!(!$c!($r.pfadd("h1", "a")).unwrap());
        assert!($c!($r.pfadd("h2", ["c", "d"])).unwrap());
        assert_eq!($c!($r.pfcount("h1")).unwrap(), 3);
        assert_eq!($c!($r.pfcount(["h1", "h2"])).unwrap(), 4);
        assert!($c!($r.pfmerge("all", ["h1", "h2"])).unwrap());
        assert_eq!($c!($r.pfcount("all")).unwrap(), 4);
    };
}

macro_rules! bitmaps_case {
    ($r:ident, $c:ident) => {
        assert_eq!($c!($r.setbit("bm", 7, true)).unwrap(), 0);
        assert_eq!($c!($r.setbit("bm", 7, true)).unwrap(), 1);
        assert_eq!($c!($r.getbit("bm", 7)).unwrap(), 1);
        assert_eq!($c!($r.getbit("bm", 1000)).unwrap(), 0);
        assert_eq!(
            $c!($r.get("bm")).unwrap(),
            Some(Bytes::from_static(b"\x01"))
        );
        // "foobar" has 26 bits set.
        $c!($r.set("s", "foobar")).unwrap();
        assert_eq!($c!($r.bitcount("s")).unwrap(), 26);
        assert_eq!($c!($r.bitcount_range("s", 1, 1, BitUnit::Byte)).unwrap(), 6);
        $c!($r.set("p", Bytes::from_static(b"\xff\xf0\x00"))).unwrap();
        assert_eq!($c!($r.bitpos("p", false)).unwrap(), 12);
        assert_eq!($c!($r.bitop(BitOp::And, "dest", ["s", "p"])).unwrap(), 6);
    };
}

macro_rules! scripting_case {
    ($r:ident, $c:ident) => {
        let v = $c!($r.eval("return ARGV[1] .. KEYS[1]", ["k"], ["x-"])).unwrap();
        assert_eq!(String::from_value(v).unwrap(), "x-k");
        let sha = $c!($r.script_load("return tonumber(ARGV[1]) * 2")).unwrap();
        assert_eq!(sha.len(), 40);
        assert_eq!(
            $c!($r.script_exists([sha.as_str(), "0000000000000000000000000000000000000000"]))
                .unwrap(),
            vec![true, false]
        );
        let v = $c!($r.evalsha(&sha, [] as [&str; 0], ["21"])).unwrap();
        assert_eq!(v, Value::Integer(42));
        $c!($r.script_flush(None)).unwrap();
        let e = $c!($r.evalsha(&sha, [] as [&str; 0], ["21"])).unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::NOSCRIPT));
    };
}

macro_rules! server_case {
    ($r:ident, $c:ident) => {
        assert_eq!($c!($r.ping()).unwrap(), b("PONG"));
        assert_eq!($c!($r.echo("hi")).unwrap(), b("hi"));
        $c!($r.set("k", "v")).unwrap();
        assert_eq!($c!($r.dbsize()).unwrap(), 1);
        let info = $c!($r.info()).unwrap();
        assert!(
            info.sections["server"].contains_key("redis_version"),
            "{info:?}"
        );
        let got = $c!($r.config_get("maxmemory-policy")).unwrap();
        assert!(got.contains_key("maxmemory-policy"), "{got:?}");
        assert!($c!($r.time()).unwrap().secs > 1_600_000_000);
        $c!($r.flushdb(None)).unwrap();
        assert_eq!($c!($r.dbsize()).unwrap(), 0);
    };
}

macro_rules! pubsub_case {
    ($r:ident, $c:ident) => {
        assert_eq!($c!($r.publish("news", "nobody")).unwrap(), 0);
        assert!($c!($r.pubsub_channels()).unwrap().is_empty());
        assert_eq!($c!($r.pubsub_numpat()).unwrap(), 0);
        assert_eq!(
            $c!($r.pubsub_numsub(["news"])).unwrap(),
            vec![(b("news"), 0)]
        );
    };
}

macro_rules! pipeline_case {
    ($r:ident, $c:ident) => {
        // A transaction: one result per command, after the response callbacks.
        let mut pipe = $r.pipeline();
        pipe.set("a", "1").incr("a").get("a").sadd("s", ["x", "y"]);
        assert_eq!(
            $c!(pipe.execute()).unwrap(),
            vec![
                Value::Boolean(true),
                Value::Integer(2),
                Value::BulkString(b("2")),
                Value::Integer(2)
            ]
        );
        // Without MULTI, converted into a tuple.
        let mut pipe = $r.pipeline();
        pipe.transaction(false);
        pipe.incr("a").get("missing");
        let (n, missing): (i64, Option<Bytes>) = $c!(pipe.query()).unwrap();
        assert_eq!((n, missing), (3, None));
        // A command failing inside MULTI fails the pipeline, after every reply was read.
        let mut pipe = $r.pipeline();
        pipe.set("str", "x").lpush("str", "y").incr("a");
        let e = $c!(pipe.execute()).unwrap_err();
        assert!(matches!(e, Error::PipelineCommand { .. }), "{e:?}");
        assert_eq!($c!($r.get("a")).unwrap(), Some(b("4")));
        // With raise_on_error(false) the error is in place.
        let mut pipe = $r.pipeline();
        pipe.raise_on_error(false);
        pipe.lpush("str", "y").incr("a");
        let results = $c!(pipe.execute()).unwrap();
        assert!(matches!(results[0], Value::Error(_)), "{results:?}");
        assert_eq!(results[1], Value::Integer(5));
        // A command the server refuses at queueing aborts the whole transaction.
        let mut pipe = $r.pipeline();
        pipe.incr("a").execute_command(("NOSUCHCOMMAND", "x"));
        let e = $c!(pipe.execute()).unwrap_err();
        assert!(matches!(e, Error::ExecAbort { .. }), "{e:?}");
        assert_eq!($c!($r.get("a")).unwrap(), Some(b("5")));
    };
}

macro_rules! typed_pipeline_case {
    ($r:ident, $c:ident) => {
        let (stored, value, n) =
            $c!($r.typed_pipeline().set("a", 1).get("a").incr("n").execute()).unwrap();
        let _: (bool, Option<Bytes>, i64) = (stored, value.clone(), n);
        assert_eq!((stored, value, n), (true, Some(b("1")), 1));
        let (len, text) = $c!($r
            .text()
            .typed_pipeline()
            .transaction(false)
            .rpush("l", ["x", "y"])
            .lrange("l", 0, -1)
            .execute())
        .unwrap();
        let _: Vec<String> = text.clone();
        assert_eq!((len, text), (2, vec!["x".to_owned(), "y".to_owned()]));
        // A reply that does not fit names its command.
        let e = $c!($r
            .typed_pipeline()
            .incr("n")
            .invoke_script::<i64>($r.register_script("return 'not a number'").call())
            .execute())
        .unwrap_err();
        assert!(
            matches!(&e, Error::Reply { command, .. } if command.contains("#1")),
            "{e:?}"
        );
    };
}

// After the cases: a macro is visible only below its definition.
both_clients! {
    strings => strings_case;
    keys => keys_case;
    lists => lists_case;
    hashes => hashes_case;
    sets => sets_case;
    sorted_sets => sorted_sets_case;
    streams => streams_case;
    geo => geo_case;
    hyperloglog => hyperloglog_case;
    bitmaps => bitmaps_case;
    scripting => scripting_case;
    server_and_connection => server_case;
    pubsub_introspection => pubsub_case;
    pipelines_and_transactions => pipeline_case;
    typed_pipelines => typed_pipeline_case;
}
