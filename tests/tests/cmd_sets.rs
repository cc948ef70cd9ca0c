//! Set commands against a real server, over RESP2 and RESP3.

mod common;

use bytes::Bytes;
use common::for_each_protocol;
use redis_client::prelude::*;
use redis_tests::TestServer;
use std::collections::HashSet;

fn set(items: &[&'static str]) -> HashSet<Bytes> {
    items
        .iter()
        .map(|s| Bytes::from_static(s.as_bytes()))
        .collect()
}

#[test]
fn members() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        assert_eq!(r.sadd("s", ["a", "b", "c"]).unwrap(), 3);
        assert_eq!(r.sadd("s", "a").unwrap(), 0);
        assert_eq!(r.scard("s").unwrap(), 3);
        assert_eq!(r.smembers("s").unwrap(), set(&["a", "b", "c"]));
        assert!(r.smembers("missing").unwrap().is_empty());
        assert!(r.sismember("s", "a").unwrap());
        assert!(!r.sismember("s", "z").unwrap());
        assert_eq!(
            r.smismember("s", ["a", "z", "c"]).unwrap(),
            vec![true, false, true]
        );
        assert_eq!(r.srem("s", ["a", "z"]).unwrap(), 1);
        assert!(r.smove("s", "t", "b").unwrap());
        assert!(!r.smove("s", "t", "b").unwrap());
        assert_eq!(r.smembers("t").unwrap(), set(&["b"]));
    });
}

#[test]
fn random_members_and_pops() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        assert_eq!(r.spop("s").unwrap(), None);
        assert_eq!(r.srandmember("s").unwrap(), None);
        assert!(r.spop_count("s", 2).unwrap().is_empty());
        r.sadd("s", ["a", "b", "c", "d"]).unwrap();
        let all = set(&["a", "b", "c", "d"]);
        assert!(all.contains(&r.srandmember("s").unwrap().unwrap()));
        let three = r.srandmember_count("s", 3).unwrap();
        assert_eq!(three.iter().collect::<HashSet<_>>().len(), 3);
        assert_eq!(r.srandmember_count("s", -10).unwrap().len(), 10);
        let popped = r.spop("s").unwrap().unwrap();
        assert!(all.contains(&popped));
        let rest = r.spop_count("s", 10).unwrap();
        assert_eq!(rest.len(), 3);
        assert!(!rest.contains(&popped));
        assert_eq!(r.scard("s").unwrap(), 0);
    });
}

#[test]
fn algebra() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        r.sadd("a", ["1", "2", "3"]).unwrap();
        r.sadd("b", ["2", "3", "4"]).unwrap();
        assert_eq!(r.sinter(["a", "b"]).unwrap(), set(&["2", "3"]));
        assert_eq!(r.sunion(["a", "b"]).unwrap(), set(&["1", "2", "3", "4"]));
        assert_eq!(r.sdiff(["a", "b"]).unwrap(), set(&["1"]));
        assert_eq!(r.sinterstore("i", ["a", "b"]).unwrap(), 2);
        assert_eq!(r.smembers("i").unwrap(), set(&["2", "3"]));
        assert_eq!(r.sunionstore("u", ["a", "b"]).unwrap(), 4);
        assert_eq!(r.smembers("u").unwrap(), set(&["1", "2", "3", "4"]));
        assert_eq!(r.sdiffstore("d", ["b", "a"]).unwrap(), 1);
        assert_eq!(r.smembers("d").unwrap(), set(&["4"]));
        assert_eq!(r.sintercard(["a", "b"], 0).unwrap(), 2);
        assert_eq!(r.sintercard(["a", "b"], 1).unwrap(), 1);
        assert_eq!(r.sintercard("a", 0).unwrap(), 3);
    });
    let cmd = redis_client::redis_commands::cmd::sets::sintercard(["k1", "k2"], 5).cmd;
    assert_eq!(
        cmd.args().collect::<Vec<_>>(),
        vec![&b"SINTERCARD"[..], b"2", b"k1", b"k2", b"LIMIT", b"5"]
    );
    assert_eq!(cmd.keys().collect::<Vec<_>>(), vec![&b"k1"[..], b"k2"]);
}
