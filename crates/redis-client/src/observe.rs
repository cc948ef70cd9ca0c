//! One span and one measurement per command, pipeline and transaction: the place every
//! call of the blocking and the async client passes once (docs/observability.md).
//!
//! Without the `tracing` feature there is no span at all; with it but no subscriber
//! interested, creating the span is a callsite check and nothing is formatted. Metrics
//! cost one clock read per call, and only when a [`Metrics`] sink is installed.

use crate::Error;
use redis_commands::Cmd;
use redis_conn::observe::{Metrics, Outcome};
use redis_conn::ConnectionInfo;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

/// A call being observed: its span (feature `tracing`) and, with a metrics sink, its
/// start time. Finish it with [`Op::finish`].
pub(crate) struct Op {
    metrics: Option<(Arc<dyn Metrics>, Instant)>,
    /// `db.operation.name`, computed only when something records it.
    name: Cow<'static, str>,
    #[cfg(feature = "tracing")]
    span: tracing::Span,
}

/// Which kind of batch a pipeline is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Batch {
    /// Commands sent together, each on its own.
    Pipeline,
    /// MULTI … EXEC.
    Transaction,
}

impl Op {
    /// The observation of one command `cmd`.
    pub(crate) fn command(info: &ConnectionInfo, cmd: &Cmd) -> Op {
        Self::start(info, Kind::Command(cmd))
    }

    /// The observation of a pub/sub command (`SUBSCRIBE` …) on `names`.
    pub(crate) fn pubsub(info: &ConnectionInfo, command: &'static str) -> Op {
        Self::start(info, Kind::Named(command))
    }

    /// The observation of a pipeline or transaction of `cmds`.
    pub(crate) fn batch<'c, I>(info: &ConnectionInfo, batch: Batch, cmds: I) -> Op
    where
        I: IntoIterator<Item = &'c Cmd>,
        I::IntoIter: Clone,
    {
        let cmds = cmds.into_iter();
        let name = match batch {
            Batch::Pipeline => "PIPELINE",
            Batch::Transaction => "MULTI",
        };
        #[cfg(feature = "tracing")]
        {
            let op = Self::start(info, Kind::Batch(name, cmds.clone().count()));
            if let Some(max) = info.observe.query_text() {
                if !op.span.is_disabled() {
                    let text: Vec<String> = cmds
                        .map(|c| redis_conn::observe::query_text(c.args(), max))
                        .collect();
                    op.span.record("db.query.text", text.join("; "));
                }
            }
            op
        }
        #[cfg(not(feature = "tracing"))]
        {
            let _ = cmds;
            Self::start(info, Kind::Named(name))
        }
    }

    fn start(info: &ConnectionInfo, kind: Kind<'_>) -> Op {
        let metrics = info
            .observe
            .metrics_arc()
            .map(|m| (Arc::clone(m), Instant::now()));
        #[cfg(feature = "tracing")]
        {
            let span = new_span(info, &kind);
            let name = if metrics.is_some() || !span.is_disabled() {
                kind.name()
            } else {
                Cow::Borrowed("")
            };
            if !span.is_disabled() {
                span.record("otel.name", &*name);
                span.record("db.operation.name", &*name);
                if let (Kind::Command(cmd), Some(max)) = (&kind, info.observe.query_text()) {
                    span.record(
                        "db.query.text",
                        redis_conn::observe::query_text(cmd.args(), max),
                    );
                }
            }
            Op {
                metrics,
                name,
                span,
            }
        }
        #[cfg(not(feature = "tracing"))]
        {
            let name = if metrics.is_some() {
                kind.name()
            } else {
                Cow::Borrowed("")
            };
            Op { metrics, name }
        }
    }

    /// Runs `f` inside the span (so retries and reconnects are its events).
    pub(crate) fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        #[cfg(feature = "tracing")]
        let _entered = self.span.enter();
        f()
    }

    /// `fut` polled inside the span. Not an `async fn`: that would keep `fut` in its state
    /// twice (as the argument and as the future awaited), doubling every request's size.
    #[cfg(feature = "tokio")]
    pub(crate) fn run_async<F: std::future::Future>(
        &self,
        fut: F,
    ) -> impl std::future::Future<Output = F::Output> {
        #[cfg(feature = "tracing")]
        {
            use tracing::Instrument;
            fut.instrument(self.span.clone())
        }
        #[cfg(not(feature = "tracing"))]
        fut
    }

    /// Records how the call ended: on the span (`error.type`, `db.response.status_code`,
    /// `otel.status_code`) and to the metrics sink (latency, errors by kind).
    pub(crate) fn finish<T>(self, result: &Result<T, Error>) {
        self.finish_with(result.as_ref().err());
    }

    /// As [`Op::finish`], from the error the call ended with, if any.
    pub(crate) fn finish_with(self, error: Option<&Error>) {
        let result = error.map_or(Ok(()), Err);
        let outcome = if result.is_ok() {
            Outcome::Ok
        } else {
            Outcome::Error
        };
        #[cfg(feature = "tracing")]
        if let Err(e) = result {
            if !self.span.is_disabled() {
                self.span.record("otel.status_code", "ERROR");
                self.span.record("error.type", &*error_type(e));
                if let Some(code) = e.code() {
                    self.span
                        .record("db.response.status_code", code.to_string());
                }
            }
        }
        if let Some((m, start)) = &self.metrics {
            if let Err(e) = result {
                m.error(&error_type(e));
            }
            m.command(&self.name, start.elapsed(), outcome);
        }
    }
}

/// What is observed.
enum Kind<'a> {
    Command(&'a Cmd),
    Named(&'static str),
    #[cfg(feature = "tracing")]
    Batch(&'static str, usize),
}

impl Kind<'_> {
    fn name(&self) -> Cow<'static, str> {
        match self {
            Kind::Command(cmd) if !cmd.name().is_empty() => Cow::Borrowed(cmd.name()),
            Kind::Command(cmd) => Cow::Owned(cmd.first_word()),
            Kind::Named(name) => Cow::Borrowed(name),
            #[cfg(feature = "tracing")]
            Kind::Batch(name, _) => Cow::Borrowed(name),
        }
    }
}

/// The span of one call. Field values are computed by the macro only when a subscriber
/// wants the span.
#[cfg(feature = "tracing")]
fn new_span(info: &ConnectionInfo, kind: &Kind<'_>) -> tracing::Span {
    use redis_conn::observe::{server_address, server_port};
    use tracing::field::Empty;
    macro_rules! span {
        ($name:literal, $batch:expr) => {
            tracing::info_span!(
                target: "redis_client",
                $name,
                otel.name = Empty,
                otel.kind = "client",
                otel.status_code = Empty,
                db.system.name = "redis",
                db.system = "redis",
                db.operation.name = Empty,
                db.namespace = tracing::field::display(info.db),
                db.operation.batch.size = $batch,
                db.query.text = Empty,
                db.response.status_code = Empty,
                error.type = Empty,
                server.address = tracing::field::display(server_address(&info.addr)),
                server.port = server_port(&info.addr),
            )
        };
    }
    match kind {
        Kind::Command(_) | Kind::Named(_) => span!("redis.command", None::<u64>),
        Kind::Batch("MULTI", n) => span!("redis.transaction", Some(*n as u64)),
        Kind::Batch(_, n) => span!("redis.pipeline", Some(*n as u64)),
    }
}

/// The `error.type` of `e`: the server's error code for an error reply (`WRONGTYPE`),
/// otherwise the kind of failure in snake case (`timeout`, `connection` …).
pub(crate) fn error_type(e: &Error) -> Cow<'static, str> {
    use crate::ErrorKind as K;
    if let Some(code) = e.code() {
        return Cow::Owned(code.to_string());
    }
    Cow::Borrowed(match e.kind() {
        K::Connection => "connection",
        K::Timeout => "timeout",
        K::Protocol => "protocol",
        K::Server => "server",
        K::Auth => "auth",
        K::BusyLoading => "LOADING",
        K::Reply => "reply",
        K::PubSub => "pubsub",
        K::Watch => "watch",
        K::Lock => "lock",
        K::PoolExhausted => "pool_exhausted",
        K::Script => "script",
        K::Unsupported => "unsupported",
        K::InvalidArgument => "invalid_argument",
        K::Url => "url",
        K::CrossSlot => "cross_slot",
        K::Cluster => "cluster",
    })
}

/// Reports that attempt number `attempt` (2 for the first retry) follows the failure
/// `err`.
pub(crate) fn retry(info: &ConnectionInfo, attempt: u32, err: &Error) {
    redis_conn::observe::retry(info, attempt, &error_type(err), err);
}
