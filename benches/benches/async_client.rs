//! The async workload: 50 tokio tasks, each issuing one command at a time (awaiting each),
//! all sharing one multiplexed connection: this client's `aio::Redis`, the `redis`
//! crate's `MultiplexedConnection` and fred's `Client` (one connection, fred's own
//! pipelining), run one after the other on the same runtime and server, in an order that
//! rotates with `--round` so drift on a shared machine hits every client alike.
//!
//! Run through `cargo xtask bench`, which starts the server, adds redis-benchmark's
//! `-c 50 -P 1` and `-c 1 -P 50` figures and writes docs/benchmarks.md. Output: one
//! `RESULT` line per measurement, as `redis_benches::live::report` prints it.
//!
//! Arguments: `--tcp PORT`, `--unix PATH`, `--quick`, `--only WORKLOAD`, `--client NAME`,
//! `--round N`.

#![allow(missing_docs)]

use fred::interfaces::{ClientLike as _, KeysInterface as _};
use redis::AsyncCommands as _;
use redis_benches::live::{report, Args, VALUE16};
use redis_client::prelude::*;
use redis_client::{Bytes, ConnectionInfo};
use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Counts heap allocations, so each run reports how many its requests cost.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call forwards to `System` with the caller's arguments; only a counter is
// added.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Tasks sharing the one connection.
const TASKS: usize = 50;

/// The clients, in the order of round 0.
const CLIENTS: [&str; 3] = ["ours", "redis-rs", "fred"];

/// One shared connection of each client.
#[derive(Clone)]
enum Shared {
    Ours(redis_client::aio::Redis),
    RedisRs(redis::aio::MultiplexedConnection),
    Fred(fred::clients::Client),
}

struct Target {
    name: &'static str,
    ours: ConnectionInfo,
    redis_rs: String,
    fred: fred::types::config::ServerConfig,
}

fn main() {
    let args = Args::parse();
    // Operations per workload, spread evenly over the tasks.
    let ops = if args.quick { 20_000 } else { 200_000 };
    let mut targets = Vec::new();
    if let Some(port) = args.tcp {
        targets.push(Target {
            name: "tcp",
            ours: ConnectionInfo::tcp("127.0.0.1", port),
            redis_rs: format!("redis://127.0.0.1:{port}/"),
            fred: fred::types::config::ServerConfig::new_centralized("127.0.0.1", port),
        });
    }
    if let Some(path) = &args.unix {
        targets.push(Target {
            name: "unix",
            ours: ConnectionInfo::unix(path),
            redis_rs: format!("unix://{path}"),
            fred: fred::types::config::ServerConfig::new_unix_socket(path),
        });
    }
    if targets.is_empty() {
        eprintln!("async bench: pass --tcp PORT and/or --unix PATH (cargo xtask bench does)");
        return;
    }
    // One runtime for every client: a worker per core, as a service would have.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut order = CLIENTS;
    order.rotate_left(args.round % CLIENTS.len());
    for t in &targets {
        for client in order {
            if args.client.as_deref().is_some_and(|c| c != client) {
                continue;
            }
            let shared = rt.block_on(connect(t, client));
            // SET first: it also writes the keys GET then reads.
            for workload in ["async_set", "async_get"] {
                // GET alone still needs the keys SET writes.
                let needed = args.selected(workload)
                    || (workload == "async_set" && args.selected("async_get"));
                if !needed {
                    continue;
                }
                let allocations = ALLOCATIONS.load(Ordering::Relaxed);
                let start = Instant::now();
                rt.block_on(run(&shared, workload == "async_set", ops));
                let secs = start.elapsed().as_secs_f64();
                let allocations = ALLOCATIONS.load(Ordering::Relaxed) - allocations;
                if args.selected(workload) {
                    report(workload, t.name, client, ops as f64, secs, 0);
                    println!(
                        "ALLOCS\t{workload}\t{}\t{client}\t{:.2}",
                        t.name,
                        allocations as f64 / ops as f64
                    );
                }
            }
        }
    }
}

/// Opens `client`'s shared connection to `t` and makes one round trip, so connecting is
/// not part of what is timed.
async fn connect(t: &Target, client: &str) -> Shared {
    let shared = match client {
        "ours" => Shared::Ours(redis_client::aio::Redis::from_info(t.ours.clone())),
        "redis-rs" => Shared::RedisRs(
            redis::Client::open(t.redis_rs.as_str())
                .expect("redis-rs client")
                .get_multiplexed_async_connection()
                .await
                .expect("redis-rs connects"),
        ),
        _ => {
            let config = fred::types::config::Config {
                server: t.fred.clone(),
                ..Default::default()
            };
            let c = fred::types::Builder::from_config(config)
                .build()
                .expect("fred client");
            c.init().await.expect("fred connects");
            Shared::Fred(c)
        }
    };
    let mut shared = shared;
    one(&mut shared, true, "key:000000000000").await;
    shared
}

/// `ops` SETs (or GETs) of distinct keys by [`TASKS`] tasks, each awaiting every reply
/// before sending its next command.
async fn run(shared: &Shared, set: bool, ops: usize) {
    let per_task = ops / TASKS;
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let mut shared = shared.clone();
            tokio::spawn(async move {
                // One key buffer per task, so that the allocations counted are the
                // clients' own.
                let mut k = String::with_capacity(32);
                for i in t * per_task..(t + 1) * per_task {
                    k.clear();
                    let _ = write!(k, "key:{i:012}");
                    one(&mut shared, set, &k).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("bench task");
    }
}

/// One command: SET of key `k` to the 16-byte value, or GET of it, checked.
async fn one(shared: &mut Shared, set: bool, k: &str) {
    match shared {
        Shared::Ours(r) => {
            if set {
                assert!(r.set(k, VALUE16).await.expect("set"));
            } else {
                let v = r.get(k).await.expect("get");
                assert_eq!(v.as_deref(), Some(&VALUE16[..]));
            }
        }
        Shared::RedisRs(c) => {
            if set {
                let () = c.set(k, VALUE16).await.expect("set");
            } else {
                let v: Option<Vec<u8>> = c.get(k).await.expect("get");
                assert_eq!(v.as_deref(), Some(&VALUE16[..]));
            }
        }
        Shared::Fred(c) => {
            if set {
                let () = c
                    .set(k, &VALUE16[..], None, None, false)
                    .await
                    .expect("set");
            } else {
                let v: Option<Bytes> = c.get(k).await.expect("get");
                assert_eq!(v.as_deref(), Some(&VALUE16[..]));
            }
        }
    }
}
