//! The cluster part of `cargo xtask bench`: a local three-primary cluster, this client's cluster
//! clients and the `redis` crate's on the same workloads, medians and ratios written to
//! their own section of docs/benchmarks.md.

use crate::bench::median;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

const BEGIN: &str = "<!-- cluster-bench:begin (written by cargo xtask bench) -->";
const END: &str = "<!-- cluster-bench:end -->";

/// Workloads in report order, with what each does.
const WORKLOADS: [(&str, &str); 4] = [
    ("cluster_set_4t", "4 threads, SET of distinct keys one at a time (20,000 each)"),
    ("cluster_get_4t", "4 threads, GET of those keys one at a time"),
    ("cluster_pipeline_set_100", "500 pipelines of 100 SETs over mixed slots (ours: `ClusterPipeline`; theirs: `cluster_pipe`)"),
    ("cluster_mget_100", "500 MGETs of the same 100 keys spread over every slot range, one call at a time"),
];

/// The clients in column order; "ours" is the first whose name starts with redis-client.
const CLIENTS: [&str; 4] = [
    "redis-client",
    "redis-rs",
    "redis-client async",
    "redis-rs async",
];

/// (workload, client) -> ops/s per repetition.
type Samples = BTreeMap<(String, String), Vec<f64>>;

/// Runs the cluster workloads `reps` times and writes the report section.
pub fn run(quick: bool, reps: usize) -> Result<(), String> {
    let mut build = crate::cargo();
    build.args([
        "bench",
        "--package",
        "redis-benches",
        "--bench",
        "cluster",
        "--no-run",
    ]);
    if !crate::step("build the cluster benchmark", build) {
        return Err("the cluster benchmark did not build".into());
    }
    // Three primaries and no replicas, as the comparison was specified: replicas would
    // spend the two cores' CPU on their feed and hide what the clients cost.
    let cluster = redis_tests::TestCluster::start_with(0);
    let seeds = cluster.urls().join(",");
    println!("bench cluster: {seeds}");
    let mut samples = Samples::new();
    let mut loads = vec![load_average()];
    for rep in 1..=reps {
        println!("==> cluster repetition {rep}/{reps}");
        let mut bench = crate::cargo();
        bench.args([
            "bench",
            "--quiet",
            "--package",
            "redis-benches",
            "--bench",
            "cluster",
            "--",
            "--seeds",
            &seeds,
        ]);
        if quick {
            bench.arg("--quick");
        }
        let stdout = crate::bench::output_of(&mut bench, "cluster")?;
        for line in stdout.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            if let ["RESULT", workload, _transport, client, ops, _secs, _peak] = f[..] {
                let ops: f64 = ops.parse().unwrap_or(0.0);
                println!("  {workload:<26} {client:<20} {ops:>12.0} ops/s");
                samples
                    .entry((workload.into(), client.into()))
                    .or_default()
                    .push(ops);
            }
        }
        loads.push(load_average());
    }
    drop(cluster);
    let path = crate::workspace_root().join("docs/benchmarks.md");
    write_section(&path, &report(&samples, quick, reps, &loads))?;
    println!("wrote the cluster section of docs/benchmarks.md");
    Ok(())
}

/// The one-minute load average (`None` where /proc/loadavg is not there).
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn report(samples: &Samples, quick: bool, reps: usize, loads: &[Option<f64>]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{BEGIN}");
    let _ = writeln!(s, "## Redis Cluster\n");
    let _ = writeln!(
        s,
        "Command: `cargo xtask bench{}` ({reps} repetition{}); a local cluster of three primaries without replicas (the test harness's `TestCluster::start_with(0)`; every client runs against the same cluster); figures are medians of operations (calls) per second, with min–max; the ratio is ours over the `redis` crate's same-kind client (sync over sync, async over async).\n",
        if quick { " --quick" } else { "" },
        if reps == 1 { "" } else { "s" }
    );
    let loads: Vec<f64> = loads.iter().flatten().copied().collect();
    if !loads.is_empty() {
        let lo = loads.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = loads.iter().copied().fold(0.0, f64::max);
        let _ = writeln!(
            s,
            "Load average (1 min) between repetitions: {lo:.1}–{hi:.1} on {} CPUs.\n",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
    }
    let _ = writeln!(
        s,
        "| workload | what | {} | ratio (sync) | ratio (async) |",
        CLIENTS.join(" | ")
    );
    let _ = writeln!(
        s,
        "| --- | --- |{} --- | --- |",
        " --- |".repeat(CLIENTS.len())
    );
    for (workload, what) in WORKLOADS {
        let get = |client: &str| samples.get(&(workload.to_owned(), client.to_owned()));
        let cell = |client: &str| match get(client) {
            Some(v) if !v.is_empty() => {
                let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = v.iter().copied().fold(0.0, f64::max);
                format!("{:.0} ({lo:.0}–{hi:.0})", median(v))
            }
            _ => "–".to_owned(),
        };
        let ratio = |a: &str, b: &str| match (get(a), get(b)) {
            (Some(x), Some(y)) if !x.is_empty() && !y.is_empty() => {
                format!("{:.2}x", median(x) / median(y))
            }
            _ => "–".to_owned(),
        };
        let cells: Vec<String> = CLIENTS.iter().map(|c| cell(c)).collect();
        let _ = writeln!(
            s,
            "| {workload} | {what} | {} | {} | {} |",
            cells.join(" | "),
            ratio("redis-client", "redis-rs"),
            ratio("redis-client async", "redis-rs async")
        );
    }
    let _ = writeln!(s, "\n{END}");
    s
}

/// Replaces this section of `path`, keeping everything else.
fn write_section(path: &Path, section: &str) -> Result<(), String> {
    crate::bench::write_between(path, BEGIN, END, section)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_has_ratios_per_kind() {
        let mut s = Samples::new();
        s.insert(
            ("cluster_mget_100".into(), "redis-client".into()),
            vec![1000.0, 1200.0],
        );
        s.insert(("cluster_mget_100".into(), "redis-rs".into()), vec![200.0]);
        let r = report(&s, true, 2, &[Some(1.5), None, Some(2.25)]);
        assert!(r.contains("| 5.50x | – |"), "{r}");
        assert!(
            r.contains("Load average (1 min) between repetitions: 1.5–2.2"),
            "{r}"
        );
        assert!(r.starts_with(BEGIN) && r.trim_end().ends_with(END));
    }
}
