//! The async connection: the same URLs, transports, handshake and one deadline as the
//! blocking one, driven by the same core; a call whose future was dropped part way
//! breaks the connection instead of leaving a reply for the next caller.

use redis_client::{ConnectionInfo, Protocol, ReplyTimeout, TlsOptions, Value};
use redis_conn::aio::Connection;
use redis_conn::{Error, Verdict};
use redis_tests::{FakeConn, FakeServer, ServerConfig, TestServer};
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
