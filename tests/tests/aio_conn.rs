//! The async connection: the same URLs, transports, handshake and one deadline as the
//! blocking one, driven by the same core; a call whose future was dropped part way
//! breaks the connection instead of leaving a reply for the next caller.

use redis_client::{ConnectionInfo, Protocol, ReplyTimeout, TlsOptions, Value};
use redis_conn::aio::Connection;
use redis_conn::{Error, Verdict};
use redis_tests::{FakeConn, FakeServer, FaultProxy, ServerConfig, TestServer};
use std::time::{Duration, Instant};

fn bulk(s: &str) -> Value {
    Value::BulkString(bytes::Bytes::copy_from_slice(s.as_bytes()))
}

#[tokio::test]
async fn tcp_url_with_db_and_both_protocols() {
    let server = TestServer::start();
    for protocol in [Protocol::Resp2, Protocol::Resp3] {
        let info: ConnectionInfo = format!("redis://127.0.0.1:{}/3", server.port())
            .parse::<ConnectionInfo>()
            .unwrap()
            .with_protocol(protocol);
        let mut conn = Connection::open(&info).await.unwrap();
        assert_eq!(conn.protocol(), protocol);
        assert_eq!(
            conn.state().db,
            3,
            "the handshake selected the URL's database"
        );
        conn.command(&["SET", "in-3", "yes"]).await.unwrap();
        assert_eq!(conn.command(&["GET", "in-3"]).await.unwrap(), bulk("yes"));
        let client = match conn.command(&["CLIENT", "INFO"]).await.unwrap() {
            Value::BulkString(b) | Value::Verbatim { text: b, .. } => b,
            other => panic!("CLIENT INFO gave {other:?}"),
        };
        assert!(String::from_utf8_lossy(&client).contains(" db=3 "));
        assert_eq!(conn.verdict(), Verdict::Reuse);
    }
}

#[tokio::test]
async fn unix_socket_and_password() {
    let server = ServerConfig::default()
        .unix_socket()
        .password("s3cret")
        .start();
    let info = ConnectionInfo::unix(server.socket_path()).with_auth(None, "s3cret");
    let mut conn = Connection::open(&info).await.unwrap();
    assert_eq!(
        conn.command(&["PING"]).await.unwrap(),
        Value::SimpleString("PONG".into())
    );

    let wrong = ConnectionInfo::unix(server.socket_path()).with_auth(None, "nope");
    assert!(matches!(
        Connection::open(&wrong).await,
        Err(Error::Auth(_))
    ));
}

#[tokio::test]
async fn tls_with_the_blocking_clients_options() {
    let server = ServerConfig::default().tls(false).start();
    let info = ConnectionInfo::tcp("127.0.0.1", server.tls_port())
        .with_tls(TlsOptions::default().with_ca_file(&server.certs().ca));
    let mut conn = Connection::open(&info).await.unwrap();
    conn.command(&["SET", "over-tls", "async"]).await.unwrap();
    assert_eq!(server.raw(&["GET", "over-tls"]), "async");

    // A server signed by another authority is refused at connect time.
    let untrusted = ConnectionInfo::tcp("127.0.0.1", server.tls_port())
        .with_tls(TlsOptions::default().with_ca_file(&server.certs().other_ca));
    assert!(matches!(
        Connection::open(&untrusted).await,
        Err(Error::Tls(_))
    ));
}

#[tokio::test]
async fn one_deadline_bounds_connect_and_a_trickled_handshake() {
    // Accepts, reads HELLO, then drips its answer a byte every 100 ms: each byte is
    // progress, but the handshake as a whole must end at the connect timeout.
    let fake = FakeServer::start(|mut c: FakeConn| {
        if c.read_request().is_some() {
            for b in b"%1\r\n$6\r\nserver\r\n$5\r\nredis\r\n" {
                c.write(&[*b]);
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    });
    let info = ConnectionInfo::tcp("127.0.0.1", fake.port())
        .with_protocol(Protocol::Resp3)
        .with_connect_timeout(Some(Duration::from_millis(400)));
    let start = Instant::now();
    let r = Connection::open(&info).await;
    assert!(matches!(r, Err(Error::Timeout)), "{r:?}");
    assert!(
        start.elapsed() < Duration::from_millis(900),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn reply_deadline_is_the_read_timeout() {
    let fake = FakeServer::start(|mut c: FakeConn| {
        while c.read_request().is_some() {
            c.hold(Duration::from_secs(5));
        }
    });
    let info = ConnectionInfo::tcp("127.0.0.1", fake.port())
        .with_read_timeout(Some(Duration::from_millis(200)));
    let mut conn = Connection::open(&info).await.unwrap();
    let start = Instant::now();
    assert!(matches!(
        conn.command(&["GET", "k"]).await,
        Err(Error::Timeout)
    ));
    assert!(start.elapsed() < Duration::from_millis(700));
    assert!(conn.is_broken());
    assert_eq!(conn.verdict(), Verdict::Close);
}

#[tokio::test]
async fn a_request_dropped_part_way_breaks_the_connection() {
    let server = TestServer::start();
    let info = ConnectionInfo::tcp("127.0.0.1", server.port());
    let mut conn = Connection::open(&info).await.unwrap();
    conn.command(&["SET", "a", "1"]).await.unwrap();
    // BLPOP holds its reply for a second: the timeout drops the future after the request
    // was written and before its reply came.
    let gave_up = tokio::time::timeout(
        Duration::from_millis(50),
        conn.command(&["BLPOP", "empty-list", "1"]),
    )
    .await;
    assert!(gave_up.is_err());
    assert_eq!(conn.verdict(), Verdict::Close, "a pool must not reuse it");
    // Without the break this would read BLPOP's nil as GET's reply.
    assert!(matches!(
        conn.command(&["GET", "a"]).await,
        Err(Error::Broken)
    ));
}

#[tokio::test]
async fn read_reply_is_cancel_safe() {
    let server = TestServer::start();
    let mut conn = Connection::open(&ConnectionInfo::tcp("127.0.0.1", server.port()))
        .await
        .unwrap();
    conn.send(
        &[b"*4\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n$1\r\nr\r\n$1\r\n1\r\n"],
        1,
        ReplyTimeout::Exactly(Some(Duration::from_secs(3))),
    )
    .await
    .unwrap();
    let early = tokio::time::timeout(
        Duration::from_millis(20),
        conn.read_reply(ReplyTimeout::Default),
    )
    .await;
    assert!(early.is_err(), "nothing to read yet");
    server.raw(&["RPUSH", "q", "job"]);
    let v = conn.read_reply(ReplyTimeout::Default).await.unwrap();
    assert_eq!(v, Value::Array(vec![bulk("q"), bulk("job")]));
    assert_eq!(conn.verdict(), Verdict::Reuse);
}

#[tokio::test]
async fn read_reply_dropped_with_half_a_reply_in_gives_the_whole_reply_next() {
    // The first half of GET's reply comes at once, the rest 150 ms later: reads given up
    // every millisecond in between must keep the half.
    let fake = FakeServer::start(|mut c: FakeConn| {
        if c.read_request().is_some() {
            c.write(b"$10\r\nhello");
            std::thread::sleep(Duration::from_millis(150));
            c.write(b"world\r\n");
        }
        while c.read_request().is_some() {
            c.write(b"+OK\r\n");
        }
    });
    let mut conn = Connection::open(&ConnectionInfo::tcp("127.0.0.1", fake.port()))
        .await
        .unwrap();
    conn.send(
        &[b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"],
        1,
        ReplyTimeout::Default,
    )
    .await
    .unwrap();
    let start = Instant::now();
    let mut dropped = 0;
    let v = loop {
        assert!(start.elapsed() < Duration::from_secs(3), "never whole");
        let read = conn.read_reply(ReplyTimeout::Default);
        match tokio::time::timeout(Duration::from_millis(1), read).await {
            Ok(r) => break r.unwrap(),
            Err(_) => dropped += 1,
        }
    };
    assert!(
        start.elapsed() >= Duration::from_millis(100),
        "the reply was whole only once its rest came"
    );
    assert!(dropped > 5, "reads were dropped while half of it was in");
    assert_eq!(v, bulk("helloworld"));
    assert_eq!(conn.verdict(), Verdict::Reuse);
    // Still in step.
    assert_eq!(
        conn.command(&["SET", "k", "v"]).await.unwrap(),
        Value::SimpleString("OK".into())
    );
}

#[tokio::test]
async fn read_push_dropped_with_half_a_message_in_gives_the_whole_message_next() {
    let fake = FakeServer::start(|mut c: FakeConn| {
        if c.read_request().is_some() {
            c.write(b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n");
            c.write(b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhel");
            std::thread::sleep(Duration::from_millis(150));
            c.write(b"lo\r\n*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nagain\r\n");
            c.hold(Duration::from_secs(5));
        }
    });
    let mut conn = Connection::open(&ConnectionInfo::tcp("127.0.0.1", fake.port()))
        .await
        .unwrap();
    conn.send(
        &[b"*2\r\n$9\r\nSUBSCRIBE\r\n$2\r\nch\r\n"],
        0,
        ReplyTimeout::Default,
    )
    .await
    .unwrap();
    let confirmation = conn.read_push(Some(Duration::from_secs(2))).await.unwrap();
    assert_eq!(
        confirmation,
        Some(Value::Array(vec![
            bulk("subscribe"),
            bulk("ch"),
            Value::Integer(1)
        ]))
    );
    let start = Instant::now();
    let mut dropped = 0;
    let v = loop {
        assert!(start.elapsed() < Duration::from_secs(3), "never whole");
        let read = conn.read_push(None);
        match tokio::time::timeout(Duration::from_millis(1), read).await {
            Ok(r) => break r.unwrap(),
            Err(_) => dropped += 1,
        }
    };
    assert!(start.elapsed() >= Duration::from_millis(100));
    assert!(dropped > 5, "reads were dropped while half of it was in");
    let message = |payload| {
        Some(Value::Array(vec![
            bulk("message"),
            bulk("ch"),
            bulk(payload),
        ]))
    };
    assert_eq!(v, message("hello"));
    let next = conn.read_push(Some(Duration::from_secs(2))).await.unwrap();
    assert_eq!(next, message("again"), "still in step");
}

#[tokio::test]
async fn a_read_after_a_send_dropped_part_way_fails_at_once() {
    let server = TestServer::start();
    let proxy = FaultProxy::start(server.port());
    let mut conn = Connection::open(&ConnectionInfo::tcp("127.0.0.1", proxy.port()))
        .await
        .unwrap();
    // The proxy stops reading: a request larger than the socket buffers is cut short part
    // way through its write.
    proxy.stall();
    let big = vec![b'x'; 32 << 20];
    let header = format!("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n${}\r\n", big.len());
    let parts: [&[u8]; 3] = [header.as_bytes(), &big, b"\r\n"];
    let send = conn.send(&parts, 1, ReplyTimeout::Default);
    assert!(tokio::time::timeout(Duration::from_millis(200), send)
        .await
        .is_err());
    proxy.resume();
    // The server waits for the rest of the request: a read would wait for a reply that
    // never comes.
    let start = Instant::now();
    assert!(matches!(
        conn.read_reply(ReplyTimeout::Default).await,
        Err(Error::Broken)
    ));
    assert!(matches!(conn.read_push(None).await, Err(Error::Broken)));
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(conn.verdict(), Verdict::Close);
}
