//! Spans, events and metrics of the async client, captured by a test subscriber and a
//! test metrics hook, against real servers: a command, a pipeline, a transaction, a
//! server error, a retried read and a reconnect of the shared connection, a pool wait,
//! pub/sub; and no password anywhere.

mod capture;

use capture::{Capture, Recorder};
use redis_client::aio::Redis;
use redis_client::prelude::*;
use redis_client::{ConnectionInfo, PoolOptions};
use redis_tests::{FaultProxy, ServerConfig, TestServer};
use std::time::Duration;

fn info(server: &TestServer) -> ConnectionInfo {
    ConnectionInfo::tcp("127.0.0.1", server.port())
}

#[tokio::test]
async fn a_command_is_one_span_and_one_measurement() {
    let server = TestServer::start();
    let rec = Recorder::new();
    let r = Redis::from_info(info(&server).with_db(2).with_metrics(rec.clone()));
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.subscriber());
    r.set("greeting", "hello").await.unwrap();
    r.get("greeting").await.unwrap();
    let spans = capture.spans_named("redis.command");
    assert_eq!(spans.len(), 2, "{spans:#?}");
    assert!(spans.iter().all(|s| s.closed));
    assert_eq!(spans[0].get("db.operation.name"), Some("SET"));
    assert_eq!(spans[1].get("otel.name"), Some("GET"));
    assert_eq!(spans[0].get("db.system.name"), Some("redis"));
    assert_eq!(spans[0].get("db.namespace"), Some("2"));
    assert_eq!(spans[0].get("server.address"), Some("127.0.0.1"));
    assert_eq!(
        spans[0].get("server.port"),
        Some(&*server.port().to_string())
    );
    assert_eq!(spans[0].get("db.query.text"), None);
    assert!(!capture.all_text().contains("greeting"));
    assert_eq!(
        rec.starting("command"),
        ["command SET ok", "command GET ok"]
    );
    assert!(rec.bytes("bytes_out") > 40);
    assert!(rec.bytes("bytes_in") >= "+OK\r\n+PONG\r\n+OK\r\n$5\r\nhello\r\n".len() as u64);
}

#[tokio::test]
async fn a_pipeline_a_transaction_and_a_watched_transaction() {
    let server = TestServer::start();
    let rec = Recorder::new();
    let r = Redis::from_info(info(&server).with_metrics(rec.clone()));
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.subscriber());
    let mut pipe = r.pipeline();
    pipe.transaction(false);
    pipe.set("a", 1).incr("a").get("a");
    pipe.execute().await.unwrap();
    let mut tx = r.pipeline();
    tx.set("b", 1).incr("b");
    tx.execute().await.unwrap();
    r.transaction("c", |mut w| async move {
        w.get("c").await?;
        let mut pipe = w.multi();
        pipe.set("c", 1);
        Ok(pipe)
    })
    .await
    .unwrap();
    let names: Vec<_> = capture
        .spans()
        .iter()
        .map(|s| {
            format!(
                "{} {} {}",
                s.name,
                s.get("otel.name").unwrap_or(""),
                s.get("db.operation.batch.size").unwrap_or("-")
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            "redis.pipeline PIPELINE 3",
            "redis.transaction MULTI 2",
            "redis.command WATCH -",
            "redis.command GET -",
            "redis.transaction MULTI 1",
        ]
    );
    assert_eq!(
        rec.starting("command"),
        [
            "command PIPELINE ok",
            "command MULTI ok",
            "command WATCH ok",
            "command GET ok",
            "command MULTI ok"
        ]
    );
}

#[tokio::test]
async fn a_server_error_marks_the_span_and_counts_by_code() {
    let server = TestServer::start();
    let rec = Recorder::new();
    let r = Redis::from_info(info(&server).with_metrics(rec.clone()));
    r.sadd("set", "x").await.unwrap();
    rec.clear();
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.subscriber());
    r.get("set").await.unwrap_err();
    let span = &capture.spans_named("redis.command")[0];
    assert_eq!(span.get("error.type"), Some("WRONGTYPE"));
    assert_eq!(span.get("db.response.status_code"), Some("WRONGTYPE"));
    assert_eq!(span.get("otel.status_code"), Some("ERROR"));
    assert_eq!(rec.starting("command"), ["command GET error"]);
    assert_eq!(rec.starting("error"), ["error WRONGTYPE"]);
}

#[tokio::test]
async fn a_retried_read_reports_the_retry_and_the_reconnect_of_the_shared_connection() {
    let server = TestServer::start();
    let proxy = FaultProxy::start(server.port());
    let rec = Recorder::new();
    let r = Redis::from_info(
        ConnectionInfo::tcp("127.0.0.1", proxy.port())
            .with_timeout(Some(Duration::from_secs(2)))
            .with_metrics(rec.clone()),
    );
    r.set("k", "v").await.unwrap();
    rec.clear();
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.subscriber());
    proxy.cut_after(3);
    assert_eq!(r.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(capture.spans_named("redis.command").len(), 1);
    let retries = capture.events_named("redis.retry");
    assert_eq!(retries.len(), 1, "{:#?}", capture.events());
    assert_eq!(retries[0].get("attempt"), Some("2"));
    assert_eq!(
        retries[0].parent,
        Some(("redis.command".to_owned(), Some("GET".to_owned())))
    );
    let reconnects = capture.events_named("redis.reconnect");
    assert_eq!(reconnects.len(), 1, "{:#?}", capture.events());
    assert_eq!(reconnects[0].get("connection"), Some("multiplexed"));
    assert_eq!(rec.starting("retry").len(), 1);
    assert_eq!(rec.starting("reconnect").len(), 1);
}

#[tokio::test]
async fn a_checkout_that_waits_is_reported_with_its_wait() {
    let server = TestServer::start();
    let rec = Recorder::new();
    let r = Redis::with_pool_options(
        info(&server).with_metrics(rec.clone()),
        PoolOptions::default().with_max_size(1),
    );
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.subscriber());
    // Blocking commands take a pooled connection each: the second waits for the first.
    let (a, b) = tokio::join!(
        r.blpop("q", Duration::from_millis(200)),
        r.blpop("q", Duration::from_millis(50))
    );
    assert_eq!((a.unwrap(), b.unwrap()), (None, None));
    let waits = capture.events_named("redis.pool.wait");
    assert_eq!(waits.len(), 1, "{:#?}", capture.events());
    let us: u64 = waits[0].get("wait_us").unwrap().parse().unwrap();
    assert!(us >= 100_000, "waited {us} µs behind a 200 ms BLPOP");
    assert_eq!(
        waits[0].parent.as_ref().map(|p| p.0.as_str()),
        Some("redis.command")
    );
    assert_eq!(rec.starting("pool_wait").len(), 1);
    assert!(
        rec.lines().iter().any(|l| l == "pool 1 0 0"),
        "{:?}",
        rec.lines()
    );
}

#[tokio::test]
async fn no_password_appears_in_any_span_event_or_metric() {
    const SECRET: &str = "s3cret-pw-a10c";
    let server = TestServer::start_with(ServerConfig::default().password(SECRET));
    let proxy = FaultProxy::start(server.port());
    let rec = Recorder::new();
    let url = format!("redis://:{SECRET}@127.0.0.1:{}/1", proxy.port());
    let info: ConnectionInfo = url.parse().unwrap();
    let r = Redis::from_info(info.with_query_text(Some(1000)).with_metrics(rec.clone()));
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.subscriber());
    r.set("k", "v").await.unwrap();
    r.execute_command(("AUTH", SECRET)).await.unwrap();
    r.execute_command(("AUTH", "wrong-password"))
        .await
        .unwrap_err();
    r.execute_command(("HELLO", "2", "AUTH", "default", SECRET))
        .await
        .unwrap();
    r.execute_command(("CONFIG", "SET", "requirepass", SECRET))
        .await
        .unwrap();
    let mut pipe = r.pipeline();
    pipe.execute_command(("AUTH", SECRET)).get("k");
    pipe.execute().await.unwrap();
    let mut ps = r.pubsub();
    ps.subscribe("news").await.unwrap();
    // The confirmation comes through the proxy too: in before the cut is armed.
    let confirmed = ps.get_message(Some(Duration::from_secs(2))).await.unwrap();
    assert!(confirmed.is_some());
    proxy.cut_after(3);
    r.get("k").await.unwrap();

    let text = capture.all_text();
    assert!(text.contains("\"AUTH ?\""), "{text}");
    assert!(text.contains("HELLO 2 AUTH ? ?"), "{text}");
    assert!(text.contains("CONFIG SET requirepass ?"), "{text}");
    assert_eq!(capture.events_named("redis.retry").len(), 1, "{text}");
    assert_eq!(capture.events_named("redis.reconnect").len(), 1, "{text}");
    let subscribe: Vec<_> = capture
        .spans_named("redis.command")
        .into_iter()
        .filter(|s| s.get("otel.name") == Some("SUBSCRIBE"))
        .collect();
    assert_eq!(subscribe.len(), 1, "{text}");
    assert!(
        !text.contains(SECRET),
        "a password in a span or event: {text}"
    );
    let lines = rec.lines().concat();
    assert!(lines.contains("error WRONGPASS"), "{lines}");
    assert!(!lines.contains(SECRET));
}
