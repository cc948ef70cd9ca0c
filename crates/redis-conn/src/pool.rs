//! A thread-safe, bounded pool of connections to one server.

use crate::{Connection, ConnectionInfo, Connector, DefaultConnector, Error};
use parking_lot::{Condvar, Mutex};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Pool settings.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolOptions {
    /// Most connections open at once, idle and in use together. Default 16.
    pub max_size: usize,
    /// How long a checkout waits for a connection to be free before failing with
    /// [`Error::PoolExhausted`]. Default 5 s.
    pub checkout_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            max_size: 16,
            checkout_timeout: Duration::from_secs(5),
        }
    }
}

impl PoolOptions {
    /// Sets the maximum number of connections.
    pub fn with_max_size(mut self, max_size: usize) -> Self {
        self.max_size = max_size.max(1);
        self
    }

    /// Sets the checkout timeout.
    pub fn with_checkout_timeout(mut self, timeout: Duration) -> Self {
        self.checkout_timeout = timeout;
        self
    }
}

/// A pool of connections, cheap to clone and share between threads (the reference client's
/// `ConnectionPool`, blocking like its `BlockingConnectionPool`).
///
/// ```no_run
/// use redis_conn::{ConnectionInfo, ConnectionPool};
/// let pool = ConnectionPool::new(ConnectionInfo::tcp("127.0.0.1", 6379));
/// let mut conn = pool.get()?;
/// conn.command(&["PING"])?;
/// # Ok::<(), redis_conn::Error>(())
/// ```
#[derive(Clone)]
pub struct ConnectionPool {
    shared: Arc<Shared>,
}

struct Shared {
    connector: Box<dyn Connector>,
    options: PoolOptions,
    state: Mutex<State>,
    freed: Condvar,
}

struct State {
    /// Idle connections; the most recently returned is at the end.
    idle: Vec<Connection>,
    /// Connections open: idle plus checked out.
    open: usize,
}

impl std::fmt::Debug for ConnectionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.shared.state.lock();
        f.debug_struct("ConnectionPool")
            .field("info", self.shared.connector.info())
            .field("options", &self.shared.options)
            .field("idle", &state.idle.len())
            .field("open", &state.open)
            .finish()
    }
}

impl ConnectionPool {
    /// A pool of built-in TCP or Unix connections described by `info`, default options.
    pub fn new(info: ConnectionInfo) -> Self {
        Self::with_options(info, PoolOptions::default())
    }

    /// A pool of built-in connections with `options`.
    pub fn with_options(info: ConnectionInfo, options: PoolOptions) -> Self {
        Self::with_connector(DefaultConnector::new(info), options)
    }

    /// A pool whose connections come from a custom `connector`.
    pub fn with_connector(connector: impl Connector, options: PoolOptions) -> Self {
        ConnectionPool {
            shared: Arc::new(Shared {
                connector: Box::new(connector),
                options,
                state: Mutex::new(State {
                    idle: Vec::new(),
                    open: 0,
                }),
                freed: Condvar::new(),
            }),
        }
    }

    /// The settings new connections are opened with.
    pub fn info(&self) -> &ConnectionInfo {
        self.shared.connector.info()
    }

    /// The pool's options.
    pub fn options(&self) -> &PoolOptions {
        &self.shared.options
    }

    /// Checks out a connection: the most recently used idle one, or a new one if fewer than
    /// `max_size` are open, or else the next one returned within the checkout timeout.
    ///
    /// # Errors
    /// [`Error::PoolExhausted`] after the checkout timeout; connect errors when a new
    /// connection cannot be opened.
    pub fn get(&self) -> Result<PooledConnection, Error> {
        let shared = &self.shared;
        let deadline = Instant::now() + shared.options.checkout_timeout;
        let mut state = shared.state.lock();
        loop {
            if let Some(conn) = state.idle.pop() {
                return Ok(self.guard(conn));
            }
            if state.open < shared.options.max_size {
                state.open += 1;
                drop(state);
                return match Connection::open_with(&*shared.connector) {
                    Ok(conn) => Ok(self.guard(conn)),
                    Err(e) => {
                        self.release_slot();
                        Err(e)
                    }
                };
            }
            if shared.freed.wait_until(&mut state, deadline).timed_out() {
                return Err(Error::PoolExhausted(shared.options.checkout_timeout));
            }
        }
    }

    /// Closes every idle connection; connections in use are closed when they come back
    /// only if they are broken, so this is safe to call at any time.
    pub fn disconnect(&self) {
        let mut state = self.shared.state.lock();
        let closed = state.idle.len();
        state.idle.clear();
        state.open -= closed;
        drop(state);
        self.shared.freed.notify_all();
    }

    fn guard(&self, conn: Connection) -> PooledConnection {
        PooledConnection {
            conn: Some(conn),
            pool: self.clone(),
        }
    }

    fn release_slot(&self) {
        self.shared.state.lock().open -= 1;
        self.shared.freed.notify_one();
    }

    fn put_back(&self, conn: Connection) {
        // Only a connection that owes no replies and never failed may serve another caller.
        if conn.is_broken() || conn.pending_replies() > 0 || std::thread::panicking() {
            drop(conn);
            self.release_slot();
            return;
        }
        self.shared.state.lock().idle.push(conn);
        self.shared.freed.notify_one();
    }
}

/// A connection checked out of a [`ConnectionPool`]; it goes back when dropped, unless it
/// is broken, owes replies, or is dropped during a panic, in which case it is closed.
pub struct PooledConnection {
    conn: Option<Connection>,
    pool: ConnectionPool,
}

impl std::fmt::Debug for PooledConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PooledConnection").field(&self.conn).finish()
    }
}

impl PooledConnection {
    /// Takes the connection out of the pool's accounting for good: it will not come back.
    pub fn detach(mut self) -> Connection {
        let conn = self.conn.take().expect("present until drop");
        self.pool.release_slot();
        conn
    }
}

impl Deref for PooledConnection {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        // The option is only emptied by `detach` and `drop`, which consume the guard.
        self.conn.as_ref().expect("present until drop")
    }
}

impl DerefMut for PooledConnection {
    fn deref_mut(&mut self) -> &mut Connection {
        self.conn.as_mut().expect("present until drop")
    }
}

impl Drop for PooledConnection {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.put_back(conn);
        }
    }
}
