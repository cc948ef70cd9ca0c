//! The multiplexed connection against a hostile server: extra replies, drips and endless
//! replies give typed errors in bounded time to every waiting caller; RESP3 pushes never
//! reach a caller.

use redis_conn::aio::Multiplexed;
use redis_conn::{ConnectionInfo, Error, Protocol, ReplyTimeout};
use redis_tests::{FakeConn, FakeServer};
use resp_proto::Value;
use std::time::{Duration, Instant};

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
    assert!(matches!(r, Err(Error::OutOfStep(_))), "{r:?}");
    // The next call gets a fresh connection, and the same verdict.
    let r = m.request(GET.into(), ReplyTimeout::Default).await;
    assert!(matches!(r, Err(Error::OutOfStep(_))), "{r:?}");
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
        assert!(matches!(r, Err(Error::Timeout)), "{r:?}");
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
    assert!(matches!(r, Err(Error::Protocol(_))), "{r:?}");
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
