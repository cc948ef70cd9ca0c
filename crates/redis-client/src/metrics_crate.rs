//! The metrics hook recorded through the `metrics` crate (feature `metrics`).

use crate::metrics::{Metrics, Outcome};
use std::time::Duration;

/// Records this client's measurements through the `metrics` crate, into whatever
/// recorder the program installed (a Prometheus exporter, StatsD …). Names and units are
/// listed in docs/observability.md.
///
/// ```
/// use redis_client::metrics::MetricsCrate;
/// use redis_client::ConnectionInfo;
/// use std::sync::Arc;
/// let info: ConnectionInfo = "redis://127.0.0.1:6379/0".parse()?;
/// let info = info.with_metrics(Arc::new(MetricsCrate::new()));
/// # Ok::<(), redis_client::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct MetricsCrate {}

impl MetricsCrate {
    /// The adapter.
    pub fn new() -> Self {
        MetricsCrate {}
    }
}

impl Metrics for MetricsCrate {
    fn command(&self, name: &str, latency: Duration, outcome: Outcome) {
        metrics::histogram!(
            "redis_client_command_duration_seconds",
            "command" => name.to_owned(),
            "outcome" => outcome.as_str()
        )
        .record(latency.as_secs_f64());
    }

    fn error(&self, kind: &str) {
        metrics::counter!("redis_client_errors_total", "kind" => kind.to_owned()).increment(1);
    }

    fn bytes_out(&self, n: u64) {
        metrics::counter!("redis_client_bytes_sent_total").increment(n);
    }

    fn bytes_in(&self, n: u64) {
        metrics::counter!("redis_client_bytes_received_total").increment(n);
    }

    fn pool(&self, size: usize, idle: usize, waiters: usize) {
        metrics::gauge!("redis_client_pool_connections").set(size as f64);
        metrics::gauge!("redis_client_pool_idle_connections").set(idle as f64);
        metrics::gauge!("redis_client_pool_waiters").set(waiters as f64);
    }

    fn pool_wait(&self, wait: Duration) {
        metrics::histogram!("redis_client_pool_wait_seconds").record(wait.as_secs_f64());
    }

    fn reconnect(&self) {
        metrics::counter!("redis_client_reconnects_total").increment(1);
    }

    fn retry(&self) {
        metrics::counter!("redis_client_retries_total").increment(1);
    }

    fn redirection(&self, kind: &str) {
        metrics::counter!("redis_client_redirections_total", "kind" => kind.to_owned())
            .increment(1);
    }
}
