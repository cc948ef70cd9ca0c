//! One connection against real servers: TCP and Unix sockets, the handshake (AUTH, ACL
//! users, HELLO 3, SELECT, CLIENT SETNAME), timeouts, and a user-defined transport.

use redis_client::Value;
use redis_conn::{Connection, ConnectionInfo, Error, Protocol, ReplyTimeout};
use redis_tests::{ServerConfig, TestServer};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "../../crates/redis-conn/examples/counting_transport.rs"]
#[allow(dead_code)] // The example's `main` is not used here.
mod counting_transport;

const PROTOCOLS: [Protocol; 2] = [Protocol::Resp2, Protocol::Resp3];

fn tcp(server: &TestServer) -> ConnectionInfo {
    ConnectionInfo::tcp("127.0.0.1", server.port())
}

fn bulk(v: &str) -> Value {
    Value::BulkString(v.as_bytes().to_vec().into())
}

/// A string reply as text, whichever RESP type carried it.
fn text(v: &Value) -> String {
    match v {
        Value::SimpleString(b) | Value::BulkString(b) | Value::Verbatim { text: b, .. } => {
            String::from_utf8_lossy(b).into_owned()
        }
        other => panic!("not a string reply: {other:?}"),
    }
}

/// A peer that accepts connections and never says a word; it keeps every accepted socket
/// open until dropped.
struct SilentServer {
    port: u16,
    held: Arc<Mutex<Vec<TcpStream>>>,
}

impl SilentServer {
    fn start() -> SilentServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let held = Arc::new(Mutex::new(Vec::new()));
        let keep = Arc::clone(&held);
        // The thread ends with the test process; it only accepts.
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                keep.lock().unwrap().push(stream);
            }
        });
        SilentServer { port, held }
    }

    fn info(&self) -> ConnectionInfo {
        ConnectionInfo::tcp("127.0.0.1", self.port)
    }

    fn accepted(&self) -> usize {
        self.held.lock().unwrap().len()
    }

    /// A connection to it with no handshake.
    fn connect_raw(&self, info: ConnectionInfo) -> Connection {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        Connection::from_transport(Box::new(stream), &info)
    }
}

#[test]
fn tcp_set_get_over_both_protocols() {
    let server = TestServer::start();
    for protocol in PROTOCOLS {
        let mut conn = Connection::open(&tcp(&server).with_protocol(protocol)).unwrap();
        assert_eq!(conn.protocol(), protocol);
        assert!(!conn.is_broken());
        conn.command(&["SET", "k", "v"]).unwrap();
        assert_eq!(conn.command(&["GET", "k"]).unwrap(), bulk("v"));
        assert_eq!(conn.command(&["GET", "missing"]).unwrap(), Value::Nil);
        assert_eq!(conn.pending_replies(), 0);
        // A server error is typed and leaves the connection usable.
        let err = conn.command(&["INCR", "k"]).unwrap_err();
        assert!(matches!(err, Error::Server(_)), "{err:?}");
        assert!(!conn.is_broken());
        assert_eq!(
            conn.command(&["ECHO", "still here"]).unwrap(),
            bulk("still here")
        );
    }
}

#[test]
fn unix_socket_by_info_and_url() {
    let server = ServerConfig::default().unix_socket().start();
    let mut conn = Connection::open(&ConnectionInfo::unix(server.socket_path())).unwrap();
    conn.command(&["SET", "k", "unix"]).unwrap();
    assert_eq!(conn.command(&["GET", "k"]).unwrap(), bulk("unix"));

    for scheme in ["unix://", "redis+unix://"] {
        let url = format!("{scheme}{}?db=4&protocol=3", server.socket_path().display());
        let mut conn = Connection::open(&url.parse().unwrap()).unwrap();
        assert_eq!((conn.db(), conn.protocol()), (4, Protocol::Resp3));
        assert_eq!(conn.command(&["GET", "k"]).unwrap(), Value::Nil);
    }
}

#[test]
fn requirepass_auth_over_both_protocols() {
    let server = ServerConfig::default().password("s3cret").start();
    for protocol in PROTOCOLS {
        let info = tcp(&server)
            .with_auth(None, "s3cret")
            .with_protocol(protocol);
        let mut conn = Connection::open(&info).unwrap();
        assert_eq!(text(&conn.command(&["PING"]).unwrap()), "PONG");
        // Also from a URL, with the password percent-encoded as it may need to be.
        let url = format!("redis://:s3%63ret@127.0.0.1:{}/0", server.port());
        let mut conn = Connection::open(&url.parse().unwrap()).unwrap();
        assert_eq!(text(&conn.command(&["PING"]).unwrap()), "PONG");
    }
    // Without credentials the handshake's closing PING is refused with the
    // authentication error, so opening fails at once rather than on first use.
    let err = Connection::open(&tcp(&server)).unwrap_err();
    assert!(matches!(err, Error::Auth(_)), "{err:?}");
    // The client facade reports it the same way.
    let client = redis_client::Redis::from_info(tcp(&server));
    let err = client.execute_command("PING").unwrap_err();
    assert!(matches!(err, redis_client::Error::Auth(_)), "{err:?}");
}

#[test]
fn acl_user_auth_over_both_protocols() {
    let server = ServerConfig::default()
        .acl_user("alice", "p@ss:w/rd")
        .start();
    for protocol in PROTOCOLS {
        let info = tcp(&server)
            .with_auth(Some("alice"), "p@ss:w/rd")
            .with_protocol(protocol);
        let mut conn = Connection::open(&info).unwrap();
        assert_eq!(text(&conn.command(&["ACL", "WHOAMI"]).unwrap()), "alice");
    }
    let url = format!("redis://alice:p%40ss%3Aw%2Frd@127.0.0.1:{}", server.port());
    let mut conn = Connection::open(&url.parse().unwrap()).unwrap();
    assert_eq!(text(&conn.command(&["ACL", "WHOAMI"]).unwrap()), "alice");
}

#[test]
fn wrong_credentials_give_the_auth_error() {
    let server = ServerConfig::default()
        .password("s3cret")
        .acl_user("alice", "pw")
        .start();
    let attempts = [
        (None, "guess42"),
        (Some("alice"), "guess42"),
        (Some("nobody"), "guess42"),
    ];
    for protocol in PROTOCOLS {
        for (user, pass) in attempts {
            let info = tcp(&server).with_auth(user, pass).with_protocol(protocol);
            let err = Connection::open(&info).unwrap_err();
            assert!(
                matches!(err, Error::Auth(_)),
                "{protocol:?} {user:?}: {err:?}"
            );
            // The message is the server's; it never repeats the password we sent.
            assert!(!format!("{err} {err:?}").contains(pass), "{err}");
            assert!(!err.is_retryable() && !err.is_connection_lost());
        }
    }
    // A password sent to a server that requires none is refused as an auth error too.
    let open = TestServer::start();
    let err = Connection::open(&tcp(&open).with_auth(None, "pw")).unwrap_err();
    assert!(matches!(err, Error::Auth(_)), "{err:?}");
}

#[test]
fn two_databases_see_different_keys() {
    let server = TestServer::start();
    let mut one = Connection::open(&tcp(&server).with_db(1)).unwrap();
    let mut two = Connection::open(&format!("{}?db=2", server.url()).parse().unwrap()).unwrap();
    assert_eq!((one.db(), two.db()), (1, 2));
    one.command(&["SET", "k", "in-1"]).unwrap();
    two.command(&["SET", "k", "in-2"]).unwrap();
    assert_eq!(one.command(&["GET", "k"]).unwrap(), bulk("in-1"));
    assert_eq!(two.command(&["GET", "k"]).unwrap(), bulk("in-2"));
    assert_eq!(server.raw(&["EXISTS", "k"]), ":0");

    // A dedicated connection may switch databases itself.
    let mut dedicated = Connection::open(&tcp(&server)).unwrap();
    dedicated.select(2).unwrap();
    assert_eq!(dedicated.db(), 2);
    assert_eq!(dedicated.command(&["GET", "k"]).unwrap(), bulk("in-2"));
    let err = dedicated.select(100_000).unwrap_err();
    assert!(matches!(err, Error::Server(_)), "{err:?}");
    assert_eq!(dedicated.db(), 2);
}

#[test]
fn handshake_sets_name_and_protocol() {
    let server = TestServer::start();
    for protocol in PROTOCOLS {
        let info = tcp(&server)
            .with_client_name("conn-test")
            .with_db(3)
            .with_protocol(protocol);
        let mut conn = Connection::open(&info).unwrap();
        assert_eq!(
            text(&conn.command(&["CLIENT", "GETNAME"]).unwrap()),
            "conn-test"
        );
        let info = text(&conn.command(&["CLIENT", "INFO"]).unwrap());
        let resp = if protocol == Protocol::Resp3 { 3 } else { 2 };
        assert!(info.contains(&format!("resp={resp}")), "{info}");
        assert!(info.contains("db=3"), "{info}");
    }
}

#[test]
fn closed_port_fails_fast_with_connect_error() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let started = Instant::now();
    let err = Connection::open(&ConnectionInfo::tcp("127.0.0.1", port)).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    match &err {
        Error::Connect { addr, .. } => assert_eq!(addr, &format!("127.0.0.1:{port}")),
        other => panic!("{other:?}"),
    }
    assert!(err.is_retryable());
    assert!(
        err.to_string().starts_with("cannot connect to 127.0.0.1:"),
        "{err}"
    );
}

#[test]
fn silent_peer_cannot_hang_the_handshake() {
    let silent = SilentServer::start();
    let timeout = Duration::from_millis(300);
    let setups = [
        silent.info().with_auth(None, "pw"),
        silent.info().with_protocol(Protocol::Resp3),
        silent.info().with_db(1),
    ];
    for info in setups {
        let info = info.with_connect_timeout(Some(timeout));
        let started = Instant::now();
        let err = Connection::open(&info).unwrap_err();
        let took = started.elapsed();
        assert!(matches!(err, Error::Timeout), "{err:?}");
        assert!(
            took >= timeout && took < timeout + Duration::from_millis(500),
            "{took:?}"
        );
    }
    assert_eq!(silent.accepted(), 3);
}

#[test]
fn read_timeout_breaks_the_connection() {
    // A silent peer, taken without a handshake (which it would not answer); the reply
    // never comes.
    let silent = SilentServer::start();
    let timeout = Duration::from_millis(200);
    let mut conn = silent.connect_raw(silent.info().with_read_timeout(Some(timeout)));
    let started = Instant::now();
    let err = conn.command(&["PING"]).unwrap_err();
    assert!(matches!(err, Error::Timeout), "{err:?}");
    assert!(started.elapsed() < timeout + Duration::from_millis(500));
    assert!(conn.is_broken());
    assert!(matches!(conn.command(&["PING"]), Err(Error::Broken)));
    assert!(matches!(conn.read_reply(), Err(Error::Broken)));

    // A zero wait is a timeout at once, not an error from the socket.
    let mut conn = silent.connect_raw(silent.info());
    conn.send(&[b"*1\r\n$4\r\nPING\r\n"], 1).unwrap();
    let err = conn
        .read_reply_timeout(ReplyTimeout::Exactly(Some(Duration::ZERO)))
        .unwrap_err();
    assert!(matches!(err, Error::Timeout), "{err:?}");
    assert!(conn.is_broken());

    // A real server holding a blocking command's reply trips it the same way.
    let server = TestServer::start();
    let mut conn = Connection::open(&tcp(&server).with_timeout(Some(timeout))).unwrap();
    let err = conn.command(&["BLPOP", "empty", "0"]).unwrap_err();
    assert!(
        matches!(err, Error::Timeout) && err.is_connection_lost(),
        "{err:?}"
    );
    assert!(conn.is_broken());
}

#[test]
fn server_going_away_is_connection_lost() {
    let mut server = TestServer::start();
    let mut conn = Connection::open(&tcp(&server)).unwrap();
    assert_eq!(text(&conn.command(&["PING"]).unwrap()), "PONG");
    server.stop();
    let err = conn.command(&["PING"]).unwrap_err();
    assert!(err.is_connection_lost(), "{err:?}");
    assert!(conn.is_broken());
}

#[test]
fn batches_and_large_values_cross_buffer_boundaries() {
    let server = TestServer::start();
    for protocol in PROTOCOLS {
        let mut conn = Connection::open(&tcp(&server).with_protocol(protocol)).unwrap();
        conn.command(&["DEL", "n"]).unwrap();
        // 20,000 replies in one batch: many buffer refills with a reply split across them.
        let mut batch = Vec::new();
        let incr = b"*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n";
        for _ in 0..20_000 {
            batch.extend_from_slice(incr);
        }
        conn.send(&[&batch], 20_000).unwrap();
        for i in 1..=20_000 {
            assert_eq!(conn.read_reply().unwrap(), Value::Integer(i));
        }
        // Values from empty to 5 MB, each read back byte for byte.
        for size in [0, 1, 4095, 16 * 1024, 100_000, 5 << 20] {
            let value: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            conn.command(&[&b"SET"[..], b"big", &value]).unwrap();
            match conn.command(&["GET", "big"]).unwrap() {
                Value::BulkString(got) => assert!(got[..] == value[..], "size {size}"),
                other => panic!("{other:?}"),
            }
        }
    }
}

#[test]
fn send_in_parts_is_one_request() {
    let server = TestServer::start();
    let mut conn = Connection::open(&tcp(&server)).unwrap();
    conn.send(
        &[b"*3\r\n$3\r\nSET\r\n", b"$1\r\nk\r\n", b"$2\r\nok\r\n"],
        1,
    )
    .unwrap();
    assert_eq!(conn.pending_replies(), 1);
    assert_eq!(text(&conn.read_reply().unwrap()), "OK");
    assert_eq!(conn.pending_replies(), 0);
    assert_eq!(conn.command(&["GET", "k"]).unwrap(), bulk("ok"));
    conn.ping(Some(Duration::from_secs(1))).unwrap();
}

#[test]
fn custom_transport_counts_bytes() {
    use counting_transport::CountingConnector;
    use redis_conn::{ConnectionPool, PoolOptions};

    let server = TestServer::start();
    let connector = CountingConnector::new(tcp(&server));
    let counters = connector.counters();

    // Without credentials, db or name the handshake is its closing PING alone:
    // "*1\r\n$4\r\nPING\r\n" (14) out, "+PONG\r\n" (7) in.
    let mut conn = Connection::open_with(&connector).unwrap();
    assert_eq!(counters.snapshot(), (7, 14, 1));
    assert_eq!(text(&conn.command(&["PING"]).unwrap()), "PONG");
    assert_eq!(counters.snapshot(), (14, 28, 1));
    conn.command(&["SET", "k", "v"]).unwrap();
    // "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n" (27) out, "+OK\r\n" in.
    assert_eq!(counters.snapshot(), (14 + 5, 28 + 27, 1));
    drop(conn);

    // The pool is built with the connector and opens its connections through it.
    let pool = ConnectionPool::with_connector(connector, PoolOptions::default().with_max_size(2));
    let mut a = pool.get().unwrap();
    let mut b = pool.get().unwrap();
    assert_eq!(a.command(&["GET", "k"]).unwrap(), bulk("v"));
    assert_eq!(b.command(&["GET", "k"]).unwrap(), bulk("v"));
    let (bytes_in, bytes_out, opened) = counters.snapshot();
    assert_eq!(opened, 3);
    // Two handshakes, then "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n" (20) out and "$1\r\nv\r\n" (7)
    // in, twice.
    assert_eq!((bytes_in, bytes_out), (19 + 2 * 7 + 14, 55 + 2 * 14 + 40));
}

#[test]
fn password_is_never_shown() {
    let server = ServerConfig::default().password("s3cret").start();
    let info = tcp(&server).with_auth(Some("default"), "s3cret");
    let pool = redis_conn::ConnectionPool::new(info.clone());
    let conn = pool.get().unwrap();
    let client = redis_client::Redis::from_pool(pool.clone());
    let shown = [
        format!("{info:?}"),
        info.to_string(),
        format!("{pool:?}"),
        format!("{conn:?}"),
        format!("{client:?}"),
        format!("{:?}", Connection::open(&info).unwrap()),
    ];
    for s in shown {
        assert!(!s.contains("s3cret"), "{s}");
    }
    let wrong = tcp(&server).with_auth(None, "not-s3cret");
    let err = Connection::open(&wrong).unwrap_err();
    assert!(!format!("{err:?} {err}").contains("s3cret"), "{err:?}");
}
