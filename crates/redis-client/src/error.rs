//! The facade's error type: one matchable variant per kind of failure.

use redis_commands::FromValueError;
use resp_proto::{ErrorCode, ProtocolError, ServerError};
use std::io;
use std::time::Duration;
use thiserror::Error;

/// Everything that can go wrong running a command.
///
/// redis-py 2.7.6's exceptions and what they are here ([`Error::kind`] gives the
/// same classification as a plain enum):
///
/// | redis-py 2.7.6 | here | kind |
/// | --- | --- | --- |
/// | `ConnectionError` | [`Error::Connect`] (nothing sent), [`Error::ConnectionLost`], [`Error::ConnectionBroken`], [`Error::Tls`] | `Connection` |
/// | `ConnectionError` (socket timeout) | [`Error::Timeout`] | `Timeout` |
/// | `ResponseError` | [`Error::Server`] with its [`ErrorCode`]; in pipelines [`Error::PipelineCommand`] and [`Error::ExecAbort`] | `Server` |
/// | `AuthenticationError` | [`Error::Auth`] | `Auth` |
/// | `BusyLoadingError` | [`Error::Server`] with code `LOADING` (retried by the default [`RetryPolicy`](crate::RetryPolicy)) | `BusyLoading` |
/// | `InvalidResponse` | [`Error::Protocol`] (bytes that are not RESP), [`Error::Reply`] (a reply of the wrong shape) | `Protocol`, `Reply` |
/// | `DataError` | mostly ruled out by argument types at compile time; values Redis refuses come back as [`Error::Server`]; arguments refused before sending are [`Error::InvalidArgument`] (a misused script: [`Error::Script`]) | `InvalidArgument`, `Script` |
/// | `PubSubError` | [`Error::PubSub`] | `PubSub` |
/// | `WatchError` | [`Error::Watch`] | `Watch` |
/// | `LockError` | [`Error::Lock`] | `Lock` |
/// | (BlockingConnectionPool timeout) | [`Error::PoolExhausted`] | `PoolExhausted` |
/// | (bad URL) | [`Error::Url`] | `Url` |
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The server could not be reached. Nothing was sent; retrying is safe.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address as configured.
        addr: String,
        /// The underlying failure.
        #[source]
        source: io::Error,
    },
    /// The connection failed while in use (reset, closed by the server). A write may or
    /// may not have been executed.
    #[error("connection lost: {0}")]
    ConnectionLost(#[source] io::Error),
    /// The connection was already broken by an earlier failure.
    #[error("connection is broken by an earlier failure")]
    ConnectionBroken,
    /// No reply within the read timeout (or no progress writing within the write timeout).
    #[error("timed out waiting for the server")]
    Timeout,
    /// The server sent bytes that are not valid RESP.
    #[error("invalid reply from the server: {0}")]
    Protocol(#[from] ProtocolError),
    /// The server sent a reply nobody asked for, or bytes after the last reply owed: the
    /// connection was out of step and is closed, so no caller reads another's reply.
    /// Whether the command ran is unknown.
    #[error("connection out of step: {0}")]
    OutOfStep(String),
    /// The request was refused before anything was sent, because it cannot work on this
    /// kind of connection (SUBSCRIBE or MONITOR on a command connection: use
    /// [`Redis::pubsub`](crate::Redis::pubsub)).
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
    /// The server answered with an error; [`ServerError::code`] (reached through the
    /// [`CommandError`]) tells which (`WRONGTYPE`, `NOSCRIPT` …), and the message names
    /// the command it answered (`ZADD: ERR value is not a valid float`).
    #[error("{0}")]
    Server(CommandError),
    /// The server refused the credentials.
    #[error("authentication failed: {0}")]
    Auth(ServerError),
    /// TLS could not be set up or its handshake failed (untrusted certificate, wrong
    /// server name, client certificate refused …). Not retryable: fix the settings.
    #[error("tls: {0}")]
    Tls(String),
    /// No pooled connection became free within the checkout timeout.
    #[error("connection pool exhausted: no connection free within {0:?}")]
    PoolExhausted(Duration),
    /// The URL or a connection setting is invalid.
    #[error(transparent)]
    Url(#[from] redis_conn::UrlError),
    /// Pub/sub misuse or a reply on a subscriber connection that is not a pub/sub
    /// message.
    #[error("pub/sub: {0}")]
    PubSub(String),
    /// A lock could not be acquired in time, or was not held when released or extended.
    #[error(transparent)]
    Lock(#[from] crate::LockError),
    /// A script was used in a way that cannot work (e.g. invoked with no client).
    #[error("script: {0}")]
    Script(String),
    /// Arguments that cannot work together, refused before anything was sent (redis-py
    /// 2.7.6's `DataError`), e.g. SORT's groups without at least two GET patterns.
    #[error("invalid arguments: {0}")]
    InvalidArgument(String),
    /// A command inside a pipeline or transaction failed on the server. Every other command
    /// of it was still sent and its reply read (inside a transaction the others ran: Redis
    /// does not roll back); set `raise_on_error(false)` on the pipeline to get each
    /// command's result, errors in place.
    #[error("command #{index} ({command}) of the pipeline failed: {error}")]
    PipelineCommand {
        /// The command's position among the queued commands, from 0.
        index: usize,
        /// The command's name.
        command: String,
        /// The server's error.
        error: ServerError,
    },
    /// The server refused a command while it was being queued (unknown command, wrong
    /// number of arguments …), so it discarded the whole transaction (`EXECABORT`): nothing
    /// ran. Fix the command; retrying as is fails again.
    #[error("transaction discarded: command #{index} ({command}) was refused: {error}")]
    ExecAbort {
        /// The refused command's position among the queued commands, from 0.
        index: usize,
        /// The refused command's name.
        command: String,
        /// The server's reason for refusing it.
        error: ServerError,
    },
    /// A WATCHed key changed between WATCH and EXEC, so the transaction did not run (the
    /// redis-py 2.7.6's `WatchError`). Read again and retry, as
    /// [`Redis::transaction`](crate::Redis::transaction) does.
    #[error("transaction aborted: a watched key changed")]
    Watch,
    /// A cluster request whose keys hash to more than one slot, where the command cannot
    /// be split (a transaction, WATCH, a script, SUNION …): refused before anything was
    /// sent. Put the keys in one slot with a hash tag (`{user:1}:a`, `{user:1}:b`).
    #[error("cross-slot request refused before sending: {0}")]
    CrossSlot(String),
    /// The cluster could not serve the request: no node answered for the slot map, or a
    /// slot has no owner, or redirections went on past their bound.
    #[error("cluster: {0}")]
    Cluster(String),
    /// The reply does not convert to the type the command method or caller asked for.
    #[error("reply to {command}: {source}")]
    Reply {
        /// The command whose reply it was.
        command: String,
        /// What did not fit.
        #[source]
        source: FromValueError,
    },
}

/// The classification of an [`Error`](enum@Error), for code that only cares about the kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Connecting failed or the connection was lost.
    Connection,
    /// No reply in time.
    Timeout,
    /// The bytes received were not valid RESP.
    Protocol,
    /// The server answered with an error.
    Server,
    /// The server refused the credentials.
    Auth,
    /// The server is loading its dataset (`LOADING`); try again after a wait.
    BusyLoading,
    /// The reply did not convert to the type asked for.
    Reply,
    /// Pub/sub misuse or an unexpected reply on a subscriber connection.
    PubSub,
    /// A WATCHed key changed; the transaction did not run.
    Watch,
    /// A lock was not acquired in time or not held.
    Lock,
    /// No pooled connection became free in time.
    PoolExhausted,
    /// A script was used in a way that cannot work.
    Script,
    /// A request refused before sending because it cannot work on this connection.
    Unsupported,
    /// Arguments refused before sending.
    InvalidArgument,
    /// An invalid URL or connection setting.
    Url,
    /// A cluster request whose keys are in different slots, refused before sending.
    CrossSlot,
    /// The cluster could not serve the request (no map, no owner, too many redirections).
    Cluster,
}

impl Error {
    /// The kind of failure; see the table on [`Error`](enum@Error).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Connect { .. }
            | Error::ConnectionLost(_)
            | Error::ConnectionBroken
            | Error::Tls(_) => ErrorKind::Connection,
            Error::Timeout => ErrorKind::Timeout,
            Error::Protocol(_) | Error::OutOfStep(_) => ErrorKind::Protocol,
            Error::Unsupported(_) => ErrorKind::Unsupported,
            Error::Server(e) if e.code() == ErrorCode::LOADING => ErrorKind::BusyLoading,
            Error::Server(_) | Error::PipelineCommand { .. } | Error::ExecAbort { .. } => {
                ErrorKind::Server
            }
            Error::Auth(_) => ErrorKind::Auth,
            Error::PoolExhausted(_) => ErrorKind::PoolExhausted,
            Error::Url(_) => ErrorKind::Url,
            Error::Reply { .. } => ErrorKind::Reply,
            Error::PubSub(_) => ErrorKind::PubSub,
            Error::Watch => ErrorKind::Watch,
            Error::Lock(_) => ErrorKind::Lock,
            Error::Script(_) => ErrorKind::Script,
            Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::CrossSlot(_) => ErrorKind::CrossSlot,
            Error::Cluster(_) => ErrorKind::Cluster,
        }
    }

    /// True when the same call, made again later and unchanged, may succeed: connect
    /// failures, lost connections and timeouts (mind that a write may have run; see
    /// [`RetryPolicy`](crate::RetryPolicy)), an exhausted pool, a server still loading, a
    /// watch abort (re-read and retry the transaction), a lock not yet free.
    pub fn is_retryable(&self) -> bool {
        let e = self;
        matches!(
            self.kind(),
            ErrorKind::Connection
                | ErrorKind::Timeout
                | ErrorKind::PoolExhausted
                | ErrorKind::BusyLoading
                | ErrorKind::Watch
        ) && !matches!(e, Error::Tls(_))
            || matches!(e, Error::Lock(crate::LockError::Timeout { .. }))
    }

    /// The server's error code, for [`Error::Server`], [`Error::Auth`],
    /// [`Error::PipelineCommand`] and [`Error::ExecAbort`] (the refused command's code).
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Server(e) => Some(e.code()),
            Error::Auth(e) => Some(e.code()),
            Error::PipelineCommand { error, .. } | Error::ExecAbort { error, .. } => {
                Some(error.code())
            }
            _ => None,
        }
    }

    /// True when the connection it happened on is unusable.
    pub fn is_connection_lost(&self) -> bool {
        matches!(
            self,
            Error::ConnectionLost(_)
                | Error::ConnectionBroken
                | Error::Timeout
                | Error::Protocol(_)
                | Error::OutOfStep(_)
        )
    }

    /// This error with its message saying that the call was tried `attempts` times, for
    /// the variants that carry a message; the variant and kind stay the same, so code
    /// matching on them is unaffected by retries.
    pub(crate) fn after_attempts(self, attempts: u32) -> Error {
        if attempts < 2 {
            return self;
        }
        let note =
            |e: io::Error| io::Error::new(e.kind(), format!("{e} (after {attempts} attempts)"));
        match self {
            Error::Connect { addr, source } => Error::Connect {
                addr,
                source: note(source),
            },
            Error::ConnectionLost(e) => Error::ConnectionLost(note(e)),
            Error::ConnectionBroken => Error::ConnectionLost(io::Error::other(format!(
                "connection is broken by an earlier failure (after {attempts} attempts)"
            ))),
            Error::OutOfStep(m) => Error::OutOfStep(format!("{m} (after {attempts} attempts)")),
            other => other,
        }
    }
}

impl Error {
    /// Names `cmd` in a server error (other errors are returned as they are), so a
    /// message says which command the server refused.
    pub(crate) fn for_command(self, cmd: &redis_commands::Cmd) -> Error {
        match self {
            Error::Server(e) if e.command.is_none() => {
                let name = if cmd.name().is_empty() {
                    cmd.first_word()
                } else {
                    cmd.name().to_owned()
                };
                Error::Server(e.with_command(name))
            }
            other => other,
        }
    }
}

/// An error reply from the server, and the command it answered when known.
///
/// It dereferences to the [`ServerError`], so `e.code()` and `e.message()` work on it
/// directly; its `Display` puts the command first:
///
/// ```
/// use redis_client::{CommandError, ErrorCode, ServerError};
/// let e = CommandError::from(ServerError::new("ERR value is not a valid float"))
///     .with_command("ZADD");
/// assert_eq!(e.code(), ErrorCode::ERR);
/// assert_eq!(e.to_string(), "ZADD: ERR value is not a valid float");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandError {
    command: Option<String>,
    error: ServerError,
}

impl CommandError {
    /// The same error, answering `command` (its name, e.g. `"ZADD"` or `"CONFIG GET"`).
    pub fn with_command(mut self, command: impl Into<String>) -> Self {
        self.command = Some(command.into());
        self
    }

    /// The command the server refused, when known (not for replies on a subscriber
    /// connection, nor for the handshake's).
    pub fn command(&self) -> Option<&str> {
        self.command.as_deref()
    }

    /// The server's error.
    pub fn server_error(&self) -> &ServerError {
        &self.error
    }

    /// The server's error, without the command.
    pub fn into_server_error(self) -> ServerError {
        self.error
    }
}

impl From<ServerError> for CommandError {
    fn from(error: ServerError) -> Self {
        CommandError {
            command: None,
            error,
        }
    }
}

impl std::ops::Deref for CommandError {
    type Target = ServerError;
    fn deref(&self) -> &ServerError {
        &self.error
    }
}

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.command {
            Some(c) => write!(f, "{c}: {}", self.error),
            None => write!(f, "{}", self.error),
        }
    }
}

impl std::error::Error for CommandError {}

impl From<redis_conn::Error> for Error {
    fn from(e: redis_conn::Error) -> Self {
        use redis_conn::Error as C;
        match e {
            C::Connect { addr, source } => Error::Connect { addr, source },
            C::Io(e) => Error::ConnectionLost(e),
            C::Timeout => Error::Timeout,
            C::Protocol(e) => Error::Protocol(e),
            C::Server(e) => Error::Server(e.into()),
            C::Auth(e) => Error::Auth(e),
            C::Broken => Error::ConnectionBroken,
            C::PoolExhausted(d) => Error::PoolExhausted(d),
            C::Url(e) => Error::Url(e),
            C::Tls(e) => Error::Tls(e),
            C::OutOfStep(e) => Error::OutOfStep(e),
            C::Unsupported(e) => Error::Unsupported(e),
            other => Error::ConnectionLost(io::Error::other(other.to_string())),
        }
    }
}

/// The facade's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
