//! A thread-safe, bounded pool of connections to one server.

use crate::observe::{self, Sink};
use crate::{
    Connection, ConnectionInfo, Connector, DefaultConnector, Error, Readiness, Transport, Verdict,
};
use parking_lot::{Condvar, Mutex};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An idle connection whose transport cannot look at its stream is PINGed before use once
/// it has been idle this long: long enough that a busy pool pays nothing, short enough
/// that a server restart or idle timeout is found before a caller meets it.
const PING_UNSEEN_AFTER: Duration = Duration::from_secs(1);

/// Bound on restoring a connection's state when it comes back, when the settings give
/// neither a connect nor a read timeout.
const RESTORE_TIMEOUT: Duration = Duration::from_secs(5);

/// Pool settings, built from [`PoolOptions::default`] with the `with_*` setters.
///
/// ```
/// use redis_conn::PoolOptions;
/// use std::time::Duration;
/// let options = PoolOptions::default()
///     .with_max_size(8)
///     .with_checkout_timeout(Duration::from_millis(500))
///     .with_health_check(Some(Duration::from_secs(30)));
/// assert_eq!(options.max_size, 8);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolOptions {
    /// Most connections open at once, idle and in use together. Default 16.
    pub max_size: usize,
    /// How long a checkout waits for a connection to be free before failing with
    /// [`Error::PoolExhausted`]. Default 5 s.
    pub checkout_timeout: Duration,
    /// Before handing out a connection idle for at least this long, `PING` it, and replace
    /// it if that fails. `None` (the default) never checks; `Some(Duration::ZERO)` checks
    /// at every checkout.
    pub health_check: Option<Duration>,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            max_size: 16,
            checkout_timeout: Duration::from_secs(5),
            health_check: None,
        }
    }
}

impl PoolOptions {
    /// Sets the maximum number of connections (at least 1).
    pub fn with_max_size(mut self, max_size: usize) -> Self {
        self.max_size = max_size.max(1);
        self
    }

    /// Sets the checkout timeout.
    pub fn with_checkout_timeout(mut self, timeout: Duration) -> Self {
        self.checkout_timeout = timeout;
        self
    }

    /// Sets the idle time after which a connection is checked with `PING` before use.
    pub fn with_health_check(mut self, idle: Option<Duration>) -> Self {
        self.health_check = idle;
        self
    }
}

/// A snapshot of a pool's counters, from [`ConnectionPool::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Connections open and waiting in the pool.
    pub idle: usize,
    /// Connections checked out (or being opened for a checkout).
    pub in_use: usize,
    /// Connections opened since the pool was made.
    pub created: u64,
    /// Attempts to open a connection that failed (connect or handshake).
    pub failed: u64,
    /// Connections closed because they could not be trusted any more: broken, owing
    /// replies, on a different database, dropped during a panic, or failing the health
    /// check. Connections closed by [`ConnectionPool::disconnect`] are not counted.
    pub discarded: u64,
}

/// A pool of connections, cheap to clone and share between threads (the reference client's
/// `ConnectionPool`, passed around as its `connection_pool=`).
///
/// # Blocking
///
/// The pool behaves as the reference client's `BlockingConnectionPool`: at most
/// [`PoolOptions::max_size`] connections are open; a checkout when all are in use waits
/// until one is returned or closed, up to [`PoolOptions::checkout_timeout`], and then fails
/// with [`Error::PoolExhausted`]. Connections are opened lazily, and the most recently
/// returned idle connection is reused first, so a quiet pool keeps few sockets busy.
///
/// # Failures
///
/// A connection comes back to the pool only if the connection core finds it in step (no
/// reply owed, no unread byte, never failed) and in the configured state, or can put that
/// state back with `RESET` and the handshake; a guard dropped during a panic closes it.
/// Otherwise it is closed and its place freed.
///
/// Every checkout looks at an idle connection without blocking (one system call for TCP,
/// Unix and TLS; see [`Transport::readiness`](crate::Transport::readiness)): one the
/// server closed (restart, idle timeout, `CLIENT KILL`) or that received bytes nobody
/// asked for is replaced before a request is written to it. With
/// [`PoolOptions::health_check`] a connection idle that long is also `PING`ed.
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
    connector: Arc<dyn Connector>,
    options: PoolOptions,
    state: Mutex<State>,
    freed: Condvar,
    created: AtomicU64,
    failed: AtomicU64,
    discarded: AtomicU64,
    /// Connections opened to replace discarded ones (reconnects), at most `discarded`.
    replaced: AtomicU64,
    metrics: Option<Sink>,
}

struct State {
    /// Idle connections; the most recently returned is at the end. Boxed, so lending and
    /// returning one moves a pointer, not the whole connection (some hundreds of bytes).
    #[allow(clippy::vec_box)] // the box is what the guard holds: moved, never copied
    idle: Vec<Box<Connection>>,
    /// Connections open: idle plus checked out plus being opened.
    open: usize,
    /// Bumped by `disconnect`: a connection checked out before does not come back.
    generation: u64,
    /// Checkouts waiting for a connection to be freed.
    waiters: usize,
}

/// Idle slots reserved up front, so returning a connection does not allocate.
const PREALLOCATED_IDLE: usize = 256;

impl std::fmt::Debug for ConnectionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionPool")
            .field("info", self.shared.connector.info())
            .field("options", &self.shared.options)
            .field("stats", &self.stats())
            .finish()
    }
}

/// A connector's way to its server with other handshake settings.
struct Settings {
    inner: Arc<dyn Connector>,
    info: ConnectionInfo,
}

impl Connector for Settings {
    fn info(&self) -> &ConnectionInfo {
        &self.info
    }

    fn connect(&self, deadline: Option<Instant>) -> Result<Box<dyn Transport>, Error> {
        self.inner.connect(deadline)
    }

    fn verify(&self, conn: &mut Connection) -> Result<(), Error> {
        self.inner.verify(conn)
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
        let idle = Vec::with_capacity(options.max_size.min(PREALLOCATED_IDLE));
        ConnectionPool {
            shared: Arc::new(Shared {
                options,
                state: Mutex::new(State {
                    idle,
                    open: 0,
                    generation: 0,
                    waiters: 0,
                }),
                freed: Condvar::new(),
                created: AtomicU64::new(0),
                failed: AtomicU64::new(0),
                discarded: AtomicU64::new(0),
                replaced: AtomicU64::new(0),
                metrics: Sink::of(&connector.info().observe),
                connector: Arc::new(connector),
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

    /// The connector new connections are opened through, for another pool or connection
    /// that must reach the server this pool's would (after a Sentinel failover, the new
    /// primary).
    pub fn connector(&self) -> &Arc<dyn Connector> {
        &self.shared.connector
    }

    /// Opens a connection outside the pool (never counted against `max_size`, never
    /// handed back) through the pool's connector, so to the server the connector picks
    /// now (after a Sentinel failover, the new primary), with `info`'s settings for the
    /// handshake: for a subscriber or a dedicated connection that must follow the pool's
    /// server.
    ///
    /// # Errors
    /// As [`Connection::open`].
    pub fn open_unpooled(&self, info: &ConnectionInfo) -> Result<Connection, Error> {
        let connector = Settings {
            inner: Arc::clone(&self.shared.connector),
            info: info.clone(),
        };
        Connection::open_until(&connector, None)
    }

    /// Checks out a connection: the most recently used idle one, or a new one if fewer than
    /// `max_size` are open, or else the next one returned within the checkout timeout.
    ///
    /// Cost: reusing an idle connection takes the pool's lock once (twice with a metrics hook,
    /// to report the pool's state) and does not allocate
    /// (plus a `PING` round trip when the health check applies).
    ///
    /// # Errors
    /// [`Error::PoolExhausted`] after the checkout timeout; connect, handshake and
    /// authentication errors when a new connection cannot be opened.
    pub fn get(&self) -> Result<PooledConnection, Error> {
        self.get_until(None)
    }

    /// As [`ConnectionPool::get`], giving up at `deadline` if it comes before the checkout
    /// or connect timeout ends: the part of one call's budget a checkout may use.
    ///
    /// # Errors
    /// As [`ConnectionPool::get`]; [`Error::Timeout`] when `deadline` passes first.
    pub fn get_until(&self, deadline: Option<Instant>) -> Result<PooledConnection, Error> {
        let mut waited = None;
        let result = self.checkout(deadline, &mut waited);
        if let Some(start) = waited {
            observe::pool_wait(self.info(), crate::clock::since(start), result.is_ok());
        }
        if self.shared.metrics.is_some() {
            self.report(&self.shared.state.lock());
        }
        result
    }

    /// Reports the pool's state to the metrics sink.
    fn report(&self, state: &State) {
        if let Some(m) = &self.shared.metrics {
            m.pool(state.open, state.idle.len(), state.waiters);
        }
    }

    /// A checkout; `waited` is set to when it started waiting, if it had to.
    fn checkout(
        &self,
        deadline: Option<Instant>,
        waited: &mut Option<Instant>,
    ) -> Result<PooledConnection, Error> {
        let shared = &*self.shared;
        // The clock is read only when the checkout has to wait.
        let mut wait_until = None;
        let mut state = shared.state.lock();
        loop {
            if let Some(mut conn) = state.idle.pop() {
                let generation = state.generation;
                drop(state);
                // Every idle connection gets a non-blocking look (one system call) before
                // it is handed out, however briefly it was idle: a connection the server
                // closed, or one holding bytes nobody asked for, must not carry a request.
                let look = if conn.is_broken() {
                    Readiness::Closed
                } else {
                    conn.look()
                };
                if matches!(look, Readiness::Readable | Readiness::Closed) {
                    conn.mark_broken();
                }
                // A transport that cannot look (`Readiness::Unknown`) gets a PING instead
                // once the connection has been idle a while, so a connection the server
                // closed meanwhile is found without the caller's help.
                let idle = || crate::clock::since(conn.last_used());
                let ping = !conn.is_broken()
                    && (matches!(shared.options.health_check, Some(after) if idle() >= after)
                        || (look == Readiness::Unknown && idle() >= PING_UNSEEN_AFTER));
                let usable = if ping {
                    self.check(conn, deadline)
                } else {
                    self.keep_if_sound(conn)
                };
                match usable {
                    Some(conn) => return Ok(self.guard(conn, generation)),
                    None => {
                        // Its place is free again: try the next idle one, or open anew.
                        state = shared.state.lock();
                        state.open -= 1;
                        continue;
                    }
                }
            }
            if state.open < shared.options.max_size {
                state.open += 1;
                let generation = state.generation;
                drop(state);
                return match Connection::open_until(&*shared.connector, deadline) {
                    Ok(conn) => {
                        shared.created.fetch_add(1, Ordering::Relaxed);
                        self.count_reconnect();
                        Ok(self.guard(Box::new(conn), generation))
                    }
                    Err(e) => {
                        shared.failed.fetch_add(1, Ordering::Relaxed);
                        self.release_slot();
                        Err(e)
                    }
                };
            }
            let timeout = shared.options.checkout_timeout;
            let until = *wait_until.get_or_insert_with(|| {
                let now = crate::clock::now();
                *waited = Some(now);
                now + timeout
            });
            let until_budget = deadline.map_or(until, |d| d.min(until));
            state.waiters += 1;
            let timed_out = shared
                .freed
                .wait_until(&mut state, until_budget)
                .timed_out();
            state.waiters -= 1;
            if timed_out {
                // A place may have been freed just at the deadline; take it if so.
                if !state.idle.is_empty() || state.open < shared.options.max_size {
                    continue;
                }
                if until_budget < until {
                    return Err(Error::Timeout);
                }
                return Err(Error::PoolExhausted(timeout));
            }
        }
    }

    /// Reports a reconnect when a new connection takes the place of a discarded one.
    fn count_reconnect(&self) {
        let shared = &*self.shared;
        let discarded = shared.discarded.load(Ordering::Relaxed);
        let replaced = shared
            .replaced
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| {
                (r < discarded).then_some(r + 1)
            });
        if replaced.is_ok() {
            observe::reconnect(self.info(), "pool");
        }
    }

    /// `conn` unless it is broken; a broken one is closed and counted.
    fn keep_if_sound(&self, conn: Box<Connection>) -> Option<Box<Connection>> {
        if conn.is_broken() {
            drop(conn);
            self.shared.discarded.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(conn)
    }

    /// Health-checks `conn` with `PING`; `None` (the connection closed and counted) if it
    /// fails.
    fn check(
        &self,
        mut conn: Box<Connection>,
        deadline: Option<Instant>,
    ) -> Option<Box<Connection>> {
        if !conn.is_broken() {
            let info = self.info();
            // Bounded even without a read timeout, so a silent peer cannot hang a checkout,
            // and by the call's budget.
            let timeout = info.read_timeout.or(info.connect_timeout);
            conn.set_call_deadline(deadline);
            let alive = conn.ping(timeout).is_ok();
            conn.set_call_deadline(None);
            if alive {
                return Some(conn);
            }
        }
        drop(conn);
        self.shared.discarded.fetch_add(1, Ordering::Relaxed);
        None
    }

    /// Closes every idle connection now; connections in use are closed when they come
    /// back instead of being reused. Later checkouts open new connections.
    pub fn disconnect(&self) {
        let idle = {
            let mut state = self.shared.state.lock();
            let capacity = state.idle.capacity();
            let idle = std::mem::replace(&mut state.idle, Vec::with_capacity(capacity));
            state.open -= idle.len();
            state.generation += 1;
            idle
        };
        // Sockets are closed outside the lock.
        drop(idle);
        self.shared.freed.notify_all();
    }

    /// Looks at every idle connection without waiting (one system call each) and closes
    /// those the server closed or that hold bytes nobody asked for. A checkout looks
    /// anyway; this finds them sooner, for a user that must learn of a closed connection
    /// even while nobody uses it (a client-side cache: the server stops reporting changes
    /// to the keys a connection read once that connection is gone).
    pub fn sweep_idle(&self) {
        let dead: Vec<Box<Connection>> = {
            let mut state = self.shared.state.lock();
            let idle = std::mem::take(&mut state.idle);
            let (mut live, mut dead) = (Vec::with_capacity(idle.len()), Vec::new());
            for mut conn in idle {
                let gone = conn.is_broken()
                    || matches!(conn.look(), Readiness::Readable | Readiness::Closed);
                if gone {
                    dead.push(conn);
                } else {
                    live.push(conn);
                }
            }
            state.idle = live;
            state.open -= dead.len();
            dead
        };
        if !dead.is_empty() {
            self.shared
                .discarded
                .fetch_add(dead.len() as u64, Ordering::Relaxed);
            // Closed outside the lock.
            drop(dead);
            self.shared.freed.notify_all();
        }
    }

    /// The pool's counters.
    pub fn stats(&self) -> PoolStats {
        let (idle, open) = {
            let state = self.shared.state.lock();
            (state.idle.len(), state.open)
        };
        PoolStats {
            idle,
            in_use: open - idle,
            created: self.shared.created.load(Ordering::Relaxed),
            failed: self.shared.failed.load(Ordering::Relaxed),
            discarded: self.shared.discarded.load(Ordering::Relaxed),
        }
    }

    fn guard(&self, conn: Box<Connection>, generation: u64) -> PooledConnection {
        PooledConnection {
            conn: Some(conn),
            pool: self.clone(),
            generation,
        }
    }

    fn release_slot(&self) {
        self.shared.state.lock().open -= 1;
        self.shared.freed.notify_one();
    }

    fn put_back(&self, mut conn: Box<Connection>, generation: u64) {
        // A restore happens before the caller's call returns: it gets its own bound, and
        // no more than what is left of the call's budget (a connection that cannot be
        // restored in time is closed).
        let call_deadline = conn.call_deadline();
        conn.set_call_deadline(None);
        // Only a connection the core finds in step, quiet and in the configured state
        // may serve another caller; one whose state a command changed is restored first.
        let trusted = !std::thread::panicking()
            && match conn.verdict() {
                Verdict::Reuse => true,
                Verdict::Restore => {
                    let info = self.info();
                    let own = info
                        .connect_timeout
                        .or(info.read_timeout)
                        .unwrap_or(RESTORE_TIMEOUT);
                    let now = crate::clock::now();
                    let timeout =
                        call_deadline.map_or(own, |d| own.min(d.saturating_duration_since(now)));
                    // The restore ran the handshake again (a new `CLIENT TRACKING`
                    // registration among it): the connector checks the result as it checks
                    // a new connection.
                    !timeout.is_zero() && conn.restore(info, Some(timeout)).is_ok() && {
                        conn.set_call_deadline(Some(now + timeout));
                        let verified = self.shared.connector.verify(&mut conn).is_ok();
                        conn.set_call_deadline(None);
                        verified
                    }
                }
                Verdict::Close => false,
            };
        if !trusted {
            drop(conn);
            self.shared.discarded.fetch_add(1, Ordering::Relaxed);
            self.release_slot();
            return;
        }
        let mut state = self.shared.state.lock();
        if state.generation != generation {
            // Checked out before `disconnect`: close it.
            state.open -= 1;
            drop(state);
            drop(conn);
        } else {
            state.idle.push(conn);
            self.report(&state);
            drop(state);
        }
        self.shared.freed.notify_one();
    }
}

/// A connection checked out of a [`ConnectionPool`]; it goes back when dropped. What
/// happens then is the connection core's [`Verdict`]: reused as it is; restored (`RESET`
/// and the handshake) when a command changed its state (database, MULTI, WATCH,
/// `CLIENT TRACKING` …); closed when it is broken, owes replies, holds unread bytes, is
/// dropped during a panic, or cannot be restored.
pub struct PooledConnection {
    conn: Option<Box<Connection>>,
    pool: ConnectionPool,
    generation: u64,
}

impl std::fmt::Debug for PooledConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PooledConnection").field(&self.conn).finish()
    }
}

impl PooledConnection {
    /// Takes the connection out of the pool's accounting for good: it will not come back,
    /// and its place in the pool is freed. The way to turn a pooled connection into a
    /// dedicated one.
    pub fn detach(mut self) -> Connection {
        // The option is only emptied by `detach` and `drop`, which consume the guard.
        let conn = self.conn.take().expect("present until drop");
        self.pool.release_slot();
        *conn
    }
}

impl Deref for PooledConnection {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        // The option is only emptied by `detach` and `drop`, which consume the guard.
        self.conn.as_deref().expect("present until drop")
    }
}

impl DerefMut for PooledConnection {
    fn deref_mut(&mut self) -> &mut Connection {
        self.conn.as_deref_mut().expect("present until drop")
    }
}

impl Drop for PooledConnection {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.put_back(conn, self.generation);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_types_are_shareable() {
        fn send_sync<T: Send + Sync + Clone>() {}
        fn send<T: Send>() {}
        send_sync::<ConnectionPool>();
        send::<PooledConnection>();
        send::<Connection>();
    }

    #[test]
    fn options_setters() {
        let o = PoolOptions::default()
            .with_max_size(0)
            .with_checkout_timeout(Duration::from_millis(5))
            .with_health_check(Some(Duration::ZERO));
        assert_eq!(o.max_size, 1);
        assert_eq!(o.checkout_timeout, Duration::from_millis(5));
        assert_eq!(o.health_check, Some(Duration::ZERO));
        assert_eq!(PoolOptions::default().health_check, None);
    }

    #[test]
    fn unreachable_server_counts_failures_and_frees_the_place() {
        // Port 1 on loopback: nothing listens there, so connecting is refused at once.
        let info = ConnectionInfo::tcp("127.0.0.1", 1);
        let pool = ConnectionPool::with_options(info, PoolOptions::default().with_max_size(1));
        for _ in 0..2 {
            assert!(matches!(pool.get(), Err(Error::Connect { .. })));
        }
        let stats = pool.stats();
        assert_eq!((stats.failed, stats.created, stats.in_use), (2, 0, 0));
    }
}
