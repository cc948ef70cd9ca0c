//! The async cluster client: drives the router over one async client (a multiplexed
//! connection and a pool) per node.

use super::client::{
    cross_slot, finish_batch, give_up, merge_items, pipeline_slot, understand, ClusterOptions,
    Failed, Target,
};
use super::router::{self, host_of, Attempts, Failure, Next, ReadFrom, Refresh, Route, SlotMap};
use crate::aio::{Redis, Request};
use crate::client::{call_budget, convert, dynamic_reply, overridden, reply_wait};
use crate::pipeline::{check, convert_results, Queued};
use crate::typed::{sealed, Queues};
use crate::{Error, Replies, Result, RetryPolicy, Script, ScriptCall, Text, TypedPipeline};
use bytes::BytesMut;
use parking_lot::{Mutex, RwLock};
use redis_commands::{
    BinaryMode, Callbacks, Cmd, Executor, Flags, FromValue, TextMode, ToArgs, Typed,
};
use redis_conn::{Addr, ConnectionInfo, ReplyTimeout};
use resp_proto::{ErrorCode, Value};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

mod pubsub;
mod scan;
mod transaction;

pub use pubsub::{ClusterMessages, ClusterPubSub};
pub use scan::ClusterScanStream;

/// The shortest time between two slot map refreshes (as the blocking client).
const MIN_REFRESH_INTERVAL: Duration = Duration::from_millis(50);

/// The async Redis Cluster client (feature `tokio`): the blocking
/// [`ClusterClient`](super::ClusterClient)'s routing, redirections, retries, splitting and
/// merging, with every command method returning a future. Each node is an async
/// [`Redis`] (one multiplexed connection, plus a pool for blocking
/// commands); a split command or a pipeline sends to every node at once. Cheap to clone.
/// WATCH transactions ([`transaction`](ClusterClient::transaction)), pub/sub with shard
/// channels ([`pubsub`](ClusterClient::pubsub)) and SCAN over the whole cluster
/// ([`scan_stream`](ClusterClient::scan_stream)) behave as on the blocking client.
///
/// ```no_run
/// use redis_client::cluster::aio::ClusterClient;
/// use redis_client::prelude::*;
///
/// # async fn demo() -> redis_client::Result<()> {
/// let c = ClusterClient::open(&["redis://127.0.0.1:7000"]).await?;
/// c.set("foo", "bar").await?;
/// let values = c.mget(["foo", "bar", "baz"]).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ClusterClient {
    inner: Arc<Inner>,
    replicas: bool,
}

#[derive(Debug)]
struct Inner {
    seeds: Vec<ConnectionInfo>,
    options: ClusterOptions,
    map: RwLock<Arc<SlotMap>>,
    /// Ordered, so that whatever walks them does so in the same order every run.
    nodes: Mutex<BTreeMap<(String, bool), Redis>>,
    /// Opens every node connection's transport, when given.
    connector: Option<Arc<dyn redis_conn::aio::Connector>>,
    /// When the map was last refreshed; held across a refresh so one runs at a time.
    refreshed: tokio::sync::Mutex<Option<Instant>>,
    next: AtomicUsize,
    callbacks: Callbacks,
    /// Dropped with the client, which ends the background refresh task at once.
    _stop_refresher: tokio::sync::oneshot::Sender<()>,
}

impl ClusterClient {
    /// A client for the cluster that `seeds` belong to; fetches the slot map.
    ///
    /// # Errors
    /// [`Error::Url`] for an invalid URL; [`Error::Cluster`] when no seed gives a map.
    pub async fn open<S: AsRef<str>>(seeds: &[S]) -> Result<ClusterClient> {
        let infos = seeds
            .iter()
            .map(|s| s.as_ref().parse::<ConnectionInfo>())
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Self::with_options(infos, ClusterOptions::default()).await
    }

    /// A client from seed connection settings and options.
    ///
    /// # Errors
    /// [`Error::Cluster`] when there is no seed or no seed gives a map.
    pub async fn with_options(seeds: Vec<ConnectionInfo>, options: ClusterOptions) -> Result<Self> {
        Self::build(seeds, options, None).await
    }

    /// As [`ClusterClient::with_options`], every node connection's transport opened by
    /// `connector`, which is given a [`Dialer`](redis_conn::aio::Dialer) whose settings
    /// name the node (`dialer.info().addr`): a tunnel to each node, an in-memory cluster.
    ///
    /// # Errors
    /// As [`ClusterClient::with_options`].
    pub async fn with_connector(
        seeds: Vec<ConnectionInfo>,
        options: ClusterOptions,
        connector: Arc<dyn redis_conn::aio::Connector>,
    ) -> Result<Self> {
        Self::build(seeds, options, Some(connector)).await
    }

    async fn build(
        seeds: Vec<ConnectionInfo>,
        options: ClusterOptions,
        connector: Option<Arc<dyn redis_conn::aio::Connector>>,
    ) -> Result<Self> {
        if seeds.is_empty() {
            return Err(Error::Cluster("no seed node given".into()));
        }
        let replicas = options.read_from_replicas;
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let client = ClusterClient {
            inner: Arc::new(Inner {
                seeds,
                options,
                map: RwLock::new(Arc::new(SlotMap::empty())),
                nodes: Mutex::new(BTreeMap::new()),
                connector,
                refreshed: tokio::sync::Mutex::new(None),
                next: AtomicUsize::new(0),
                callbacks: Callbacks::new(),
                _stop_refresher: stop,
            }),
            replicas,
        };
        client.refresh(true).await?;
        let interval = client.inner.options.refresh_interval;
        if let Some(interval) = interval.filter(|i| !i.is_zero()) {
            tokio::spawn(refresh_periodically(
                Arc::downgrade(&client.inner),
                interval,
                stopped,
            ));
        }
        Ok(client)
    }

    /// This client with read-only commands served by replicas (`true`) or primaries.
    pub fn on_replicas(&self, on: bool) -> ClusterClient {
        ClusterClient {
            inner: self.inner.clone(),
            replicas: on,
        }
    }

    /// This client in text mode.
    pub fn text(&self) -> Text<ClusterClient> {
        Text(self.clone())
    }

    /// The slot map in use.
    pub fn slot_map(&self) -> Arc<SlotMap> {
        self.inner.map.read().clone()
    }

    /// The `host:port` of every node this client keeps connections for: the nodes of the
    /// slot map it has used, and any seed it asked for a map. A node the map no longer
    /// lists is dropped (its connections closed) when the map is next fetched.
    pub fn known_nodes(&self) -> Vec<String> {
        let mut nodes: Vec<String> = self
            .inner
            .nodes
            .lock()
            .keys()
            .map(|(a, _)| a.clone())
            .collect();
        nodes.sort();
        nodes.dedup();
        nodes
    }

    /// Fetches the slot map again now.
    ///
    /// # Errors
    /// [`Error::Cluster`] when no known node gives a map.
    pub async fn refresh_slots(&self) -> Result<()> {
        self.refresh(true).await
    }

    /// As [`refresh_slots`](Self::refresh_slots), by `deadline`: the wait for a refresh
    /// another task runs, and every node asked, fit in it.
    pub(crate) async fn refresh_slots_until(&self, deadline: Option<Instant>) -> Result<()> {
        self.refresh_within(true, deadline).await
    }

    /// Runs any command given as its arguments and returns the raw reply (routed as the
    /// blocking client's `execute_command`).
    ///
    /// # Errors
    /// As the blocking client's.
    pub async fn execute_command<A: ToArgs>(&self, args: A) -> Result<Value> {
        let cmd = Cmd::from_args(args);
        let v = self.request(&cmd).await?;
        dynamic_reply(&self.inner.callbacks, &cmd, v).map_err(|source| Error::Reply {
            command: cmd.first_word(),
            source,
        })
    }

    /// A cluster pipeline, as the blocking [`ClusterClient::pipeline`](super::ClusterClient::pipeline):
    /// a MULTI … EXEC transaction on one slot's node unless `transaction(false)`.
    pub fn pipeline(&self) -> ClusterPipeline {
        ClusterPipeline {
            client: self.clone(),
            commands: Vec::new(),
            transaction: true,
            raise_on_error: true,
            scripts: Vec::new(),
        }
    }

    /// A pipeline typed by the commands queued on it: `execute` resolves to a tuple of
    /// their replies, as [`aio::Redis::typed_pipeline`](crate::aio::Redis::typed_pipeline).
    pub fn typed_pipeline(&self) -> TypedPipeline<(), BinaryMode, ClusterPipeline> {
        TypedPipeline::new(self.pipeline())
    }

    /// Runs a script call on the node serving its keys: EVALSHA, then EVAL on NOSCRIPT.
    ///
    /// # Errors
    /// As the blocking client's `invoke_script`.
    pub async fn invoke_script<T: FromValue>(&self, call: ScriptCall<'_>) -> Result<T> {
        let evalsha = call.to_cmd();
        let reply = match self.request(&evalsha).await {
            Err(Error::Server(e)) if e.code() == ErrorCode::NOSCRIPT => {
                let args: Vec<&[u8]> = evalsha.args().collect();
                let nkeys = evalsha.keys().count();
                let rest = args.get(3 + nkeys..).unwrap_or_default();
                let mut cmd = Cmd::new("EVAL");
                cmd.arg(call.script().source());
                cmd.arg(nkeys);
                cmd.key(evalsha.keys().collect::<Vec<_>>());
                cmd.arg(rest);
                self.request(&cmd).await?
            }
            other => other?,
        };
        convert(&evalsha, reply)
    }

    /// Sends `cmd` where it belongs and returns its reply, within the call's one budget.
    pub(crate) async fn request(&self, cmd: &Cmd) -> Result<Value> {
        let deadline = self.deadline(Some(cmd));
        let work = async {
            match router::route(cmd).map_err(cross_slot)? {
                Route::Slot(slot) => self.one(cmd, Target::Slot(slot), deadline, None).await,
                Route::Any => self.one(cmd, Target::Any, deadline, None).await,
                route => {
                    let mut out = self.batch(vec![(cmd, route)], deadline).await?;
                    out.pop()
                        .unwrap_or_else(|| Err(Error::Cluster("no reply".into())))
                }
            }
        };
        within(deadline, work).await
    }

    fn deadline(&self, cmd: Option<&Cmd>) -> Option<Instant> {
        call_budget(&self.inner.options.retry, &self.inner.seeds[0], cmd)
            .map(|b| redis_conn::aio::now() + b)
    }

    fn read_from(&self, cmd: &Cmd) -> ReadFrom {
        if self.replicas && router::facts(cmd).contains(Flags::READONLY) {
            ReadFrom::Replica(self.inner.next.fetch_add(1, Ordering::Relaxed))
        } else {
            ReadFrom::Primary
        }
    }

    /// The async client of the node at `addr`, retrying nothing itself: the cluster
    /// client decides.
    fn node(&self, addr: &str, readonly: bool) -> Redis {
        let mut nodes = self.inner.nodes.lock();
        nodes
            .entry((addr.to_owned(), readonly))
            .or_insert_with(|| {
                let mut info = self.inner.seeds[0].clone();
                let (host, port) = addr.rsplit_once(':').unwrap_or((addr, "6379"));
                info.addr = Addr::Tcp {
                    host: host.to_owned(),
                    port: port.parse().unwrap_or(6379),
                };
                info.readonly = readonly;
                let pool = self.inner.options.pool.clone();
                let node = match &self.inner.connector {
                    Some(c) => Redis::with_connector(info, Arc::clone(c), pool),
                    None => Redis::with_pool_options(info, pool),
                };
                node.with_retry_policy(RetryPolicy::none())
            })
            .clone()
    }

    fn addr_for(&self, target: &Target, from: ReadFrom) -> Result<String> {
        let map = self.inner.map.read().clone();
        match target {
            Target::Node(a) => Ok(a.clone()),
            Target::Slot(slot) => map
                .node(*slot, from)
                .map(str::to_owned)
                .ok_or_else(|| Error::Cluster(format!("slot {slot} has no node"))),
            Target::Any => {
                let primaries = map.primaries();
                if primaries.is_empty() {
                    return Err(Error::Cluster("no primary known".into()));
                }
                let n = self.inner.next.fetch_add(1, Ordering::Relaxed);
                Ok(primaries[n % primaries.len()].to_owned())
            }
        }
    }

    async fn resolve(
        &self,
        target: &Target,
        from: ReadFrom,
        deadline: Option<Instant>,
    ) -> Result<String> {
        match self.addr_for(target, from) {
            Ok(a) => Ok(a),
            Err(_) => {
                self.refresh_within(false, deadline).await?;
                self.addr_for(target, from)
            }
        }
    }

    async fn refresh(&self, force: bool) -> Result<()> {
        self.refresh_within(force, None).await
    }

    /// As `refresh`, within a call's `deadline`: waiting for a refresh another task runs,
    /// and every node asked, fit in it (`None`: each node asked gets a whole budget).
    async fn refresh_within(&self, force: bool, deadline: Option<Instant>) -> Result<()> {
        let started = redis_conn::aio::now();
        let mut last = within(deadline, async { Ok(self.inner.refreshed.lock().await) }).await?;
        if !force && last.is_some_and(|t| t + MIN_REFRESH_INTERVAL > started) {
            return Ok(());
        }
        let current = self.slot_map();
        let mut candidates: Vec<String> = current.nodes().into_iter().map(str::to_owned).collect();
        let seeds = super::seed_addrs(&self.inner.seeds);
        for a in &seeds {
            if !candidates.contains(a) {
                candidates.push(a.clone());
            }
        }
        let mut last_error = None;
        for addr in candidates {
            if deadline.is_some_and(|d| redis_conn::aio::now() >= d) {
                return Err(Error::Timeout);
            }
            match self.fetch_map(&addr, deadline).await {
                Ok(map) if map.is_complete() || current.shards().is_empty() => {
                    self.inner
                        .nodes
                        .lock()
                        .retain(|(a, _), _| super::still_needed(&map, a));
                    *self.inner.map.write() = Arc::new(map);
                    *last = Some(redis_conn::aio::now());
                    return Ok(());
                }
                Ok(_) => last_error = Some(format!("{addr}: the map does not cover every slot")),
                Err(e) => last_error = Some(format!("{addr}: {e}")),
            }
        }
        *last = Some(redis_conn::aio::now());
        Err(Error::Cluster(format!(
            "no node gave a slot map (last: {})",
            last_error.unwrap_or_default()
        )))
    }

    async fn fetch_map(&self, addr: &str, within_call: Option<Instant>) -> Result<SlotMap> {
        let node = self.node(addr, false);
        let host = host_of(addr);
        let bad = |e: router::MapError| Error::Cluster(e.to_string());
        // One bound for both questions, as the blocking client's.
        let deadline = match (self.deadline(None), within_call) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let shards = within(deadline, node.raw(&Cmd::new("CLUSTER SHARDS"))).await;
        match shards {
            Ok(v) => SlotMap::parse_shards(&v, host).map_err(bad),
            Err(Error::Server(_)) => {
                let v = within(deadline, node.raw(&Cmd::new("CLUSTER SLOTS"))).await?;
                SlotMap::parse_slots(&v, host).map_err(bad)
            }
            Err(e) => Err(e),
        }
    }

    /// One command to one target, redirections and retries included.
    async fn one(
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
                        None => (self.resolve(&target, from, deadline).await?, false),
                    };
                    let readonly = !ask
                        && matches!(from, ReadFrom::Replica(_))
                        && !matches!(target, Target::Node(_));
                    // Bounded here as well as by the call's outer timeout, so that the
                    // budget running out mid-attempt is seen by the loop, which then
                    // reports what made it try again (see `give_up`).
                    let attempt = self.attempt(cmd, &addr, ask, readonly);
                    let result = match deadline {
                        Some(d) => tokio::time::timeout_at(d.into(), attempt)
                            .await
                            .unwrap_or(Err(Failed {
                                error: Error::Timeout,
                                unsent: false,
                            })),
                        None => attempt.await,
                    };
                    match result {
                        Ok(v) => return Ok(v),
                        Err(f) => (f, addr),
                    }
                }
            };
            let failure = understand(&self.inner.map, &self.inner.seeds[0], &failed.error, &addr);
            let may_repeat = failed.unsent
                || self.inner.options.retry.retry_writes
                || router::facts(cmd).contains(Flags::READONLY);
            match attempts.next(&failure, may_repeat, redis_conn::aio::now()) {
                Next::GiveUp => {
                    let tries = attempts.retries() + 1;
                    return Err(give_up(failed.error, busy, deadline, tries));
                }
                Next::Now => {}
                Next::After(wait) => tokio::time::sleep(wait).await,
            }
            match failure {
                Failure::Ask { addr } => asking = Some(addr),
                Failure::NodeLost => {
                    let _ = self.refresh_within(false, deadline).await;
                }
                Failure::Busy => busy = Some(failed.error),
                _ => {}
            }
        }
    }

    /// One try at `addr`; with `ask`, `ASKING` and the command go as one request on the
    /// node's shared connection, so nothing comes between them.
    async fn attempt(
        &self,
        cmd: &Cmd,
        addr: &str,
        ask: bool,
        readonly: bool,
    ) -> std::result::Result<Value, Failed> {
        let node = self.node(addr, readonly);
        let failed = |error: Error| Failed {
            unsent: matches!(error, Error::Connect { .. } | Error::PoolExhausted(_)),
            error,
        };
        if !ask {
            return node.raw(cmd).await.map_err(failed);
        }
        let mut out = BytesMut::with_capacity(cmd.body().len() + 40);
        Cmd::new("ASKING").encode_into(&mut out);
        cmd.encode_into(&mut out);
        let timeout = reply_wait(node.connection_info().read_timeout, cmd);
        let mut replies = node
            .multiplexed()
            .send(out.freeze(), 2, timeout)
            .await
            .map_err(|e| failed(e.into()))?;
        match replies.pop() {
            Some(Value::Error(e)) => Err(Failed {
                error: Error::from(redis_conn::Error::from_server_error(e)).for_command(cmd),
                unsent: false,
            }),
            Some(v) => Ok(v),
            None => Err(failed(Error::OutOfStep("no reply".into()))),
        }
    }

    /// As the blocking client's batch: parts grouped per node, every node's request sent
    /// at once, failed parts retried one by one, each command's parts merged.
    async fn batch(
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
        let map = self.slot_map();
        // Moved out: the route keeps only its kind, all the merge needs.
        let mut owned: Vec<Vec<router::Part>> = items
            .iter_mut()
            .filter_map(|(_, route)| match route {
                Route::Split(split) => Some(std::mem::take(split)),
                _ => None,
            })
            .collect();
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

        let mut groups: BTreeMap<(String, bool), Vec<usize>> = BTreeMap::new();
        let mut results: Vec<Option<std::result::Result<Value, (Failed, String)>>> =
            (0..parts.len()).map(|_| None).collect();
        for (i, p) in parts.iter().enumerate() {
            let from = match p.target {
                Target::Node(_) => ReadFrom::Primary,
                _ => self.read_from(p.cmd),
            };
            match self.addr_for(&p.target, from) {
                Ok(addr) => groups
                    .entry((addr, matches!(from, ReadFrom::Replica(_))))
                    .or_default()
                    .push(i),
                Err(error) => {
                    results[i] = Some(Err((
                        Failed {
                            error,
                            unsent: true,
                        },
                        String::new(),
                    )))
                }
            }
        }
        // Every node's request at once.
        let mut sends: Vec<Pin<Box<dyn Future<Output = _> + Send + '_>>> = Vec::new();
        let mut order = Vec::new();
        for ((addr, readonly), members) in groups {
            let node = self.node(&addr, readonly);
            let mut out = BytesMut::with_capacity(
                members
                    .iter()
                    .map(|&m| parts[m].cmd.body().len() + 24)
                    .sum(),
            );
            let mut timeout = ReplyTimeout::Default;
            for &m in &members {
                parts[m].cmd.encode_into(&mut out);
                timeout = crate::client::longer(
                    timeout,
                    reply_wait(node.connection_info().read_timeout, parts[m].cmd),
                );
            }
            let n = members.len();
            sends.push(Box::pin(async move {
                node.multiplexed().send(out.freeze(), n, timeout).await
            }));
            order.push((addr, members));
        }
        let replies = JoinAll::new(sends).await;
        for ((addr, members), r) in order.into_iter().zip(replies) {
            match r {
                Ok(values) if values.len() == members.len() => {
                    for (&m, v) in members.iter().zip(values) {
                        results[m] = Some(match v {
                            Value::Error(e) => Err((
                                Failed {
                                    error: Error::from(redis_conn::Error::from_server_error(e))
                                        .for_command(parts[m].cmd),
                                    unsent: false,
                                },
                                addr.clone(),
                            )),
                            v => Ok(v),
                        });
                    }
                }
                other => {
                    let error: Error = match other {
                        Err(e) => e.into(),
                        Ok(_) => Error::OutOfStep("reply count differs from the request".into()),
                    };
                    let unsent = matches!(error, Error::Connect { .. });
                    for &m in &members {
                        results[m] = Some(Err((
                            Failed {
                                error: super::client::copy_error(&error),
                                unsent,
                            },
                            addr.clone(),
                        )));
                    }
                }
            }
        }

        let mut values: Vec<Result<Value>> = Vec::with_capacity(parts.len());
        for (i, r) in results.into_iter().enumerate() {
            let p = &parts[i];
            values.push(match r {
                Some(Ok(v)) => Ok(v),
                Some(Err((failed, addr))) if addr.is_empty() => {
                    drop(failed);
                    self.one(p.cmd, p.target.clone(), deadline, None).await
                }
                Some(Err(f)) => self.one(p.cmd, p.target.clone(), deadline, Some(f)).await,
                None => Err(Error::Cluster("a part was never sent".into())),
            });
        }
        Ok(merge_items(
            &items,
            parts.into_iter().map(|p| (p.item, p.keys)),
            values,
        ))
    }

    /// A typed command's future.
    fn call<T>(&self, cmd: Cmd) -> Request<'_, T> {
        Request::new(Box::pin(async move {
            let v = self.request(&cmd).await?;
            let v = overridden(&self.inner.callbacks, &cmd, v)?;
            Ok((v, cmd))
        }))
    }
}

/// The background refresh task: fetches the map whenever the router says it is due, until
/// the client is dropped (`stopped` then resolves). A failed refresh only waits for the
/// next; the client is held only while a refresh runs.
async fn refresh_periodically(
    inner: Weak<Inner>,
    interval: Duration,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    loop {
        let due = {
            let Some(inner) = inner.upgrade() else { return };
            let last = *inner.refreshed.lock().await;
            match router::refresh_due(Some(interval), last, redis_conn::aio::now()) {
                Refresh::Now => {
                    let client = ClusterClient {
                        inner,
                        replicas: false,
                    };
                    let _ = client.refresh(true).await;
                    continue;
                }
                Refresh::At(due) => due,
                Refresh::Off => return,
            }
        };
        if tokio::time::timeout_at(due.into(), &mut stopped)
            .await
            .is_ok()
        {
            return;
        }
    }
}

/// Runs `work`, failing with [`Error::Timeout`] at `deadline`.
async fn within<T>(deadline: Option<Instant>, work: impl Future<Output = Result<T>>) -> Result<T> {
    match deadline {
        Some(d) => tokio::time::timeout_at(d.into(), work)
            .await
            .unwrap_or(Err(Error::Timeout)),
        None => work.await,
    }
}

/// Polls every future to completion, concurrently on one task; results in order.
struct JoinAll<'a, T> {
    futures: Vec<Option<Pin<Box<dyn Future<Output = T> + Send + 'a>>>>,
    results: Vec<Option<T>>,
}

impl<'a, T> JoinAll<'a, T> {
    fn new(futures: Vec<Pin<Box<dyn Future<Output = T> + Send + 'a>>>) -> Self {
        let results = futures.iter().map(|_| None).collect();
        JoinAll {
            futures: futures.into_iter().map(Some).collect(),
            results,
        }
    }
}

impl<T> Unpin for JoinAll<'_, T> {}

impl<T> Future for JoinAll<'_, T> {
    type Output = Vec<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Vec<T>> {
        let this = &mut *self;
        let mut pending = false;
        for (slot, result) in this.futures.iter_mut().zip(this.results.iter_mut()) {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => {
                        *result = Some(v);
                        *slot = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            return Poll::Pending;
        }
        Poll::Ready(this.results.iter_mut().filter_map(Option::take).collect())
    }
}

/// Each command method returns a future of its reply, routed over the cluster.
impl<'a> Executor for &'a ClusterClient {
    type Mode = redis_commands::BinaryMode;
    type Output<T> = Request<'a, T>;

    fn run<T: FromValue>(self, typed: Typed<T>) -> Request<'a, T> {
        match crate::client::refuse_on_pool(&typed.cmd, crate::client::Pooled::Cluster) {
            Ok(()) => self.call(typed.cmd),
            Err(e) => Request::new(Box::pin(std::future::ready(Err(e)))),
        }
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
    pub fn watch<K: ToArgs>(
        self,
        keys: K,
    ) -> impl Future<Output = Result<Text<crate::aio::Watched>>> + Send {
        let watched = self.0.watch(keys);
        async move { watched.await.map(Text) }
    }
}

/// Commands queued for a cluster, sent at [`execute`](ClusterPipeline::execute) as the
/// blocking [`ClusterPipeline`](super::ClusterPipeline) sends them, with its methods and
/// defaults: one MULTI … EXEC on the node of the one slot every key is in, refused before
/// sending when the keys span slots, unless
/// [`transaction(false)`](ClusterPipeline::transaction).
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
    /// refused (`true`, the default) or return every result with errors in place.
    pub fn raise_on_error(&mut self, raise: bool) -> &mut Self {
        self.raise_on_error = raise;
        self
    }

    /// Makes the queued commands a transaction (here the same as `transaction(true)`).
    pub fn multi(&mut self) -> &mut Self {
        self.transaction(true)
    }

    /// WATCHes `keys` (all in one slot) on the primary serving them, as the blocking
    /// [`ClusterPipeline::watch`](super::ClusterPipeline::watch): the returned
    /// [`Watched`](crate::aio::Watched) runs commands at once on that node, and its
    /// `multi` gives back a pipeline of that node. Commands queued before the call stay
    /// queued.
    ///
    /// Cancellation: as [`aio::Pipeline::watch`](crate::aio::Pipeline::watch).
    ///
    /// # Errors
    /// [`Error::CrossSlot`] when the keys are in several slots (nothing sent); pool,
    /// connection and server errors.
    pub fn watch<K: ToArgs>(
        self,
        keys: K,
    ) -> impl Future<Output = Result<crate::aio::Watched>> + Send {
        let mut watch = Cmd::new("WATCH");
        watch.key(keys);
        async move {
            let node = self.client.watching_node(&watch).await?;
            let mut pipe = node.pipeline();
            pipe.raise_on_error(self.raise_on_error);
            for q in &self.commands {
                pipe.queue(q.cmd.clone());
            }
            pipe.watch_cmd(watch).await
        }
    }

    /// Queues any command given as its arguments, routed as
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

    /// Queues a script run; every script queued is loaded on every primary just before
    /// the pipeline is sent.
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

    /// Sends the queued commands; one result per command, in queue order. The queue is
    /// emptied whatever the outcome.
    ///
    /// Cancellation: not cancel-safe: whether the commands ran is unknown.
    ///
    /// # Errors
    /// As the blocking pipeline's `execute`.
    pub async fn execute(&mut self) -> Result<Vec<Value>> {
        let commands = std::mem::take(&mut self.commands);
        let result = self.run_queued(&commands).await;
        self.reset();
        result
    }

    /// Sends the queued commands and converts the results, as a list, into `T`.
    ///
    /// Cancellation: as [`execute`](ClusterPipeline::execute).
    ///
    /// # Errors
    /// As [`execute`](ClusterPipeline::execute), and [`Error::Reply`] naming the first
    /// command whose reply does not fit its own method's type.
    pub async fn query<T: FromValue>(&mut self) -> Result<T> {
        let commands = std::mem::take(&mut self.commands);
        let result = self.run_queued(&commands).await;
        self.reset();
        convert_results(&commands, result?)
    }

    async fn run_queued(&self, commands: &[Queued]) -> Result<Vec<Value>> {
        if commands.is_empty() {
            return Ok(Vec::new());
        }
        let slot = match self.transaction {
            true => Some(pipeline_slot(commands)?),
            false => None,
        };
        for script in &self.scripts {
            // The declared SCRIPT LOAD: its flags send it to every primary.
            let load = redis_commands::cmd::scripting::script_load(script.source()).cmd;
            self.client.request(&load).await?;
        }
        if let Some(slot) = slot {
            // One budget for every try and the map refreshes between them.
            let deadline = self.client.deadline(None);
            return within(deadline, self.run_transaction(commands, slot, deadline)).await;
        }
        let mut items = Vec::with_capacity(commands.len());
        for q in commands {
            items.push((&q.cmd, router::route(&q.cmd).map_err(cross_slot)?));
        }
        let deadline = self.client.deadline(None);
        let results = within(deadline, self.client.batch(items, deadline)).await?;
        finish_batch(
            &self.client.inner.callbacks,
            self.raise_on_error,
            commands,
            results,
        )
    }

    async fn run_transaction(
        &self,
        commands: &[Queued],
        slot: Option<u16>,
        deadline: Option<Instant>,
    ) -> Result<Vec<Value>> {
        let mut redirects = 0;
        loop {
            let addr = self
                .client
                .resolve(
                    &Target::Slot(slot.unwrap_or(0)),
                    ReadFrom::Primary,
                    deadline,
                )
                .await?;
            let mut pipe = self.client.node(&addr, false).pipeline();
            pipe.raise_on_error(self.raise_on_error);
            for q in commands {
                pipe.queue(q.cmd.clone());
            }
            match pipe.execute().await {
                // The server discarded the transaction (nothing ran): send it to the
                // slot's new owner.
                Err(Error::ExecAbort { error, .. })
                    if error.code() == ErrorCode::MOVED
                        && redirects < self.client.inner.options.max_redirects =>
                {
                    redirects += 1;
                    let _ = understand(
                        &self.client.inner.map,
                        &self.client.inner.seeds[0],
                        &Error::Server(error.into()),
                        &addr,
                    );
                    let _ = self.client.refresh_within(false, deadline).await;
                }
                other => return other,
            }
        }
    }
}

/// A cluster pipeline queues each command method's command.
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

/// The typed pipeline of an async [`ClusterClient`].
impl<L, M> TypedPipeline<L, M, ClusterPipeline> {
    /// Sends the commands and converts their replies into the tuple, as
    /// [`aio::TypedPipeline::execute`](crate::aio::TypedPipeline) does on one server.
    ///
    /// Cancellation: as [`ClusterPipeline::execute`].
    ///
    /// # Errors
    /// As [`ClusterPipeline::execute`], and [`Error::Reply`] naming the command whose
    /// reply does not fit its type.
    pub fn execute(self) -> impl Future<Output = Result<L::Tuple>> + Send
    where
        L: Replies,
    {
        let (mut pipe, names) = self.into_parts();
        async move {
            let values = pipe.execute().await?;
            L::convert(values, &names)
        }
    }
}
