//! Hash commands against a real server, over RESP2 and RESP3.

mod common;

use bytes::Bytes;
use common::for_each_protocol;
use redis_client::prelude::*;
use redis_tests::TestServer;
use std::collections::{HashMap, HashSet};

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

#[test]
fn set_get_and_delete_fields() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        assert_eq!(r.hset("h", "f1", "v1").unwrap(), 1);
        assert_eq!(r.hset("h", "f1", "v1b").unwrap(), 0);
        assert_eq!(
            r.hset_multiple("h", [("f2", "v2"), ("f3", "v3")]).unwrap(),
            2
        );
        assert!(r.hmset("h", [("f4", "v4")]).unwrap());
        assert!(!r.hsetnx("h", "f1", "no").unwrap());
        assert!(r.hsetnx("h", "f5", "v5").unwrap());
        assert_eq!(r.hget("h", "f1").unwrap(), Some(b("v1b")));
        assert_eq!(r.hget("h", "nope").unwrap(), None);
        assert_eq!(
            r.hmget("h", ["f2", "nope", "f4"]).unwrap(),
            vec![Some(b("v2")), None, Some(b("v4"))]
        );
        assert!(r.hexists("h", "f3").unwrap());
        assert!(!r.hexists("h", "nope").unwrap());
        assert_eq!(r.hlen("h").unwrap(), 5);
        assert_eq!(r.hstrlen("h", "f1").unwrap(), 3);
        assert_eq!(r.hstrlen("h", "nope").unwrap(), 0);
        assert_eq!(r.hdel("h", ["f4", "f5", "nope"]).unwrap(), 2);

        let all = r.hgetall("h").unwrap();
        let want: HashMap<Bytes, Bytes> = [("f1", "v1b"), ("f2", "v2"), ("f3", "v3")]
            .into_iter()
            .map(|(k, v)| (b(k), b(v)))
            .collect();
        assert_eq!(all, want);
        assert!(r.hgetall("missing").unwrap().is_empty());
        let mut keys = r.hkeys("h").unwrap();
        keys.sort();
        assert_eq!(keys, vec![b("f1"), b("f2"), b("f3")]);
        let mut vals = r.hvals("h").unwrap();
        vals.sort();
        assert_eq!(vals, vec![b("v1b"), b("v2"), b("v3")]);
    });
}

#[test]
fn increments() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        assert_eq!(r.hincrby("h", "n", 5).unwrap(), 5);
        assert_eq!(r.hincrby("h", "n", -7).unwrap(), -2);
        assert_eq!(r.hincrbyfloat("h", "x", 2.5).unwrap(), 2.5);
        assert_eq!(r.hincrbyfloat("h", "x", 0.25).unwrap(), 2.75);
    });
}

#[test]
fn random_fields() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        assert_eq!(r.hrandfield("h").unwrap(), None);
        r.hset_multiple("h", [("a", "1"), ("b", "2"), ("c", "3")])
            .unwrap();
        let fields: HashSet<Bytes> = [b("a"), b("b"), b("c")].into();
        assert!(fields.contains(&r.hrandfield("h").unwrap().unwrap()));
        let two = r.hrandfield_count("h", 2).unwrap();
        assert_eq!(two.len(), 2);
        assert!(two.iter().all(|f| fields.contains(f)));
        assert_eq!(r.hrandfield_count("h", -5).unwrap().len(), 5);
        let pairs = r.hrandfield_withvalues("h", 3).unwrap();
        let got: HashMap<Bytes, Bytes> = pairs.into_iter().collect();
        assert_eq!(got, r.hgetall("h").unwrap());
        assert_eq!(r.hrandfield_withvalues("h", -4).unwrap().len(), 4);
    });
}
