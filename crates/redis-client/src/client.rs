//! The client: a handle on a connection pool that runs commands.

use crate::{Error, Result};
use redis_commands::{Block, Callbacks, Cmd, Executor, FromValue, FromValueError, ToArgs, Typed};
use redis_conn::{
    Connection, ConnectionInfo, ConnectionPool, PoolOptions, PooledConnection, ReplyTimeout,
};
use resp_proto::Value;
use std::sync::Arc;
use std::time::Duration;

/// Extra wait granted to a blocking command beyond its own server-side timeout, for the
/// round trip and server scheduling.
const BLOCKING_MARGIN: Duration = Duration::from_secs(1);

/// A Redis client: cheap to clone, safe to share between threads.
///
/// Each command borrows a connection from the client's pool for the length of one request
/// and returns it at once, as the reference client does. Every command is a method
/// (from the traits in [`prelude`](crate::prelude)) returning its natural Rust type.
///
/// ```no_run
/// use redis_client::prelude::*;
/// use redis_client::Redis;
///
/// let r = Redis::open("redis://localhost:6379/0")?;
/// r.set("foo", "bar")?;
/// assert_eq!(r.get("foo")?.as_deref(), Some(&b"bar"[..]));
/// # Ok::<(), redis_client::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Redis {
    pool: ConnectionPool,
    /// Per-client response callback overrides; clones made after a change share it.
    callbacks: Arc<Callbacks>,
}

/// The reference client's name for the same type.
pub type StrictRedis = Redis;

impl Redis {
    /// A client for the server at `url` (see [`ConnectionInfo`] for the forms), with its own
    /// pool. No connection is opened until the first command.
    ///
    /// # Errors
    /// [`Error::Url`] when the URL is invalid.
    pub fn open(url: &str) -> Result<Redis> {
        Ok(Self::from_info(url.parse()?))
    }

    /// The same as [`Redis::open`], under the reference client's name.
    ///
    /// # Errors
    /// [`Error::Url`] when the URL is invalid.
    pub fn from_url(url: &str) -> Result<Redis> {
        Self::open(url)
    }

    /// A client with its own pool of connections described by `info`.
    pub fn from_info(info: ConnectionInfo) -> Redis {
        Self::from_pool(ConnectionPool::with_options(info, PoolOptions::default()))
    }

    /// A client sharing `pool` with any other client built from it.
    pub fn from_pool(pool: ConnectionPool) -> Redis {
        Redis {
            pool,
            callbacks: Arc::new(Callbacks::new()),
        }
    }

    /// Replaces how replies to `command` are interpreted, for this client and clones made
    /// from it afterwards (the reference client's `set_response_callback`).
    ///
    /// The callback sees the raw reply and the command (so it can read options such as
    /// `WITHSCORES`). It applies to [`execute_command`](Redis::execute_command) and to the
    /// typed method, whose result is then converted from the callback's output.
    ///
    /// ```no_run
    /// # use redis_client::{Redis, Value, prelude::*};
    /// let mut r = Redis::open("redis://localhost")?;
    /// // Make GET of a missing key read as an empty string instead of nil.
    /// r.set_response_callback("GET", |v, _cmd| Ok(if v.is_nil() { Value::BulkString("".into()) } else { v }));
    /// assert_eq!(r.get("missing")?.as_deref(), Some(&b""[..]));
    /// # Ok::<(), redis_client::Error>(())
    /// ```
    pub fn set_response_callback<F>(&mut self, command: &str, callback: F)
    where
        F: Fn(Value, &Cmd) -> Result<Value, FromValueError> + Send + Sync + 'static,
    {
        Arc::make_mut(&mut self.callbacks).set(command, callback);
    }

    /// The pool this client takes connections from.
    pub fn pool(&self) -> &ConnectionPool {
        &self.pool
    }

    /// Checks out a connection for direct use; it returns to the pool when dropped.
    ///
    /// For state that must not reach other callers (`SELECT`, and later `MONITOR` or
    /// `CLIENT TRACKING`) use a dedicated connection instead:
    /// [`Connection::open`](redis_conn::Connection::open), or
    /// [`detach`](PooledConnection::detach) this one from the pool. A pooled connection
    /// that switched databases is closed rather than returned.
    ///
    /// # Errors
    /// Pool and connect errors.
    pub fn get_connection(&self) -> Result<PooledConnection> {
        Ok(self.pool.get()?)
    }

    /// Runs any command given as its arguments and returns the raw reply.
    ///
    /// ```no_run
    /// # let r = redis_client::Redis::open("redis://localhost")?;
    /// let reply = r.execute_command(("OBJECT", "ENCODING", "foo"))?;
    /// # Ok::<(), redis_client::Error>(())
    /// ```
    ///
    /// # Errors
    /// Connection errors, or [`Error::Server`] when the server answers with an error.
    pub fn execute_command<A: ToArgs>(&self, args: A) -> Result<Value> {
        let cmd = Cmd::from_args(args);
        let v = self.request(&cmd)?;
        let v = match self.callbacks.get(&cmd) {
            Some(cb) => cb(v, &cmd),
            None => Callbacks::defaults().apply(&cmd, v),
        };
        v.map_err(|source| Error::Reply {
            command: cmd.first_word(),
            source,
        })
    }

    fn request(&self, cmd: &Cmd) -> Result<Value> {
        let mut conn = self.pool.get()?;
        send_and_read(&mut conn, cmd)
    }
}

/// Sends one command and reads its reply, waiting past the read timeout for blocking ones.
pub(crate) fn send_and_read(conn: &mut Connection, cmd: &Cmd) -> Result<Value> {
    let mut header = [0u8; 24];
    let header = cmd.header(&mut header);
    conn.send(&[header, cmd.body()], 1)?;
    let timeout = reply_timeout(conn, cmd);
    match conn.read_reply_timeout(timeout)? {
        Value::Error(e) => Err(redis_conn::Error::from_server_error(e).into()),
        v => Ok(v),
    }
}

/// A blocking command may legitimately hold its reply back for its own timeout.
pub(crate) fn reply_timeout(conn: &Connection, cmd: &Cmd) -> ReplyTimeout {
    match (cmd.blocking_timeout(), conn.read_timeout()) {
        (Block::No, _) | (_, None) => ReplyTimeout::Default,
        (Block::Forever, Some(_)) => ReplyTimeout::Exactly(None),
        (Block::For(wait), Some(read)) => {
            ReplyTimeout::Exactly(Some(read.max(wait + BLOCKING_MARGIN)))
        }
    }
}

/// Converts a reply, naming the command in the error.
pub(crate) fn convert<T: FromValue>(cmd: &Cmd, v: Value) -> Result<T> {
    T::from_value(v).map_err(|source| Error::Reply {
        command: cmd.first_word(),
        source,
    })
}

impl Executor for &Redis {
    type Output<T> = Result<T>;

    fn run<T: FromValue>(self, typed: Typed<T>) -> Result<T> {
        let v = self.request(&typed.cmd)?;
        let v = match self.callbacks.get(&typed.cmd) {
            Some(cb) => cb(v, &typed.cmd).map_err(|source| Error::Reply {
                command: typed.cmd.first_word(),
                source,
            })?,
            None => v,
        };
        convert(&typed.cmd, v)
    }
}
