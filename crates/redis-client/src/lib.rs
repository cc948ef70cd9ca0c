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
//! write, as a MULTI … EXEC transaction by default; [`Pipeline::watch`] and
//! [`Redis::transaction`] add optimistic locking with WATCH. [`compat::LegacyRedis`] keeps
//! the argument orders of the reference client's backward-compatible class.
//!
//! The pieces, each usable alone: [`resp_proto`] (values and codec), [`redis_conn`]
//! (connections, URLs, pool), [`redis_commands`] (command definitions and reply types).
//!
//! # What this crate does not do
//! `SELECT` is not a client method: the database is part of the connection settings, so
//! a pooled connection never carries a choice made by someone else. Use a dedicated
//! [`Connection`] to switch databases.
//!
//! # Crate features
//! - `tls`: TLS connections (`rediss://` URLs, [`ConnectionInfo::tls`]) through rustls.
//! - `tokio`: [`aio`], the async client on tokio: every command as a future, a
//!   multiplexed connection shared by all tasks, pipelines, transactions, scripts and
//!   SCAN as a stream. Off by default, so the blocking client pulls in no runtime.
//! - `tokio-tls`: `tokio` and `tls` together, with TLS for the async client
//!   (tokio-rustls).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "tokio")]
pub mod aio;
mod client;
pub mod compat;
mod connection;
mod error;
mod lock;
mod pipeline;
mod pubsub;
mod retry;
mod scan;
mod script;
mod text;
mod transaction;
mod typed;

pub use bytes::Bytes;
pub use client::{Redis, StrictRedis};
pub use connection::Connection;
pub use error::{Error, ErrorKind, Result};
pub use lock::{LockBuilder, LockError, LockGuard};
pub use pipeline::Pipeline;
pub use pubsub::{Listen, Message, MessageKind, PubSub, PubSubThread, SubscribeArgs};
pub use redis_commands::ScanOptions;
pub use redis_commands::Typed;
pub use redis_commands::{Cmd, FromValue, FromValueError, IterArgs, SetOptions, ToArgs};
pub use redis_conn::{
    Addr, ConnectionInfo, ConnectionPool, Connector, PoolOptions, PooledConnection, Protocol,
    TlsOptions, Transport, UrlError,
};
pub use redis_conn::{DefaultConnector, PoolStats, ReplyTimeout};
pub use resp_proto::{ErrorCode, ServerError, Value};
pub use retry::RetryPolicy;
pub use script::{Script, ScriptCall};
pub use text::Text;
pub use transaction::Watched;
pub use typed::{Replies, TypedPipeline};

pub use scan::ScanIter;
pub use {redis_commands, redis_conn, resp_proto};

/// The `Stream` trait the async client's streams implement (SCAN), re-exported so a
/// caller can poll them without naming the crate.
#[cfg(feature = "tokio")]
pub use futures_core;

/// The command traits, also at the crate root so `use redis_client::*;` brings every
/// command method into scope as well.
pub use redis_commands::prelude::*;

/// Every command trait: `use redis_client::prelude::*;` makes all commands callable.
pub mod prelude {
    pub use redis_commands::prelude::*;
}
