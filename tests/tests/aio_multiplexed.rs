//! The multiplexed connection under load and under failure: every reply reaches its own
//! caller, callers that give up never disturb anyone, a lost server fails every waiting
//! caller and is reconnected to, and a hostile server (extra replies, drips, endless
//! replies) gives typed errors in bounded time; RESP3 pushes never reach a caller.

use redis_client::aio::Redis;
use redis_client::prelude::*;
use redis_client::redis_conn::aio::Multiplexed;
use redis_client::redis_conn::Error as ConnError;
use redis_client::{ConnectionInfo, Error, Protocol, ReplyTimeout, Value};
use redis_tests::{FakeConn, FakeServer, FaultProxy, TestServer};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn client(server: &TestServer, protocol: Protocol) -> Redis {
    Redis::from_info(ConnectionInfo::tcp("127.0.0.1", server.port()).with_protocol(protocol))
}

/// A small deterministic generator, so a failure can be replayed.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

async fn client_id(r: &Redis) -> i64 {
    r.client_id().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_tasks_each_get_their_own_replies_on_one_connection() {
    let server = TestServer::start();
    for protocol in [Protocol::Resp2, Protocol::Resp3] {
        let r = client(&server, protocol);
        let id = client_id(&r).await;
        let mut tasks = Vec::new();
        for t in 0..1000 {
            let r = r.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..100 {
                    let key = format!("task:{t}");
                    let value = format!("{t}/{i}");
                    assert!(r.set(&key, &value).await.unwrap());
                    let got = r.get(&key).await.unwrap();
                    assert_eq!(got.as_deref(), Some(value.as_bytes()), "task {t} round {i}");
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        // All of it went over the one connection opened first.
        assert_eq!(client_id(&r).await, id, "{protocol:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_that_give_up_never_get_or_cause_a_wrong_reply() {
    let server = TestServer::start();
    let r = client(&server, Protocol::Resp3);
    let id = client_id(&r).await;
    let (ok, gave_up) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut tasks = Vec::new();
    for t in 0..200u64 {
        let (r, ok, gave_up) = (r.clone(), Arc::clone(&ok), Arc::clone(&gave_up));
        tasks.push(tokio::spawn(async move {
            let mut rng = XorShift(t * 7919 + 1);
            let key = format!("mine:{t}");
            let value = format!("value of {t}");
            r.set(&key, &value).await.unwrap();
            for _ in 0..200 {
                // Timeouts of 0 to 2 ms drop the future at every stage: before the write,
                // after it, while the reply is on its way.
                let wait = Duration::from_micros(rng.below(2_000));
                match tokio::time::timeout(wait, r.get(&key)).await {
                    Ok(reply) => {
                        assert_eq!(
                            reply.unwrap().as_deref(),
                            Some(value.as_bytes()),
                            "task {t}"
                        );
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        gave_up.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (ok, gave_up) = (ok.load(Ordering::Relaxed), gave_up.load(Ordering::Relaxed));
    assert!(
        ok > 0 && gave_up > 0,
        "both outcomes must occur: {ok} ok, {gave_up} gave up"
    );
    // Giving up is not a failure: the same connection keeps serving.
    assert_eq!(client_id(&r).await, id);
    assert_eq!(
        r.get("mine:7").await.unwrap().as_deref(),
        Some(&b"value of 7"[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_fails_every_waiting_caller_and_later_calls_reconnect() {
    let mut server = TestServer::start();
    let r = Redis::from_info(
        ConnectionInfo::tcp("127.0.0.1", server.port()).with_timeout(Some(Duration::from_secs(2))),
    );
    r.set("k", "v").await.unwrap();
    let failed = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (r, failed) = (r.clone(), Arc::clone(&failed));
        tasks.push(tokio::spawn(async move {
            // Loops until the server goes away; then this caller must get an error.
            loop {
                match r.get("k").await {
                    Ok(v) => assert_eq!(v.as_deref(), Some(&b"v"[..])),
                    Err(e) => {
                        assert!(
                            matches!(
                                e,
                                Error::ConnectionLost(_)
                                    | Error::ConnectionBroken
                                    | Error::Connect { .. }
                            ),
                            "{e:?}"
                        );
                        failed.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let killed = Instant::now();
    tokio::task::block_in_place(|| server.stop());
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(3), t)
            .await
            .expect("a waiting caller was left hanging")
            .unwrap();
    }
    assert_eq!(failed.load(Ordering::Relaxed), 100);
    assert!(killed.elapsed() < Duration::from_secs(3));

    tokio::task::block_in_place(|| server.restart());
    // Reconnects on next use; attempts made during the backoff fail fast.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match r.set("after", "restart").await {
            Ok(stored) => {
                assert!(stored);
                break;
            }
            Err(e) if Instant::now() < deadline => {
                assert!(
                    matches!(e, Error::Connect { .. } | Error::ConnectionBroken),
                    "{e:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("no reconnect after restart: {e:?}"),
        }
    }
    assert_eq!(
        r.get("after").await.unwrap().as_deref(),
        Some(&b"restart"[..])
    );
}

fn mux(fake: &FakeServer, read_timeout: Duration) -> Multiplexed {
    Multiplexed::new(ConnectionInfo::tcp("127.0.0.1", fake.port()).with_timeout(Some(read_timeout)))
}

const GET: &[u8] = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";

#[tokio::test]
async fn extra_replies_are_out_of_step() {
    let fake = FakeServer::start(|mut c: FakeConn| {
        while c.read_request().is_some() {
            c.write(b"$2\r\nok\r\n$5\r\nextra\r\n");
        }
    });
    let m = mux(&fake, Duration::from_millis(500));
    let r = m.request(GET.into(), ReplyTimeout::Default).await;
    assert!(matches!(r, Err(ConnError::OutOfStep(_))), "{r:?}");
    // The next call gets a fresh connection, and the same verdict.
    let r = m.request(GET.into(), ReplyTimeout::Default).await;
    assert!(matches!(r, Err(ConnError::OutOfStep(_))), "{r:?}");
    assert_eq!(fake.accepted(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drip_fed_reply_times_out_every_waiting_caller_at_the_read_timeout() {
    let fake = FakeServer::start(|mut c: FakeConn| {
        if c.read_request().is_some() {
            for b in b"$100\r\n".iter().chain([b'x'; 100].iter()) {
                c.write(&[*b]);
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    });
    let m = mux(&fake, Duration::from_millis(300));
    let start = Instant::now();
    let mut calls = Vec::new();
    for _ in 0..10 {
        let m = m.clone();
        calls.push(tokio::spawn(async move {
            m.request(GET.into(), ReplyTimeout::Default).await
        }));
    }
    for c in calls {
        let r = c.await.unwrap();
        assert!(matches!(r, Err(ConnError::Timeout)), "{r:?}");
    }
    assert!(
        start.elapsed() < Duration::from_millis(1000),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn an_endless_reply_is_a_protocol_error_not_a_wait() {
    let fake = FakeServer::start(|mut c: FakeConn| {
        if c.read_request().is_some() {
            // Declares far more than the decoder's limit, then streams filler.
            c.write(b"$99999999999\r\n");
            c.write_repeated(b'x', 64 << 20);
        }
    });
    let m = mux(&fake, Duration::from_secs(2));
    let start = Instant::now();
    let r = m.request(GET.into(), ReplyTimeout::Default).await;
    assert!(matches!(r, Err(ConnError::Protocol(_))), "{r:?}");
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn a_resp2_connection_refuses_a_resp3_frame_at_once() {
    // A map to a connection whose handshake sent no HELLO: no RESP2 server sends one.
    let fake = FakeServer::start(|mut c: FakeConn| {
        if c.read_request().is_some() {
            c.write(b"%1\r\n");
            c.hold(Duration::from_secs(5));
        }
    });
    let m = mux(&fake, Duration::from_secs(2));
    let start = Instant::now();
    let r = m.request(GET.into(), ReplyTimeout::Default).await;
    assert!(
        matches!(&r, Err(ConnError::Protocol(p)) if *p.kind() == resp_proto::ProtocolErrorKind::InvalidTypeByte(b'%')),
        "{r:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn resp3_pushes_go_to_the_push_channel_never_to_a_caller() {
    let fake = FakeServer::start(|mut c: FakeConn| {
        if c.read_request().is_some() {
            c.write(b"%1\r\n$5\r\nproto\r\n:3\r\n");
        }
        while c.read_request().is_some() {
            c.write(b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n$5\r\nvalue\r\n");
        }
    });
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let m = Multiplexed::with_pushes(
        ConnectionInfo::tcp("127.0.0.1", fake.port()).with_protocol(Protocol::Resp3),
        tx,
    );
    let v = m.request(GET.into(), ReplyTimeout::Default).await.unwrap();
    assert_eq!(v, Value::BulkString("value".into()));
    let push = rx.recv().await.unwrap();
    assert!(matches!(push, Value::Push(items) if items.len() == 3));
}

#[tokio::test(flavor = "current_thread")]
async fn a_resp3_push_while_the_connection_is_idle_is_kept_and_the_connection_stays() {
    // A push (an invalidation) reaches the connection while nothing is owed and the runtime
    // is too busy to read it: the look before the next request finds bytes, but on RESP3
    // they may be a push, so they are read and judged first, and the request goes on the
    // same connection.
    let socket = std::sync::Arc::new(std::sync::Mutex::new(None));
    let slot = socket.clone();
    let fake = FakeServer::start(move |mut c: FakeConn| {
        // The handshake is answered inside (HELLO and PING).
        while c.read_request_resp3().is_some() {
            *slot.lock().unwrap() = Some(c.writer());
            c.write(b"$5\r\nvalue\r\n");
        }
    });
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let m = Multiplexed::with_pushes(
        ConnectionInfo::tcp("127.0.0.1", fake.port()).with_protocol(Protocol::Resp3),
        tx,
    );
    for _ in 0..5 {
        let v = m.request(GET.into(), ReplyTimeout::Default).await.unwrap();
        assert_eq!(v, Value::BulkString("value".into()));
        let mut s = socket
            .lock()
            .unwrap()
            .take()
            .expect("a connection answered");
        std::io::Write::write_all(&mut s, b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n").unwrap();
        // Busy: the push is in the socket, the reactor has not been asked.
        std::thread::sleep(Duration::from_millis(30));
    }
    assert_eq!(fake.accepted(), 1, "one connection for every request");
    for _ in 0..4 {
        let push = tokio::time::timeout(Duration::from_secs(1), rx.recv()).await;
        assert!(matches!(push, Ok(Some(Value::Push(_)))), "{push:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_are_pipelined_not_sent_one_round_trip_at_a_time() {
    let server = TestServer::start();
    let proxy = FaultProxy::start(server.port());
    let r = Redis::from_info(ConnectionInfo::tcp("127.0.0.1", proxy.port()));
    r.set("k", "v").await.unwrap();
    // Every chunk crossing the proxy now waits 100 ms: 50 requests sent one round trip at
    // a time would take 10 s; written together and answered together, a few chunks.
    proxy.delay(Duration::from_millis(100));
    let start = Instant::now();
    let calls: Vec<_> = (0..50).map(|_| r.get("k")).collect();
    for reply in join_all(calls).await {
        assert_eq!(reply.unwrap().as_deref(), Some(&b"v"[..]));
    }
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

/// Polls every future to completion together (no futures crate needed for this).
async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, o) in futures.iter_mut().zip(out.iter_mut()) {
            if o.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *o = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|o| o.expect("completed")).collect()
}

#[tokio::test]
async fn a_request_announcing_no_replies_is_refused_unsent() {
    let server = TestServer::start();
    let m = Multiplexed::new(ConnectionInfo::tcp("127.0.0.1", server.port()));
    let subscribe = b"*2\r\n$9\r\nSUBSCRIBE\r\n$2\r\nch\r\n";
    // Accepted, it would never be answered: bounded so that the test fails, not hangs.
    let r = tokio::time::timeout(
        Duration::from_secs(2),
        m.send(subscribe[..].into(), 0, ReplyTimeout::Default),
    )
    .await
    .expect("refused at once");
    assert!(matches!(r, Err(ConnError::Unsupported(_))), "{r:?}");
    // Announced with a reply, the core refuses it too: SUBSCRIBE is answered by pushes.
    let r = m.send(subscribe[..].into(), 1, ReplyTimeout::Default).await;
    assert!(matches!(r, Err(ConnError::Unsupported(_))), "{r:?}");
    assert_eq!(
        m.request(GET.into(), ReplyTimeout::Default).await.unwrap(),
        Value::Nil,
        "the connection still answers commands"
    );
}

/// A hostile reply, scripted: what the fake server answers the first command with.
fn hostile(reply: &'static [u8], drip: bool) -> FakeServer {
    FakeServer::start(move |mut c: FakeConn| {
        if c.read_request().is_none() {
            return;
        }
        if drip {
            for b in reply {
                c.write(&[*b]);
                std::thread::sleep(Duration::from_millis(50));
            }
        } else {
            c.write(reply);
        }
        c.hold(Duration::from_secs(5));
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_replies_give_the_blocking_clients_errors_in_the_same_time() {
    let read_timeout = Duration::from_millis(300);
    // (reply, dripped, the error kind both clients must give)
    let cases: [(&'static [u8], bool, redis_client::ErrorKind); 3] = [
        (
            b"$100\r\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            true,
            redis_client::ErrorKind::Timeout,
        ),
        (
            b"$99999999999\r\n",
            false,
            redis_client::ErrorKind::Protocol,
        ),
        (
            b"$2\r\nok\r\n$5\r\nextra\r\n",
            false,
            redis_client::ErrorKind::Protocol,
        ),
    ];
    for (reply, drip, kind) in cases {
        let info = |fake: &FakeServer| {
            ConnectionInfo::tcp("127.0.0.1", fake.port()).with_timeout(Some(read_timeout))
        };
        let fake = hostile(reply, drip);
        let sync = redis_client::Redis::from_info(info(&fake))
            .with_retry_policy(redis_client::RetryPolicy::none());
        let start = Instant::now();
        let sync_error = tokio::task::block_in_place(|| sync.get("k")).unwrap_err();
        let sync_time = start.elapsed();

        let fake = hostile(reply, drip);
        // The same policy as the blocking client's: one attempt each, compared like for
        // like (with retries, each new connection waits on the fake's thread start-up).
        let r = Redis::from_info(info(&fake)).with_retry_policy(redis_client::RetryPolicy::none());
        let start = Instant::now();
        let async_error = r.get("k").await.unwrap_err();
        let async_time = start.elapsed();

        assert_eq!(sync_error.kind(), kind, "blocking: {sync_error:?}");
        assert_eq!(async_error.kind(), kind, "async: {async_error:?}");
        assert!(
            async_time < sync_time + Duration::from_millis(200),
            "{reply:?}: async {async_time:?}, blocking {sync_time:?}"
        );
        assert!(
            async_time < read_timeout + Duration::from_millis(300),
            "{async_time:?}"
        );
    }
}

/// A reply that never ends, sent as fast as the client reads: `header`, then `element`
/// over and over (up to 64 MiB, or until the client goes away).
fn endless(header: &'static [u8], element: &'static [u8]) -> FakeServer {
    FakeServer::start(move |mut c: FakeConn| {
        if c.read_request_resp3().is_none() {
            return;
        }
        c.write(header);
        if element.len() == 1 {
            c.write_repeated(element[0], 64 << 20);
        } else {
            let chunk = element.repeat(4096);
            for _ in 0..(64 << 20) / chunk.len() {
                c.write(&chunk);
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_replies_give_the_blocking_clients_errors_in_the_same_time() {
    // The reply bound is 1 MiB, so each is refused after about that much.
    let limits = resp_proto::Limits {
        max_reply_bytes: 1 << 20,
        ..resp_proto::Limits::default()
    };
    let info = |fake: &FakeServer| {
        ConnectionInfo::tcp("127.0.0.1", fake.port())
            .with_protocol(Protocol::Resp3)
            .with_timeout(Some(Duration::from_secs(5)))
            .with_limits(limits)
    };
    // A status line that never ends, a streamed array and a streamed string that never
    // end (RESP3's `*?` and `$?`, so both clients speak RESP3).
    let cases: [(&'static [u8], &'static [u8]); 3] = [
        (b"+", b"a"),
        (b"*?\r\n", b":1\r\n"),
        (b"$?\r\n", b";1\r\nx\r\n"),
    ];
    for (header, element) in cases {
        let fake = endless(header, element);
        let sync = redis_client::Redis::from_info(info(&fake))
            .with_retry_policy(redis_client::RetryPolicy::none());
        let start = Instant::now();
        let sync_error = tokio::task::block_in_place(|| sync.get("k")).unwrap_err();
        let sync_time = start.elapsed();

        let fake = endless(header, element);
        let r = Redis::from_info(info(&fake)).with_retry_policy(redis_client::RetryPolicy::none());
        let start = Instant::now();
        let async_error = r.get("k").await.unwrap_err();
        let async_time = start.elapsed();

        // The same protocol error kind (line too long, reply too long) from both.
        let kind = |e: &Error| match e {
            Error::Protocol(p) => std::mem::discriminant(p.kind()),
            other => panic!("expected a protocol error, got {other:?}"),
        };
        assert_eq!(
            kind(&async_error),
            kind(&sync_error),
            "{async_error:?} / {sync_error:?}"
        );
        // Both within the blocking suite's bound for these replies (hostile.rs).
        for took in [sync_time, async_time] {
            assert!(
                took < Duration::from_secs(3),
                "{header:?}: async {async_time:?}, blocking {sync_time:?}"
            );
        }
    }
}

/// `SET key value`, encoded.
fn set_request(key: &str, value: &[u8]) -> bytes::Bytes {
    let mut out = format!(
        "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n",
        key.len(),
        value.len()
    )
    .into_bytes();
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
    out.into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_given_up_before_they_are_written_are_never_sent() {
    let server = TestServer::start();
    let proxy = FaultProxy::start(server.port());
    let m = Multiplexed::new(ConnectionInfo::tcp("127.0.0.1", proxy.port()));
    m.connect().await.unwrap();
    // The proxy stops reading: a 32 MiB SET fills the socket buffers and holds the writer
    // in its write.
    proxy.stall();
    let big = {
        let m = m.clone();
        let request = set_request("big", &vec![b'x'; 32 << 20]);
        tokio::spawn(async move { m.request(request, ReplyTimeout::Default).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    // These wait behind it, unwritten, when their callers give up.
    for i in 0..20 {
        let request = set_request(&format!("gave-up:{i}"), b"1");
        let r = tokio::time::timeout(
            Duration::from_millis(5),
            m.request(request, ReplyTimeout::Default),
        )
        .await;
        assert!(r.is_err(), "nothing can be written yet");
    }
    // One whose caller waits is sent once the writer can go on.
    let kept = {
        let m = m.clone();
        let request = set_request("kept", b"1");
        tokio::spawn(async move { m.request(request, ReplyTimeout::Default).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    proxy.resume();
    assert_eq!(
        big.await.unwrap().unwrap(),
        Value::SimpleString("OK".into())
    );
    assert_eq!(
        kept.await.unwrap().unwrap(),
        Value::SimpleString("OK".into())
    );
    for i in 0..20 {
        assert_eq!(
            server.raw(&["EXISTS", &format!("gave-up:{i}")]),
            ":0",
            "a request given up before it was written was sent"
        );
    }
    assert_eq!(server.raw(&["EXISTS", "kept"]), ":1");
}

#[tokio::test]
async fn reconnect_attempts_back_off_while_the_server_refuses() {
    // Every connection is accepted and closed at once: each attempt fails its handshake.
    let fake = FakeServer::closing();
    let m = Multiplexed::new(ConnectionInfo::tcp("127.0.0.1", fake.port()));
    let start = Instant::now();
    let (mut calls, mut refused_at_once) = (0, 0);
    while start.elapsed() < Duration::from_millis(300) {
        let e = m
            .request(bytes::Bytes::from_static(GET), ReplyTimeout::Default)
            .await
            .unwrap_err();
        if matches!(&e, ConnError::Connect { source, .. } if source.to_string().contains("next attempt"))
        {
            refused_at_once += 1;
        }
        calls += 1;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let attempts = fake.accepted();
    // Waits of 10, 20, 40, 80 and 160 ms after the failures: 5 or 6 attempts in 300 ms
    // (a few more allowed for a slow machine's timing), where one per call would be
    // about as many as the calls.
    assert!(calls >= 30, "{calls} calls");
    assert!(
        (2..=8).contains(&attempts),
        "{attempts} connection attempts from {calls} calls"
    );
    assert_eq!(
        refused_at_once + attempts,
        calls,
        "the other calls failed at once"
    );
}

/// A connector that reaches nothing, and says where it tried.
#[derive(Debug)]
struct Unreachable;

impl redis_client::redis_conn::aio::Connector for Unreachable {
    fn connect<'a>(
        &'a self,
        _: &'a redis_client::redis_conn::aio::Dialer,
        _: Option<Instant>,
    ) -> redis_client::redis_conn::aio::BoxFuture<
        'a,
        Result<redis_client::redis_conn::aio::Opened, ConnError>,
    > {
        Box::pin(async {
            Err(ConnError::Connect {
                addr: "primary of \"svc\"".into(),
                source: std::io::Error::other("down"),
            })
        })
    }
}

/// A connection opened through a connector, whose settings' address is only a
/// placeholder, names where its last attempt went when the backoff refuses the next.
#[tokio::test]
async fn a_refused_reconnect_names_where_the_connector_tried() {
    let m = Multiplexed::with_connector(ConnectionInfo::tcp("", 0), Arc::new(Unreachable));
    let first = m
        .request(GET.into(), ReplyTimeout::Default)
        .await
        .unwrap_err();
    assert!(first.to_string().contains("primary of \"svc\""), "{first}");
    let refused = m
        .request(GET.into(), ReplyTimeout::Default)
        .await
        .unwrap_err();
    let text = refused.to_string();
    assert!(text.contains("next attempt in"), "{text}");
    assert!(text.contains("primary of \"svc\""), "{text}");
}
