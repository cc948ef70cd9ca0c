//! End-to-end workloads against a live server: this client and the published `redis`
//! crate, run alternately (A B A B …) so drift on a shared machine hits both alike.
//!
//! Run through `cargo xtask bench`, which starts the server, adds redis-benchmark's
//! figures and writes docs/benchmarks.md. Output: one tab-separated `RESULT` line per
//! measurement: workload, transport, client, ops/s, seconds, peak extra RSS in bytes.
//!
//! Arguments: `--tcp PORT`, `--unix PATH`, `--quick`, `--only WORKLOAD`.

#![allow(missing_docs)]

use redis::Commands as _;
use redis_benches::live::{key, Args, VALUE16};
use redis_client::prelude::*;
use redis_client::{Bytes, ConnectionInfo, PoolOptions, Redis};
use std::time::Instant;

/// Where the server is, in both clients' terms.
#[derive(Clone)]
struct Target {
    name: &'static str,
    ours: ConnectionInfo,
    theirs: String,
}

/// Operation counts; `--quick` divides them by 10.
struct Counts {
    set_get: usize,
    pipelines: usize,
    lrange: usize,
    mget: usize,
    pool_gets: usize,
    large: usize,
}

/// A workload's name and its body; the body returns the number of operations it did.
type Workload<'a> = (&'a str, &'a dyn Fn(&Target, &Counts, bool) -> f64);

const THREADS: usize = 4;
const LARGE: usize = 10 * 1024 * 1024;

fn main() {
    let args = Args::parse();
    let c = if args.quick {
        Counts {
            set_get: 10_000,
            pipelines: 200,
            lrange: 2_000,
            mget: 2_000,
            pool_gets: 5_000,
            large: 10,
        }
    } else {
        Counts {
            set_get: 100_000,
            pipelines: 2_000,
            lrange: 20_000,
            mget: 20_000,
            pool_gets: 50_000,
            large: 100,
        }
    };
    let mut targets = Vec::new();
    if let Some(port) = args.tcp {
        targets.push(Target {
            name: "tcp",
            ours: ConnectionInfo::tcp("127.0.0.1", port),
            theirs: format!("redis://127.0.0.1:{port}/"),
        });
    }
    if let Some(path) = &args.unix {
        targets.push(Target {
            name: "unix",
            ours: ConnectionInfo::unix(path),
            theirs: format!("unix://{path}"),
        });
    }
    if targets.is_empty() {
        eprintln!("client bench: pass --tcp PORT and/or --unix PATH (cargo xtask bench does)");
        return;
    }
    for t in &targets {
        let workloads: [Workload<'_>; 8] = [
            ("set_get", &set_get),
            ("pipeline_set_100", &pipeline_set),
            ("lrange_100", &|t, c, o| lrange(t, c, o, 100)),
            ("lrange_600", &|t, c, o| lrange(t, c, o, 600)),
            ("mget_100", &mget),
            ("pool_get_checkout", &pool_checkout),
            ("pool_get_per_thread", &per_thread),
            ("large_10mb", &large),
        ];
        for (name, run) in workloads {
            if !args.selected(name) {
                continue;
            }
            for ours in [true, false] {
                reset_peak_rss();
                let base = rss_bytes();
                let start = Instant::now();
                let ops = run(t, &c, ours);
                let secs = start.elapsed().as_secs_f64();
                let peak = peak_rss_bytes().saturating_sub(base);
                let client = if ours { "ours" } else { "redis-rs" };
                redis_benches::live::report(name, t.name, client, ops, secs, peak);
            }
        }
    }
}

fn ours(t: &Target) -> Redis {
    Redis::from_info(t.ours.clone())
}

fn theirs(t: &Target) -> redis::Connection {
    redis::Client::open(t.theirs.as_str())
        .and_then(|c| c.get_connection())
        .expect("redis-rs connects")
}

/// SET then GET of distinct keys, one request at a time.
fn set_get(t: &Target, c: &Counts, use_ours: bool) -> f64 {
    if use_ours {
        let r = ours(t);
        for i in 0..c.set_get {
            assert!(r.set(key(i), VALUE16).expect("set"));
        }
        for i in 0..c.set_get {
            assert_eq!(r.get(key(i)).expect("get").as_deref(), Some(&VALUE16[..]));
        }
    } else {
        let mut con = theirs(t);
        for i in 0..c.set_get {
            let _: () = con.set(key(i), VALUE16).expect("set");
        }
        for i in 0..c.set_get {
            let v: Option<Vec<u8>> = con.get(key(i)).expect("get");
            assert_eq!(v.as_deref(), Some(&VALUE16[..]));
        }
    }
    (2 * c.set_get) as f64
}

/// Pipelines of 100 SETs, without MULTI.
fn pipeline_set(t: &Target, c: &Counts, use_ours: bool) -> f64 {
    if use_ours {
        let r = ours(t);
        for p in 0..c.pipelines {
            let mut pipe = r.pipeline();
            pipe.transaction(false);
            for i in 0..100 {
                pipe.set(key(p * 100 + i), VALUE16);
            }
            let results = pipe.execute().expect("pipeline");
            assert_eq!(results.len(), 100);
        }
    } else {
        let mut con = theirs(t);
        for p in 0..c.pipelines {
            let mut pipe = redis::pipe();
            for i in 0..100 {
                pipe.set(key(p * 100 + i), VALUE16);
            }
            let results: Vec<redis::Value> = pipe.query(&mut con).expect("pipeline");
            assert_eq!(results.len(), 100);
        }
    }
    (c.pipelines * 100) as f64
}

/// LRANGE of the first `n` of 600 three-byte elements, as redis-benchmark does.
fn lrange(t: &Target, c: &Counts, use_ours: bool, n: usize) -> f64 {
    let r = ours(t);
    r.del("bench:list").expect("del");
    let items: Vec<&str> = vec!["xxx"; 600];
    r.execute_command(("RPUSH", "bench:list", items))
        .expect("rpush");
    let stop = (n - 1) as i64;
    if use_ours {
        for _ in 0..c.lrange {
            let v: Vec<Bytes> = r.lrange("bench:list", 0, stop).expect("lrange");
            assert_eq!(v.len(), n);
        }
    } else {
        let mut con = theirs(t);
        for _ in 0..c.lrange {
            let v: Vec<Vec<u8>> = con.lrange("bench:list", 0, stop as isize).expect("lrange");
            assert_eq!(v.len(), n);
        }
    }
    c.lrange as f64
}

/// MGET of 100 existing keys.
fn mget(t: &Target, c: &Counts, use_ours: bool) -> f64 {
    let keys: Vec<String> = (0..100).map(|i| format!("mget:{i}")).collect();
    let r = ours(t);
    for k in &keys {
        r.set(k, VALUE16).expect("set");
    }
    if use_ours {
        for _ in 0..c.mget {
            let v: Vec<Option<Bytes>> = r.mget(&keys).expect("mget");
            assert_eq!(v.len(), 100);
        }
    } else {
        let mut con = theirs(t);
        for _ in 0..c.mget {
            let v: Vec<Option<Vec<u8>>> = con.mget(&keys).expect("mget");
            assert_eq!(v.len(), 100);
        }
    }
    c.mget as f64
}

/// Four threads sharing one pool of four, a checkout per GET.
fn pool_checkout(t: &Target, c: &Counts, use_ours: bool) -> f64 {
    let r = ours(t);
    r.set("pool:key", VALUE16).expect("set");
    if use_ours {
        let shared = Redis::from_pool(redis_client::ConnectionPool::with_options(
            t.ours.clone(),
            PoolOptions::default().with_max_size(THREADS),
        ));
        std::thread::scope(|s| {
            for _ in 0..THREADS {
                let r = shared.clone();
                s.spawn(move || {
                    for _ in 0..c.pool_gets {
                        assert!(r.get("pool:key").expect("get").is_some());
                    }
                });
            }
        });
    } else {
        let client = redis::Client::open(t.theirs.as_str()).expect("client");
        let pool = r2d2::Pool::builder()
            .max_size(THREADS as u32)
            .build(client)
            .expect("r2d2 pool");
        std::thread::scope(|s| {
            for _ in 0..THREADS {
                let pool = pool.clone();
                s.spawn(move || {
                    for _ in 0..c.pool_gets {
                        let mut con = pool.get().expect("checkout");
                        let v: Option<Vec<u8>> = con.get("pool:key").expect("get");
                        assert!(v.is_some());
                    }
                });
            }
        });
    }
    (THREADS * c.pool_gets) as f64
}

/// Four threads, each keeping its own connection.
fn per_thread(t: &Target, c: &Counts, use_ours: bool) -> f64 {
    let r = ours(t);
    r.set("pool:key", VALUE16).expect("set");
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(move || {
                if use_ours {
                    let mut con = ours(t).dedicated_connection().expect("connect");
                    for _ in 0..c.pool_gets {
                        assert!(con.get("pool:key").expect("get").is_some());
                    }
                } else {
                    let mut con = theirs(t);
                    for _ in 0..c.pool_gets {
                        let v: Option<Vec<u8>> = con.get("pool:key").expect("get");
                        assert!(v.is_some());
                    }
                }
            });
        }
    });
    (THREADS * c.pool_gets) as f64
}

/// SET and GET of a 10 MB value.
fn large(t: &Target, c: &Counts, use_ours: bool) -> f64 {
    let value = vec![b'v'; LARGE];
    if use_ours {
        let r = ours(t);
        for _ in 0..c.large {
            r.set("large", &value[..]).expect("set");
            assert_eq!(r.get("large").expect("get").map(|v| v.len()), Some(LARGE));
        }
    } else {
        let mut con = theirs(t);
        for _ in 0..c.large {
            let _: () = con.set("large", &value[..]).expect("set");
            let v: Option<Vec<u8>> = con.get("large").expect("get");
            assert_eq!(v.map(|v| v.len()), Some(LARGE));
        }
    }
    (2 * c.large) as f64
}

/// Resets the kernel's peak-RSS mark for this process (Linux `clear_refs`).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn status_field(field: &str) -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<usize>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn rss_bytes() -> usize {
    status_field("VmRSS:")
}

fn peak_rss_bytes() -> usize {
    status_field("VmHWM:")
}
