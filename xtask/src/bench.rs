//! `cargo xtask bench`: this client, the `redis` crate and redis-benchmark on the same
//! workloads in one run, interleaved, with medians written to docs/benchmarks.md and a
//! chart of the ratios to docs/benchmarks-client.svg.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

/// The report section this command owns; the rest of docs/benchmarks.md is kept.
const BEGIN: &str = "<!-- client-bench:begin (written by cargo xtask bench) -->";
const END: &str = "<!-- client-bench:end -->";

/// Workloads in report order, with the sentence describing each.
const WORKLOADS: [(&str, &str); 8] = [
    ("set_get", "100,000 SET then GET of distinct keys, 16-byte values, one request at a time (redis-benchmark `-c 1 -P 1`)"),
    ("pipeline_set_100", "2,000 pipelines of 100 SETs (redis-benchmark `-c 1 -P 100`)"),
    ("lrange_100", "20,000 LRANGE of 100 three-byte elements, decoded to a list of byte strings (redis-benchmark lrange_100)"),
    ("lrange_600", "20,000 LRANGE of 600 three-byte elements (redis-benchmark lrange_600)"),
    ("mget_100", "20,000 MGET of 100 keys"),
    ("pool_get_checkout", "4 threads sharing one pool of 4, 50,000 GETs each, a checkout per GET (redis-rs with r2d2)"),
    ("pool_get_per_thread", "4 threads, one connection kept per thread, 50,000 GETs each"),
    ("large_10mb", "SET and GET of a 10 MB value, 100 times each; peak RSS growth of the client process"),
];

/// (workload, transport, client) -> per-repetition ops/s and peak bytes.
pub(crate) type Samples = BTreeMap<(String, String, String), Vec<(f64, u64)>>;

pub fn run(args: &[String]) -> Result<(), String> {
    let quick = args.iter().any(|a| a == "--quick");
    if args.iter().any(|a| a == "--observe-only") {
        return crate::bench_obs::run_alone(quick);
    }
    let reps = if quick { 1 } else { 5 };
    if args.iter().any(|a| a == "--cluster-only") {
        return crate::bench_cluster::run(quick, reps);
    }
    let missing = missing_tools();
    if missing.iter().any(|(tool, _)| *tool == "redis-server") {
        return Err(
            "redis-server is missing: install the Debian package redis-server (Redis 7.0 or newer)"
                .into(),
        );
    }
    for (tool, package) in &missing {
        println!("note: {tool} is missing (Debian package {package}); its column is left out");
    }
    let have_benchmark = !missing.iter().any(|(t, _)| *t == "redis-benchmark");

    let server = redis_tests::ServerConfig::default().unix_socket().start();
    let socket = server.socket_path().display().to_string();
    println!("bench server: {} and {socket}", server.addr());
    // `--only async`: the async client's workload alone.
    if args.windows(2).any(|w| w[0] == "--only" && w[1] == "async") {
        return crate::bench_async::run(&server, quick, reps, have_benchmark);
    }

    build_workloads("client")?;

    let mut samples = Samples::new();
    for rep in 1..=reps {
        println!("==> repetition {rep}/{reps}");
        // A B C order within each repetition, so slow drift affects every column.
        run_workloads("client", &workload_targets(&server, quick), &mut samples)?;
        if have_benchmark {
            for (transport, target) in benchmark_targets(&server) {
                for (workload, ops) in redis_benchmark(&target, quick)? {
                    println!(
                        "  {workload:<20} {transport:<4} {:<16} {ops:>12.0} ops/s",
                        "redis-benchmark"
                    );
                    samples
                        .entry((workload, transport.into(), "redis-benchmark".into()))
                        .or_default()
                        .push((ops, 0));
                }
            }
        }
    }
    crate::bench_obs::run(server.port(), quick)?;
    crate::bench_async::run(&server, quick, reps, have_benchmark)?;
    drop(server);

    let root = crate::workspace_root();
    let section = report(&samples, quick, reps);
    write_section(&root.join("docs/benchmarks.md"), &section)?;
    std::fs::write(root.join("docs/benchmarks-client.svg"), chart(&samples))
        .map_err(|e| e.to_string())?;
    println!("wrote docs/benchmarks.md and docs/benchmarks-client.svg");
    crate::bench_cache::run(args)?;
    crate::bench_cluster::run(quick, reps)?;
    crate::bench_sentinel::run()
}

/// The server's TCP port and Unix socket, as redis-benchmark's arguments.
pub(crate) fn benchmark_targets(
    server: &redis_tests::TestServer,
) -> [(&'static str, Vec<String>); 2] {
    [
        (
            "tcp",
            vec![
                "-h".to_owned(),
                "127.0.0.1".to_owned(),
                "-p".to_owned(),
                server.port().to_string(),
            ],
        ),
        (
            "unix",
            vec!["-s".to_owned(), server.socket_path().display().to_string()],
        ),
    ]
}

/// The arguments that point a workload binary at the server's TCP port and Unix socket,
/// with `--quick` when asked.
pub(crate) fn workload_targets(server: &redis_tests::TestServer, quick: bool) -> Vec<String> {
    let mut args = vec![
        "--tcp".to_owned(),
        server.port().to_string(),
        "--unix".to_owned(),
        server.socket_path().display().to_string(),
    ];
    if quick {
        args.push("--quick".to_owned());
    }
    args
}

/// Runs the workload binary `bench` (a `[[bench]]` of redis-benches) once with `args`
/// and adds the `RESULT` lines it prints to `samples`.
pub(crate) fn run_workloads(
    bench: &str,
    args: &[String],
    samples: &mut Samples,
) -> Result<String, String> {
    let mut cmd = crate::cargo();
    cmd.args([
        "bench",
        "--quiet",
        "--package",
        "redis-benches",
        "--bench",
        bench,
        "--",
    ]);
    cmd.args(args);
    let stdout = output_of(&mut cmd, bench)?;
    for line in stdout.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if let ["RESULT", workload, transport, client, ops, _secs, peak] = f[..] {
            let ops: f64 = ops.parse().unwrap_or(0.0);
            let peak: u64 = peak.parse().unwrap_or(0);
            println!("  {workload:<20} {transport:<4} {client:<16} {ops:>12.0} ops/s");
            samples
                .entry((workload.into(), transport.into(), client.into()))
                .or_default()
                .push((ops, peak));
        }
    }
    Ok(stdout)
}

/// Builds the workload binary `bench` without running it, so the timed runs do not
/// include compiling.
pub(crate) fn build_workloads(bench: &str) -> Result<(), String> {
    let mut build = crate::cargo();
    build.args([
        "bench",
        "--package",
        "redis-benches",
        "--bench",
        bench,
        "--no-run",
    ]);
    if crate::step(&format!("build the {bench} benchmark"), build) {
        Ok(())
    } else {
        Err(format!("the {bench} benchmark did not build"))
    }
}

fn missing_tools() -> Vec<(&'static str, &'static str)> {
    let mut missing = Vec::new();
    for (tool, package) in [
        ("redis-server", "redis-server"),
        ("redis-benchmark", "redis-tools"),
    ] {
        if Command::new(tool)
            .arg("--version")
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(true)
        {
            missing.push((tool, package));
        }
    }
    if !Path::new("/usr/include/hiredis/hiredis.h").exists() {
        missing.push(("hiredis headers (codec comparison)", "libhiredis-dev"));
    }
    missing
}

/// Runs redis-benchmark's equivalents and returns (workload, ops/s).
fn redis_benchmark(target: &[String], quick: bool) -> Result<Vec<(String, f64)>, String> {
    let scale = if quick { 10 } else { 1 };
    let n = |base: usize| (base / scale).to_string();
    let mut out = Vec::new();
    let set_get = bench_csv(
        target,
        &[
            "-c",
            "1",
            "-P",
            "1",
            "-d",
            "16",
            "-r",
            &n(100_000),
            "-n",
            &n(100_000),
            "-t",
            "set,get",
        ],
    )?;
    if let (Some(set), Some(get)) = (set_get.get("SET"), set_get.get("GET")) {
        // The same number of SETs and GETs: the combined rate is the harmonic mean.
        out.push(("set_get".to_owned(), 2.0 / (1.0 / set + 1.0 / get)));
    }
    let pipe = bench_csv(
        target,
        &[
            "-c",
            "1",
            "-P",
            "100",
            "-d",
            "16",
            "-r",
            &n(200_000),
            "-n",
            &n(200_000),
            "-t",
            "set",
        ],
    )?;
    if let Some(set) = pipe.get("SET") {
        out.push(("pipeline_set_100".to_owned(), *set));
    }
    let lrange = bench_csv(
        target,
        &[
            "-c",
            "1",
            "-P",
            "1",
            "-n",
            &n(20_000),
            "-t",
            "lrange_100,lrange_600",
        ],
    )?;
    for (name, workload) in [("LRANGE_100", "lrange_100"), ("LRANGE_600", "lrange_600")] {
        if let Some((_, rps)) = lrange.iter().find(|(k, _)| k.starts_with(name)) {
            out.push((workload.to_owned(), *rps));
        }
    }
    Ok(out)
}

/// Runs redis-benchmark with `--csv` and returns test name -> requests per second.
pub(crate) fn bench_csv(target: &[String], args: &[&str]) -> Result<BTreeMap<String, f64>, String> {
    let out = Command::new("redis-benchmark")
        .args(target)
        .args(args)
        .arg("--csv")
        .output()
        .map_err(|e| format!("cannot run redis-benchmark: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "redis-benchmark failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let mut rates = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let fields: Vec<&str> = line.split(',').map(|f| f.trim_matches('"')).collect();
        if let [name, rps, ..] = fields[..] {
            if let Ok(rps) = rps.parse::<f64>() {
                rates.insert(name.to_owned(), rps);
            }
        }
    }
    Ok(rates)
}

/// The median of `xs` (NaN when empty).
pub(crate) fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

pub(crate) struct Stat {
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    peak: u64,
}

pub(crate) fn stat(
    samples: &Samples,
    workload: &str,
    transport: &str,
    client: &str,
) -> Option<Stat> {
    let s = samples.get(&(workload.to_owned(), transport.to_owned(), client.to_owned()))?;
    let ops: Vec<f64> = s.iter().map(|x| x.0).collect();
    Some(Stat {
        median: median(&ops),
        min: ops.iter().copied().fold(f64::INFINITY, f64::min),
        max: ops.iter().copied().fold(0.0, f64::max),
        peak: s.iter().map(|x| x.1).max().unwrap_or(0),
    })
}

pub(crate) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let version = |cmd: &str, arg: &str| {
        Command::new(cmd)
            .arg(arg)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    let redis_crate = std::fs::read_to_string(crate::workspace_root().join("Cargo.lock"))
        .ok()
        .and_then(|lock| {
            let i = lock.find("name = \"redis\"\n")?;
            lock[i..].lines().nth(1).map(|l| {
                l.trim_start_matches("version = ")
                    .trim_matches('"')
                    .to_owned()
            })
        })
        .unwrap_or_else(|| "?".to_owned());
    format!(
        "- Machine: {cpu}, {cores} cores (shared, noisy: read medians and ranges, not single runs)\n- {}\n- {}\n- `redis` crate {redis_crate}\n",
        version("redis-server", "--version"),
        version("rustc", "--version")
    )
}

pub(crate) fn fmt_ops(x: f64) -> String {
    if x.is_nan() {
        "–".to_owned()
    } else if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} k", x / 1e3)
    } else {
        format!("{x:.1}")
    }
}

/// A table cell: the median with the range, or a dash.
pub(crate) fn cell(x: &Option<Stat>) -> String {
    match x {
        Some(st) => format!(
            "{} ({}–{})",
            fmt_ops(st.median),
            fmt_ops(st.min),
            fmt_ops(st.max)
        ),
        None => "–".to_owned(),
    }
}

fn report(samples: &Samples, quick: bool, reps: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{BEGIN}\n## End to end: this client, the `redis` crate and redis-benchmark\n"
    );
    let _ = writeln!(
        s,
        "Command: `cargo xtask bench{}` ({reps} repetition{}, each running every client in turn; figures are medians of operations per second, with min–max).\n",
        if quick { " --quick" } else { "" },
        if reps == 1 { "" } else { "s" }
    );
    s += &machine();
    let mut notes = Vec::new();
    for (workload, what) in WORKLOADS {
        let _ = writeln!(s, "\n### {workload}\n\n{what}.\n");
        let _ = writeln!(s, "| transport | ours | redis crate | redis-benchmark | ours / redis crate | ours / redis-benchmark |");
        let _ = writeln!(s, "| --- | --- | --- | --- | --- | --- |");
        for transport in ["tcp", "unix"] {
            let ours = stat(samples, workload, transport, "ours");
            let theirs = stat(samples, workload, transport, "redis-rs");
            let bench = stat(samples, workload, transport, "redis-benchmark");
            if ours.is_none() && theirs.is_none() {
                continue;
            }
            let ratio = |a: &Option<Stat>, b: &Option<Stat>| match (a, b) {
                (Some(a), Some(b)) if b.median > 0.0 => format!("{:.2}x", a.median / b.median),
                _ => "–".to_owned(),
            };
            let _ = writeln!(
                s,
                "| {transport} | {} | {} | {} | {} | {} |",
                cell(&ours),
                cell(&theirs),
                cell(&bench),
                ratio(&ours, &theirs),
                ratio(&ours, &bench)
            );
            if workload == "large_10mb" {
                if let (Some(o), Some(t)) = (&ours, &theirs) {
                    let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
                    notes.push(format!("Peak RSS growth over {transport}: ours {:.1} MiB, redis crate {:.1} MiB (value size 10 MiB).", mb(o.peak), mb(t.peak)));
                }
            }
        }
        // After the table, so the notes do not split it.
        for note in notes.drain(..) {
            let _ = writeln!(s, "\n{note}");
        }
    }
    let per_thread = stat(samples, "pool_get_per_thread", "tcp", "ours");
    let checkout = stat(samples, "pool_get_checkout", "tcp", "ours");
    if let (Some(p), Some(c)) = (per_thread, checkout) {
        let _ = writeln!(s, "\nPool overhead over TCP: a checkout per GET runs at {:.2}x the rate of one connection per thread.", c.median / p.median);
    }
    let _ = writeln!(s, "\n![ratios](benchmarks-client.svg)\n\n{END}");
    s
}

/// Replaces this command's section of `path`, keeping everything else.
fn write_section(path: &Path, section: &str) -> Result<(), String> {
    write_between(path, BEGIN, END, section)
}

/// Replaces the part of `path` from `begin` to `end` (markers included, and given again
/// in `section`) with `section`, or appends `section` when the markers are not there.
pub(crate) fn write_between(
    path: &Path,
    begin: &str,
    end: &str,
    section: &str,
) -> Result<(), String> {
    let old = std::fs::read_to_string(path).unwrap_or_else(|_| "# Benchmarks\n".to_owned());
    let new = match (old.find(begin), old.find(end)) {
        (Some(b), Some(e)) if e > b => format!(
            "{}{}{}",
            &old[..b],
            section.trim_end(),
            &old[e + end.len()..]
        ),
        _ => format!("{}\n{section}", old.trim_end()),
    };
    std::fs::write(path, new).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// A horizontal bar chart of median ratios (ours over each other client), log scale,
/// with the 1.0 line marked.
fn chart(samples: &Samples) -> String {
    let mut rows = Vec::new();
    for (workload, _) in WORKLOADS {
        for transport in ["tcp", "unix"] {
            let Some(ours) = stat(samples, workload, transport, "ours") else {
                continue;
            };
            for (other, label) in [
                ("redis-rs", "redis crate"),
                ("redis-benchmark", "redis-benchmark"),
            ] {
                if let Some(o) = stat(samples, workload, transport, other) {
                    rows.push((
                        format!("{workload} {transport} vs {label}"),
                        ours.median / o.median,
                    ));
                }
            }
        }
    }
    let (left, width, bar_h) = (300.0, 400.0, 18.0);
    let height = 40.0 + rows.len() as f64 * (bar_h + 6.0);
    // Log scale from 1/4x to 4x: equal distances for "twice as fast" and "half as fast".
    let x = |r: f64| left + width * ((r.clamp(0.25, 4.0).log2() + 2.0) / 4.0);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n",
        left + width + 60.0
    );
    let _ = writeln!(svg, "<text x=\"10\" y=\"14\">median throughput ratio, ours / other (log scale; right of the line: we lead)</text>");
    for (i, (label, ratio)) in rows.iter().enumerate() {
        let y = 30.0 + i as f64 * (bar_h + 6.0);
        let (x0, x1) = (x(1.0).min(x(*ratio)), x(1.0).max(x(*ratio)));
        let color = if *ratio >= 1.0 { "#2e7d32" } else { "#c62828" };
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{label}</text>",
            left - 6.0,
            y + 13.0
        );
        let _ = writeln!(
            svg,
            "<rect x=\"{x0:.1}\" y=\"{y}\" width=\"{:.1}\" height=\"{bar_h}\" fill=\"{color}\"/>",
            (x1 - x0).max(1.0)
        );
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\">{ratio:.2}x</text>",
            x1 + 4.0,
            y + 13.0
        );
    }
    let _ = writeln!(
        svg,
        "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"20\" y2=\"{height}\" stroke=\"black\"/>",
        x(1.0)
    );
    svg += "</svg>\n";
    svg
}

/// Runs a benchmark binary and returns what it printed; an error, with what it said on
/// stderr, if it could not run or failed.
pub fn output_of(cmd: &mut std::process::Command, name: &str) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run the {name} benchmark: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{name} benchmark failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn section_is_replaced_in_place() {
        let dir = std::env::temp_dir().join(format!("xtask-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("b.md");
        std::fs::write(
            &path,
            format!("# B\n\ncodec\n\n{BEGIN}\nold\n{END}\n\ntail\n"),
        )
        .unwrap();
        write_section(&path, &format!("{BEGIN}\nnew\n{END}\n")).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            format!("# B\n\ncodec\n\n{BEGIN}\nnew\n{END}\n\ntail\n")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn chart_marks_leads_and_trails() {
        let mut s = Samples::new();
        s.insert(
            ("set_get".into(), "tcp".into(), "ours".into()),
            vec![(200.0, 0)],
        );
        s.insert(
            ("set_get".into(), "tcp".into(), "redis-rs".into()),
            vec![(100.0, 0)],
        );
        s.insert(
            ("set_get".into(), "tcp".into(), "redis-benchmark".into()),
            vec![(400.0, 0)],
        );
        let svg = chart(&s);
        assert!(svg.contains("2.00x") && svg.contains("#2e7d32"));
        assert!(svg.contains("0.50x") && svg.contains("#c62828"));
    }
}
