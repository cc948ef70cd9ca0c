//! Cluster workloads against a live local cluster: this client's cluster clients and the
//! published `redis` crate's, run alternately so drift on a shared machine hits both.
//!
//! Run through `cargo xtask bench`, which starts a three-primary cluster and writes the
//! cluster section of docs/benchmarks.md. Output: one tab-separated `RESULT` line per
//! measurement: workload, transport, client, ops/s, seconds, 0.
//!
//! Arguments: `--seeds URL,URL,…`, `--quick`, `--only WORKLOAD` (run that workload alone,
//! for profiling), `--client NAME` (that client alone), `--count N` (repetitions of each operation, overriding the defaults).

#![allow(missing_docs)]

use redis::Commands as _;
use redis_client::cluster::ClusterClient;
use redis_client::prelude::*;
use std::time::Instant;

const THREADS: usize = 4;

struct Counts {
    /// SETs (then GETs) per thread.
    per_thread: usize,
    /// Pipelines of 100 SETs.
    pipelines: usize,
    /// MGETs of 100 keys.
    mgets: usize,
}

fn main() {
    let mut seeds: Vec<String> = Vec::new();
    let mut quick = false;
    let mut only: Option<String> = None;
    let mut count: Option<usize> = None;
    let mut client: Option<String> = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seeds" => {
                seeds = it
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .map(str::to_owned)
                    .collect()
            }
            "--quick" => quick = true,
            "--only" => only = it.next(),
            "--client" => client = it.next(),
            "--count" => count = it.next().and_then(|n| n.parse().ok()),
            // cargo bench passes --bench; anything else is ignored likewise.
            _ => {}
        }
    }
    if seeds.is_empty() {
        eprintln!("no --seeds given: run through `cargo xtask bench`");
        return;
    }
    let c = if quick {
        Counts {
            per_thread: 2_000,
            pipelines: 50,
            mgets: 100,
        }
    } else {
        Counts {
            per_thread: 20_000,
            pipelines: 500,
            mgets: 500,
        }
    };
    let c = match count {
        Some(n) => Counts {
            per_thread: n,
            pipelines: n,
            mgets: n,
        },
        None => c,
    };
    let run = |workload: &str, who: &str| {
        !matches!(only.as_deref(), Some(o) if o != workload)
            && !matches!(client.as_deref(), Some(c) if c != who)
    };
    let ours = ClusterClient::open(&seeds).expect("our cluster client");
    let theirs = redis::cluster::ClusterClient::new(seeds.clone()).expect("redis cluster client");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let ours_async = rt
        .block_on(redis_client::cluster::aio::ClusterClient::open(&seeds))
        .expect("our async cluster client");
    let theirs_async = rt
        .block_on(theirs.get_async_connection())
        .expect("redis async cluster connection");

    // Keys for MGET, present beforehand.
    let keys: Vec<String> = (0..100).map(|i| format!("mget:{i}")).collect();
    let items: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), "v")).collect();
    ours.mset(&items).expect("mset");

    // SET then GET, four threads, one request at a time.
    for (workload, set) in [("cluster_set_4t", true), ("cluster_get_4t", false)] {
        let ops = (THREADS * c.per_thread) as f64;
        if run(workload, "redis-client") {
            let secs = threads(|t| {
                for i in 0..c.per_thread {
                    let key = format!("k:{t}:{i}");
                    if set {
                        ours.set(&key, "value-16-bytes!!").expect("set");
                    } else {
                        ours.get(&key).expect("get");
                    }
                }
            });
            result(workload, "redis-client", ops, secs);
        }
        if run(workload, "redis-rs") {
            let secs = threads(|t| {
                let mut con = theirs.get_connection().expect("connection");
                for i in 0..c.per_thread {
                    let key = format!("k:{t}:{i}");
                    if set {
                        let _: () = con.set(&key, "value-16-bytes!!").expect("set");
                    } else {
                        let _: Option<Vec<u8>> = con.get(&key).expect("get");
                    }
                }
            });
            result(workload, "redis-rs", ops, secs);
        }
    }

    // Pipelines of 100 SETs over mixed slots.
    let workload = "cluster_pipeline_set_100";
    let ops = (c.pipelines * 100) as f64;
    if run(workload, "redis-client") {
        let start = Instant::now();
        for p in 0..c.pipelines {
            let mut pipe = ours.pipeline();
            pipe.transaction(false);
            for i in 0..100 {
                pipe.set(format!("p:{p}:{i}"), "value-16-bytes!!");
            }
            pipe.execute().expect("pipeline");
        }
        result(workload, "redis-client", ops, start.elapsed().as_secs_f64());
    }
    let mut con = theirs.get_connection().expect("connection");
    if run(workload, "redis-rs") {
        let start = Instant::now();
        for p in 0..c.pipelines {
            let mut pipe = redis::cluster::cluster_pipe();
            for i in 0..100 {
                pipe.set(format!("p:{p}:{i}"), "value-16-bytes!!").ignore();
            }
            let _: () = pipe.query(&mut con).expect("pipeline");
        }
        result(workload, "redis-rs", ops, start.elapsed().as_secs_f64());
    }

    // MGET of 100 keys across slots, one call at a time.
    let workload = "cluster_mget_100";
    let ops = c.mgets as f64;
    if run(workload, "redis-client") {
        let start = Instant::now();
        for _ in 0..c.mgets {
            let v = ours.mget(&keys).expect("mget");
            assert_eq!(v.len(), 100);
        }
        result(workload, "redis-client", ops, start.elapsed().as_secs_f64());
    }
    if run(workload, "redis-rs") {
        let start = Instant::now();
        for _ in 0..c.mgets {
            let v: Vec<Option<Vec<u8>>> = con.mget(&keys).expect("mget");
            assert_eq!(v.len(), 100);
        }
        result(workload, "redis-rs", ops, start.elapsed().as_secs_f64());
    }
    if run(workload, "redis-client async") {
        let start = Instant::now();
        rt.block_on(async {
            for _ in 0..c.mgets {
                let v = ours_async.mget(&keys).await.expect("mget");
                assert_eq!(v.len(), 100);
            }
        });
        result(
            workload,
            "redis-client async",
            ops,
            start.elapsed().as_secs_f64(),
        );
    }
    if run(workload, "redis-rs async") {
        let start = Instant::now();
        rt.block_on(async {
            use redis::AsyncCommands as _;
            let mut con = theirs_async.clone();
            for _ in 0..c.mgets {
                let v: Vec<Option<Vec<u8>>> = con.mget(&keys).await.expect("mget");
                assert_eq!(v.len(), 100);
            }
        });
        result(
            workload,
            "redis-rs async",
            ops,
            start.elapsed().as_secs_f64(),
        );
    }
}

/// Runs `f(thread)` on [`THREADS`] threads at once; the seconds until all are done.
fn threads(f: impl Fn(usize) + Sync) -> f64 {
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let f = &f;
            s.spawn(move || f(t));
        }
    });
    start.elapsed().as_secs_f64()
}

fn result(workload: &str, client: &str, ops: f64, secs: f64) {
    println!(
        "RESULT\t{workload}\ttcp\t{client}\t{:.1}\t{secs:.4}\t0",
        ops / secs
    );
}
