//! The connection pool against real servers: reuse order, the checkout timeout, what is
//! never returned, health checks, disconnect, recovery after a restart, and contention.

use redis_client::Value;
use redis_conn::{ConnectionInfo, ConnectionPool, Error, PoolOptions, PoolStats, Protocol};
use redis_tests::{ServerConfig, TestServer};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn pool(server: &TestServer, options: PoolOptions) -> ConnectionPool {
    ConnectionPool::with_options(ConnectionInfo::tcp("127.0.0.1", server.port()), options)
}

fn client_id(conn: &mut redis_conn::Connection) -> i64 {
    match conn.command(&["CLIENT", "ID"]).unwrap() {
        Value::Integer(id) => id,
        other => panic!("{other:?}"),
    }
}

fn stats(idle: usize, in_use: usize, created: u64, failed: u64, discarded: u64) -> PoolStats {
    let mut s = PoolStats::default();
    s.idle = idle;
    s.in_use = in_use;
    s.created = created;
    s.failed = failed;
    s.discarded = discarded;
    s
}

#[test]
fn idle_connections_are_reused_most_recent_first() {
    let server = TestServer::start();
    let pool = pool(&server, PoolOptions::default().with_max_size(4));
    let mut a = pool.get().unwrap();
    let mut b = pool.get().unwrap();
    let (id_a, id_b) = (client_id(&mut a), client_id(&mut b));
    assert_eq!(pool.stats(), stats(0, 2, 2, 0, 0));
    drop(a);
    drop(b);
    assert_eq!(pool.stats(), stats(2, 0, 2, 0, 0));
    // The last one returned comes out first.
    let mut again = pool.get().unwrap();
    assert_eq!(client_id(&mut again), id_b);
    let mut next = pool.get().unwrap();
    assert_eq!(client_id(&mut next), id_a);
    assert_eq!(pool.stats().created, 2);
}

#[test]
fn third_checkout_of_two_fails_within_its_timeout() {
    let server = TestServer::start();
    let timeout = Duration::from_millis(300);
    let pool = pool(
        &server,
        PoolOptions::default()
            .with_max_size(2)
            .with_checkout_timeout(timeout),
    );
    let _a = pool.get().unwrap();
    let _b = pool.get().unwrap();
    let started = Instant::now();
    let err = pool.get().unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(err, Error::PoolExhausted(t) if t == timeout),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert!(
        took >= timeout && took < timeout + Duration::from_millis(300),
        "{took:?}"
    );
    assert_eq!(pool.stats(), stats(0, 2, 2, 0, 0));
}

#[test]
fn a_waiting_checkout_gets_the_returned_connection() {
    let server = TestServer::start();
    let pool = pool(
        &server,
        PoolOptions::default()
            .with_max_size(1)
            .with_checkout_timeout(Duration::from_secs(5)),
    );
    let mut held = pool.get().unwrap();
    let id = client_id(&mut held);
    let returner = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        drop(held);
    });
    let started = Instant::now();
    let mut conn = pool.get().unwrap();
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert_eq!(client_id(&mut conn), id);
    returner.join().unwrap();
}

#[test]
fn untrustworthy_connections_are_not_returned() {
    let server = TestServer::start();
    let pool = pool(&server, PoolOptions::default().with_max_size(4));

    // Owes a reply: the next user would read it.
    let mut conn = pool.get().unwrap();
    conn.send(&[b"*1\r\n$4\r\nPING\r\n"], 1).unwrap();
    drop(conn);
    assert_eq!(pool.stats(), stats(0, 0, 1, 0, 1));

    // Dropped during a panic.
    let p = pool.clone();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _conn = p.get().unwrap();
        panic!("caller failed mid-request");
    }));
    assert!(result.is_err());
    assert_eq!(pool.stats(), stats(0, 0, 2, 0, 2));

    // Marked broken by its user.
    let mut conn = pool.get().unwrap();
    conn.mark_broken();
    drop(conn);
    assert_eq!(pool.stats(), stats(0, 0, 3, 0, 3));

    // A server error leaves the connection fine: it is returned.
    let mut conn = pool.get().unwrap();
    assert!(matches!(
        conn.command(&["NOSUCHCOMMAND"]),
        Err(Error::Server(_))
    ));
    drop(conn);
    assert_eq!(pool.stats(), stats(1, 0, 4, 0, 3));
}

#[test]
fn silent_server_trips_the_timeout_and_the_connection_is_discarded() {
    // Answers the handshake's PING, then says nothing more.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
    let keep = Arc::clone(&held);
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            use std::io::{Read, Write};
            let mut ping = [0u8; 14];
            if stream.read_exact(&mut ping).is_ok() && &ping == b"*1\r\n$4\r\nPING\r\n" {
                let _ = stream.write_all(b"+PONG\r\n");
            }
            keep.lock().unwrap().push(stream);
        }
    });
    let timeout = Duration::from_millis(200);
    let info = ConnectionInfo::tcp("127.0.0.1", port).with_timeout(Some(timeout));
    let pool = ConnectionPool::with_options(info, PoolOptions::default().with_max_size(2));
    let mut conn = pool.get().unwrap();
    let started = Instant::now();
    let err = conn.command(&["GET", "k"]).unwrap_err();
    assert!(matches!(err, Error::Timeout), "{err:?}");
    assert!(started.elapsed() < timeout + Duration::from_millis(500));
    drop(conn);
    // Not returned: nothing idle, nothing in use, one discarded.
    assert_eq!(pool.stats(), stats(0, 0, 1, 0, 1));

    // A peer silent from the start: the handshake itself meets the silence, bounded by
    // the connect timeout, counted as a failed open.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let held: Vec<_> = silent.incoming().flatten().collect();
        drop(held);
    });
    let info = ConnectionInfo::tcp("127.0.0.1", port)
        .with_auth(None, "pw")
        .with_connect_timeout(Some(timeout));
    let pool = ConnectionPool::new(info);
    let started = Instant::now();
    assert!(matches!(pool.get(), Err(Error::Timeout)));
    assert!(started.elapsed() < timeout + Duration::from_millis(500));
    assert_eq!(pool.stats(), stats(0, 0, 0, 1, 0));
}

#[test]
fn auth_failure_is_reported_and_frees_the_place() {
    let server = ServerConfig::default().password("s3cret").start();
    let info = ConnectionInfo::tcp("127.0.0.1", server.port()).with_auth(None, "nope");
    let pool = ConnectionPool::with_options(info, PoolOptions::default().with_max_size(1));
    for _ in 0..3 {
        assert!(matches!(pool.get(), Err(Error::Auth(_))));
    }
    assert_eq!(pool.stats(), stats(0, 0, 0, 3, 0));
}

#[test]
fn pool_recovers_after_the_server_restarts() {
    let mut server = TestServer::start();
    let pool = pool(&server, PoolOptions::default().with_max_size(4));
    // Four idle connections, all of which the restart will make stale.
    let held: Vec<_> = (0..4).map(|_| pool.get().unwrap()).collect();
    drop(held);
    assert_eq!(pool.stats().idle, 4);

    server.stop();
    server.restart();

    // Each stale connection is found closed by the checkout look and replaced before any
    // command is written: no command fails.
    for i in 0..20 {
        let mut conn = pool.get().unwrap();
        conn.command(&["SET", "k", &i.to_string()]).unwrap();
    }
    let s = pool.stats();
    assert_eq!(s.discarded, 4);
    // Used one at a time, the stale ones come out first and one new connection replaces
    // them all.
    assert_eq!(s.created, 5);
    // And from now on every checkout works.
    for _ in 0..10 {
        let mut conn = pool.get().unwrap();
        assert_eq!(
            conn.command(&["GET", "k"]).unwrap(),
            Value::BulkString("19".into())
        );
    }
}

/// TCP behind a transport that cannot look at its socket without blocking
/// (`Readiness::Unknown`), as a user-defined transport may be.
struct OpaqueConnector(ConnectionInfo);

struct Opaque(TcpStream);

impl std::io::Read for Opaque {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl std::io::Write for Opaque {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl redis_conn::Transport for Opaque {
    fn set_read_timeout(&mut self, t: Option<Duration>) -> std::io::Result<()> {
        self.0.set_read_timeout(t)
    }
    fn set_write_timeout(&mut self, t: Option<Duration>) -> std::io::Result<()> {
        self.0.set_write_timeout(t)
    }
}

impl redis_conn::Connector for OpaqueConnector {
    fn info(&self) -> &ConnectionInfo {
        &self.0
    }
    fn connect(&self, _deadline: Option<Instant>) -> Result<Box<dyn redis_conn::Transport>, Error> {
        let redis_conn::Addr::Tcp { host, port } = &self.0.addr else {
            unreachable!("tcp only")
        };
        let s = TcpStream::connect((host.as_str(), *port)).map_err(|source| Error::Connect {
            addr: self.0.addr.to_string(),
            source,
        })?;
        Ok(Box::new(Opaque(s)))
    }
}

/// Four idle connections through the opaque transport, then a server restart; returns
/// how many of ten SETs failed.
fn failures_after_restart(health_check: Option<Duration>) -> (usize, PoolStats) {
    let mut server = TestServer::start();
    let pool = ConnectionPool::with_connector(
        OpaqueConnector(ConnectionInfo::tcp("127.0.0.1", server.port())),
        PoolOptions::default()
            .with_max_size(4)
            .with_health_check(health_check),
    );
    let held: Vec<_> = (0..4).map(|_| pool.get().unwrap()).collect();
    drop(held);
    server.stop();
    server.restart();
    let failures = (0..10)
        .filter(|i| {
            let mut conn = pool.get().unwrap();
            conn.command(&["SET", "k", &i.to_string()]).is_err()
        })
        .count();
    (failures, pool.stats())
}

#[test]
fn health_check_replaces_stale_connections_the_transport_cannot_see() {
    // Every stale connection is found by the PING and replaced, however short the restart
    // (without it, `health_check_pings_connections_idle_past_its_threshold_only` shows a
    // connection used soon after the kill failing).
    let (failures, s) = failures_after_restart(Some(Duration::ZERO));
    assert_eq!(failures, 0);
    assert_eq!((s.discarded, s.failed), (4, 0));
    assert_eq!(s.created, 5);
}

#[test]
fn a_connection_the_transport_cannot_see_is_pinged_after_a_second_idle() {
    let server = TestServer::start();
    let pool = ConnectionPool::with_connector(
        OpaqueConnector(ConnectionInfo::tcp("127.0.0.1", server.port())),
        PoolOptions::default().with_max_size(1),
    );
    let mut conn = pool.get().unwrap();
    let id = client_id(&mut conn);
    drop(conn);
    assert_eq!(server.raw(&["CLIENT", "KILL", "ID", &id.to_string()]), ":1");
    std::thread::sleep(Duration::from_millis(1100));
    // No health check configured: the pool pings it anyway, finds it dead, replaces it.
    let mut conn = pool.get().unwrap();
    assert_ne!(client_id(&mut conn), id);
    assert_eq!(pool.stats().discarded, 1);
}

#[test]
fn health_check_pings_connections_idle_past_its_threshold_only() {
    let server = TestServer::start();
    let pool = ConnectionPool::with_connector(
        OpaqueConnector(ConnectionInfo::tcp("127.0.0.1", server.port())),
        PoolOptions::default()
            .with_max_size(1)
            .with_health_check(Some(Duration::from_millis(200))),
    );
    let mut conn = pool.get().unwrap();
    let id = client_id(&mut conn);
    drop(conn);
    assert_eq!(server.raw(&["CLIENT", "KILL", "ID", &id.to_string()]), ":1");
    // Used a moment ago: not pinged, and the opaque transport cannot tell.
    let mut conn = pool.get().unwrap();
    assert!(conn.command(&["PING"]).unwrap_err().is_connection_lost());
    drop(conn);
    let mut conn = pool.get().unwrap();
    let id = client_id(&mut conn);
    drop(conn);
    assert_eq!(server.raw(&["CLIENT", "KILL", "ID", &id.to_string()]), ":1");
    std::thread::sleep(Duration::from_millis(300));
    // Idle past the threshold: pinged, found dead, replaced.
    let mut conn = pool.get().unwrap();
    assert_ne!(client_id(&mut conn), id);
}

#[test]
fn a_killed_idle_connection_is_replaced_at_checkout_without_a_health_check() {
    let server = TestServer::start();
    let pool = pool(&server, PoolOptions::default().with_max_size(1));
    let mut conn = pool.get().unwrap();
    let id = client_id(&mut conn);
    drop(conn);
    assert_eq!(server.raw(&["CLIENT", "KILL", "ID", &id.to_string()]), ":1");
    // Idle for well under a millisecond: the checkout look still finds it closed.
    let mut conn = pool.get().unwrap();
    assert_ne!(client_id(&mut conn), id, "a new connection");
    assert_eq!(pool.stats().discarded, 1);
}

#[test]
fn a_connection_changed_by_select_comes_back_on_the_configured_database() {
    let server = TestServer::start();
    let pool = ConnectionPool::with_options(
        ConnectionInfo::tcp("127.0.0.1", server.port()).with_db(2),
        PoolOptions::default().with_max_size(1),
    );
    let mut conn = pool.get().unwrap();
    let id = client_id(&mut conn);
    conn.select(5).unwrap();
    drop(conn);
    let mut conn = pool.get().unwrap();
    assert_eq!(client_id(&mut conn), id, "restored, not replaced");
    assert_eq!(conn.db(), 2);
    conn.command(&["SET", "where", "here"]).unwrap();
    drop(conn);
    let db2 =
        redis_client::Redis::from_info(ConnectionInfo::tcp("127.0.0.1", server.port()).with_db(2));
    assert_eq!(
        db2.execute_command(("GET", "where")).unwrap(),
        Value::BulkString("here".into())
    );
    assert_eq!(pool.stats().discarded, 0);
}

#[test]
fn disconnect_closes_idle_and_retires_connections_in_use() {
    let server = TestServer::start();
    let pool = pool(&server, PoolOptions::default().with_max_size(4));
    let held: Vec<_> = (0..3).map(|_| pool.get().unwrap()).collect();
    drop(held);
    let mut in_use = pool.get().unwrap();
    let old_id = client_id(&mut in_use);
    assert_eq!(pool.stats(), stats(2, 1, 3, 0, 0));

    pool.disconnect();
    assert_eq!(pool.stats(), stats(0, 1, 3, 0, 0));
    // Returned after the disconnect: closed, not reused.
    drop(in_use);
    assert_eq!(pool.stats(), stats(0, 0, 3, 0, 0));

    let mut fresh = pool.get().unwrap();
    assert_ne!(client_id(&mut fresh), old_id);
    assert_eq!(pool.stats().created, 4);
    drop(fresh);
    assert_eq!(pool.stats().idle, 1);
}

#[test]
fn detach_frees_the_place() {
    let server = TestServer::start();
    let pool = pool(&server, PoolOptions::default().with_max_size(1));
    let mut dedicated = pool.get().unwrap().detach();
    dedicated.select(3).unwrap();
    assert_eq!(pool.stats(), stats(0, 0, 1, 0, 0));
    // The pool can open another while the detached one lives on.
    let mut conn = pool.get().unwrap();
    assert_eq!(conn.db(), 0);
    conn.command(&["PING"]).unwrap();
    dedicated.command(&["PING"]).unwrap();
}

#[test]
fn sixty_four_threads_share_a_pool_of_eight() {
    let server = TestServer::start();
    let pool = pool(
        &server,
        PoolOptions::default()
            .with_max_size(8)
            .with_checkout_timeout(Duration::from_secs(30)),
    );
    let threads: Vec<_> = (0..64)
        .map(|t| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                for i in 0..1_000 {
                    let key = format!("t{t}:k{}", i % 10);
                    let value = format!("{t}-{i}");
                    let mut conn = pool.get().unwrap();
                    conn.command(&["SET", &key, &value]).unwrap();
                    drop(conn);
                    let mut conn = pool.get().unwrap();
                    let got = conn.command(&["GET", &key]).unwrap();
                    assert_eq!(got, Value::BulkString(value.into_bytes().into()));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let s = pool.stats();
    assert!(s.created <= 8, "{s:?}");
    assert_eq!((s.failed, s.discarded, s.in_use), (0, 0, 0));
}

#[test]
fn clients_share_one_pool_over_both_protocols() {
    use redis_client::prelude::*;
    use redis_client::Redis;

    let server = TestServer::start();
    for protocol in [Protocol::Resp2, Protocol::Resp3] {
        let info = ConnectionInfo::tcp("127.0.0.1", server.port()).with_protocol(protocol);
        let pool = ConnectionPool::with_options(info, PoolOptions::default().with_max_size(2));
        let a = Redis::from_pool(pool.clone());
        let b = Redis::from_pool(pool.clone());
        assert!(a.set("shared", "yes").unwrap());
        assert_eq!(b.get("shared").unwrap().as_deref(), Some(&b"yes"[..]));
        assert_eq!(pool.stats().created, 1);
    }
}

#[test]
fn a_killed_idle_unix_socket_connection_is_replaced_at_checkout() {
    let server = TestServer::start_with(ServerConfig::default().unix_socket());
    let pool = ConnectionPool::with_options(
        ConnectionInfo::unix(server.socket_path()),
        PoolOptions::default().with_max_size(1),
    );
    let mut conn = pool.get().unwrap();
    let id = client_id(&mut conn);
    drop(conn);
    assert_eq!(server.raw(&["CLIENT", "KILL", "ID", &id.to_string()]), ":1");
    // The checkout look finds the closed Unix socket before anything is written to it.
    let mut conn = pool.get().unwrap();
    assert_ne!(client_id(&mut conn), id, "a new connection");
    assert_eq!(pool.stats().discarded, 1);
}

#[test]
fn a_restore_at_hand_back_fits_in_what_is_left_of_the_calls_budget() {
    // CLIENT SETNAME is answered at once, RESET (the restore when the connection goes
    // back) 400 ms late: the call, which does not return before its connection is handed
    // back, still ends within its 300 ms budget, the connection closed unrestored.
    let fake = redis_tests::FakeServer::start(|mut c: redis_tests::FakeConn| {
        while let Some(args) = c.read_request() {
            if args[0].eq_ignore_ascii_case(b"RESET") {
                std::thread::sleep(Duration::from_millis(400));
                c.write(b"+RESET\r\n");
            } else {
                c.write(b"+OK\r\n");
            }
        }
    });
    let budget = Duration::from_millis(300);
    let r = redis_client::Redis::open(&fake.url())
        .unwrap()
        .with_retry_policy(redis_client::RetryPolicy::default().with_budget(Some(budget)));
    let start = Instant::now();
    let setname = redis_client::redis_commands::cmd::connection::client_setname("me");
    let () = r.query(setname).unwrap();
    let took = start.elapsed();
    assert!(took < budget + Duration::from_millis(150), "took {took:?}");
    assert_eq!(r.pool().stats().discarded, 1, "{:?}", r.pool().stats());
}
