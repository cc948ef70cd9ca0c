//! The observability part of `cargo xtask bench`: the observe bench built without and
//! with the `tracing` feature, the two binaries run alternately on the bench server, wall
//! clock medians and (where valgrind is installed) callgrind instruction counts, written
//! to their own section of docs/benchmarks.md.

use crate::bench::median;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

const BEGIN: &str = "<!-- observe-bench:begin (written by cargo xtask bench) -->";
const END: &str = "<!-- observe-bench:end -->";

/// The modes in report order: (binary built with tracing, mode, description).
const MODES: [(bool, &str, &str); 4] = [
    (false, "off", "feature `tracing` off"),
    (true, "none", "feature on, no subscriber"),
    (
        true,
        "count",
        "feature on, a subscriber that counts spans and events",
    ),
    (
        true,
        "fmt",
        "feature on, tracing-subscriber's fmt layer writing each span to a sink",
    ),
];

/// `cargo xtask bench --observe-only`: this part alone, on a server of its own.
pub fn run_alone(quick: bool) -> Result<(), String> {
    let server = redis_tests::ServerConfig::default().start();
    run(server.port(), quick)
}

/// Builds both binaries, measures, and writes the section; `port` is the bench server's.
pub fn run(port: u16, quick: bool) -> Result<(), String> {
    let off = build(false)?;
    let on = build(true)?;
    let bin = |traced: bool| if traced { &on } else { &off };
    let reps = if quick { 1 } else { 5 };
    let ops = if quick { 2_000 } else { 20_000 };
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); MODES.len()];
    for rep in 1..=reps {
        println!("==> observability overhead, repetition {rep}/{reps}");
        // Every mode once per repetition, so drift on a shared machine hits all alike.
        for (i, (traced, mode, _)) in MODES.iter().enumerate() {
            let out = Command::new(bin(*traced))
                .args(["--tcp", &port.to_string(), "--mode", mode])
                .args(["--ops", &ops.to_string()])
                .output()
                .map_err(|e| format!("cannot run the observe bench: {e}"))?;
            let stdout = String::from_utf8_lossy(&out.stdout);
            let rate = stdout
                .lines()
                .find_map(|l| match l.split('\t').collect::<Vec<_>>()[..] {
                    ["RESULT", "observe", _, rate, _] => rate.parse::<f64>().ok(),
                    _ => None,
                })
                .ok_or_else(|| format!("observe bench ({mode}) printed no result: {stdout}"))?;
            println!("  {mode:<6} {rate:>10.0} ops/s");
            rates[i].push(rate);
        }
    }
    let instructions = if valgrind_present() {
        let mut per_pair = Vec::new();
        for (traced, mode, _) in MODES {
            per_pair.push(instructions_per_pair(bin(traced), port, mode)?);
        }
        Some(per_pair)
    } else {
        println!("note: valgrind is missing (Debian package valgrind); no instruction counts");
        None
    };
    let section = report(&rates, instructions.as_deref(), quick, reps, ops);
    let root = crate::workspace_root();
    write_section(&root.join("docs/benchmarks.md"), &section)?;
    println!("wrote the observability section of docs/benchmarks.md");
    Ok(())
}

/// Builds the observe bench (with the `tracing` feature when `traced`) and returns the
/// path of its binary, from cargo's JSON messages.
fn build(traced: bool) -> Result<String, String> {
    let mut cmd = crate::cargo();
    cmd.args([
        "bench",
        "--package",
        "redis-benches",
        "--bench",
        "observe",
        "--no-run",
        "--message-format=json",
    ]);
    if traced {
        cmd.args(["--features", "tracing"]);
    }
    println!(
        "==> build the observe bench (tracing {})",
        if traced { "on" } else { "off" }
    );
    let out = cmd
        .output()
        .map_err(|e| format!("cannot build the observe bench: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "the observe bench did not build:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("\"name\":\"observe\""))
        .find_map(|l| json_string(l, "executable"))
        .ok_or_else(|| "cargo named no observe bench binary".to_owned())
}

/// The string value of `"key":"…"` in one line of JSON (paths here hold no escapes but
/// backslashes, which are unescaped).
fn json_string(line: &str, key: &str) -> Option<String> {
    let start = line.find(&format!("\"{key}\":\""))? + key.len() + 4;
    let end = start + line[start..].find('"')?;
    Some(line[start..end].replace("\\\\", "\\"))
}

fn valgrind_present() -> bool {
    Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Instructions per SET+GET pair: two callgrind runs of different lengths, differenced,
/// so start-up and connecting cancel out.
fn instructions_per_pair(bin: &str, port: u16, mode: &str) -> Result<f64, String> {
    let (short, long) = (500u64, 1_500u64);
    let mut totals = Vec::new();
    for ops in [short, long] {
        let file = std::env::temp_dir().join(format!("redis-client-obs-{mode}-{ops}.callgrind"));
        let out = Command::new("valgrind")
            .arg("--tool=callgrind")
            .arg(format!("--callgrind-out-file={}", file.display()))
            .arg(bin)
            .args(["--tcp", &port.to_string(), "--mode", mode])
            .args(["--ops", &ops.to_string()])
            .output()
            .map_err(|e| format!("cannot run valgrind: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "callgrind run failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let text = std::fs::read_to_string(&file).map_err(|e| e.to_string())?;
        std::fs::remove_file(&file).ok();
        let total = text
            .lines()
            .find_map(|l| {
                l.strip_prefix("summary: ")
                    .or_else(|| l.strip_prefix("totals: "))
            })
            .and_then(|n| n.split_whitespace().next()?.parse::<f64>().ok())
            .ok_or("no instruction total in the callgrind output")?;
        totals.push(total);
    }
    let per_pair = (totals[1] - totals[0]) / (long - short) as f64;
    println!("  {mode:<6} {per_pair:>10.0} instructions per SET+GET");
    Ok(per_pair)
}

fn report(
    rates: &[Vec<f64>],
    instructions: Option<&[f64]>,
    quick: bool,
    reps: usize,
    ops: usize,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{BEGIN}");
    let _ = writeln!(s, "## Observability: what tracing costs\n");
    let _ = writeln!(
        s,
        "One-at-a-time SET then GET of {ops} distinct keys (16-byte values) over TCP, the \
         observe bench built twice (`tracing` feature off and on) and the binaries run \
         alternately, {reps} repetition(s){}: median commands per second and the ratio to the \
         build without the feature. Instructions per SET+GET pair come from callgrind (two \
         runs of 500 and 1,500 pairs, differenced, so start-up cancels out): user-space \
         instructions do not vary with the machine's load, so they show a difference the \
         wall clock on a shared machine cannot.\n",
        if quick { " (quick run)" } else { "" }
    );
    let _ = writeln!(
        s,
        "| build | commands/s (median) | ratio | instructions per SET+GET | ratio |"
    );
    let _ = writeln!(s, "| --- | ---: | ---: | ---: | ---: |");
    let base = median(&rates[0]);
    for (i, (_, _, what)) in MODES.iter().enumerate() {
        let m = median(&rates[i]);
        let (ins, ins_ratio) = match instructions {
            Some(ins) => (format!("{:.0}", ins[i]), format!("{:.3}", ins[i] / ins[0])),
            None => ("n/a".to_owned(), "n/a".to_owned()),
        };
        let _ = writeln!(
            s,
            "| {what} | {m:.0} | {:.3} | {ins} | {ins_ratio} |",
            m / base
        );
    }
    let _ = writeln!(
        s,
        "\nWith the feature on and no subscriber, each call costs a callsite check and a few \
         branches (no field is formatted, no clock is read); a subscriber pays for the spans \
         it is given. A round trip to the server costs far more than either, so on a machine \
         shared with other work the wall-clock medians can differ by more than the overhead, \
         in either direction; the instruction counts are the measure of it.\n\n{END}"
    );
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
    fn the_executable_is_read_from_cargo_json() {
        let line = r#"{"reason":"compiler-artifact","target":{"name":"observe"},"executable":"/t/release/deps/observe-1a2b"}"#;
        assert_eq!(
            json_string(line, "executable").as_deref(),
            Some("/t/release/deps/observe-1a2b")
        );
        assert_eq!(json_string(r#"{"executable":null}"#, "executable"), None);
    }

    #[test]
    fn the_report_gives_ratios_to_the_build_without_the_feature() {
        let rates = vec![
            vec![100.0, 120.0, 110.0],
            vec![99.0],
            vec![50.0],
            vec![25.0],
        ];
        let r = report(
            &rates,
            Some(&[1000.0, 1010.0, 1500.0, 3000.0]),
            false,
            3,
            10,
        );
        assert!(
            r.contains("| feature `tracing` off | 110 | 1.000 | 1000 | 1.000 |"),
            "{r}"
        );
        assert!(
            r.contains("| feature on, no subscriber | 99 | 0.900 | 1010 | 1.010 |"),
            "{r}"
        );
        assert!(r.starts_with(BEGIN) && r.trim_end().ends_with(END));
    }
}
