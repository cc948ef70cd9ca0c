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
mod transport;

pub use conn::Connection;
pub use connector::{BoxFuture, Connector, Opened};
pub use mux::Multiplexed;
pub use pool::{Pool, PooledConnection};
pub use transport::{Dialer, Transport};

/// The time, as tokio's clock gives it: the system's, or the paused and advanced clock of
/// a test runtime (`tokio::time::pause`), so that every deadline of the async drivers
/// follows simulated time in a simulation.
pub fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
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
