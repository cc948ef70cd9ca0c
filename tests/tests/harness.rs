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
