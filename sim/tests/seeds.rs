//! The simulation's fixed share of the test suite: 10,000 seeds per target, in slices
//! that run side by side. A failure names its seeds and how to replay each.

use redis_sim::{run, Target};

#[global_allocator]
static ALLOCATOR: redis_sim::memory::Counting = redis_sim::memory::Counting;

/// Seeds per target in the suite.
const SEEDS: u64 = 10_000;
/// Slices per target (tests run in parallel).
const SLICES: u64 = 4;

fn slice(target: Target, n: u64) {
    let per = SEEDS / SLICES;
    let mut failed = Vec::new();
    let mut calls = 0;
    let mut side_calls = 0;
    for seed in n * per..(n + 1) * per {
        let report = run(target, seed);
        calls += report.calls;
        side_calls += report.side_calls;
        if let Some(v) = report.violations.first() {
            failed.push(format!(
                "seed {seed}: {} (at {:?}); replay: cargo xtask sim --target {} --seed {seed}",
                v.what,
                v.at,
                target.name()
            ));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    // The runs did work: a slice of seeds makes thousands of calls.
    assert!(calls > per * 10, "only {calls} calls in {per} seeds");
    // Calls were started from inside the client's system calls, where they run.
    if matches!(target, Target::Mux | Target::Cluster) {
        assert!(
            side_calls > per / 10,
            "only {side_calls} side calls in {per} seeds"
        );
    }
}

#[test]
fn mux_seeds_0() {
    slice(Target::Mux, 0);
}

#[test]
fn mux_seeds_1() {
    slice(Target::Mux, 1);
}

#[test]
fn mux_seeds_2() {
    slice(Target::Mux, 2);
}

#[test]
fn mux_seeds_3() {
    slice(Target::Mux, 3);
}

#[test]
fn pool_seeds_0() {
    slice(Target::Pool, 0);
}

#[test]
fn pool_seeds_1() {
    slice(Target::Pool, 1);
}

#[test]
fn pool_seeds_2() {
    slice(Target::Pool, 2);
}

#[test]
fn pool_seeds_3() {
    slice(Target::Pool, 3);
}

#[test]
fn cluster_seeds_0() {
    slice(Target::Cluster, 0);
}

#[test]
fn cluster_seeds_1() {
    slice(Target::Cluster, 1);
}

#[test]
fn cluster_seeds_2() {
    slice(Target::Cluster, 2);
}

#[test]
fn cluster_seeds_3() {
    slice(Target::Cluster, 3);
}

#[test]
fn blocking_seeds_0() {
    slice(Target::Blocking, 0);
}

#[test]
fn blocking_seeds_1() {
    slice(Target::Blocking, 1);
}

#[test]
fn blocking_seeds_2() {
    slice(Target::Blocking, 2);
}

#[test]
fn blocking_seeds_3() {
    slice(Target::Blocking, 3);
}
