//! What the end-to-end workloads share: their command line, key names and values.

/// The command line of a workload binary: `--tcp PORT`, `--unix PATH`, `--quick`,
/// `--only WORKLOAD`, `--client NAME`, `--round N` (which repetition this is, so a binary can rotate the
/// order its clients run in).
#[derive(Debug, Default)]
pub struct Args {
    /// Port of the server on 127.0.0.1.
    pub tcp: Option<u16>,
    /// Path of the server's Unix socket.
    pub unix: Option<String>,
    /// A tenth of the operations, for trying things out.
    pub quick: bool,
    /// Run this workload alone.
    pub only: Option<String>,
    /// Run this client alone (for profiling one).
    pub client: Option<String>,
    /// The repetition number given by the runner, 0 when none.
    pub round: usize,
}

impl Args {
    /// Reads the process's arguments; unknown ones (cargo bench passes `--bench`) are
    /// ignored.
    pub fn parse() -> Args {
        let mut args = Args::default();
        let mut it = std::env::args().skip(1);
        while let Some(a) = it.next() {
            match a.as_str() {
                "--tcp" => args.tcp = it.next().and_then(|p| p.parse().ok()),
                "--unix" => args.unix = it.next(),
                "--quick" => args.quick = true,
                "--only" => args.only = it.next(),
                "--client" => args.client = it.next(),
                "--round" => args.round = it.next().and_then(|r| r.parse().ok()).unwrap_or(0),
                _ => {}
            }
        }
        args
    }

    /// Whether `workload` is to run (every one unless `--only` names another).
    pub fn selected(&self, workload: &str) -> bool {
        self.only.as_deref().map_or(true, |o| o == workload)
    }
}

/// The key of operation `i`: fixed width, so every client sends requests of one size.
pub fn key(i: usize) -> String {
    format!("key:{i:012}")
}

/// The 16-byte value every SET workload writes (redis-benchmark's `-d 16`).
pub const VALUE16: &[u8; 16] = b"0123456789abcdef";

/// Prints one measurement in the form the runner (`cargo xtask bench`) reads: workload,
/// transport, client, ops/s, seconds, peak extra RSS in bytes.
pub fn report(workload: &str, transport: &str, client: &str, ops: f64, secs: f64, peak: usize) {
    println!(
        "RESULT\t{workload}\t{transport}\t{client}\t{:.1}\t{secs:.4}\t{peak}",
        ops / secs
    );
}
