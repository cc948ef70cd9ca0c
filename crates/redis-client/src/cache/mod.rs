//! Server-assisted client-side caching: replies of cacheable reads kept in memory and
//! dropped when the server says their key changed.
//!
//! The parts: [`store`] (sans-I/O: entries, limits, recency, and the bookkeeping that keeps
//! a reply racing its invalidation out), [`listener`] (the invalidation connection, on a
//! thread of its own), and here the glue the clients call: a lookup before a read, a
//! ticket around a read sent to the server, a guard around a write.
//!
//! Every data connection's handshake ends with `CLIENT TRACKING ON REDIRECT <id>`, where
//! `<id>` is the invalidation connection's client id (see [`redis_conn::Tracking`]): one
//! design for RESP2 (the invalidation connection subscribes to `__redis__:invalidate`) and
//! RESP3 (it receives `invalidate` pushes), and for any number of pooled connections.
//!
//! A client id names a client on one server only: the data connections and the
//! invalidation connection are opened through the client's connector (a Sentinel's, which
//! follows failovers), and each data connection is checked ([`Via`]'s `verify`) to be on
//! the server the invalidation connection is on, by the server's `run_id`. Only a
//! connection so vouched for, under the current invalidation connection, has its reads
//! stored.

mod listener;
mod ready;
pub(crate) mod store;
#[cfg(feature = "tokio")]
pub(crate) mod tokio;

use crate::Error;
use bytes::Bytes;
use parking_lot::Mutex;
use redis_commands::{Cmd, Flags};
use redis_conn::{
    Connection, ConnectionInfo, ConnectionPool, Connector, PooledConnection, ReplyTimeout,
    Tracking, TrackingMode, TrackingRegistration, Transport,
};
use resp_proto::Value;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use store::{Begun, Limits, Store};

pub use redis_conn::TrackingMode as CacheMode;

/// How a client-side cache is bounded and which tracking mode it asks the server for.
///
/// ```
/// use redis_client::{CacheMode, CacheOptions};
/// use std::time::Duration;
/// let options = CacheOptions::default()
///     .with_max_entries(50_000)
///     .with_max_bytes(32 << 20)
///     .with_ttl(Some(Duration::from_secs(30)))
///     .with_mode(CacheMode::Broadcast(vec!["user:".into()]));
/// assert_eq!(options.max_entries, 50_000);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheOptions {
    /// Most entries (one per distinct command) kept. Default 10,000.
    pub max_entries: usize,
    /// Most bytes kept: what the entries take as the allocator sees them (each one's
    /// command and value in one buffer, its headers, its aggregates' `Vec`s) and the
    /// cache's tables at their capacity, about 310 bytes for an entry of a 16-byte value.
    /// Default 64 MiB.
    pub max_bytes: usize,
    /// Longest an entry is served, however quiet its key: a bound on staleness should an
    /// invalidation be lost in a way the client cannot see (a key expiring on the server
    /// is reported only when the server notices). `None`: no ceiling. Default 5 minutes.
    pub ttl: Option<Duration>,
    /// The `CLIENT TRACKING` mode. Default [`CacheMode::Default`].
    pub mode: CacheMode,
    /// How often the invalidation connection is asked `PING` (counted from the last
    /// answer). Default 1 s; at least 10 ms is used.
    pub ping_interval: Duration,
    /// How long the answer to that `PING` may take before the invalidation connection
    /// counts as lost (the cache cleared, the connection replaced). Default 1 s; at least
    /// 10 ms is used. A connection that goes silent without closing is so found within
    /// `ping_interval + ping_timeout`: the longest a read can be stale after a fault the
    /// client can see (see docs/caching.md).
    pub ping_timeout: Duration,
}

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions {
            max_entries: 10_000,
            max_bytes: 64 << 20,
            ttl: Some(Duration::from_secs(300)),
            mode: CacheMode::Default,
            ping_interval: Duration::from_secs(1),
            ping_timeout: Duration::from_secs(1),
        }
    }
}

impl CacheOptions {
    /// Sets the most entries kept.
    pub fn with_max_entries(mut self, n: usize) -> Self {
        self.max_entries = n;
        self
    }

    /// Sets the most bytes kept.
    pub fn with_max_bytes(mut self, n: usize) -> Self {
        self.max_bytes = n;
        self
    }

    /// Sets the time-to-live ceiling of an entry.
    pub fn with_ttl(mut self, ttl: Option<Duration>) -> Self {
        self.ttl = ttl;
        self
    }

    /// Sets the tracking mode. With [`CacheMode::Broadcast`] only keys under one of its
    /// prefixes are cached (all keys with no prefix).
    pub fn with_mode(mut self, mode: CacheMode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets how often the invalidation connection is pinged and how long its answer may
    /// take: their sum bounds how long a silent invalidation connection goes unnoticed.
    pub fn with_health_check(mut self, interval: Duration, timeout: Duration) -> Self {
        self.ping_interval = interval;
        self.ping_timeout = timeout;
        self
    }
}

/// What a cache counted since it was made, and what it holds now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Reads answered from memory.
    pub hits: u64,
    /// Cacheable reads sent to the server.
    pub misses: u64,
    /// Replies stored.
    pub stored: u64,
    /// Entries dropped because the server (or a write of this client) said their key
    /// changed, or because the connection they were read through ended (the server
    /// reports changes to a key only to the connection that read it).
    pub invalidations: u64,
    /// Times the whole cache was cleared: whenever an invalidation connection comes up
    /// (the first one too) or is lost, a flush on the server, this client's own FLUSHALL,
    /// FLUSHDB, SWAPDB or raw write (cleared before it is sent and again at its reply),
    /// [`Cache::clear`].
    pub flushes: u64,
    /// Entries dropped to make room (entry or byte limit).
    pub evictions: u64,
    /// Entries dropped at the time-to-live ceiling.
    pub expired: u64,
    /// Replies not stored because their key was invalidated (or the cache cleared) while
    /// they were in flight.
    pub discarded: u64,
    /// Entries held now.
    pub entries: usize,
    /// Bytes held now, as counted against the limit.
    pub bytes: usize,
}

/// A handle on a client's cache, from `Redis::cache`: statistics and control.
#[derive(Clone, Debug)]
pub struct Cache {
    shared: Arc<Shared>,
}

impl Cache {
    /// The counters and current size.
    pub fn stats(&self) -> CacheStats {
        let mut stats = CacheStats {
            flushes: self.shared.flushes.load(Ordering::Relaxed),
            ..CacheStats::default()
        };
        for shard in self.shared.shards.iter() {
            let store = shard.lock();
            let c = store.counters;
            stats.hits += c.hits;
            stats.misses += c.misses;
            stats.stored += c.stored;
            stats.invalidations += c.invalidations;
            stats.evictions += c.evictions;
            stats.expired += c.expired;
            stats.discarded += c.discarded;
            stats.entries += store.len();
            stats.bytes += store.bytes();
        }
        stats
    }

    /// Drops every entry.
    pub fn clear(&self) {
        self.shared.clear();
    }

    /// The client id of the invalidation connection while it is up; reads are served
    /// from memory only then. Once it is told here, the reads that follow on connections
    /// the client opens are stored.
    pub fn invalidation_client_id(&self) -> Option<i64> {
        self.shared.live()
    }

    /// The options the cache was made with.
    pub fn options(&self) -> &CacheOptions {
        &self.shared.options
    }
}

/// What the clients share: the store, the invalidation connection's state, the tracking
/// cell every data connection's handshake reads.
pub(crate) struct Shared {
    /// The store, split by key so that threads reading different keys rarely wait for
    /// each other; the limits are split evenly between the shards.
    shards: Box<[Mutex<Store>]>,
    /// The invalidation connection's client id while it is up, else 0 (ids start at 1).
    live: AtomicI64,
    /// Whole-cache clears.
    flushes: AtomicU64,
    tracking: Tracking,
    options: CacheOptions,
    /// Run when the invalidation connection was (re)established: closes the data
    /// connections whose tracking redirects to an earlier one.
    on_connected: Mutex<Vec<Box<dyn Fn() + Send + Sync>>>,
    /// Run by the invalidation thread every [`listener::SWEEP`]: closes the idle data
    /// connections the server closed, so what was read through them is forgotten even
    /// while nobody uses them.
    on_sweep: Mutex<Vec<Box<dyn Fn() + Send + Sync>>>,
    /// Which server the invalidation connection is on, and the data connections checked
    /// to be on it too.
    ident: Mutex<Ident>,
    /// Set when data connections keep reaching a server other than the invalidation
    /// connection's: the invalidation thread then opens a new one where the connector
    /// points now.
    relisten: AtomicBool,
    /// Set once the invalidation connection's first attempt is over (see `ready`).
    first_listen: Arc<ready::Latch>,
}

/// The invalidation connection's identity, and the tracking registrations whose
/// connections were found on its server.
#[derive(Debug, Default)]
struct Ident {
    /// Its client id, 0 while it is down.
    id: i64,
    /// Its server's `run_id`, if the server told.
    run_id: Option<String>,
    /// Serials of the registrations whose connection is on that server and redirects to
    /// that client id: only their reads are stored. Emptied whenever the invalidation
    /// connection changes; a serial leaves when its registration ends.
    vouched: HashSet<u64>,
    /// Data connections found on another server since the last one found on the right one.
    mismatches: u32,
}

impl Ident {
    fn reset(&mut self, id: i64, run_id: Option<String>) {
        self.id = id;
        self.run_id = run_id;
        self.vouched.clear();
        self.mismatches = 0;
    }
}

/// Data connections in a row found on another server than the invalidation connection's
/// before the invalidation connection is opened anew: its server is likely not the one
/// the connector picks any more (a custom connector that moved without saying so).
const RELISTEN_AFTER: u32 = 3;

/// Most shards a store is split into.
const MAX_SHARDS: usize = 16;

/// Fewest entries, and bytes, a shard is given: below that the store is split less, so a
/// small limit stays exact.
const SHARD_MIN_ENTRIES: usize = 256;
const SHARD_MIN_BYTES: usize = 1 << 20;

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("options", &self.options)
            .field("tracking", &self.tracking)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// A cache and its invalidation connection's thread, which opens it with `dial`.
    pub(crate) fn start(options: CacheOptions, dial: Box<dyn listener::Dial>) -> Arc<Shared> {
        let n = (options.max_entries / SHARD_MIN_ENTRIES)
            .min(options.max_bytes / SHARD_MIN_BYTES)
            .clamp(1, MAX_SHARDS);
        let shards = (0..n)
            .map(|_| {
                Mutex::new(Store::new(Limits {
                    max_entries: options.max_entries / n,
                    max_bytes: options.max_bytes / n,
                    ttl: options.ttl,
                }))
            })
            .collect();
        let shared = Arc::new(Shared {
            shards,
            live: AtomicI64::new(0),
            flushes: AtomicU64::new(0),
            tracking: Tracking::new(options.mode.clone()),
            options,
            on_connected: Mutex::new(Vec::new()),
            on_sweep: Mutex::new(Vec::new()),
            ident: Mutex::new(Ident::default()),
            relisten: AtomicBool::new(false),
            first_listen: Arc::default(),
        });
        // The server keeps what a data connection read under that connection: when it
        // closes or stops tracking, nobody hears of changes to those keys any more.
        let weak = Arc::downgrade(&shared);
        shared.tracking.on_end(move |serial| {
            if let Some(shared) = weak.upgrade() {
                shared.forget(serial);
            }
        });
        let dial = ready::FirstAttempt {
            inner: dial,
            latch: Arc::clone(&shared.first_listen),
            dialled: false,
        };
        listener::spawn(Arc::downgrade(&shared), Box::new(dial));
        shared
    }

    /// Waits, up to `timeout`, for the invalidation connection's first attempt to be
    /// over, if `cmd` is a read this cache could store: so the reads made right after
    /// `with_cache` are cached. Called on a miss, before a connection is taken.
    pub(crate) fn wait_first_listen(&self, cmd: &Cmd, timeout: Option<Duration>) {
        if !self.first_listen.is_set() && self.cache_key(cmd).is_some() {
            self.first_listen
                .wait_until(timeout.map(|t| Instant::now() + t));
        }
    }

    /// `info` with this cache's tracking step in its handshake.
    pub(crate) fn tracked(&self, info: &ConnectionInfo) -> ConnectionInfo {
        let mut info = info.clone();
        info.tracking = Some(self.tracking.clone());
        info
    }

    /// Runs `f` whenever the invalidation connection is (re)established.
    pub(crate) fn on_connected(&self, f: impl Fn() + Send + Sync + 'static) {
        self.on_connected.lock().push(Box::new(f));
    }

    /// Runs `f` every [`listener::SWEEP`] on the invalidation thread.
    pub(crate) fn on_sweep(&self, f: impl Fn() + Send + Sync + 'static) {
        self.on_sweep.lock().push(Box::new(f));
    }

    fn sweep(&self) {
        for f in self.on_sweep.lock().iter() {
            f();
        }
    }

    pub(crate) fn handle(self: &Arc<Self>) -> Cache {
        Cache {
            shared: self.clone(),
        }
    }

    fn shard(&self, key: &[u8]) -> &Mutex<Store> {
        // FNV-1a: a cheap spread of keys over the shards (not a defence against chosen
        // keys, which only make one shard busier).
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in key {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        &self.shards[(h % self.shards.len() as u64) as usize]
    }

    fn live(&self) -> Option<i64> {
        match self.live.load(Ordering::Acquire) {
            0 => None,
            id => Some(id),
        }
    }

    /// Drops everything and keeps out every reply in flight.
    fn clear(&self) {
        self.flushes.fetch_add(1, Ordering::Relaxed);
        for shard in self.shards.iter() {
            shard.lock().clear();
        }
    }

    /// The invalidation connection with client id `id` is up, on the server whose
    /// `run_id` is given.
    fn connected(&self, id: i64, run_id: Option<String>) {
        // Before the clear: a read that begins after it finds no vouched connection.
        self.ident.lock().reset(id, run_id);
        self.relisten.store(false, Ordering::Relaxed);
        self.clear();
        self.tracking.set_redirect(Some(id));
        for f in self.on_connected.lock().iter() {
            f();
        }
        // Published after the redirect is set and older connections are closed: once
        // `Cache::invalidation_client_id` tells, a new connection redirects here and none
        // from before is left to be closed under a read, which would forget what that
        // read stored. A read before this is not stored.
        self.live.store(id, Ordering::Release);
        // Last: a read that waited for this takes a connection tracked by it.
        self.first_listen.set();
    }

    /// The invalidation connection is lost: nothing read so far can be trusted, and
    /// nothing is stored until a new one is up.
    fn lost(&self) {
        self.tracking.set_redirect(None);
        // Before the clear: a read that registers after its shard is cleared sees no
        // invalidation connection and is not stored; one that registered before is
        // kept out by the clear.
        self.live.store(0, Ordering::Release);
        self.ident.lock().reset(0, None);
        self.clear();
    }

    /// Whether the invalidation thread was asked to open a new connection; clears it.
    fn take_relisten(&self) -> bool {
        self.relisten.swap(false, Ordering::Relaxed)
    }

    /// Checks that a data connection whose tracking registration is `registration`, on the
    /// server whose `run_id` is `run_id`, redirects to the current invalidation
    /// connection on that connection's own server; if so, reads through it may be stored.
    ///
    /// A connection whose redirect is not the current invalidation connection's id, or
    /// whose server is another (or does not say its `run_id` when the invalidation
    /// connection's did), is refused: its redirect may name an unrelated client there,
    /// which would get its invalidations. When the invalidation connection's server did
    /// not say its `run_id`, nothing can be checked: the connection serves, and nothing
    /// read through it is stored.
    ///
    /// # Errors
    /// [`redis_conn::Error::Connect`] for a refused connection.
    fn vouch(
        &self,
        registration: &TrackingRegistration,
        run_id: Option<&str>,
    ) -> Result<(), redis_conn::Error> {
        let mut ident = self.ident.lock();
        if ident.id == 0 || ident.id != registration.redirect() {
            return Err(refused(
                "its CLIENT TRACKING redirects to an invalidation connection that is not the \
                 cache's current one",
            ));
        }
        match (ident.run_id.as_deref(), run_id) {
            (Some(listener), Some(data)) if listener == data => {
                // Checked under the lock `forget` takes: a registration that ends after
                // this is removed again.
                if !registration.is_ended() {
                    ident.vouched.insert(registration.serial());
                }
                ident.mismatches = 0;
                Ok(())
            }
            // Another server, or one that does not say who it is while the invalidation
            // connection's did: not the same server, as far as can be told.
            (Some(_), _) => {
                ident.mismatches += 1;
                if ident.mismatches >= RELISTEN_AFTER {
                    ident.mismatches = 0;
                    self.relisten.store(true, Ordering::Relaxed);
                }
                Err(refused(
                    "it reached another server than the cache's invalidation connection",
                ))
            }
            _ => Ok(()),
        }
    }

    /// Whether a data connection whose tracking registration is `registration` will never
    /// have its reads stored, though the cache is up and can check connections: it was
    /// opened before the current invalidation connection (without tracking, or
    /// redirecting to an earlier one), or its registration ended. Such a connection is
    /// better replaced; one the cache cannot check (no `run_id`) is not.
    pub(crate) fn outdated(&self, registration: Option<&Arc<TrackingRegistration>>) -> bool {
        let Some(live) = self.live() else {
            return false;
        };
        let ident = self.ident.lock();
        if ident.run_id.is_none() {
            return false;
        }
        registration.map_or(true, |r| {
            r.redirect() != live || r.is_ended() || !ident.vouched.contains(&r.serial())
        })
    }

    /// Whether reads through `registration` may be stored: it was vouched for under the
    /// current invalidation connection.
    fn vouched(&self, registration: &TrackingRegistration) -> bool {
        self.ident.lock().vouched.contains(&registration.serial())
    }

    /// The invalidation connection whose client id is `id` is gone, as a data connection
    /// was told: lost, unless it was replaced already.
    fn lost_if(&self, id: i64) {
        if self.tracking.clear_redirect_if(id)
            && self
                .live
                .compare_exchange(id, 0, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.ident.lock().reset(0, None);
            self.clear();
        }
    }

    /// Drops the entries read through the tracking registration `serial`, which ended.
    fn forget(&self, serial: u64) {
        for shard in self.shards.iter() {
            shard.lock().forget(serial);
        }
        self.ident.lock().vouched.remove(&serial);
    }

    fn invalidate(&self, keys: &[Bytes]) {
        for k in keys {
            self.shard(k).lock().invalidate(k);
        }
    }

    fn flush(&self) {
        self.clear();
    }

    /// The key `cmd` would be cached under, if it may be served from the cache: declared
    /// cacheable, exactly one key, and (in broadcast mode) under a tracked prefix.
    pub(crate) fn cache_key<'c>(&self, cmd: &'c Cmd) -> Option<&'c [u8]> {
        if !cmd.flags().contains(Flags::CACHEABLE) {
            return None;
        }
        let mut keys = cmd.keys();
        let key = keys.next()?;
        if keys.next().is_some() {
            return None;
        }
        if let TrackingMode::Broadcast(prefixes) = &self.options.mode {
            if !prefixes.is_empty() && !prefixes.iter().any(|p| key.starts_with(p)) {
                return None;
            }
        }
        Some(key)
    }

    /// The stored reply to `cmd`, if it is cacheable and held.
    pub(crate) fn lookup(&self, cmd: &Cmd) -> Option<Value> {
        let key = self.cache_key(cmd)?;
        let now = Instant::now();
        self.shard(key).lock().get(cmd.body(), now)
    }

    /// Registers a read of `cmd` about to be sent on a connection with the tracking
    /// registration `registration`; `None` when its reply must not be stored (not
    /// cacheable, no invalidation connection, or the connection's tracking ended or
    /// points elsewhere).
    pub(crate) fn begin(
        self: &Arc<Self>,
        registration: Option<&Arc<TrackingRegistration>>,
        cmd: &Cmd,
    ) -> Option<Ticket> {
        let key = self.cache_key(cmd)?;
        let registration = registration?;
        let mut store = self.shard(key).lock();
        if self.live() != Some(registration.redirect())
            || registration.is_ended()
            || !self.vouched(registration)
        {
            return None;
        }
        let begun = store.begin(key, registration.serial());
        Some(Ticket {
            shared: self.clone(),
            key: Bytes::copy_from_slice(key),
            registration: registration.clone(),
            begun: Some(begun),
        })
    }

    /// A guard for `cmds` about to be sent: the keys they write are invalidated now and
    /// again when the guard drops (after the replies), so this client reads its own writes
    /// even before the server's invalidation arrives, and a read that raced the write is
    /// not stored.
    pub(crate) fn writes<'c>(
        self: &Arc<Self>,
        cmds: impl IntoIterator<Item = &'c Cmd>,
    ) -> WriteGuard {
        let mut scope = Scope::Keys(Vec::new());
        for cmd in cmds {
            scope.add(cmd);
        }
        let guard = WriteGuard {
            shared: self.clone(),
            scope,
        };
        guard.apply();
        guard
    }

    /// Whether reads through this cache need `CLIENT CACHING YES` before them.
    fn opt_in(&self) -> bool {
        self.options.mode == TrackingMode::OptIn
    }
}

/// The error a refused data connection fails with.
fn refused(why: &str) -> redis_conn::Error {
    redis_conn::Error::Connect {
        addr: "the client-side cache's server".to_owned(),
        source: std::io::Error::other(format!("data connection refused: {why}")),
    }
}

/// The `run_id` line of an `INFO server` reply.
pub(crate) fn run_id(info: &Value) -> Option<String> {
    let text = match info {
        Value::BulkString(b) | Value::SimpleString(b) => b,
        Value::Verbatim { text, .. } => text,
        _ => return None,
    };
    text.split(|&c| c == b'\n')
        .find_map(|line| line.strip_prefix(b"run_id:"))
        .map(|id| String::from_utf8_lossy(id).trim().to_owned())
        .filter(|id| !id.is_empty())
}

/// A client's connector with the cache's settings: the invalidation connection's (no
/// tracking) or the data connections' (tracking, each checked to be on the invalidation
/// connection's server).
pub(crate) struct Via {
    inner: Arc<dyn Connector>,
    info: ConnectionInfo,
    /// The cache whose invalidation connection a data connection must share a server with;
    /// `None` for the invalidation connection itself.
    cache: Option<Weak<Shared>>,
}

impl Connector for Via {
    fn info(&self) -> &ConnectionInfo {
        &self.info
    }

    fn connect(
        &self,
        deadline: Option<Instant>,
    ) -> std::result::Result<Box<dyn Transport>, redis_conn::Error> {
        self.inner.connect(deadline)
    }

    fn verify(&self, conn: &mut Connection) -> std::result::Result<(), redis_conn::Error> {
        self.inner.verify(conn)?;
        let Some(cache) = self.cache.as_ref().and_then(Weak::upgrade) else {
            return Ok(());
        };
        // Opened while the invalidation connection was down: no redirect to check. (Or
        // the registration is another cache's, wrapping this client's pool.)
        let Some(registration) = conn
            .tracking_registration()
            .filter(|r| cache.tracking.owns(r))
            .cloned()
        else {
            return Ok(());
        };
        let run_id = match conn.command(&["INFO", "server"]) {
            Ok(v) => run_id(&v),
            Err(redis_conn::Error::Server(_)) => None,
            Err(e) => return Err(e),
        };
        cache.vouch(&registration, run_id.as_deref())
    }
}

/// `info` without the cache's tracking step: the invalidation connection's settings.
fn untracked(info: &ConnectionInfo) -> ConnectionInfo {
    let mut info = info.clone();
    info.tracking = None;
    info
}

/// A cache for the blocking client whose pool is `pool`, and the pool its data
/// connections come from: `pool`'s connector and options, each connection tracking and
/// checked to be on the invalidation connection's server, itself opened through the same
/// connector.
pub(crate) fn attach(
    pool: &ConnectionPool,
    options: CacheOptions,
) -> (Arc<Shared>, ConnectionPool) {
    let inner = Arc::clone(pool.connector());
    let dial = listener::BlockingDial {
        connector: Via {
            inner: Arc::clone(&inner),
            info: untracked(pool.info()),
            cache: None,
        },
    };
    let shared = Shared::start(options, Box::new(dial));
    let data = ConnectionPool::with_connector(
        Via {
            inner,
            info: shared.tracked(pool.info()),
            cache: Some(Arc::downgrade(&shared)),
        },
        pool.options().clone(),
    );
    let closer = data.clone();
    shared.on_connected(move || closer.disconnect());
    let sweeper = data.clone();
    shared.on_sweep(move || sweeper.sweep_idle());
    (shared, data)
}

/// A read in flight whose reply may be stored; dropping it unstored abandons the read.
pub(crate) struct Ticket {
    shared: Arc<Shared>,
    key: Bytes,
    registration: Arc<TrackingRegistration>,
    begun: Option<Begun>,
}

impl Ticket {
    /// Offers the reply to `cmd`.
    pub(crate) fn complete(mut self, cmd: &Cmd, value: &Value) {
        if let Some(begun) = self.begun.take() {
            let now = Instant::now();
            let mut store = self.shared.shard(&self.key).lock();
            // Checked under the lock: a registration that ends after this is forgotten
            // after the store, so its entry goes too.
            let value = (!self.registration.is_ended()).then_some(value);
            store.complete(&self.key, cmd.body(), begun, value, now);
        }
    }

    /// The bytes to send before the command: `CLIENT CACHING YES` in opt-in mode, so the
    /// server tracks this read.
    pub(crate) fn prefix(&self) -> &'static [u8] {
        if self.shared.opt_in() {
            b"*3\r\n$6\r\nCLIENT\r\n$7\r\nCACHING\r\n$3\r\nYES\r\n"
        } else {
            b""
        }
    }

    /// A tracking connection was told its redirect target, client `id`, no longer
    /// exists: if that is the current invalidation connection, it is lost (its thread
    /// finds out too, and opens a new one).
    pub(crate) fn redirect_broken(&self, id: Option<i64>) {
        if let Some(id) = id {
            self.shared.lost_if(id);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(begun) = self.begun.take() {
            let now = Instant::now();
            self.shared
                .shard(&self.key)
                .lock()
                .complete(&self.key, b"", begun, None, now);
        }
    }
}

/// What a group of commands may have changed.
#[derive(Debug)]
enum Scope {
    Keys(Vec<Bytes>),
    All,
}

impl Scope {
    fn add(&mut self, cmd: &Cmd) {
        let Scope::Keys(keys) = self else { return };
        if cmd.name().is_empty() {
            // A raw command: its keys are not known, only its name.
            if !raw_is_readonly(cmd) {
                *self = Scope::All;
            }
            return;
        }
        if cmd.flags().contains(Flags::READONLY) {
            return;
        }
        // A name given by hand (`Cmd::new("swapdb")`) may be in any case, as the server
        // takes it.
        if ["FLUSHALL", "FLUSHDB", "SWAPDB"]
            .iter()
            .any(|n| cmd.name().eq_ignore_ascii_case(n))
        {
            *self = Scope::All;
            return;
        }
        keys.extend(cmd.keys().map(Bytes::copy_from_slice));
    }
}

/// Whether the command table declares the raw command's name (one or two words)
/// read-only.
fn raw_is_readonly(cmd: &Cmd) -> bool {
    let mut words = cmd.args();
    let Some(first) = words.next() else {
        return true;
    };
    let first = String::from_utf8_lossy(first).to_ascii_uppercase();
    let two = words.next().map(|w| {
        format!(
            "{first} {}",
            String::from_utf8_lossy(w).to_ascii_uppercase()
        )
    });
    let mut rows = redis_commands::cmd::all()
        .filter(|i| i.name == first || Some(i.name) == two.as_deref())
        .peekable();
    rows.peek().is_some() && rows.all(|i| i.flags.contains(Flags::READONLY))
}

/// Invalidates what a write may have changed, when made and again when dropped.
pub(crate) struct WriteGuard {
    shared: Arc<Shared>,
    scope: Scope,
}

impl WriteGuard {
    fn apply(&self) {
        match &self.scope {
            Scope::Keys(keys) if keys.is_empty() => {}
            Scope::Keys(keys) => self.shared.invalidate(keys),
            Scope::All => self.shared.flush(),
        }
    }
}

impl Drop for WriteGuard {
    fn drop(&mut self) {
        self.apply();
    }
}

/// Sends `cmd` on a tracking connection and reads its reply, offering it to `ticket`;
/// the blocking client's read of a cacheable command that missed.
pub(crate) fn tracked_read(
    conn: &mut PooledConnection,
    cmd: &Cmd,
    ticket: Ticket,
    timeout: ReplyTimeout,
) -> std::result::Result<Value, (Error, crate::retry::Stage)> {
    use crate::retry::Stage;
    let mut header = [0u8; 24];
    let header = cmd.header(&mut header);
    let prefix = ticket.prefix();
    let replies = if prefix.is_empty() { 1 } else { 2 };
    conn.send_with(&[prefix, header, cmd.body()], replies, timeout)
        .map_err(|e| (e.into(), Stage::Send))?;
    if replies == 2 {
        match conn.read_reply() {
            Ok(Value::Error(e)) => {
                return Err((
                    Error::from(redis_conn::Error::from_server_error(e)).for_command(cmd),
                    Stage::Read,
                ))
            }
            Ok(_) => {}
            Err(e) => return Err((e.into(), Stage::Read)),
        }
    }
    let v = match conn.read_reply() {
        Ok(Value::Error(e)) => {
            return Err((
                Error::from(redis_conn::Error::from_server_error(e)).for_command(cmd),
                Stage::Read,
            ))
        }
        Ok(v) => v,
        Err(e) => return Err((e.into(), Stage::Read)),
    };
    // RESP3: the server tells a tracking connection when its redirect target is gone.
    while let Ok(Some(push)) = conn.queued_push() {
        if let Some(id) = listener::redirect_broken(&push) {
            ticket.redirect_broken(id);
            return Ok(v);
        }
    }
    ticket.complete(cmd, &v);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dial that never connects: the test plays the invalidation connection's part.
    struct Never;

    impl listener::Dial for Never {
        fn dial(&mut self) -> Result<Box<dyn listener::Link>, redis_conn::Error> {
            Err(redis_conn::Error::Timeout)
        }
    }

    #[test]
    fn a_new_invalidation_connection_is_told_only_once_the_data_connections_follow_it() {
        let shared = Shared::start(CacheOptions::default(), Box::new(Never));
        let seen = Arc::new(Mutex::new(None));
        let (weak, s) = (Arc::downgrade(&shared), Arc::clone(&seen));
        shared.on_connected(move || {
            let shared = weak.upgrade().unwrap();
            *s.lock() = Some((shared.live(), shared.tracking.redirect()));
        });
        shared.connected(7, None);
        // While the connections from before are closed, new ones already redirect to it,
        // and it is not yet told: a read made once it is told is not on a connection
        // about to be closed, which would forget what the read stored.
        assert_eq!(*seen.lock(), Some((None, Some(7))));
        assert_eq!(shared.live(), Some(7));
    }

    #[test]
    fn run_id_is_read_from_info_over_resp2_and_resp3() {
        let text = "# Server\r\nredis_version:7.0.15\r\nrun_id:0123abcd\r\ntcp_port:6379\r\n";
        let bulk = Value::BulkString(Bytes::from(text));
        assert_eq!(run_id(&bulk).as_deref(), Some("0123abcd"));
        let verbatim = Value::Verbatim {
            format: *b"txt",
            text: Bytes::from(text),
        };
        assert_eq!(run_id(&verbatim).as_deref(), Some("0123abcd"));
        let without = Value::BulkString(Bytes::from("# Server\r\nrun_id:\r\n"));
        assert_eq!(run_id(&without), None);
        assert_eq!(run_id(&Value::Integer(1)), None);
    }
}
