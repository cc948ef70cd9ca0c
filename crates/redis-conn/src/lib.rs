//! Connections to a Redis server: where it is ([`ConnectionInfo`], URLs), the byte stream
//! ([`Transport`], [`Connector`]), one connection ([`Connection`]) and a thread-safe pool
//! ([`ConnectionPool`]).
//!
//! ```no_run
//! use redis_conn::{ConnectionInfo, ConnectionPool};
//! let info: ConnectionInfo = "redis://127.0.0.1:6379/0".parse()?;
//! let pool = ConnectionPool::new(info);
//! let mut conn = pool.get()?;
//! let reply = conn.command(&["SET", "greeting", "hello"])?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The connection core
//! Whether a byte stream is in step and a connection safe to reuse is decided in one
//! sans-I/O state machine, [`Core`]: it never touches a socket or reads the clock (the
//! driver passes `now`), so it runs the same under the blocking [`Connection`] here and
//! under any other driver, and can be driven by hand:
//!
//! ```
//! use redis_conn::{ConnectionInfo, Core, Poll, ReplyTimeout, Verdict};
//! use std::time::Instant;
//!
//! let info = ConnectionInfo::tcp("127.0.0.1", 6379).with_db(3);
//! let now = Instant::now();
//! let mut core = Core::new(&info, now);
//! let _handshake = core.handshake(&info, None); // SELECT 3 and PING, for the driver to write
//! core.handle_bytes(b"+OK\r\n+PONG\r\n");
//! assert!(matches!(core.poll_reply(now)?, Poll::Idle));
//!
//! // A raw SELECT changes the connection's database: the core learns it from the reply.
//! core.queue(&[b"*2\r\n$6\r\nSELECT\r\n$1\r\n5\r\n"], 1, ReplyTimeout::Default, now)?;
//! core.handle_written();
//! core.handle_bytes(b"+OK\r\n");
//! assert!(matches!(core.poll_reply(now)?, Poll::Reply(_)));
//! assert_eq!(core.state().db, 5);
//! // So it must not go back to a pool as it is.
//! assert_eq!(core.verdict(), Verdict::Restore);
//! # Ok::<(), redis_conn::Error>(())
//! ```
//!
//! # What this crate does not do
//! It does not convert replies into Rust types, and knows Redis commands only as far as
//! they change a connection (the handshake's, and the first words of SELECT, MULTI,
//! WATCH, RESET, QUIT, CLIENT REPLY … that the core watches for): the commands themselves
//! are `redis-commands`.
//!
//! # Crate features
//! - `tls`: TLS connections (`rediss://`, [`ConnectionInfo::tls`]) through rustls with the
//!   ring provider. Off by default, so builds without TLS compile no crypto code.
//! - `tokio`: [`aio`], the async driver of the same core on tokio: a connection, a
//!   multiplexed connection shared by many tasks, and a bounded async pool. Off by
//!   default, so the blocking client pulls in no runtime.
//! - `tokio-tls`: TLS for [`aio`] through tokio-rustls, with the same rustls configuration.
//! - `tracing`: the events of [`observe`] (retries, reconnects, redirections, pool waits)
//!   through the `tracing` crate. The [`observe::Metrics`] hook works without it.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "tokio")]
pub mod aio;
pub mod clock;
mod conn;
mod error;
mod info;
mod machine;
pub mod mux;
pub mod observe;
mod pool;
mod tls;
mod tracking;
mod transport;

pub use conn::Connection;
pub use error::Error;
pub use info::{Addr, ConnectionInfo, Protocol, UrlError};
pub use machine::{changes_connection_state, ConnState, Core, Poll, ReplyTimeout, Verdict};
pub use pool::{ConnectionPool, PoolOptions, PoolStats, PooledConnection};
pub use tls::TlsOptions;
pub use tracking::{Tracking, TrackingMode, TrackingRegistration};
pub use transport::{Connector, DefaultConnector, Readiness, Transport};
