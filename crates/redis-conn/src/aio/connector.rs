//! Where a new async connection goes: a connector that picks the server each time one is
//! opened (a Sentinel's primary), checks it after the handshake, and says when the
//! connections it opened must not carry another request.

use super::Connection;
use crate::{Addr, Error};
use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

/// A boxed future, as [`Connector`]'s methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Picks the server of each new async connection ([`Multiplexed::with_connector`],
/// [`Pool::with_connector`]); the settings other than the address (credentials, database,
/// timeouts, TLS) stay those of the [`ConnectionInfo`](crate::ConnectionInfo) given beside it.
///
/// [`Multiplexed::with_connector`]: super::Multiplexed::with_connector
/// [`Pool::with_connector`]: super::Pool::with_connector
pub trait Connector: Send + Sync + std::fmt::Debug + 'static {
    /// The address of the next connection, and the epoch it will belong to (see
    /// [`Connector::is_current`]); giving up at `deadline`.
    fn resolve(&self, deadline: Option<Instant>) -> BoxFuture<'_, Result<(Addr, u64), Error>>;

    /// Checks a connection after its handshake, before anyone uses it, and again after a
    /// pool restored it (as the blocking [`Connector::verify`](crate::Connector::verify)).
    /// The default accepts it.
    fn verify<'a>(&'a self, conn: &'a mut Connection) -> BoxFuture<'a, Result<(), Error>> {
        let _ = conn;
        Box::pin(async { Ok(()) })
    }

    /// False once connections opened in `epoch` must not carry another request: an idle
    /// pooled one is closed at checkout, a multiplexed one replaced at the next request.
    fn is_current(&self, epoch: u64) -> bool;
}
