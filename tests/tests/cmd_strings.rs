//! String commands against a real server, over RESP2 and RESP3.

mod common;

use bytes::Bytes;
use common::for_each_protocol;
use redis_client::prelude::*;
use redis_client::redis_commands::{GetExpiry, LcsMatch, LcsOptions};
use redis_client::{SetOptions, Ttl};
use redis_tests::TestServer;
use std::time::{Duration, UNIX_EPOCH};

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

#[test]
fn get_set_and_variants() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        assert!(r.set("k", "v1").unwrap());
        assert_eq!(r.get("k").unwrap(), Some(b("v1")));
        assert!(!r.set_options("k", "x", SetOptions::default().nx()).unwrap());
        assert!(r
            .set_options(
                "k",
                "v2",
                SetOptions::default().xx().ex(Duration::from_secs(100))
            )
            .unwrap());
        assert!(r.ttl("k").unwrap().expires_in().unwrap().as_secs() > 90);
        assert_eq!(
            r.set_get("k", "v3", SetOptions::default()).unwrap(),
            Some(b("v2"))
        );
        assert_eq!(r.set_get("new", "n", SetOptions::default()).unwrap(), None);
        assert_eq!(r.getset("k", "v4").unwrap(), Some(b("v3")));
        assert!(!r.setnx("k", "no").unwrap());
        assert!(r.setnx("fresh", "yes").unwrap());
        assert_eq!(r.get("fresh").unwrap(), Some(b("yes")));
        assert_eq!(r.getdel("k").unwrap(), Some(b("v4")));
        assert_eq!(r.get("k").unwrap(), None);
        assert_eq!(r.getdel("k").unwrap(), None);
    });
}

#[test]
fn expiring_sets_and_getex() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        assert!(r.setex("s", Duration::from_secs(100), "v").unwrap());
        assert!((90..=100).contains(&r.ttl("s").unwrap().expires_in().unwrap().as_secs()));
        assert!(r.psetex("p", Duration::from_millis(100_000), "v").unwrap());
        assert!((90_000..=100_000).contains(
            &u64::try_from(r.pttl("p").unwrap().expires_in().unwrap().as_millis()).unwrap()
        ));

        r.set("g", "val").unwrap();
        assert_eq!(
            r.getex("g", GetExpiry::Ex(Duration::from_secs(50)))
                .unwrap(),
            Some(b("val"))
        );
        assert!((40..=50).contains(&r.ttl("g").unwrap().expires_in().unwrap().as_secs()));
        assert_eq!(r.getex("g", GetExpiry::Persist).unwrap(), Some(b("val")));
        assert_eq!(r.ttl("g").unwrap(), Ttl::Persistent);
        assert_eq!(
            r.getex(
                "g",
                GetExpiry::ExAt(UNIX_EPOCH + Duration::from_secs(4_000_000_000))
            )
            .unwrap(),
            Some(b("val"))
        );
        assert_eq!(r.expiretime("g").unwrap(), 4_000_000_000);
        r.getex(
            "g",
            GetExpiry::PxAt(UNIX_EPOCH + Duration::from_millis(4_000_000_000_123)),
        )
        .unwrap();
        assert_eq!(r.pexpiretime("g").unwrap(), 4_000_000_000_123);
        assert_eq!(r.getex("missing", GetExpiry::Persist).unwrap(), None);
    });
}

#[test]
fn counters() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        assert_eq!(r.incr("n").unwrap(), 1);
        assert_eq!(r.incrby("n", 10).unwrap(), 11);
        assert_eq!(r.decr("n").unwrap(), 10);
        assert_eq!(r.decrby("n", 15).unwrap(), -5);
        assert_eq!(r.incrbyfloat("f", 1.5).unwrap(), 1.5);
        assert_eq!(r.incrbyfloat("f", -0.25).unwrap(), 1.25);
        assert_eq!(r.get("f").unwrap(), Some(b("1.25")));
    });
}

#[test]
fn ranges_and_lengths() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        assert_eq!(r.append("s", "Hello").unwrap(), 5);
        assert_eq!(r.append("s", " World").unwrap(), 11);
        assert_eq!(r.strlen("s").unwrap(), 11);
        assert_eq!(r.strlen("missing").unwrap(), 0);
        assert_eq!(r.getrange("s", 0, 4).unwrap(), b("Hello"));
        assert_eq!(r.getrange("s", -5, -1).unwrap(), b("World"));
        assert_eq!(r.getrange("missing", 0, 10).unwrap(), b(""));
        assert_eq!(r.substr("s", 6, 7).unwrap(), b("Wo"));
        assert_eq!(r.setrange("s", 6, "Redis").unwrap(), 11);
        assert_eq!(r.get("s").unwrap(), Some(b("Hello Redis")));
        assert_eq!(r.setrange("pad", 3, "x").unwrap(), 4);
        assert_eq!(r.get("pad").unwrap(), Some(Bytes::from_static(b"\0\0\0x")));
    });
}

#[test]
fn multi_key_get_and_set() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        assert!(r.mset([("a", "1"), ("b", "2")]).unwrap());
        assert_eq!(
            r.mget(["a", "missing", "b"]).unwrap(),
            vec![Some(b("1")), None, Some(b("2"))]
        );
        assert!(!r.msetnx([("a", "x"), ("c", "3")]).unwrap());
        assert_eq!(r.get("c").unwrap(), None);
        assert!(r.msetnx([("c", "3"), ("d", "4")]).unwrap());
        assert_eq!(
            r.mget(("c", "d")).unwrap(),
            vec![Some(b("3")), Some(b("4"))]
        );
    });
}

#[test]
fn mset_records_only_keys() {
    let cmd = redis_client::redis_commands::cmd::strings::mset([("k1", "v1"), ("k2", "v2")]).cmd;
    assert_eq!(cmd.keys().collect::<Vec<_>>(), vec![&b"k1"[..], b"k2"]);
    assert_eq!(cmd.argc(), 5);
}

#[test]
fn longest_common_subsequence() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        r.mset([("key1", "ohmytext"), ("key2", "mynewtext")])
            .unwrap();
        assert_eq!(r.lcs("key1", "key2").unwrap(), b("mytext"));
        assert_eq!(r.lcs_len("key1", "key2").unwrap(), 6);
        let idx = r.lcs_idx("key1", "key2", LcsOptions::default()).unwrap();
        assert_eq!(idx.len, 6);
        assert_eq!(
            idx.matches,
            vec![
                LcsMatch {
                    a: (4, 7),
                    b: (5, 8),
                    len: None
                },
                LcsMatch {
                    a: (2, 3),
                    b: (0, 1),
                    len: None
                },
            ]
        );
        let idx = r
            .lcs_idx(
                "key1",
                "key2",
                LcsOptions::default().min_match_len(4).with_match_len(),
            )
            .unwrap();
        assert_eq!(
            idx.matches,
            vec![LcsMatch {
                a: (4, 7),
                b: (5, 8),
                len: Some(4)
            }]
        );
    });
}
