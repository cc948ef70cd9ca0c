//! A bounded async pool of dedicated connections, with the blocking pool's semantics:
//! at most `max_size` open, a checkout waits up to the checkout timeout, every idle
//! connection gets a look before it is handed out (and a `PING` when the health check
//! applies), and the core's verdict decides at hand-back.

use super::transport::Opener;
use super::Connection;
use crate::machine::Verdict;
use crate::observe::{self, Sink};
use crate::{ConnectionInfo, Error, PoolOptions, PoolStats};
use parking_lot::Mutex;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bound on restoring a connection's state when it comes back, when the settings give
/// neither a connect nor a read timeout (the blocking pool's value).
const RESTORE_TIMEOUT: Duration = Duration::from_secs(5);

/// A bounded pool of async connections for requests that need a connection to themselves
/// (blocking commands, WATCH … EXEC, state changes). Cheap to clone; clones share it.
///
/// ```no_run
/// # async fn demo() -> Result<(), redis_conn::Error> {
/// use redis_conn::{aio::Pool, ConnectionInfo, PoolOptions, ReplyTimeout};
/// let pool = Pool::new(ConnectionInfo::tcp("127.0.0.1", 6379), PoolOptions::default());
/// let mut conn = pool.get().await?;
/// conn.command(&["BLPOP", "jobs", "1"]).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Pool {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    opener: Opener,
    options: PoolOptions,
    /// Idle connections; the most recently returned is at the end.
    idle: Mutex<Vec<Connection>>,
    /// One permit per connection that may be open.
    permits: Arc<Semaphore>,
    created: AtomicU64,
    failed: AtomicU64,
    discarded: AtomicU64,
    /// Connections opened to replace discarded ones (reconnects), at most `discarded`.
    replaced: AtomicU64,
    /// Checkouts waiting for a permit.
    waiters: AtomicUsize,
    metrics: Option<Sink>,
}

/// A connection checked out of a [`Pool`]; dereferences to [`Connection`]. Dropping it
/// hands it back: reused if the core's verdict says so, restored (`RESET` and the
/// handshake, on a spawned task) if only its state changed, closed otherwise.
#[derive(Debug)]
pub struct PooledConnection {
    conn: Option<Connection>,
    pool: Pool,
    permit: Option<OwnedSemaphorePermit>,
}

impl Pool {
    /// A pool of connections described by `info`.
    pub fn new(info: ConnectionInfo, options: PoolOptions) -> Pool {
        Self::build(Opener::new(info), options)
    }

    /// As [`Pool::new`], each connection going to the server `connector` picks when it
    /// is opened, and closed at checkout once `connector` says its epoch is over.
    pub fn with_connector(
        info: ConnectionInfo,
        connector: Arc<dyn super::Connector>,
        options: PoolOptions,
    ) -> Pool {
        Self::build(Opener::with_connector(info, connector), options)
    }

    fn build(opener: Opener, options: PoolOptions) -> Pool {
        let permits = Arc::new(Semaphore::new(options.max_size.max(1)));
        Pool {
            shared: Arc::new(Shared {
                metrics: Sink::of(&opener.info().observe),
                replaced: AtomicU64::new(0),
                waiters: AtomicUsize::new(0),
                opener,
                options,
                idle: Mutex::new(Vec::new()),
                permits,
                created: AtomicU64::new(0),
                failed: AtomicU64::new(0),
                discarded: AtomicU64::new(0),
            }),
        }
    }

    /// The settings new connections are opened with.
    pub fn info(&self) -> &ConnectionInfo {
        self.shared.opener.info()
    }

    /// The pool's options.
    pub fn options(&self) -> &PoolOptions {
        &self.shared.options
    }

    /// The connector that picks each new connection's server, if the pool was made with
    /// one ([`Pool::with_connector`]).
    pub fn connector(&self) -> Option<&Arc<dyn super::Connector>> {
        self.shared.opener.connector()
    }

    /// Opens a connection outside the pool (never counted against `max_size`, never
    /// handed back) the way the pool opens its own, so to the server its connector picks
    /// now (after a Sentinel failover, the new primary), with `info`'s settings for the
    /// handshake: for a subscriber that must follow the pool's server.
    ///
    /// Cancellation: dropping the future abandons the connection being opened.
    ///
    /// # Errors
    /// As [`Connection::open`].
    pub async fn open_unpooled(&self, info: &ConnectionInfo) -> Result<Connection, Error> {
        let opener = match self.shared.opener.connector() {
            Some(c) => Opener::with_connector(info.clone(), Arc::clone(c)),
            None => Opener::new(info.clone()),
        };
        Connection::open_until(&opener, None).await
    }

    /// Checks out a connection: the most recently used sound idle one, or a new one if
    /// fewer than `max_size` are open, or else the next one handed back within the
    /// checkout timeout.
    ///
    /// Cancellation: cancel-safe; a connection being opened or checked is dropped.
    ///
    /// # Errors
    /// [`Error::PoolExhausted`] when none is free within the checkout timeout; the errors
    /// of [`Connection::open`].
    pub async fn get(&self) -> Result<PooledConnection, Error> {
        self.get_until(None).await
    }

    /// As [`Pool::get`], giving up at `deadline` (a call's budget) if that comes first
    /// ([`Error::Timeout`] then).
    ///
    /// Cancellation: cancel-safe.
    ///
    /// # Errors
    /// As [`Pool::get`].
    pub async fn get_until(&self, deadline: Option<Instant>) -> Result<PooledConnection, Error> {
        let shared = &*self.shared;
        let timeout = shared.options.checkout_timeout;
        let until = super::now() + timeout;
        let wait = deadline.map_or(until, |d| d.min(until));
        let permit = match Arc::clone(&shared.permits).try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                let start = super::now();
                let waiting = Waiting::new(self);
                let acquire = Arc::clone(&shared.permits).acquire_owned();
                let got = super::until(Some(wait), acquire).await;
                drop(waiting);
                observe::pool_wait(
                    self.info(),
                    super::now().saturating_duration_since(start),
                    matches!(got, Ok(Ok(_))),
                );
                match got {
                    Ok(Ok(p)) => p,
                    // The semaphore is never closed.
                    Ok(Err(_)) => return Err(Error::Broken),
                    Err(()) if wait < until => return Err(Error::Timeout),
                    Err(()) => return Err(Error::PoolExhausted(timeout)),
                }
            }
        };
        loop {
            let Some(mut conn) = shared.idle.lock().pop() else {
                break;
            };
            // Every idle connection gets a look before it is handed out: one the server
            // closed, or one holding bytes nobody asked for, must not carry a request.
            if conn.is_broken() || conn.is_stale() {
                self.discard(conn);
                continue;
            }
            let ping = matches!(shared.options.health_check,
                Some(after) if super::now().saturating_duration_since(conn.last_used()) >= after);
            if ping {
                let info = self.info();
                // Bounded even without a read timeout, so a silent peer cannot hang it.
                let t = info.read_timeout.or(info.connect_timeout);
                if conn.ping(t).await.is_err() {
                    self.discard(conn);
                    continue;
                }
            }
            return Ok(self.guard(conn, permit));
        }
        match Connection::open_until(&shared.opener, deadline).await {
            Ok(conn) => {
                shared.created.fetch_add(1, Ordering::Relaxed);
                let discarded = shared.discarded.load(Ordering::Relaxed);
                let replaced =
                    shared
                        .replaced
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| {
                            (r < discarded).then_some(r + 1)
                        });
                if replaced.is_ok() {
                    observe::reconnect(self.info(), "pool");
                }
                Ok(self.guard(conn, permit))
            }
            Err(e) => {
                shared.failed.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// Closes every idle connection; connections checked out are closed when handed back
    /// if they failed, and reused otherwise.
    pub fn disconnect(&self) {
        let idle = std::mem::take(&mut *self.shared.idle.lock());
        drop(idle);
    }

    /// Looks at every idle connection without waiting and closes those the server closed
    /// or that hold bytes nobody asked for, as the blocking pool's
    /// [`sweep_idle`](crate::ConnectionPool::sweep_idle). It may be called from any thread
    /// while the runtime the connections were made on runs.
    pub fn sweep_idle(&self) {
        let dead: Vec<Connection> = {
            let mut idle = self.shared.idle.lock();
            let mut dead = Vec::new();
            for mut conn in std::mem::take(&mut *idle) {
                if conn.is_broken() || conn.is_stale() {
                    dead.push(conn);
                } else {
                    idle.push(conn);
                }
            }
            dead
        };
        for conn in dead {
            self.discard(conn);
        }
    }

    /// Counters and sizes, as the blocking pool's.
    pub fn stats(&self) -> PoolStats {
        let idle = self.shared.idle.lock().len();
        let max = self.shared.options.max_size.max(1);
        let open_or_free = self.shared.permits.available_permits();
        PoolStats {
            idle,
            in_use: max - open_or_free,
            created: self.shared.created.load(Ordering::Relaxed),
            failed: self.shared.failed.load(Ordering::Relaxed),
            discarded: self.shared.discarded.load(Ordering::Relaxed),
        }
    }

    /// Reports the pool's state to the metrics sink, if one is installed.
    fn report(&self) {
        if let Some(m) = &self.shared.metrics {
            let shared = &*self.shared;
            let in_use = shared.options.max_size.max(1) - shared.permits.available_permits();
            let idle = shared.idle.lock().len();
            m.pool(in_use + idle, idle, shared.waiters.load(Ordering::Relaxed));
        }
    }

    fn guard(&self, conn: Connection, permit: OwnedSemaphorePermit) -> PooledConnection {
        self.report();
        PooledConnection {
            conn: Some(conn),
            pool: self.clone(),
            permit: Some(permit),
        }
    }

    fn discard(&self, conn: Connection) {
        drop(conn);
        self.shared.discarded.fetch_add(1, Ordering::Relaxed);
    }

    fn put_back(&self, mut conn: Connection, permit: OwnedSemaphorePermit) {
        conn.set_call_deadline(None);
        match conn.verdict() {
            Verdict::Reuse => {
                self.shared.idle.lock().push(conn);
                drop(permit);
                self.report();
            }
            Verdict::Restore => {
                // Restoring needs I/O, which a drop cannot wait for: a task does it, and
                // holds the connection's place in the pool until it is done.
                let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                    return self.discard(conn);
                };
                let pool = self.clone();
                runtime.spawn(async move {
                    let info = pool.info().clone();
                    let t = info
                        .connect_timeout
                        .or(info.read_timeout)
                        .unwrap_or(RESTORE_TIMEOUT);
                    let mut sound = conn.restore(&info, Some(t)).await.is_ok();
                    // The restore ran the handshake again: the connector checks it as it
                    // checks a new connection.
                    if let (true, Some(c)) = (sound, pool.connector()) {
                        conn.set_call_deadline(Some(super::now() + t));
                        sound = c.verify(&mut conn).await.is_ok();
                        conn.set_call_deadline(None);
                    }
                    if sound {
                        pool.shared.idle.lock().push(conn);
                    } else {
                        pool.discard(conn);
                    }
                    drop(permit);
                });
            }
            Verdict::Close => self.discard(conn),
        }
    }
}

impl PooledConnection {
    /// Takes the connection out of the pool for good; its place is freed.
    pub fn detach(mut self) -> Connection {
        self.permit.take();
        match self.conn.take() {
            Some(c) => c,
            // Set at checkout, taken only here and in drop.
            None => unreachable!("a pooled connection holds its connection until dropped"),
        }
    }
}

impl Deref for PooledConnection {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        // Set at checkout, taken only by `detach` (which consumes) and drop.
        self.conn.as_ref().expect("connection present until drop")
    }
}

impl DerefMut for PooledConnection {
    fn deref_mut(&mut self) -> &mut Connection {
        self.conn.as_mut().expect("connection present until drop")
    }
}

impl Drop for PooledConnection {
    fn drop(&mut self) {
        if let (Some(conn), Some(permit)) = (self.conn.take(), self.permit.take()) {
            if std::thread::panicking() {
                self.pool.discard(conn);
            } else {
                self.pool.put_back(conn, permit);
            }
        }
    }
}

/// Counts a checkout among the pool's waiters while it lives, dropped future included.
struct Waiting<'a>(&'a Pool);

impl<'a> Waiting<'a> {
    fn new(pool: &'a Pool) -> Self {
        pool.shared.waiters.fetch_add(1, Ordering::Relaxed);
        Waiting(pool)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.shared.waiters.fetch_sub(1, Ordering::Relaxed);
    }
}
