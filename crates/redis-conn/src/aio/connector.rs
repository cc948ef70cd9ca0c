//! Where a new async connection goes: a connector that opens its transport (to a server
//! it picks each time, a Sentinel's primary, or over a byte stream of its own), checks it
//! after the handshake, and says when the connections it opened must not carry another
//! request.

use super::{Connection, Dialer, Transport};
use crate::Error;
use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

/// A boxed future, as [`Connector`]'s methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A transport a [`Connector`] opened, and the epoch its connection belongs to (see
/// [`Connector::is_current`]; 0 for a connector that never retires connections).
#[derive(Debug)]
pub struct Opened {
    /// The byte stream.
    pub transport: Box<dyn Transport>,
    /// The epoch it was opened in.
    pub epoch: u64,
}

impl std::fmt::Debug for dyn Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Transport")
    }
}

/// Opens the transport of each new async connection ([`Multiplexed::with_connector`],
/// [`Pool::with_connector`]), the counterpart of the blocking
/// [`Connector`](crate::Connector); the settings other than the address (credentials,
/// database, timeouts, TLS) stay those of the [`ConnectionInfo`](crate::ConnectionInfo)
/// given beside it, and the handshake runs over whatever it opens.
///
/// A connector that picks an address (a Sentinel client's) opens it with the
/// [`Dialer`] it is given; one that brings its own byte stream (an in-memory pipe, a
/// tunnel, a simulated network) ignores it.
///
/// ```
/// use redis_conn::aio::{BoxFuture, Connector, Dialer, Opened};
/// use redis_conn::Error;
/// use std::time::Instant;
///
/// /// Every connection over one end of an in-memory pipe handed out by `accept`.
/// #[derive(Debug)]
/// struct InMemory {
///     accept: fn() -> tokio::io::DuplexStream,
/// }
///
/// impl Connector for InMemory {
///     fn connect<'a>(
///         &'a self,
///         _dialer: &'a Dialer,
///         _deadline: Option<Instant>,
///     ) -> BoxFuture<'a, Result<Opened, Error>> {
///         let transport = Box::new((self.accept)());
///         Box::pin(async move { Ok(Opened { transport, epoch: 0 }) })
///     }
/// }
/// ```
///
/// [`Multiplexed::with_connector`]: super::Multiplexed::with_connector
/// [`Pool::with_connector`]: super::Pool::with_connector
pub trait Connector: Send + Sync + std::fmt::Debug + 'static {
    /// Opens the transport of the next connection, giving up at `deadline`; `dialer`
    /// opens the built-in transports (TCP, Unix, TLS) with the connection's settings.
    ///
    /// # Errors
    /// [`Error::Connect`] when nothing could be opened (the call may be retried).
    fn connect<'a>(
        &'a self,
        dialer: &'a Dialer,
        deadline: Option<Instant>,
    ) -> BoxFuture<'a, Result<Opened, Error>>;

    /// Checks a connection after its handshake, before anyone uses it, and again after a
    /// pool restored it (as the blocking [`Connector::verify`](crate::Connector::verify)).
    /// The default accepts it.
    fn verify<'a>(&'a self, conn: &'a mut Connection) -> BoxFuture<'a, Result<(), Error>> {
        let _ = conn;
        Box::pin(async { Ok(()) })
    }

    /// False once connections opened in `epoch` must not carry another request: an idle
    /// pooled one is closed at checkout, a multiplexed one replaced at the next request.
    /// The default: always current.
    fn is_current(&self, epoch: u64) -> bool {
        let _ = epoch;
        true
    }
}
