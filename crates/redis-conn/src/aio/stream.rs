//! The async byte stream under a connection, and how one is opened: TCP (with
//! `TCP_NODELAY` and keepalive), Unix sockets, and TLS over TCP with the blocking
//! client's rustls configuration (feature `tokio-tls`).

use super::until;
use crate::{Addr, ConnectionInfo, Error};
use std::io;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite};

/// A bidirectional async byte stream.
pub(crate) trait AsyncStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> AsyncStream for T {}

/// Opens async streams for one [`ConnectionInfo`]; the TLS configuration is built once
/// and shared by every connection it opens.
#[derive(Debug)]
pub(crate) struct Opener {
    info: ConnectionInfo,
    /// Picks the address of each connection instead of `info.addr`.
    connector: Option<std::sync::Arc<dyn super::Connector>>,
    #[cfg(feature = "tokio-tls")]
    tls: std::sync::OnceLock<Result<crate::tls::Config, String>>,
}

impl Opener {
    pub(crate) fn new(info: ConnectionInfo) -> Opener {
        Opener {
            info,
            connector: None,
            #[cfg(feature = "tokio-tls")]
            tls: std::sync::OnceLock::new(),
        }
    }

    pub(crate) fn with_connector(
        info: ConnectionInfo,
        connector: std::sync::Arc<dyn super::Connector>,
    ) -> Opener {
        Opener {
            connector: Some(connector),
            ..Opener::new(info)
        }
    }

    pub(crate) fn connector(&self) -> Option<&std::sync::Arc<dyn super::Connector>> {
        self.connector.as_ref()
    }

    pub(crate) fn info(&self) -> &ConnectionInfo {
        &self.info
    }

    /// Opens a stream, giving up at `deadline`.
    pub(crate) async fn open(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Box<dyn AsyncStream>, Error> {
        self.open_to(&self.info.addr, deadline).await
    }

    /// Opens a stream to `addr` with this opener's settings, giving up at `deadline`.
    pub(crate) async fn open_to(
        &self,
        addr: &Addr,
        deadline: Option<Instant>,
    ) -> Result<Box<dyn AsyncStream>, Error> {
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
    ) -> Result<Box<dyn AsyncStream>, Error> {
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
            let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::clone(config));
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
