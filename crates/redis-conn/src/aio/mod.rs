//! The async driver of the connection core, on tokio (feature `tokio`): one
//! [`Connection`], a [`Multiplexed`] connection shared by many tasks, and a bounded
//! [`Pool`] for what cannot share a connection.
//!
//! Like the blocking [`Connection`](crate::Connection), these drivers only move bytes and
//! read the clock: the handshake, the replies owed, the connection state, pushes,
//! deadlines, limits and the verdict at hand-back are the same [`Core`](crate::Core)'s.
//! A deadline the core gives ([`Poll::NeedInput`](crate::Poll::NeedInput)) becomes a
//! `tokio::time::timeout_at` around the read.
//!
//! Every type here must be used inside a tokio runtime with the time and I/O drivers on;
//! the multiplexed connection spawns its reader and writer tasks on it.

mod conn;
mod connector;
mod mux;
mod pool;
mod stream;

pub use conn::Connection;
pub use connector::{BoxFuture, Connector};
pub use mux::Multiplexed;
pub use pool::{Pool, PooledConnection};

/// A copy of `e` for each of several callers (a failure every waiting caller is told
/// about): `io::Error` is not `Clone`, so an I/O error is copied as its kind and message.
pub(crate) fn copy_error(e: &crate::Error) -> crate::Error {
    use crate::Error as E;
    match e {
        E::Connect { addr, source } => E::Connect {
            addr: addr.clone(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        E::Io(io) => E::Io(std::io::Error::new(io.kind(), io.to_string())),
        E::Timeout => E::Timeout,
        E::Protocol(p) => E::Protocol(p.clone()),
        E::Server(s) => E::Server(s.clone()),
        E::Auth(s) => E::Auth(s.clone()),
        E::OutOfStep(s) => E::OutOfStep(s.clone()),
        E::Unsupported(s) => E::Unsupported(s),
        E::Broken => E::Broken,
        E::Tls(s) => E::Tls(s.clone()),
        E::PoolExhausted(d) => E::PoolExhausted(*d),
        E::Url(u) => E::Io(std::io::Error::other(u.to_string())),
    }
}

/// `fut`, given up at `deadline` (`None`: never); `Err(())` when the deadline passed.
pub(crate) async fn until<F: std::future::Future>(
    deadline: Option<std::time::Instant>,
    fut: F,
) -> Result<F::Output, ()> {
    match deadline {
        None => Ok(fut.await),
        Some(d) => tokio::time::timeout_at(tokio::time::Instant::from_std(d), fut)
            .await
            .map_err(drop),
    }
}
