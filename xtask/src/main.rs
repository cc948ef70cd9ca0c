//! `cargo xtask`: the project's commands, written in Rust so they need nothing but cargo.
//!
//! - `cargo xtask test`: make sure Redis is installed, then fmt, clippy, the test suite
//!   and the docs, with a count of tests at the end.
//! - `cargo xtask demo`: make sure Redis is installed, start a throwaway server and run
//!   the getting-started example against it.
//! - `cargo xtask bench [--quick] [--only async] [--observe-only] [--cluster-only]`: this
//!   client against the `redis` crate, fred and redis-benchmark, and what observability
//!   costs, written to docs/benchmarks.md; then `bench-cache`, the cluster and the Sentinel
//!   comparisons.
//! - `cargo xtask bench-cache [--quick]`: the client-side cache on a read-mostly workload.
//! - `cargo xtask sim --seed S | --seeds N [--from S] [--target mux|pool|...]`: the
//!   deterministic simulation of the async client (crate `redis-sim`), one seed replayed
//!   or many run, in release mode.

mod bench;
mod bench_async;
mod bench_cache;
mod bench_cluster;
mod bench_obs;
mod bench_sentinel;
mod redis_install;
mod tidy;

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitCode, Stdio};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("demo") => demo(),
        Some("bench") => bench::run(&args[1..]),
        Some("bench-cache") => bench_cache::run(&args[1..]),
        Some("sim") => sim(&args[1..]),
        Some("tidy") => tidy::check(&workspace_root()).map_err(|problems| problems.join("\n")),
        _ => {
            eprintln!(
                "usage: cargo xtask <test|demo|bench [--quick] [--only async]|bench-cache [--quick]|sim --seed S|--seeds N|tidy>"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("xtask: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> std::path::PathBuf {
    let here = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .expect("xtask lives in the workspace root")
        .to_path_buf()
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    cmd.current_dir(workspace_root())
        .env(redis_tests::RUN_VAR, run_name());
    cmd
}

/// This run's name, carried by the directories of the servers its tests start, so that
/// the check for leftovers looks at this run's servers alone.
fn run_name() -> String {
    format!("x{}", std::process::id())
}

/// Runs a step, printing its name; returns whether it passed.
fn step(name: &str, mut cmd: Command) -> bool {
    println!("\n==> {name}");
    match cmd.status() {
        Ok(s) if s.success() => true,
        Ok(s) => {
            eprintln!("==> {name} failed ({s})");
            false
        }
        Err(e) => {
            eprintln!("==> {name} could not run: {e}");
            false
        }
    }
}

fn test() -> Result<(), String> {
    redis_install::ensure()?;
    let mut failed = Vec::new();

    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--check"]);
    if !step("cargo fmt --check", fmt) {
        failed.push("fmt");
    }

    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    if !step("cargo clippy", clippy) {
        failed.push("clippy");
    }

    println!("\n==> cargo test --workspace --no-fail-fast");
    let (passed, test_failed, ok) = run_tests()?;
    if !ok {
        failed.push("test");
    }

    let mut doc = cargo();
    doc.args(["doc", "--workspace", "--no-deps"])
        .env("RUSTDOCFLAGS", "-D warnings");
    if !step("cargo doc", doc) {
        failed.push("doc");
    }

    let leftovers = redis_install::leftover_servers(&run_name());
    if !leftovers.is_empty() {
        failed.push("leftover servers");
        eprintln!("redis-server processes left running by the tests: {leftovers:?}");
        redis_install::kill(&leftovers);
    }

    println!();
    println!("tests: {passed} passed, {test_failed} failed");
    if failed.is_empty() {
        println!("xtask test: all steps passed");
        Ok(())
    } else {
        Err(format!("failed steps: {}", failed.join(", ")))
    }
}

/// Runs `cargo test --workspace`, echoing its output and adding up the result lines.
fn run_tests() -> Result<(u64, u64, bool), String> {
    let mut child = cargo()
        .args(["test", "--workspace", "--no-fail-fast"])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run cargo test: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout from cargo test")?;
    let (mut passed, mut failed) = (0, 0);
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| e.to_string())?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            passed += count(rest, " passed");
            failed += count(rest, " failed");
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    Ok((passed, failed, status.success() && failed == 0))
}

/// The number before `label` in a `test result:` line.
fn count(line: &str, label: &str) -> u64 {
    line.split(';')
        .find_map(|part| {
            part.trim()
                .trim_start_matches("ok. ")
                .trim_start_matches("FAILED. ")
                .strip_suffix(label)
                .map(str::to_owned)
        })
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Runs the simulation's binary with `args`, built in release mode (a run of many seeds
/// is ten times faster than in debug).
fn sim(args: &[String]) -> Result<(), String> {
    let mut run = cargo();
    run.args([
        "run",
        "--quiet",
        "--release",
        "--package",
        "redis-sim",
        "--",
    ])
    .args(args);
    if step("redis-sim", run) {
        Ok(())
    } else {
        Err("the simulation found a broken promise (or was given bad arguments)".to_owned())
    }
}

fn demo() -> Result<(), String> {
    redis_install::ensure()?;
    // The server lives in a temporary directory with persistence off and is killed when
    // `server` drops, whatever the example does.
    // With a Unix socket too, for the example's socket step.
    let server = redis_tests::ServerConfig::default().unix_socket().start();
    println!("started a throwaway redis-server at {}", server.url());
    let mut run = cargo();
    run.args([
        "run",
        "--quiet",
        "--package",
        "redis-client",
        "--example",
        "getting_started",
    ])
    .env("REDIS_URL", server.url())
    .env("REDIS_SOCKET", server.socket_path());
    let ok = step("getting_started", run);
    drop(server);
    if ok {
        Ok(())
    } else {
        Err("the example failed".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn counts_test_result_lines() {
        let line =
            "ok. 12 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s";
        assert_eq!(count(line, " passed"), 12);
        assert_eq!(count(line, " failed"), 0);
        assert_eq!(count("FAILED. 3 passed; 2 failed; 0 ignored", " failed"), 2);
    }
}
