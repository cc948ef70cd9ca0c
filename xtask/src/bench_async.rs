//! The async part of `cargo xtask bench`: 50 tasks on one multiplexed connection, this
//! client against the `redis` crate's `MultiplexedConnection` and fred, with
//! redis-benchmark `-c 50 -P 1` and `-c 1 -P 50` (one connection, 50 requests pipelined)
//! beside them; medians written to their own section of docs/benchmarks.md.

use crate::bench::{
    bench_csv, benchmark_targets, build_workloads, cell, machine, run_workloads, stat,
    workload_targets, write_between, Samples,
};
use std::collections::BTreeMap;
use std::fmt::Write as _;

const BEGIN: &str = "<!-- async-bench:begin (written by cargo xtask bench) -->";
const END: &str = "<!-- async-bench:end -->";

/// The workloads, as the bench binary names them, with the redis-benchmark test each
/// matches.
const WORKLOADS: [(&str, &str); 2] = [("async_set", "SET"), ("async_get", "GET")];

/// The Rust clients as the bench binary names them, with their column titles.
const RUST: [(&str, &str); 3] = [
    ("ours", "ours"),
    ("redis-rs", "redis crate"),
    ("fred", "fred"),
];

/// redis-benchmark's runs: the client name recorded, its column title and its arguments.
const BENCHMARKS: [(&str, &str, [&str; 4]); 2] = [
    (
        "redis-benchmark",
        "redis-benchmark `-c 50 -P 1`",
        ["-c", "50", "-P", "1"],
    ),
    (
        "pipelined",
        "redis-benchmark `-c 1 -P 50`",
        ["-c", "1", "-P", "50"],
    ),
];

/// Runs `reps` repetitions against `server`, alternating which of the Rust clients and
/// redis-benchmark go first, and writes the report section.
pub(crate) fn run(
    server: &redis_tests::TestServer,
    quick: bool,
    reps: usize,
    have_benchmark: bool,
) -> Result<(), String> {
    build_workloads("async_client")?;
    let mut samples = Samples::new();
    // Heap allocations per request, per (workload, transport, client): the same in every
    // repetition up to noise, so the last one is kept.
    let mut allocs: BTreeMap<(String, String, String), f64> = BTreeMap::new();
    for rep in 1..=reps {
        println!("==> async repetition {rep}/{reps}");
        let benchmark_first = rep % 2 == 0;
        if have_benchmark && benchmark_first {
            redis_benchmark(server, quick, &mut samples)?;
        }
        let mut args = workload_targets(server, quick);
        args.extend(["--round".to_owned(), rep.to_string()]);
        let out = run_workloads("async_client", &args, &mut samples)?;
        for line in out.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            if let ["ALLOCS", workload, transport, client, per_op] = f[..] {
                if let Ok(per_op) = per_op.parse() {
                    allocs.insert((workload.into(), transport.into(), client.into()), per_op);
                }
            }
        }
        if have_benchmark && !benchmark_first {
            redis_benchmark(server, quick, &mut samples)?;
        }
    }
    let path = crate::workspace_root().join("docs/benchmarks.md");
    write_between(&path, BEGIN, END, &report(&samples, &allocs, quick, reps))?;
    println!("wrote the async section of docs/benchmarks.md");
    Ok(())
}

/// redis-benchmark's SET and GET with 50 clients one request at a time, and with one
/// client pipelining 50, over TCP and the Unix socket.
fn redis_benchmark(
    server: &redis_tests::TestServer,
    quick: bool,
    samples: &mut Samples,
) -> Result<(), String> {
    let n = if quick { "20000" } else { "200000" };
    for (transport, target) in benchmark_targets(server) {
        for (client, _, shape) in BENCHMARKS {
            let mut args = shape.to_vec();
            args.extend(["-d", "16", "-r", n, "-n", n, "-t", "set,get"]);
            let rates = bench_csv(&target, &args)?;
            for (workload, test) in WORKLOADS {
                if let Some(ops) = rates.get(test) {
                    println!("  {workload:<20} {transport:<4} {client:<16} {ops:>12.0} ops/s");
                    samples
                        .entry((workload.into(), transport.into(), client.into()))
                        .or_default()
                        .push((*ops, 0));
                }
            }
        }
    }
    Ok(())
}

fn report(
    samples: &Samples,
    allocs: &BTreeMap<(String, String, String), f64>,
    quick: bool,
    reps: usize,
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{BEGIN}\n## Async: 50 tasks sharing one multiplexed connection\n"
    );
    let _ = writeln!(s, "Command: `cargo xtask bench{}` ({reps} repetition{}; each runs every client once, in an order that rotates between repetitions; figures are medians of operations per second, with min–max).", if quick { " --quick" } else { "" }, if reps == 1 { "" } else { "s" });
    let _ = writeln!(s, "{} operations per workload: 50 tokio tasks on one multi-threaded runtime, each sending one command and awaiting its reply before the next, all over one connection per client (`redis_client::aio::Redis`; the `redis` crate's `MultiplexedConnection`; fred's `Client`, which is one connection with fred's own pipelining); 16-byte values, distinct keys.", if quick { "20,000" } else { "200,000" });
    let _ = writeln!(s, "redis-benchmark runs the same commands with 50 connections one request at a time (`-c 50 -P 1`), and with one connection pipelining 50 requests (`-c 1 -P 50`). The latter is not a ceiling: redis-benchmark sends 50 requests, waits for all 50 replies, then sends the next 50, so it and the server take turns; a multiplexed client that gives the server new requests while it is still handling replies can pass it.\n");
    s += &machine();
    let _ = writeln!(s, "- `fred` 10 (`Client`, default performance settings)");
    for (workload, test) in WORKLOADS {
        let _ = writeln!(s, "\n### {test}\n");
        let mut header = "| transport |".to_owned();
        for (_, title) in RUST {
            let _ = write!(header, " {title} |");
        }
        for (_, title, _) in BENCHMARKS {
            let _ = write!(header, " {title} |");
        }
        header += " ours / best Rust client | ours / `-c 1 -P 50` |";
        let _ = writeln!(s, "{header}");
        let _ = writeln!(s, "|{}", " --- |".repeat(RUST.len() + BENCHMARKS.len() + 3));
        for transport in ["tcp", "unix"] {
            let get = |client: &str| stat(samples, workload, transport, client);
            let Some(ours) = get("ours") else {
                continue;
            };
            let mut row = format!("| {transport} |");
            for (client, _) in RUST {
                let _ = write!(row, " {} |", cell(&get(client)));
            }
            for (client, _, _) in BENCHMARKS {
                let _ = write!(row, " {} |", cell(&get(client)));
            }
            let best = RUST[1..]
                .iter()
                .filter_map(|(client, title)| get(client).map(|st| (st.median, *title)))
                .max_by(|a, b| a.0.total_cmp(&b.0));
            let ratio = |other: Option<f64>| match other {
                Some(o) if o > 0.0 => format!("{:.2}x", ours.median / o),
                _ => "–".to_owned(),
            };
            let best_cell = match best {
                Some((median, title)) => format!("{} ({title})", ratio(Some(median))),
                None => "–".to_owned(),
            };
            let _ = writeln!(
                row,
                " {best_cell} | {} |",
                ratio(get("pipelined").map(|c| c.median))
            );
            s += &row;
        }
    }
    if !allocs.is_empty() {
        let _ = writeln!(s, "\n### Heap allocations per request\n");
        let _ = writeln!(s, "Counted by a counting global allocator in the workload binary over each timed run (every task, the runtime and the client's connection task included), divided by the requests made.\n");
        let mut header = "| workload | transport |".to_owned();
        for (_, title) in RUST {
            let _ = write!(header, " {title} |");
        }
        let _ = writeln!(s, "{header}");
        let _ = writeln!(s, "|{}", " --- |".repeat(RUST.len() + 2));
        for (workload, test) in WORKLOADS {
            for transport in ["tcp", "unix"] {
                let mut row = format!("| {test} | {transport} |");
                let mut any = false;
                for (client, _) in RUST {
                    match allocs.get(&(
                        workload.to_owned(),
                        transport.to_owned(),
                        client.to_owned(),
                    )) {
                        Some(a) => {
                            any = true;
                            let _ = write!(row, " {a:.2} |");
                        }
                        None => row += " – |",
                    }
                }
                if any {
                    let _ = writeln!(s, "{row}");
                }
            }
        }
    }
    let _ = writeln!(s, "\n{END}");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_compares_with_the_best_rust_client_and_the_pipelined_run() {
        let mut s = Samples::new();
        for (client, ops) in [
            ("ours", 300.0),
            ("redis-rs", 200.0),
            ("fred", 100.0),
            ("pipelined", 600.0),
        ] {
            s.insert(
                ("async_set".into(), "tcp".into(), client.into()),
                vec![(ops, 0)],
            );
        }
        let mut allocs = BTreeMap::new();
        allocs.insert(("async_set".into(), "tcp".into(), "ours".into()), 1.0);
        let text = report(&s, &allocs, true, 1);
        assert!(text.contains("| SET | tcp | 1.00 | – | – |"), "{text}");
        assert!(text.contains("1.50x (redis crate)"), "{text}");
        assert!(text.contains("0.50x |"), "{text}");
        assert!(text.starts_with(BEGIN) && text.trim_end().ends_with(END));
    }
}
