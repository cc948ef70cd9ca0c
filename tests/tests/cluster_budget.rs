//! A cluster call's budget covers the map refresh it needs, even while another refresh
//! is slow: scripted nodes whose later `CLUSTER SHARDS` answers stall for seconds (a real
//! server cannot be made to) and which drop every connection that sends a command, so
//! each try of a call loses its node and asks for a refresh. Four seeds, each asked in
//! turn for its whole budget, make the other refresh last about four budgets.

use redis_client::cluster::{aio, ClusterClient, ClusterOptions};
use redis_client::prelude::*;
use redis_client::{ConnectionInfo, RetryPolicy};
use redis_tests::{FakeConn, FakeServer};
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BUDGET: Duration = Duration::from_millis(500);
/// How long every `CLUSTER SHARDS` after the first waits before answering.
const SLOW_REFRESH: Duration = Duration::from_secs(3);

/// A one-node map: every slot served by the node on `port`.
fn shards_reply(port: u16) -> Vec<u8> {
    let mut out = String::from("*1\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16383\r\n$5\r\nnodes\r\n");
    out += "*1\r\n*8\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$4\r\nport\r\n";
    out += &format!(":{port}\r\n");
    out += "$4\r\nrole\r\n$6\r\nmaster\r\n$6\r\nhealth\r\n$6\r\nonline\r\n";
    out.into_bytes()
}

/// A scripted node; with `prompt_once`, its first `CLUSTER SHARDS` is answered at once.
fn slow_node(prompt_once: bool) -> FakeServer {
    let port = Arc::new(AtomicU16::new(0));
    let asked = Arc::new(AtomicUsize::new(0));
    let own_port = port.clone();
    let fake = FakeServer::start(move |mut c: FakeConn| {
        while let Some(args) = c.read_request() {
            if !args[0].eq_ignore_ascii_case(b"CLUSTER") {
                // Any command: the connection is lost under it.
                return;
            }
            if !prompt_once || asked.fetch_add(1, Ordering::SeqCst) > 0 {
                std::thread::sleep(SLOW_REFRESH);
            }
            c.write(&shards_reply(own_port.load(Ordering::SeqCst)));
        }
    });
    port.store(fake.port(), Ordering::SeqCst);
    fake
}

fn options() -> ClusterOptions {
    ClusterOptions::default()
        .with_refresh_interval(None)
        .with_retry_policy(
            RetryPolicy::default()
                .with_backoff(Duration::from_millis(20), Duration::from_millis(20))
                .with_budget(Some(BUDGET)),
        )
}

/// Four scripted nodes and their addresses as seeds.
fn slow_seeds() -> (Vec<FakeServer>, Vec<ConnectionInfo>) {
    // The first answers the client's first refresh; after that, none answers in time.
    let fakes: Vec<FakeServer> = (0..4).map(|i| slow_node(i == 0)).collect();
    let seeds = fakes
        .iter()
        .map(|f| ConnectionInfo::tcp("127.0.0.1", f.port()))
        .collect();
    (fakes, seeds)
}

/// The other refresh was slow, as the test needs: it failed after most of four budgets.
fn was_slow<T>(refresh: redis_client::Result<T>, took: Duration) {
    assert!(refresh.is_err(), "every node asked stalls");
    assert!(took > BUDGET * 3, "the other refresh took only {took:?}");
}

#[test]
fn a_call_waiting_for_a_slow_refresh_ends_within_its_budget() {
    let (_fakes, seeds) = slow_seeds();
    let client = ClusterClient::with_options(seeds, options()).unwrap();
    // Another thread's refresh holds the map's lock while it asks every node in turn.
    let refresher = client.clone();
    let slow = std::thread::spawn(move || {
        let start = Instant::now();
        (refresher.refresh_slots(), start.elapsed())
    });
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    let err = client.get("k").unwrap_err();
    let took = start.elapsed();
    assert!(
        took < BUDGET + Duration::from_millis(700),
        "took {took:?} under a {BUDGET:?} budget: {err}"
    );
    let (refresh, slow_took) = slow.join().unwrap();
    was_slow(refresh, slow_took);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_call_waiting_for_a_slow_refresh_ends_within_its_budget() {
    let (_fakes, seeds) = slow_seeds();
    let client = aio::ClusterClient::with_options(seeds, options())
        .await
        .unwrap();
    let refresher = client.clone();
    let slow = tokio::spawn(async move {
        let start = Instant::now();
        (refresher.refresh_slots().await, start.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let start = Instant::now();
    let err = client.get("k").await.unwrap_err();
    let took = start.elapsed();
    assert!(
        took < BUDGET + Duration::from_millis(700),
        "took {took:?} under a {BUDGET:?} budget: {err}"
    );
    let (refresh, slow_took) = slow.await.unwrap();
    was_slow(refresh, slow_took);
}
