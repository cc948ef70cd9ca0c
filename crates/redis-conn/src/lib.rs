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
//! # What this crate does not do
//! It knows no Redis command beyond the handshake (AUTH, HELLO, CLIENT SETNAME, SELECT)
//! and does not convert replies into Rust types: that is `redis-commands`.
//!
//! # Crate features
//! - `tls`: TLS connections (`rediss://`, [`ConnectionInfo::tls`]) through rustls with the
//!   ring provider. Off by default, so builds without TLS compile no crypto code.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod conn;
mod error;
mod info;
mod machine;
mod pool;
mod tls;
mod transport;

pub use conn::Connection;
pub use error::Error;
pub use info::{Addr, ConnectionInfo, Protocol, UrlError};
pub use machine::{changes_connection_state, ConnState, Core, Poll, ReplyTimeout, Verdict};
pub use pool::{ConnectionPool, PoolOptions, PoolStats, PooledConnection};
pub use tls::TlsOptions;
pub use transport::{Connector, DefaultConnector, Readiness, Transport};
