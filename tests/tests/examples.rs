//! Every program in crates/redis-client/examples runs against a real server, exits with
//! success and prints the line that shows it did its job.

use redis_tests::{SentinelSet, ServerConfig, TestCluster, TestServer, SENTINEL_SERVICE};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs the example binary `exe` with `REDIS_URL` (and `REDIS_SOCKET`) of `server` and
/// returns its standard output, failing the test if it fails or runs longer than a minute.
fn run(exe: &str, server: &TestServer) -> String {
    run_with(
        exe,
        &[
            ("REDIS_URL", server.url()),
            ("REDIS_SOCKET", server.socket_path().display().to_string()),
        ],
    )
}

/// Runs the example binary `exe` with the environment `env`, as [`run`] does.
fn run_with(exe: &str, env: &[(&str, String)]) -> String {
    let mut child = Command::new(exe)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the example");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("poll the example").is_none() {
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("{exe} ran for more than a minute");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("read the example's output");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{exe} failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Runs `exe` on a fresh server and checks that each of `lines` is in its output.
fn check(exe: &str, lines: &[&str]) {
    let server = TestServer::start_with(ServerConfig::default().unix_socket());
    let stdout = run(exe, &server);
    for line in lines {
        assert!(
            stdout.lines().any(|l| l == *line),
            "{exe}: no line {line:?} in\n{stdout}"
        );
    }
}

#[test]
fn getting_started() {
    check(
        env!("CARGO_BIN_EXE_example-getting-started"),
        &[
            "GET foo -> Some(\"bar\")",
            "unix socket: PING -> \"PONG\"",
            "pipeline SET foo bar, GET bing -> [true, Some(\"baz\")]",
            "chained SET, SADD, INCR -> [true, 1, 6]",
            "pipeline without MULTI/EXEC, INCR twice -> [7, 8]",
            "WATCH loop: done after 2 attempts -> OUR-SEQUENCE-KEY = 12",
            "transaction(client_side_incr) -> OUR-SEQUENCE-KEY = 13",
            "multiply(keys=['foo'], args=[5]) with foo=2 -> 10",
            "multiply(..., client=r2) with foo=3 -> 15",
            "pipeline SET foo 5, multiply -> [true, 25]",
            "pubsub: Message on news: hello subscribers",
        ],
    );
}

#[test]
fn cache_with_ttl() {
    check(
        env!("CARGO_BIN_EXE_example-cache-ttl"),
        &[
            "cache miss: stored for 60 seconds",
            "cache hit: name=Ada;lang=en",
        ],
    );
}

#[test]
fn counter_across_threads() {
    check(
        env!("CARGO_BIN_EXE_example-counter-threads"),
        &["page:hits = 4000"],
    );
}

#[test]
fn leaderboard() {
    check(
        env!("CARGO_BIN_EXE_example-leaderboard"),
        &[
            "ken now has 130",
            "1. ken 130",
            "2. ada 120",
            "3. grace 95",
            "linus is number 4",
        ],
    );
}

#[test]
fn job_queue_with_brpop_workers() {
    check(env!("CARGO_BIN_EXE_example-job-queue"), &["jobs done: 12"]);
}

#[test]
fn pattern_pubsub_chat() {
    check(
        env!("CARGO_BIN_EXE_example-pubsub-chat"),
        &[
            "[chat:lobby] ada: hello everyone",
            "[chat:rust] grace: anyone tried the text mode?",
            "[chat:lobby] linus: bye",
        ],
    );
}

#[test]
fn lua_rate_limiter() {
    check(
        env!("CARGO_BIN_EXE_example-rate-limiter"),
        &[
            "request 5: allowed",
            "request 6: rejected",
            "request 7: rejected",
        ],
    );
}

#[test]
fn session_hash() {
    check(
        env!("CARGO_BIN_EXE_example-session-hash"),
        &[
            "user ada has 2 items in the cart",
            "theme: dark",
            "expires in 1800 seconds",
        ],
    );
}

#[test]
fn lock_across_threads() {
    check(
        env!("CARGO_BIN_EXE_example-lock-threads"),
        &["balance = 1000"],
    );
}

#[test]
fn scan_over_10000_keys() {
    check(
        env!("CARGO_BIN_EXE_example-scan-keys"),
        &["found 10000 keys, highest id 9999"],
    );
}

#[test]
fn bulk_load_of_100000_keys() {
    let server = TestServer::start();
    let stdout = run(env!("CARGO_BIN_EXE_example-bulk-load"), &server);
    assert!(
        stdout.contains("keys in") && stdout.contains("user:99999:score = 99999"),
        "{stdout}"
    );
    assert!(stdout.starts_with("loaded 100000 keys"), "{stdout}");
}

#[test]
fn async_getting_started() {
    check(
        env!("CARGO_BIN_EXE_example-async-getting-started"),
        &[
            "GET foo -> Some(\"bar\")",
            "ten tasks on one client: counter:0 = 5",
            "unix socket: PING -> \"PONG\"",
            "pipeline SET foo bar, GET bing -> [true, Some(\"baz\")]",
            "chained SET, SADD, INCR -> [true, 1, 6]",
            "pipeline without MULTI/EXEC, INCR twice -> [7, 8]",
            "transaction(client_side_incr) -> OUR-SEQUENCE-KEY = 11",
            "multiply(keys=['foo'], args=[5]) with foo=2 -> 10",
            "pubsub: Message on news: hello subscribers",
        ],
    );
}

#[test]
fn async_web_handler() {
    check(
        env!("CARGO_BIN_EXE_example-async-web-handler"),
        &["served 200 requests; visits counted: 200"],
    );
}

#[test]
fn tracing_spans_and_metrics() {
    let server = TestServer::start();
    let stdout = run(env!("CARGO_BIN_EXE_example-tracing"), &server);
    let span = |name: &str| {
        stdout
            .lines()
            .find(|l| l.contains(&format!("otel.name=\"{name}\"")))
            .unwrap_or_else(|| panic!("no {name} span in\n{stdout}"))
            .to_owned()
    };
    let set = span("SET");
    for field in [
        "redis.command{",
        "db.system.name=\"redis\"",
        "db.namespace=0",
        "db.query.text=\"SET greeting hello\"",
        &format!("server.port={}", server.port()),
        "close",
    ] {
        assert!(set.contains(field), "{field} not in {set}");
    }
    let tx = span("MULTI");
    assert!(tx.starts_with(" INFO redis.transaction{"), "{tx}");
    assert!(tx.contains("db.operation.batch.size=2"), "{tx}");
    let lpush = span("LPUSH");
    assert!(lpush.contains("error.type=\"WRONGTYPE\""), "{lpush}");
    assert!(
        stdout
            .lines()
            .any(|l| l == "metrics: 4 calls, 1 failed (lpush failed: true)"),
        "{stdout}"
    );
    assert!(stdout.lines().any(|l| l == "request bytes: counted"));
}

#[test]
fn cluster() {
    let cluster = TestCluster::start_with(0);
    let stdout = run_with(
        env!("CARGO_BIN_EXE_example-cluster"),
        &[("REDIS_CLUSTER_URLS", cluster.urls().join(","))],
    );
    for line in [
        "MGET across slots -> [Some(\"name-1\"), Some(\"name-500\"), Some(\"name-999\")]",
        "transaction on {cart:7} -> 2 replies",
        "cross-slot transaction refused",
        "pipeline over two slots -> [Integer(1), Integer(1)]",
        "SCAN user:* over the cluster -> 1000 keys",
        "DBSIZE over the primaries -> 1004",
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "no line {line:?} in\n{stdout}"
        );
    }
}

#[test]
fn sentinel() {
    let set = SentinelSet::start();
    let stdout = run_with(
        env!("CARGO_BIN_EXE_example-sentinel"),
        &[
            ("REDIS_SENTINEL_URLS", set.sentinel_urls().join(",")),
            ("REDIS_SERVICE", SENTINEL_SERVICE.to_owned()),
        ],
    );
    for line in [
        format!(
            "primary of {SENTINEL_SERVICE}: 127.0.0.1:{}",
            set.primary_port()
        ),
        "replicas that have the write: 1".to_owned(),
        "read from a replica -> Some(\"hello\")".to_owned(),
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "no line {line:?} in\n{stdout}"
        );
    }
}
