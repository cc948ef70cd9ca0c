//! SCAN, SSCAN, HSCAN, ZSCAN and their lazy iterators, over RESP2 and RESP3.

mod common;

use bytes::Bytes;
use common::for_each_protocol;
use redis_client::prelude::*;
use redis_client::{Redis, ScanOptions};
use redis_tests::TestServer;
use std::collections::{BTreeMap, BTreeSet};

fn scan_calls(r: &Redis) -> i64 {
    r.info_section("commandstats")
        .unwrap()
        .get("cmdstat_scan")
        .and_then(|v| v.fields().map(|f| f["calls"].clone()))
        .and_then(|v| v.as_int())
        .unwrap_or(0)
}

#[test]
fn scan_iter_walks_every_key_lazily() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        for i in 0..60 {
            r.set(format!("key:{i}"), i).unwrap();
        }
        r.sadd("other", "x").unwrap();
        let keys: BTreeSet<Bytes> = r
            .scan_iter(ScanOptions::new().pattern("key:*").count(7))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(keys.len(), 60);
        assert!(keys.contains(&Bytes::from("key:42")));

        // Only the first page is fetched for the first item.
        r.config_resetstat().unwrap();
        let mut it = r.scan_iter(ScanOptions::new().count(5));
        assert!(it.next().unwrap().is_ok());
        assert_eq!(scan_calls(r), 1);

        let sets: Vec<Bytes> = r
            .scan_iter(ScanOptions::new().key_type("set"))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(sets, vec![Bytes::from("other")]);
    });
}

#[test]
fn scan_pages_by_hand() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        r.set("a", 1).unwrap();
        let mut cursor = 0;
        let mut seen = Vec::new();
        loop {
            let (next, keys) = r.scan(cursor, ScanOptions::new()).unwrap();
            seen.extend(keys);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        assert_eq!(seen, vec![Bytes::from("a")]);
        let (_, members) = r.sscan("missing", 0, ScanOptions::new()).unwrap();
        assert!(members.is_empty());
    });
}

#[test]
fn sscan_iter_and_sscan() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        let members: Vec<String> = (0..300).map(|i| format!("m{i}")).collect();
        r.sadd("s", &members[..]).unwrap();
        let got: BTreeSet<Bytes> = r
            .sscan_iter("s", ScanOptions::new().count(50))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(got.len(), 300);
        let only: Vec<Bytes> = r
            .sscan_iter("s", ScanOptions::new().pattern("m29?"))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(only.len(), 10);
        let (cursor, page) = r.sscan("s", 0, ScanOptions::new().count(10)).unwrap();
        assert!(cursor != 0 && !page.is_empty());
    });
}

#[test]
fn hscan_iter_and_hscan() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        for i in 0..200 {
            r.execute_command(("HSET", "h", format!("f{i}"), format!("v{i}")))
                .unwrap();
        }
        let got: BTreeMap<Bytes, Bytes> = r
            .hscan_iter("h", ScanOptions::new().count(20))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(got.len(), 200);
        assert_eq!(got[&Bytes::from("f7")], Bytes::from("v7"));
        r.execute_command(("HSET", "small", "a", "1")).unwrap();
        let (cursor, page) = r.hscan("small", 0, ScanOptions::new()).unwrap();
        assert_eq!(cursor, 0);
        assert_eq!(page, vec![(Bytes::from("a"), Bytes::from("1"))]);
    });
}

#[test]
fn zscan_iter_and_zscan() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        for i in 0..200 {
            r.execute_command(("ZADD", "z", f64::from(i) + 0.5, format!("m{i}")))
                .unwrap();
        }
        let got: Vec<(Bytes, f64)> = r
            .zscan_iter("z", ScanOptions::new().count(25))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(got.len(), 200);
        assert!(got.contains(&(Bytes::from("m3"), 3.5)));
        r.execute_command(("ZADD", "small", "inf", "top")).unwrap();
        let (cursor, page) = r.zscan("small", 0, ScanOptions::new()).unwrap();
        assert_eq!(cursor, 0);
        assert_eq!(page, vec![(Bytes::from("top"), f64::INFINITY)]);
    });
}

#[test]
fn scan_iter_ends_with_the_error() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        r.set("str", "x").unwrap();
        let mut it = r.sscan_iter("str", ScanOptions::new());
        let err = it.next().unwrap().unwrap_err();
        assert_eq!(err.code(), Some(redis_client::ErrorCode::WRONGTYPE));
        assert!(it.next().is_none());
    });
}
