//! The async driver of the connection core, on tokio (feature `tokio`): one
//! [`Connection`].
//!
//! Like the blocking [`Connection`](crate::Connection), these drivers only move bytes and
//! read the clock: the handshake, the replies owed, the connection state, pushes,
//! deadlines, limits and the verdict at hand-back are the same [`Core`](crate::Core)'s.
//! A deadline the core gives ([`Poll::NeedInput`](crate::Poll::NeedInput)) becomes a
//! `tokio::time::timeout_at` around the read.
//!
//! Every type here must be used inside a tokio runtime with the time and I/O drivers on.

mod conn;
mod stream;

pub use conn::Connection;

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
