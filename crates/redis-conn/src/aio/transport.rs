//! The async byte stream under a connection ([`Transport`]), and how one is opened:
//! [`Dialer`] for TCP (with `TCP_NODELAY` and keepalive), Unix sockets, and TLS over TCP
//! with the blocking client's rustls configuration (feature `tokio-tls`); a
//! [`Connector`](super::Connector) for anything else.

use super::until;
use crate::{Addr, ConnectionInfo, Error, Readiness};
use std::io;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite};

/// A bidirectional async byte stream an async connection runs over: the counterpart of
/// the blocking [`Transport`](crate::Transport).
///
/// TCP, Unix sockets and TLS are built in ([`Dialer`]); a user-defined transport (an
/// in-memory pipe, a tunnel, a simulated network) comes from a
/// [`Connector`](super::Connector).
pub trait Transport: AsyncRead + AsyncWrite + Send + Unpin + 'static {
    /// Looks, without waiting and without consuming anything, whether the stream has bytes
    /// to read or was closed by the peer.
    ///
    /// Asked before an idle connection carries a new request (a pool checkout), and before
    /// a multiplexed connection writes a batch where [`Transport::read_now`] cannot read:
    /// bytes found on an idle connection were sent before the request and belong to
    /// nobody, and the connection is dropped instead of reading them as its reply. The look must see what the stream holds now (for a socket, one
    /// non-blocking system call), not what an async reactor last reported, which can lag
    /// behind while the runtime is busy.
    ///
    /// The default answers [`Readiness::Unknown`]: such a transport still gets the
    /// connection core's checks (nothing owed, nothing unread), but bytes a peer sent
    /// while the connection was idle are caught only once read.
    fn readiness(&mut self) -> Readiness {
        Readiness::Unknown
    }

    /// Reads what the stream holds now into `buf`, without waiting and without asking
    /// the async reactor: `Some(Ok(n))` for `n` bytes (0: the peer closed it),
    /// `Some(Err(e))` with [`io::ErrorKind::WouldBlock`] when nothing is there, `None`
    /// when this transport cannot (the default).
    ///
    /// Asked before a multiplexed connection writes a new batch: a reply nobody asked
    /// for that reached the stream before the batch, even right behind replies still
    /// owed, is then read and caught before any request of the batch could be matched to
    /// it, however late the reactor is. Without it, [`Transport::readiness`] is asked,
    /// and bytes it finds are read the usual way before the batch goes.
    fn read_now(&mut self, buf: &mut [u8]) -> Option<io::Result<usize>> {
        let _ = buf;
        None
    }
}

/// A non-blocking read of a socket tokio made non-blocking, past the reactor (which
/// learns at its next look that the bytes are gone: a read of its own then finds none).
fn read_socket(sock: socket2::SockRef<'_>, buf: &mut [u8]) -> io::Result<usize> {
    io::Read::read(&mut &*sock, buf)
}

impl Transport for tokio::net::TcpStream {
    fn readiness(&mut self) -> Readiness {
        crate::transport::peek_nonblocking(socket2::SockRef::from(&*self))
    }

    fn read_now(&mut self, buf: &mut [u8]) -> Option<io::Result<usize>> {
        Some(read_socket(socket2::SockRef::from(&*self), buf))
    }
}

#[cfg(unix)]
impl Transport for tokio::net::UnixStream {
    fn readiness(&mut self) -> Readiness {
        crate::transport::peek_nonblocking(socket2::SockRef::from(&*self))
    }

    fn read_now(&mut self, buf: &mut [u8]) -> Option<io::Result<usize>> {
        Some(read_socket(socket2::SockRef::from(&*self), buf))
    }
}

/// An in-memory pipe (tests, a process talking to itself): it cannot look without
/// reading, so it answers [`Readiness::Unknown`].
impl Transport for tokio::io::DuplexStream {}

/// Plaintext already decrypted counts as readable; TLS records on the socket are taken in
/// without waiting and decrypted, since a record that carries no data (a session ticket, a
/// key update) leaves the stream quiet, while a close_notify closes it.
#[cfg(feature = "tokio-tls")]
impl Transport for tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    fn readiness(&mut self) -> Readiness {
        use rustls::ClientConnection;
        let state = |conn: &mut ClientConnection| match conn.process_new_packets() {
            Err(_) => Readiness::Closed,
            Ok(io) if io.plaintext_bytes_to_read() > 0 => Readiness::Readable,
            Ok(io) if io.peer_has_closed() => Readiness::Closed,
            Ok(_) => Readiness::Quiet,
        };
        let (sock, conn) = self.get_mut();
        match state(conn) {
            Readiness::Quiet => {}
            other => return other,
        }
        match crate::transport::peek_nonblocking(socket2::SockRef::from(&*sock)) {
            Readiness::Readable => {}
            other => return other,
        }
        // The socket is non-blocking already (tokio's): reading it directly takes in what
        // is there now, which the reactor learns at its next look.
        struct Now<'a>(socket2::SockRef<'a>);
        impl io::Read for Now<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                read_socket(socket2::SockRef::from(&*self.0), buf)
            }
        }
        let mut now = Now(socket2::SockRef::from(&*sock));
        loop {
            match conn.read_tls(&mut now) {
                Ok(0) => return Readiness::Closed,
                Ok(_) => match state(conn) {
                    Readiness::Quiet => {}
                    other => return other,
                },
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Readiness::Quiet,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Readiness::Closed,
            }
        }
    }

    /// The records on the socket taken in as [`Transport::readiness`] does, then the
    /// plaintext they hold.
    fn read_now(&mut self, buf: &mut [u8]) -> Option<io::Result<usize>> {
        Some(match self.readiness() {
            Readiness::Readable => io::Read::read(&mut self.get_mut().1.reader(), buf),
            Readiness::Quiet => Err(io::ErrorKind::WouldBlock.into()),
            Readiness::Closed => Ok(0),
            Readiness::Unknown => Err(io::ErrorKind::Interrupted.into()),
        })
    }
}

/// Opens the built-in async transports for one [`ConnectionInfo`]: TCP (every address a
/// name resolves to, within the deadline; `TCP_NODELAY` and [`ConnectionInfo::keepalive`]
/// set), a Unix socket, TLS over TCP when the settings ask for it (feature `tokio-tls`).
/// The TLS configuration is built once and shared by every stream it opens.
///
/// A [`Connector`](super::Connector) is given one to open the address it picked, or to
/// ignore for a transport of its own.
#[derive(Debug)]
pub struct Dialer {
    info: ConnectionInfo,
    #[cfg(feature = "tokio-tls")]
    tls: std::sync::OnceLock<Result<crate::tls::Config, String>>,
}

impl Dialer {
    /// A dialer with `info`'s settings.
    pub fn new(info: ConnectionInfo) -> Dialer {
        Dialer {
            info,
            #[cfg(feature = "tokio-tls")]
            tls: std::sync::OnceLock::new(),
        }
    }

    /// The settings streams are opened with.
    pub fn info(&self) -> &ConnectionInfo {
        &self.info
    }

    /// Opens a stream to [`ConnectionInfo::addr`], giving up at `deadline`.
    ///
    /// # Errors
    /// As [`Dialer::dial`].
    pub async fn open(&self, deadline: Option<Instant>) -> Result<Box<dyn Transport>, Error> {
        self.dial(&self.info.addr, deadline).await
    }

    /// Opens a stream to `addr` with this dialer's settings, giving up at `deadline`.
    ///
    /// Cancellation: dropping the future abandons the stream being opened.
    ///
    /// # Errors
    /// [`Error::Connect`] when the address cannot be reached in time, [`Error::Tls`] when
    /// TLS cannot be set up, [`Error::Timeout`] when its handshake does not end in time.
    pub async fn dial(
        &self,
        addr: &Addr,
        deadline: Option<Instant>,
    ) -> Result<Box<dyn Transport>, Error> {
        let fail = |source: io::Error| Error::Connect {
            addr: addr.to_string(),
            source,
        };
        let timed_out = || fail(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"));
        match addr {
            Addr::Tcp { host, port } => {
                // tokio tries every address the name resolves to; resolution is bounded by
                // the deadline too.
                let connect = tokio::net::TcpStream::connect((host.as_str(), *port));
                let stream = until(deadline, connect)
                    .await
                    .map_err(|()| timed_out())?
                    .map_err(fail)?;
                stream.set_nodelay(true).map_err(fail)?;
                crate::transport::keepalive(socket2::SockRef::from(&stream), self.info.keepalive)
                    .map_err(fail)?;
                self.secure(stream, host, deadline).await
            }
            #[cfg(unix)]
            Addr::Unix(path) => {
                let connect = tokio::net::UnixStream::connect(path);
                let stream = until(deadline, connect)
                    .await
                    .map_err(|()| timed_out())?
                    .map_err(fail)?;
                Ok(Box::new(stream))
            }
            #[cfg(not(unix))]
            Addr::Unix(_) => Err(fail(io::Error::new(
                io::ErrorKind::Unsupported,
                "unix sockets",
            ))),
        }
    }

    /// Wraps `stream` in TLS when the settings ask for it.
    async fn secure(
        &self,
        stream: tokio::net::TcpStream,
        host: &str,
        deadline: Option<Instant>,
    ) -> Result<Box<dyn Transport>, Error> {
        let Some(opts) = &self.info.tls else {
            return Ok(Box::new(stream));
        };
        #[cfg(feature = "tokio-tls")]
        {
            let config = self
                .tls
                .get_or_init(|| crate::tls::config(opts).map_err(|e| e.to_string()));
            let config = config.as_ref().map_err(|e| Error::Tls(e.clone()))?;
            let name =
                crate::tls::server_name(opts, host).map_err(|e| Error::Tls(e.to_string()))?;
            let connector = tokio_rustls::TlsConnector::from(Arc::clone(config));
            // The TLS handshake happens now, so certificate problems surface at connect
            // time rather than on the first command.
            match until(deadline, connector.connect(name, stream)).await {
                Err(()) => Err(Error::Timeout),
                Ok(Err(e)) => Err(Error::Tls(format!("tls handshake failed: {e}"))),
                Ok(Ok(tls)) => Ok(Box::new(tls)),
            }
        }
        #[cfg(not(feature = "tokio-tls"))]
        {
            let _ = (opts, stream, host, deadline);
            Err(Error::Tls(
                "TLS on the async client needs the `tokio-tls` feature of redis-conn (or redis-client)"
                    .to_owned(),
            ))
        }
    }
}

/// Opens the streams of one pool or multiplexed connection: through its connector if it
/// has one, else with the dialer to the configured address.
#[derive(Debug)]
pub(crate) struct Opener {
    dialer: Dialer,
    connector: Option<Arc<dyn super::Connector>>,
}

/// A stream just opened, with the connector that picked it and its epoch.
pub(crate) type Opened = (Box<dyn Transport>, Option<(Arc<dyn super::Connector>, u64)>);

impl Opener {
    pub(crate) fn new(info: ConnectionInfo) -> Opener {
        Opener {
            dialer: Dialer::new(info),
            connector: None,
        }
    }

    pub(crate) fn with_connector(
        info: ConnectionInfo,
        connector: Arc<dyn super::Connector>,
    ) -> Opener {
        Opener {
            dialer: Dialer::new(info),
            connector: Some(connector),
        }
    }

    pub(crate) fn connector(&self) -> Option<&Arc<dyn super::Connector>> {
        self.connector.as_ref()
    }

    pub(crate) fn info(&self) -> &ConnectionInfo {
        self.dialer.info()
    }

    /// Opens a stream, giving up at `deadline`.
    pub(crate) async fn open(&self, deadline: Option<Instant>) -> Result<Opened, Error> {
        match &self.connector {
            Some(c) => {
                let opened = c.connect(&self.dialer, deadline).await?;
                Ok((opened.transport, Some((Arc::clone(c), opened.epoch))))
            }
            None => Ok((self.dialer.open(deadline).await?, None)),
        }
    }
}
