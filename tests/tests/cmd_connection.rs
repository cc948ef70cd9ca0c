//! Connection commands (ECHO, PING, QUIT, RESET, CLIENT *) over RESP2 and RESP3.

mod common;

use bytes::Bytes;
use common::for_each_protocol;
use redis_client::prelude::*;
use redis_client::redis_commands::{
    ClientKillFilter, ClientType, PauseMode, ReplyMode, Toggle, TrackingOptions, UnblockMode,
};
use redis_client::{ConnectionInfo, Error, FromValue, Protocol, Redis, Value};
use redis_tests::TestServer;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A plain TCP client outside the pool, and its id.
fn other_client(server: &TestServer) -> (BufReader<TcpStream>, i64) {
    let mut s = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    // A wrong expectation fails the test instead of hanging it.
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    s.write_all(b"CLIENT ID\r\n").unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    (r, line.trim().trim_start_matches(':').parse().unwrap())
}

#[test]
fn echo_and_ping() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        assert_eq!(r.echo("hello").unwrap(), Bytes::from("hello"));
        assert_eq!(
            r.echo(&b"\x00\xff"[..]).unwrap(),
            Bytes::from_static(b"\x00\xff")
        );
        assert_eq!(r.ping().unwrap(), Bytes::from("PONG"));
        assert_eq!(r.ping_message("hi").unwrap(), Bytes::from("hi"));
    });
}

#[test]
fn client_names_ids_and_lists() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        // Names and tracking belong to one connection: a pooled one is restored to its
        // configured state when it goes back, so these run on a dedicated connection.
        let mut c = r.dedicated_connection().unwrap();
        assert_eq!(c.client_getname().unwrap(), None);
        c.client_setname("worker-1").unwrap();
        assert_eq!(c.client_getname().unwrap().as_deref(), Some("worker-1"));
        let id = c.client_id().unwrap();
        let me = c.client_info().unwrap();
        assert_eq!(me.id(), Some(id as u64));
        assert_eq!(me.name(), Some("worker-1"));
        assert_eq!(me.db(), Some(0));
        let all = c.client_list().unwrap();
        assert!(all
            .iter()
            .any(|c| c.id() == Some(id as u64) && c.name() == Some("worker-1")));
        assert!(!c.client_list_type(ClientType::Normal).unwrap().is_empty());
        assert!(c.client_list_type(ClientType::PubSub).unwrap().is_empty());
        let mine = c.client_list_ids(&[id as u64]).unwrap();
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].get("cmd"), Some("client|list"));
        c.client_setname("").unwrap();
        assert!(!c.client_help().unwrap().is_empty());
    });
}

#[test]
fn client_kill_by_id() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        let (mut other, id) = other_client(&server);
        assert_eq!(
            r.client_kill(ClientKillFilter::new().id(id as u64))
                .unwrap(),
            1
        );
        let mut rest = String::new();
        assert_eq!(
            other.read_line(&mut rest).unwrap(),
            0,
            "killed connection closes"
        );
        let me = r.client_id().unwrap() as u64;
        // SKIPME yes spares the caller.
        let n = r
            .client_kill(ClientKillFilter::new().id(me).skip_me(true))
            .unwrap();
        assert_eq!(n, 0);
        assert_eq!(r.client_id().unwrap() as u64, me);
    });
}

#[test]
fn client_no_evict_pause_reply() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        // NO-EVICT and REPLY change one connection: a dedicated one keeps the change.
        let mut c = r.dedicated_connection().unwrap();
        c.client_no_evict(Toggle::On).unwrap();
        assert!(c.client_info().unwrap().get("flags").unwrap().contains('e'));
        c.client_no_evict(Toggle::Off).unwrap();
        assert!(!c.client_info().unwrap().get("flags").unwrap().contains('e'));
        r.client_pause(Duration::from_millis(5000), Some(PauseMode::Write))
            .unwrap();
        let start = Instant::now();
        r.client_unpause().unwrap();
        r.set("k", "v").unwrap();
        // Without the unpause the write would wait out the 5 s pause.
        assert!(
            start.elapsed() < Duration::from_secs(4),
            "unpause lifted the pause"
        );
        r.client_pause(Duration::from_millis(10), None).unwrap();
        c.client_reply(ReplyMode::On).unwrap();
    });
}

#[test]
fn client_tracking_state() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        // Names and tracking belong to one connection: a pooled one is restored to its
        // configured state when it goes back, so these run on a dedicated connection.
        let mut c = r.dedicated_connection().unwrap();
        assert_eq!(c.client_getredir().unwrap(), -1);
        let (_other, redirect) = other_client(&server);
        c.client_tracking(
            Toggle::On,
            TrackingOptions::new()
                .redirect(redirect as u64)
                .bcast()
                .prefix("user:"),
        )
        .unwrap();
        let info = c.client_trackinginfo().unwrap();
        let flags = Vec::<String>::from_value(info["flags"].clone()).unwrap();
        assert!(flags.contains(&"on".to_owned()) && flags.contains(&"bcast".to_owned()));
        assert_eq!(i64::from_value(info["redirect"].clone()).unwrap(), redirect);
        assert_eq!(c.client_getredir().unwrap(), redirect);
        c.client_tracking(Toggle::Off, TrackingOptions::new())
            .unwrap();
        c.client_tracking(
            Toggle::On,
            TrackingOptions::new()
                .redirect(redirect as u64)
                .optin()
                .noloop(),
        )
        .unwrap();
        c.client_caching(Toggle::On).unwrap();
        c.client_tracking(Toggle::Off, TrackingOptions::new())
            .unwrap();
        let err = c.client_caching(Toggle::On).unwrap_err();
        assert!(err.to_string().contains("tracking"), "{err}");
        assert_eq!(c.client_getredir().unwrap(), -1);
        let off = c.client_trackinginfo().unwrap();
        let flags = Vec::<String>::from_value(off["flags"].clone()).unwrap();
        assert_eq!(flags, vec!["off".to_owned()]);
    });
}

#[test]
fn client_unblock_ends_a_blocking_call() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        let blocked = Redis::open(&server.url()).unwrap();
        let id = blocked.client_id().unwrap() as u64;
        let waiter = std::thread::spawn(move || blocked.execute_command(("BLPOP", "queue", 0)));
        let deadline = Instant::now() + Duration::from_secs(10);
        while r.client_list_ids(&[id]).unwrap()[0].get("cmd") != Some("blpop") {
            assert!(Instant::now() < deadline, "client never blocked");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(r.client_unblock(id, UnblockMode::Timeout).unwrap());
        assert_eq!(waiter.join().unwrap().unwrap(), Value::Nil);
        assert!(!r.client_unblock(id, UnblockMode::Error).unwrap());
    });
}

#[test]
fn quit_and_reset_on_their_own_clients() {
    let server = TestServer::start();
    for protocol in [Protocol::Resp2, Protocol::Resp3] {
        let info = ConnectionInfo::tcp("127.0.0.1", server.port()).with_protocol(protocol);
        let r = Redis::from_info(info.clone());
        let mut c = r.dedicated_connection().unwrap();
        c.client_setname("before-reset").unwrap();
        assert_eq!(c.reset().unwrap(), "RESET");
        assert_eq!(c.client_getname().unwrap(), None);
        let mut q = Redis::from_info(info).dedicated_connection().unwrap();
        let id = q.client_id().unwrap() as u64;
        q.quit().unwrap();
        let watcher = Redis::open(&server.url()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !watcher.client_list_ids(&[id]).unwrap().is_empty() {
            assert!(
                Instant::now() < deadline,
                "QUIT did not close the connection"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Issue 29: a command method whose only effect is the state of the one connection it runs
/// on (CLIENT SETNAME, CLIENT TRACKING, READONLY, RESET …) is refused by a pooled client
/// before anything is sent, blocking and async, in byte and text mode, with an error that
/// names what to use instead: it used to answer OK and be undone when the connection went
/// back to the pool. The alternatives it names work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_state_methods_on_a_pooled_client_are_refused_naming_the_alternative() {
    let server = TestServer::start();
    let info = ConnectionInfo::tcp("127.0.0.1", server.port());
    let refused = |e: Error| match e {
        Error::Unsupported(why) => why,
        other => panic!("{other:?}"),
    };
    let r = Redis::from_info(info.clone());
    tokio::task::block_in_place(|| {
        let why = refused(r.client_setname("x").unwrap_err());
        assert!(
            why.contains("with_client_name") && why.contains("dedicated_connection()"),
            "{why}"
        );
        assert!(refused(r.text().client_setname("x").unwrap_err()).contains("with_client_name"));
        let tracking = r.client_tracking(Toggle::On, TrackingOptions::new());
        assert!(refused(tracking.unwrap_err()).contains("with_cache"));
        assert!(refused(r.readonly().unwrap_err()).contains("readonly"));
        for e in [
            r.reset().map(drop).unwrap_err(),
            r.quit().unwrap_err(),
            r.client_reply(ReplyMode::On).unwrap_err(),
            r.client_no_evict(Toggle::On).unwrap_err(),
        ] {
            assert!(refused(e).contains("dedicated_connection()"));
        }
        // Nothing was sent: the server saw no CLIENT SETNAME.
        let calls = server.raw(&["INFO", "commandstats"]);
        assert!(!calls.contains("cmdstat_client|setname"), "{calls}");
        // What the errors point to works, and lasts.
        let named = Redis::from_info(info.clone().with_client_name("worker"));
        assert_eq!(named.client_getname().unwrap().as_deref(), Some("worker"));
        assert_eq!(named.client_getname().unwrap().as_deref(), Some("worker"));
        let mut c = r.dedicated_connection().unwrap();
        c.client_setname("mine").unwrap();
        assert_eq!(c.client_getname().unwrap().as_deref(), Some("mine"));
    });
    let a = redis_client::aio::Redis::from_info(info);
    assert!(refused(a.client_setname("x").await.unwrap_err()).contains("with_client_name"));
    assert!(refused(a.text().readwrite().await.unwrap_err()).contains("readonly"));
    // A command that only reads connection state still runs.
    assert_eq!(a.client_getname().await.unwrap(), None);
}
