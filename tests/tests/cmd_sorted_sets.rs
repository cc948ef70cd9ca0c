//! Sorted set commands against a real server, over RESP2 and RESP3.

mod common;

use bytes::Bytes;
use common::for_each_protocol;
use redis_client::prelude::*;
use redis_client::redis_commands::{
    Aggregate, LexBound, Limit, MinMax, ScoreBound, ZAggregateOptions, ZRange, ZaddOptions,
};
use redis_client::{ConnectionInfo, FromValue, Protocol, Redis};
use redis_tests::TestServer;
use std::time::{Duration, Instant};

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn scored(items: &[(&str, f64)]) -> Vec<(Bytes, f64)> {
    items.iter().map(|&(m, s)| (b(m), s)).collect()
}

/// `z` = a:1 b:2 c:3 d:4.
fn seed(r: &Redis) {
    assert_eq!(
        r.zadd("z", [(1.0, "a"), (2.0, "b"), (3.0, "c"), (4.0, "d")])
            .unwrap(),
        4
    );
}

/// Issue 16: ZADD's members come as `(score, member)` pairs (a pair the other way round
/// does not compile: see `ScoredMembers`), from arrays, vectors, slices and maps.
#[test]
fn zadd_takes_typed_pairs_and_maps() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        assert_eq!(r.zadd("z", (1.0, "one")).unwrap(), 1);
        assert_eq!(r.zadd("z", vec![(2.0, "two".to_owned())]).unwrap(), 1);
        let slice: &[(f64, &[u8])] = &[(3.0, b"three")];
        assert_eq!(r.zadd("z", slice).unwrap(), 1);
        let map = std::collections::HashMap::from([("four", 4.0), ("five", 5.0)]);
        assert_eq!(r.zadd("z", &map).unwrap(), 2);
        let tree = std::collections::BTreeMap::from([("one", 1.5), ("six", 6.0)]);
        assert_eq!(r.zadd("z", tree).unwrap(), 1);
        assert_eq!(
            r.zadd_options("z", ZaddOptions::default().ch(), [(7.0, "six")])
                .unwrap(),
            1
        );
        assert_eq!(
            r.zrange_withscores("z", ZRange::by_index(0, -1)).unwrap(),
            scored(&[
                ("one", 1.5),
                ("two", 2.0),
                ("three", 3.0),
                ("four", 4.0),
                ("five", 5.0),
                ("six", 7.0)
            ])
        );
    });
}

/// Issue 29: scores, increments and weights are any number a user would write, integers
/// as well as floats, with no `as f64`.
#[test]
fn scores_increments_and_weights_take_integers() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        assert_eq!(r.zadd("board", [(10, "ada"), (7, "bob")]).unwrap(), 2);
        let points: u32 = 3;
        assert_eq!(r.zadd("board", vec![(points, "cy")]).unwrap(), 1);
        let map = std::collections::HashMap::from([("dee", 12_i64)]);
        assert_eq!(r.zadd("board", map).unwrap(), 1);
        assert_eq!(r.zincrby("board", 5, "bob").unwrap(), 12.0);
        assert_eq!(r.zincrby("board", 0.5, "bob").unwrap(), 12.5);
        assert_eq!(
            r.zadd_incr("board", ZaddOptions::default(), 2, "cy")
                .unwrap(),
            Some(5.0)
        );
        // Integers are sent exactly, however large (an `as f64` would round this one).
        r.zadd("big", [(9_007_199_254_740_993_i64, "m")]).unwrap();
        assert_eq!(
            r.execute_command(("ZSCORE", "big", "m")).unwrap(),
            redis_client::Value::Double(9_007_199_254_740_992.0)
        );
        r.zadd("other", [(1, "ada")]).unwrap();
        let options = ZAggregateOptions::default().weights([2, 3]);
        assert_eq!(
            r.zunion_withscores(["board", "other"], options).unwrap()[..1],
            scored(&[("cy", 10.0)])[..]
        );
        assert_eq!(r.incrbyfloat("n", 2).unwrap(), 2.0);
        assert_eq!(r.hincrbyfloat("h", "f", 3).unwrap(), 3.0);
        assert_eq!(
            r.zrange_withscores("board", ZRange::by_index(0, -1))
                .unwrap(),
            scored(&[("cy", 5.0), ("ada", 10.0), ("dee", 12.0), ("bob", 12.5)])
        );
    });
}

#[test]
fn zadd_forms() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        seed(r);
        let nx = ZaddOptions::default().nx();
        assert_eq!(
            r.zadd_options("z", nx, [(9.0, "a"), (5.0, "e")]).unwrap(),
            1
        );
        assert_eq!(r.zscore("z", "a").unwrap(), Some(1.0));
        let raise = ZaddOptions::default().xx().gt().ch();
        assert_eq!(
            r.zadd_options("z", raise, [(0.5, "a"), (7.0, "b"), (1.0, "new")])
                .unwrap(),
            1
        );
        assert_eq!(r.zscore("z", "b").unwrap(), Some(7.0));
        assert_eq!(r.zscore("z", "new").unwrap(), None);
        let lower = ZaddOptions::default().lt().ch();
        assert_eq!(r.zadd_options("z", lower, [(0.5, "a")]).unwrap(), 1);
        assert_eq!(
            r.zadd_incr("z", ZaddOptions::default(), 2.0, "a").unwrap(),
            Some(2.5)
        );
        assert_eq!(
            r.zadd_incr("z", ZaddOptions::default().xx(), 1.0, "missing")
                .unwrap(),
            None
        );
        assert_eq!(
            r.zadd("inf", [(f64::NEG_INFINITY, "lo"), (f64::INFINITY, "hi")])
                .unwrap(),
            2
        );
        assert_eq!(
            r.zrange_withscores("inf", ZRange::by_index(0, -1)).unwrap(),
            scored(&[("lo", f64::NEG_INFINITY), ("hi", f64::INFINITY)])
        );
    });
}

#[test]
fn counting_and_scores() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        seed(r);
        assert_eq!(r.zcard("z").unwrap(), 4);
        assert_eq!(r.zcard("nothing").unwrap(), 0);
        assert_eq!(r.zcount("z", 2.0, ScoreBound::PosInf).unwrap(), 3);
        assert_eq!(r.zcount("z", ScoreBound::Exclusive(2.0), "(4").unwrap(), 1);
        assert_eq!(r.zcount("z", "-inf", "+inf").unwrap(), 4);
        assert_eq!(
            r.zlexcount("z", LexBound::inclusive("b"), LexBound::Max)
                .unwrap(),
            3
        );
        assert_eq!(r.zlexcount("z", "-", "(c").unwrap(), 2);
        assert_eq!(
            r.zmscore("z", ["a", "x", "d"]).unwrap(),
            vec![Some(1.0), None, Some(4.0)]
        );
        assert_eq!(r.zincrby("z", 0.5, "a").unwrap(), 1.5);
        assert_eq!(r.zincrby("z", -10.0, "fresh").unwrap(), -10.0);
        assert_eq!(r.zrank("z", "fresh").unwrap(), Some(0));
        assert_eq!(r.zrevrank("z", "d").unwrap(), Some(0));
        assert_eq!(r.zrank("z", "missing").unwrap(), None);
        assert_eq!(r.zrevrank("z", "missing").unwrap(), None);
    });
}

#[test]
fn removal() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        seed(r);
        assert_eq!(r.zrem("z", ["a", "nope"]).unwrap(), 1);
        assert_eq!(r.zremrangebyrank("z", 0, 0).unwrap(), 1); // b
        assert_eq!(
            r.zrange("z", ZRange::by_index(0, -1)).unwrap(),
            [b("c"), b("d")]
        );
        r.del("z").unwrap();
        seed(r);
        assert_eq!(
            r.zremrangebyscore("z", ScoreBound::Exclusive(1.0), 3.0)
                .unwrap(),
            2
        );
        assert_eq!(
            r.zremrangebylex("z", LexBound::Min, LexBound::exclusive("d"))
                .unwrap(),
            1
        );
        assert_eq!(r.zrange("z", ZRange::by_index(0, -1)).unwrap(), [b("d")]);
    });
}

#[test]
fn zrange_forms() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        seed(r);
        assert_eq!(
            r.zrange("z", ZRange::by_index(0, 1).rev()).unwrap(),
            [b("d"), b("c")]
        );
        assert_eq!(
            r.zrange(
                "z",
                ZRange::by_score(ScoreBound::Exclusive(1.0), ScoreBound::PosInf)
            )
            .unwrap(),
            [b("b"), b("c"), b("d")]
        );
        assert_eq!(
            r.zrange_withscores("z", ZRange::by_score(2.0, 4.0).rev().limit(1, 1))
                .unwrap(),
            scored(&[("c", 3.0)])
        );
        assert_eq!(
            r.zrange(
                "z",
                ZRange::by_lex(LexBound::inclusive("b"), LexBound::exclusive("d"))
            )
            .unwrap(),
            [b("b"), b("c")]
        );
        assert_eq!(
            r.zrange(
                "z",
                ZRange::by_lex(LexBound::Min, LexBound::Max)
                    .rev()
                    .limit(0, 2)
            )
            .unwrap(),
            [b("d"), b("c")]
        );
        // An even and an odd number of pairs: RESP3 sends an array of pairs either way.
        assert_eq!(
            r.zrange_withscores("z", ZRange::by_index(0, -1)).unwrap(),
            scored(&[("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 4.0)])
        );
        assert_eq!(
            r.zrange_withscores("z", ZRange::by_index(0, 2)).unwrap(),
            scored(&[("a", 1.0), ("b", 2.0), ("c", 3.0)])
        );
        assert_eq!(
            r.zrange_withscores("missing", ZRange::by_index(0, -1))
                .unwrap(),
            vec![]
        );
        assert_eq!(
            r.zrangestore("dst", "z", ZRange::by_score(3.0, ScoreBound::PosInf))
                .unwrap(),
            2
        );
        assert_eq!(
            r.zrange_withscores("dst", ZRange::by_index(0, -1)).unwrap(),
            scored(&[("c", 3.0), ("d", 4.0)])
        );
    });
}

#[test]
fn legacy_range_commands() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        seed(r);
        assert_eq!(
            r.zrangebyscore("z", 2.0, "+inf", None).unwrap(),
            [b("b"), b("c"), b("d")]
        );
        assert_eq!(
            r.zrangebyscore("z", "-inf", "+inf", Some(Limit::new(1, 2)))
                .unwrap(),
            [b("b"), b("c")]
        );
        assert_eq!(
            r.zrangebyscore_withscores("z", "(1", 2.0, None).unwrap(),
            scored(&[("b", 2.0)])
        );
        assert_eq!(
            r.zrevrangebyscore("z", 3.0, 1.0, Some(Limit::new(0, 2)))
                .unwrap(),
            [b("c"), b("b")]
        );
        assert_eq!(
            r.zrevrangebyscore_withscores("z", "+inf", "(3", None)
                .unwrap(),
            scored(&[("d", 4.0)])
        );
        assert_eq!(r.zrevrange("z", 0, 1).unwrap(), [b("d"), b("c")]);
        assert_eq!(
            r.zrevrange_withscores("z", -1, -1).unwrap(),
            scored(&[("a", 1.0)])
        );
        assert_eq!(
            r.zrangebylex("z", "[b", "+", Some(Limit::new(0, 1)))
                .unwrap(),
            [b("b")]
        );
        assert_eq!(
            r.zrevrangebylex("z", LexBound::Max, LexBound::exclusive("b"), None)
                .unwrap(),
            [b("d"), b("c")]
        );
    });
}

#[test]
fn pops_and_random_members() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        seed(r);
        assert_eq!(r.zpopmin("z", 1).unwrap(), scored(&[("a", 1.0)]));
        assert_eq!(
            r.zpopmax("z", 2).unwrap(),
            scored(&[("d", 4.0), ("c", 3.0)])
        );
        assert_eq!(r.zpopmin("missing", 3).unwrap(), vec![]);
        assert_eq!(
            r.bzpopmax(["missing", "z"], Duration::from_secs(1))
                .unwrap(),
            Some((b("z"), b("b"), 2.0))
        );
        seed(r);
        assert_eq!(
            r.zmpop(["missing", "z"], MinMax::Min, 2).unwrap(),
            Some((b("z"), scored(&[("a", 1.0), ("b", 2.0)])))
        );
        assert_eq!(r.zmpop(["missing"], MinMax::Max, 1).unwrap(), None);
        assert_eq!(
            r.bzmpop(Duration::from_secs(1), ["z"], MinMax::Max, 1)
                .unwrap(),
            Some((b("z"), scored(&[("d", 4.0)])))
        );
        assert_eq!(r.zrandmember("z").unwrap(), Some(b("c")));
        assert_eq!(r.zrandmember("missing").unwrap(), None);
        assert_eq!(r.zrandmember_count("z", 5).unwrap(), [b("c")]);
        assert_eq!(r.zrandmember_count("z", -3).unwrap().len(), 3);
        assert_eq!(
            r.zrandmember_withscores("z", 2).unwrap(),
            scored(&[("c", 3.0)])
        );
        assert_eq!(
            r.zrandmember_withscores("z", -2).unwrap(),
            scored(&[("c", 3.0), ("c", 3.0)])
        );
    });
}

#[test]
fn set_algebra() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        r.zadd("z1", [(1.0, "a"), (2.0, "b")]).unwrap();
        r.zadd("z2", [(10.0, "b"), (20.0, "c")]).unwrap();
        let none = ZAggregateOptions::default;
        assert_eq!(
            r.zunion(["z1", "z2"], none()).unwrap(),
            [b("a"), b("b"), b("c")]
        );
        assert_eq!(
            r.zunion_withscores(
                ["z1", "z2"],
                none().weights([2.0, 1.0]).aggregate(Aggregate::Max)
            )
            .unwrap(),
            scored(&[("a", 2.0), ("b", 10.0), ("c", 20.0)])
        );
        assert_eq!(r.zunionstore("u", ["z1", "z2"], none()).unwrap(), 3);
        assert_eq!(r.zscore("u", "b").unwrap(), Some(12.0));
        assert_eq!(r.zinter(["z1", "z2"], none()).unwrap(), [b("b")]);
        assert_eq!(
            r.zinter_withscores(["z1", "z2"], none().aggregate(Aggregate::Min))
                .unwrap(),
            scored(&[("b", 2.0)])
        );
        assert_eq!(
            r.zinterstore("i", ["z1", "z2"], none().weights([1.0, 0.5]))
                .unwrap(),
            1
        );
        assert_eq!(r.zscore("i", "b").unwrap(), Some(7.0));
        assert_eq!(r.zintercard(["z1", "z2"], None).unwrap(), 1);
        assert_eq!(r.zintercard(["u", "z2"], Some(1)).unwrap(), 1);
        assert_eq!(r.zintercard(["u", "z2"], None).unwrap(), 2);
        assert_eq!(r.zdiff(["z1", "z2"]).unwrap(), [b("a")]);
        assert_eq!(
            r.zdiff_withscores(["z2", "z1"]).unwrap(),
            scored(&[("c", 20.0)])
        );
        assert_eq!(r.zdiffstore("d", ["u", "z1"]).unwrap(), 1);
        assert_eq!(r.zrange("d", ZRange::by_index(0, -1)).unwrap(), [b("c")]);
    });
}

fn slow_client(server: &TestServer, protocol: Protocol) -> Redis {
    let info = ConnectionInfo::tcp("127.0.0.1", server.port())
        .with_protocol(protocol)
        .with_read_timeout(Some(Duration::from_millis(500)));
    Redis::from_info(info)
}

#[test]
fn bzpopmin_waits_past_the_read_timeout() {
    let server = TestServer::start();
    for protocol in [Protocol::Resp2, Protocol::Resp3] {
        let r = slow_client(&server, protocol);
        r.del("bz").unwrap();
        let start = Instant::now();
        assert_eq!(
            r.bzpopmin("bz", Duration::from_secs(2)).unwrap(),
            None,
            "{protocol:?}"
        );
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(1900), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");

        let writer = r.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(800));
            writer.zadd("bz", [(5.0, "late")]).unwrap()
        });
        let start = Instant::now();
        assert_eq!(
            r.bzpopmin("bz", Duration::from_secs(5)).unwrap(),
            Some((b("bz"), b("late"), 5.0)),
            "{protocol:?}"
        );
        assert!(start.elapsed() >= Duration::from_millis(700));
        assert_eq!(t.join().unwrap(), 1);
    }
}

/// Issue 16: the WITHSCORES callback of the dynamic path fires on the option only, not on a
/// key or member named `withscores`.
#[test]
fn a_key_named_withscores_is_not_the_option() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        r.zadd("withscores", [(1.0, "a"), (2.0, "withscores")])
            .unwrap();
        let plain = r.execute_command(("ZRANGE", "withscores", 0, -1)).unwrap();
        assert_eq!(
            plain,
            redis_client::Value::Array(vec![
                redis_client::Value::BulkString(b("a")),
                redis_client::Value::BulkString(b("withscores")),
            ])
        );
        let pairs = r
            .execute_command(("ZRANGE", "withscores", 0, -1, "WITHSCORES"))
            .unwrap();
        assert_eq!(
            Vec::<(Bytes, f64)>::from_value(pairs).unwrap(),
            scored(&[("a", 1.0), ("withscores", 2.0)])
        );
        let union = r.execute_command(("ZUNION", 1, "withscores")).unwrap();
        assert_eq!(Vec::<Bytes>::from_value(union).unwrap().len(), 2);
    });
}
