//! The connection core's promises, end to end: a caller only ever reads its own reply, a
//! pooled connection never carries state to the next caller, one deadline bounds a whole
//! reply and one budget a whole call.
//!
//! Real servers where a real server can show it; the scripted fake server for replies a
//! real one cannot be made to send (extra replies, trickled bytes).

use redis_client::prelude::*;
use redis_client::{
    ConnectionInfo, ConnectionPool, Error, ErrorKind, PoolOptions, Redis, RetryPolicy, Value,
};
use redis_tests::{FakeConn, FakeServer, TestServer};
use std::time::{Duration, Instant};

/// A fake server answering `GET k` with `val:k` and then, `extra_after` later (`None`: in
/// the same write), one more reply nobody asked for.
fn server_with_extra_replies(extra_after: Option<Duration>) -> FakeServer {
    FakeServer::start(move |mut c: FakeConn| {
        while let Some(args) = c.read_request() {
            let reply = match args.first().map(|a| a.to_ascii_uppercase()) {
                Some(name) if name == b"GET" => {
                    let key = String::from_utf8_lossy(&args[1]).into_owned();
                    let value = format!("val:{key}");
                    format!("${}\r\n{value}\r\n", value.len())
                }
                _ => "+PONG\r\n".to_owned(),
            };
            let extra = "$9\r\nval:stray\r\n";
            match extra_after {
                None => c.write(format!("{reply}{extra}").as_bytes()),
                Some(after) => {
                    c.write(reply.as_bytes());
                    std::thread::sleep(after);
                    c.write(extra.as_bytes());
                }
            }
        }
    })
}

fn fake_client(fake: &FakeServer, policy: RetryPolicy) -> Redis {
    let info =
        ConnectionInfo::tcp("127.0.0.1", fake.port()).with_timeout(Some(Duration::from_secs(2)));
    Redis::from_info(info).with_retry_policy(policy)
}

/// Every GET either fails or returns its own key's value; never another's.
fn assert_only_own_replies(r: &Redis, rounds: usize, pause: Duration) -> usize {
    let mut own = 0;
    for i in 0..rounds {
        let key = format!("a{i}");
        match r.get(&key) {
            Ok(v) => {
                assert_eq!(
                    v.as_deref(),
                    Some(format!("val:{key}").as_bytes()),
                    "round {i}"
                );
                own += 1;
            }
            Err(e) => assert_eq!(e.kind(), ErrorKind::Protocol, "round {i}: {e}"),
        }
        std::thread::sleep(pause);
    }
    match r.ping() {
        Ok(pong) => assert_eq!(pong, "PONG", "PING answered with another command's reply"),
        Err(e) => assert_eq!(e.kind(), ErrorKind::Protocol, "{e}"),
    }
    own
}

#[test]
fn extra_replies_in_the_same_read_are_never_handed_to_the_next_caller() {
    let fake = server_with_extra_replies(None);
    for policy in [RetryPolicy::none(), RetryPolicy::default()] {
        let r = fake_client(&fake, policy);
        assert_only_own_replies(&r, 40, Duration::ZERO);
        // Each GET's connection was found out of step and closed.
        assert!(r.pool().stats().discarded >= 40, "{:?}", r.pool().stats());
    }
}

#[test]
fn extra_replies_arriving_while_idle_are_found_before_the_next_request() {
    let fake = server_with_extra_replies(Some(Duration::from_millis(5)));
    let r = fake_client(&fake, RetryPolicy::none());
    // The stray reply arrives while the connection is idle in the pool; the checkout look
    // finds it, so every GET is answered on a clean connection.
    let own = assert_only_own_replies(&r, 10, Duration::from_millis(100));
    assert_eq!(own, 10);
    assert!(r.pool().stats().discarded >= 9, "{:?}", r.pool().stats());
}

#[test]
fn a_stray_reply_between_requests_on_a_held_connection_is_found_before_the_next() {
    let fake = server_with_extra_replies(Some(Duration::from_millis(5)));
    let r = fake_client(&fake, RetryPolicy::none());
    let mut refused = 0;
    for i in 0..10 {
        // WATCH holds one connection for the requests after it; its reply is followed by
        // a stray one, which has arrived by the time the GET goes.
        let mut w = r.pipeline().watch("k").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let key = format!("a{i}");
        match w.get(&key) {
            Ok(v) => assert_eq!(v.as_deref(), Some(format!("val:{key}").as_bytes())),
            Err(e) => {
                assert!(matches!(e, Error::OutOfStep(_)), "round {i}: {e}");
                refused += 1;
            }
        }
    }
    // The look before the GET found the stray every time.
    assert_eq!(refused, 10);
}

#[test]
fn out_of_step_is_an_error_naming_it() {
    let fake = server_with_extra_replies(None);
    let r = fake_client(&fake, RetryPolicy::none());
    let err = r.get("x").unwrap_err();
    assert!(matches!(err, Error::OutOfStep(_)), "{err:?}");
    assert!(err.is_connection_lost());
}

fn server_and_client(db: i64) -> (TestServer, Redis) {
    let server = TestServer::start();
    let info = ConnectionInfo::tcp("127.0.0.1", server.port()).with_db(db);
    // One connection: the next caller always gets the connection the last one used.
    let pool = redis_client::ConnectionPool::with_options(
        info,
        redis_client::PoolOptions::default().with_max_size(1),
    );
    (server, Redis::from_pool(pool))
}

fn db_client(server: &TestServer, db: i64) -> Redis {
    Redis::from_info(ConnectionInfo::tcp("127.0.0.1", server.port()).with_db(db))
}

#[test]
fn select_through_execute_command_does_not_move_the_next_caller() {
    let (server, r) = server_and_client(0);
    r.execute_command(("SELECT", 5)).unwrap();
    r.set("k", "v").unwrap();
    assert_eq!(
        db_client(&server, 0).get("k").unwrap().as_deref(),
        Some(&b"v"[..])
    );
    assert_eq!(db_client(&server, 5).get("k").unwrap(), None);
    assert_eq!(r.pool().stats().created, 1, "restored, not reopened");
}

#[test]
fn multi_left_open_does_not_swallow_the_next_callers_writes() {
    let (server, r) = server_and_client(0);
    r.execute_command("MULTI").unwrap();
    assert!(r.set("k", "v").unwrap());
    assert_eq!(r.get("k").unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(
        db_client(&server, 0).get("k").unwrap().as_deref(),
        Some(&b"v"[..])
    );
}

#[test]
fn watch_left_behind_does_not_abort_the_next_callers_transaction() {
    let (server, r) = server_and_client(0);
    r.execute_command(("WATCH", "k")).unwrap();
    db_client(&server, 0).set("k", "changed").unwrap();
    // A transaction of the next caller on the same (only) connection must run.
    let mut pipe = r.pipeline();
    pipe.set("other", 1);
    assert!(pipe.execute().is_ok());
}

#[test]
fn subscribe_on_a_command_connection_is_refused_before_sending() {
    let (_server, r) = server_and_client(0);
    for args in [
        ("SUBSCRIBE", "ch"),
        ("PSUBSCRIBE", "p*"),
        ("SSUBSCRIBE", "ch"),
    ] {
        let err = r.execute_command(args).unwrap_err();
        assert!(matches!(err, Error::Unsupported(_)), "{err:?}");
    }
    assert!(matches!(
        r.execute_command("MONITOR"),
        Err(Error::Unsupported(_))
    ));
    r.set("k", "v").unwrap();
    assert_eq!(r.get("k").unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(r.pool().stats().discarded, 0);
}

#[test]
fn reset_puts_the_configured_database_back() {
    let (server, r) = server_and_client(3);
    // A pooled client refuses RESET (it would change nothing); a connection it lends runs
    // it, and goes back restored.
    assert_eq!(r.get_connection().unwrap().reset().unwrap(), "RESET");
    r.set("k", "v").unwrap();
    assert_eq!(
        db_client(&server, 3).get("k").unwrap().as_deref(),
        Some(&b"v"[..])
    );
    assert_eq!(db_client(&server, 0).get("k").unwrap(), None);
    // Also the raw form.
    r.execute_command("RESET").unwrap();
    r.set("k2", "v").unwrap();
    assert!(db_client(&server, 3).exists("k2").unwrap() == 1);
}

#[test]
fn quit_closes_only_its_own_connection() {
    let (_server, r) = server_and_client(0);
    r.get_connection().unwrap().quit().unwrap();
    r.execute_command("QUIT").unwrap();
    for i in 0..20 {
        assert!(r.set(format!("k{i}"), i).unwrap(), "write {i} after QUIT");
    }
}

#[test]
fn client_reply_off_owes_nothing_and_is_not_reused() {
    let (_server, r) = server_and_client(0);
    assert_eq!(
        r.execute_command(("CLIENT", "REPLY", "OFF")).unwrap(),
        Value::Nil
    );
    r.set("k", "v").unwrap();
    assert_eq!(r.get("k").unwrap().as_deref(), Some(&b"v"[..]));
    let mut conn = r.get_connection().unwrap();
    assert_eq!(
        conn.execute_command(("CLIENT", "REPLY", "SKIP")).unwrap(),
        Value::Nil
    );
    // Skipped: nothing comes back, which SET's callback reads as not set.
    conn.execute_command(("SET", "k", "w")).unwrap();
    assert_eq!(conn.get("k").unwrap().as_deref(), Some(&b"w"[..]));
}

#[test]
fn state_changed_on_a_pooled_connection_pipeline_or_watch_is_restored() {
    let (server, r) = server_and_client(2);
    {
        let mut conn = r.get_connection().unwrap();
        conn.execute_command(("SELECT", 7)).unwrap();
        conn.execute_command(("CLIENT", "SETNAME", "leaked"))
            .unwrap();
    }
    {
        let mut pipe = r.pipeline();
        pipe.transaction(false);
        pipe.execute_command(("SELECT", 8));
        pipe.execute().unwrap();
    }
    {
        let mut watched = r.pipeline().watch("w").unwrap();
        watched.execute_command(("SELECT", 9)).unwrap();
    }
    r.set("k", "v").unwrap();
    assert_eq!(
        db_client(&server, 2).get("k").unwrap().as_deref(),
        Some(&b"v"[..])
    );
    assert_eq!(r.client_getname().unwrap(), None);
    assert_eq!(r.pool().stats().created, 1);
}

/// A fake server that answers every request with `$100\r\n` and then one byte every
/// `every`.
fn trickling_server(every: Duration) -> FakeServer {
    FakeServer::start(move |mut c: FakeConn| {
        while c.read_request().is_some() {
            c.write(b"$100\r\n");
            for _ in 0..100 {
                std::thread::sleep(every);
                c.write(b"x");
            }
            c.write(b"\r\n");
        }
    })
}

#[test]
fn one_deadline_bounds_a_trickled_reply_whatever_the_retry_policy() {
    let fake = trickling_server(Duration::from_millis(200));
    for policy in [RetryPolicy::none(), RetryPolicy::default()] {
        let info = ConnectionInfo::tcp("127.0.0.1", fake.port())
            .with_timeout(Some(Duration::from_secs(1)));
        let r = Redis::from_info(info).with_retry_policy(policy);
        let start = Instant::now();
        let err = r.get("k").unwrap_err();
        let took = start.elapsed();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        assert!(
            took < Duration::from_millis(1800),
            "took {took:?} under a 1 s read timeout"
        );
        assert!(
            took >= Duration::from_millis(900),
            "gave up early: {took:?}"
        );
    }
}

#[test]
fn one_deadline_bounds_a_trickled_handshake() {
    // AUTH answered one byte at a time.
    let fake = FakeServer::start(|mut c: FakeConn| {
        if c.read_request().is_some() {
            for b in b"+OK\r\n" {
                std::thread::sleep(Duration::from_millis(400));
                c.write(&[*b]);
            }
            c.hold(Duration::from_secs(5));
        }
    });
    let info = ConnectionInfo::tcp("127.0.0.1", fake.port())
        .with_auth(None, "pw")
        .with_connect_timeout(Some(Duration::from_secs(1)));
    let r = Redis::from_info(info);
    let start = Instant::now();
    let err = r.get("k").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(
        start.elapsed() < Duration::from_millis(1800),
        "took {:?}",
        start.elapsed()
    );
}

#[test]
fn one_deadline_bounds_a_write_to_a_server_that_stopped_reading() {
    // Answers the handshake, then reads nothing: the socket buffers fill and the write
    // stalls.
    let fake = FakeServer::start(|mut c: FakeConn| {
        if c.read_any_request().is_some() {
            c.write(b"+PONG\r\n");
        }
        std::thread::sleep(Duration::from_secs(20));
        drop(c);
    });
    for policy in [
        RetryPolicy::none(),
        RetryPolicy::default().with_retry_writes(true),
    ] {
        let info = ConnectionInfo::tcp("127.0.0.1", fake.port())
            .with_timeout(Some(Duration::from_secs(1)));
        let r = Redis::from_info(info).with_retry_policy(policy);
        let big = vec![b'x'; 64 << 20];
        let start = Instant::now();
        let err = r.set("k", big).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        assert!(
            start.elapsed() < Duration::from_millis(1800),
            "took {:?}",
            start.elapsed()
        );
    }
}

#[test]
fn a_silent_server_cannot_hang_a_client_that_set_nothing() {
    let fake = FakeServer::start(|mut c: FakeConn| {
        let _ = c.read_request();
        c.hold(Duration::from_secs(30));
    });
    let info = ConnectionInfo::tcp("127.0.0.1", fake.port());
    assert_eq!(
        info.read_timeout,
        Some(Duration::from_secs(10)),
        "the documented default"
    );
    let r = Redis::from_info(info.with_read_timeout(Some(Duration::from_millis(300))));
    let start = Instant::now();
    assert_eq!(r.get("k").unwrap_err().kind(), ErrorKind::Timeout);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
}

#[test]
fn blocking_commands_wait_their_own_timeout_past_the_read_timeout() {
    let server = TestServer::start();
    let info = ConnectionInfo::tcp("127.0.0.1", server.port())
        .with_timeout(Some(Duration::from_millis(300)));
    let r = Redis::from_info(info);
    let start = Instant::now();
    assert_eq!(r.blpop("empty", Duration::from_secs(1)).unwrap(), None);
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_call_budget_bounds_retries_and_says_how_many_attempts() {
    // Every connection is accepted and closed at once: a lost connection each time.
    let fake = FakeServer::closing();
    let info =
        ConnectionInfo::tcp("127.0.0.1", fake.port()).with_timeout(Some(Duration::from_secs(1)));
    let policy = RetryPolicy::default()
        .with_max_retries(1000)
        .with_backoff(Duration::from_millis(20), Duration::from_millis(20))
        .with_budget(Some(Duration::from_millis(500)));
    let r = Redis::from_info(info).with_retry_policy(policy);
    let start = Instant::now();
    let err = r.get("k").unwrap_err();
    let took = start.elapsed();
    assert!(
        took < Duration::from_millis(900),
        "took {took:?} under a 500 ms budget"
    );
    let attempts: u32 = err
        .to_string()
        .split("(after ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no attempt count in: {err}"));
    assert!(attempts > 2, "{err}");
    assert_eq!(err.kind(), ErrorKind::Connection);
}

#[test]
fn a_script_error_saying_loading_runs_the_script_once() {
    let server = TestServer::start();
    let r = Redis::open(&server.url()).unwrap();
    let err = r
        .execute_command((
            "EVAL",
            "redis.call('INCR', KEYS[1]) return redis.error_reply('LOADING not really')",
            1,
            "runs",
        ))
        .unwrap_err();
    assert!(!err.to_string().contains("attempts"), "{err}");
    assert_eq!(r.get("runs").unwrap().as_deref(), Some(&b"1"[..]));
}

#[test]
fn the_command_table_and_the_core_agree_on_which_commands_change_connection_state() {
    use redis_client::redis_commands::{cmd, Flags};
    let mut flagged = 0;
    for info in cmd::all() {
        let words: Vec<&str> = info.name.split(' ').collect();
        let declared = info.flags.contains(Flags::CONNECTION_STATE);
        assert_eq!(
            declared,
            redis_client::redis_conn::changes_connection_state(&words),
            "{} ({})",
            info.name,
            info.method
        );
        flagged += usize::from(declared);
    }
    assert!(flagged >= 8, "{flagged}");
}

#[test]
fn a_greeting_before_the_handshake_is_caught() {
    // A peer that speaks first: "+OK" before any request, then answers correctly.
    let fake = FakeServer::start(|mut c: FakeConn| {
        c.write(b"$9\r\nval:stray\r\n");
        while let Some(args) = c.read_request() {
            if args[0].eq_ignore_ascii_case(b"PING") {
                c.write(b"+PONG\r\n");
            } else {
                c.write(b"$5\r\nval:k\r\n");
            }
        }
    });
    for policy in [RetryPolicy::none(), RetryPolicy::default()] {
        let r = fake_client(&fake, policy);
        // Without the handshake's PING, the GET would read the greeting as its value.
        let err = r.get("k").unwrap_err();
        assert!(matches!(err, Error::OutOfStep(_)), "{err:?}");
    }
}

#[test]
fn a_user_allowed_only_get_and_set_still_connects() {
    let server = redis_tests::ServerConfig::default()
        .line("user narrow on >pw ~* +get +set")
        .start();
    for protocol in [redis_client::Protocol::Resp2, redis_client::Protocol::Resp3] {
        let info = ConnectionInfo::tcp("127.0.0.1", server.port())
            .with_auth(Some("narrow"), "pw")
            .with_protocol(protocol);
        let r = Redis::from_info(info);
        // The handshake's PING is refused with NOPERM, which still shows the stream in step.
        assert!(r.set("k", "v").unwrap());
        assert_eq!(r.get("k").unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(r.pool().stats().created, 1);
    }
}

#[test]
fn a_client_from_a_url_has_the_documented_default_timeouts() {
    let r = Redis::open("redis://127.0.0.1:6399/0").unwrap();
    let info = r.pool().info();
    assert_eq!(info.read_timeout, Some(Duration::from_secs(10)));
    assert_eq!(info.write_timeout, Some(Duration::from_secs(10)));
    assert_eq!(info.connect_timeout, Some(Duration::from_secs(5)));
}

#[test]
fn a_blocking_command_on_a_silent_server_gives_up_after_its_timeout_plus_the_margin() {
    let fake = FakeServer::start(|mut c: FakeConn| {
        let _ = c.read_request();
        c.hold(Duration::from_secs(30));
    });
    let info = ConnectionInfo::tcp("127.0.0.1", fake.port())
        .with_timeout(Some(Duration::from_millis(300)));
    let r = Redis::from_info(info).with_retry_policy(RetryPolicy::none());
    let start = Instant::now();
    let err = r.blpop("k", Duration::from_secs(1)).unwrap_err();
    let took = start.elapsed();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    // BLPOP's own 1 s plus the 1 s margin; not the 300 ms read timeout, not forever.
    assert!(
        took >= Duration::from_millis(1900),
        "gave up early: {took:?}"
    );
    assert!(took < Duration::from_secs(4), "took {took:?}");
}

#[test]
fn the_default_call_budget_bounds_a_wait_for_a_pool_connection() {
    let server = TestServer::start();
    let info = ConnectionInfo::tcp("127.0.0.1", server.port())
        .with_connect_timeout(Some(Duration::from_millis(200)))
        .with_timeout(Some(Duration::from_millis(300)));
    let pool = ConnectionPool::with_options(
        info,
        PoolOptions::default()
            .with_max_size(1)
            .with_checkout_timeout(Duration::from_secs(5)),
    );
    let r = Redis::from_pool(pool);
    let held = r.get_connection().unwrap();
    let start = Instant::now();
    let err = r.get("k").unwrap_err();
    let took = start.elapsed();
    drop(held);
    // The budget is the connect timeout plus the reply's wait (500 ms), well before the
    // pool's own 5 s checkout timeout.
    assert!(took < Duration::from_millis(1500), "took {took:?}: {err}");
    assert!(
        took >= Duration::from_millis(400),
        "gave up early: {took:?}"
    );
    assert!(
        matches!(err.kind(), ErrorKind::Timeout | ErrorKind::PoolExhausted),
        "{err}"
    );
}
