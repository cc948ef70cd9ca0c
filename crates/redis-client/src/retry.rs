//! When a failed command is tried again, and how long to wait first.

use crate::Error;
use redis_commands::Flags;
use resp_proto::ErrorCode;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How far a request got before it failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// No connection yet (connect or checkout failed): nothing was sent.
    Checkout,
    /// Writing failed: the server did not receive the whole request.
    Send,
    /// The request was sent; reading the reply failed.
    Read,
}

/// The retry policy of a client.
///
/// | failure | what the server may have done | retried by default | with `retry_writes` |
/// | --- | --- | --- | --- |
/// | connect refused, unreachable, connect timeout | nothing | yes | yes |
/// | no pool connection within the checkout timeout | nothing | no (the wait was the point) | no |
/// | writing the request failed | nothing (the request did not get through whole) | yes | yes |
/// | the connection broke or timed out after the request was sent | maybe ran it | read-only commands only | yes |
/// | a protocol error (bad reply) | ran it | no | no |
/// | the server answered with an error (`WRONGTYPE` …) | answered | no | no |
/// | `LOADING` (server loading its dataset) | nothing: it refuses commands until loaded | yes | yes |
///
/// Read-only means the command's definition carries [`Flags::READONLY`] (from the
/// server's own command table). A command sent with `execute_command` is not known to be
/// read-only, so only the first two rows retry it. Pipelines retry only failures before
/// anything was sent.
///
/// Waits grow exponentially from `base_backoff`, capped at `max_backoff`, with full jitter
/// (a uniformly random wait up to the current bound), so clients that failed together do
/// not retry together.
///
/// ```
/// use redis_client::RetryPolicy;
/// use std::time::Duration;
/// let policy = RetryPolicy::default().with_max_retries(5).with_backoff(Duration::from_millis(5), Duration::from_millis(500));
/// assert!(!policy.retry_writes);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts after the first. Default 3; 0 turns retrying off.
    pub max_retries: u32,
    /// Bound of the first wait. Default 10 ms.
    pub base_backoff: Duration,
    /// Largest wait. Default 1 s.
    pub max_backoff: Duration,
    /// Also resend commands that may have run (writes after a lost connection). Off by
    /// default: a write is never executed twice unless you say it is safe (idempotent).
    pub retry_writes: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            base_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_secs(1),
            retry_writes: false,
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// Sets the number of retries.
    pub fn with_max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// Sets the first and the largest wait.
    pub fn with_backoff(mut self, base: Duration, max: Duration) -> Self {
        self.base_backoff = base;
        self.max_backoff = max.max(base);
        self
    }

    /// Allows resending commands that may already have run.
    pub fn with_retry_writes(mut self, retry: bool) -> Self {
        self.retry_writes = retry;
        self
    }

    /// Whether a command with `flags` that failed with `err` at `stage` may be sent again.
    pub(crate) fn allows(&self, err: &Error, stage: Stage, flags: Flags) -> bool {
        let safe_to_repeat = self.retry_writes || flags.contains(Flags::READONLY);
        match err {
            Error::Connect { .. } => true,
            // The server refuses every command until its dataset is loaded.
            Error::Server(e) if e.code() == ErrorCode::LOADING => true,
            Error::ConnectionLost(_) | Error::ConnectionBroken | Error::Timeout => match stage {
                Stage::Checkout | Stage::Send => true,
                Stage::Read => safe_to_repeat,
            },
            _ => false,
        }
    }

    /// The wait before retry number `attempt` (0 for the first retry).
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let bound = self
            .base_backoff
            .saturating_mul(1u32 << attempt.min(20))
            .min(self.max_backoff);
        let nanos = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(random() % (nanos + 1))
    }
}

/// A random number for jitter; not for anything secret.
fn random() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use resp_proto::ServerError;

    fn lost() -> Error {
        Error::ConnectionLost(std::io::Error::other("reset"))
    }

    #[test]
    fn only_what_cannot_have_run_is_retried_by_default() {
        let p = RetryPolicy::default();
        let connect = Error::Connect {
            addr: "x".into(),
            source: std::io::Error::other("refused"),
        };
        assert!(p.allows(&connect, Stage::Checkout, Flags::NONE));
        assert!(p.allows(&lost(), Stage::Send, Flags::NONE));
        assert!(
            !p.allows(&lost(), Stage::Read, Flags::NONE),
            "a write may have run"
        );
        assert!(p.allows(&lost(), Stage::Read, Flags::READONLY));
        assert!(!p.allows(&Error::Timeout, Stage::Read, Flags::NONE));
        assert!(!p.allows(
            &Error::Server(ServerError::new("WRONGTYPE x").into()),
            Stage::Read,
            Flags::READONLY
        ));
        assert!(!p.allows(
            &Error::PoolExhausted(Duration::ZERO),
            Stage::Checkout,
            Flags::READONLY
        ));
        let loading = Error::Server(
            ServerError::new("LOADING Redis is loading the dataset in memory").into(),
        );
        assert!(p.allows(&loading, Stage::Read, Flags::READONLY));
        assert!(
            p.allows(&loading, Stage::Read, Flags::NONE),
            "LOADING runs nothing"
        );
    }

    #[test]
    fn writes_retried_only_when_asked() {
        let p = RetryPolicy::default().with_retry_writes(true);
        assert!(p.allows(&lost(), Stage::Read, Flags::NONE));
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let p = RetryPolicy::default()
            .with_backoff(Duration::from_millis(10), Duration::from_millis(50));
        for attempt in 0..30 {
            let d = p.backoff(attempt);
            let bound = Duration::from_millis(10 * (1u64 << attempt.min(20)))
                .min(Duration::from_millis(50));
            assert!(d <= bound, "attempt {attempt}: {d:?} > {bound:?}");
        }
        let distinct: std::collections::HashSet<_> = (0..100).map(|_| p.backoff(3)).collect();
        assert!(distinct.len() > 50, "waits are spread out");
    }
}
