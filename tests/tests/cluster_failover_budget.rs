//! A primary killed under load on a cluster with a production-like `cluster-node-timeout`
//! of 3 s: the failover takes longer than a few retries, but ends well within a call's
//! default budget (15 s), so callers, blocking and async, see no error but for the writes
//! in flight when the primary died, which may have run and are reported as such
//! (`Error::ConnectionLost`). Reads never fail (docs/cluster.md, "Failover").

use redis_client::cluster::ClusterClient;
use redis_client::prelude::*;
use redis_client::Error;
use redis_tests::TestCluster;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Callers of each client.
const CALLERS: usize = 4;

/// One call that failed.
#[derive(Debug)]
struct Failure {
    client: &'static str,
    write: bool,
    started: Instant,
    lost: bool,
    error: String,
}

#[derive(Default)]
struct Log {
    failures: Vec<Failure>,
    ok: usize,
    /// Calls that succeeded after the failover completed.
    after: usize,
    slowest: Duration,
}

impl Log {
    fn record(
        &mut self,
        client: &'static str,
        write: bool,
        started: Instant,
        result: Result<(), Error>,
        done: &Mutex<Option<Instant>>,
    ) {
        self.slowest = self.slowest.max(started.elapsed());
        match result {
            Ok(()) => {
                self.ok += 1;
                if done.lock().unwrap().is_some() {
                    self.after += 1;
                }
            }
            Err(e) => self.failures.push(Failure {
                client,
                write,
                started,
                lost: matches!(e, Error::ConnectionLost(_) | Error::ConnectionBroken),
                error: e.to_string(),
            }),
        }
    }
}

#[test]
fn a_failover_within_the_budget_costs_callers_only_the_writes_in_flight() {
    let mut cluster = TestCluster::start_with_node_timeout(Duration::from_secs(3));
    let stop = Arc::new(AtomicBool::new(false));
    let done: Arc<Mutex<Option<Instant>>> = Arc::default();
    let log: Arc<Mutex<Log>> = Arc::default();
    let c = ClusterClient::open(&cluster.urls()).expect("open");
    // Each caller alternates a write and a read of keys spread over every slot.
    let mut threads: Vec<_> = (0..CALLERS)
        .map(|t| {
            let (c, stop, log, done) = (c.clone(), stop.clone(), log.clone(), done.clone());
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("b:{t}:{}", i % 512);
                    let write = i % 2 == 0;
                    let started = Instant::now();
                    let result = if write {
                        c.set(&key, i).map(drop)
                    } else {
                        c.get(&key).map(drop)
                    };
                    log.lock()
                        .unwrap()
                        .record("blocking", write, started, result, &done);
                    i += 1;
                }
            })
        })
        .collect();
    let urls = cluster.urls();
    {
        let (stop, log, done) = (stop.clone(), log.clone(), done.clone());
        threads.push(std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let c = redis_client::cluster::aio::ClusterClient::open(&urls)
                    .await
                    .expect("open");
                let tasks: Vec<_> = (0..CALLERS)
                    .map(|t| {
                        let (c, stop, log, done) =
                            (c.clone(), stop.clone(), log.clone(), done.clone());
                        tokio::spawn(async move {
                            let mut i = 0u64;
                            while !stop.load(Ordering::Relaxed) {
                                let key = format!("a:{t}:{}", i % 512);
                                let write = i % 2 == 0;
                                let started = Instant::now();
                                let result = if write {
                                    c.set(&key, i).await.map(drop)
                                } else {
                                    c.get(&key).await.map(drop)
                                };
                                log.lock()
                                    .unwrap()
                                    .record("async", write, started, result, &done);
                                i += 1;
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
            });
        }));
    }
    std::thread::sleep(Duration::from_millis(500));
    let victim = cluster.primaries()[0];
    let replicas = cluster.replicas_of(victim);
    let killed_at = Instant::now();
    cluster.kill(victim);
    let dead_at = Instant::now();
    cluster.wait_failover(&replicas);
    let done_at = Instant::now();
    *done.lock().unwrap() = Some(done_at);
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }

    let log = log.lock().unwrap();
    let failover = done_at - killed_at;
    eprintln!(
        "failover took {failover:?}; {} calls succeeded ({} after it), {} failed; the slowest took {:?}; failures: {:?}",
        log.ok,
        log.after,
        log.failures.len(),
        log.slowest,
        log.failures
    );
    assert!(
        failover > Duration::from_secs(3),
        "the failover waited out the node timeout"
    );
    assert!(log.after > 0, "calls went on after the failover");
    // Calls for the dead primary's slots waited the failover out.
    assert!(
        log.slowest > Duration::from_secs(2),
        "a call waited for the failover: {:?}",
        log.slowest
    );
    // The only failures: writes already sent when the primary died, at most one per
    // caller, each reported as possibly applied.
    for f in &log.failures {
        assert!(
            f.write && f.lost && f.started <= dead_at + Duration::from_millis(100),
            "a call of the {} client failed that was not a write in flight at the kill, \
             started {:?} after it: {}",
            f.client,
            f.started.saturating_duration_since(killed_at),
            f.error
        );
    }
    assert!(log.failures.len() <= 2 * CALLERS, "{:?}", log.failures);
}
