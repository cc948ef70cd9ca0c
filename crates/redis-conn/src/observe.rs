//! Observability hooks shared by every driver: the [`Metrics`] trait a caller installs,
//! the settings that carry it ([`Observe`], part of [`ConnectionInfo`]), the events every
//! driver reports (retries, reconnects, redirections, pool waits) and the redaction of
//! command text.
//!
//! Events go through the `tracing` crate when the `tracing` feature is on (target
//! `redis_client`, names `redis.retry`, `redis.reconnect`, `redis.redirection`,
//! `redis.pool.wait`); metrics go to the installed [`Metrics`], if any. Neither ever
//! records a password, a key or a value: events carry the server's address, counts,
//! durations and error kinds only. docs/observability.md lists every name.

use crate::{Addr, ConnectionInfo};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The target of every span and event of this client, for filtering
/// (`RUST_LOG=redis_client=info`).
pub const TARGET: &str = "redis_client";

/// What a command or batch ended with, for [`Metrics::command`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// It succeeded.
    Ok,
    /// It failed: a server error reply, a connection failure, a timeout …
    Error,
}

impl Outcome {
    /// `"ok"` or `"error"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
        }
    }
}

/// A sink for the client's measurements, installed with
/// [`ConnectionInfo::with_metrics`]: no metrics backend is forced on anyone. Every method
/// has an empty default, so an implementation overrides only what it records.
///
/// Calls are made on the caller's thread (or task) while it runs a command, so an
/// implementation should be quick (an atomic add, a histogram record). The `metrics`
/// feature of `redis-client` provides an adapter for the `metrics` crate.
///
/// ```
/// use redis_conn::observe::{Metrics, Outcome};
/// use redis_conn::ConnectionInfo;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// #[derive(Default)]
/// struct Count(AtomicU64);
/// impl Metrics for Count {
///     fn command(&self, _name: &str, _latency: Duration, _outcome: Outcome) {
///         self.0.fetch_add(1, Ordering::Relaxed);
///     }
/// }
/// let info = ConnectionInfo::tcp("127.0.0.1", 6379).with_metrics(Arc::new(Count::default()));
/// assert!(info.observe.metrics().is_some());
/// ```
pub trait Metrics: Send + Sync + 'static {
    /// A command, pipeline (`name` `"PIPELINE"`) or transaction (`"MULTI"`) finished after
    /// `latency`, retries included. `name` is the upper-cased command name (with its
    /// subcommand for container commands, e.g. `"CONFIG GET"`), never an argument.
    fn command(&self, name: &str, latency: Duration, outcome: Outcome) {
        let _ = (name, latency, outcome);
    }

    /// A call failed; `kind` is the error's `error.type` (the server's error code such as
    /// `"WRONGTYPE"`, or a client kind such as `"timeout"`, `"connection"`).
    fn error(&self, kind: &str) {
        let _ = kind;
    }

    /// `n` bytes of requests were handed to the transport.
    fn bytes_out(&self, n: u64) {
        let _ = n;
    }

    /// `n` bytes were read from the transport.
    fn bytes_in(&self, n: u64) {
        let _ = n;
    }

    /// A pool's state after a checkout or a hand-back: connections open (`size`), idle,
    /// and callers waiting for one.
    fn pool(&self, size: usize, idle: usize, waiters: usize) {
        let _ = (size, idle, waiters);
    }

    /// A checkout had to wait for a connection to be free, for `wait`.
    fn pool_wait(&self, wait: Duration) {
        let _ = wait;
    }

    /// A connection was opened to replace one that was lost or closed as untrustworthy.
    fn reconnect(&self) {}

    /// A failed call is being tried again.
    fn retry(&self) {}

    /// A cluster node redirected a command (`kind` `"MOVED"` or `"ASK"`).
    fn redirection(&self, kind: &str) {
        let _ = kind;
    }
}

/// The observability settings of a connection: the [`Metrics`] sink, if any, and whether
/// spans record the command text. Part of [`ConnectionInfo`] (field `observe`), so every
/// connection, pool and client built from the same settings reports the same way.
///
/// Two settings compare equal when they hold the same sink (the same `Arc`) and the same
/// text option.
#[derive(Clone, Default)]
pub struct Observe {
    metrics: Option<Arc<dyn Metrics>>,
    query_text: Option<usize>,
}

impl Observe {
    /// The installed metrics sink.
    #[inline]
    pub fn metrics(&self) -> Option<&dyn Metrics> {
        self.metrics.as_deref()
    }

    /// The installed metrics sink, shared.
    pub fn metrics_arc(&self) -> Option<&Arc<dyn Metrics>> {
        self.metrics.as_ref()
    }

    /// Installs `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<dyn Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Records the command text in spans (`db.query.text`), each argument cut to at most
    /// `max_arg_len` bytes; `None` (the default) records no argument at all. Credentials
    /// (AUTH, HELLO … AUTH, MIGRATE … AUTH/AUTH2, ACL SETUSER rules, CONFIG SET and
    /// SENTINEL SET of a password or user setting) are replaced by `?` whatever the length.
    pub fn with_query_text(mut self, max_arg_len: Option<usize>) -> Self {
        self.query_text = max_arg_len;
        self
    }

    /// The longest argument recorded in the command text, if it is recorded.
    pub fn query_text(&self) -> Option<usize> {
        self.query_text
    }
}

impl fmt::Debug for Observe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Observe")
            .field("metrics", &self.metrics.is_some())
            .field("query_text", &self.query_text)
            .finish()
    }
}

impl PartialEq for Observe {
    fn eq(&self, other: &Self) -> bool {
        let same = match (&self.metrics, &other.metrics) {
            (Some(a), Some(b)) => std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b)),
            (a, b) => a.is_none() && b.is_none(),
        };
        same && self.query_text == other.query_text
    }
}

/// A metrics sink held by a core or pool (which derive `Debug`).
#[derive(Clone)]
pub(crate) struct Sink(Arc<dyn Metrics>);

impl Sink {
    pub(crate) fn of(observe: &Observe) -> Option<Sink> {
        observe.metrics.clone().map(Sink)
    }
}

impl std::ops::Deref for Sink {
    type Target = dyn Metrics;
    fn deref(&self) -> &(dyn Metrics + 'static) {
        &*self.0
    }
}

impl fmt::Debug for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sink")
    }
}

/// The server's address as spans record it (`server.address`): the host name or IP, or
/// the socket's path. Never the URL, so never its password.
pub fn server_address(addr: &Addr) -> impl fmt::Display + '_ {
    struct Show<'a>(&'a Addr);
    impl fmt::Display for Show<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self.0 {
                Addr::Tcp { host, .. } => f.write_str(host),
                Addr::Unix(path) => write!(f, "{}", path.display()),
            }
        }
    }
    Show(addr)
}

/// The server's port (`server.port`); `None` for a Unix socket.
pub fn server_port(addr: &Addr) -> Option<u16> {
    match addr {
        Addr::Tcp { port, .. } => Some(*port),
        Addr::Unix(_) => None,
    }
}

/// Reports that a failed call is tried again: attempt number `attempt` (2 for the first
/// retry) after a failure of kind `error_type` (see [`Metrics::error`]) described by
/// `reason`. Event `redis.retry`; [`Metrics::retry`].
pub fn retry(info: &ConnectionInfo, attempt: u32, error_type: &str, reason: &dyn fmt::Display) {
    if let Some(m) = info.observe.metrics() {
        m.retry();
    }
    #[cfg(feature = "tracing")]
    tracing::event!(
        name: "redis.retry",
        target: "redis_client",
        tracing::Level::INFO,
        server.address = %server_address(&info.addr),
        server.port = server_port(&info.addr),
        attempt,
        error.type = error_type,
        reason = %reason,
        "retrying a failed call"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = (attempt, error_type, reason);
}

/// Reports that a connection was opened to replace one that was lost; `what` says which
/// (`"pool"`, `"multiplexed"`, `"pubsub"`). Event `redis.reconnect`; [`Metrics::reconnect`].
pub fn reconnect(info: &ConnectionInfo, what: &'static str) {
    if let Some(m) = info.observe.metrics() {
        m.reconnect();
    }
    #[cfg(feature = "tracing")]
    tracing::event!(
        name: "redis.reconnect",
        target: "redis_client",
        tracing::Level::INFO,
        server.address = %server_address(&info.addr),
        server.port = server_port(&info.addr),
        connection = what,
        "reconnected"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = what;
}

/// Reports that a cluster node redirected a command: `kind` is `"MOVED"` or `"ASK"`,
/// `slot` the key's hash slot, `to` the node's `host:port` as the server sent it. `info`
/// describes the node that answered. Event `redis.redirection`; [`Metrics::redirection`].
///
/// A cluster client calls this once per redirection it follows.
pub fn redirection(info: &ConnectionInfo, kind: &str, slot: u16, to: &str) {
    if let Some(m) = info.observe.metrics() {
        m.redirection(kind);
    }
    #[cfg(feature = "tracing")]
    tracing::event!(
        name: "redis.redirection",
        target: "redis_client",
        tracing::Level::INFO,
        server.address = %server_address(&info.addr),
        server.port = server_port(&info.addr),
        kind,
        slot,
        to,
        "redirected"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = (kind, slot, to);
}

/// Reports that a checkout waited `wait` for a free connection (`ok`: and got one).
/// Event `redis.pool.wait`; [`Metrics::pool_wait`].
pub(crate) fn pool_wait(info: &ConnectionInfo, wait: Duration, ok: bool) {
    if let Some(m) = info.observe.metrics() {
        m.pool_wait(wait);
    }
    #[cfg(feature = "tracing")]
    tracing::event!(
        name: "redis.pool.wait",
        target: "redis_client",
        tracing::Level::DEBUG,
        server.address = %server_address(&info.addr),
        server.port = server_port(&info.addr),
        wait_us = u64::try_from(wait.as_micros()).unwrap_or(u64::MAX),
        ok,
        "waited for a pooled connection"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = ok;
}

/// What replaces a redacted argument in the command text.
const REDACTED: &str = "?";

/// The command text of the arguments `args` (name first) for `db.query.text`: each
/// argument as text (invalid UTF-8 replaced), cut after `max_arg_len` bytes with the
/// length noted (the command's name never), separated by spaces; credentials are always replaced by `?`
/// (see [`Observe::with_query_text`]).
///
/// ```
/// use redis_conn::observe::query_text;
/// let args: [&[u8]; 3] = [b"SET", b"greeting", b"a long value"];
/// assert_eq!(query_text(args, 6), "SET greeti…(8 bytes) a long…(12 bytes)");
/// let auth: [&[u8]; 3] = [b"auth", b"app", b"s3cret"];
/// assert_eq!(query_text(auth, 64), "auth ? ?");
/// ```
pub fn query_text<'a>(args: impl IntoIterator<Item = &'a [u8]>, max_arg_len: usize) -> String {
    let args: Vec<&[u8]> = args.into_iter().collect();
    let secret = secret_arguments(&args);
    let mut out = String::new();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if secret.get(i).copied().unwrap_or(false) {
            out.push_str(REDACTED);
            continue;
        }
        // The command's name is never cut: it says what ran.
        if i == 0 || arg.len() <= max_arg_len {
            out.push_str(&String::from_utf8_lossy(arg));
        } else {
            let mut cut = max_arg_len;
            // Cut on a character boundary when the argument is text.
            if let Ok(s) = std::str::from_utf8(arg) {
                while !s.is_char_boundary(cut) {
                    cut -= 1;
                }
            }
            out.push_str(&String::from_utf8_lossy(&arg[..cut]));
            out.push_str(&format!("…({} bytes)", arg.len()));
        }
    }
    out
}

/// Which of `args` (name first) are credentials, by the command's shape.
fn secret_arguments(args: &[&[u8]]) -> Vec<bool> {
    let mut secret = vec![false; args.len()];
    let word = |i: usize| {
        args.get(i)
            .map(|a| String::from_utf8_lossy(a).to_ascii_uppercase())
            .unwrap_or_default()
    };
    let all_after = |secret: &mut Vec<bool>, from: usize| {
        for s in secret.iter_mut().skip(from) {
            *s = true;
        }
    };
    // A setting named like these holds a credential.
    let sensitive = |name: &str| {
        ["PASS", "AUTH", "USER", "SECRET", "KEY"]
            .iter()
            .any(|s| name.contains(s))
    };
    match word(0).as_str() {
        "AUTH" => all_after(&mut secret, 1),
        "HELLO" | "MIGRATE" => {
            let mut i = 1;
            while i < args.len() {
                match word(i).as_str() {
                    // HELLO's AUTH takes a user and a password; MIGRATE's AUTH a password,
                    // AUTH2 a user and a password.
                    "AUTH" if word(0) == "HELLO" => {
                        for s in secret.iter_mut().skip(i + 1).take(2) {
                            *s = true;
                        }
                        i += 3;
                    }
                    "AUTH" => {
                        for s in secret.iter_mut().skip(i + 1).take(1) {
                            *s = true;
                        }
                        i += 2;
                    }
                    "AUTH2" => {
                        for s in secret.iter_mut().skip(i + 1).take(2) {
                            *s = true;
                        }
                        i += 3;
                    }
                    _ => i += 1,
                }
            }
        }
        // The rules after the user name hold passwords (`>pw`) and their hashes (`#…`).
        "ACL" if word(1) == "SETUSER" => all_after(&mut secret, 3),
        "CONFIG" if word(1) == "SET" => mark_settings(&mut secret, args.len(), 2, &word, sensitive),
        "SENTINEL" => match word(1).as_str() {
            "SET" => mark_settings(&mut secret, args.len(), 3, &word, sensitive),
            "CONFIG" if word(2) == "SET" => {
                mark_settings(&mut secret, args.len(), 3, &word, sensitive)
            }
            _ => {}
        },
        _ => {}
    }
    secret
}

/// Marks the value of each `name value` pair from `start` whose name is `sensitive`.
fn mark_settings(
    secret: &mut [bool],
    len: usize,
    start: usize,
    word: &dyn Fn(usize) -> String,
    sensitive: impl Fn(&str) -> bool,
) {
    let mut i = start;
    while i + 1 < len {
        if sensitive(&word(i)) {
            secret[i + 1] = true;
        }
        i += 2;
    }
    // A name without its value (a malformed request) is hidden too, in case it is one.
    if i < len && i > start {
        secret[i] = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(args: &[&str]) -> String {
        query_text(args.iter().map(|a| a.as_bytes()), 100)
    }

    #[test]
    fn credentials_are_always_redacted() {
        assert_eq!(text(&["AUTH", "pw"]), "AUTH ?");
        assert_eq!(text(&["auth", "user", "pw"]), "auth ? ?");
        assert_eq!(
            text(&["HELLO", "3", "AUTH", "user", "pw", "SETNAME", "app"]),
            "HELLO 3 AUTH ? ? SETNAME app"
        );
        assert_eq!(
            text(&["MIGRATE", "h", "1", "", "0", "5", "AUTH", "pw", "KEYS", "a"]),
            "MIGRATE h 1  0 5 AUTH ? KEYS a"
        );
        assert_eq!(
            text(&["MIGRATE", "h", "1", "k", "0", "5", "AUTH2", "u", "pw"]),
            "MIGRATE h 1 k 0 5 AUTH2 ? ?"
        );
        assert_eq!(
            text(&["ACL", "SETUSER", "alice", "on", ">pw", "~*"]),
            "ACL SETUSER alice ? ? ?"
        );
        assert_eq!(
            text(&["CONFIG", "SET", "maxmemory", "1mb", "requirepass", "pw"]),
            "CONFIG SET maxmemory 1mb requirepass ?"
        );
        assert_eq!(
            text(&["config", "set", "masterauth", "pw"]),
            "config set masterauth ?"
        );
        assert_eq!(
            text(&["SENTINEL", "SET", "m", "auth-pass", "pw", "quorum", "2"]),
            "SENTINEL SET m auth-pass ? quorum 2"
        );
        assert_eq!(
            text(&["SENTINEL", "CONFIG", "SET", "sentinel-pass", "pw"]),
            "SENTINEL CONFIG SET sentinel-pass ?"
        );
        assert_eq!(
            text(&["SENTINEL", "CONFIG", "SET", "sentinel-user", "bob"]),
            "SENTINEL CONFIG SET sentinel-user ?"
        );
        // Names holding `user`, `secret` or `key` as well as `pass` and `auth`.
        assert_eq!(
            text(&[
                "CONFIG",
                "SET",
                "masteruser",
                "bob",
                "tls-key-file-pass",
                "pw"
            ]),
            "CONFIG SET masteruser ? tls-key-file-pass ?"
        );
        assert_eq!(
            text(&["CONFIG", "SET", "tls-key-file", "k.pem", "some-secret", "s"]),
            "CONFIG SET tls-key-file ? some-secret ?"
        );
        // A trailing name without its value is hidden, in case the pairs are misaligned.
        assert_eq!(
            text(&["CONFIG", "SET", "maxmemory", "1mb", "pw"]),
            "CONFIG SET maxmemory 1mb ?"
        );
    }

    #[test]
    fn long_arguments_are_cut_on_a_character_boundary() {
        let args: [&[u8]; 2] = [b"SET", "ééé".as_bytes()];
        assert_eq!(query_text(args, 3), "SET é…(6 bytes)");
        let binary: [&[u8]; 2] = [b"SET", &[0xff, 0xfe, 0xfd]];
        assert_eq!(query_text(binary, 2), "SET \u{fffd}\u{fffd}…(3 bytes)");
        let name: [&[u8]; 1] = [b"CLUSTER"];
        assert_eq!(query_text(name, 2), "CLUSTER", "the name is never cut");
    }
}
