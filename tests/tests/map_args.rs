//! Maps as command arguments (issue 16): `HashMap` and `BTreeMap`, owned and borrowed,
//! flattened to key/value pairs for HSET, HMSET, MSET, MSETNX and XADD, against a real
//! server over RESP2 and RESP3.

mod common;

use bytes::Bytes;
use common::for_each_protocol;
use redis_client::prelude::*;
use redis_client::FromValue;
use redis_tests::TestServer;
use std::collections::{BTreeMap, HashMap};

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

#[test]
fn hash_commands_take_maps() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        let fields = HashMap::from([("name", "ada"), ("lang", "en")]);
        assert_eq!(r.hset_multiple("user:1", &fields).unwrap(), 2);
        let more = BTreeMap::from([("lang".to_owned(), 7), ("born".to_owned(), 1815)]);
        assert!(r.hmset("user:1", more).unwrap());
        let got = r.hgetall("user:1").unwrap();
        let expected: HashMap<Bytes, Bytes> = [("name", "ada"), ("lang", "7"), ("born", "1815")]
            .into_iter()
            .map(|(k, v)| (b(k), b(v)))
            .collect();
        assert_eq!(got, expected);
        // The map hgetall returns goes straight back in.
        assert_eq!(r.hset_multiple("user:2", &got).unwrap(), 3);
        assert_eq!(r.hgetall("user:2").unwrap(), expected);
    });
}

#[test]
fn mset_and_msetnx_take_maps() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        let pairs = BTreeMap::from([("a", "1"), ("b", "2")]);
        assert!(r.mset(&pairs).unwrap());
        assert_eq!(
            r.mget(["a", "b"]).unwrap(),
            vec![Some(b("1")), Some(b("2"))]
        );
        assert!(!r.msetnx(HashMap::from([("b", "x"), ("c", "y")])).unwrap());
        assert!(r.msetnx(HashMap::from([("c", "3"), ("d", "4")])).unwrap());
        assert_eq!(
            r.mget(["b", "c", "d"]).unwrap(),
            vec![Some(b("2")), Some(b("3")), Some(b("4"))]
        );
    });
}

#[test]
fn xadd_takes_a_map_of_fields() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        let fields = BTreeMap::from([("temp", "21.5"), ("unit", "C")]);
        let id = r.xadd("readings", "*", &fields).unwrap();
        let entries = r.execute_command(("XRANGE", "readings", "-", "+")).unwrap();
        let entries: Vec<(Bytes, Vec<Bytes>)> = FromValue::from_value(entries).unwrap();
        assert_eq!(
            entries,
            vec![(id, vec![b("temp"), b("21.5"), b("unit"), b("C")])]
        );
    });
}
