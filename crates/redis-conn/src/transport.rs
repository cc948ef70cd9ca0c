//! The byte stream under a connection, and how one is opened.
//!
//! TCP and Unix sockets are the built-in [`Transport`]s; a user-defined one (a counting
//! wrapper, a tunnel, an in-process pipe) plugs in through [`Connector`].

use crate::{Addr, ConnectionInfo, Error};
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// A bidirectional byte stream a [`Connection`](crate::Connection) runs over.
pub trait Transport: Read + Write + Send + 'static {
    /// Sets how long a read may block; `None` blocks forever. A read that times out must
    /// fail with `WouldBlock` or `TimedOut`, as sockets do.
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()>;
    /// Sets how long a write may block; `None` blocks forever.
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()>;

    /// Looks, without blocking and without consuming anything, whether the stream has
    /// bytes to read or was closed by the peer. The pool asks before handing out an idle
    /// connection: an idle connection must be [`Readiness::Quiet`].
    ///
    /// The default answers [`Readiness::Unknown`]: such a transport still gets the
    /// connection core's checks (nothing owed, nothing unread), and a connection the
    /// server closed while idle fails on its next use instead.
    fn readiness(&mut self) -> Readiness {
        Readiness::Unknown
    }

    /// Whether the connector that opened this transport has since retired it: its server
    /// may no longer be the one wanted (a Sentinel client's primary after a failover).
    /// `None`, the default, for a transport that is never retired. A subscriber waiting
    /// on a transport that can be retired wakes now and then to ask, and moves when it is.
    fn retired(&self) -> Option<bool> {
        None
    }
}

/// What a non-blocking look at a stream found, from [`Transport::readiness`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Open, with nothing to read.
    Quiet,
    /// Bytes are waiting to be read.
    Readable,
    /// The peer closed the stream (or it failed).
    Closed,
    /// The transport cannot tell without blocking.
    Unknown,
}

/// A non-blocking look at a socket, consuming nothing: `MSG_PEEK | MSG_DONTWAIT` in one
/// system call on Linux, so the look costs one syscall even on a hot path.
#[cfg(target_os = "linux")]
fn peek_socket(
    sock: socket2::SockRef<'_>,
    _set_nonblocking: impl Fn(bool) -> io::Result<()>,
) -> Readiness {
    // Linux values of MSG_PEEK and MSG_DONTWAIT (bits/socket.h).
    const FLAGS: std::os::raw::c_int = 0x02 | 0x40;
    let mut byte = [std::mem::MaybeUninit::<u8>::uninit(); 1];
    match sock.recv_with_flags(&mut byte, FLAGS) {
        Ok(0) => Readiness::Closed,
        Ok(_) => Readiness::Readable,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Readiness::Quiet,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Readiness::Unknown,
        Err(_) => Readiness::Closed,
    }
}

/// Elsewhere the socket is switched to non-blocking for the look and back.
#[cfg(not(target_os = "linux"))]
fn peek_socket(
    sock: socket2::SockRef<'_>,
    set_nonblocking: impl Fn(bool) -> io::Result<()>,
) -> Readiness {
    if set_nonblocking(true).is_err() {
        return Readiness::Unknown;
    }
    let mut byte = [std::mem::MaybeUninit::<u8>::uninit(); 1];
    let r = sock.peek(&mut byte);
    if set_nonblocking(false).is_err() {
        return Readiness::Closed;
    }
    match r {
        Ok(0) => Readiness::Closed,
        Ok(_) => Readiness::Readable,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Readiness::Quiet,
        Err(_) => Readiness::Closed,
    }
}

/// A look at a socket that is non-blocking already (an async runtime's): one `MSG_PEEK`
/// system call, consuming nothing.
#[cfg(feature = "tokio")]
pub(crate) fn peek_nonblocking(sock: socket2::SockRef<'_>) -> Readiness {
    let mut byte = [std::mem::MaybeUninit::<u8>::uninit(); 1];
    match sock.peek(&mut byte) {
        Ok(0) => Readiness::Closed,
        Ok(_) => Readiness::Readable,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Readiness::Quiet,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Readiness::Unknown,
        Err(_) => Readiness::Closed,
    }
}

impl Transport for TcpStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, timeout)
    }
    fn readiness(&mut self) -> Readiness {
        let stream = &*self;
        peek_socket(socket2::SockRef::from(stream), |on| {
            stream.set_nonblocking(on)
        })
    }
}

#[cfg(unix)]
impl Transport for UnixStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        UnixStream::set_read_timeout(self, timeout)
    }
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        UnixStream::set_write_timeout(self, timeout)
    }
    fn readiness(&mut self) -> Readiness {
        let stream = &*self;
        peek_socket(socket2::SockRef::from(stream), |on| {
            stream.set_nonblocking(on)
        })
    }
}

/// The TLS transport looks at the socket underneath the same way.
#[cfg(feature = "tls")]
pub(crate) fn peek_tcp(stream: &TcpStream) -> Readiness {
    peek_socket(socket2::SockRef::from(stream), |on| {
        stream.set_nonblocking(on)
    })
}

/// Opens transports: the reference client's `connection_class`, carrying its own settings.
///
/// A pool is built with one; every new connection comes from [`Connector::connect`],
/// followed by the handshake described by [`Connector::info`].
pub trait Connector: Send + Sync + 'static {
    /// The settings of the connections this connector opens (auth, db, timeouts …).
    fn info(&self) -> &ConnectionInfo;

    /// Opens a new transport, giving up at `deadline`.
    ///
    /// # Errors
    /// [`Error::Connect`] when the peer cannot be reached in time.
    fn connect(&self, deadline: Option<Instant>) -> Result<Box<dyn Transport>, Error>;

    /// Checks a connection this connector opened, after its handshake and before anyone
    /// uses it (and again after a pool restored it with `RESET` and the handshake); every
    /// wait is bounded by the connect deadline. A connector that finds its server by
    /// asking another (a Sentinel) confirms here that it reached the right one.
    /// The default accepts every connection.
    ///
    /// # Errors
    /// Any error refuses the connection: it is closed and opening it fails with the error.
    fn verify(&self, conn: &mut crate::Connection) -> Result<(), Error> {
        let _ = conn;
        Ok(())
    }
}

/// The built-in connector: TCP (with `TCP_NODELAY`) or a Unix socket, from
/// [`ConnectionInfo::addr`].
///
/// Every address a host name resolves to is tried in turn until the connect deadline.
/// Name resolution itself is the system's and is not bounded by the deadline.
/// [`ConnectionInfo::keepalive`] is applied to TCP sockets.
#[derive(Debug)]
pub struct DefaultConnector {
    info: ConnectionInfo,
    /// The TLS client configuration, built on first connect and shared afterwards.
    #[cfg(feature = "tls")]
    tls: std::sync::OnceLock<Result<crate::tls::Config, String>>,
}

impl Clone for DefaultConnector {
    fn clone(&self) -> Self {
        DefaultConnector::new(self.info.clone())
    }
}

impl DefaultConnector {
    /// A connector for `info`.
    pub fn new(info: ConnectionInfo) -> Self {
        DefaultConnector {
            info,
            #[cfg(feature = "tls")]
            tls: std::sync::OnceLock::new(),
        }
    }

    /// Wraps `stream` in TLS when the settings ask for it.
    fn secure(
        &self,
        stream: TcpStream,
        host: &str,
        deadline: Option<Instant>,
    ) -> Result<Box<dyn Transport>, Error> {
        let Some(opts) = &self.info.tls else {
            return Ok(Box::new(stream));
        };
        #[cfg(feature = "tls")]
        {
            let config = self
                .tls
                .get_or_init(|| crate::tls::config(opts).map_err(|e| e.to_string()));
            let config = config.as_ref().map_err(|e| Error::Tls(e.clone()))?;
            let timeout = match remaining(deadline) {
                Some(None) => return Err(Error::Timeout),
                Some(left) => left,
                None => None,
            };
            crate::tls::connect(config, opts, host, stream, timeout).map_err(|e| match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::Timeout,
                _ => Error::Tls(e.to_string()),
            })
        }
        #[cfg(not(feature = "tls"))]
        {
            let _ = (opts, stream, host, deadline);
            Err(Error::Tls(
                "TLS needs the `tls` feature of redis-conn (or redis-client)".to_owned(),
            ))
        }
    }
}

impl Connector for DefaultConnector {
    fn info(&self) -> &ConnectionInfo {
        &self.info
    }

    fn connect(&self, deadline: Option<Instant>) -> Result<Box<dyn Transport>, Error> {
        let addr = &self.info.addr;
        let fail = |source: io::Error| Error::Connect {
            addr: addr.to_string(),
            source,
        };
        match addr {
            Addr::Tcp { host, port } => {
                let addrs = (host.as_str(), *port).to_socket_addrs().map_err(fail)?;
                let mut last =
                    io::Error::new(io::ErrorKind::NotFound, "host resolved to no address");
                // Every resolved address is tried in turn within the one deadline.
                for sa in addrs {
                    let attempt = match remaining(deadline) {
                        Some(Some(left)) => TcpStream::connect_timeout(&sa, left),
                        Some(None) => {
                            Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))
                        }
                        None => TcpStream::connect(sa),
                    };
                    match attempt {
                        Ok(stream) => {
                            stream.set_nodelay(true).map_err(fail)?;
                            apply_keepalive(&stream, self.info.keepalive).map_err(fail)?;
                            return self.secure(stream, host, deadline);
                        }
                        Err(e) => last = e,
                    }
                }
                Err(fail(last))
            }
            #[cfg(unix)]
            Addr::Unix(path) => Ok(Box::new(UnixStream::connect(path).map_err(fail)?)),
            #[cfg(not(unix))]
            Addr::Unix(_) => Err(fail(io::Error::new(
                io::ErrorKind::Unsupported,
                "unix sockets",
            ))),
        }
    }
}

/// Turns TCP keepalive on with probes after `idle`, or leaves the socket alone for `None`.
fn apply_keepalive(stream: &TcpStream, idle: Option<Duration>) -> io::Result<()> {
    keepalive(socket2::SockRef::from(stream), idle)
}

/// The same for any socket, blocking or not (the async driver's).
pub(crate) fn keepalive(sock: socket2::SockRef<'_>, idle: Option<Duration>) -> io::Result<()> {
    match idle {
        Some(idle) => sock.set_tcp_keepalive(&socket2::TcpKeepalive::new().with_time(idle)),
        None => Ok(()),
    }
}

/// Time left until `deadline`: `None` if there is no deadline, `Some(None)` if it passed.
pub(crate) fn remaining(deadline: Option<Instant>) -> Option<Option<Duration>> {
    deadline.map(|d| {
        d.checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn keepalive_is_applied_to_tcp_sockets() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let sock = socket2::SockRef::from(&stream);
        apply_keepalive(&stream, None).unwrap();
        assert!(!sock.keepalive().unwrap(), "off unless asked for");
        apply_keepalive(&stream, Some(Duration::from_secs(42))).unwrap();
        assert!(sock.keepalive().unwrap());
    }
}
