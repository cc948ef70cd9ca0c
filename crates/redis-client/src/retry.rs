//! When a failed command is tried again, and how long to wait first.

use crate::Error;
use redis_commands::{Cmd, Flags};
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
/// | the connection broke after the request was sent | maybe ran it | read-only commands only | yes |
/// | no reply (or no progress writing, or no handshake) within its timeout | maybe ran it | no: the wait was the budget | no |
/// | a protocol error (bad reply) | ran it | no | no |
/// | the server answered with an error (`WRONGTYPE` …) | answered | no | no |
/// | `LOADING` (server loading its dataset) | nothing: it refuses commands until loaded | yes, except scripts | yes, except scripts |
/// | the server sent a reply nobody asked for (out of step) | maybe ran it | read-only commands only | yes |
///
/// Read-only means the command's definition carries [`Flags::READONLY`] (from the
/// server's own command table). A command sent with `execute_command` is not known to be
/// read-only, so only the rows that cannot have run retry it. Pipelines retry only
/// failures before anything was sent. An error reply to `EVAL`, `EVALSHA`, `FCALL` and
/// their `_RO` forms is never retried: a script can return any error text, `LOADING …`
/// included, after it has written.
///
/// # One budget per call
///
/// Every attempt, every backoff wait and every reconnect of one call share one deadline,
/// [`RetryPolicy::budget`]; no retry starts once its backoff would end past it, and each
/// attempt's connect, write and read waits are cut short at it. By default the budget is
/// one attempt's worth: the connect timeout plus the reply's wait (the read timeout, or a
/// blocking command's own timeout plus a margin), so retries fill only the time a single
/// slow attempt could have taken. The error of a call tried more than once says in its
/// message how many attempts were made (its variant is the last attempt's).
///
/// Waits grow exponentially from `base_backoff`, capped at `max_backoff`, with full jitter
/// (a uniformly random wait up to the current bound, unless `jitter` is off), so clients
/// that failed together do not retry together.
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
    /// Bound on a whole call, attempts, waits and reconnects together. `None` (the
    /// default): the connect timeout plus the reply's wait; with neither configured the
    /// call is not bounded.
    pub budget: Option<Duration>,
    /// Draw each wait at random up to its bound (`true`, the default), so that clients
    /// that failed together do not retry together; `false` waits exactly the bound, for
    /// a run that must repeat exactly (a simulation, a test).
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            base_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_secs(1),
            retry_writes: false,
            budget: None,
            jitter: true,
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

    /// Sets the bound on a whole call (see the type's docs).
    pub fn with_budget(mut self, budget: Option<Duration>) -> Self {
        self.budget = budget;
        self
    }

    /// Turns the random part of each wait on (the default) or off (see
    /// [`RetryPolicy::jitter`]).
    pub fn with_jitter(mut self, jitter: bool) -> Self {
        self.jitter = jitter;
        self
    }

    /// Whether `cmd` (`None`: a checkout, before any command) that failed with `err` at
    /// `stage` may be sent again.
    pub(crate) fn allows(&self, err: &Error, stage: Stage, cmd: Option<&Cmd>) -> bool {
        let flags = cmd.map_or(Flags::NONE, Cmd::flags);
        let safe_to_repeat = self.retry_writes || flags.contains(Flags::READONLY);
        match err {
            Error::Connect { .. } => true,
            // The server refuses every command until its dataset is loaded; but a script's
            // error reply is the script's own text, whatever it says.
            Error::Server(e) if e.code() == ErrorCode::LOADING => !cmd.is_some_and(is_script),
            Error::OutOfStep(_) => stage == Stage::Read && safe_to_repeat,
            // A timeout spent the call's wait already; another attempt at a server that did
            // not answer in time would only multiply it.
            Error::Timeout => false,
            Error::ConnectionLost(_) | Error::ConnectionBroken => match stage {
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
        if nanos == 0 || !self.jitter {
            return bound;
        }
        Duration::from_nanos(random() % (nanos + 1))
    }
}

/// True for commands that run a script or function, whose error replies the script wrote.
fn is_script(cmd: &Cmd) -> bool {
    cmd.args().next().is_some_and(|name| {
        [
            "EVAL",
            "EVALSHA",
            "EVAL_RO",
            "EVALSHA_RO",
            "FCALL",
            "FCALL_RO",
        ]
        .iter()
        .any(|s| name.eq_ignore_ascii_case(s.as_bytes()))
    })
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

    fn write() -> Cmd {
        Cmd::new("SET")
    }

    fn read() -> Cmd {
        Cmd::new("GET").with_flags(Flags::READONLY)
    }

    #[test]
    fn a_script_error_saying_loading_is_not_retried() {
        let p = RetryPolicy::default().with_retry_writes(true);
        let loading = Error::Server(ServerError::new("LOADING from the script").into());
        for name in ["EVAL", "evalsha", "FCALL", "FCALL_RO"] {
            assert!(
                !p.allows(&loading, Stage::Read, Some(&Cmd::new(name))),
                "{name}"
            );
        }
        assert!(p.allows(&loading, Stage::Read, Some(&Cmd::new("GET"))));
    }

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
        assert!(p.allows(&connect, Stage::Checkout, None));
        assert!(p.allows(&lost(), Stage::Send, Some(&write())));
        assert!(
            !p.allows(&lost(), Stage::Read, Some(&write())),
            "a write may have run"
        );
        assert!(p.allows(&lost(), Stage::Read, Some(&read())));
        assert!(!p.allows(&Error::Timeout, Stage::Read, Some(&write())));
        assert!(!p.allows(
            &Error::Server(ServerError::new("WRONGTYPE x").into()),
            Stage::Read,
            Some(&read())
        ));
        assert!(!p.allows(
            &Error::PoolExhausted(Duration::ZERO),
            Stage::Checkout,
            Some(&read())
        ));
        let loading = Error::Server(
            ServerError::new("LOADING Redis is loading the dataset in memory").into(),
        );
        assert!(p.allows(&loading, Stage::Read, Some(&read())));
        assert!(
            p.allows(&loading, Stage::Read, Some(&write())),
            "LOADING runs nothing"
        );
    }

    #[test]
    fn writes_retried_only_when_asked() {
        let p = RetryPolicy::default().with_retry_writes(true);
        assert!(p.allows(&lost(), Stage::Read, Some(&write())));
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

    #[test]
    fn without_jitter_each_wait_is_its_bound() {
        let p = RetryPolicy::default()
            .with_backoff(Duration::from_millis(10), Duration::from_millis(50))
            .with_jitter(false);
        let waits: Vec<_> = (0..4).map(|a| p.backoff(a)).collect();
        let ms = |n| Duration::from_millis(n);
        assert_eq!(waits, [ms(10), ms(20), ms(40), ms(50)]);
    }
}
