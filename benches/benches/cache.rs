//! Client-side caching on a read-mostly workload: 4 threads share one client; each
//! operation is a GET of one of 1,000 hot keys (95%) or a SET of one (5%), keys chosen
//! at random. The same client without and with the cache, alternately in one run.
//!
//! Run through `cargo xtask bench` (or `cargo xtask bench-cache`), which starts the server
//! and writes docs/benchmarks.md. Output: one tab-separated `RESULT` line per
//! measurement: workload, transport, client, ops/s, seconds, the operations that reached
//! the server, and the server's CPU seconds during the run.
//!
//! Arguments: `--tcp PORT`, `--quick`.

#![allow(missing_docs)]

use redis_client::prelude::*;
use redis_client::{CacheOptions, ConnectionInfo, PoolOptions, Redis};
use std::time::{Duration, Instant};

const THREADS: usize = 4;
const HOT_KEYS: u64 = 1_000;
/// Out of 100 operations, how many are SETs.
const WRITE_PERCENT: u64 = 5;

fn main() {
    let mut port = None;
    let mut quick = false;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--tcp" => port = it.next().and_then(|p| p.parse::<u16>().ok()),
            "--quick" => quick = true,
            _ => {}
        }
    }
    let Some(port) = port else {
        eprintln!("usage: cache --tcp PORT [--quick]");
        return;
    };
    let ops_per_thread = if quick { 5_000 } else { 50_000 };
    let info = ConnectionInfo::tcp("127.0.0.1", port);
    let options = PoolOptions::default().with_max_size(THREADS);
    let plain = Redis::from_pool(redis_client::ConnectionPool::with_options(
        info.clone(),
        options.clone(),
    ));
    let cached = Redis::from_pool(redis_client::ConnectionPool::with_options(info, options))
        .with_cache(CacheOptions::default());
    let cache = cached.cache().expect("cache on");
    let start = Instant::now();
    while cache.invalidation_client_id().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "invalidation connection not up"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    for k in 0..HOT_KEYS {
        plain
            .set(format!("hot:{k}"), format!("value-{k:010}"))
            .unwrap();
    }
    let reps = if quick { 1 } else { 5 };
    let total = THREADS * ops_per_thread;
    for _ in 0..reps {
        for (name, client) in [("uncached", &plain), ("cached", &cached)] {
            let misses = cache.stats().misses;
            let cpu = server_cpu(&plain);
            let (secs, sets) = run(client, ops_per_thread);
            let ops = total as f64 / secs;
            // The operations that reached the server: every one without the cache; the
            // SETs and the reads that missed with it.
            let round_trips = match name {
                "cached" => sets + (cache.stats().misses - misses) as usize,
                _ => total,
            };
            let cpu = server_cpu(&plain) - cpu;
            println!(
                "RESULT\tread_mostly\ttcp\t{name}\t{ops:.0}\t{secs:.4}\t{round_trips}\t{cpu:.4}"
            );
        }
    }
    eprintln!("cache: {:?}", cache.stats());
}

/// The CPU seconds (user and system) the server has used since it started, from INFO
/// (which the client reads as a map of sections).
fn server_cpu(r: &Redis) -> f64 {
    fn sum(v: &redis_client::Value) -> f64 {
        use redis_client::Value;
        match v {
            Value::Map(pairs) => pairs
                .iter()
                .map(|(k, v)| match (k, v) {
                    (Value::BulkString(k), Value::Double(d))
                        if &k[..] == b"used_cpu_sys" || &k[..] == b"used_cpu_user" =>
                    {
                        *d
                    }
                    (_, v) => sum(v),
                })
                .sum(),
            _ => 0.0,
        }
    }
    sum(&r.execute_command(("INFO", "cpu")).unwrap())
}

/// Runs the workload on `THREADS` threads; returns the seconds it took and the SETs made.
fn run(r: &Redis, ops_per_thread: usize) -> (f64, usize) {
    let start = Instant::now();
    let sets = std::thread::scope(|s| {
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                s.spawn(move || {
                    let mut sets = 0;
                    let mut rng = 0x9E37_79B9_7F4A_7C15_u64 ^ (t as u64 + 1);
                    for i in 0..ops_per_thread {
                        // xorshift64: cheap, and the same sequence for both clients.
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        let key = format!("hot:{}", rng % HOT_KEYS);
                        if (rng >> 32) % 100 < WRITE_PERCENT {
                            r.set(&key, format!("value-{i:010}")).unwrap();
                            sets += 1;
                        } else {
                            std::hint::black_box(r.get(&key).unwrap());
                        }
                    }
                    sets
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).sum()
    });
    (start.elapsed().as_secs_f64(), sets)
}
