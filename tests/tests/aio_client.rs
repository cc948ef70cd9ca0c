//! The async client: commands, text mode, the dynamic path, pipelines, transactions,
//! WATCH, scripts and SCAN over RESP2 and RESP3; blocking and state-changing commands
//! on dedicated pooled connections, chosen from their declared flags; the async pool.

use bytes::Bytes;
use redis_client::aio::Redis;
use redis_client::futures_core::Stream;
use redis_client::prelude::*;
use redis_client::redis_commands::ZRange;
use redis_client::{ConnectionInfo, Error, ErrorCode, PoolOptions, Protocol, ScanOptions, Value};
use redis_tests::TestServer;
use std::collections::{HashMap, HashSet};
use std::future::poll_fn;
use std::pin::pin;
use std::time::{Duration, Instant};

/// Runs `check` once per protocol, each on a freshly flushed database.
async fn for_each_protocol<F, Fut>(server: &TestServer, check: F)
where
    F: Fn(Redis) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for protocol in [Protocol::Resp2, Protocol::Resp3] {
        let r = Redis::from_info(
            ConnectionInfo::tcp("127.0.0.1", server.port()).with_protocol(protocol),
        );
        r.execute_command("FLUSHALL").await.expect("flushall");
        eprintln!("over {protocol:?}");
        check(r).await;
    }
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

#[tokio::test]
async fn commands_give_the_declared_types_over_both_protocols() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| async move {
        assert!(r.set("foo", "bar").await.unwrap());
        assert_eq!(r.get("foo").await.unwrap(), Some(b("bar")));
        assert_eq!(r.get("missing").await.unwrap(), None);
        assert_eq!(r.incr("n").await.unwrap(), 1);
        assert_eq!(r.reply_as::<i64>().get("n").await.unwrap(), 1);
        r.hset("h", "f", "v").await.unwrap();
        assert_eq!(
            r.hgetall("h").await.unwrap(),
            HashMap::from([(b("f"), b("v"))])
        );
        assert_eq!(r.hincrbyfloat("h", "x", 1.5).await.unwrap(), 1.5);
        r.zadd("z", [(1.0, "a"), (2.5, "b")]).await.unwrap();
        assert_eq!(
            r.zrange_withscores("z", ZRange::by_index(0, -1))
                .await
                .unwrap(),
            [(b("a"), 1.0), (b("b"), 2.5)]
        );
        assert_eq!(r.zscore("z", "b").await.unwrap(), Some(2.5));
        assert_eq!(r.sadd("s", ["x", "y"]).await.unwrap(), 2);
        assert_eq!(r.del(["foo", "n"]).await.unwrap(), 2);
        // A server error is typed, with its code.
        r.set("str", "x").await.unwrap();
        let e = r.lpush("str", "y").await.unwrap_err();
        assert!(
            matches!(e, Error::Server(ref s) if s.code() == ErrorCode::WRONGTYPE),
            "{e:?}"
        );
        // The dynamic path applies the default callbacks.
        assert_eq!(
            r.execute_command(("SET", "k", "v")).await.unwrap(),
            Value::Boolean(true)
        );
    })
    .await;
}

#[tokio::test]
async fn text_mode_gives_strings() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| async move {
        let t = r.text();
        t.set("greeting", "héllo").await.unwrap();
        let s: Option<String> = t.get("greeting").await.unwrap();
        assert_eq!(s.as_deref(), Some("héllo"));
        t.hset("h", "f", "v").await.unwrap();
        let m: HashMap<String, String> = t.hgetall("h").await.unwrap();
        assert_eq!(m["f"], "v");
        r.set("bin", [0xffu8, 0xfe].as_slice()).await.unwrap();
        assert!(matches!(t.get("bin").await, Err(Error::Reply { .. })));
        let mut pipe = t.pipeline();
        pipe.get("greeting");
        assert_eq!(
            pipe.execute().await.unwrap(),
            [Value::BulkString(b("héllo"))]
        );
        // WATCH in text mode: the read inside the transaction is a String.
        t.transaction("greeting", |mut w| async move {
            let current: Option<String> = w.get("greeting").await?;
            let mut pipe = w.multi();
            pipe.set("greeting", format!("{}!", current.unwrap_or_default()));
            Ok(pipe)
        })
        .await
        .unwrap();
        assert_eq!(t.get("greeting").await.unwrap().as_deref(), Some("héllo!"));
    })
    .await;
}

#[tokio::test]
async fn pipelines_and_transactions() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| async move {
        r.set("bing", "baz").await.unwrap();
        let mut pipe = r.pipeline();
        pipe.set("foo", "bar").get("bing");
        assert_eq!(
            pipe.execute().await.unwrap(),
            [Value::Boolean(true), Value::BulkString(b("baz"))]
        );
        let mut pipe = r.pipeline();
        pipe.set("foo", "bar")
            .sadd("faz", "baz")
            .incr("auto_number");
        let (set, added, n): (bool, i64, i64) = pipe.query().await.unwrap();
        assert_eq!((set, added, n), (true, 1, 1));

        // A failing command: every reply is read, the error names the command.
        let mut pipe = r.pipeline();
        pipe.transaction(false);
        pipe.set("a", "1").lpush("a", "x").get("a");
        let e = pipe.execute().await.unwrap_err();
        assert!(
            matches!(e, Error::PipelineCommand { index: 1, .. }),
            "{e:?}"
        );
        // A command refused while queueing discards the transaction.
        let mut pipe = r.pipeline();
        pipe.set("never", "1").execute_command(("NOSUCHCOMMAND",));
        let e = pipe.execute().await.unwrap_err();
        assert!(matches!(e, Error::ExecAbort { index: 1, .. }), "{e:?}");
        assert_eq!(r.get("never").await.unwrap(), None);
        // The shared connection is still in step.
        assert_eq!(r.get("a").await.unwrap(), Some(b("1")));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_retries_when_a_watched_key_changes() {
    let server = TestServer::start();
    let r = Redis::from_info(ConnectionInfo::tcp("127.0.0.1", server.port()));
    r.set("seq", 0).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let r = r.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..10 {
                r.transaction("seq", |mut w| async move {
                    let current = w.reply_as::<Option<i64>>().get("seq").await?.unwrap_or(0);
                    let mut pipe = w.multi();
                    pipe.set("seq", current + 1);
                    Ok(pipe)
                })
                .await
                .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Client-side increments, 200 of them racing: none lost.
    assert_eq!(r.reply_as::<i64>().get("seq").await.unwrap(), 200);
}

#[tokio::test]
async fn watch_abort_and_the_transaction_helper_over_both_protocols() {
    // EXEC's abort is a nil array over RESP2 and a null over RESP3: both are a watch error.
    let server = TestServer::start();
    for_each_protocol(&server, |r| async move {
        let w = r.pipeline().watch("k").await.unwrap();
        r.set("k", "changed").await.unwrap();
        let mut pipe = w.multi();
        pipe.set("k", "mine");
        assert!(matches!(pipe.execute().await, Err(Error::Watch)));
        assert_eq!(r.get("k").await.unwrap(), Some(b("changed")));
        // The helper retries after a change made inside its first attempt.
        let mut attempts = 0;
        let results = r
            .transaction("k", |mut w| {
                attempts += 1;
                let interfere = (attempts == 1).then(|| r.clone());
                async move {
                    let current = w.get("k").await?;
                    if let Some(other) = interfere {
                        other.set("k", "meanwhile").await?;
                    }
                    let mut pipe = w.multi();
                    pipe.append("k", "+").get("k");
                    assert!(current.is_some());
                    Ok(pipe)
                }
            })
            .await
            .unwrap();
        assert_eq!(attempts, 2);
        assert_eq!(
            results,
            vec![Value::Integer(10), Value::BulkString(b("meanwhile+"))]
        );
    })
    .await;
}

#[tokio::test]
async fn watch_abort_is_a_watch_error_and_the_connection_comes_back_unwatched() {
    let server = TestServer::start();
    let r = Redis::with_pool_options(
        ConnectionInfo::tcp("127.0.0.1", server.port()),
        PoolOptions::default().with_max_size(1),
    );
    let w = r.pipeline().watch("k").await.unwrap();
    r.set("k", "changed").await.unwrap();
    let mut pipe = w.multi();
    pipe.set("k", "mine");
    assert!(matches!(pipe.execute().await, Err(Error::Watch)));
    assert_eq!(r.get("k").await.unwrap(), Some(b("changed")));
    // Dropped while watching: the pool restores it (RESET), so the next user of the one
    // pooled connection does not inherit the WATCH.
    let w = r.pipeline().watch("k").await.unwrap();
    drop(w);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut conn = r.pool().get().await.unwrap();
    assert!(!conn.state().watching);
    conn.command(&["MULTI"]).await.unwrap();
    conn.command(&["SET", "k", "x"]).await.unwrap();
    r.set("k", "other").await.unwrap();
    // Not watched any more, so EXEC runs.
    assert_ne!(conn.command(&["EXEC"]).await.unwrap(), Value::Nil);
}

#[tokio::test]
async fn scripts_reload_on_noscript_alone_and_in_pipelines() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| async move {
        r.script_flush(None).await.unwrap();
        let multiply = r.register_script("return redis.call('GET', KEYS[1]) * ARGV[1]");
        r.set("foo", 2).await.unwrap();
        let ten: i64 = r.invoke_script(multiply.key("foo").arg(5)).await.unwrap();
        assert_eq!(ten, 10);
        r.script_flush(None).await.unwrap();
        let mut pipe = r.pipeline();
        pipe.set("foo", 5).invoke_script(multiply.key("foo").arg(5));
        let (stored, product): (bool, i64) = pipe.query().await.unwrap();
        assert_eq!((stored, product), (true, 25));
    })
    .await;
}

#[tokio::test]
async fn scan_is_a_stream() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| async move {
        for i in 0..250 {
            r.set(format!("user:{i}"), i).await.unwrap();
        }
        r.set("other", 1).await.unwrap();
        let mut keys = pin!(r.scan_stream(ScanOptions::new().pattern("user:*").count(20)));
        let mut seen = HashSet::new();
        while let Some(key) = poll_fn(|cx| keys.as_mut().poll_next(cx)).await {
            seen.insert(key.unwrap());
        }
        assert_eq!(seen.len(), 250);
        let t = r.text();
        let mut names = pin!(t.scan_stream(ScanOptions::new().pattern("oth*")));
        let first = poll_fn(|cx| names.as_mut().poll_next(cx)).await;
        assert_eq!(first.unwrap().unwrap(), "other");

        // SSCAN, HSCAN and ZSCAN, in both modes.
        r.sadd("s", ["a", "b", "c"]).await.unwrap();
        r.hset_multiple("h", [("f1", "v1"), ("f2", "v2")])
            .await
            .unwrap();
        r.zadd("z", [(1.0, "m1"), (2.5, "m2")]).await.unwrap();
        let members: HashSet<Bytes> = collect(r.sscan_stream("s", ScanOptions::new())).await;
        assert_eq!(members, HashSet::from([b("a"), b("b"), b("c")]));
        let members: HashSet<String> = collect(t.sscan_stream("s", ScanOptions::new())).await;
        assert_eq!(members, HashSet::from(["a", "b", "c"].map(String::from)));
        let fields: HashMap<String, String> =
            collect(t.hscan_stream("h", ScanOptions::new())).await;
        assert_eq!(
            fields,
            HashMap::from([("f1", "v1"), ("f2", "v2")].map(|(f, v)| (f.into(), v.into())))
        );
        let fields: HashMap<Bytes, Bytes> = collect(r.hscan_stream("h", ScanOptions::new())).await;
        assert_eq!(fields.len(), 2);
        let mut scored: Vec<(String, f64)> = collect(t.zscan_stream("z", ScanOptions::new())).await;
        scored.sort_by(|a, b| a.1.total_cmp(&b.1));
        assert_eq!(scored, [("m1".to_owned(), 1.0), ("m2".to_owned(), 2.5)]);
        let scored: Vec<(Bytes, f64)> = collect(r.zscan_stream("z", ScanOptions::new())).await;
        assert_eq!(scored.len(), 2);
    })
    .await;
}

/// Every item of a stream, which must all be `Ok`.
async fn collect<T, C: Default + Extend<T>>(
    stream: impl Stream<Item = redis_client::Result<T>>,
) -> C {
    let mut stream = pin!(stream);
    let mut out = C::default();
    while let Some(item) = poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
        out.extend([item.unwrap()]);
    }
    out
}

#[tokio::test]
async fn a_client_built_on_a_shared_pool_uses_its_connections() {
    let server = TestServer::start();
    let pool = redis_client::aio::Pool::new(
        ConnectionInfo::tcp("127.0.0.1", server.port()),
        PoolOptions::default().with_max_size(1),
    );
    let a = Redis::from_pool(pool.clone());
    let b2 = Redis::from_parts(a.multiplexed().clone(), pool.clone());
    // Blocking commands of both clients take the one pooled connection in turn.
    assert_eq!(a.blpop("q", Duration::from_millis(50)).await.unwrap(), None);
    assert_eq!(
        b2.blpop("q", Duration::from_millis(50)).await.unwrap(),
        None
    );
    assert_eq!(
        pool.stats().created,
        1,
        "one connection, shared by both clients"
    );
    // Both send ordinary commands over the one multiplexed connection.
    let id_a = a.client_id().await.unwrap();
    let id_b = b2.client_id().await.unwrap();
    assert_eq!(id_a, id_b);
    assert_eq!(a.connection_info().addr, pool.info().addr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_commands_take_a_pooled_connection_and_never_hold_up_the_shared_one() {
    let server = TestServer::start();
    let r = Redis::from_info(ConnectionInfo::tcp("127.0.0.1", server.port()));
    r.set("k", "v").await.unwrap();
    let blocked = {
        let r = r.clone();
        tokio::spawn(async move { r.blpop("jobs", Duration::from_secs(2)).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    // On the shared connection this GET would wait behind BLPOP for up to 2 s.
    let start = Instant::now();
    assert_eq!(r.get("k").await.unwrap(), Some(b("v")));
    assert!(start.elapsed() < Duration::from_millis(500));
    r.rpush("jobs", "job-1").await.unwrap();
    assert_eq!(
        blocked.await.unwrap().unwrap(),
        Some((b("jobs"), b("job-1")))
    );
    // The raw form is routed the same way.
    let start = Instant::now();
    let raw = {
        let r = r.clone();
        tokio::spawn(async move { r.execute_command(("BLPOP", "jobs", 1)).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    r.get("k").await.unwrap();
    assert!(start.elapsed() < Duration::from_millis(500));
    assert_eq!(raw.await.unwrap().unwrap(), Value::Nil);
}

#[tokio::test]
async fn state_changing_commands_never_change_the_shared_connection() {
    let server = TestServer::start();
    let r = Redis::from_info(ConnectionInfo::tcp("127.0.0.1", server.port()));
    let shared = r.client_id().await.unwrap();
    // The command method is refused before sending (it would be undone); the raw form
    // runs on a pooled connection.
    let refused = r.client_setname("renamed").await.unwrap_err();
    assert!(matches!(refused, Error::Unsupported(_)), "{refused:?}");
    r.execute_command(("CLIENT", "SETNAME", "renamed"))
        .await
        .unwrap();
    assert_eq!(
        r.client_getname().await.unwrap(),
        None,
        "the shared connection kept its name"
    );
    assert_eq!(r.client_id().await.unwrap(), shared);
    // A raw SELECT runs on a pooled connection, which the pool restores afterwards.
    r.execute_command(("SELECT", 5)).await.unwrap();
    r.set("in-0", "yes").await.unwrap();
    assert_eq!(server.raw(&["GET", "in-0"]), "yes");
}

#[tokio::test]
async fn the_pool_is_bounded_and_checkouts_wait_up_to_their_timeout() {
    let server = TestServer::start();
    let r = Redis::with_pool_options(
        ConnectionInfo::tcp("127.0.0.1", server.port()),
        PoolOptions::default()
            .with_max_size(1)
            .with_checkout_timeout(Duration::from_millis(200)),
    );
    let held = r.pool().get().await.unwrap();
    let start = Instant::now();
    let e = r.blpop("q", Duration::from_secs(1)).await.unwrap_err();
    assert!(matches!(e, Error::PoolExhausted(_)), "{e:?}");
    assert!(start.elapsed() >= Duration::from_millis(200));
    drop(held);
    assert_eq!(
        r.blpop("q", Duration::from_millis(100)).await.unwrap(),
        None
    );
    assert_eq!(r.pool().stats().created, 1, "the one connection was reused");
}

#[tokio::test]
async fn the_pool_replaces_a_connection_the_server_closed_while_idle() {
    let server = TestServer::start();
    let r = Redis::with_pool_options(
        ConnectionInfo::tcp("127.0.0.1", server.port()),
        PoolOptions::default().with_max_size(1),
    );
    let id = {
        let mut c = r.pool().get().await.unwrap();
        c.command(&["CLIENT", "ID"]).await.unwrap()
    };
    let Value::Integer(id) = id else {
        panic!("{id:?}")
    };
    server.raw(&["CLIENT", "KILL", "ID", &id.to_string()]);
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The look at checkout sees the closed socket: a fresh connection serves instead.
    assert_eq!(
        r.blpop("q", Duration::from_millis(100)).await.unwrap(),
        None
    );
    assert_eq!(r.pool().stats().discarded, 1);
    assert_eq!(r.pool().stats().created, 2);
}

fn through(proxy: &redis_tests::FaultProxy) -> ConnectionInfo {
    ConnectionInfo::tcp("127.0.0.1", proxy.port()).with_timeout(Some(Duration::from_secs(2)))
}

#[tokio::test]
async fn a_read_whose_reply_was_lost_is_retried_and_a_write_is_not_resent() {
    let server = TestServer::start();
    let proxy = redis_tests::FaultProxy::start(server.port());
    let r = Redis::from_info(through(&proxy));
    r.set("k", "v").await.unwrap();
    proxy.cut_after(3);
    // GET is read-only: retried on a new connection, as the blocking client does.
    assert_eq!(r.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));

    assert_eq!(r.incr("n").await.unwrap(), 1);
    proxy.cut_after(0);
    let err = r.incr("n").await.unwrap_err();
    assert!(err.is_connection_lost(), "{err:?}");
    assert_eq!(
        server.raw(&["GET", "n"]),
        "2",
        "ran once and was not resent"
    );

    // With retries off the lost read surfaces.
    let strict =
        Redis::from_info(through(&proxy)).with_retry_policy(redis_client::RetryPolicy::none());
    strict.get("k").await.unwrap();
    proxy.cut_after(3);
    assert!(strict.get("k").await.unwrap_err().is_connection_lost());
}

#[tokio::test]
async fn server_errors_name_their_command() {
    let server = TestServer::start();
    let r = Redis::from_info(ConnectionInfo::tcp("127.0.0.1", server.port()));
    r.sadd("s", "x").await.unwrap();
    let err = r.get("s").await.unwrap_err();
    assert!(err.to_string().starts_with("GET: WRONGTYPE"), "{err}");
    assert_eq!(err.code(), Some(ErrorCode::WRONGTYPE));
}

#[tokio::test]
async fn a_call_budget_bounds_retries() {
    // Every connection is accepted and closed at once: a lost connection each time.
    let fake = redis_tests::FakeServer::start(|c: redis_tests::FakeConn| drop(c));
    let policy = redis_client::RetryPolicy::default()
        .with_max_retries(1000)
        .with_backoff(Duration::from_millis(20), Duration::from_millis(20))
        .with_budget(Some(Duration::from_millis(500)));
    let r =
        Redis::from_info(ConnectionInfo::tcp("127.0.0.1", fake.port())).with_retry_policy(policy);
    let start = Instant::now();
    let err = r.get("k").await.unwrap_err();
    let took = start.elapsed();
    assert!(
        took < Duration::from_millis(900),
        "took {took:?} under a 500 ms budget"
    );
    assert!(err.to_string().contains("attempts"), "{err}");
    assert_eq!(err.kind(), redis_client::ErrorKind::Connection);
}

#[tokio::test]
async fn calls_that_need_a_pooled_connection_stop_at_the_call_budget() {
    // The pool's one connection is held: WATCH, a transaction and a pipeline holding a
    // blocking command must each give up at the 300 ms budget, not wait out the pool's
    // 5 s checkout timeout.
    let server = TestServer::start();
    let budget = Duration::from_millis(300);
    let r = Redis::with_pool_options(
        ConnectionInfo::tcp("127.0.0.1", server.port()),
        PoolOptions::default().with_max_size(1),
    )
    .with_retry_policy(redis_client::RetryPolicy::default().with_budget(Some(budget)));
    let _held = r.pool().get().await.unwrap();
    let in_budget = |what: &str, took: Duration, err: &Error| {
        assert!(
            took >= budget && took < budget + Duration::from_millis(400),
            "{what} took {took:?} under a {budget:?} budget: {err}"
        );
        assert!(matches!(err, Error::Timeout), "{what}: {err:?}");
    };
    let start = Instant::now();
    let err = r.pipeline().watch("k").await.unwrap_err();
    in_budget("WATCH", start.elapsed(), &err);

    let start = Instant::now();
    let err = r
        .transaction("k", |w| async move { Ok(w.multi()) })
        .await
        .unwrap_err();
    in_budget("transaction", start.elapsed(), &err);

    let start = Instant::now();
    let mut pipe = r.pipeline();
    pipe.blpop("list", Duration::from_secs(1));
    let err = pipe.execute().await.unwrap_err();
    in_budget("pipeline with BLPOP", start.elapsed(), &err);
}

#[tokio::test]
async fn a_pipeline_is_one_call_within_the_policys_budget() {
    // A server that takes the requests and never answers: each reply alone would wait the
    // 10 s read timeout; the whole pipeline stops at the 300 ms budget, on the shared
    // connection and on a pooled one alike.
    let silent = redis_tests::FakeServer::start(
        |mut c: redis_tests::FakeConn| {
            while c.read_request().is_some() {}
        },
    );
    let budget = Duration::from_millis(300);
    let r = Redis::open(&silent.url())
        .unwrap()
        .with_retry_policy(redis_client::RetryPolicy::default().with_budget(Some(budget)));
    for pooled in [false, true] {
        let mut pipe = r.pipeline();
        pipe.get("a").get("b");
        if pooled {
            // A blocking command takes the pipeline to a pooled connection.
            pipe.blpop("list", Duration::from_secs(1));
        }
        let start = Instant::now();
        let err = pipe.execute().await.unwrap_err();
        let took = start.elapsed();
        assert!(matches!(err, Error::Timeout), "pooled {pooled}: {err:?}");
        assert!(
            took >= budget && took < budget + Duration::from_millis(500),
            "pooled {pooled}: took {took:?} under a {budget:?} budget"
        );
    }
}

#[tokio::test]
async fn one_budget_covers_a_watch_and_the_wait_for_its_connection() {
    // The pool's one connection is busy for 200 ms, then WATCH takes 250 ms: together past
    // the 300 ms budget, which a WATCH given a fresh budget after its checkout would not
    // see.
    let fake = redis_tests::FakeServer::start(|mut c: redis_tests::FakeConn| {
        while let Some(args) = c.read_request() {
            if args[0].eq_ignore_ascii_case(b"WATCH") {
                std::thread::sleep(Duration::from_millis(250));
            }
            c.write(b"+OK\r\n");
        }
    });
    let budget = Duration::from_millis(300);
    let r = Redis::with_pool_options(
        fake.url().parse().unwrap(),
        PoolOptions::default().with_max_size(1),
    )
    .with_retry_policy(redis_client::RetryPolicy::default().with_budget(Some(budget)));
    let held = r.pool().get().await.unwrap();
    let releaser = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop(held);
    });
    let start = Instant::now();
    let err = r.pipeline().watch("k").await.unwrap_err();
    let took = start.elapsed();
    releaser.await.unwrap();
    assert!(matches!(err, Error::Timeout), "{err:?}");
    assert!(took < budget + Duration::from_millis(150), "took {took:?}");
}

#[tokio::test]
async fn a_dropped_blocking_call_closes_its_connection_and_no_one_gets_its_reply() {
    let server = TestServer::start();
    let r = Redis::with_pool_options(
        ConnectionInfo::tcp("127.0.0.1", server.port()),
        PoolOptions::default().with_max_size(1),
    );
    // BLPOP would wait 2 s; its caller gives up after 50 ms, the request written and the
    // reply owed.
    let gave_up = tokio::time::timeout(
        Duration::from_millis(50),
        r.blpop("late", Duration::from_secs(2)),
    )
    .await;
    assert!(gave_up.is_err());
    let stats = r.pool().stats();
    assert_eq!(
        (stats.discarded, stats.in_use, stats.idle),
        (1, 0, 0),
        "the connection owing BLPOP's reply was closed"
    );
    // The reply the dropped BLPOP would get now, were its connection still there.
    server.raw(&["RPUSH", "late", "for-nobody"]);
    server.raw(&["RPUSH", "mine", "for-me"]);
    assert_eq!(
        r.blpop("mine", Duration::from_secs(1)).await.unwrap(),
        Some((b("mine"), b("for-me")))
    );
    assert_eq!(r.pool().stats().created, 2);
}

#[tokio::test]
async fn a_transaction_dropped_at_any_point_never_leaves_its_connection_watching() {
    let server = TestServer::start();
    let r = Redis::with_pool_options(
        ConnectionInfo::tcp("127.0.0.1", server.port()),
        PoolOptions::default().with_max_size(1),
    );
    for micros in [0, 100, 300, 1_000, 2_000, 50_000] {
        r.set("w", 0).await.unwrap();
        let give_up = Duration::from_micros(micros);
        // Dropped while WATCH or GET is on its way, or while `f` waits with the WATCH in
        // force.
        let tx = r.transaction("w", |mut w| async move {
            let _ = w.reply_as::<Option<i64>>().get("w").await?;
            tokio::time::sleep(Duration::from_secs(5)).await;
            let mut pipe = w.multi();
            pipe.set("w", 1);
            Ok(pipe)
        });
        assert!(tokio::time::timeout(give_up, tx).await.is_err());
        // The same, through `Pipeline::watch`.
        let _ = tokio::time::timeout(give_up, r.pipeline().watch("w")).await;
        // A watched key changes: a connection still watching it would abort its next EXEC.
        server.raw(&["SET", "w", "changed"]);
        let mut conn = tokio::time::timeout(Duration::from_secs(2), r.pool().get())
            .await
            .expect("the connection comes back to the pool")
            .unwrap();
        conn.command(&["MULTI"]).await.unwrap();
        conn.command(&["SET", "x", "1"]).await.unwrap();
        assert_eq!(
            conn.command(&["EXEC"]).await.unwrap(),
            Value::Array(vec![Value::SimpleString("OK".into())]),
            "given up after {micros} µs: the next user inherited the WATCH"
        );
    }
}

#[tokio::test]
async fn scan_stream_reads_dropped_at_any_point_lose_nothing() {
    let server = TestServer::start();
    // Every chunk through the proxy waits 2 ms, so each page takes longer than a read
    // waits: reads are given up while their page is on its way, again and again.
    let proxy = redis_tests::FaultProxy::start(server.port());
    let r = Redis::from_info(ConnectionInfo::tcp("127.0.0.1", proxy.port()));
    let mut mset = vec!["MSET".to_owned()];
    for i in 0..2000 {
        mset.extend([format!("scan:{i}"), i.to_string()]);
    }
    r.execute_command(mset).await.unwrap();
    proxy.delay(Duration::from_millis(2));
    let mut keys = pin!(r.scan_stream(ScanOptions::new().count(50)));
    let mut seen = HashSet::new();
    let (start, mut dropped) = (Instant::now(), 0u64);
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "the walk never ended"
        );
        let read = poll_fn(|cx| keys.as_mut().poll_next(cx));
        match tokio::time::timeout(Duration::from_millis(1), read).await {
            Err(_) => dropped += 1,
            Ok(None) => break,
            Ok(Some(key)) => {
                seen.insert(key.unwrap());
            }
        }
    }
    assert!(dropped > 20, "{dropped} reads dropped");
    let all: HashSet<Bytes> = (0..2000).map(|i| b(&format!("scan:{i}"))).collect();
    assert_eq!(seen, all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkouts_dropped_at_any_point_leak_nothing() {
    use redis_client::aio::Pool;
    let server = TestServer::start();
    let proxy = redis_tests::FaultProxy::start(server.port());
    // Every chunk waits 3 ms: opening a connection takes several, and so does the PING
    // that checks an idle one (the health check applies to every checkout), so many
    // checkouts are dropped while their connection is being opened or checked.
    proxy.delay(Duration::from_millis(3));
    let pool = Pool::new(
        ConnectionInfo::tcp("127.0.0.1", proxy.port()),
        PoolOptions::default()
            .with_max_size(4)
            .with_checkout_timeout(Duration::from_secs(2))
            .with_health_check(Some(Duration::ZERO)),
    );
    let mut tasks = Vec::new();
    for t in 0..40u64 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut gave_up = 0;
            for i in 0..10u64 {
                let wait = Duration::from_micros((t * 7_919 + i * 104_729) % 15_000);
                match tokio::time::timeout(wait, pool.get()).await {
                    Ok(conn) => {
                        let mut conn = conn.unwrap();
                        let _ = tokio::time::timeout(wait, conn.command(&["PING"])).await;
                    }
                    Err(_) => gave_up += 1,
                }
            }
            gave_up
        }));
    }
    let mut gave_up = 0;
    for t in tasks {
        gave_up += t.await.unwrap();
    }
    assert!(gave_up > 0);
    let stats = pool.stats();
    assert_eq!(stats.in_use, 0, "{stats:?}");
    assert!(stats.idle <= 4, "{stats:?}");
    // Every place is free: `max_size` checkouts at once all succeed.
    proxy.delay(Duration::ZERO);
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut conn = tokio::time::timeout(Duration::from_secs(2), pool.get())
            .await
            .expect("a free place")
            .unwrap();
        conn.command(&["PING"]).await.unwrap();
        held.push(conn);
    }
    let full = pool.get_until(Some(Instant::now() + Duration::from_millis(50)));
    assert!(matches!(
        full.await,
        Err(redis_client::redis_conn::Error::Timeout)
    ));
}

#[tokio::test]
async fn a_checkout_deadline_before_the_checkout_timeout_gives_timeout_at_the_deadline() {
    use redis_client::aio::Pool;
    use redis_client::redis_conn::Error as ConnError;
    let server = TestServer::start();
    let pool = Pool::new(
        ConnectionInfo::tcp("127.0.0.1", server.port()),
        PoolOptions::default()
            .with_max_size(1)
            .with_checkout_timeout(Duration::from_secs(5)),
    );
    let held = pool.get().await.unwrap();
    // Waiting for a place.
    let start = Instant::now();
    let e = pool
        .get_until(Some(Instant::now() + Duration::from_millis(150)))
        .await
        .unwrap_err();
    let took = start.elapsed();
    assert!(matches!(e, ConnError::Timeout), "{e:?}");
    assert!(
        took >= Duration::from_millis(140) && took < Duration::from_secs(1),
        "{took:?}"
    );
    drop(held);
    // Opening a connection: a server that never answers the handshake.
    let fake = redis_tests::FakeServer::start(|mut c: redis_tests::FakeConn| {
        c.hold(Duration::from_secs(5))
    });
    let pool = Pool::new(
        ConnectionInfo::tcp("127.0.0.1", fake.port())
            .with_connect_timeout(Some(Duration::from_secs(5))),
        PoolOptions::default().with_checkout_timeout(Duration::from_secs(5)),
    );
    let start = Instant::now();
    let e = pool
        .get_until(Some(Instant::now() + Duration::from_millis(150)))
        .await
        .unwrap_err();
    let took = start.elapsed();
    assert!(matches!(e, ConnError::Timeout), "{e:?}");
    assert!(
        took >= Duration::from_millis(140) && took < Duration::from_secs(1),
        "{took:?}"
    );
    assert_eq!(pool.stats().in_use, 0);
}
