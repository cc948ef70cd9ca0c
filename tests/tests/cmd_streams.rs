//! Stream commands against a real server, over RESP2 and RESP3.

mod common;

use bytes::Bytes;
use common::for_each_protocol;
use redis_client::prelude::*;
use redis_client::redis_commands::{
    StreamEntry, StreamTrim, XAddOptions, XClaimOptions, XGroupCreateOptions, XPendingOptions,
    XReadGroupOptions, XReadOptions, XSetIdOptions,
};
use redis_client::{ConnectionInfo, Protocol, Redis};
use redis_tests::TestServer;
use std::time::{Duration, Instant};

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn entry(id: &str, fields: &[(&str, &str)]) -> StreamEntry {
    StreamEntry {
        id: b(id),
        fields: fields.iter().map(|&(f, v)| (b(f), b(v))).collect(),
    }
}

/// `s` = 1-0 {n: 1}, 2-0 {n: 2}, 3-0 {n: 3, extra: x}.
fn seed(r: &Redis) {
    assert_eq!(r.xadd("s", "1-0", [("n", "1")]).unwrap(), b("1-0"));
    assert_eq!(r.xadd("s", "2-0", [("n", "2")]).unwrap(), b("2-0"));
    assert_eq!(
        r.xadd("s", "3-0", [("n", "3"), ("extra", "x")]).unwrap(),
        b("3-0")
    );
}

#[test]
fn add_range_delete_trim() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        seed(r);
        let id = r.xadd("auto", "*", [("k", "v")]).unwrap();
        assert!(id.contains(&b'-'), "{id:?}");
        assert_eq!(r.xlen("s").unwrap(), 3);
        let all = r.xrange("s", "-", "+", None).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[2], entry("3-0", &[("n", "3"), ("extra", "x")]));
        assert_eq!(all[2].get("extra"), Some(&b("x")));
        assert_eq!(
            r.xrange("s", "(1-0", "+", Some(1)).unwrap(),
            [entry("2-0", &[("n", "2")])]
        );
        assert_eq!(
            r.xrevrange("s", "+", "-", Some(2))
                .unwrap()
                .iter()
                .map(|e| e.id.clone())
                .collect::<Vec<_>>(),
            [b("3-0"), b("2-0")]
        );
        assert_eq!(r.xrange("missing", "-", "+", None).unwrap(), []);
        assert_eq!(r.xdel("s", ["2-0", "9-0"]).unwrap(), 1);
        assert_eq!(r.xtrim("s", StreamTrim::maxlen(1).exact()).unwrap(), 1);
        assert_eq!(r.xrange("s", "-", "+", None).unwrap()[0].id, b("3-0"));
        assert_eq!(r.xtrim("s", StreamTrim::minid("4-0")).unwrap(), 1);
        assert_eq!(r.xlen("s").unwrap(), 0);

        let no_stream = XAddOptions::default().nomkstream();
        assert_eq!(
            r.xadd_options("nope", no_stream, "*", [("a", "1")])
                .unwrap(),
            None
        );
        let capped = XAddOptions::default().trim(StreamTrim::maxlen(2));
        for i in 1..=4 {
            let id = format!("{i}-0");
            assert_eq!(
                r.xadd_options("capped", capped.clone(), &id[..], [("i", i)])
                    .unwrap(),
                Some(b(&id))
            );
        }
        assert_eq!(r.xlen("capped").unwrap(), 2);
        let approx = XAddOptions::default().trim(StreamTrim::maxlen(1).approx().limit(10));
        assert!(r
            .xadd_options("capped", approx, "*", [("i", 5)])
            .unwrap()
            .is_some());
    });
}

#[test]
fn xread_plain() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        seed(r);
        r.xadd("t", "5-0", [("k", "v")]).unwrap();
        let got = r
            .xread(XReadOptions::default().count(2), ["s", "t"], ["1-0", "0"])
            .unwrap();
        assert_eq!(
            got,
            vec![
                (
                    b("s"),
                    vec![
                        entry("2-0", &[("n", "2")]),
                        entry("3-0", &[("n", "3"), ("extra", "x")])
                    ]
                ),
                (b("t"), vec![entry("5-0", &[("k", "v")])]),
            ]
        );
        // One stream only: the RESP2 reply is a single [key, entries] pair.
        assert_eq!(
            r.xread(XReadOptions::default(), "t", "0").unwrap(),
            vec![(b("t"), vec![entry("5-0", &[("k", "v")])])]
        );
        assert_eq!(
            r.xread(XReadOptions::default(), ["s"], ["3-0"]).unwrap(),
            vec![]
        );
    });
}

#[test]
fn consumer_groups() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        seed(r);
        r.xgroup_create("s", "g", "0", XGroupCreateOptions::default())
            .unwrap();
        r.xgroup_create(
            "fresh",
            "g",
            "$",
            XGroupCreateOptions::default().mkstream().entries_read(0),
        )
        .unwrap();
        assert_eq!(r.xlen("fresh").unwrap(), 0);
        assert!(r.xgroup_createconsumer("s", "g", "idle").unwrap());
        assert!(!r.xgroup_createconsumer("s", "g", "idle").unwrap());

        let read = r
            .xreadgroup(
                "g",
                "alice",
                XReadGroupOptions::default().count(2),
                ["s"],
                [">"],
            )
            .unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].1.len(), 2);
        let noack = r
            .xreadgroup(
                "g",
                "bob",
                XReadGroupOptions::default().noack(),
                ["s"],
                [">"],
            )
            .unwrap();
        assert_eq!(noack[0].1, [entry("3-0", &[("n", "3"), ("extra", "x")])]);

        let summary = r.xpending("s", "g").unwrap();
        assert_eq!(summary.count, 2);
        assert_eq!(summary.min_id, Some(b("1-0")));
        assert_eq!(summary.max_id, Some(b("2-0")));
        assert_eq!(summary.consumers, [(b("alice"), 2)]);
        let empty = r.xpending("fresh", "g").unwrap();
        assert_eq!(
            (empty.count, empty.min_id, empty.consumers),
            (0, None, vec![])
        );

        let pending = r
            .xpending_range("s", "g", "-", "+", 10, XPendingOptions::default())
            .unwrap();
        assert_eq!(pending.len(), 2);
        assert_eq!(pending[0].id, b("1-0"));
        assert_eq!(pending[0].consumer, b("alice"));
        assert_eq!(pending[0].delivery_count, 1);
        let filtered = r
            .xpending_range(
                "s",
                "g",
                "-",
                "+",
                10,
                XPendingOptions::default()
                    .idle(Duration::from_millis(0))
                    .consumer("bob"),
            )
            .unwrap();
        assert!(filtered.is_empty());

        // Alice's history: the entries she has pending.
        let history = r
            .xreadgroup("g", "alice", XReadGroupOptions::default(), "s", "0")
            .unwrap();
        assert_eq!(history[0].1.len(), 2);

        let claimed = r
            .xclaim(
                "s",
                "g",
                "bob",
                Duration::ZERO,
                ["1-0"],
                XClaimOptions::default().retry_count(5),
            )
            .unwrap();
        assert_eq!(claimed, [entry("1-0", &[("n", "1")])]);
        let ids = r
            .xclaim_justid(
                "s",
                "g",
                "bob",
                Duration::ZERO,
                ["2-0", "3-0"],
                XClaimOptions::default()
                    .idle(Duration::from_millis(10))
                    .force()
                    .last_id("3-0"),
            )
            .unwrap();
        assert_eq!(ids, [b("2-0"), b("3-0")]);
        let pending = r
            .xpending_range("s", "g", "-", "+", 10, XPendingOptions::default())
            .unwrap();
        assert_eq!(pending[0].delivery_count, 5);
        assert!(pending.iter().all(|p| p.consumer == b("bob")));

        r.xdel("s", ["2-0"]).unwrap();
        let auto = r
            .xautoclaim("s", "g", "alice", Duration::from_millis(0), "0", Some(10))
            .unwrap();
        assert_eq!(auto.next_id, b("0-0"));
        assert_eq!(
            auto.entries
                .iter()
                .map(|e| e.id.clone())
                .collect::<Vec<_>>(),
            [b("1-0"), b("3-0")]
        );
        assert_eq!(auto.deleted_ids, [b("2-0")]);
        let auto = r
            .xautoclaim_justid("s", "g", "bob", Duration::from_millis(0), "0", None)
            .unwrap();
        assert_eq!(auto.ids, [b("1-0"), b("3-0")]);
        assert!(auto.deleted_ids.is_empty());

        assert_eq!(r.xack("s", "g", ["1-0", "9-0"]).unwrap(), 1);
        assert_eq!(r.xgroup_delconsumer("s", "g", "bob").unwrap(), 1);
        r.xgroup_setid("s", "g", "0", Some(0)).unwrap();
        assert_eq!(
            r.xreadgroup("g", "carol", XReadGroupOptions::default(), "s", ">")
                .unwrap()[0]
                .1
                .len(),
            2
        );
        assert!(r.xgroup_destroy("s", "g").unwrap());
        assert!(!r.xgroup_destroy("s", "g").unwrap());
    });
}

#[test]
fn xinfo_and_xsetid() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        assert!(r.xinfo_help().unwrap().iter().any(|l| l.contains("STREAM")));
        assert!(r
            .xgroup_help()
            .unwrap()
            .iter()
            .any(|l| l.contains("CREATE")));
        seed(r);
        r.xgroup_create("s", "g", "0", XGroupCreateOptions::default())
            .unwrap();
        r.xreadgroup("g", "c1", XReadGroupOptions::default().count(1), "s", ">")
            .unwrap();

        let info = r.xinfo_stream("s").unwrap();
        assert_eq!(info.length, 3);
        assert_eq!(info.groups, 1);
        assert_eq!(info.last_generated_id, b("3-0"));
        assert_eq!(info.entries_added, Some(3));
        assert_eq!(info.first_entry, Some(entry("1-0", &[("n", "1")])));
        assert_eq!(info.last_entry.unwrap().id, b("3-0"));
        assert!(info.radix_tree_keys >= 1);

        let full = r.xinfo_stream_full("s", Some(2)).unwrap();
        assert_eq!(full.length, 3);
        assert_eq!(full.entries.len(), 2);
        assert_eq!(full.groups.len(), 1);
        let g = &full.groups[0];
        assert_eq!(g.name, b("g"));
        assert_eq!(g.pel_count, 1);
        assert_eq!(g.pending[0].id, b("1-0"));
        assert_eq!(g.pending[0].consumer, b("c1"));
        assert_eq!(g.consumers[0].name, b("c1"));
        assert_eq!(g.consumers[0].pending[0].0, b("1-0"));
        assert_eq!(g.entries_read, Some(1));

        let groups = r.xinfo_groups("s").unwrap();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].name, b("g"));
        assert_eq!(groups[0].consumers, 1);
        assert_eq!(groups[0].pending, 1);
        assert_eq!(groups[0].last_delivered_id, b("1-0"));
        assert_eq!(groups[0].lag, Some(2));

        let consumers = r.xinfo_consumers("s", "g").unwrap();
        assert_eq!(consumers.len(), 1);
        assert_eq!(consumers[0].name, b("c1"));
        assert_eq!(consumers[0].pending, 1);

        r.xsetid(
            "s",
            "10-0",
            XSetIdOptions::default()
                .entries_added(12)
                .max_deleted_id("5-0"),
        )
        .unwrap();
        let info = r.xinfo_stream("s").unwrap();
        assert_eq!(info.last_generated_id, b("10-0"));
        assert_eq!(info.entries_added, Some(12));
        assert_eq!(info.max_deleted_entry_id, Some(b("5-0")));
    });
}

fn slow_client(server: &TestServer, protocol: Protocol) -> Redis {
    let info = ConnectionInfo::tcp("127.0.0.1", server.port())
        .with_protocol(protocol)
        .with_read_timeout(Some(Duration::from_millis(500)));
    Redis::from_info(info)
}

#[test]
fn xread_block_waits_past_the_read_timeout() {
    let server = TestServer::start();
    for protocol in [Protocol::Resp2, Protocol::Resp3] {
        let r = slow_client(&server, protocol);
        r.del("bs").unwrap();
        let block = XReadOptions::default().block(Duration::from_millis(2000));
        let start = Instant::now();
        assert_eq!(r.xread(block, "bs", "$").unwrap(), vec![], "{protocol:?}");
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(1900), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");

        let writer = r.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(800));
            writer.xadd("bs", "*", [("from", "thread")]).unwrap()
        });
        let start = Instant::now();
        let got = r.xread(block, "bs", "$").unwrap();
        assert!(start.elapsed() >= Duration::from_millis(700));
        let id = t.join().unwrap();
        assert_eq!(
            got,
            vec![(
                b("bs"),
                vec![StreamEntry {
                    id,
                    fields: vec![(b("from"), b("thread"))]
                }]
            )],
            "{protocol:?}"
        );

        // XREADGROUP BLOCK waits the same way.
        r.xgroup_create("bs", "g", "$", XGroupCreateOptions::default())
            .unwrap();
        let start = Instant::now();
        let none = r
            .xreadgroup(
                "g",
                "c",
                XReadGroupOptions::default().block(Duration::from_millis(1000)),
                "bs",
                ">",
            )
            .unwrap();
        assert!(none.is_empty());
        assert!(start.elapsed() >= Duration::from_millis(900));
    }
}
