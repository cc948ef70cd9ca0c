//! `cargo xtask bench`'s Sentinel part: acknowledged writes lost across a forced failover,
//! this client against the `redis` crate (benches/benches/sentinel_failover.rs), written
//! to its own section of docs/benchmarks.md.

use std::fmt::Write as _;
use std::path::Path;

const BEGIN: &str = "<!-- sentinel-bench:begin (written by cargo xtask bench) -->";
const END: &str = "<!-- sentinel-bench:end -->";

/// One client's run: (client, acknowledged, lost, errors, seconds to the old primary's
/// demotion).
type Row = (String, u64, u64, u64, f64);

pub fn run() -> Result<(), String> {
    let mut bench = crate::cargo();
    bench.args([
        "bench",
        "--quiet",
        "--package",
        "redis-benches",
        "--bench",
        "sentinel_failover",
    ]);
    println!("\n==> sentinel failover: this client and the redis crate, one fresh set each");
    let out = bench.output().map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "the sentinel failover benchmark failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let rows = parse(&stdout);
    for r in &rows {
        println!(
            "  {:<14} acknowledged {:>7}  lost {:>7}  errors {:>6}",
            r.0, r.1, r.2, r.3
        );
    }
    let path = crate::workspace_root().join("docs/benchmarks.md");
    write_section(&path, &report(&rows))
}

fn parse(stdout: &str) -> Vec<Row> {
    stdout
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.strip_prefix("sentinel_failover,")?.split(',').collect();
            Some((
                f.first()?.to_string(),
                f.get(1)?.parse().ok()?,
                f.get(2)?.parse().ok()?,
                f.get(3)?.parse().ok()?,
                f.get(4)?.parse().ok()?,
            ))
        })
        .collect()
}

fn report(rows: &[Row]) -> String {
    let mut s = format!("{BEGIN}\n## Sentinel failover\n\n");
    s += "Command: `cargo xtask bench` (or `cargo bench -p redis-benches --bench sentinel_failover`).\n";
    s += "A fresh set per client (one primary, one replica, three sentinels, `down-after-milliseconds 1000`); four threads write distinct keys; `SENTINEL FAILOVER`; the writes go on until the sentinels have made the old primary a replica and it has resynchronised; then every acknowledged key is read back from the new primary.\n";
    s += "See [sentinel.md](sentinel.md) for where the loss comes from.\n\n";
    s += "| client | acknowledged | lost | lost % | errors | failover to demotion |\n| --- | --- | --- | --- | --- | --- |\n";
    for (client, acked, lost, errors, secs) in rows {
        let pct = if *acked == 0 {
            0.0
        } else {
            *lost as f64 * 100.0 / *acked as f64
        };
        let _ = writeln!(
            s,
            "| {client} | {acked} | {lost} | {pct:.1} % | {errors} | {secs:.1} s |"
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
    fn lines_become_rows_and_a_table() {
        let rows = parse("noise\nsentinel_failover,redis-rs,200,50,3,9.5\n");
        assert_eq!(rows, vec![("redis-rs".to_owned(), 200, 50, 3, 9.5)]);
        assert!(report(&rows).contains("| redis-rs | 200 | 50 | 25.0 % | 3 | 9.5 s |"));
    }
}
