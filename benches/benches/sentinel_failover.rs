//! Acknowledged writes lost across a forced Sentinel failover (`SENTINEL FAILOVER`), this
//! client against the `redis` crate's sentinel client, each on a fresh set of one
//! primary, one replica and three sentinels.
//!
//! Four threads write distinct keys until the old primary has been reconfigured as a
//! replica and has resynchronised (the moment it stops accepting writes); then every
//! acknowledged key is read back from the new primary. One CSV line per client:
//! `sentinel_failover,<client>,<acknowledged>,<lost>,<errors>,<seconds from the failover
//! to the old primary's demotion>`.
//!
//! Run by `cargo xtask bench` (or alone: `cargo bench -p redis-benches --bench
//! sentinel_failover`).

use redis_client::prelude::*;
use redis_tests::{SentinelSet, SENTINEL_SERVICE};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const THREADS: usize = 4;

/// What one writer saw: acknowledged keys and errors.
#[derive(Default)]
struct Written {
    acked: Vec<String>,
    errors: u64,
}

/// Writes `k:<thread>:<n>` keys with this client until `stop`.
fn ours(set: &SentinelSet, stop: Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<Written>> {
    let sentinel = redis_client::Sentinel::builder(set.sentinel_urls(), SENTINEL_SERVICE)
        .expect("sentinel urls")
        .build();
    let primary = sentinel.primary();
    (0..THREADS)
        .map(|t| {
            let primary = primary.clone();
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut w = Written::default();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("k:{t}:{i}");
                    match primary.set(&key, i) {
                        Ok(_) => w.acked.push(key),
                        Err(_) => w.errors += 1,
                    }
                    i += 1;
                }
                w
            })
        })
        .collect()
}

/// The same with the `redis` crate's `SentinelClient`, used as its docs show: a
/// connection from `get_connection`, replaced by a new one after any error.
fn redis_crate(set: &SentinelSet, stop: Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<Written>> {
    (0..THREADS)
        .map(|t| {
            let urls = set.sentinel_urls();
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut client = redis::sentinel::SentinelClient::build(
                    urls,
                    SENTINEL_SERVICE.to_owned(),
                    None,
                    redis::sentinel::SentinelServerType::Master,
                )
                .expect("sentinel client");
                let mut conn: Option<redis::Connection> = None;
                let mut w = Written::default();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let c = match conn.as_mut() {
                        Some(c) => c,
                        None => match client.get_connection() {
                            Ok(c) => conn.insert(c),
                            Err(_) => {
                                w.errors += 1;
                                std::thread::sleep(Duration::from_millis(10));
                                continue;
                            }
                        },
                    };
                    let key = format!("k:{t}:{i}");
                    let r: redis::RedisResult<()> = redis::cmd("SET").arg(&key).arg(i).query(c);
                    match r {
                        Ok(()) => w.acked.push(key),
                        Err(_) => {
                            w.errors += 1;
                            conn = None;
                        }
                    }
                    i += 1;
                }
                w
            })
        })
        .collect()
}

type Load = fn(&SentinelSet, Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<Written>>;

fn run(name: &str, load: Load) {
    let set = SentinelSet::start();
    let old = set.primary_port();
    let stop = Arc::new(AtomicBool::new(false));
    let writers = load(&set, Arc::clone(&stop));
    std::thread::sleep(Duration::from_millis(500));
    let start = Instant::now();
    set.force_failover();
    let new = set.wait_for_new_primary(old, Duration::from_secs(30));
    // Until the old primary stops accepting writes: the sentinels make it a replica.
    set.wait_replica_synced(old, Duration::from_secs(60));
    let demoted = start.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let written: Vec<Written> = writers
        .into_iter()
        .map(|h| h.join().expect("writer"))
        .collect();
    let acked: Vec<&String> = written.iter().flat_map(|w| &w.acked).collect();
    let errors: u64 = written.iter().map(|w| w.errors).sum();
    let check = redis_client::Redis::open(&format!("redis://127.0.0.1:{new}/0")).expect("url");
    let lost: usize = acked
        .chunks(1000)
        .map(|keys| {
            check
                .mget(keys)
                .expect("read back")
                .iter()
                .filter(|v| v.is_none())
                .count()
        })
        .sum();
    println!(
        "sentinel_failover,{name},{},{lost},{errors},{:.1}",
        acked.len(),
        demoted.as_secs_f64()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is read.
    run("redis-client", ours);
    run("redis-rs", redis_crate);
}
