//! Async pub/sub as a stream that resubscribes after a lost connection, and the async
//! lock.

use redis_client::aio::{PubSub, Redis};
use redis_client::futures_core::Stream;
use redis_client::prelude::*;
use redis_client::{ConnectionInfo, Error, LockError, Message, MessageKind, Protocol};
use redis_tests::{FakeConn, FakeServer, FaultProxy, TestServer};
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn next(stream: &mut Pin<Box<redis_client::aio::Messages>>) -> Message {
    tokio::time::timeout(
        Duration::from_secs(5),
        poll_fn(|cx| stream.as_mut().poll_next(cx)),
    )
    .await
    .expect("a message within 5 s")
    .expect("the stream goes on")
    .expect("no error")
}

/// Publishes `payload` on `channel` until a subscriber has received it (a subscription is
/// in force only once the server has processed it).
async fn publish_until_received(r: &Redis, channel: &str, payload: &str) {
    for _ in 0..100 {
        if r.publish(channel, payload).await.unwrap() > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("nobody subscribed to {channel}");
}

#[tokio::test]
async fn messages_arrive_as_a_stream_over_both_protocols() {
    let server = TestServer::start();
    for protocol in [Protocol::Resp2, Protocol::Resp3] {
        let info = ConnectionInfo::tcp("127.0.0.1", server.port()).with_protocol(protocol);
        let r = Redis::from_info(info.clone());
        let mut p = PubSub::new(info);
        p.ignore_subscribe_messages(true);
        p.subscribe("news").await.unwrap();
        p.psubscribe("user:*").await.unwrap();
        let mut stream = Box::pin(p.into_stream());
        let reader = tokio::spawn(async move {
            let a = next(&mut stream).await;
            let b = next(&mut stream).await;
            (a, b)
        });
        publish_until_received(&r, "news", "hello").await;
        r.publish("user:7", "joined").await.unwrap();
        let (a, b) = reader.await.unwrap();
        assert_eq!(
            (a.kind, &a.channel[..], &a.payload[..]),
            (MessageKind::Message, &b"news"[..], &b"hello"[..])
        );
        assert_eq!(b.kind, MessageKind::PMessage, "{protocol:?}");
        assert_eq!(b.pattern.as_deref(), Some(&b"user:*"[..]));
        assert_eq!(&b.payload[..], b"joined");
    }
}

#[tokio::test]
async fn a_lost_subscriber_connection_is_reopened_and_resubscribed() {
    let server = TestServer::start();
    let r = Redis::from_info(ConnectionInfo::tcp("127.0.0.1", server.port()));
    let mut p = r.pubsub();
    p.ignore_subscribe_messages(true);
    p.subscribe(["a", "b"]).await.unwrap();
    let mut stream = Box::pin(p.into_stream());
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        while got.len() < 3 {
            got.push(next(&mut stream).await);
        }
        got
    });
    publish_until_received(&r, "a", "before").await;
    // Cut the subscriber's connection from the server side.
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.raw(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    publish_until_received(&r, "b", "after").await;
    let got = reader.await.unwrap();
    assert_eq!(&got[0].payload[..], b"before");
    assert_eq!(got[1].kind, MessageKind::Reconnected);
    assert_eq!(
        (&got[2].channel[..], &got[2].payload[..]),
        (&b"b"[..], &b"after"[..])
    );
}

#[tokio::test]
async fn get_message_times_out_quietly_and_subscribe_is_refused_on_the_shared_connection() {
    let server = TestServer::start();
    let r = Redis::from_info(ConnectionInfo::tcp("127.0.0.1", server.port()));
    let mut p = r.pubsub();
    p.subscribe("quiet").await.unwrap();
    let confirmation = p
        .get_message(Some(Duration::from_secs(1)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(confirmation.kind, MessageKind::Subscribe);
    let start = Instant::now();
    assert!(p
        .get_message(Some(Duration::from_millis(100)))
        .await
        .unwrap()
        .is_none());
    assert!(start.elapsed() < Duration::from_millis(500));
    p.ping("are you there").await.unwrap();
    let pong = p
        .get_message(Some(Duration::from_secs(1)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (pong.kind, &pong.payload[..]),
        (MessageKind::Pong, &b"are you there"[..])
    );
    // SUBSCRIBE on the command connection would turn it into a stream of pushes.
    let e = r.execute_command(("SUBSCRIBE", "x")).await.unwrap_err();
    assert!(matches!(e, Error::Unsupported(_)), "{e:?}");
    assert_eq!(r.get("k").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lock_admits_one_holder_at_a_time() {
    let server = TestServer::start();
    let r = Redis::from_info(ConnectionInfo::tcp("127.0.0.1", server.port()));
    let inside = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (r, inside) = (r.clone(), Arc::clone(&inside));
        tasks.push(tokio::spawn(async move {
            for _ in 0..5 {
                let guard = r
                    .lock("resource")
                    .sleep(Duration::from_millis(5))
                    .acquire()
                    .await
                    .unwrap();
                assert_eq!(
                    inside.fetch_add(1, Ordering::SeqCst),
                    0,
                    "two holders at once"
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
                guard.release().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn lock_timeout_expiry_and_release_on_drop() {
    let server = TestServer::start();
    let r = Redis::from_info(ConnectionInfo::tcp("127.0.0.1", server.port()));
    let held = r
        .lock("l")
        .lease(Duration::from_millis(200))
        .acquire()
        .await
        .unwrap();
    let e = r
        .lock("l")
        .timeout(Some(Duration::from_millis(50)))
        .acquire()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Lock(LockError::Timeout { .. })), "{e:?}");
    held.extend(Duration::from_millis(100)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    // The lease ran out: releasing what is no longer held says so.
    assert!(!held.is_held().await.unwrap());
    assert!(matches!(
        held.release().await,
        Err(Error::Lock(LockError::NotHeld { .. }))
    ));

    let dropped = r.lock("d").acquire().await.unwrap();
    drop(dropped);
    let again = r
        .lock("d")
        .timeout(Some(Duration::from_secs(1)))
        .acquire()
        .await
        .expect("dropping the guard released the lock");
    again.release().await.unwrap();
}

#[tokio::test]
async fn a_sleep_longer_than_the_lease_is_refused_before_sending() {
    let server = TestServer::start();
    let r = Redis::from_info(ConnectionInfo::tcp("127.0.0.1", server.port()));
    let err = r
        .lock("l")
        .lease(std::time::Duration::from_millis(100))
        .sleep(std::time::Duration::from_secs(1))
        .acquire()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Lock(redis_client::LockError::SleepLongerThanLease { .. })
        ),
        "{err:?}"
    );
    assert_eq!(r.exists("l").await.unwrap(), 0, "nothing was sent");
}

/// Publishes `payload` on `channel` until `p` reads it, reading `p` in between; returns
/// every message `p` gave on the way. Every message must be whole: a confirmation, a
/// `Reconnected`, or one of the payloads published.
async fn publish_until_read(
    r: &Redis,
    p: &mut PubSub,
    channel: &str,
    payload: &str,
) -> Vec<Message> {
    let mut seen = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        r.publish(channel, payload).await.unwrap();
        while let Some(m) = p
            .get_message(Some(Duration::from_millis(20)))
            .await
            .unwrap()
        {
            let done = m.kind == MessageKind::Message
                && &m.channel[..] == channel.as_bytes()
                && &m.payload[..] == payload.as_bytes();
            seen.push(m);
            if done {
                return seen;
            }
        }
    }
    panic!("{channel} never reached the subscriber; it read {seen:?}");
}

#[tokio::test]
async fn get_message_dropped_with_half_a_message_in_gives_the_whole_message_next() {
    let fake = FakeServer::start(|mut c: FakeConn| {
        if c.read_request().is_some() {
            c.write(b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n");
            c.write(b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$11\r\nhello ");
            std::thread::sleep(Duration::from_millis(150));
            c.write(b"world\r\n*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$4\r\nnext\r\n");
            c.hold(Duration::from_secs(5));
        }
    });
    let mut p = PubSub::new(ConnectionInfo::tcp("127.0.0.1", fake.port()));
    p.ignore_subscribe_messages(true);
    p.subscribe("news").await.unwrap();
    let start = Instant::now();
    let mut dropped = 0;
    let m = loop {
        assert!(start.elapsed() < Duration::from_secs(3), "never whole");
        match tokio::time::timeout(Duration::from_millis(1), p.get_message(None)).await {
            Ok(m) => break m.unwrap().unwrap(),
            Err(_) => dropped += 1,
        }
    };
    assert!(start.elapsed() >= Duration::from_millis(100));
    assert!(dropped > 5, "reads were dropped while half of it was in");
    assert_eq!(
        (m.kind, &m.payload[..]),
        (MessageKind::Message, &b"hello world"[..])
    );
    let m = p
        .get_message(Some(Duration::from_secs(2)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&m.payload[..], b"next", "still in step");
}

#[tokio::test]
async fn subscribe_and_ping_dropped_at_any_point_leave_every_subscription_in_force() {
    let server = TestServer::start();
    let r = Redis::from_info(ConnectionInfo::tcp("127.0.0.1", server.port()));
    for (i, micros) in [0u64, 0, 50, 200, 500, 1000, 2000, 2000]
        .into_iter()
        .enumerate()
    {
        let give_up = Duration::from_micros(micros);
        let mut p = r.pubsub();
        let first = format!("first-{i}");
        // Dropped while the first connection opens, or while SUBSCRIBE is written, or not
        // at all: the subscription holds in every case.
        let _ = tokio::time::timeout(give_up, p.subscribe(first.as_str())).await;
        let _ = tokio::time::timeout(give_up, p.ping("hi")).await;
        let second = format!("second-{i}");
        if i % 2 == 0 {
            p.subscribe(second.as_str()).await.unwrap();
        }
        publish_until_read(&r, &mut p, &first, "one").await;
        if i % 2 == 0 {
            publish_until_read(&r, &mut p, &second, "two").await;
        }
    }
}

#[tokio::test]
async fn a_reconnect_cut_short_is_done_again_on_the_next_read() {
    let server = TestServer::start();
    let proxy = FaultProxy::start(server.port());
    let r = Redis::from_info(ConnectionInfo::tcp("127.0.0.1", server.port()));
    let mut p = PubSub::new(ConnectionInfo::tcp("127.0.0.1", proxy.port()));
    p.subscribe("rc").await.unwrap();
    publish_until_read(&r, &mut p, "rc", "before").await;
    // Every chunk through the proxy now waits 5 ms, so reopening and resubscribing takes
    // several: reads given up after 1, 2, 3 … ms cut the reconnect short again and again
    // until one waits long enough.
    proxy.delay(Duration::from_millis(5));
    proxy.drop_connections();
    let start = Instant::now();
    let mut dropped = 0;
    let reconnected = loop {
        assert!(start.elapsed() < Duration::from_secs(3), "no reconnect");
        let give_up = Duration::from_millis(1 + dropped);
        match tokio::time::timeout(give_up, p.get_message(None)).await {
            Err(_) => dropped += 1,
            Ok(m) => {
                let m = m.unwrap().unwrap();
                if m.kind == MessageKind::Reconnected {
                    break m;
                }
            }
        }
    };
    assert_eq!(reconnected.kind, MessageKind::Reconnected);
    assert!(dropped > 3, "the reconnect was cut short {dropped} times");
    proxy.delay(Duration::ZERO);
    let seen = publish_until_read(&r, &mut p, "rc", "after").await;
    assert!(
        seen.iter()
            .all(|m| m.kind != MessageKind::Message
                || matches!(&m.payload[..], b"before" | b"after")),
        "{seen:?}"
    );
}

#[tokio::test]
async fn a_ping_cut_short_breaks_the_connection_and_the_next_read_resubscribes() {
    let server = TestServer::start();
    let proxy = FaultProxy::start(server.port());
    let r = Redis::from_info(ConnectionInfo::tcp("127.0.0.1", server.port()));
    let mut p = PubSub::new(ConnectionInfo::tcp("127.0.0.1", proxy.port()));
    p.subscribe("pc").await.unwrap();
    publish_until_read(&r, &mut p, "pc", "before").await;
    // The proxy stops reading: a PING larger than the socket buffers is cut short part
    // way through its write.
    proxy.stall();
    let big = "x".repeat(32 << 20);
    let cut = tokio::time::timeout(Duration::from_millis(200), p.ping(big.as_str())).await;
    assert!(cut.is_err(), "the PING could not be written whole");
    proxy.resume();
    let seen = publish_until_read(&r, &mut p, "pc", "after").await;
    assert!(
        seen.iter().any(|m| m.kind == MessageKind::Reconnected),
        "the half-written connection was replaced: {seen:?}"
    );
    assert!(seen.iter().all(|m| m.kind != MessageKind::Pong), "{seen:?}");
}
