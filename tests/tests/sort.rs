//! SORT as redis-py 2.7.6's test_commands.py exercises it (its `test_sort_*` cases,
//! translated), including `groups`, against a real server over RESP2 and RESP3.

mod common;

use bytes::Bytes;
use common::for_each_protocol;
use redis_client::prelude::*;
use redis_client::{Error, ErrorKind, SortOptions};
use redis_tests::TestServer;

fn b(s: &str) -> Option<Bytes> {
    Some(Bytes::copy_from_slice(s.as_bytes()))
}

fn all(items: &[&str]) -> Vec<Option<Bytes>> {
    items.iter().map(|s| b(s)).collect()
}

fn sorted() -> SortOptions {
    SortOptions::default()
}

#[test]
fn sort_basic_limited_by_desc_alpha() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        r.rpush("a", ["3", "2", "1", "4"]).unwrap();
        assert_eq!(r.sort("a", sorted()).unwrap(), all(&["1", "2", "3", "4"]));
        assert_eq!(r.sort("a", sorted().limit(1, 2)).unwrap(), all(&["2", "3"]));
        r.del("a").unwrap();

        r.mset([("score:1", "8"), ("score:2", "3"), ("score:3", "5")])
            .unwrap();
        r.rpush("a", ["3", "2", "1"]).unwrap();
        assert_eq!(
            r.sort("a", sorted().by("score:*")).unwrap(),
            all(&["2", "3", "1"])
        );
        assert_eq!(r.sort("a", sorted().desc()).unwrap(), all(&["3", "2", "1"]));

        r.rpush("words", ["e", "c", "b", "d", "a"]).unwrap();
        assert_eq!(
            r.sort("words", sorted().alpha()).unwrap(),
            all(&["a", "b", "c", "d", "e"])
        );
    });
}

fn seed_users(r: &redis_client::Redis) {
    r.mset([("user:1", "u1"), ("user:2", "u2"), ("user:3", "u3")])
        .unwrap();
    r.rpush("a", ["2", "3", "1"]).unwrap();
}

#[test]
fn sort_get_and_get_multi() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        seed_users(r);
        assert_eq!(
            r.sort("a", sorted().get("user:*")).unwrap(),
            all(&["u1", "u2", "u3"])
        );
        assert_eq!(
            r.sort("a", sorted().get("user:*").get("#")).unwrap(),
            all(&["u1", "1", "u2", "2", "u3", "3"])
        );
    });
}

#[test]
fn sort_get_groups_two_and_three() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        seed_users(r);
        assert_eq!(
            r.sort_groups("a", sorted().get("user:*").get("#")).unwrap(),
            vec![all(&["u1", "1"]), all(&["u2", "2"]), all(&["u3", "3"])]
        );
        r.mset([("door:1", "d1"), ("door:2", "d2"), ("door:3", "d3")])
            .unwrap();
        assert_eq!(
            r.sort_groups("a", sorted().get("user:*").get("door:*").get("#"))
                .unwrap(),
            vec![
                all(&["u1", "d1", "1"]),
                all(&["u2", "d2", "2"]),
                all(&["u3", "d3", "3"])
            ]
        );
        // A pattern naming a missing key gives None in its place.
        r.del("door:2").unwrap();
        assert_eq!(
            r.sort_groups("a", sorted().get("door:*").get("#")).unwrap()[1],
            vec![None, b("2")]
        );
    });
}

/// test_sort_groups_string_get, test_sort_groups_just_one_get, test_sort_groups_no_get:
/// refused before sending (the reference raises DataError).
#[test]
fn sort_groups_need_two_gets() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        seed_users(r);
        r.config_resetstat().unwrap();
        for options in [sorted().get("user:*"), sorted()] {
            let err = r.sort_groups("a", options).unwrap_err();
            assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
            assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        }
        let stats = r.info_section("commandstats").unwrap();
        assert!(
            !format!("{stats:?}").contains("cmdstat_sort"),
            "SORT was sent: {stats:?}"
        );
    });
}

#[test]
fn sort_store_and_all_options() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        r.rpush("a", ["2", "3", "1"]).unwrap();
        assert_eq!(r.sort_store("a", sorted(), "sorted_values").unwrap(), 3);
        assert_eq!(
            r.lrange("sorted_values", 0, -1).unwrap(),
            vec![Bytes::from("1"), Bytes::from("2"), Bytes::from("3")]
        );

        let gods = [
            ("zeus", "yuengling"),
            ("titan", "rum"),
            ("hermes", "vodka"),
            ("hercules", "milk"),
            ("apollo", "pinot noir"),
            ("athena", "water"),
            ("hades", "gin"),
            ("dionysus", "apple juice"),
        ];
        for (i, (name, drink)) in gods.iter().enumerate() {
            r.set(format!("user:{}:username", i + 1), *name).unwrap();
            r.set(format!("user:{}:favorite_drink", i + 1), *drink)
                .unwrap();
        }
        r.rpush("gods", ["5", "8", "3", "1", "2", "7", "6", "4"])
            .unwrap();
        let options = sorted()
            .limit(2, 4)
            .by("user:*:username")
            .get("user:*:favorite_drink")
            .desc()
            .alpha();
        assert_eq!(r.sort_store("gods", options, "sorted").unwrap(), 4);
        assert_eq!(
            r.lrange("sorted", 0, -1).unwrap(),
            ["vodka", "milk", "gin", "apple juice"].map(Bytes::from)
        );
    });
}
