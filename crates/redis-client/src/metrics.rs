//! Measurements of the client's work through a hook of your choice: implement [`Metrics`]
//! (every method has an empty default) or, with the `metrics` feature, use
//! `MetricsCrate`, which records through the `metrics` crate; install it with
//! [`ConnectionInfo::with_metrics`](crate::ConnectionInfo::with_metrics). Every client,
//! pool, connection and pub/sub built from those settings, blocking or async, reports to
//! it: command latency by command name, errors by kind, bytes in and out, pool size, idle
//! connections, waiters and wait time, reconnects, retries and redirections.
//!
//! docs/observability.md lists the names and units the adapter records.
//!
//! ```no_run
//! use redis_client::metrics::{Metrics, Outcome};
//! use redis_client::{prelude::*, ConnectionInfo, Redis};
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! #[derive(Default)]
//! struct Slow(AtomicU64);
//! impl Metrics for Slow {
//!     fn command(&self, _name: &str, latency: Duration, _outcome: Outcome) {
//!         if latency > Duration::from_millis(10) {
//!             self.0.fetch_add(1, Ordering::Relaxed);
//!         }
//!     }
//! }
//!
//! let slow = Arc::new(Slow::default());
//! let info: ConnectionInfo = "redis://localhost:6379/0".parse()?;
//! let r = Redis::from_info(info.with_metrics(slow.clone()));
//! r.set("greeting", "hello")?;
//! println!("slow calls: {}", slow.0.load(Ordering::Relaxed));
//! # Ok::<(), redis_client::Error>(())
//! ```

pub use redis_conn::observe::{redirection, Metrics, Observe, Outcome};

#[cfg(feature = "metrics")]
pub use crate::metrics_crate::MetricsCrate;
