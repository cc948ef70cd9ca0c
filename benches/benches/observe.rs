//! What observability costs: one-at-a-time SET then GET, built twice by `cargo xtask
//! bench` (without and with the client's `tracing` feature, this crate's `tracing`
//! feature), the two binaries run alternately against the same server.
//!
//! Modes: `off` (built without the feature), and with it: `none` (no subscriber), `count`
//! (a minimal subscriber that counts spans and events and formats nothing), `fmt`
//! (tracing-subscriber's fmt layer, every span written at close into a sink).
//!
//! Arguments: `--tcp PORT`, `--mode MODE`, `--ops N` (SET+GET pairs). Output: one
//! tab-separated line `RESULT observe MODE OPS_PER_SEC SECONDS`.

#![allow(missing_docs)]

use redis_client::prelude::*;
use redis_client::{ConnectionInfo, Redis};
use std::time::Instant;

fn main() {
    let mut port = 6379u16;
    let mut mode = String::from("off");
    let mut ops = 20_000usize;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--tcp" => port = it.next().and_then(|p| p.parse().ok()).unwrap_or(port),
            "--mode" => mode = it.next().unwrap_or(mode),
            "--ops" => ops = it.next().and_then(|n| n.parse().ok()).unwrap_or(ops),
            // cargo bench passes --bench; anything else is ignored likewise.
            _ => {}
        }
    }
    let r = Redis::from_info(ConnectionInfo::tcp("127.0.0.1", port));
    r.ping().expect("the bench server answers");
    let secs = with_mode(&mode, || run(&r, ops));
    let rate = (2 * ops) as f64 / secs;
    println!("RESULT\tobserve\t{mode}\t{rate:.0}\t{secs:.4}");
}

/// SET then GET of `ops` distinct keys, 16-byte values; the seconds it took.
fn run(r: &Redis, ops: usize) -> f64 {
    let value = [b'v'; 16];
    let keys: Vec<String> = (0..ops).map(|i| format!("obs:{i}")).collect();
    let start = Instant::now();
    for k in &keys {
        r.set(k.as_str(), &value[..]).unwrap();
        std::hint::black_box(r.get(k.as_str()).unwrap());
    }
    start.elapsed().as_secs_f64()
}

#[cfg(not(feature = "tracing"))]
fn with_mode(mode: &str, f: impl FnOnce() -> f64) -> f64 {
    assert_eq!(mode, "off", "built without the tracing feature");
    f()
}

#[cfg(feature = "tracing")]
fn with_mode(mode: &str, f: impl FnOnce() -> f64) -> f64 {
    use tracing_subscriber::fmt::format::FmtSpan;
    match mode {
        "none" => f(),
        "count" => tracing::subscriber::with_default(counting::Counting::default(), f),
        "fmt" => {
            let sub = tracing_subscriber::fmt()
                .with_span_events(FmtSpan::CLOSE)
                .with_writer(std::io::sink)
                .finish();
            tracing::subscriber::with_default(sub, f)
        }
        other => panic!("unknown mode {other}"),
    }
}

#[cfg(feature = "tracing")]
mod counting {
    //! The least a subscriber can do: take every span and event and count it.

    use std::sync::atomic::{AtomicU64, Ordering};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    #[derive(Default)]
    pub struct Counting {
        next: AtomicU64,
        events: AtomicU64,
    }

    impl Subscriber for Counting {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(self.next.fetch_add(1, Ordering::Relaxed) + 1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, _: &Event<'_>) {
            self.events.fetch_add(1, Ordering::Relaxed);
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }
}
