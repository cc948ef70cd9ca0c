//! Every call as a span: commands, a pipeline and a failed command printed by
//! `tracing-subscriber` as each span closes, with the OpenTelemetry database fields, and
//! counted by a metrics hook of our own.
//!
//! `REDIS_URL=redis://localhost:6379/0 cargo run --example tracing --features tracing`

use redis_client::metrics::{Metrics, Outcome};
use redis_client::prelude::*;
use redis_client::{ConnectionInfo, Redis};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tracing_subscriber::fmt::format::FmtSpan;

/// Counts calls, failures and bytes; a real service would feed its metrics system.
#[derive(Default)]
struct Counts {
    calls: AtomicU64,
    failed: AtomicU64,
    bytes_out: AtomicU64,
}

impl Metrics for Counts {
    fn command(&self, _name: &str, _latency: Duration, outcome: Outcome) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if outcome == Outcome::Error {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn bytes_out(&self, n: u64) {
        self.bytes_out.fetch_add(n, Ordering::Relaxed);
    }
}

fn main() -> Result<(), redis_client::Error> {
    // One line per span as it closes, with its fields and how long it took.
    tracing_subscriber::fmt()
        .with_span_events(FmtSpan::CLOSE)
        .with_target(false)
        .without_time()
        .with_writer(std::io::stdout)
        .init();

    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://localhost:6379/0".into());
    let counts = Arc::new(Counts::default());
    let info: ConnectionInfo = url.parse()?;
    // Record the command text too, each argument cut after 16 bytes (off by default:
    // keys and values may be secrets; passwords are always redacted).
    let r = Redis::from_info(info.with_query_text(Some(16)).with_metrics(counts.clone()));

    r.set("greeting", "hello")?;
    r.get("greeting")?;
    let mut pipe = r.pipeline();
    pipe.incr("visits").incr("visits");
    pipe.execute()?;
    // A failed command: its span says why (error.type = WRONGTYPE).
    let failed = r.lpush("greeting", "x").is_err();

    println!(
        "metrics: {} calls, {} failed (lpush failed: {failed})",
        counts.calls.load(Ordering::Relaxed),
        counts.failed.load(Ordering::Relaxed),
    );
    println!(
        "request bytes: {}",
        if counts.bytes_out.load(Ordering::Relaxed) > 0 {
            "counted"
        } else {
            "none"
        }
    );
    Ok(())
}
