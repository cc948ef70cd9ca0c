//! Faults under load: no caller ever reads another caller's reply, failures are typed,
//! acknowledged writes are on the server, and the pool recovers by itself.
//!
//! Each test prints one `reliability:` line with its figures; docs/reliability.md
//! summarizes them.

use redis_client::prelude::*;
use redis_client::{ConnectionInfo, ConnectionPool, Error, PoolOptions, Redis, RetryPolicy};
use redis_tests::{FaultProxy, TestServer};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// xorshift64*: deterministic, seedable, good enough to pick faults.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A failure is acceptable only if it is one of the typed kinds a fault can cause.
fn assert_fault_error(e: &Error) {
    assert!(
        e.is_connection_lost() || matches!(e, Error::Connect { .. } | Error::PoolExhausted(_)),
        "unexpected error kind under faults: {e:?}"
    );
}

#[test]
fn desync_hunt() {
    const THREADS: u64 = 8;
    const ITERATIONS: u64 = 10_000;
    let server = TestServer::start();
    let proxy = Arc::new(FaultProxy::start(server.port()));
    let info = ConnectionInfo::tcp("127.0.0.1", proxy.port())
        .with_timeout(Some(Duration::from_millis(60)));
    // No retries: every fault must surface, so the test sees each one.
    let r = Redis::from_pool(ConnectionPool::with_options(
        info,
        PoolOptions::default().with_max_size(4),
    ))
    .with_retry_policy(RetryPolicy::none());
    let admin = Redis::open(&server.url()).unwrap();

    let done = Arc::new(AtomicBool::new(false));
    let faults = Arc::new(AtomicU64::new(0));
    let injector = {
        let (proxy, done, faults, admin) = (
            Arc::clone(&proxy),
            Arc::clone(&done),
            Arc::clone(&faults),
            admin.clone(),
        );
        std::thread::spawn(move || {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
            while !done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(2 + rng.below(15)));
                match rng.below(5) {
                    0 => proxy.cut_after(rng.below(40)),
                    4 => proxy.duplicate_next(),
                    1 => {
                        // Longer than the read timeout: replies arrive late, to whoever
                        // would wrongly still be listening.
                        proxy.stall();
                        std::thread::sleep(Duration::from_millis(40 + rng.below(60)));
                        proxy.resume();
                    }
                    2 => proxy.drop_connections(),
                    _ => {
                        let _ = admin
                            .execute_command(("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"));
                    }
                }
                faults.fetch_add(1, Ordering::SeqCst);
            }
        })
    };

    let next = Arc::new(AtomicU64::new(0));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (r, next, ok, failed) = (
                r.clone(),
                Arc::clone(&next),
                Arc::clone(&ok),
                Arc::clone(&failed),
            );
            s.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= ITERATIONS {
                    break;
                }
                // A key per iteration: a write that timed out while stalled may still reach
                // the server later (any client shares that hazard), but never on this key.
                let key = format!("desync:{t}:{i}");
                let value = format!("value-{t}-{i}");
                let written = match r.set(&key, &value) {
                    Ok(_) => true,
                    Err(e) => {
                        assert_fault_error(&e);
                        failed.fetch_add(1, Ordering::SeqCst);
                        false
                    }
                };
                match r.get(&key) {
                    Ok(got) => {
                        // Another caller's reply would be another value, or OK, or nil.
                        match got {
                            Some(got) => assert_eq!(
                                &got[..],
                                value.as_bytes(),
                                "thread {t} read someone else's reply"
                            ),
                            None => assert!(!written, "thread {t}: acknowledged SET, then nil"),
                        }
                        ok.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => {
                        assert_fault_error(&e);
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
    });
    done.store(true, Ordering::SeqCst);
    injector.join().unwrap();
    proxy.no_cut();
    proxy.no_duplicate();
    proxy.resume();
    // A fault injected last (a CLIENT KILL) reaches the client only when the proxy's pump
    // next looks, every 20 ms; until then the client side looks open to any client.
    std::thread::sleep(std::time::Duration::from_millis(200));

    // The pool serves again, with no manual action.
    for t in 0..THREADS {
        assert!(r.set(format!("after:{t}"), t).unwrap());
    }
    let (ok, failed, faults) = (
        ok.load(Ordering::SeqCst),
        failed.load(Ordering::SeqCst),
        faults.load(Ordering::SeqCst),
    );
    println!("reliability: desync hunt: {ITERATIONS} SET+GET iterations, {THREADS} threads, pool of 4, {faults} faults injected, {ok} verified reads, {failed} typed failures, 0 wrong values");
    assert!(
        faults > 20,
        "the hunt injected too few faults ({faults}) to mean anything"
    );
    assert!(failed > 0 && ok > ITERATIONS / 2);
}

#[test]
fn soak_with_server_restarts() {
    const THREADS: u64 = 16;
    const OPS: u64 = 20_000;
    const RESTARTS: u32 = 3;
    let server = Arc::new(Mutex::new(TestServer::start()));
    let port = server.lock().unwrap().port();
    let info = ConnectionInfo::tcp("127.0.0.1", port).with_timeout(Some(Duration::from_secs(5)));
    let r = Redis::from_pool(ConnectionPool::with_options(
        info,
        PoolOptions::default().with_max_size(16),
    ))
    .with_retry_policy(
        RetryPolicy::default()
            .with_max_retries(10)
            .with_backoff(Duration::from_millis(20), Duration::from_millis(200)),
    );

    // Time of the last restart's completion, in ms since `origin`: a write started after it
    // ran on the final server and must be there at the end.
    let origin = Instant::now();
    let stable_since = Arc::new(AtomicU64::new(0));
    let finished = Arc::new(AtomicU64::new(0));
    let restarter = {
        let (server, stable_since, finished) = (
            Arc::clone(&server),
            Arc::clone(&stable_since),
            Arc::clone(&finished),
        );
        std::thread::spawn(move || {
            for _ in 0..RESTARTS {
                std::thread::sleep(Duration::from_millis(400));
                if finished.load(Ordering::SeqCst) == THREADS {
                    break;
                }
                let mut s = server.lock().unwrap();
                stable_since.store(u64::MAX, Ordering::SeqCst);
                s.stop();
                s.restart();
                stable_since.store(origin.elapsed().as_millis() as u64, Ordering::SeqCst);
            }
        })
    };

    let acked_after_stable = Arc::new(Mutex::new(Vec::new()));
    let (ops_done, errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (r, stable_since, acked, ops_done, errors, finished) = (
                r.clone(),
                Arc::clone(&stable_since),
                Arc::clone(&acked_after_stable),
                Arc::clone(&ops_done),
                Arc::clone(&errors),
                Arc::clone(&finished),
            );
            s.spawn(move || {
                let mut rng = Rng(0xD1B5_4A32_D192_ED03 ^ (t + 1));
                let mut mine = Vec::new();
                let started = Instant::now();
                for i in 0..OPS {
                    let key = format!("soak:{t}:{i}");
                    let before = stable_since.load(Ordering::SeqCst);
                    let began = origin.elapsed().as_millis() as u64;
                    let result = match rng.below(3) {
                        0 | 1 => r.set(&key, i).map(|_| true),
                        _ => r.get(format!("soak:{t}:{}", i.saturating_sub(1))).map(|v| {
                            // A value, if any, is the one this thread wrote for that key.
                            if let Some(v) = v {
                                assert_eq!(&v[..], (i - 1).to_string().as_bytes(), "wrong value");
                            }
                            false
                        }),
                    };
                    match result {
                        Ok(true)
                            if before != u64::MAX
                                && began > before
                                && stable_since.load(Ordering::SeqCst) == before =>
                        {
                            mine.push((before, key))
                        }
                        Ok(_) => {}
                        Err(e) => {
                            assert_fault_error(&e);
                            errors.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    ops_done.fetch_add(1, Ordering::SeqCst);
                    assert!(
                        started.elapsed() < Duration::from_secs(120),
                        "thread {t} stuck"
                    );
                }
                acked.lock().unwrap().push(mine);
                finished.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    restarter.join().unwrap();
    let final_since = stable_since.load(Ordering::SeqCst);

    // Every write acknowledged by the final server instance is there; earlier ones were
    // wiped by the restarts (persistence is off).
    let acked: Vec<String> = acked_after_stable
        .lock()
        .unwrap()
        .drain(..)
        .flatten()
        .filter(|(since, _)| *since == final_since)
        .map(|(_, key)| key)
        .collect();
    let check = Redis::open(&format!("redis://127.0.0.1:{port}/0")).unwrap();
    let mut missing = 0;
    for chunk in acked.chunks(500) {
        let n = check.exists(chunk).unwrap();
        missing += chunk.len() as i64 - n;
    }
    assert_eq!(missing, 0, "acknowledged writes missing from the server");
    println!(
        "reliability: soak: {THREADS} threads x {OPS} mixed ops, {RESTARTS} server restarts, {} typed failures, {} writes acknowledged by the final server instance (since {final_since} ms) all present, 0 wrong values",
        errors.load(Ordering::SeqCst),
        acked.len()
    );
    assert_eq!(ops_done.load(Ordering::SeqCst), THREADS * OPS);
}
