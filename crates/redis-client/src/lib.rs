//! A Redis client for Rust: every command as a method returning its natural type, a
//! thread-safe connection pool, and the protocol underneath exposed for those who want it.
//!
//! ```no_run
//! use redis_client::prelude::*;
//! use redis_client::Redis;
//!
//! let r = Redis::open("redis://localhost:6379/0")?;
//! assert!(r.set("foo", "bar")?);
//! let value = r.get("foo")?; // Option<Bytes>
//! assert_eq!(value.as_deref(), Some(&b"bar"[..]));
//! # Ok::<(), redis_client::Error>(())
//! ```
//!
//! Replies are bytes by default: keys and values are binary safe and nothing is checked
//! or copied. [`Redis::text`] gives the same client in text mode (the reference's
//! `decode_responses=True`): every command method's byte strings become `String`s,
//! checked as UTF-8, and so do those of the pipelines, connections and WATCH-ed pipelines
//! it makes (see [`Text`]). [`reply_as`](Executor::reply_as) reads a reply as any type,
//! such as a counter as `i64`; [`Redis::typed_pipeline`] returns the replies of a fixed
//! sequence of commands as a typed tuple.
//!
//! ```no_run
//! use redis_client::prelude::*;
//! use redis_client::Redis;
//!
//! let r = Redis::open("redis://localhost:6379/0")?;
//! let t = r.text();
//! let value = t.get("foo")?; // Option<String>
//! r.incr("visits")?;
//! let visits = r.reply_as::<i64>().get("visits")?; // i64
//! let (stored, value, n) = t.typed_pipeline().set("a", 1).get("a").incr("n").execute()?;
//! // (bool, Option<String>, i64)
//! # Ok::<(), redis_client::Error>(())
//! ```
//!
//! Several commands at once: [`Redis::pipeline`] queues commands and sends them in one
//! write, as a MULTI … EXEC transaction by default ([`transaction(false)`](Pipeline::transaction)
//! only buffers); [`Pipeline::watch`] and [`Redis::transaction`] add optimistic locking
//! with WATCH. Times are [`Duration`](std::time::Duration)s everywhere (`setex`,
//! `expire`, `blpop` …), scores any number.
//!
//! The five clients (this one, [`aio::Redis`], [`cluster::ClusterClient`], its async
//! form, and the ones a [`Sentinel`] hands out) share their command methods, pipelines,
//! typed pipelines, transactions, text mode and scans, with the same names, defaults and
//! reply types; the async forms add `.await`. The repository's `docs/clients.md` shows
//! one program on each. [`compat::LegacyRedis`] keeps
//! the argument orders of redis-py 2.7.6's backward-compatible class.
//!
//! Beyond one server: [`cluster::ClusterClient`] for a Redis Cluster (the same command
//! methods, routed by slot, multi-key commands split per node, pipelines grouped per
//! node, `MOVED`, `ASK` and failovers followed); [`Sentinel`] for a primary with replicas
//! watched by sentinels (its [`primary`](Sentinel::primary) and
//! [`replicas`](Sentinel::replicas) are ordinary [`Redis`] clients that follow a
//! failover); [`Redis::with_cache`] for client-side caching kept true by the server's
//! invalidations.
//!
//! ```no_run
//! use redis_client::cluster::ClusterClient;
//! use redis_client::prelude::*;
//! use redis_client::Sentinel;
//!
//! let c = ClusterClient::open(&["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"])?;
//! let names = c.mget(["user:1", "user:2", "user:3"])?; // one request per node
//!
//! let sentinel = Sentinel::builder(["redis://10.0.0.1:26379"], "mymaster")?.build();
//! sentinel.primary().set("greeting", "hello")?;
//! # Ok::<(), redis_client::Error>(())
//! ```
//!
//! The pieces, each usable alone: [`resp_proto`] (values and codec),
//! [`redis_conn`] (connections, URLs, pool),
//! [`redis_commands`] (command definitions and reply types). Every
//! type a method here takes or returns is also named from this crate's root
//! (`redis_client::SetOptions`, `redis_client::DecoderKind`, `redis_client::cmd` …), so
//! depending on `redis-client` alone is enough.
//!
//! # What this crate does not do
//! `SELECT` is not a client method: the database is part of the connection settings, so
//! a pooled connection never carries a choice made by someone else. Use a dedicated
//! [`Connection`] to switch databases. Likewise a pooled client refuses, before sending,
//! the other command methods whose only effect is the state of one connection
//! (`client_setname`, `client_tracking`, `readonly`, `reset` …), naming what to use
//! instead: the pool would undo them. A name for every connection is
//! [`ConnectionInfo::with_client_name`] (or `?client_name=` in the URL).
//!
//! # Crate features
//! - `tls`: TLS connections (`rediss://` URLs, [`ConnectionInfo::tls`]) through rustls.
//! - `tokio`: [`aio`], the async client on tokio: every command as a future, a
//!   multiplexed connection shared by all tasks, pipelines, transactions, scripts and
//!   SCAN as a stream. Off by default, so the blocking client pulls in no runtime.
//! - `tokio-tls`: `tokio` and `tls` together, with TLS for the async client
//!   (tokio-rustls).
//! - `tracing`: a span per command, pipeline and transaction (OpenTelemetry database
//!   conventions) and events for retries, reconnects, redirections and pool waits,
//!   through the `tracing` crate; off by default, and without a subscriber it costs a
//!   check per call (docs/observability.md).
//! - `metrics`: [`metrics::MetricsCrate`], the [`metrics::Metrics`] hook recorded through
//!   the `metrics` crate.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "tokio")]
pub mod aio;
mod cache;
mod client;
pub mod cluster;
pub mod compat;
mod connection;
mod error;
mod lock;
pub mod metrics;
#[cfg(feature = "metrics")]
mod metrics_crate;
mod observe;
mod pipeline;
mod pubsub;
mod retry;
// The glob re-export of `redis_commands` below carries its `types::scan` module under this
// name; that module's items are re-exported one by one, and it stays reachable as
// `redis_client::types::scan`.
#[allow(hidden_glob_reexports)]
mod scan;
mod script;
mod sentinel;
mod sort;
mod text;
mod transaction;
mod typed;

pub use bytes::Bytes;
pub use cache::{Cache, CacheMode, CacheOptions, CacheStats};
pub use client::{Redis, StrictRedis};
pub use connection::Connection;
pub use error::{CommandError, Error, ErrorKind, Result};
pub use lock::{LockBuilder, LockError, LockGuard};
pub use pipeline::Pipeline;
pub use pubsub::{Listen, Message, MessageKind, PubSub, PubSubThread, SubscribeArgs};
pub use retry::RetryPolicy;
pub use scan::ScanIter;
pub use script::{Script, ScriptCall};
pub use sentinel::{Sentinel, SentinelBuilder, SentinelStats};
pub use text::Text;
pub use transaction::Watched;
pub use typed::{Queues, Replies, TypedPipeline};

// Every command trait, definition, option and reply type (`SetOptions`, `SortOptions`,
// `Ttl`, `Info` …), the argument and reply traits (`ToArgs`, `FromValue`), the builders in
// `cmd` and the `callbacks` table, so any type a command method takes or returns is named
// from this crate. A plain comment, not a doc comment: rustdoc would prepend a doc
// comment on a glob re-export to every item it brings in.
pub use redis_commands::*;

// The connection layer: what `ConnectionInfo`, `ConnectionPool` and a user's own transport
// need. Its error and its raw connection are renamed, since this crate's own `Error` and
// `Connection` are the ones a user of the facade works with. They are documented where
// they are defined (`no_inline`): rustdoc shows a type by its own name, so inlined here,
// the connection layer's `Error` would appear as a second `Error` beside this crate's.
#[doc(no_inline)]
pub use redis_conn::{
    Addr, ConnectionInfo, ConnectionPool, Connector, DefaultConnector, PoolOptions, PoolStats,
    PooledConnection, Protocol, ReplyTimeout, TlsOptions, Transport, UrlError,
};
#[doc(no_inline)]
pub use redis_conn::{Connection as RawConnection, Error as ConnError};

// The protocol layer: values, error codes and decoder settings, documented in
// `resp_proto`, which is usable alone and whose examples name it.
#[doc(no_inline)]
pub use resp_proto::{
    DecoderKind, ErrorCode, Limits, ProtocolError, ProtocolErrorKind, ServerError, Value,
};

pub use {redis_commands, redis_conn, resp_proto};

/// The `Stream` trait the async client's streams implement (SCAN, pub/sub), re-exported so a
/// caller can poll them without naming the crate.
#[cfg(feature = "tokio")]
pub use futures_core;

/// Every command trait: `use redis_client::prelude::*;` makes all commands callable.
pub mod prelude {
    pub use redis_commands::prelude::*;
}
