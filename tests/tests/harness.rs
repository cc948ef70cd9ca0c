//! The harness itself: servers start, answer, restart on the same port, and die on drop.

use redis_tests::{ServerConfig, TestServer};

#[test]
fn starts_answers_and_stops() {
    let mut server = TestServer::start();
    assert_eq!(server.raw(&["PING"]), "+PONG");
    assert!(
        server.version() >= (7, 0, 0),
        "Redis 7.0 or newer is required, found {:?}",
        server.version()
    );
    let port = server.port();
    server.stop();
    assert!(!server.is_running());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port still open after stop"
    );
    server.restart();
    assert_eq!(server.port(), port);
    assert_eq!(server.raw(&["PING"]), "+PONG");
}

#[test]
fn password_and_extra_config() {
    let server = ServerConfig::default()
        .password("pw")
        .line("maxmemory 10mb")
        .start();
    assert_eq!(server.raw(&["CONFIG", "GET", "requirepass"]), "*2");
    assert!(server.raw(&["SET", "a", "1"]).starts_with("+OK"));
}

#[test]
fn server_killed_on_drop() {
    let server = TestServer::start();
    let port = server.port();
    drop(server);
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn killed_on_panic() {
    let port = std::sync::Mutex::new(0);
    let result = std::panic::catch_unwind(|| {
        let server = TestServer::start();
        *port.lock().unwrap() = server.port();
        panic!("test failure");
    });
    assert!(result.is_err());
    let port = *port.lock().unwrap();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn proxy_forwards_and_cuts() {
    use std::io::{Read, Write};
    let server = TestServer::start();
    let proxy = redis_tests::FaultProxy::start(server.port());
    let mut s = std::net::TcpStream::connect(("127.0.0.1", proxy.port())).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    s.write_all(b"PING\r\n").unwrap();
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"+PONG\r\n");
    proxy.cut_after(3);
    s.write_all(b"PING\r\n").unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert_eq!(rest, b"+PO", "exactly the allowed bytes, then closed");
    assert_eq!(proxy.forwarded(), 10);
}

#[test]
fn proxy_stalls_and_resumes() {
    use std::io::{Read, Write};
    use std::time::Duration;
    let server = TestServer::start();
    let proxy = redis_tests::FaultProxy::start(server.port());
    let mut s = std::net::TcpStream::connect(("127.0.0.1", proxy.port())).unwrap();
    proxy.stall();
    s.write_all(b"PING\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 7];
    assert!(s.read(&mut buf).is_err(), "nothing passes while stalled");
    proxy.resume();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"+PONG\r\n");
}

#[test]
fn fake_server_runs_its_script() {
    use std::io::{Read, Write};
    let fake = redis_tests::FakeServer::start(|mut c| {
        let req = c.read_request().unwrap();
        assert_eq!(req, vec![b"GET".to_vec(), b"k".to_vec()]);
        c.write(b"$-99\r\n");
    });
    let mut s = std::net::TcpStream::connect(("127.0.0.1", fake.port())).unwrap();
    s.write_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n").unwrap();
    let mut reply = [0u8; 6];
    s.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"$-99\r\n");
    assert_eq!(fake.accepted(), 1);
}
