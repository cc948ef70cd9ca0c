//! `cargo xtask bench-cache [--quick]` (also run by `cargo xtask bench`): the read-mostly
//! workload of benches/benches/cache.rs with and without the client-side cache, in one run,
//! medians and their ratio written to their own section of docs/benchmarks.md.

use crate::bench::median;
use std::path::Path;

/// The report section this command owns; the rest of docs/benchmarks.md is kept.
const BEGIN: &str = "<!-- cache-bench:begin (written by cargo xtask bench-cache) -->";
const END: &str = "<!-- cache-bench:end -->";

pub fn run(args: &[String]) -> Result<(), String> {
    let quick = args.iter().any(|a| a == "--quick");
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into());
    let server = redis_tests::ServerConfig::default().start();
    let mut bench = crate::cargo();
    bench.args([
        "bench",
        "--quiet",
        "--package",
        "redis-benches",
        "--bench",
        "cache",
        "--",
        "--tcp",
        &server.port().to_string(),
    ]);
    if quick {
        bench.arg("--quick");
    }
    println!("\n==> cache benchmark");
    let out = bench
        .output()
        .map_err(|e| format!("cannot run the cache benchmark: {e}"))?;
    drop(server);
    if !out.status.success() {
        return Err(format!(
            "cache benchmark failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let (mut plain, mut cached) = (Vec::new(), Vec::new());
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if let ["RESULT", "read_mostly", "tcp", client, ops, _secs] = f[..] {
            let ops: f64 = ops.parse().unwrap_or(0.0);
            println!("  read_mostly tcp {client:<10} {ops:>12.0} ops/s");
            match client {
                "cached" => cached.push(ops),
                _ => plain.push(ops),
            }
        }
    }
    if plain.is_empty() || cached.is_empty() {
        return Err("the cache benchmark printed no results".into());
    }
    let section = report(&plain, &cached, quick, &load);
    write_section(
        &crate::workspace_root().join("docs/benchmarks.md"),
        &section,
    )?;
    println!("wrote the cache section of docs/benchmarks.md");
    Ok(())
}

fn report(plain: &[f64], cached: &[f64], quick: bool, load: &str) -> String {
    let (p, c) = (median(plain), median(cached));
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "{BEGIN}\n\
         ## Client-side caching\n\n\
         Read-mostly workload: 4 threads share one client; each operation is a GET of one of 1,000 hot keys (95%) or a SET of one (5%), chosen at random; TCP to a local redis-server.\n\
         The same client without and with `with_cache(CacheOptions::default())`, alternately in one run ({} repetitions{}), on a machine with {cores} cores; medians.\n\n\
         | client | ops/s (median) | runs |\n| --- | ---: | ---: |\n\
         | without cache | {p:.0} | {} |\n| with cache | {c:.0} | {} |\n\n\
         Ratio of medians: **{:.1}x**.\n\
         Every SET is a round trip in both columns, and each invalidates a key whose next read then misses: about 10% of operations reach the server with the cache, which bounds the ratio near 10x however cheap a hit is.\n\
         Load average when the run began: {load}; other work on the machine slows both columns, the cached one more, since its hits compete with the server for the CPU.\n\
         {END}\n",
        plain.len().min(cached.len()),
        if quick { ", --quick" } else { "" },
        plain.len(),
        cached.len(),
        c / p
    )
}

/// Replaces this section of `path`, keeping everything else.
fn write_section(path: &Path, section: &str) -> Result<(), String> {
    crate::bench::write_between(path, BEGIN, END, section)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_gives_the_ratio_of_medians() {
        let r = report(&[10.0, 30.0, 20.0], &[100.0, 300.0, 200.0], false, "0.5");
        assert!(r.contains("**10.0x**"), "{r}");
        assert!(r.starts_with(BEGIN) && r.trim_end().ends_with(END));
    }
}
