//! Generic key commands against a real server, over RESP2 and RESP3; and the command
//! facts of every group declared alongside them, checked against the server's COMMAND INFO.

mod common;

use bytes::Bytes;
use common::for_each_protocol;
use redis_client::prelude::*;
use redis_client::redis_commands::{
    cmd, CopyOptions, ExpireCondition, KeyType, MigrateOptions, RestoreOptions, SortOptions,
};
use redis_client::{PTtl, Redis, SetOptions, Ttl};
use redis_tests::{ServerConfig, TestServer};
use std::time::{Duration, UNIX_EPOCH};

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Issue 29: every expiry and timeout is a `Duration` (a moment a `SystemTime`), sent in
/// the command's unit rounded up, so a key never expires and a wait never ends earlier
/// than asked: a sub-second expiry is not sent as 0 (which would delete the key), and a
/// sub-second blocking timeout is not sent as 0 (which would wait forever).
#[test]
fn times_are_durations_rounded_up_to_the_commands_unit() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        r.set("k", "v").unwrap();
        assert!(r.expire("k", Duration::from_millis(100)).unwrap());
        assert_eq!(r.get("k").unwrap(), Some(b("v")), "not deleted by EXPIRE 0");
        assert_eq!(r.ttl("k").unwrap(), Ttl::Expires(Duration::from_secs(1)));
        assert!(r.setex("s", Duration::from_millis(1500), "v").unwrap());
        assert_eq!(r.ttl("s").unwrap(), Ttl::Expires(Duration::from_secs(2)));
        let options = SetOptions::default().ex(Duration::from_secs(60));
        assert!(r.set_options("o", "v", options).unwrap());
        assert_eq!(r.ttl("o").unwrap(), Ttl::Expires(Duration::from_secs(60)));
        let in_an_hour = std::time::SystemTime::now() + Duration::from_secs(3600);
        assert!(r.expireat("o", in_an_hour).unwrap());
        assert!((3599..=3601).contains(&r.ttl("o").unwrap().expires_in().unwrap().as_secs()));
        let started = std::time::Instant::now();
        assert_eq!(r.blpop("empty", Duration::from_millis(100)).unwrap(), None);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    });
}

#[test]
fn delete_exists_touch_unlink() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        r.mset([("a", "1"), ("b", "2"), ("c", "3")]).unwrap();
        assert_eq!(r.exists(["a", "b", "a", "zz"]).unwrap(), 3);
        assert_eq!(r.touch(["a", "zz"]).unwrap(), 1);
        assert_eq!(r.del(["a", "zz"]).unwrap(), 1);
        assert_eq!(r.unlink(("b", "c")).unwrap(), 2);
        assert_eq!(r.exists("b").unwrap(), 0);
    });
}

#[test]
fn expiry_commands_with_conditions() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        r.set("k", "v").unwrap();
        assert_eq!(r.ttl("k").unwrap(), Ttl::Persistent);
        assert_eq!(r.pttl("k").unwrap(), PTtl::Persistent);
        assert_eq!(r.ttl("missing").unwrap(), Ttl::Missing);
        assert_eq!(r.pttl("missing").unwrap(), PTtl::Missing);
        assert!(!r
            .expire_options("k", Duration::from_secs(100), ExpireCondition::Xx)
            .unwrap());
        assert!(r
            .expire_options("k", Duration::from_secs(100), ExpireCondition::Nx)
            .unwrap());
        assert!(!r
            .expire_options("k", Duration::from_secs(50), ExpireCondition::Gt)
            .unwrap());
        assert!(r
            .expire_options("k", Duration::from_secs(50), ExpireCondition::Lt)
            .unwrap());
        assert!((40..=50).contains(&r.ttl("k").unwrap().expires_in().unwrap().as_secs()));
        assert!(r.expire("k", Duration::from_secs(200)).unwrap());
        assert!(!r.expire("missing", Duration::from_secs(200)).unwrap());
        assert!(r.pexpire("k", Duration::from_millis(300_000)).unwrap());
        assert!((290_000..=300_000).contains(
            &u64::try_from(r.pttl("k").unwrap().expires_in().unwrap().as_millis()).unwrap()
        ));
        assert!(!r
            .pexpire_options("k", Duration::from_millis(1_000), ExpireCondition::Gt)
            .unwrap());

        let at = now_secs() + 1000;
        let moment = |ms: i64| UNIX_EPOCH + Duration::from_millis(ms as u64);
        assert!(r.expireat("k", moment(at * 1000)).unwrap());
        assert_eq!(r.expiretime("k").unwrap(), at);
        assert!(!r
            .expireat_options("k", moment((at - 10) * 1000), ExpireCondition::Gt)
            .unwrap());
        assert!(r.pexpireat("k", moment(at * 1000 + 5)).unwrap());
        assert_eq!(r.pexpiretime("k").unwrap(), at * 1000 + 5);
        assert!(r
            .pexpireat_options("k", moment(at * 1000 + 9), ExpireCondition::Gt)
            .unwrap());
        assert_eq!(r.pexpiretime("k").unwrap(), at * 1000 + 9);
        assert!(r.persist("k").unwrap());
        assert!(!r.persist("k").unwrap());
        assert_eq!(r.expiretime("k").unwrap(), -1);
        assert_eq!(r.expiretime("missing").unwrap(), -2);
        assert_eq!(r.pexpiretime("missing").unwrap(), -2);
    });
}

#[test]
fn keys_randomkey_rename_type() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        assert_eq!(r.randomkey().unwrap(), None);
        r.mset([("user:1", "a"), ("user:2", "b"), ("other", "c")])
            .unwrap();
        let mut keys = r.keys("user:*").unwrap();
        keys.sort();
        assert_eq!(keys, vec![b("user:1"), b("user:2")]);
        let random = r.randomkey().unwrap().unwrap();
        assert!([b("user:1"), b("user:2"), b("other")].contains(&random));

        assert!(r.rename("other", "renamed").unwrap());
        assert_eq!(r.get("renamed").unwrap(), Some(b("c")));
        assert!(!r.renamenx("renamed", "user:1").unwrap());
        assert!(r.renamenx("renamed", "again").unwrap());

        r.rpush("l", "x").unwrap();
        r.sadd("s", "x").unwrap();
        r.hset("h", "f", "v").unwrap();
        r.execute_command(("ZADD", "z", 1, "m")).unwrap();
        r.execute_command(["XADD", "x", "*", "f", "v"]).unwrap();
        assert_eq!(r.key_type("again").unwrap(), KeyType::String);
        assert_eq!(r.key_type("l").unwrap(), KeyType::List);
        assert_eq!(r.key_type("s").unwrap(), KeyType::Set);
        assert_eq!(r.key_type("h").unwrap(), KeyType::Hash);
        assert_eq!(r.key_type("z").unwrap(), KeyType::ZSet);
        assert_eq!(r.key_type("x").unwrap(), KeyType::Stream);
        assert_eq!(r.key_type("missing").unwrap(), KeyType::None);
    });
}

#[test]
fn dump_restore_copy_move() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        r.rpush("src", ["a", "b"]).unwrap();
        let payload = r.dump("src").unwrap().unwrap();
        assert_eq!(r.dump("missing").unwrap(), None);
        assert!(r
            .restore("restored", None, &payload, RestoreOptions::default())
            .unwrap());
        assert_eq!(r.lrange("restored", 0, -1).unwrap(), vec![b("a"), b("b")]);
        // Without REPLACE an existing key is an error (BUSYKEY).
        assert!(r
            .restore("restored", None, &payload, RestoreOptions::default())
            .is_err());
        let at = (now_secs() + 1000) * 1000;
        let options = RestoreOptions::default()
            .replace()
            .expire_at(UNIX_EPOCH + Duration::from_millis(at as u64))
            .idletime(Duration::from_secs(100));
        assert!(r.restore("restored", None, &payload, options).unwrap());
        assert_eq!(r.pexpiretime("restored").unwrap(), at);
        assert!(r.object_idletime("restored").unwrap().unwrap() >= 100);

        assert!(r.copy("src", "dst", CopyOptions::default()).unwrap());
        assert!(!r.copy("src", "dst", CopyOptions::default()).unwrap());
        r.rpush("src", "c").unwrap();
        assert!(r
            .copy("src", "dst", CopyOptions::default().replace())
            .unwrap());
        assert_eq!(r.llen("dst").unwrap(), 3);
        assert!(r.copy("src", "dst", CopyOptions::default().db(5)).unwrap());

        // db 5 now holds a copy named dst, so dst cannot move there.
        assert!(!r.move_key("dst", 5).unwrap());
        assert!(r.move_key("dst", 6).unwrap());
        assert_eq!(r.exists("dst").unwrap(), 0);
        assert!(!r.move_key("missing", 6).unwrap());
    });
}

#[test]
fn object_subcommands() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        r.set("n", 12345).unwrap();
        r.set("s", "some text").unwrap();
        assert_eq!(r.object_encoding("n").unwrap().as_deref(), Some("int"));
        assert_eq!(r.object_encoding("s").unwrap().as_deref(), Some("embstr"));
        assert_eq!(r.object_encoding("missing").unwrap(), None);
        assert!(r.object_refcount("s").unwrap().unwrap() >= 1);
        assert!(r.object_idletime("s").unwrap().unwrap() >= 0);
        assert!(r
            .object_help()
            .unwrap()
            .iter()
            .any(|line| line.contains("ENCODING")));
        // FREQ needs an LFU policy; without one the server refuses it.
        assert!(r.object_freq("s").is_err());
        r.execute_command(("CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"))
            .unwrap();
        assert!(r.object_freq("s").unwrap().unwrap() >= 0);
        r.execute_command(("CONFIG", "SET", "maxmemory-policy", "noeviction"))
            .unwrap();
    });
}

#[test]
fn sort_with_every_option() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        r.rpush("ids", ["3", "1", "2"]).unwrap();
        r.mset([("w_1", "30"), ("w_2", "10"), ("w_3", "20")])
            .unwrap();
        r.mset([("name_1", "one"), ("name_2", "two")]).unwrap();
        let some = |v: &[&'static str]| v.iter().map(|s| Some(b(s))).collect::<Vec<_>>();

        assert_eq!(
            r.sort("ids", SortOptions::default()).unwrap(),
            some(&["1", "2", "3"])
        );
        assert_eq!(
            r.sort("ids", SortOptions::default().desc()).unwrap(),
            some(&["3", "2", "1"])
        );
        assert_eq!(
            r.sort("ids", SortOptions::default().by("w_*")).unwrap(),
            some(&["2", "3", "1"])
        );
        assert_eq!(
            r.sort("ids", SortOptions::default().limit(1, 1)).unwrap(),
            some(&["2"])
        );
        assert_eq!(
            r.sort("ids", SortOptions::default().get("#").get("name_*"))
                .unwrap(),
            vec![
                Some(b("1")),
                Some(b("one")),
                Some(b("2")),
                Some(b("two")),
                Some(b("3")),
                None
            ]
        );
        r.rpush("words", ["pear", "apple", "fig"]).unwrap();
        assert_eq!(
            r.sort("words", SortOptions::default().alpha().desc().asc())
                .unwrap(),
            some(&["apple", "fig", "pear"])
        );
        assert_eq!(
            r.sort_ro("words", SortOptions::default().alpha().desc())
                .unwrap(),
            some(&["pear", "fig", "apple"])
        );
        assert_eq!(
            r.sort_store("ids", SortOptions::default().by("nosort"), "out")
                .unwrap(),
            3
        );
        assert_eq!(
            r.lrange("out", 0, -1).unwrap(),
            vec![b("3"), b("1"), b("2")]
        );
    });
    let c = cmd::keys::sort_store("src", SortOptions::default().by("w_*"), "dst").cmd;
    assert_eq!(c.keys().collect::<Vec<_>>(), vec![&b"src"[..], b"dst"]);
}

#[test]
fn migrate_to_another_server() {
    let server = TestServer::start();
    let target = ServerConfig::default().password("pw").start();
    let to = Redis::open(&format!("redis://:pw@127.0.0.1:{}/0", target.port())).unwrap();
    for_each_protocol(&server, |r| {
        to.execute_command("FLUSHALL").unwrap();
        r.mset([("m1", "1"), ("m2", "2"), ("m3", "3")]).unwrap();
        let auth = MigrateOptions::default().auth("pw");
        assert_eq!(
            r.migrate(
                "127.0.0.1",
                target.port(),
                "m1",
                0,
                Duration::from_secs(5),
                auth.clone()
            )
            .unwrap(),
            "OK"
        );
        assert_eq!(r.exists("m1").unwrap(), 0);
        assert_eq!(to.get("m1").unwrap(), Some(b("1")));
        assert_eq!(
            r.migrate(
                "127.0.0.1",
                target.port(),
                "m1",
                0,
                Duration::from_secs(5),
                auth.clone()
            )
            .unwrap(),
            "NOKEY"
        );
        r.set("m1", "again").unwrap();
        let opts = MigrateOptions::default()
            .copy()
            .replace()
            .auth2("default", "pw");
        assert_eq!(
            r.migrate_keys(
                "127.0.0.1",
                target.port(),
                ["m1", "m2", "m3"],
                0,
                Duration::from_secs(5),
                opts
            )
            .unwrap(),
            "OK"
        );
        assert_eq!(r.exists(["m1", "m2", "m3"]).unwrap(), 3);
        assert_eq!(
            to.mget(["m1", "m2", "m3"]).unwrap(),
            vec![Some(b("again")), Some(b("2")), Some(b("3"))]
        );
    });
    let c = cmd::keys::migrate_keys(
        "h",
        1,
        ["a", "b"],
        0,
        Duration::from_millis(10),
        MigrateOptions::default(),
    )
    .cmd;
    assert_eq!(c.keys().collect::<Vec<_>>(), vec![&b"a"[..], b"b"]);
}
