//! Errors of connecting, talking to a server, and checking connections out of a pool.

use resp_proto::{ProtocolError, ServerError};
use std::io;
use thiserror::Error;

/// A failure to reach a server, talk to it, or get a connection from a pool.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// Connecting failed: refused, unreachable, name not resolved, or connect timeout.
    /// Nothing was sent, so any command may be retried.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address as configured (host:port or socket path).
        addr: String,
        /// The underlying failure.
        #[source]
        source: io::Error,
    },
    /// Reading or writing the socket failed; the connection is dropped.
    #[error("connection lost: {0}")]
    Io(#[from] io::Error),
    /// No reply (or no progress writing) within the configured timeout; the connection is
    /// dropped, since a late reply would otherwise be read by the next caller.
    #[error("timed out waiting for the server")]
    Timeout,
    /// The peer sent bytes that are not valid RESP; the connection is dropped.
    #[error("invalid reply from the server: {0}")]
    Protocol(#[from] ProtocolError),
    /// The server answered with an error reply.
    #[error("server error: {0}")]
    Server(ServerError),
    /// The server refused the credentials (or requires some and none were given).
    #[error("authentication failed: {0}")]
    Auth(ServerError),
    /// The server sent a reply nobody asked for, bytes after the last reply owed, or a
    /// frame of the wrong protocol: the stream is out of step and the connection is
    /// dropped, so no caller can read another's reply.
    #[error("connection out of step: {0}")]
    OutOfStep(String),
    /// The request was refused before anything was sent: a command that would turn a
    /// command connection into a stream of pushes (SUBSCRIBE, MONITOR), or a request
    /// whose command count does not match the replies announced. The connection is
    /// unchanged.
    #[error("unsupported request: {0}")]
    Unsupported(&'static str),
    /// The connection failed earlier and cannot be used any more.
    #[error("connection is broken by an earlier failure and cannot be reused")]
    Broken,
    /// TLS could not be set up or the handshake failed (untrusted certificate, wrong
    /// server name, client certificate refused …). Not retryable: fix the settings.
    #[error("tls: {0}")]
    Tls(String),
    /// The pool had no connection to hand out within its checkout timeout.
    #[error("connection pool exhausted: no connection free within {0:?}")]
    PoolExhausted(std::time::Duration),
    /// A URL or connection setting is invalid.
    #[error(transparent)]
    Url(#[from] crate::UrlError),
}

impl Error {
    /// An error reply as a typed error: [`Error::Auth`] when the server refuses
    /// credentials or demands some (`WRONGPASS`, `NOAUTH`, `ERR invalid password`),
    /// [`Error::Server`] otherwise.
    pub fn from_server_error(e: ServerError) -> Error {
        crate::conn::server_error(e, false)
    }

    /// True when the connection this came from is unusable (lost, timed out, out of step).
    pub fn is_connection_lost(&self) -> bool {
        matches!(
            self,
            Error::Io(_)
                | Error::Timeout
                | Error::Protocol(_)
                | Error::OutOfStep(_)
                | Error::Broken
        )
    }

    /// True when the request certainly did not reach the server, so repeating it cannot
    /// execute it twice.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Connect { .. } | Error::PoolExhausted(_))
    }

    /// The server closed the stream.
    pub(crate) fn closed() -> Error {
        Error::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "server closed the connection",
        ))
    }

    /// A copy for each of several callers (a failure every waiting caller is told about):
    /// `io::Error` is not `Clone`, so an I/O error is copied as its kind and message.
    pub(crate) fn duplicate(&self) -> Error {
        match self {
            Error::Connect { addr, source } => Error::Connect {
                addr: addr.clone(),
                source: io::Error::new(source.kind(), source.to_string()),
            },
            Error::Io(e) => Error::Io(io::Error::new(e.kind(), e.to_string())),
            Error::Timeout => Error::Timeout,
            Error::Protocol(p) => Error::Protocol(p.clone()),
            Error::Server(s) => Error::Server(s.clone()),
            Error::Auth(s) => Error::Auth(s.clone()),
            Error::OutOfStep(s) => Error::OutOfStep(s.clone()),
            Error::Unsupported(s) => Error::Unsupported(s),
            Error::Broken => Error::Broken,
            Error::Tls(s) => Error::Tls(s.clone()),
            Error::PoolExhausted(d) => Error::PoolExhausted(*d),
            Error::Url(u) => Error::Io(io::Error::other(u.to_string())),
        }
    }
}
