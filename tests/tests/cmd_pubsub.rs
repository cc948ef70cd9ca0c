//! Publishing and pub/sub introspection over RESP2 and RESP3, with subscribers on plain
//! TCP connections (subscribing itself belongs to `PubSub`).

mod common;

use bytes::Bytes;
use common::for_each_protocol;
use redis_client::prelude::*;
use redis_tests::TestServer;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

/// A raw connection that sent `command` (e.g. `SUBSCRIBE news`) and read its
/// confirmation (a 3-element array: 6 lines).
fn subscriber(server: &TestServer, command: &str) -> BufReader<TcpStream> {
    let mut s = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    // A wrong expectation fails the test instead of hanging it.
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    s.write_all(format!("{command}\r\n").as_bytes()).unwrap();
    let mut r = BufReader::new(s);
    for _ in 0..6 {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
    }
    r
}

/// Reads a published message's payload from a subscriber (array of 3 or 4 elements,
/// payload last).
fn read_message(r: &mut BufReader<TcpStream>, payload_len: usize) -> Vec<u8> {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let n: usize = line.trim().trim_start_matches('*').parse().unwrap();
    for _ in 0..(n - 1) * 2 + 1 {
        line.clear();
        r.read_line(&mut line).unwrap();
    }
    let mut payload = vec![0; payload_len + 2];
    r.read_exact(&mut payload).unwrap();
    payload.truncate(payload_len);
    payload
}

#[test]
fn publish_reaches_subscribers() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        assert_eq!(r.publish("news", "nobody").unwrap(), 0);
        let mut sub = subscriber(&server, "SUBSCRIBE news");
        let mut psub = subscriber(&server, "PSUBSCRIBE n*");
        assert_eq!(r.publish("news", "hello").unwrap(), 2);
        assert_eq!(read_message(&mut sub, 5), b"hello");
        assert_eq!(read_message(&mut psub, 5), b"hello");
        assert_eq!(r.pubsub_channels().unwrap(), vec![Bytes::from("news")]);
        assert_eq!(
            r.pubsub_channels_matching("ne*").unwrap(),
            vec![Bytes::from("news")]
        );
        assert!(r.pubsub_channels_matching("x*").unwrap().is_empty());
        assert_eq!(r.pubsub_numpat().unwrap(), 1);
        assert_eq!(
            r.pubsub_numsub(["news", "other"]).unwrap(),
            vec![(Bytes::from("news"), 1), (Bytes::from("other"), 0)]
        );
        drop((sub, psub));
        assert!(!r.pubsub_help().unwrap().is_empty());
    });
}

#[test]
fn spublish_reaches_shard_subscribers() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        assert_eq!(r.spublish("orders", "none").unwrap(), 0);
        let mut sub = subscriber(&server, "SSUBSCRIBE orders");
        assert_eq!(r.spublish("orders", "o-1").unwrap(), 1);
        assert_eq!(read_message(&mut sub, 3), b"o-1");
        assert_eq!(
            r.pubsub_shardchannels().unwrap(),
            vec![Bytes::from("orders")]
        );
        assert_eq!(
            r.pubsub_shardchannels_matching("ord*").unwrap(),
            vec![Bytes::from("orders")]
        );
        assert_eq!(
            r.pubsub_shardnumsub(["orders", "none"]).unwrap(),
            vec![(Bytes::from("orders"), 1), (Bytes::from("none"), 0)]
        );
        let spub = redis_client::redis_commands::cmd::pubsub::spublish("orders", "x");
        assert_eq!(spub.cmd.keys().collect::<Vec<_>>(), vec![&b"orders"[..]]);
    });
}
