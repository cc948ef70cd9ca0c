//! Spans, events and metrics of the blocking client, captured by a test subscriber and a
//! test metrics hook, against real servers: a command, a pipeline, a transaction, a
//! server error, a retried read, a reconnect, a pool wait; and no password anywhere.

mod capture;

use capture::{Capture, Recorder};
use redis_client::prelude::*;
use redis_client::{ConnectionInfo, PoolOptions, Redis};
use redis_tests::{FaultProxy, ServerConfig, TestServer};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

fn info(server: &TestServer) -> ConnectionInfo {
    ConnectionInfo::tcp("127.0.0.1", server.port())
}

#[test]
fn a_command_is_one_span_with_the_database_conventions_and_one_measurement() {
    let server = TestServer::start();
    let rec = Recorder::new();
    let r = Redis::from_info(info(&server).with_db(3).with_metrics(rec.clone()));
    let capture = Capture::default();
    tracing::subscriber::with_default(capture.subscriber(), || {
        r.set("greeting", "hello").unwrap();
        r.get("greeting").unwrap();
    });
    let spans = capture.spans_named("redis.command");
    assert_eq!(spans.len(), 2, "{spans:#?}");
    let (set, get) = (&spans[0], &spans[1]);
    assert!(set.closed && get.closed);
    assert_eq!(set.get("otel.name"), Some("SET"));
    assert_eq!(set.get("db.operation.name"), Some("SET"));
    assert_eq!(get.get("db.operation.name"), Some("GET"));
    assert_eq!(set.get("otel.kind"), Some("client"));
    assert_eq!(set.get("db.system.name"), Some("redis"));
    assert_eq!(set.get("db.system"), Some("redis"));
    assert_eq!(set.get("db.namespace"), Some("3"));
    assert_eq!(set.get("server.address"), Some("127.0.0.1"));
    assert_eq!(set.get("server.port"), Some(&*server.port().to_string()));
    // Keys and values are not recorded unless asked for; a success has no error fields.
    for field in ["db.query.text", "error.type", "db.operation.batch.size"] {
        assert_eq!(set.get(field), None, "{field}");
    }
    assert!(!capture.all_text().contains("greeting"));

    assert_eq!(
        rec.starting("command"),
        ["command SET ok", "command GET ok"]
    );
    assert!(rec.starting("error").is_empty());
    // SELECT 3 and PING in the handshake, then the two commands; the replies back.
    assert!(rec.bytes("bytes_out") > 40, "{:?}", rec.lines());
    assert!(rec.bytes("bytes_in") >= "+OK\r\n+PONG\r\n+OK\r\n$5\r\nhello\r\n".len() as u64);
    assert_eq!(rec.starting("pool ").last().unwrap(), "pool 1 1 0");
}

#[test]
fn the_command_text_is_recorded_only_when_asked_and_cut_to_length() {
    let server = TestServer::start();
    let r = Redis::from_info(info(&server).with_query_text(Some(4)));
    let capture = Capture::default();
    tracing::subscriber::with_default(capture.subscriber(), || {
        r.set("greeting", "hi").unwrap();
        r.execute_command(("config", "set", "requirepass", ""))
            .unwrap();
    });
    let spans = capture.spans_named("redis.command");
    assert_eq!(spans[0].get("db.query.text"), Some("SET gree…(8 bytes) hi"));
    assert_eq!(spans[1].get("db.operation.name"), Some("CONFIG"));
    assert_eq!(
        spans[1].get("db.query.text"),
        Some("config set requ…(11 bytes) ?")
    );
}

#[test]
fn a_pipeline_and_a_transaction_are_one_span_each_with_their_batch_size() {
    let server = TestServer::start();
    let rec = Recorder::new();
    let r = Redis::from_info(info(&server).with_metrics(rec.clone()));
    let capture = Capture::default();
    tracing::subscriber::with_default(capture.subscriber(), || {
        let mut pipe = r.pipeline();
        pipe.transaction(false);
        pipe.set("a", 1).incr("a").get("a");
        pipe.execute().unwrap();
        let mut tx = r.pipeline();
        tx.set("b", 1).incr("b");
        tx.execute().unwrap();
    });
    assert!(capture.spans_named("redis.command").is_empty());
    let pipes = capture.spans_named("redis.pipeline");
    assert_eq!(pipes.len(), 1);
    assert_eq!(pipes[0].get("db.operation.name"), Some("PIPELINE"));
    assert_eq!(pipes[0].get("otel.name"), Some("PIPELINE"));
    assert_eq!(pipes[0].get("db.operation.batch.size"), Some("3"));
    assert_eq!(pipes[0].get("db.system.name"), Some("redis"));
    let txs = capture.spans_named("redis.transaction");
    assert_eq!(txs.len(), 1);
    assert_eq!(txs[0].get("db.operation.name"), Some("MULTI"));
    assert_eq!(txs[0].get("db.operation.batch.size"), Some("2"));
    assert_eq!(
        rec.starting("command"),
        ["command PIPELINE ok", "command MULTI ok"]
    );
}

#[test]
fn a_watched_transaction_has_a_span_per_immediate_command_and_one_for_exec() {
    let server = TestServer::start();
    let r = Redis::from_info(info(&server));
    let capture = Capture::default();
    tracing::subscriber::with_default(capture.subscriber(), || {
        r.transaction("counter", |mut w| {
            let n = w.get("counter")?.map_or(0, |v| v.len() as i64);
            let mut tx = w.multi();
            tx.set("counter", n + 1);
            Ok(tx)
        })
        .unwrap();
    });
    let names: Vec<_> = capture
        .spans()
        .iter()
        .map(|s| format!("{} {}", s.name, s.get("otel.name").unwrap_or("")))
        .collect();
    assert_eq!(
        names,
        [
            "redis.command WATCH",
            "redis.command GET",
            "redis.transaction MULTI"
        ]
    );
}

#[test]
fn a_server_error_marks_the_span_and_counts_by_code() {
    let server = TestServer::start();
    let rec = Recorder::new();
    let r = Redis::from_info(info(&server).with_metrics(rec.clone()));
    r.sadd("set", "x").unwrap();
    rec.clear();
    let capture = Capture::default();
    tracing::subscriber::with_default(capture.subscriber(), || {
        r.get("set").unwrap_err();
    });
    let span = &capture.spans_named("redis.command")[0];
    assert_eq!(span.get("error.type"), Some("WRONGTYPE"));
    assert_eq!(span.get("db.response.status_code"), Some("WRONGTYPE"));
    assert_eq!(span.get("otel.status_code"), Some("ERROR"));
    assert_eq!(
        rec.starting("command").concat() + &rec.starting("error").concat(),
        "command GET errorerror WRONGTYPE"
    );
    assert!(
        capture.events_named("redis.retry").is_empty(),
        "not retried"
    );
}

#[test]
fn a_retried_read_reports_the_retry_in_its_span_and_the_reconnect() {
    let server = TestServer::start();
    let proxy = FaultProxy::start(server.port());
    let rec = Recorder::new();
    let r = Redis::from_info(
        ConnectionInfo::tcp("127.0.0.1", proxy.port())
            .with_timeout(Some(Duration::from_secs(2)))
            .with_metrics(rec.clone()),
    );
    r.set("k", "v").unwrap();
    rec.clear();
    let capture = Capture::default();
    tracing::subscriber::with_default(capture.subscriber(), || {
        proxy.cut_after(3);
        assert_eq!(r.get("k").unwrap().as_deref(), Some(&b"v"[..]));
    });
    let spans = capture.spans_named("redis.command");
    assert_eq!(spans.len(), 1, "one span for the call, retries included");
    assert_eq!(spans[0].get("error.type"), None, "it succeeded");
    let retries = capture.events_named("redis.retry");
    assert_eq!(retries.len(), 1, "{:#?}", capture.events());
    assert_eq!(retries[0].get("attempt"), Some("2"));
    assert_eq!(retries[0].get("error.type"), Some("connection"));
    assert!(retries[0].get("reason").is_some_and(|r| !r.is_empty()));
    assert_eq!(
        retries[0].parent,
        Some(("redis.command".to_owned(), Some("GET".to_owned())))
    );
    let reconnects = capture.events_named("redis.reconnect");
    assert_eq!(reconnects.len(), 1, "{:#?}", capture.events());
    assert_eq!(reconnects[0].get("connection"), Some("pool"));
    assert_eq!(
        reconnects[0].get("server.port"),
        Some(&*proxy.port().to_string())
    );
    assert_eq!(rec.starting("retry").len(), 1);
    assert_eq!(rec.starting("reconnect").len(), 1);
    assert_eq!(rec.starting("command"), ["command GET ok"]);
}

#[test]
fn a_connection_killed_by_the_server_is_replaced_and_reported() {
    let server = TestServer::start();
    let rec = Recorder::new();
    let r = Redis::from_info(info(&server).with_metrics(rec.clone()));
    r.ping().unwrap();
    server.raw(&["CLIENT", "KILL", "TYPE", "normal"]);
    std::thread::sleep(Duration::from_millis(50));
    let capture = Capture::default();
    tracing::subscriber::with_default(capture.subscriber(), || {
        r.ping().unwrap();
    });
    let reconnects = capture.events_named("redis.reconnect");
    assert_eq!(reconnects.len(), 1, "{:#?}", capture.events());
    assert_eq!(
        reconnects[0].parent.as_ref().map(|p| p.0.as_str()),
        Some("redis.command")
    );
    assert_eq!(rec.starting("reconnect").len(), 1);
    assert!(
        capture.events_named("redis.retry").is_empty(),
        "no retry was needed"
    );
}

#[test]
fn a_checkout_that_waits_is_reported_with_its_wait() {
    let server = TestServer::start();
    let rec = Recorder::new();
    let r = Redis::from_pool(redis_client::ConnectionPool::with_options(
        info(&server).with_metrics(rec.clone()),
        PoolOptions::default().with_max_size(1),
    ));
    r.ping().unwrap();
    let (held, wait_for_hold) = mpsc::channel();
    let holder = {
        let r = r.clone();
        std::thread::spawn(move || {
            let conn = r.get_connection().unwrap();
            held.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(100));
            drop(conn);
        })
    };
    wait_for_hold.recv().unwrap();
    let capture = Capture::default();
    tracing::subscriber::with_default(capture.subscriber(), || {
        r.ping().unwrap();
    });
    holder.join().unwrap();
    let waits = capture.events_named("redis.pool.wait");
    assert_eq!(waits.len(), 1, "{:#?}", capture.events());
    let us: u64 = waits[0].get("wait_us").unwrap().parse().unwrap();
    assert!(us >= 50_000, "waited {us} µs for a connection held 100 ms");
    assert_eq!(waits[0].get("ok"), Some("true"));
    let ms: u64 = rec.starting("pool_wait")[0][10..].parse().unwrap();
    assert!(ms >= 50);
    // The holder's hand-back is reported with the waiter still counted.
    assert!(
        rec.lines().iter().any(|l| l == "pool 1 1 1"),
        "{:?}",
        rec.lines()
    );
}

#[test]
fn no_password_appears_in_any_span_event_or_metric() {
    const SECRET: &str = "s3cret-pw-7f2a";
    let server = TestServer::start_with(ServerConfig::default().password(SECRET));
    let proxy = FaultProxy::start(server.port());
    let rec = Recorder::new();
    let url = format!("redis://:{SECRET}@127.0.0.1:{}/1", proxy.port());
    let info: ConnectionInfo = url.parse().unwrap();
    let r = Redis::from_info(info.with_query_text(Some(1000)).with_metrics(rec.clone()));
    let capture = Capture::default();
    tracing::subscriber::with_default(capture.subscriber(), || {
        r.set("k", "v").unwrap();
        r.execute_command(("AUTH", SECRET)).unwrap();
        r.execute_command(("AUTH", "default", SECRET)).unwrap();
        r.execute_command(("AUTH", "wrong-password")).unwrap_err();
        r.execute_command(("HELLO", "2", "AUTH", "default", SECRET))
            .unwrap();
        r.execute_command((
            "ACL",
            "SETUSER",
            "app",
            "on",
            format!(">{SECRET}"),
            "~*",
            "+@all",
        ))
        .unwrap();
        r.execute_command(("CONFIG", "SET", "requirepass", SECRET))
            .unwrap();
        let mut pipe = r.pipeline();
        pipe.execute_command(("AUTH", SECRET)).get("k");
        pipe.execute().unwrap();
        // A retry and a reconnect, whose events name the server.
        proxy.cut_after(3);
        r.get("k").unwrap();
        let mut conn = r.dedicated_connection().unwrap();
        conn.execute_command(("AUTH", "app", SECRET)).unwrap();
        let mut ps = r.pubsub();
        ps.subscribe("news").unwrap();
    });
    let subscribe: Vec<_> = capture
        .spans_named("redis.command")
        .into_iter()
        .filter(|s| s.get("otel.name") == Some("SUBSCRIBE"))
        .collect();
    assert_eq!(subscribe.len(), 1);
    let text = capture.all_text();
    assert!(
        text.contains("\"AUTH ?\"") && text.contains("AUTH ? ?"),
        "the command text was recorded, redacted: {text}"
    );
    assert!(text.contains("ACL SETUSER app ? ? ? ?"), "{text}");
    assert!(text.contains("CONFIG SET requirepass ?"), "{text}");
    assert!(text.contains("HELLO 2 AUTH ? ?"), "{text}");
    assert_eq!(capture.events_named("redis.retry").len(), 1);
    assert_eq!(capture.events_named("redis.reconnect").len(), 1);
    assert!(
        !text.contains(SECRET),
        "a password in a span or event: {text}"
    );
    let lines = rec.lines().concat();
    assert!(lines.contains("error WRONGPASS"), "{lines}");
    assert!(!lines.contains(SECRET));
}

/// A `metrics` recorder keeping every registration and value as `name{labels} value`.
#[derive(Clone, Default)]
struct MetricsLog(Arc<Mutex<Vec<String>>>);

struct Handle(Arc<Mutex<Vec<String>>>, String);

impl metrics::CounterFn for Handle {
    fn increment(&self, value: u64) {
        self.0.lock().unwrap().push(format!("{} {value}", self.1));
    }
    fn absolute(&self, value: u64) {
        self.increment(value);
    }
}

impl metrics::GaugeFn for Handle {
    fn increment(&self, _: f64) {}
    fn decrement(&self, _: f64) {}
    fn set(&self, value: f64) {
        self.0.lock().unwrap().push(format!("{} {value}", self.1));
    }
}

impl metrics::HistogramFn for Handle {
    fn record(&self, value: f64) {
        assert!((0.0..60.0).contains(&value), "seconds: {value}");
        self.0.lock().unwrap().push(format!("{} seconds", self.1));
    }
}

impl MetricsLog {
    fn handle(&self, key: &metrics::Key) -> Arc<Handle> {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        Arc::new(Handle(
            self.0.clone(),
            format!("{}{{{}}}", key.name(), labels.join(",")),
        ))
    }
}

impl metrics::Recorder for MetricsLog {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        metrics::Counter::from_arc(self.handle(key))
    }
    fn register_gauge(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::from_arc(self.handle(key))
    }
    fn register_histogram(
        &self,
        key: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::from_arc(self.handle(key))
    }
}

#[test]
fn the_metrics_crate_adapter_records_the_documented_names() {
    let server = TestServer::start();
    let proxy = FaultProxy::start(server.port());
    let log = MetricsLog::default();
    let r = Redis::from_info(
        ConnectionInfo::tcp("127.0.0.1", proxy.port())
            .with_timeout(Some(Duration::from_secs(2)))
            .with_metrics(Arc::new(redis_client::metrics::MetricsCrate::new())),
    );
    metrics::with_local_recorder(&log, || {
        r.set("k", "v").unwrap();
        r.sadd("s", "x").unwrap();
        r.get("s").unwrap_err();
        proxy.cut_after(3);
        r.get("k").unwrap();
        redis_client::metrics::redirection(r.pool().info(), "MOVED", 1234, "10.0.0.1:7001");
    });
    // A checkout that waits, on a pool of one.
    let one = Redis::from_pool(redis_client::ConnectionPool::with_options(
        info(&server).with_metrics(Arc::new(redis_client::metrics::MetricsCrate::new())),
        PoolOptions::default().with_max_size(1),
    ));
    let conn = one.get_connection().unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        drop(conn);
    });
    metrics::with_local_recorder(&log, || one.ping().unwrap());
    release.join().unwrap();
    let lines = log.0.lock().unwrap().clone();
    let has = |line: &str| lines.iter().any(|l| l == line);
    for line in [
        "redis_client_command_duration_seconds{command=SET,outcome=ok} seconds",
        "redis_client_command_duration_seconds{command=GET,outcome=error} seconds",
        "redis_client_errors_total{kind=WRONGTYPE} 1",
        "redis_client_retries_total{} 1",
        "redis_client_reconnects_total{} 1",
        "redis_client_redirections_total{kind=MOVED} 1",
        "redis_client_pool_connections{} 1",
        "redis_client_pool_idle_connections{} 1",
        "redis_client_pool_waiters{} 0",
        "redis_client_pool_wait_seconds{} seconds",
    ] {
        assert!(has(line), "no {line:?} in {lines:#?}");
    }
    for prefix in [
        "redis_client_bytes_sent_total{} ",
        "redis_client_bytes_received_total{} ",
    ] {
        assert!(lines.iter().any(|l| l.starts_with(prefix)), "{prefix}");
    }
}

#[test]
fn a_redirection_is_an_event_naming_the_slot_and_the_node() {
    let info = ConnectionInfo::tcp("127.0.0.1", 7000);
    let capture = Capture::default();
    tracing::subscriber::with_default(capture.subscriber(), || {
        redis_client::metrics::redirection(&info, "ASK", 866, "127.0.0.1:7002");
    });
    let events = capture.events_named("redis.redirection");
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(
        (
            e.get("kind"),
            e.get("slot"),
            e.get("to"),
            e.get("server.port")
        ),
        (
            Some("ASK"),
            Some("866"),
            Some("127.0.0.1:7002"),
            Some("7000")
        )
    );
}

#[test]
fn a_server_error_quoting_the_arguments_records_only_its_code() {
    let server = TestServer::start();
    let rec = Recorder::new();
    let r = Redis::from_info(info(&server).with_metrics(rec.clone()));
    let capture = Capture::default();
    tracing::subscriber::with_default(capture.subscriber(), || {
        // The server's message quotes the arguments: "… with args beginning with: '…'".
        let err = r
            .execute_command(("NOSUCHCMD", "hunter2-secret"))
            .unwrap_err();
        assert!(err.to_string().contains("hunter2-secret"), "{err}");
    });
    let span = &capture.spans_named("redis.command")[0];
    assert_eq!(span.get("error.type"), Some("ERR"));
    assert!(
        !capture.all_text().contains("hunter2"),
        "{}",
        capture.all_text()
    );
    assert!(
        !rec.lines().concat().contains("hunter2"),
        "{:?}",
        rec.lines()
    );
}

#[test]
fn a_subscriber_renewing_its_subscriptions_is_a_reconnect_event() {
    let server = TestServer::start();
    let r = Redis::from_info(info(&server));
    let mut sub = r.pubsub();
    sub.subscribe("news").unwrap();
    server.raw(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    let capture = Capture::default();
    tracing::subscriber::with_default(capture.subscriber(), || loop {
        let m = sub.get_message(Some(Duration::from_secs(5))).unwrap();
        let m = m.expect("a message within 5 s");
        if m.kind == redis_client::MessageKind::Reconnected {
            break;
        }
    });
    let reconnects = capture.events_named("redis.reconnect");
    assert_eq!(reconnects.len(), 1, "{:#?}", capture.events());
    assert_eq!(reconnects[0].get("connection"), Some("pubsub"));
    assert_eq!(
        reconnects[0].get("server.port"),
        Some(&*server.port().to_string())
    );
}

#[test]
fn a_health_check_ping_has_no_span_of_its_own() {
    let server = TestServer::start();
    let r = Redis::from_pool(redis_client::ConnectionPool::with_options(
        info(&server),
        PoolOptions::default().with_health_check(Some(Duration::ZERO)),
    ));
    r.set("k", "v").unwrap();
    let pings = || -> u64 {
        let stats = server.raw(&["INFO", "commandstats"]);
        stats
            .split("cmdstat_ping:calls=")
            .nth(1)
            .and_then(|rest| rest.split(',').next()?.parse().ok())
            .unwrap_or(0)
    };
    let before = pings();
    let capture = Capture::default();
    tracing::subscriber::with_default(capture.subscriber(), || {
        // The checkout pings the idle connection first (health check after 0 s idle).
        r.get("k").unwrap();
    });
    assert_eq!(pings(), before + 1, "the health check pinged");
    let spans = capture.spans_named("redis.command");
    assert_eq!(spans.len(), 1, "{spans:#?}");
    assert_eq!(spans[0].get("otel.name"), Some("GET"));
}
