//! One client surface (issue 29): the same program, written once, run against every client
//! type in text mode: the blocking `Redis`, the async `aio::Redis`, the blocking and the
//! async `ClusterClient`, and the `Redis` and `aio::Redis` a `Sentinel` hands out.
//!
//! Each case is a macro whose calls are wrapped in `$c!(…)` (the call as it is, or the call
//! `.await`ed), as `aio_commands.rs` does, so the blocking and async forms are held to the
//! same code. The only places the two forms differ are the SCAN methods' names
//! (`scan_iter` and `scan_stream`, both read with `next()`, see `all!`) and `$f!(|w| …)`,
//! which makes a transaction closure (`async move` on the async clients). Replies are bound to explicit types (`Option<String>`, `Vec<(String,
//! f64)>` …), so a builder or iterator that falls back to bytes on some client is a
//! compile error here, and a behaviour that differs is a failed assertion.
//!
//! What every client must do alike: pipelines (MULTI … EXEC by default, `transaction(false)`
//! on a variable and in a chain, `raise_on_error`, `execute_command`, `query`), typed
//! pipelines in both modes, WATCH by hand and the `transaction` helper, SCAN and
//! SSCAN/HSCAN/ZSCAN, pub/sub messages read as text (`pattern_str` included), durations,
//! integer scores, and the refusal of a connection-state command on a pooled client.

use bytes::Bytes;
use redis_client::prelude::*;
use redis_client::{Error, MessageKind, ScanOptions, Sentinel, Value};
use redis_tests::{SentinelSet, TestCluster, TestServer, SENTINEL_SERVICE};
use std::time::{Duration, Instant};

/// The blocking client's call, as it is.
macro_rules! blocking {
    ($e:expr) => {
        $e
    };
}

/// The async client's call, awaited.
macro_rules! awaited {
    ($e:expr) => {
        $e.await
    };
}

/// Every item of a SCAN iterator or stream: `next()`, or `next().await`.
macro_rules! all {
    ($c:ident, $e:expr) => {{
        let mut walk = $e;
        let mut items = Vec::new();
        while let Some(item) = $c!(walk.next()) {
            items.push(item.unwrap());
        }
        items
    }};
}

/// A blocking transaction closure.
macro_rules! blocking_fn {
    (|$w:ident| $body:block) => {
        |mut $w| $body
    };
}

/// An async transaction closure.
macro_rules! async_fn {
    (|$w:ident| $body:block) => {
        |mut $w| async move $body
    };
}

fn sorted<T: PartialOrd>(mut v: Vec<T>) -> Vec<T> {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v
}

/// The case: `$t` is a client in text mode; the keys with the `{m}` hash tag share a slot,
/// so the transactions can run on a cluster too.
macro_rules! one_surface_case {
    ($t:ident, $c:ident, $f:ident, $scan:ident, $sscan:ident, $hscan:ident, $zscan:ident) => {{
        // Commands give text.
        assert!($c!($t.set("{m}:name", "ada")).unwrap());
        let name: Option<String> = $c!($t.get("{m}:name")).unwrap();
        assert_eq!(name.as_deref(), Some("ada"));
        // The same client in byte mode, one call away.
        let bytes: Option<Bytes> = $c!($t.binary().get("{m}:name")).unwrap();
        assert_eq!(bytes.as_deref(), Some(&b"ada"[..]));

        // Times are durations; scores are any number.
        assert!($c!($t.setex("{m}:session", Duration::from_secs(60), "s")).unwrap());
        let left = $c!($t.ttl("{m}:session")).unwrap().expires_in().unwrap();
        assert!(left > Duration::from_secs(50), "{left:?}");
        assert_eq!($c!($t.zadd("{m}:board", [(10, "ada"), (7, "bob")])).unwrap(), 2);
        assert_eq!($c!($t.zincrby("{m}:board", 5, "bob")).unwrap(), 12.0);

        // A pipeline is MULTI … EXEC by default, on every client (keys in one slot).
        let mut tx = $t.pipeline();
        tx.set("{m}:x", "1").incr("{m}:x").get("{m}:x");
        let (stored, x, got): (bool, i64, Option<String>) = $c!(tx.query()).unwrap();
        assert_eq!((stored, x, got.as_deref()), (true, 2, Some("2")));

        // transaction(false) on a pipeline kept in a variable, any keys …
        let mut p = $t.pipeline();
        p.transaction(false).set("m:a", 1).incr("m:b").get("m:a");
        let (stored, b, a): (bool, i64, Option<String>) = $c!(p.query()).unwrap();
        assert_eq!((stored, b, a.as_deref()), (true, 1, Some("1")));
        // … and in one chain; the pipeline is empty again after each run.
        let values = $c!($t.pipeline().transaction(false).get("m:a").get("m:none").execute())
            .unwrap();
        assert_eq!(values, [Value::BulkString(Bytes::from("1")), Value::Nil]);
        // raise_on_error(false) leaves a refused command's error in place.
        p.transaction(false)
            .raise_on_error(false)
            .execute_command(("INCR", "{m}:name"))
            .get("{m}:name");
        let values = $c!(p.execute()).unwrap();
        assert!(matches!(values[0], Value::Error(_)), "{values:?}");
        assert_eq!(values[1], Value::BulkString(Bytes::from("ada")));

        // Typed pipelines: a tuple of the commands' types, text or bytes.
        let (stored, value, n) = $c!($t
            .typed_pipeline()
            .set("{m}:t", "v")
            .get("{m}:t")
            .incr("{m}:n")
            .execute())
        .unwrap();
        let (stored, value, n): (bool, Option<String>, i64) = (stored, value, n);
        assert_eq!((stored, value.as_deref(), n), (true, Some("v"), 1));
        let (a, none) = $c!($t
            .typed_pipeline()
            .transaction(false)
            .get("m:a")
            .get("m:none")
            .execute())
        .unwrap();
        let (a, none): (Option<String>, Option<String>) = (a, none);
        assert_eq!((a.as_deref(), none), (Some("1"), None));
        let (raw,) = $c!($t.binary().typed_pipeline().get("{m}:t").execute()).unwrap();
        let raw: Option<Bytes> = raw;
        assert_eq!(raw.as_deref(), Some(&b"v"[..]));

        // WATCH by hand: immediate reads as text, then the writes as MULTI … EXEC.
        let mut w = $c!($t.pipeline().watch("{m}:n")).unwrap();
        let seen: Option<String> = $c!(w.get("{m}:n")).unwrap();
        assert_eq!(seen.as_deref(), Some("1"));
        let mut tx = w.multi();
        tx.set("{m}:n", 10).incr("{m}:n");
        assert_eq!(
            $c!(tx.execute()).unwrap(),
            [Value::Boolean(true), Value::Integer(11)]
        );
        // The transaction helper: the same closure, retried while a watched key changes.
        let results = $c!($t.transaction(
            "{m}:n",
            $f!(|w| {
                let n: Option<String> = $c!(w.get("{m}:n"))?;
                let mut tx = w.multi();
                tx.set("{m}:n", format!("{}!", n.unwrap_or_default()));
                Ok(tx)
            })
        ))
        .unwrap();
        assert_eq!(results, [Value::Boolean(true)]);
        let n: Option<String> = $c!($t.get("{m}:n")).unwrap();
        assert_eq!(n.as_deref(), Some("11!"));

        // SCAN and its one-key forms yield text.
        $c!($t.sadd("{m}:set", ["a", "b"])).unwrap();
        $c!($t.hset("{m}:hash", "f", "v")).unwrap();
        let keys: Vec<String> = all!($c, $t.$scan(ScanOptions::new().pattern("{m}:s*")));
        assert_eq!(sorted(keys), ["{m}:session", "{m}:set"]);
        let members: Vec<String> = all!($c, $t.$sscan("{m}:set", ScanOptions::new()));
        assert_eq!(sorted(members), ["a", "b"]);
        let fields: Vec<(String, String)> = all!($c, $t.$hscan("{m}:hash", ScanOptions::new()));
        assert_eq!(fields, [("f".to_owned(), "v".to_owned())]);
        let scored: Vec<(String, f64)> = all!($c, $t.$zscan("{m}:board", ScanOptions::new()));
        assert_eq!(
            sorted(scored),
            [("ada".to_owned(), 10.0), ("bob".to_owned(), 12.0)]
        );

        // Pub/sub messages read as text, the matching pattern included.
        let mut ps = $t.pubsub();
        $c!(ps.psubscribe("chat:*")).unwrap();
        $c!($t.publish("chat:1", "héllo")).unwrap();
        let until = Instant::now() + Duration::from_secs(10);
        let msg = loop {
            assert!(Instant::now() < until, "no message");
            match $c!(ps.get_message(Some(Duration::from_millis(100)))).unwrap() {
                Some(m) if m.kind == MessageKind::PMessage => break m,
                _ => {}
            }
        };
        assert_eq!(msg.pattern_str().unwrap(), Some("chat:*"));
        assert_eq!(msg.channel_str().unwrap(), "chat:1");
        assert_eq!(msg.payload_str().unwrap(), "héllo");

        // A connection-state command on a pooled client is refused, not undone.
        let refused = $c!($t.client_setname("x")).unwrap_err();
        assert!(
            matches!(refused, Error::Unsupported(why) if why.contains("with_client_name")),
            "{refused:?}"
        );
    }};
}

/// Runs the case through a blocking client, from inside the async test.
macro_rules! blocking_case {
    ($t:ident, $scan:ident) => {
        tokio::task::block_in_place(|| {
            one_surface_case!(
                $t, blocking, blocking_fn, $scan, sscan_iter, hscan_iter, zscan_iter
            )
        })
    };
}

macro_rules! async_case {
    ($t:ident) => {
        one_surface_case!(
            $t,
            awaited,
            async_fn,
            scan_stream,
            sscan_stream,
            hscan_stream,
            zscan_stream
        )
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_server_blocking_and_async() {
    let server = TestServer::start();
    let t = redis_client::Redis::open(&server.url()).unwrap().text();
    t.flushall(None).unwrap();
    blocking_case!(t, scan_iter);
    let t = redis_client::aio::Redis::open(&server.url())
        .unwrap()
        .text();
    t.flushall(None).await.unwrap();
    async_case!(t);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_blocking_and_async() {
    let cluster = TestCluster::start_with(0);
    let t = redis_client::cluster::ClusterClient::open(&cluster.urls())
        .unwrap()
        .text();
    tokio::task::block_in_place(|| t.flushall(None).unwrap());
    blocking_case!(t, scan_iter);
    let t = redis_client::cluster::aio::ClusterClient::open(&cluster.urls())
        .await
        .unwrap()
        .text();
    t.flushall(None).await.unwrap();
    async_case!(t);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_blocking_and_async() {
    let set = SentinelSet::start();
    let sentinel = tokio::task::block_in_place(|| {
        Sentinel::builder(set.sentinel_urls(), SENTINEL_SERVICE)
            .unwrap()
            .build()
    });
    let t = sentinel.primary().text();
    tokio::task::block_in_place(|| t.flushall(None).unwrap());
    blocking_case!(t, scan_iter);
    let t = sentinel.primary_async().text();
    t.flushall(None).await.unwrap();
    async_case!(t);
}
