//! List commands against a real server, over RESP2 and RESP3, the blocking ones included:
//! a blocking call must outlive the client's read timeout when its own timeout is longer.

mod common;

use bytes::Bytes;
use common::for_each_protocol;
use redis_client::prelude::*;
use redis_client::redis_commands::{Block, Flags, Insert, ListDirection, LposOptions};
use redis_client::{ConnectionInfo, Protocol, Redis};
use redis_tests::TestServer;
use std::thread;
use std::time::{Duration, Instant};

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

fn list(items: &[&'static str]) -> Vec<Bytes> {
    items.iter().map(|s| b(s)).collect()
}

#[test]
fn push_pop_range() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        assert_eq!(r.lpushx("l", "x").unwrap(), 0);
        assert_eq!(r.rpushx("l", "x").unwrap(), 0);
        assert_eq!(r.rpush("l", ["b", "c"]).unwrap(), 2);
        assert_eq!(r.lpush("l", ["a", "z"]).unwrap(), 4);
        assert_eq!(r.lpushx("l", "y").unwrap(), 5);
        assert_eq!(r.rpushx("l", "d").unwrap(), 6);
        assert_eq!(
            r.lrange("l", 0, -1).unwrap(),
            list(&["y", "z", "a", "b", "c", "d"])
        );
        assert_eq!(r.llen("l").unwrap(), 6);
        assert_eq!(r.lpop("l").unwrap(), Some(b("y")));
        assert_eq!(r.rpop("l").unwrap(), Some(b("d")));
        assert_eq!(r.lpop_count("l", 2).unwrap(), Some(list(&["z", "a"])));
        assert_eq!(r.rpop_count("l", 5).unwrap(), Some(list(&["c", "b"])));
        assert_eq!(r.lpop("l").unwrap(), None);
        assert_eq!(r.rpop("l").unwrap(), None);
        assert_eq!(r.lpop_count("l", 2).unwrap(), None);
        assert_eq!(r.rpop_count("l", 2).unwrap(), None);
        assert_eq!(r.llen("l").unwrap(), 0);
    });
}

#[test]
fn index_insert_set_remove_trim() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        r.rpush("l", ["a", "b", "a", "c", "a"]).unwrap();
        assert_eq!(r.lindex("l", 1).unwrap(), Some(b("b")));
        assert_eq!(r.lindex("l", -1).unwrap(), Some(b("a")));
        assert_eq!(r.lindex("l", 99).unwrap(), None);
        assert_eq!(r.linsert("l", Insert::Before, "b", "x").unwrap(), 6);
        assert_eq!(r.linsert("l", Insert::After, "c", "y").unwrap(), 7);
        assert_eq!(r.linsert("l", Insert::After, "nope", "y").unwrap(), -1);
        assert_eq!(r.linsert("missing", Insert::After, "a", "y").unwrap(), 0);
        assert!(r.lset("l", 0, "A").unwrap());
        assert!(r.lset("l", 99, "A").is_err());
        assert_eq!(
            r.lrange("l", 0, -1).unwrap(),
            list(&["A", "x", "b", "a", "c", "y", "a"])
        );
        assert_eq!(r.lrem("l", -1, "a").unwrap(), 1);
        assert_eq!(r.lrem("l", 0, "x").unwrap(), 1);
        assert_eq!(
            r.lrange("l", 0, -1).unwrap(),
            list(&["A", "b", "a", "c", "y"])
        );
        assert!(r.ltrim("l", 1, 2).unwrap());
        assert_eq!(r.lrange("l", 0, -1).unwrap(), list(&["b", "a"]));
    });
}

#[test]
fn lpos_with_options() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        r.rpush("l", ["a", "b", "c", "1", "2", "3", "c", "c"])
            .unwrap();
        assert_eq!(r.lpos("l", "c", LposOptions::default()).unwrap(), Some(2));
        assert_eq!(r.lpos("l", "nope", LposOptions::default()).unwrap(), None);
        assert_eq!(
            r.lpos("l", "c", LposOptions::default().rank(2)).unwrap(),
            Some(6)
        );
        assert_eq!(
            r.lpos("l", "c", LposOptions::default().rank(-1)).unwrap(),
            Some(7)
        );
        assert_eq!(
            r.lpos("l", "c", LposOptions::default().maxlen(2)).unwrap(),
            None
        );
        assert_eq!(
            r.lpos_count("l", "c", 2, LposOptions::default()).unwrap(),
            vec![2, 6]
        );
        assert_eq!(
            r.lpos_count("l", "c", 0, LposOptions::default().rank(-1))
                .unwrap(),
            vec![7, 6, 2]
        );
        assert!(r
            .lpos_count("l", "nope", 0, LposOptions::default())
            .unwrap()
            .is_empty());
    });
}

#[test]
fn moves_and_multi_pops() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        r.rpush("src", ["a", "b", "c"]).unwrap();
        assert_eq!(
            r.lmove("src", "dst", ListDirection::Left, ListDirection::Right)
                .unwrap(),
            Some(b("a"))
        );
        assert_eq!(r.rpoplpush("src", "dst").unwrap(), Some(b("c")));
        assert_eq!(r.lrange("dst", 0, -1).unwrap(), list(&["c", "a"]));
        assert_eq!(
            r.lmove("missing", "dst", ListDirection::Left, ListDirection::Left)
                .unwrap(),
            None
        );
        assert_eq!(r.rpoplpush("missing", "dst").unwrap(), None);

        assert_eq!(r.lmpop(["e1", "e2"], ListDirection::Left, 1).unwrap(), None);
        r.rpush("e2", ["1", "2", "3"]).unwrap();
        assert_eq!(
            r.lmpop(["e1", "e2"], ListDirection::Right, 2).unwrap(),
            Some((b("e2"), list(&["3", "2"])))
        );
        assert_eq!(
            r.lmpop("e2", ListDirection::Left, 10).unwrap(),
            Some((b("e2"), list(&["1"])))
        );
    });
}

#[test]
fn blocking_commands_with_data_ready() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        r.rpush("q1", ["a", "b", "c", "d"]).unwrap();
        assert_eq!(
            r.blpop(["empty", "q1"], Duration::from_secs(1)).unwrap(),
            Some((b("q1"), b("a")))
        );
        assert_eq!(
            r.brpop("q1", Duration::from_secs(1)).unwrap(),
            Some((b("q1"), b("d")))
        );
        assert_eq!(
            r.blmove(
                "q1",
                "q2",
                ListDirection::Left,
                ListDirection::Left,
                Duration::from_secs(1)
            )
            .unwrap(),
            Some(b("b"))
        );
        assert_eq!(
            r.brpoplpush("q1", "q2", Duration::from_secs(1)).unwrap(),
            Some(b("c"))
        );
        assert_eq!(r.lrange("q2", 0, -1).unwrap(), list(&["c", "b"]));
        assert_eq!(
            r.blmpop(
                Duration::from_secs(1),
                ["empty", "q2"],
                ListDirection::Right,
                5
            )
            .unwrap(),
            Some((b("q2"), list(&["b", "c"])))
        );
    });
}

#[test]
fn blocking_commands_time_out_with_none() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        let start = Instant::now();
        assert_eq!(r.brpop("none", Duration::from_millis(100)).unwrap(), None);
        assert_eq!(
            r.blmove(
                "none",
                "d",
                ListDirection::Left,
                ListDirection::Left,
                Duration::from_millis(100)
            )
            .unwrap(),
            None
        );
        assert_eq!(
            r.brpoplpush("none", "d", Duration::from_millis(100))
                .unwrap(),
            None
        );
        assert_eq!(
            r.blmpop(Duration::from_millis(100), "none", ListDirection::Left, 1)
                .unwrap(),
            None
        );
        assert!(start.elapsed() >= Duration::from_millis(400));
    });
}

/// A client whose reads give up after 500 ms unless a command says it blocks longer.
fn short_timeout_client(server: &TestServer, protocol: Protocol) -> Redis {
    Redis::from_info(
        ConnectionInfo::tcp("127.0.0.1", server.port())
            .with_protocol(protocol)
            .with_read_timeout(Some(Duration::from_millis(500))),
    )
}

#[test]
fn blpop_waits_past_the_read_timeout() {
    let server = TestServer::start();
    for protocol in [Protocol::Resp2, Protocol::Resp3] {
        let r = short_timeout_client(&server, protocol);

        // Nothing arrives: the server answers nil after its own 2 s, not the client at 500 ms.
        let start = Instant::now();
        assert_eq!(
            r.blpop("never", Duration::from_secs(2)).unwrap(),
            None,
            "{protocol:?}"
        );
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(1900) && waited < Duration::from_secs(4),
            "{protocol:?}: {waited:?}"
        );

        // Another client pushes after 300 ms: the waiting call gets it.
        let pusher = r.clone();
        let push = thread::spawn(move || {
            thread::sleep(Duration::from_millis(300));
            pusher.rpush("soon", "hello").unwrap()
        });
        let start = Instant::now();
        assert_eq!(
            r.blpop("soon", Duration::from_secs(2)).unwrap(),
            Some((b("soon"), b("hello"))),
            "{protocol:?}"
        );
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(250) && waited < Duration::from_millis(1900),
            "{protocol:?}: {waited:?}"
        );
        push.join().unwrap();
    }
}

#[test]
fn blpop_with_zero_timeout_waits_for_a_push() {
    let server = TestServer::start();
    for protocol in [Protocol::Resp2, Protocol::Resp3] {
        let r = short_timeout_client(&server, protocol);
        let pusher = r.clone();
        let push = thread::spawn(move || {
            // Longer than the read timeout: only a forever-wait survives it.
            thread::sleep(Duration::from_millis(800));
            pusher.lpush("later", "v").unwrap()
        });
        let start = Instant::now();
        assert_eq!(
            r.blpop("later", Duration::ZERO).unwrap(),
            Some((b("later"), b("v"))),
            "{protocol:?}"
        );
        assert!(start.elapsed() >= Duration::from_millis(700));
        push.join().unwrap();
    }
}

#[test]
fn blocking_facts_are_recorded() {
    let c =
        redis_client::redis_commands::cmd::lists::blpop(["a", "b"], Duration::from_millis(2500))
            .cmd;
    assert!(c.flags().contains(Flags::BLOCKING));
    assert_eq!(
        c.blocking_timeout(),
        Block::For(Duration::from_millis(2500))
    );
    assert_eq!(c.keys().collect::<Vec<_>>(), vec![&b"a"[..], b"b"]);
    let c = redis_client::redis_commands::cmd::lists::blmpop(
        Duration::ZERO,
        ["x"],
        ListDirection::Left,
        1,
    )
    .cmd;
    assert_eq!(c.blocking_timeout(), Block::Forever);
    assert_eq!(
        c.args().collect::<Vec<_>>(),
        vec![&b"BLMPOP"[..], b"0", b"1", b"x", b"LEFT", b"COUNT", b"1"]
    );
}
