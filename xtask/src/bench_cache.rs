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
    let stdout = crate::bench::output_of(&mut bench, "cache");
    drop(server);
    let stdout = stdout?;
    let (mut plain, mut cached) = (Vec::new(), Vec::new());
    for line in stdout.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if let ["RESULT", "read_mostly", "tcp", client, ops, secs, round_trips, cpu] = f[..] {
            let ops: f64 = ops.parse().unwrap_or(0.0);
            let secs: f64 = secs.parse().unwrap_or(f64::INFINITY);
            let trips = round_trips.parse::<f64>().unwrap_or(0.0) / secs;
            let busy = cpu.parse::<f64>().unwrap_or(0.0) / secs;
            println!(
                "  read_mostly tcp {client:<10} {ops:>12.0} ops/s {trips:>10.0} round trips/s, server busy {:.0}%",
                busy * 100.0
            );
            let run = Run { ops, trips, busy };
            match client {
                "cached" => cached.push(run),
                _ => plain.push(run),
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

/// One measurement: operations per second, and how many of them per second reached the
/// server.
struct Run {
    ops: f64,
    trips: f64,
    /// The share of the run's time the server spent on the CPU.
    busy: f64,
}

fn report(plain: &[Run], cached: &[Run], quick: bool, load: &str) -> String {
    let ops = |runs: &[Run]| median(&runs.iter().map(|r| r.ops).collect::<Vec<_>>());
    let trips = |runs: &[Run]| median(&runs.iter().map(|r| r.trips).collect::<Vec<_>>());
    let (p, c) = (ops(plain), ops(cached));
    let (pt, ct) = (trips(plain), trips(cached));
    let busy = |runs: &[Run]| 100.0 * median(&runs.iter().map(|r| r.busy).collect::<Vec<_>>());
    let (pb, cb) = (busy(plain), busy(cached));
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "{BEGIN}\n\
         ## Client-side caching\n\n\
         Read-mostly workload: 4 threads share one client; each operation is a GET of one of 1,000 hot keys (95%) or a SET of one (5%), chosen at random; TCP to a local redis-server.\n\
         The same client without and with `with_cache(CacheOptions::default())`, alternately in one run ({} repetitions{}), on a machine with {cores} cores; medians.\n\n\
         | client | ops/s (median) | of which reached the server, per s (median) | server on the CPU (median) | runs |\n| --- | ---: | ---: | ---: | ---: |\n\
         | without cache | {p:.0} | {pt:.0} | {pb:.0}% | {} |\n| with cache | {c:.0} | {ct:.0} | {cb:.0}% | {} |\n\n\
         Ratio of medians: **{:.1}x**.\n\
         Every SET is a round trip in both columns, and each invalidates a key whose next read then misses: {:.1}% of operations reached the server with the cache, which bounds the ratio near {:.1}x however cheap a hit is, if the server answered as many round trips per second in both columns.\n\
         It answered {:.0}% as many per second with the cache, and spent {:.1} µs of CPU on each against {:.1} µs without (its own figures, from INFO cpu): with most operations served from memory, requests arrive one at a time instead of several per wake-up, and each SET also sends an invalidation to the cache's connection. The client threads, busy with hits, share the cores with it.\n\
         Load average when the run began: {load}; other work on the machine slows both columns, the cached one more.\n\
         {END}\n",
        plain.len().min(cached.len()),
        if quick { ", --quick" } else { "" },
        plain.len(),
        cached.len(),
        c / p,
        100.0 * ct / c,
        c / ct,
        100.0 * ct / pt,
        cb / ct * 1e4,
        pb / pt * 1e4,
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
        let runs = |ops: &[f64], trips: f64| -> Vec<Run> {
            ops.iter()
                .map(|&ops| Run {
                    ops,
                    trips,
                    busy: 0.5,
                })
                .collect()
        };
        let r = report(
            &runs(&[10.0, 30.0, 20.0], 20.0),
            &runs(&[100.0, 300.0, 200.0], 10.0),
            false,
            "0.5",
        );
        assert!(r.contains("**10.0x**"), "{r}");
        assert!(r.contains("5.0% of operations"), "{r}");
        assert!(r.starts_with(BEGIN) && r.trim_end().ends_with(END));
    }
}
