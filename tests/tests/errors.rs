//! The error kinds a caller matches on, produced by real causes.

use redis_client::prelude::*;
use redis_client::{ConnectionInfo, Error, ErrorKind, Redis, RetryPolicy};
use redis_tests::{ServerConfig, TestServer};
use std::time::{Duration, Instant};

#[test]
fn loading_maps_to_busy_loading_and_is_retried() {
    let mut server = ServerConfig::default()
        .line("enable-debug-command yes")
        .start();
    // A dump big enough that loading it takes a while.
    server.raw(&["DEBUG", "POPULATE", "3000000", "key", "64"]);
    server.raw(&["SAVE"]);
    server.restart_without_waiting_for_load();
    let info = ConnectionInfo::tcp("127.0.0.1", server.port());
    let strict = Redis::from_info(info.clone()).with_retry_policy(RetryPolicy::none());
    let err = strict.get("key:1").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BusyLoading, "{err:?}");
    assert!(err.is_retryable());
    // The default policy waits it out when given enough attempts.
    let patient = Redis::from_info(info).with_retry_policy(
        RetryPolicy::default()
            .with_max_retries(200)
            .with_backoff(Duration::from_millis(20), Duration::from_millis(100))
            .with_budget(Some(Duration::from_secs(30))),
    );
    let start = Instant::now();
    assert!(patient.get("key:1").unwrap().is_some());
    assert!(start.elapsed() < Duration::from_secs(30));
}

#[test]
fn kinds_of_common_failures() {
    let server = ServerConfig::default().password("secret").start();
    let wrong = Redis::open(&format!("redis://:wrong@127.0.0.1:{}/0", server.port())).unwrap();
    let err = wrong.get("k").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err:?}");
    assert!(!err.is_retryable());

    let r = Redis::open(&format!("redis://:secret@127.0.0.1:{}/0", server.port())).unwrap();
    r.sadd("s", "x").unwrap();
    let err = r.get("s").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);

    let port = {
        let s = TestServer::start();
        s.port()
    };
    let gone = Redis::open(&format!("redis://127.0.0.1:{port}/0"))
        .unwrap()
        .with_retry_policy(RetryPolicy::none());
    let err = gone.get("k").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connection);
    assert!(matches!(err, Error::Connect { .. }) && err.is_retryable());
}

#[test]
fn secrets_never_appear_in_errors_or_debug_output() {
    let server = ServerConfig::default().password("s3cr3t-pw").start();
    let url = format!("redis://user:hunter2-pw@127.0.0.1:{}/0", server.port());
    let r = Redis::open(&url).unwrap();
    let err = r.get("k").unwrap_err();
    for shown in [
        format!("{err}"),
        format!("{err:?}"),
        format!("{r:?}"),
        format!("{}", r.pool().info()),
    ] {
        assert!(!shown.contains("hunter2-pw"), "password leaked: {shown}");
    }
    // Not even when the server itself is unreachable and the URL is echoed.
    drop(server);
    let err = r.get("k").unwrap_err();
    assert!(!format!("{err} {err:?}").contains("hunter2-pw"));
}
