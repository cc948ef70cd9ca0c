//! The blocking cluster client: drives the router over one connection pool per node.

use super::router::{
    self, classify_server_error, host_of, merge_fanout, merge_split, Attempts, Failure, Next,
    ReadFrom, Refresh, Route, RouteError, SlotMap,
};
use super::scan::{node_gone, ScanWalk, Step};
use crate::client::{call_budget, convert, dynamic_reply, longer, overridden, reply_timeout};
use crate::observe::{Batch, Op};
use crate::pipeline::{check, convert_results, describe, Queued};
use crate::retry::RetryPolicy;
use crate::typed::{sealed, Queues};
use crate::{
    Error, Pipeline, Redis, Replies, Result, ScanIter, Script, ScriptCall, Text, TypedPipeline,
    Watched,
};
use bytes::{Bytes, BytesMut};
use parking_lot::{Mutex, RwLock};
use redis_commands::{
    BinaryMode, Callbacks, Cmd, Executor, Flags, FromValue, ScanItem, ScanOptions, ScanState,
    TextMode, ToArgs, Typed,
};
use redis_conn::{Addr, ConnectionInfo, ConnectionPool, PoolOptions, ReplyTimeout};
use resp_proto::{ErrorCode, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Weak};
use std::time::{Duration, Instant};

/// The shortest time between two slot map refreshes: a burst of failures (every thread
/// hitting a node that went away) costs one refresh, not one each.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_millis(50);

/// Settings of a [`ClusterClient`] beyond those of each node's connections.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClusterOptions {
    /// Retries of a busy cluster (`TRYAGAIN`, `CLUSTERDOWN`) and of lost nodes, within the
    /// call's one budget (see [`RetryPolicy`]). Default: as many retries as the budget
    /// (the policy's, else the connect timeout plus the read timeout: 15 s) has room for,
    /// waits from 10 ms up to 500 ms, writes not repeated once they may have run; so a
    /// call waits out a failover that ends within its budget. A policy with a retry count
    /// stops at the count or the budget, whichever comes first.
    pub retry: RetryPolicy,
    /// Redirections (`MOVED`, `ASK`) one call follows before failing. Default 16.
    pub max_redirects: u32,
    /// Serve read-only commands from replicas (`READONLY`). Default `false`.
    pub read_from_replicas: bool,
    /// The pool of each node.
    pub pool: PoolOptions,
    /// How often the slot map is fetched again in the background, to learn the topology
    /// changes that raise no error (a replica added or promoted, a node gone); `None` or
    /// zero: only when a call meets a lost node or a slot with no known node, or on
    /// [`ClusterClient::refresh_slots`]. Default 30 s.
    pub refresh_interval: Option<Duration>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            // No count: a failover (a node timeout, then an election) takes seconds, and
            // what bounds the wait for it is the call's budget.
            retry: RetryPolicy::default()
                .with_max_retries(u32::MAX)
                .with_backoff(Duration::from_millis(10), Duration::from_millis(500)),
            max_redirects: 16,
            read_from_replicas: false,
            pool: PoolOptions::default(),
            refresh_interval: Some(Duration::from_secs(30)),
        }
    }
}

impl ClusterOptions {
    /// Sets the retry policy.
    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Serves read-only commands from replicas.
    pub fn with_read_from_replicas(mut self, on: bool) -> Self {
        self.read_from_replicas = on;
        self
    }

    /// Sets the options of each node's pool.
    pub fn with_pool_options(mut self, pool: PoolOptions) -> Self {
        self.pool = pool;
        self
    }

    /// Sets the interval of the background slot map refresh (`None` or zero: off).
    pub fn with_refresh_interval(mut self, interval: Option<Duration>) -> Self {
        self.refresh_interval = interval;
        self
    }
}

/// A Redis Cluster client: cheap to clone, safe to share between threads.
///
/// Every command method works on it as on [`Redis`]: a command goes to the node serving
/// its keys' slot, found from the keys each command declares. `MOVED` and `ASK` are
/// followed, `TRYAGAIN` and `CLUSTERDOWN` retried after a backoff, and a node that cannot
/// be reached makes the client refresh its slot map and try again, all within the call's
/// one time budget. MGET, MSET, DEL, EXISTS, UNLINK and TOUCH over keys in several slots
/// are split per node (one request to each, sent together) and their replies merged in
/// the caller's order; other commands whose keys span slots are refused before sending
/// with [`Error::CrossSlot`]. Commands for every node (FLUSHALL, DBSIZE, KEYS, SCRIPT LOAD,
/// CONFIG SET …) run on each and their replies are merged. See `docs/cluster.md`.
///
/// ```no_run
/// use redis_client::cluster::ClusterClient;
/// use redis_client::prelude::*;
///
/// let c = ClusterClient::open(&["redis://127.0.0.1:7000", "redis://127.0.0.1:7001"])?;
/// c.set("foo", "bar")?;
/// let values = c.mget(["foo", "bar", "baz"])?; // one request per node
/// # Ok::<(), redis_client::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct ClusterClient {
    inner: Arc<Inner>,
    /// Read-only commands of this handle go to replicas.
    replicas: bool,
}

#[derive(Debug)]
struct Inner {
    seeds: Vec<ConnectionInfo>,
    options: ClusterOptions,
    map: RwLock<Arc<SlotMap>>,
    /// Pools by `host:port`: `[primary-style, READONLY]`. Read-locked on every call, so
    /// threads do not queue behind one another.
    pools: [RwLock<HashMap<String, ConnectionPool>>; 2],
    /// When the map was last refreshed; held during a refresh so one runs at a time.
    refreshed: Mutex<Option<Instant>>,
    /// Round robin over replicas.
    next_replica: AtomicUsize,
    callbacks: Callbacks,
    /// Dropped with the client, which ends the background refresh thread at once.
    _stop_refresher: mpsc::Sender<()>,
}

/// Where one command is sent.
#[derive(Clone, Debug)]
pub(super) enum Target {
    Slot(u16),
    Node(String),
    Any,
}

/// A failed attempt and how far it got.
pub(super) struct Failed {
    pub(super) error: Error,
    /// True if the command cannot have run (nothing was sent in full).
    pub(super) unsent: bool,
}

impl ClusterClient {
    /// A client for the cluster that any of `seeds` (URLs of some of its nodes) belongs
    /// to. The seeds' settings (password, timeouts, protocol, TLS) apply to every node.
    /// The slot map is fetched at once.
    ///
    /// # Errors
    /// [`Error::Url`] for an invalid URL; [`Error::Cluster`] when no seed gives a map.
    pub fn open<S: AsRef<str>>(seeds: &[S]) -> Result<ClusterClient> {
        let infos = seeds
            .iter()
            .map(|s| s.as_ref().parse::<ConnectionInfo>())
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Self::with_options(infos, ClusterOptions::default())
    }

    /// A client from seed connection settings and options.
    ///
    /// # Errors
    /// [`Error::Cluster`] when there is no seed or no seed gives a map.
    pub fn with_options(seeds: Vec<ConnectionInfo>, options: ClusterOptions) -> Result<Self> {
        if seeds.is_empty() {
            return Err(Error::Cluster("no seed node given".into()));
        }
        let replicas = options.read_from_replicas;
        let (stop, stopped) = mpsc::channel();
        let client = ClusterClient {
            inner: Arc::new(Inner {
                seeds,
                options,
                map: RwLock::new(Arc::new(SlotMap::empty())),
                pools: Default::default(),
                refreshed: Mutex::new(None),
                next_replica: AtomicUsize::new(0),
                callbacks: Callbacks::new(),
                _stop_refresher: stop,
            }),
            replicas,
        };
        client.refresh(true)?;
        let interval = client.inner.options.refresh_interval;
        if let Some(interval) = interval.filter(|i| !i.is_zero()) {
            let inner = Arc::downgrade(&client.inner);
            std::thread::Builder::new()
                .name("redis-cluster-refresh".into())
                .spawn(move || refresh_periodically(&inner, interval, &stopped))
                .map_err(|e| Error::Cluster(format!("cannot start the refresh thread: {e}")))?;
        }
        Ok(client)
    }

    /// This client with read-only commands served by replicas (`true`) or primaries; a
    /// clone sharing the connections, so it can be chosen per command:
    /// `c.on_replicas(true).get("k")`.
    pub fn on_replicas(&self, on: bool) -> ClusterClient {
        ClusterClient {
            inner: self.inner.clone(),
            replicas: on,
        }
    }

    /// This client in text mode: replies as `String`s (see [`Text`]).
    pub fn text(&self) -> Text<ClusterClient> {
        Text(self.clone())
    }

    /// The slot map in use.
    pub fn slot_map(&self) -> Arc<SlotMap> {
        self.inner.map.read().clone()
    }

    /// The `host:port` of every node this client keeps a connection pool for: the nodes
    /// of the slot map it has used, and any seed it asked for a map. A node the map no
    /// longer lists is dropped (its connections closed) when the map is next fetched.
    pub fn known_nodes(&self) -> Vec<String> {
        let mut nodes: Vec<String> = self
            .inner
            .pools
            .iter()
            .flat_map(|p| p.read().keys().cloned().collect::<Vec<_>>())
            .collect();
        nodes.sort();
        nodes.dedup();
        nodes
    }

    /// Fetches the slot map again now.
    ///
    /// # Errors
    /// [`Error::Cluster`] when no known node gives a map.
    pub fn refresh_slots(&self) -> Result<()> {
        self.refresh(true)
    }

    /// As [`refresh_slots`](Self::refresh_slots), by `deadline`: the wait for a refresh
    /// another thread runs, and every node asked, fit in it.
    pub(crate) fn refresh_slots_until(&self, deadline: Option<Instant>) -> Result<()> {
        self.refresh_within(true, deadline)
    }

    /// Runs any command given as its arguments and returns the raw reply. Its keys are
    /// not declared, so it goes to any primary and follows `MOVED`; facts such as "runs
    /// on every primary" come from the command table by name.
    ///
    /// # Errors
    /// As [`Redis::execute_command`].
    pub fn execute_command<A: ToArgs>(&self, args: A) -> Result<Value> {
        let cmd = Cmd::from_args(args);
        let v = self.request(&cmd)?;
        dynamic_reply(&self.inner.callbacks, &cmd, v).map_err(|source| Error::Reply {
            command: cmd.first_word(),
            source,
        })
    }

    /// A cluster pipeline, with the same methods and defaults as [`Redis::pipeline`]: a
    /// MULTI … EXEC transaction unless [`transaction(false)`](ClusterPipeline::transaction),
    /// which on a cluster needs every key in one slot (refused before sending otherwise,
    /// the error saying so); with `transaction(false)` the commands are sent grouped per
    /// node, all nodes at once, the replies in queue order.
    pub fn pipeline(&self) -> ClusterPipeline {
        ClusterPipeline {
            client: self.clone(),
            commands: Vec::new(),
            transaction: true,
            raise_on_error: true,
            scripts: Vec::new(),
        }
    }

    /// A pipeline typed by the commands queued on it, as [`Redis::typed_pipeline`]:
    /// `execute` returns a tuple of their replies. A transaction unless
    /// `transaction(false)`, as [`ClusterClient::pipeline`].
    pub fn typed_pipeline(&self) -> TypedPipeline<(), BinaryMode, ClusterPipeline> {
        TypedPipeline::new(self.pipeline())
    }

    /// WATCHes `keys` and runs `f` as [`Redis::transaction`] does (retrying while a
    /// watched key changes), on the primary serving their slot: the same closure as on one
    /// server, returning the pipeline [`Watched::multi`] gave back with the writes queued.
    ///
    /// Every key must be in one slot: the watched keys are checked before anything is
    /// sent, and the commands `f` queues are checked against that slot before MULTI … EXEC
    /// is sent. Commands `f` runs at once (the reads) go to the watching node as they are.
    ///
    /// ```no_run
    /// use redis_client::cluster::ClusterClient;
    /// use redis_client::prelude::*;
    ///
    /// let c = ClusterClient::open(&["redis://127.0.0.1:7000"])?;
    /// c.transaction("{user:1}:visits", |mut w| {
    ///     let n = w.reply_as::<Option<i64>>().get("{user:1}:visits")?;
    ///     let mut pipe = w.multi();
    ///     pipe.set("{user:1}:visits", n.unwrap_or(0) + 1);
    ///     Ok(pipe)
    /// })?;
    /// # Ok::<(), redis_client::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::CrossSlot`] when the keys are in several slots (nothing sent) or `f`
    /// queues a command of another slot (MULTI … EXEC not sent); otherwise as
    /// [`Redis::transaction`].
    pub fn transaction<K, F>(&self, keys: K, mut f: F) -> Result<Vec<Value>>
    where
        K: ToArgs,
        F: FnMut(Watched) -> Result<Pipeline>,
    {
        let mut watch = Cmd::new("WATCH");
        watch.key(&keys);
        let node = self.watching_node(&watch)?;
        node.transaction(keys, |w| {
            let pipe = f(w)?;
            // Refused here, the pipeline is dropped unsent, which ends the WATCH.
            one_slot(std::iter::once(&watch).chain(pipe.commands()))?;
            Ok(pipe)
        })
    }

    /// The primary serving the slot of `watch`'s keys, as a client of that one node whose
    /// every command is bounded by the cluster's budget, as a command is.
    fn watching_node(&self, watch: &Cmd) -> Result<Redis> {
        let slot = one_slot(std::iter::once(watch))?;
        let addr = self.addr_for(&Target::Slot(slot.unwrap_or(0)), ReadFrom::Primary)?;
        let once = RetryPolicy::none().with_budget(self.inner.options.retry.budget);
        Ok(Redis::from_pool(self.pool(&addr, false)).with_retry_policy(once))
    }

    /// Runs a script call ([`Script::key`](crate::Script::key) …) on the node serving its
    /// keys: EVALSHA, and on NOSCRIPT, EVAL (which also caches it there).
    ///
    /// # Errors
    /// As [`ScriptCall::invoke_on`]; [`Error::CrossSlot`] when its keys span slots.
    pub fn invoke_script<T: FromValue>(&self, call: ScriptCall<'_>) -> Result<T> {
        let evalsha = call.to_cmd();
        let reply = match self.request(&evalsha) {
            Err(Error::Server(e)) if e.code() == ErrorCode::NOSCRIPT => {
                // EVALSHA sha numkeys key… arg…: the arguments follow the keys.
                let args: Vec<&[u8]> = evalsha.args().collect();
                let nkeys = evalsha.keys().count();
                let rest = args.get(3 + nkeys..).unwrap_or_default();
                let mut cmd = Cmd::new("EVAL");
                cmd.arg(call.script().source());
                cmd.arg(nkeys);
                cmd.key(evalsha.keys().collect::<Vec<_>>());
                cmd.arg(rest);
                self.request(&cmd)?
            }
            other => other?,
        };
        convert(&evalsha, reply)
    }

    /// Iterates over the key names of the whole cluster: SCAN on each primary in turn. A
    /// primary that goes away during the walk is found again by its slots and its walk
    /// restarted on the node now serving them; once every primary is walked, the slot map
    /// is fetched again and every node now serving a slot that changed hands meanwhile is
    /// walked again (keys may then be seen twice, as SCAN allows).
    pub fn scan_iter(&self, options: ScanOptions) -> ClusterScan<'_> {
        self.walk(options)
    }

    fn walk<T>(&self, options: ScanOptions) -> ClusterScan<'_, T> {
        ClusterScan {
            client: self,
            options,
            walk: ScanWalk::new(&self.slot_map()),
            page: Vec::new().into_iter(),
        }
    }

    /// Iterates over the members of the set at `key`, lazily (SSCAN on the node serving
    /// it), as [`Redis::sscan_iter`].
    pub fn sscan_iter(
        &self,
        key: impl Into<Bytes>,
        options: ScanOptions,
    ) -> ScanIter<'_, Bytes, ClusterClient> {
        ScanIter::new(self, ScanState::sscan(key, options))
    }

    /// Iterates over the `(field, value)` pairs of the hash at `key`, lazily (HSCAN on the
    /// node serving it), as [`Redis::hscan_iter`].
    pub fn hscan_iter(
        &self,
        key: impl Into<Bytes>,
        options: ScanOptions,
    ) -> ScanIter<'_, (Bytes, Bytes), ClusterClient> {
        ScanIter::new(self, ScanState::hscan(key, options))
    }

    /// Iterates over the `(member, score)` pairs of the sorted set at `key`, lazily (ZSCAN
    /// on the node serving it), as [`Redis::zscan_iter`].
    pub fn zscan_iter(
        &self,
        key: impl Into<Bytes>,
        options: ScanOptions,
    ) -> ScanIter<'_, (Bytes, f64), ClusterClient> {
        ScanIter::new(self, ScanState::zscan(key, options))
    }

    /// Sends `cmd` where it belongs and returns its reply.
    pub(crate) fn request(&self, cmd: &Cmd) -> Result<Value> {
        let deadline = self.deadline(Some(cmd));
        match router::route(cmd).map_err(cross_slot)? {
            Route::Slot(slot) => self.one(cmd, Target::Slot(slot), deadline, None),
            Route::Any => self.one(cmd, Target::Any, deadline, None),
            route => {
                let mut out = self.batch(vec![(cmd, route)], deadline)?;
                out.pop()
                    .unwrap_or_else(|| Err(Error::Cluster("no reply".into())))
            }
        }
    }

    fn deadline(&self, cmd: Option<&Cmd>) -> Option<Instant> {
        call_budget(&self.inner.options.retry, &self.inner.seeds[0], cmd)
            .map(|b| Instant::now() + b)
    }

    fn read_from(&self, cmd: &Cmd) -> ReadFrom {
        if self.replicas && router::facts(cmd).contains(Flags::READONLY) {
            ReadFrom::Replica(self.inner.next_replica.fetch_add(1, Ordering::Relaxed))
        } else {
            ReadFrom::Primary
        }
    }

    /// The pool of the node at `addr` (READONLY connections for replica reads).
    fn pool(&self, addr: &str, readonly: bool) -> ConnectionPool {
        let pools = &self.inner.pools[usize::from(readonly)];
        if let Some(p) = pools.read().get(addr) {
            return p.clone();
        }
        pools
            .write()
            .entry(addr.to_owned())
            .or_insert_with(|| {
                ConnectionPool::with_options(
                    self.node_info(addr, readonly),
                    self.inner.options.pool.clone(),
                )
            })
            .clone()
    }

    /// Connection settings for the node at `addr` (`host:port`): the first seed's, with
    /// that address.
    pub(crate) fn node_info(&self, addr: &str, readonly: bool) -> ConnectionInfo {
        let mut info = self.inner.seeds[0].clone();
        let (host, port) = addr.rsplit_once(':').unwrap_or((addr, "6379"));
        info.addr = Addr::Tcp {
            host: host.to_owned(),
            port: port.parse().unwrap_or(6379),
        };
        info.readonly = readonly;
        info
    }

    fn addr_for(&self, target: &Target, from: ReadFrom) -> Result<String> {
        match target {
            Target::Node(a) => Ok(a.clone()),
            Target::Slot(slot) => {
                let map = self.inner.map.read().clone();
                map.node(*slot, from)
                    .map(str::to_owned)
                    .ok_or_else(|| Error::Cluster(format!("slot {slot} has no node")))
            }
            Target::Any => {
                let map = self.inner.map.read().clone();
                let primaries = map.primaries();
                if primaries.is_empty() {
                    return Err(Error::Cluster("no primary known".into()));
                }
                let n = self.inner.next_replica.fetch_add(1, Ordering::Relaxed);
                Ok(primaries[n % primaries.len()].to_owned())
            }
        }
    }

    /// Fetches the slot map from a known node or a seed, unless one was fetched less than
    /// [`MIN_REFRESH_INTERVAL`] ago (`force` skips that check).
    fn refresh(&self, force: bool) -> Result<()> {
        self.refresh_within(force, None)
    }

    /// As `refresh`, within a call's `deadline`: waiting for a refresh another thread runs,
    /// and every node asked, fit in it (`None`: each node asked gets a whole budget).
    fn refresh_within(&self, force: bool, deadline: Option<Instant>) -> Result<()> {
        let started = Instant::now();
        let mut last = match deadline {
            Some(d) => self
                .inner
                .refreshed
                .try_lock_until(d)
                .ok_or(Error::Timeout)?,
            None => self.inner.refreshed.lock(),
        };
        // Another thread refreshed while this one waited for the lock.
        if !force && last.is_some_and(|t| t + MIN_REFRESH_INTERVAL > started) {
            return Ok(());
        }
        let current = self.inner.map.read().clone();
        let mut candidates: Vec<String> = current.nodes().into_iter().map(str::to_owned).collect();
        let seeds = super::seed_addrs(&self.inner.seeds);
        for a in &seeds {
            if !candidates.contains(a) {
                candidates.push(a.clone());
            }
        }
        let mut last_error = None;
        for addr in candidates {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Error::Timeout);
            }
            match self.fetch_map(&addr, deadline) {
                Ok(map) if map.is_complete() || current.shards().is_empty() => {
                    for pools in &self.inner.pools {
                        pools.write().retain(|a, _| super::still_needed(&map, a));
                    }
                    *self.inner.map.write() = Arc::new(map);
                    *last = Some(Instant::now());
                    return Ok(());
                }
                Ok(_) => last_error = Some(format!("{addr}: the map does not cover every slot")),
                Err(e) => last_error = Some(format!("{addr}: {e}")),
            }
        }
        *last = Some(Instant::now());
        Err(Error::Cluster(format!(
            "no node gave a slot map (last: {})",
            last_error.unwrap_or_default()
        )))
    }

    fn fetch_map(&self, addr: &str, within: Option<Instant>) -> Result<SlotMap> {
        let pool = self.pool(addr, false);
        let deadline = match (self.deadline(None), within) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mut conn = pool.get_until(deadline)?;
        conn.set_call_deadline(deadline);
        let host = host_of(addr);
        let bad = |e: router::MapError| Error::Cluster(e.to_string());
        match crate::client::send_and_read(pool.info(), &mut conn, &Cmd::new("CLUSTER SHARDS")) {
            Ok(v) => SlotMap::parse_shards(&v, host).map_err(bad),
            // Servers before Redis 7 do not know CLUSTER SHARDS.
            Err(Error::Server(_)) => {
                let v = crate::client::send_and_read(
                    pool.info(),
                    &mut conn,
                    &Cmd::new("CLUSTER SLOTS"),
                )?;
                SlotMap::parse_slots(&v, host).map_err(bad)
            }
            Err(e) => Err(e),
        }
    }

    /// One command to one target, redirections and retries included. `first` is a
    /// failure already met (a part of a batch), to go on from.
    fn one(
        &self,
        cmd: &Cmd,
        target: Target,
        deadline: Option<Instant>,
        first: Option<(Failed, String)>,
    ) -> Result<Value> {
        let mut attempts = Attempts::new(
            self.inner.options.retry,
            deadline,
            self.inner.options.max_redirects,
        );
        let from = self.read_from(cmd);
        let mut asking: Option<String> = None;
        let mut pending = first;
        let mut busy = None;
        loop {
            let (failed, addr) = match pending.take() {
                Some(f) => f,
                None => {
                    let (addr, ask) = match asking.take() {
                        Some(a) => (a, true),
                        None => (self.resolve(&target, from, deadline)?, false),
                    };
                    let readonly = !ask
                        && matches!(from, ReadFrom::Replica(_))
                        && !matches!(target, Target::Node(_));
                    match self.attempt(cmd, &addr, ask, readonly, deadline) {
                        Ok(v) => return Ok(v),
                        Err(f) => (f, addr),
                    }
                }
            };
            let failure = self.understand(&failed.error, &addr);
            let may_repeat = failed.unsent || self.safe_to_repeat(cmd);
            match attempts.next(&failure, may_repeat, Instant::now()) {
                Next::GiveUp => {
                    let tries = attempts.retries() + 1;
                    return Err(give_up(failed.error, busy, deadline, tries));
                }
                Next::Now => {}
                Next::After(wait) => std::thread::sleep(wait),
            }
            match failure {
                Failure::Ask { addr } => asking = Some(addr),
                Failure::NodeLost => {
                    let _ = self.refresh_within(false, deadline);
                }
                Failure::Busy => busy = Some(failed.error),
                _ => {}
            }
        }
    }

    /// The node for `target`, refreshing the map once if it names none (a slot with no
    /// owner: the map may be stale).
    fn resolve(
        &self,
        target: &Target,
        from: ReadFrom,
        deadline: Option<Instant>,
    ) -> Result<String> {
        match self.addr_for(target, from) {
            Ok(a) => Ok(a),
            Err(_) => {
                self.refresh_within(false, deadline)?;
                self.addr_for(target, from)
            }
        }
    }

    /// What a failure at `addr` means, acting on what it says about the map.
    fn understand(&self, error: &Error, addr: &str) -> Failure {
        understand(&self.inner.map, &self.inner.seeds[0], error, addr)
    }

    fn safe_to_repeat(&self, cmd: &Cmd) -> bool {
        self.inner.options.retry.retry_writes || router::facts(cmd).contains(Flags::READONLY)
    }

    /// One try of `cmd` at `addr`, preceded by ASKING when `ask`.
    fn attempt(
        &self,
        cmd: &Cmd,
        addr: &str,
        ask: bool,
        readonly: bool,
        deadline: Option<Instant>,
    ) -> std::result::Result<Value, Failed> {
        let pool = self.pool(addr, readonly);
        // One span per attempt, naming the node it went to, as the async client's nodes
        // report theirs.
        let op = Op::command(pool.info(), cmd);
        let result = op.run(|| Self::attempt_on(&pool, cmd, ask, deadline));
        op.finish_with(result.as_ref().err().map(|f| &f.error));
        result
    }

    /// One attempt of `cmd` over a connection of `pool`.
    fn attempt_on(
        pool: &ConnectionPool,
        cmd: &Cmd,
        ask: bool,
        deadline: Option<Instant>,
    ) -> std::result::Result<Value, Failed> {
        let mut conn = pool.get_until(deadline).map_err(|e| Failed {
            error: e.into(),
            unsent: true,
        })?;
        conn.set_call_deadline(deadline);
        let timeout = reply_timeout(&conn, cmd);
        let mut header = [0u8; 24];
        let header = cmd.header(&mut header);
        let sent = if ask {
            let mut asking = BytesMut::new();
            Cmd::new("ASKING").encode_into(&mut asking);
            conn.send_with(&[&asking, header, cmd.body()], 2, timeout)
        } else {
            conn.send_with(&[header, cmd.body()], 1, timeout)
        };
        sent.map_err(|e| Failed {
            error: e.into(),
            unsent: true,
        })?;
        let lost = |e: redis_conn::Error| Failed {
            error: e.into(),
            unsent: false,
        };
        if ask {
            // ASKING answers OK; an error to it shows in the command's own reply.
            conn.read_reply().map_err(lost)?;
        }
        match conn.read_reply().map_err(lost)? {
            Value::Error(e) => Err(Failed {
                error: Error::from(redis_conn::Error::from_server_error(e)).for_command(cmd),
                unsent: false,
            }),
            v => Ok(v),
        }
    }

    /// Runs several routed commands together: their parts grouped per node, every node's
    /// request written before any reply is read, failed parts then retried one by one,
    /// and each command's parts merged. One result per command, in order.
    fn batch(
        &self,
        mut items: Vec<(&Cmd, Route)>,
        deadline: Option<Instant>,
    ) -> Result<Vec<Result<Value>>> {
        struct Part<'c> {
            item: usize,
            cmd: &'c Cmd,
            target: Target,
            keys: Vec<usize>,
        }
        // Split parts own their commands; they are moved here (the route keeps only its
        // kind, all the merge needs) so parts can borrow them.
        let mut owned: Vec<Vec<router::Part>> = items
            .iter_mut()
            .filter_map(|(_, route)| match route {
                Route::Split(parts) => Some(std::mem::take(parts)),
                _ => None,
            })
            .collect();
        let map = self.inner.map.read().clone();
        // In the order queued, a split command's parts where it stood: a node runs what it
        // is sent in order, so a SET queued after a DEL of the same key runs after it.
        let mut parts: Vec<Part<'_>> = Vec::with_capacity(items.len());
        let mut splits = owned.iter_mut();
        for (item, (cmd, route)) in items.iter().enumerate() {
            let cmd: &Cmd = cmd;
            let plain = |target| Part {
                item,
                cmd,
                target,
                keys: Vec::new(),
            };
            match route {
                Route::Slot(s) => parts.push(plain(Target::Slot(*s))),
                Route::Any => parts.push(plain(Target::Any)),
                Route::AllPrimaries => {
                    for p in map.primaries() {
                        parts.push(plain(Target::Node(p.to_owned())));
                    }
                }
                Route::AllNodes => {
                    for p in map.nodes() {
                        parts.push(plain(Target::Node(p.to_owned())));
                    }
                }
                Route::Split(_) => {
                    for p in splits.next().expect("one taken per split route") {
                        parts.push(Part {
                            item,
                            cmd: &p.cmd.0,
                            target: Target::Slot(p.slot),
                            keys: std::mem::take(&mut p.keys),
                        });
                    }
                }
            }
        }

        // Group per node (from one snapshot of the map), then write to every node before
        // reading from any.
        let mut groups: BTreeMap<(&str, bool), Vec<usize>> = BTreeMap::new();
        let mut results: Vec<Option<std::result::Result<Value, (Failed, String)>>> =
            (0..parts.len()).map(|_| None).collect();
        for (i, p) in parts.iter().enumerate() {
            let from = match p.target {
                Target::Node(_) => ReadFrom::Primary,
                _ => self.read_from(p.cmd),
            };
            let addr = match &p.target {
                Target::Node(a) => Some(a.as_str()),
                Target::Slot(slot) => map.node(*slot, from),
                Target::Any => map.primaries().first().copied(),
            };
            match addr {
                Some(addr) => groups
                    .entry((addr, matches!(from, ReadFrom::Replica(_))))
                    .or_default()
                    .push(i),
                None => {
                    results[i] = Some(Err((
                        Failed {
                            error: Error::Cluster("no node for the command".into()),
                            unsent: true,
                        },
                        String::new(),
                    )))
                }
            }
        }
        let mut sent = Vec::with_capacity(groups.len());
        for ((addr, readonly), members) in groups {
            let addr = addr.to_owned();
            let fail_all = |results: &mut Vec<_>, error: &Error| {
                for &m in &members {
                    results[m] = Some(Err((
                        Failed {
                            error: copy_error(error),
                            unsent: true,
                        },
                        addr.clone(),
                    )));
                }
            };
            let mut conn = match self.pool(&addr, readonly).get_until(deadline) {
                Ok(c) => c,
                Err(e) => {
                    fail_all(&mut results, &e.into());
                    continue;
                }
            };
            conn.set_call_deadline(deadline);
            let mut out = BytesMut::with_capacity(
                members
                    .iter()
                    .map(|&m| parts[m].cmd.body().len() + 24)
                    .sum(),
            );
            let mut timeout = ReplyTimeout::Default;
            for &m in &members {
                parts[m].cmd.encode_into(&mut out);
                timeout = longer(timeout, reply_timeout(&conn, parts[m].cmd));
            }
            match conn.send_with(&[&out], members.len(), timeout) {
                Ok(()) => sent.push((addr, conn, members)),
                Err(e) => fail_all(&mut results, &e.into()),
            }
        }
        for (addr, mut conn, members) in sent {
            let mut broken: Option<Error> = None;
            for &m in &members {
                let r = match &broken {
                    Some(e) => Err(Failed {
                        error: copy_error(e),
                        unsent: false,
                    }),
                    None => match conn.read_reply() {
                        Ok(Value::Error(e)) => Err(Failed {
                            error: Error::from(redis_conn::Error::from_server_error(e))
                                .for_command(parts[m].cmd),
                            unsent: false,
                        }),
                        Ok(v) => Ok(v),
                        Err(e) => {
                            let e = Error::from(e);
                            broken = Some(copy_error(&e));
                            Err(Failed {
                                error: e,
                                unsent: false,
                            })
                        }
                    },
                };
                results[m] = Some(r.map_err(|f| (f, addr.clone())));
            }
        }

        // Failed parts go on one by one, redirections and retries included.
        let mut values: Vec<Result<Value>> = Vec::with_capacity(parts.len());
        for (i, r) in results.into_iter().enumerate() {
            let p = &parts[i];
            values.push(match r {
                Some(Ok(v)) => Ok(v),
                Some(Err((failed, addr))) => {
                    if addr.is_empty() {
                        self.one(p.cmd, p.target.clone(), deadline, None)
                    } else {
                        self.one(p.cmd, p.target.clone(), deadline, Some((failed, addr)))
                    }
                }
                None => Err(Error::Cluster("a part was never sent".into())),
            });
        }

        Ok(merge_items(
            &items,
            parts.into_iter().map(|p| (p.item, p.keys)),
            values,
        ))
    }
}

/// The background refresh thread: fetches the map whenever the router says it is due,
/// until the client is dropped (`stopped` then disconnects). A failed refresh only waits
/// for the next; the client is held only while a refresh runs.
fn refresh_periodically(inner: &Weak<Inner>, interval: Duration, stopped: &mpsc::Receiver<()>) {
    loop {
        let due = {
            let Some(inner) = inner.upgrade() else { return };
            let last = *inner.refreshed.lock();
            match router::refresh_due(Some(interval), last, Instant::now()) {
                Refresh::Now => {
                    let client = ClusterClient {
                        inner,
                        replicas: false,
                    };
                    let _ = client.refresh(true);
                    continue;
                }
                Refresh::At(due) => due,
                Refresh::Off => return,
            }
        };
        let wait = due.saturating_duration_since(Instant::now());
        if stopped.recv_timeout(wait) != Err(mpsc::RecvTimeoutError::Timeout) {
            return;
        }
    }
}

/// What a failure at `addr` means, recording a `MOVED` in `map` and reporting a
/// redirection to the observability hooks of `seed`'s settings.
pub(super) fn understand(
    map: &RwLock<Arc<SlotMap>>,
    seed: &ConnectionInfo,
    error: &Error,
    addr: &str,
) -> Failure {
    let failure = match error {
        Error::Server(e) => {
            let e = e.server_error();
            if let Some(redirect) = router::parse_redirect(e, host_of(addr)) {
                report_redirect(seed, addr, &redirect);
            }
            classify_server_error(e, host_of(addr))
        }
        Error::Connect { .. }
        | Error::ConnectionLost(_)
        | Error::ConnectionBroken
        | Error::Timeout
        | Error::OutOfStep(_)
        | Error::Protocol(_) => Failure::NodeLost,
        _ => Failure::Final,
    };
    if let Failure::Moved { slot, addr } = &failure {
        let mut map = map.write();
        Arc::make_mut(&mut map).moved(*slot, addr);
    }
    failure
}

/// Reports a redirection that the node at `from` answered; the event describes that node.
fn report_redirect(seed: &ConnectionInfo, from: &str, redirect: &router::Redirect) {
    let (kind, slot, to) = match redirect {
        router::Redirect::Moved { slot, addr } => ("MOVED", *slot, addr),
        router::Redirect::Ask { slot, addr } => ("ASK", *slot, addr),
    };
    let mut info = seed.clone();
    let (host, port) = from.rsplit_once(':').unwrap_or((from, "6379"));
    info.addr = Addr::Tcp {
        host: host.to_owned(),
        port: port.parse().unwrap_or(6379),
    };
    redis_conn::observe::redirection(&info, kind, slot, to);
}

/// Each command's result from its parts' results: `parts` (the command each belongs to,
/// its keys) and `values` in the same order. A command sent whole, in one part, takes
/// that part's result as it is.
pub(super) fn merge_items(
    items: &[(&Cmd, Route)],
    parts: impl Iterator<Item = (usize, Vec<usize>)>,
    values: Vec<Result<Value>>,
) -> Vec<Result<Value>> {
    let parts: Vec<(usize, Vec<usize>)> = parts.collect();
    // The common pipeline: every command sent whole, one part each, in order. Its results
    // are the parts' results as they are.
    if parts.len() == items.len()
        && parts.iter().enumerate().all(|(i, (item, _))| *item == i)
        && items
            .iter()
            .all(|(_, route)| matches!(route, Route::Slot(_) | Route::Any))
    {
        return values;
    }
    let mut per_item: Vec<Vec<(Vec<usize>, Result<Value>)>> =
        (0..items.len()).map(|_| Vec::new()).collect();
    for ((item, keys), v) in parts.into_iter().zip(values) {
        per_item[item].push((keys, v));
    }
    items
        .iter()
        .zip(per_item)
        .map(|((cmd, route), mut results)| match route {
            Route::Slot(_) | Route::Any if results.len() == 1 => match results.pop() {
                Some((_, r)) => r,
                None => Err(Error::Cluster("no reply".into())),
            },
            _ => merge_item(cmd, route, results),
        })
        .collect()
}

/// One command's result from its parts' results.
pub(super) fn merge_item(
    cmd: &Cmd,
    route: &Route,
    results: Vec<(Vec<usize>, Result<Value>)>,
) -> Result<Value> {
    let mut values = Vec::with_capacity(results.len());
    for (keys, r) in results {
        // A server error is a reply (merged as one); anything else fails the command.
        let v = match r {
            Ok(v) => v,
            Err(Error::Server(e)) => Value::Error(e.into_server_error()),
            Err(e) => return Err(e),
        };
        values.push((keys, v));
    }
    let flags = router::facts(cmd);
    let merged = match route {
        Route::Split(_) => merge_split(flags, cmd.keys().count(), values),
        Route::AllPrimaries | Route::AllNodes => {
            merge_fanout(flags, values.into_iter().map(|(_, v)| v).collect())
        }
        _ => Ok(values.into_iter().next().map_or(Value::Nil, |(_, v)| v)),
    }
    .map_err(|e| Error::Cluster(e.to_string()))?;
    match merged {
        Value::Error(e) => {
            Err(Error::from(redis_conn::Error::from_server_error(e)).for_command(cmd))
        }
        v => Ok(v),
    }
}

/// The slot every key of `cmds` is in (`None` when they have no keys).
pub(super) fn one_slot<'c>(cmds: impl Iterator<Item = &'c Cmd>) -> Result<Option<u16>> {
    let mut slot = None;
    for cmd in cmds {
        for k in cmd.keys() {
            let s = router::key_slot(k);
            match slot {
                None => slot = Some(s),
                Some(first) if first != s => {
                    return Err(Error::CrossSlot(format!(
                        "{}: keys in slots {first} and {s}; a transaction, WATCH or script needs every key in one slot (use a hash tag)",
                        cmd.first_word()
                    )))
                }
                _ => {}
            }
        }
    }
    Ok(slot)
}

pub(super) fn cross_slot(e: RouteError) -> Error {
    match e {
        RouteError::CrossSlot { command, slots } => Error::CrossSlot(format!(
            "{command}: keys in slots {} and {}; only MGET, MSET, DEL, EXISTS, UNLINK and TOUCH are split (use a hash tag)",
            slots.0, slots.1
        )),
    }
}

/// The error a call that gives up after `attempts` reports: `error`, its last failure;
/// but when that is the call's budget running out in the middle of an attempt made
/// because the cluster was busy (`TRYAGAIN`, `CLUSTERDOWN`), the busy reply `busy`,
/// which is why the call failed (docs/cluster.md: a condition that outlasts the budget
/// fails the call with its server error).
pub(super) fn give_up(
    error: Error,
    busy: Option<Error>,
    deadline: Option<Instant>,
    attempts: u32,
) -> Error {
    let budget_spent = deadline.is_some_and(|d| Instant::now() >= d);
    let error = match busy {
        Some(busy) if budget_spent && matches!(error, Error::Timeout) => busy,
        _ => error,
    };
    error.after_attempts(attempts)
}

/// A copy of an error for each command that shared the failed connection (errors are
/// not `Clone`: they may hold an `io::Error`).
pub(super) fn copy_error(e: &Error) -> Error {
    match e {
        Error::Connect { addr, source } => Error::Connect {
            addr: addr.clone(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        Error::ConnectionLost(source) => {
            Error::ConnectionLost(std::io::Error::new(source.kind(), source.to_string()))
        }
        Error::Timeout => Error::Timeout,
        Error::Server(s) => Error::Server(s.clone()),
        Error::PoolExhausted(d) => Error::PoolExhausted(*d),
        Error::OutOfStep(m) => Error::OutOfStep(m.clone()),
        Error::Cluster(m) => Error::Cluster(m.clone()),
        _ => Error::ConnectionBroken,
    }
}

/// Every command method runs on the cluster, routed by its declared keys.
impl Executor for &ClusterClient {
    type Mode = redis_commands::BinaryMode;
    type Output<T> = Result<T>;

    fn run<T: FromValue>(self, typed: Typed<T>) -> Result<T> {
        crate::client::refuse_on_pool(&typed.cmd, crate::client::Pooled::Cluster)?;
        let v = self.request(&typed.cmd)?;
        convert(
            &typed.cmd,
            overridden(&self.inner.callbacks, &typed.cmd, v)?,
        )
    }
}

impl Text<ClusterClient> {
    /// A cluster pipeline whose queued commands are typed as text.
    pub fn pipeline(&self) -> Text<ClusterPipeline> {
        Text(self.0.pipeline())
    }

    /// A typed cluster pipeline whose replies are text (`Option<String>` for GET).
    pub fn typed_pipeline(&self) -> TypedPipeline<(), TextMode, ClusterPipeline> {
        TypedPipeline::new(self.0.pipeline())
    }

    /// Iterates over the key names of the whole cluster as `String`s (see
    /// [`ClusterClient::scan_iter`]). A name that is not UTF-8 is an error item.
    pub fn scan_iter(&self, options: ScanOptions) -> ClusterScan<'_, String> {
        self.0.walk(options)
    }

    /// Iterates over the members of the set at `key` as `String`s (SSCAN).
    pub fn sscan_iter(
        &self,
        key: impl Into<Bytes>,
        options: ScanOptions,
    ) -> ScanIter<'_, String, ClusterClient> {
        ScanIter::new(&self.0, ScanState::sscan(key, options).items_as())
    }

    /// Iterates over the `(field, value)` pairs of the hash at `key` as `String`s (HSCAN).
    pub fn hscan_iter(
        &self,
        key: impl Into<Bytes>,
        options: ScanOptions,
    ) -> ScanIter<'_, (String, String), ClusterClient> {
        ScanIter::new(&self.0, ScanState::hscan(key, options).items_as())
    }

    /// Iterates over the `(member, score)` pairs of the sorted set at `key`, members as
    /// `String`s (ZSCAN).
    pub fn zscan_iter(
        &self,
        key: impl Into<Bytes>,
        options: ScanOptions,
    ) -> ScanIter<'_, (String, f64), ClusterClient> {
        ScanIter::new(&self.0, ScanState::zscan(key, options).items_as())
    }

    /// [`ClusterClient::transaction`] with `f` given the WATCH-ed pipeline in text mode,
    /// and returning the text pipeline to execute.
    ///
    /// # Errors
    /// As [`ClusterClient::transaction`].
    pub fn transaction<K, F>(&self, keys: K, mut f: F) -> Result<Vec<Value>>
    where
        K: ToArgs,
        F: FnMut(Text<Watched>) -> Result<Text<Pipeline>>,
    {
        self.0
            .transaction(keys, |w| f(Text(w)).map(Text::into_inner))
    }
}

impl Text<ClusterPipeline> {
    /// [`ClusterPipeline::transaction`], keeping the pipeline in text mode.
    pub fn transaction(&mut self, on: bool) -> &mut Self {
        self.0.transaction(on);
        self
    }

    /// [`ClusterPipeline::raise_on_error`], keeping the pipeline in text mode.
    pub fn raise_on_error(&mut self, raise: bool) -> &mut Self {
        self.0.raise_on_error(raise);
        self
    }

    /// [`ClusterPipeline::watch`], with the immediate-mode pipeline in text mode.
    ///
    /// # Errors
    /// As [`ClusterPipeline::watch`].
    pub fn watch<K: ToArgs>(self, keys: K) -> Result<Text<Watched>> {
        self.0.watch(keys).map(Text)
    }
}

/// Commands queued for a cluster, from [`ClusterClient::pipeline`]: the methods of
/// [`Pipeline`](crate::Pipeline) (`transaction`, `raise_on_error`, `execute_command`,
/// `invoke_script`, `execute`, `query` …), with the same defaults.
///
/// By default the commands run as one MULTI … EXEC on one node, which needs every key
/// of every command in one slot (use a hash tag: `{user:1}:name`, `{user:1}:visits`);
/// otherwise [`execute`](ClusterPipeline::execute) refuses before sending, with an
/// [`Error::CrossSlot`] that says to use a hash tag or `transaction(false)`.
///
/// With [`transaction(false)`](ClusterPipeline::transaction) each queued command is
/// routed as it would be alone (split, fanned out …), the commands are grouped per node
/// and every node's request is written before any reply is read; `MOVED`, `ASK` and
/// retries are handled per command. The results come back in queue order. Not atomic:
/// each node runs its part at its own moment.
///
/// ```no_run
/// use redis_client::cluster::ClusterClient;
/// use redis_client::prelude::*;
///
/// let c = ClusterClient::open(&["redis://127.0.0.1:7000"])?;
/// let mut tx = c.pipeline(); // MULTI … EXEC: one slot
/// tx.set("{user:1}:name", "ada").incr("{user:1}:visits");
/// let (stored, visits): (bool, i64) = tx.query()?;
/// let mut pipe = c.pipeline();
/// pipe.transaction(false).set("a", 1).incr("b").get("a"); // any slots, per node
/// let replies = pipe.execute()?;
/// # Ok::<(), redis_client::Error>(())
/// ```
#[derive(Debug)]
#[must_use = "a pipeline sends nothing until `execute`"]
pub struct ClusterPipeline {
    client: ClusterClient,
    commands: Vec<Queued>,
    transaction: bool,
    raise_on_error: bool,
    /// Scripts of queued EVALSHAs, loaded on every primary just before sending.
    scripts: Vec<Script>,
}

impl ClusterPipeline {
    /// Runs the commands as one MULTI … EXEC (`true`, the default; every key in one slot)
    /// or sends them grouped per node (`false`). By `&mut`, as on every pipeline.
    pub fn transaction(&mut self, on: bool) -> &mut Self {
        self.transaction = on;
        self
    }

    /// Makes [`execute`](ClusterPipeline::execute) fail on the first command the server
    /// refused (`true`, the default) or return every result with errors in place as
    /// [`Value::Error`] (`false`).
    pub fn raise_on_error(&mut self, raise: bool) -> &mut Self {
        self.raise_on_error = raise;
        self
    }

    /// Makes the queued commands a transaction, as [`Pipeline::multi`](crate::Pipeline::multi)
    /// (here the same as `transaction(true)`).
    pub fn multi(&mut self) -> &mut Self {
        self.transaction(true)
    }

    /// WATCHes `keys` (all in one slot) on the primary serving them, as
    /// [`Pipeline::watch`](crate::Pipeline::watch) does on one server: the returned
    /// [`Watched`] runs commands at once on that node, and its
    /// [`multi`](Watched::multi) gives back a pipeline of that node, whose commands must
    /// be in the same slot. Commands queued before the call stay queued.
    /// [`ClusterClient::transaction`] is the retry loop around it.
    ///
    /// # Errors
    /// [`Error::CrossSlot`] when the keys are in several slots (nothing sent); pool,
    /// connection and server errors.
    pub fn watch<K: ToArgs>(self, keys: K) -> Result<Watched> {
        let mut watch = Cmd::new("WATCH");
        watch.key(&keys);
        let node = self.client.watching_node(&watch)?;
        let mut pipe = node.pipeline();
        pipe.raise_on_error(self.raise_on_error);
        for q in &self.commands {
            pipe.queue(q.cmd.clone());
        }
        pipe.watch(keys)
    }

    /// Queues any command given as its arguments; its result is the raw reply after the
    /// default response callback. Its keys are not declared, so it is routed as
    /// [`ClusterClient::execute_command`] routes it.
    pub fn execute_command<A: ToArgs>(&mut self, args: A) -> &mut Self {
        self.queue(Cmd::from_args(args))
    }

    /// Queues a command built by hand.
    pub fn queue(&mut self, cmd: Cmd) -> &mut Self {
        self.commands.push(Queued {
            cmd,
            check: check::<Value>,
            post: None,
        });
        self
    }

    /// Queues a script run; every script queued is loaded (SCRIPT LOAD on every primary)
    /// just before the pipeline is sent, so NOSCRIPT cannot fail it.
    pub fn invoke_script(&mut self, call: ScriptCall<'_>) -> &mut Self {
        if !self.scripts.iter().any(|s| s.sha() == call.script().sha()) {
            self.scripts.push(call.script().clone());
        }
        self.queue(call.to_cmd())
    }

    /// The number of queued commands.
    pub fn len(&self) -> usize {
        self.commands.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    /// Empties the queue.
    pub fn reset(&mut self) {
        self.commands.clear();
        self.scripts.clear();
    }

    /// Sends the queued commands and returns one result per command, after the response
    /// callbacks; the queue is emptied, whatever the outcome.
    ///
    /// # Errors
    /// [`Error::CrossSlot`] (before sending) for a transaction whose keys are in several
    /// slots, or a command that cannot be routed; as [`Pipeline::execute`](crate::Pipeline::execute)
    /// otherwise ([`Error::PipelineCommand`] naming the first command the server refused,
    /// with `raise_on_error`; [`Error::Watch`], [`Error::ExecAbort`] for a transaction).
    pub fn execute(&mut self) -> Result<Vec<Value>> {
        let commands = std::mem::take(&mut self.commands);
        let result = self.run_queued(&commands);
        self.reset();
        result
    }

    /// Sends the queued commands as [`execute`](ClusterPipeline::execute) does and converts
    /// the results, as a list, into `T`: a tuple with one element per command, a `Vec` …
    ///
    /// # Errors
    /// As [`execute`](ClusterPipeline::execute), and [`Error::Reply`] naming the first
    /// command whose reply does not fit its own method's type.
    pub fn query<T: FromValue>(&mut self) -> Result<T> {
        let commands = std::mem::take(&mut self.commands);
        let result = self.run_queued(&commands);
        self.reset();
        convert_results(&commands, result?)
    }

    fn run_queued(&mut self, commands: &[Queued]) -> Result<Vec<Value>> {
        if commands.is_empty() {
            return Ok(Vec::new());
        }
        let batch = if self.transaction {
            Batch::Transaction
        } else {
            Batch::Pipeline
        };
        let op = Op::batch(
            &self.client.inner.seeds[0],
            batch,
            commands.iter().map(|q| &q.cmd),
        );
        let result = op.run(|| self.run_unobserved(commands));
        op.finish(&result);
        result
    }

    fn run_unobserved(&mut self, commands: &[Queued]) -> Result<Vec<Value>> {
        let slot = match self.transaction {
            true => Some(pipeline_slot(commands)?),
            false => None,
        };
        for script in &self.scripts {
            // The declared SCRIPT LOAD: its flags send it to every primary.
            self.client
                .request(&redis_commands::cmd::scripting::script_load(script.source()).cmd)?;
        }
        if let Some(slot) = slot {
            return self.run_transaction(commands, slot);
        }
        let mut items = Vec::with_capacity(commands.len());
        for q in commands {
            items.push((&q.cmd, router::route(&q.cmd).map_err(cross_slot)?));
        }
        let deadline = self.client.deadline(None);
        let results = self.client.batch(items, deadline)?;
        finish_batch(
            &self.client.inner.callbacks,
            self.raise_on_error,
            commands,
            results,
        )
    }

    fn run_transaction(&self, commands: &[Queued], slot: Option<u16>) -> Result<Vec<Value>> {
        // One budget for every try and the map refreshes between them, as for a command.
        let deadline = self.client.deadline(None);
        let mut redirects = 0;
        loop {
            let addr = self
                .client
                .addr_for(&Target::Slot(slot.unwrap_or(0)), ReadFrom::Primary)?;
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left.is_some_and(|l| l.is_zero()) {
                return Err(Error::Timeout);
            }
            let node = Redis::from_pool(self.client.pool(&addr, false))
                .with_retry_policy(RetryPolicy::none().with_budget(left));
            let mut pipe = node.pipeline();
            pipe.raise_on_error(self.raise_on_error);
            for q in commands {
                pipe.queue(q.cmd.clone());
            }
            match pipe.execute() {
                // Queued commands answer MOVED when the slot moved: the server discarded
                // the transaction, nothing ran; learn the new owner and send it there.
                Err(Error::ExecAbort { error, .. })
                    if error.code() == ErrorCode::MOVED
                        && redirects < self.client.inner.options.max_redirects =>
                {
                    redirects += 1;
                    let _ = self.client.understand(&Error::Server(error.into()), &addr);
                    let _ = self.client.refresh_within(false, deadline);
                }
                other => return other,
            }
        }
    }
}

/// The slot of a pipeline run as a transaction: every key of every command must be in it,
/// since MULTI … EXEC runs on one node. Shared by the blocking and the async client.
///
/// # Errors
/// [`Error::CrossSlot`] saying how to fix it: a hash tag, or `transaction(false)`.
pub(super) fn pipeline_slot(commands: &[Queued]) -> Result<Option<u16>> {
    let mut first: Option<(u16, usize)> = None;
    for (index, q) in commands.iter().enumerate() {
        for k in q.cmd.keys() {
            let s = router::key_slot(k);
            match first {
                None => first = Some((s, index)),
                Some((slot, _)) if slot != s => {
                    return Err(Error::CrossSlot(format!(
                        "a cluster pipeline is a MULTI … EXEC transaction on one node by \
                         default, and its keys are in slots {slot} and {s} (command #{index}, \
                         {}): put every key in one slot with a hash tag ({{user:1}}:name), or \
                         call `transaction(false)` on the pipeline to send its commands to \
                         their nodes without MULTI … EXEC (not atomic)",
                        q.cmd.first_word()
                    )))
                }
                _ => {}
            }
        }
    }
    Ok(first.map(|(slot, _)| slot))
}

/// The results of a pipeline sent per node: the response callbacks applied, and a
/// command the server refused raised (`raise_on_error`) or left in place. Shared by the
/// blocking and the async client.
pub(super) fn finish_batch(
    callbacks: &Callbacks,
    raise_on_error: bool,
    commands: &[Queued],
    results: Vec<Result<Value>>,
) -> Result<Vec<Value>> {
    let mut out = Vec::with_capacity(results.len());
    for (index, (r, q)) in results.into_iter().zip(commands).enumerate() {
        match r {
            Ok(v) => {
                out.push(
                    dynamic_reply(callbacks, &q.cmd, v).map_err(|source| Error::Reply {
                        command: describe(index, &q.cmd),
                        source,
                    })?,
                )
            }
            Err(Error::Server(e)) if raise_on_error => {
                return Err(Error::PipelineCommand {
                    index,
                    command: q.cmd.first_word(),
                    error: e.into_server_error(),
                })
            }
            Err(Error::Server(e)) => out.push(Value::Error(e.into_server_error())),
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Each command method queues its command and returns the pipeline.
impl<'a> Executor for &'a mut ClusterPipeline {
    type Mode = redis_commands::BinaryMode;
    type Output<T> = &'a mut ClusterPipeline;

    fn run<T: FromValue>(self, cmd: Typed<T>) -> &'a mut ClusterPipeline {
        self.commands.push(Queued {
            cmd: cmd.cmd,
            check: check::<T>,
            post: None,
        });
        self
    }
}

impl sealed::Sealed for ClusterPipeline {}

impl Queues for ClusterPipeline {
    fn with_transaction(&mut self, transaction: bool) {
        self.transaction(transaction);
    }

    fn queue_script(&mut self, call: ScriptCall<'_>) {
        self.invoke_script(call);
    }

    fn queue_typed<T: FromValue>(&mut self, typed: Typed<T>) {
        (&mut *self).run(typed);
    }
}

/// The typed pipeline of a [`ClusterClient`].
impl<L, M> TypedPipeline<L, M, ClusterPipeline> {
    /// Sends every queued command and returns their replies as a tuple, each of the type
    /// its command method declares, as [`TypedPipeline::execute`] does on one server.
    ///
    /// # Errors
    /// As [`ClusterPipeline::execute`], and [`Error::Reply`] naming the first command
    /// whose reply does not convert.
    pub fn execute(self) -> Result<L::Tuple>
    where
        L: Replies,
    {
        let (mut pipe, names) = self.into_parts();
        let values = pipe.execute()?;
        L::convert(values, &names)
    }
}

/// The key names of a whole cluster, from [`ClusterClient::scan_iter`] (`Bytes`) or
/// [`Text<ClusterClient>::scan_iter`] (`String`: a name that is not UTF-8 is an error
/// item).
#[derive(Debug)]
#[must_use = "iterators are lazy and scan nothing unless consumed"]
pub struct ClusterScan<'c, T = Bytes> {
    client: &'c ClusterClient,
    options: ScanOptions,
    walk: ScanWalk,
    page: std::vec::IntoIter<T>,
}

impl<T: ScanItem> Iterator for ClusterScan<'_, T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        loop {
            if let Some(k) = self.page.next() {
                return Some(Ok(k));
            }
            let (addr, cursor) = match self.walk.next() {
                Step::Scan(addr, cursor) => (addr.to_owned(), cursor),
                Step::Recheck => {
                    if let Err(e) = self.client.refresh(true) {
                        self.walk.finish();
                        return Some(Err(e));
                    }
                    self.walk.recheck(&self.client.slot_map());
                    continue;
                }
                Step::Done => return None,
            };
            let cmd = T::page(None, cursor, &self.options).cmd;
            let deadline = self.client.deadline(Some(&cmd));
            let reply = self
                .client
                .one(&cmd, Target::Node(addr), deadline, None)
                .and_then(|v| {
                    <(u64, Vec<T>)>::from_value(v).map_err(|source| Error::Reply {
                        command: "SCAN".into(),
                        source,
                    })
                });
            match reply {
                Ok((cursor, keys)) => {
                    if let Err(source) = self.walk.advance(cursor) {
                        return Some(Err(Error::Reply {
                            command: "SCAN".into(),
                            source,
                        }));
                    }
                    self.page = keys.into_iter();
                }
                Err(e) if node_gone(&e) => {
                    let refreshed = self.client.refresh(true).is_ok();
                    if !refreshed || !self.walk.node_lost(&self.client.slot_map()) {
                        self.walk.finish();
                        return Some(Err(e));
                    }
                }
                Err(e) => {
                    self.walk.finish();
                    return Some(Err(e));
                }
            }
        }
    }
}
