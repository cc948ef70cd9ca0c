//! PubSub against real servers: ordering under load, binary payloads, unsubscribing,
//! timeouts, handlers, sharded channels, and surviving a killed connection, over RESP2
//! and RESP3.

use bytes::Bytes;
use redis_client::{ConnectionInfo, Message, MessageKind, Protocol, PubSub, Redis, Value};
use redis_tests::TestServer;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PROTOCOLS: [Protocol; 2] = [Protocol::Resp2, Protocol::Resp3];

fn client(server: &TestServer, protocol: Protocol) -> Redis {
    Redis::from_info(ConnectionInfo::tcp("127.0.0.1", server.port()).with_protocol(protocol))
}

fn publish(r: &Redis, channel: &str, payload: impl AsRef<[u8]>) -> i64 {
    match r
        .execute_command(("PUBLISH", channel, payload.as_ref()))
        .unwrap()
    {
        Value::Integer(n) => n,
        other => panic!("PUBLISH answered {other:?}"),
    }
}

/// Waits for the next message that is not `Pong`, failing after 5 s.
fn next(p: &mut PubSub) -> Message {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(m) = p.get_message(Some(Duration::from_millis(200))).unwrap() {
            return m;
        }
        assert!(Instant::now() < deadline, "no message within 5 s");
    }
}

fn expect_kind(p: &mut PubSub, kind: MessageKind) -> Message {
    let m = next(p);
    assert_eq!(m.kind, kind, "{m:?}");
    m
}

#[test]
fn ten_thousand_messages_arrive_complete_and_in_order() {
    let server = TestServer::start();
    for protocol in PROTOCOLS {
        let r = client(&server, protocol);
        let mut p = r.pubsub();
        p.subscribe(["ch-a", "ch-b"]).unwrap();
        p.psubscribe("ch-*").unwrap();
        assert_eq!(
            expect_kind(&mut p, MessageKind::Subscribe).subscription_count(),
            Some(1)
        );
        assert_eq!(
            expect_kind(&mut p, MessageKind::Subscribe).subscription_count(),
            Some(2)
        );
        assert_eq!(
            expect_kind(&mut p, MessageKind::PSubscribe).subscription_count(),
            Some(3)
        );

        const N: usize = 10_000;
        let publisher = {
            let r = r.clone();
            std::thread::spawn(move || {
                for i in 0..N {
                    let channel = if i % 2 == 0 { "ch-a" } else { "ch-b" };
                    assert_eq!(
                        publish(&r, channel, i.to_string()),
                        2,
                        "one channel and one pattern subscriber"
                    );
                }
            })
        };
        for i in 0..N {
            let channel = if i % 2 == 0 { "ch-a" } else { "ch-b" };
            // Redis delivers the channel message before the pattern message.
            let m = expect_kind(&mut p, MessageKind::Message);
            assert_eq!(
                (&m.channel[..], &m.payload[..]),
                (channel.as_bytes(), i.to_string().as_bytes()),
                "{protocol:?}"
            );
            let pm = expect_kind(&mut p, MessageKind::PMessage);
            assert_eq!(pm.pattern.as_deref(), Some(&b"ch-*"[..]));
            assert_eq!(
                (&pm.channel[..], &pm.payload[..]),
                (channel.as_bytes(), i.to_string().as_bytes())
            );
        }
        publisher.join().unwrap();
        assert_eq!(
            p.get_message(Some(Duration::from_millis(50))).unwrap(),
            None,
            "no extra message"
        );
    }
}

#[test]
fn binary_payloads_are_intact() {
    let server = TestServer::start();
    for protocol in PROTOCOLS {
        let r = client(&server, protocol);
        let mut p = r.pubsub();
        p.ignore_subscribe_messages(true);
        p.subscribe(&b"bin\x00\xff"[..]).unwrap();
        // The confirmation is skipped, so publish until the server has a receiver.
        let payload: Vec<u8> = (0..=255).chain((0..=255).rev()).collect();
        let deadline = Instant::now() + Duration::from_secs(5);
        while r
            .execute_command(("PUBLISH", &b"bin\x00\xff"[..], &payload[..]))
            .unwrap()
            == Value::Integer(0)
        {
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(5));
        }
        let m = expect_kind(&mut p, MessageKind::Message);
        assert_eq!(&m.channel[..], b"bin\x00\xff");
        assert_eq!(&m.payload[..], &payload[..], "{protocol:?}");
    }
}

fn numsub(r: &Redis, channel: &str) -> i64 {
    match r.execute_command(("PUBSUB", "NUMSUB", channel)).unwrap() {
        Value::Array(items) => match &items[1] {
            Value::Integer(n) => *n,
            other => panic!("{other:?}"),
        },
        Value::Map(pairs) => match &pairs[0].1 {
            Value::Integer(n) => *n,
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

#[test]
fn unsubscribe_all_leaves_no_subscriptions() {
    let server = TestServer::start();
    for protocol in PROTOCOLS {
        let r = client(&server, protocol);
        let mut p = r.pubsub();
        p.subscribe(["u1", "u2"]).unwrap();
        p.psubscribe("u*").unwrap();
        for _ in 0..3 {
            next(&mut p);
        }
        assert_eq!(numsub(&r, "u1"), 1);
        p.unsubscribe_all().unwrap();
        p.punsubscribe_all().unwrap();
        let mut left = None;
        for _ in 0..3 {
            left = next(&mut p).subscription_count();
        }
        assert_eq!(left, Some(0));
        assert!(!p.is_subscribed());
        assert_eq!(numsub(&r, "u1"), 0);
        assert_eq!(numsub(&r, "u2"), 0);
        assert_eq!(
            r.execute_command(("PUBSUB", "NUMPAT")).unwrap(),
            Value::Integer(0)
        );
    }
}

#[test]
fn get_message_honours_its_timeout() {
    let server = TestServer::start();
    let r = client(&server, Protocol::Resp2);
    let mut p = r.pubsub();
    p.subscribe("quiet").unwrap();
    expect_kind(&mut p, MessageKind::Subscribe);
    for wait in [Duration::from_millis(100), Duration::from_millis(300)] {
        let start = Instant::now();
        assert_eq!(p.get_message(Some(wait)).unwrap(), None);
        let took = start.elapsed();
        assert!(
            took >= wait && took < wait + Duration::from_millis(250),
            "waited {took:?} for {wait:?}"
        );
    }
    // The connection is still good after timing out.
    publish(&r, "quiet", "now");
    assert_eq!(
        &expect_kind(&mut p, MessageKind::Message).payload[..],
        b"now"
    );
}

#[test]
fn ping_in_subscribed_mode() {
    let server = TestServer::start();
    for protocol in PROTOCOLS {
        let r = client(&server, protocol);
        let mut p = r.pubsub();
        p.subscribe("x").unwrap();
        expect_kind(&mut p, MessageKind::Subscribe);
        p.ping("hello").unwrap();
        let pong = expect_kind(&mut p, MessageKind::Pong);
        // RESP2 echoes the message in a pong array; RESP3 answers like a plain PING.
        assert!(
            &pong.payload[..] == b"hello" || &pong.payload[..] == b"PONG",
            "{pong:?}"
        );
    }
}

#[test]
fn handlers_and_background_thread() {
    let server = TestServer::start();
    for protocol in PROTOCOLS {
        let r = client(&server, protocol);
        let seen: Arc<Mutex<Vec<(String, Bytes)>>> = Arc::default();
        let mut p = r.pubsub();
        let s1 = Arc::clone(&seen);
        p.subscribe_with("jobs", move |m| {
            s1.lock().unwrap().push(("jobs".into(), m.payload.clone()))
        })
        .unwrap();
        let s2 = Arc::clone(&seen);
        p.psubscribe_with("ev.*", move |m| {
            s2.lock().unwrap().push(("ev.*".into(), m.payload.clone()))
        })
        .unwrap();
        let runner = p.run_in_thread(Duration::from_millis(20));
        let deadline = Instant::now() + Duration::from_secs(5);
        while numsub(&r, "jobs") == 0
            || r.execute_command(("PUBSUB", "NUMPAT")).unwrap() == Value::Integer(0)
        {
            assert!(Instant::now() < deadline, "subscriptions did not register");
            std::thread::sleep(Duration::from_millis(5));
        }
        publish(&r, "jobs", "j1");
        publish(&r, "ev.x", "e1");
        publish(&r, "jobs", "j2");
        while seen.lock().unwrap().len() < 3 {
            assert!(
                Instant::now() < deadline,
                "handlers not called: {:?}",
                seen.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(runner.is_running());
        let stopped_at = Instant::now();
        let p = runner.stop().unwrap();
        assert!(stopped_at.elapsed() < Duration::from_secs(1));
        assert!(p.is_subscribed());
        let got = seen.lock().unwrap().clone();
        assert_eq!(
            got,
            vec![
                ("jobs".into(), Bytes::from("j1")),
                ("ev.*".into(), Bytes::from("e1")),
                ("jobs".into(), Bytes::from("j2"))
            ]
        );
    }
}

#[test]
fn sharded_channels() {
    let server = TestServer::start();
    for protocol in PROTOCOLS {
        let r = client(&server, protocol);
        let mut p = r.pubsub();
        p.ssubscribe("shard-1").unwrap();
        expect_kind(&mut p, MessageKind::SSubscribe);
        assert_eq!(
            r.execute_command(("SPUBLISH", "shard-1", "s")).unwrap(),
            Value::Integer(1)
        );
        let m = expect_kind(&mut p, MessageKind::SMessage);
        assert_eq!(
            (&m.channel[..], &m.payload[..]),
            (&b"shard-1"[..], &b"s"[..])
        );
        p.sunsubscribe_all().unwrap();
        assert_eq!(
            expect_kind(&mut p, MessageKind::SUnsubscribe).subscription_count(),
            Some(0)
        );
    }
}

#[test]
fn resubscribes_after_client_kill() {
    let server = TestServer::start();
    for protocol in PROTOCOLS {
        let r = client(&server, protocol);
        let mut p = r.pubsub();
        p.ignore_subscribe_messages(true);
        p.subscribe("k-chan").unwrap();
        p.psubscribe("k-*").unwrap();
        p.ssubscribe("k-shard").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while numsub(&r, "k-chan") == 0 {
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(5));
        }
        let killed = r
            .execute_command(("CLIENT", "KILL", "TYPE", "pubsub"))
            .unwrap();
        assert_eq!(killed, Value::Integer(1));
        // The next read notices the loss, reconnects and says so.
        let m = next(&mut p);
        assert_eq!(m.kind, MessageKind::Reconnected, "{m:?}");
        // Subscriptions are renewed: later messages arrive on every kind.
        while numsub(&r, "k-chan") == 0 {
            assert!(Instant::now() < deadline, "did not resubscribe");
            let _ = p.get_message(Some(Duration::from_millis(5))).unwrap();
        }
        publish(&r, "k-chan", "after");
        assert_eq!(
            &expect_kind(&mut p, MessageKind::Message).payload[..],
            b"after"
        );
        assert_eq!(
            &expect_kind(&mut p, MessageKind::PMessage).payload[..],
            b"after"
        );
        r.execute_command(("SPUBLISH", "k-shard", "shard-after"))
            .unwrap();
        assert_eq!(
            &expect_kind(&mut p, MessageKind::SMessage).payload[..],
            b"shard-after"
        );
    }
}

#[test]
fn listen_yields_messages() {
    let server = TestServer::start();
    let r = client(&server, Protocol::Resp3);
    let mut p = r.pubsub();
    p.subscribe("l").unwrap();
    let publisher = {
        let r = r.clone();
        std::thread::spawn(move || {
            while numsub(&r, "l") == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
            for i in 0..3 {
                publish(&r, "l", format!("m{i}"));
            }
        })
    };
    let got: Vec<Message> = p.listen().take(4).map(Result::unwrap).collect();
    publisher.join().unwrap();
    assert_eq!(got[0].kind, MessageKind::Subscribe);
    let payloads: Vec<&[u8]> = got[1..].iter().map(|m| &m.payload[..]).collect();
    assert_eq!(payloads, vec![&b"m0"[..], b"m1", b"m2"]);
}

#[test]
fn survives_a_server_restart() {
    let mut server = TestServer::start();
    let r = client(&server, Protocol::Resp2);
    let mut p = r.pubsub();
    p.ignore_subscribe_messages(true);
    p.subscribe("restart-chan").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while numsub(&r, "restart-chan") == 0 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    server.stop();
    // While the server is down, reading reports the failure instead of hanging.
    let err = p.get_message(Some(Duration::from_secs(5))).unwrap_err();
    assert!(
        err.is_connection_lost() || matches!(err, redis_client::Error::Connect { .. }),
        "{err:?}"
    );
    server.restart();
    // The publishing client's idle connections died with the server; stale pooled
    // connections are the reliability layer's concern, not this test's.
    r.pool().disconnect();
    // The next read reconnects and renews the subscription.
    assert_eq!(next(&mut p).kind, MessageKind::Reconnected);
    while numsub(&r, "restart-chan") == 0 {
        assert!(
            Instant::now() < deadline,
            "did not resubscribe after restart"
        );
        let _ = p.get_message(Some(Duration::from_millis(5))).unwrap();
    }
    publish(&r, "restart-chan", "back");
    assert_eq!(
        &expect_kind(&mut p, MessageKind::Message).payload[..],
        b"back"
    );
}

/// Issue 16: a message published right after `psubscribe` returned must arrive, since the
/// subscription is confirmed before the call returns.
#[test]
fn a_message_published_right_after_subscribing_arrives() {
    let server = TestServer::start();
    for protocol in PROTOCOLS {
        let r = client(&server, protocol);
        for i in 0..100 {
            let mut p = r.pubsub();
            p.ignore_subscribe_messages(true);
            p.psubscribe("race-*").unwrap();
            assert_eq!(publish(&r, "race-1", format!("m{i}")), 1, "run {i}");
            let m = p.get_message(Some(Duration::from_secs(5))).unwrap();
            let m = m.unwrap_or_else(|| panic!("run {i}: message lost"));
            assert_eq!(m.payload, format!("m{i}").as_bytes(), "run {i}");
        }
        for (kind, i) in [("SUBSCRIBE", 0), ("SSUBSCRIBE", 1)] {
            let mut p = r.pubsub();
            p.ignore_subscribe_messages(true);
            if i == 0 {
                p.subscribe(["a", "b"]).unwrap();
            } else {
                p.ssubscribe(["a", "b"]).unwrap();
            }
            let cmd = if i == 0 { "PUBLISH" } else { "SPUBLISH" };
            assert_eq!(
                r.execute_command((cmd, "b", "x")).unwrap(),
                Value::Integer(1),
                "{kind}"
            );
            let m = p.get_message(Some(Duration::from_secs(5))).unwrap();
            assert_eq!(m.map(|m| m.payload), Some(Bytes::from("x")), "{kind}");
        }
    }
}

/// Confirmations read while subscribing, and messages that came with them, stay for
/// `get_message` in the order they arrived.
#[test]
fn confirmations_and_early_messages_are_kept() {
    let server = TestServer::start();
    for protocol in PROTOCOLS {
        let r = client(&server, protocol);
        let mut p = r.pubsub();
        p.subscribe("first").unwrap();
        // Published while the next subscribe is on its way: arrives before its confirmation.
        publish(&r, "first", "early");
        p.subscribe("second").unwrap();
        let got: Vec<_> = std::iter::from_fn(|| p.get_message(Some(Duration::ZERO)).unwrap())
            .map(|m| (m.kind, m.channel, m.payload))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    MessageKind::Subscribe,
                    Bytes::from("first"),
                    Bytes::from("1")
                ),
                (
                    MessageKind::Message,
                    Bytes::from("first"),
                    Bytes::from("early")
                ),
                (
                    MessageKind::Subscribe,
                    Bytes::from("second"),
                    Bytes::from("2")
                ),
            ]
        );
    }
}

/// Issue 16: a zero timeout returns messages that are waiting on the socket.
#[test]
fn a_zero_timeout_polls_waiting_messages() {
    let server = TestServer::start();
    for protocol in PROTOCOLS {
        let r = client(&server, protocol);
        let mut p = r.pubsub();
        p.ignore_subscribe_messages(true);
        p.subscribe("poll").unwrap();
        assert_eq!(p.get_message(Some(Duration::ZERO)).unwrap(), None);
        for i in 0..3 {
            publish(&r, "poll", format!("m{i}"));
        }
        // PUBLISH returned, so the server has written the messages; give the loopback a
        // moment to deliver them.
        std::thread::sleep(Duration::from_millis(200));
        for i in 0..3 {
            let start = Instant::now();
            let m = p.get_message(Some(Duration::ZERO)).unwrap();
            assert_eq!(m.map(|m| m.payload), Some(Bytes::from(format!("m{i}"))));
            assert!(start.elapsed() < Duration::from_millis(500));
        }
        let start = Instant::now();
        assert_eq!(p.get_message(Some(Duration::ZERO)).unwrap(), None);
        assert!(
            start.elapsed() < Duration::from_millis(500),
            "a poll blocked"
        );
        // The connection is still in step after polls that found nothing.
        publish(&r, "poll", "after");
        assert_eq!(next(&mut p).payload, "after");
    }
}

/// CPU time this thread has used, in clock ticks, from /proc/thread-self/stat.
fn thread_cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    // The command name in parentheses may hold spaces; fields count from after it.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// How many times this thread has given up the CPU of its own accord, from
/// /proc/thread-self/status: each wait on the socket that ends without data is one, so it
/// counts the runner's polls.
fn thread_voluntary_switches() -> u64 {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Issue 16: `run_in_thread(Duration::ZERO)` hands every message to its handler and does
/// not spin while waiting for them.
#[test]
fn a_zero_poll_thread_handles_every_message_without_spinning() {
    let server = TestServer::start();
    for protocol in PROTOCOLS {
        let r = client(&server, protocol);
        let mut p = r.pubsub();
        // The handler runs on the subscriber's thread, so it can read that thread's CPU use.
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        p.subscribe_with("work", move |m: &Message| {
            sink.lock().unwrap().push((
                m.payload.clone(),
                thread_cpu_ticks(),
                thread_voluntary_switches(),
            ));
        })
        .unwrap();
        let runner = p.run_in_thread(Duration::ZERO);
        publish(&r, "work", "0");
        let wait_for = |n: usize| {
            let deadline = Instant::now() + Duration::from_secs(5);
            while seen.lock().unwrap().len() < n {
                assert!(Instant::now() < deadline, "handler not called {n} times");
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        wait_for(1);
        // A second of idling: a spinning loop would use about 100 ticks of it.
        std::thread::sleep(Duration::from_secs(1));
        for i in 1..5 {
            publish(&r, "work", i.to_string());
        }
        wait_for(5);
        let seen = seen.lock().unwrap().clone();
        let payloads: Vec<_> = seen.iter().map(|(p, ..)| p.clone()).collect();
        assert_eq!(payloads, ["0", "1", "2", "3", "4"]);
        let used = seen[4].1 - seen[0].1;
        assert!(used < 20, "the thread used {used} ticks while idle");
        // Waits of 100 ms make about ten polls in the idle second; polling with the
        // shortest socket timeout would make hundreds.
        let polls = seen[1].2 - seen[0].2;
        assert!(polls < 50, "the thread polled {polls} times in a second");
        runner.stop().unwrap();
    }
}
