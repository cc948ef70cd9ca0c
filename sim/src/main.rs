//! `redis-sim`: runs the deterministic simulation (what `cargo xtask sim` calls).
//!
//! `redis-sim --seed S [--target T]` replays one run and prints its report;
//! `redis-sim --seeds N [--from S] [--target T]` runs N seeds and prints every failing
//! one. Targets: `mux`, `pool` (default: all).

use redis_sim::{run, Target};

#[global_allocator]
static ALLOCATOR: redis_sim::memory::Counting = redis_sim::memory::Counting;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let targets: Vec<Target> = match value("--target") {
        Some(name) => match Target::from_name(&name) {
            Some(t) => vec![t],
            None => {
                eprintln!("unknown target {name}: mux, pool, cluster, blocking");
                return ExitCode::from(2);
            }
        },
        None => Target::ALL.to_vec(),
    };
    let parse = |flag: &str, default: u64| -> Option<u64> {
        match value(flag) {
            None => Some(default),
            Some(v) => v.parse().ok(),
        }
    };
    if let Some(seed) = value("--seed") {
        let Ok(seed) = seed.parse::<u64>() else {
            eprintln!("--seed takes a number");
            return ExitCode::from(2);
        };
        let mut failed = false;
        for t in targets {
            let report = run(t, seed);
            println!("{} seed {seed}: {report:#?}", t.name());
            failed |= !report.violations.is_empty();
        }
        return if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        };
    }
    let (Some(seeds), Some(from)) = (parse("--seeds", 1000), parse("--from", 0)) else {
        eprintln!("usage: redis-sim --seed S | --seeds N [--from S] [--target mux|pool]");
        return ExitCode::from(2);
    };
    let mut failures = 0;
    for t in targets {
        let start = std::time::Instant::now();
        let mut calls = 0;
        for seed in from..from + seeds {
            let report = run(t, seed);
            calls += report.calls;
            if let Some(v) = report.violations.first() {
                failures += 1;
                println!(
                    "FAILED {} seed {seed}: {} (at {:?}); replay: cargo xtask sim --target {} --seed {seed}",
                    t.name(),
                    v.what,
                    v.at,
                    t.name()
                );
            }
        }
        println!(
            "{}: {seeds} seeds, {calls} calls, in {:.1?}",
            t.name(),
            start.elapsed()
        );
    }
    if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
