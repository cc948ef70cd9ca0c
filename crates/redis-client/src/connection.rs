//! One connection with every command as a method: checked out of the client's pool, or
//! dedicated (outside the pool) for what must not be shared, such as `SELECT`.

use crate::client::send_and_read;
use crate::{Redis, Result};
use redis_commands::{Cmd, Executor, FromValue, ToArgs, Typed};
use redis_conn::PooledConnection;
use resp_proto::Value;

/// A single connection that runs commands directly, without a checkout per command.
///
/// From [`Redis::get_connection`] (borrowed from the pool, returned when dropped) or
/// [`Redis::dedicated_connection`] (its own, closed when dropped).
///
/// ```no_run
/// use redis_client::{prelude::*, Redis};
/// let r = Redis::open("redis://localhost/0")?;
/// let mut conn = r.dedicated_connection()?;
/// conn.select(2)?;
/// conn.set("in-db-2", "yes")?;
/// # Ok::<(), redis_client::Error>(())
/// ```
#[derive(Debug)]
#[must_use = "dropping the connection returns it to the pool (or closes it) at once"]
pub struct Connection {
    inner: Inner,
    client: Redis,
}

#[derive(Debug)]
enum Inner {
    Pooled(PooledConnection),
    // Boxed as the pooled one is, so a `Connection` stays small to move.
    Dedicated(Box<redis_conn::Connection>),
}

impl Redis {
    /// Checks a connection out of the pool; it goes back when dropped. A connection whose
    /// state a command changed ([`Connection::select`], `CLIENT TRACKING` …) is put back
    /// in the configured state first (`RESET` and the handshake), or closed if that
    /// fails; a failed one is closed.
    ///
    /// # Errors
    /// Pool and connect errors.
    pub fn get_connection(&self) -> Result<Connection> {
        Ok(Connection {
            inner: Inner::Pooled(self.checkout()?),
            client: self.clone(),
        })
    }

    /// Opens a connection of its own, outside the pool, with the pool's settings and to
    /// the server the pool would open one to now (for a Sentinel client, the current
    /// primary).
    ///
    /// # Errors
    /// Connect errors.
    pub fn dedicated_connection(&self) -> Result<Connection> {
        let conn = self.pool().open_unpooled(self.pool().info())?;
        Ok(Connection {
            inner: Inner::Dedicated(Box::new(conn)),
            client: self.clone(),
        })
    }
}

impl Connection {
    /// Switches to database `db` (`SELECT`). A pooled connection is switched back to the
    /// configured database before another caller gets it.
    ///
    /// # Errors
    /// Connection and server errors.
    pub fn select(&mut self, db: i64) -> Result<()> {
        self.raw().select(db)?;
        Ok(())
    }

    /// Runs any command given as its arguments and returns the reply after the default
    /// response callback (or the client's override).
    ///
    /// # Errors
    /// Connection errors, or [`Error::Server`](crate::Error::Server).
    pub fn execute_command<A: ToArgs>(&mut self, args: A) -> Result<Value> {
        let cmd = Cmd::from_args(args);
        let v = self.send(&cmd)?;
        self.client
            .dynamic_reply(&cmd, v)
            .map_err(|source| crate::Error::Reply {
                command: cmd.first_word(),
                source,
            })
    }

    /// Runs a command and converts its reply to `U`, as [`Redis::query`] does.
    ///
    /// # Errors
    /// As [`Redis::query`].
    pub fn query<U: FromValue, T>(&mut self, cmd: Typed<T>) -> Result<U> {
        let v = self.send(&cmd.cmd)?;
        self.client.typed_reply(&cmd.cmd, v)
    }

    /// The connection underneath, for sending raw bytes or reading pushes.
    pub fn raw(&mut self) -> &mut redis_conn::Connection {
        match &mut self.inner {
            Inner::Pooled(c) => c,
            Inner::Dedicated(c) => c,
        }
    }

    /// Sends `cmd` and reads its reply, observed as the client's commands are.
    fn send(&mut self, cmd: &Cmd) -> Result<Value> {
        let conn: &mut redis_conn::Connection = match &mut self.inner {
            Inner::Pooled(c) => c,
            Inner::Dedicated(c) => c,
        };
        send_and_read(self.client.pool().info(), conn, cmd)
    }

    /// True for a connection borrowed from the pool.
    pub fn is_pooled(&self) -> bool {
        matches!(self.inner, Inner::Pooled(_))
    }
}

impl Executor for &mut Connection {
    type Mode = redis_commands::BinaryMode;
    type Output<T> = Result<T>;

    fn run<T: FromValue>(self, typed: Typed<T>) -> Result<T> {
        let v = self.send(&typed.cmd)?;
        self.client.typed_reply(&typed.cmd, v)
    }
}
