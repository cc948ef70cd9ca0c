//! Sentinel: the primary and the replicas of a service, found by asking its sentinels, and
//! followed through failovers from the sentinels' own announcements.
//!
//! [`Sentinel::primary`] and [`Sentinel::replicas`] give ordinary [`Redis`] clients whose
//! pools open connections through a [`Connector`] that asks the sentinels where to go and
//! checks `ROLE` after the handshake; a background thread per sentinel listens to its
//! events, and a refresher thread asks again now and then. See `docs/sentinel.md`.

use crate::{Error, Redis, Result};
use redis_conn::{
    Addr, Connection, ConnectionInfo, ConnectionPool, Connector, DefaultConnector, PoolOptions,
    Readiness, Transport,
};
use resp_proto::Value;
use std::fmt;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// How long the event threads wait on their socket at a time: bounds how long a thread
/// outlives the last client.
const EVENT_POLL: Duration = Duration::from_millis(100);

/// First wait before subscribing again to a sentinel that could not be reached; doubled up
/// to [`MAX_RESUBSCRIBE_WAIT`].
const FIRST_RESUBSCRIBE_WAIT: Duration = Duration::from_millis(100);

/// Longest wait between attempts to subscribe to a sentinel that is down.
const MAX_RESUBSCRIBE_WAIT: Duration = Duration::from_secs(1);

/// Events by which the sentinel leading a failover announces each step up to the new
/// primary's promotion: from the first of them until the switch, the old primary may be
/// demoted at any moment, and writes it acknowledges after the replica is promoted are
/// lost when it resynchronises.
const FAILOVER_STEPS: &[&str] = &[
    "+try-failover",
    "+elected-leader",
    "+failover-state-select-slave",
    "+selected-slave",
    "+failover-state-send-slaveof-noone",
    "+failover-state-wait-promotion",
    "+promoted-slave",
    "+failover-state-reconf-slaves",
];

/// Events that change which replicas are usable.
const REPLICA_CHANGES: &[&str] = &[
    "+slave",
    "+sdown",
    "-sdown",
    "+convert-to-slave",
    "+role-change",
    "-role-change",
    "+slave-reconf-done",
];

/// A service watched through its sentinels: hands out clients for its primary and its
/// replicas, and follows failovers without a restart.
///
/// ```no_run
/// use redis_client::prelude::*;
/// use redis_client::Sentinel;
///
/// let sentinel = Sentinel::builder(
///     ["redis://127.0.0.1:26379", "redis://127.0.0.1:26380", "redis://127.0.0.1:26381"],
///     "mymaster",
/// )?
/// .with_node_info("redis://:data-password@localhost/0".parse()?)
/// .build();
/// let primary = sentinel.primary();
/// primary.set("greeting", "hello")?;
/// let replicas = sentinel.replicas();
/// let value = replicas.get("greeting")?; // may lag the primary
/// # Ok::<(), redis_client::Error>(())
/// ```
///
/// Cheap to clone; clones share the sentinels' connections, what they said, and the
/// threads listening to them. The threads stop once the `Sentinel` and every client made
/// from it are dropped.
#[derive(Clone)]
pub struct Sentinel {
    shared: Arc<Shared>,
    pool_options: PoolOptions,
}

/// Settings of a [`Sentinel`], from [`Sentinel::builder`].
#[derive(Debug)]
#[must_use = "call build() to get the Sentinel"]
pub struct SentinelBuilder {
    service: String,
    sentinels: Vec<ConnectionInfo>,
    node: ConnectionInfo,
    pool_options: PoolOptions,
    failover_pause: Duration,
    refresh_interval: Duration,
}

/// Counters of what a [`Sentinel`] saw, from [`Sentinel::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SentinelStats {
    /// Times the primary's address changed (a `+switch-master` event, or a sentinel's
    /// answer with a newer configuration).
    pub switches: u64,
    /// Failovers announced by a sentinel (the first step event of each).
    pub failovers: u64,
    /// Connections refused after the handshake because the server's `ROLE` was not the
    /// one wanted.
    pub role_mismatches: u64,
    /// `READONLY` replies seen from a server taken for the primary.
    pub readonly_replies: u64,
}

struct Shared {
    service: String,
    sentinels: Vec<ConnectionInfo>,
    node: ConnectionInfo,
    failover_pause: Duration,
    refresh_interval: Duration,
    /// The sentinel that answered last, asked first next time.
    preferred: AtomicUsize,
    /// A connection to the sentinel that answered last, kept for the next question. Taken
    /// out while asking, not held: a sentinel that stalls must hold up no other asker.
    query: Mutex<Option<(usize, Connection)>>,
    /// Bumped whenever connections opened before must not serve another request (a
    /// switch, a failover starting, a demoted primary found); see [`Tracked`].
    epoch: AtomicU64,
    next_replica: AtomicUsize,
    state: Mutex<State>,
    changed: Condvar,
    switches: AtomicU64,
    failovers: AtomicU64,
    role_mismatches: AtomicU64,
    readonly_replies: AtomicU64,
}

#[derive(Default)]
struct State {
    /// The primary's address, once known.
    primary: Option<Addr>,
    /// The newest configuration epoch a sentinel has reported: an answer from a sentinel
    /// that has not heard of the last failover carries an older one and is ignored.
    /// Only ever what a sentinel said: a sentinel reports a failover's new epoch (with
    /// the old address) before it announces `+switch-master`, so an epoch guessed at the
    /// switch could pass the true one and make every later answer look old.
    config_epoch: Option<u64>,
    /// A `+switch-master` moved `primary` since `config_epoch` was last raised: an answer
    /// at that epoch (or below) naming another address was given before the switch.
    switched: bool,
    /// Healthy replicas as the sentinels listed them, once asked.
    replicas: Option<Vec<Addr>>,
    /// Sentinels (by index) that announced a failover of the service under way, and when.
    failing_over: Vec<(usize, Instant)>,
    /// The refresher should ask the sentinels now.
    wake: bool,
}

/// Which server a connector reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Primary,
    Replica,
}

impl Role {
    /// What `ROLE` answers on such a server.
    fn word(self) -> &'static str {
        match self {
            Role::Primary => "master",
            Role::Replica => "slave",
        }
    }
}

impl Sentinel {
    /// A builder for the service `service` watched by the sentinels at `sentinel_urls`
    /// (`redis://[[user]:password@]host:port`; the credentials, timeouts and TLS settings
    /// of each URL are the sentinel's own).
    ///
    /// # Errors
    /// [`Error::Url`] for an invalid URL; [`Error::Unsupported`] for an empty list.
    pub fn builder<I, S>(sentinel_urls: I, service: &str) -> Result<SentinelBuilder>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let sentinels = sentinel_urls
            .into_iter()
            .map(|u| ConnectionInfo::from_url(u.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Self::builder_from_info(sentinels, service)
    }

    /// As [`Sentinel::builder`], with the sentinels' settings given as [`ConnectionInfo`]s.
    ///
    /// # Errors
    /// [`Error::Unsupported`] for an empty list.
    pub fn builder_from_info(
        sentinels: Vec<ConnectionInfo>,
        service: &str,
    ) -> Result<SentinelBuilder> {
        if sentinels.is_empty() {
            return Err(Error::Unsupported("a Sentinel needs at least one sentinel"));
        }
        Ok(SentinelBuilder {
            service: service.to_owned(),
            sentinels,
            node: ConnectionInfo::tcp("", 0),
            pool_options: PoolOptions::default(),
            failover_pause: Duration::from_secs(10),
            refresh_interval: Duration::from_secs(1),
        })
    }

    /// A client for the current primary, whatever server that is when a connection is
    /// opened: each new connection asks the sentinels (or uses what they last said),
    /// checks `ROLE` after the handshake, and waits while a failover is announced.
    ///
    /// Every call makes a new pool; clone the client to share one. Commands, pipelines,
    /// transactions, scripts, locks and text mode work as on any [`Redis`]. A
    /// [`PubSub`](crate::PubSub) or a dedicated connection made from it connects the same
    /// way, and so does a client-side cache ([`Redis::with_cache`]).
    pub fn primary(&self) -> Redis {
        self.client(Role::Primary)
    }

    /// A client for the replicas: each new connection goes to the next healthy replica
    /// the sentinels list (round robin), checked with `ROLE`. Reads may lag the primary.
    /// With no healthy replica, opening a connection fails with [`Error::Connect`].
    pub fn replicas(&self) -> Redis {
        self.client(Role::Replica)
    }

    /// The primary's address, asking the sentinels now (the first that answers with a
    /// configuration no older than one already seen).
    ///
    /// # Errors
    /// [`Error::Connect`] when no sentinel answers for the service, or every answer is
    /// older than what was already seen (a sentinel that has not yet heard of the last
    /// failover).
    pub fn discover_primary(&self) -> Result<Addr> {
        Ok(self.shared.ask_primary(None)?)
    }

    /// The healthy replicas' addresses, asking the sentinels now (`SENTINEL REPLICAS`;
    /// replicas flagged down or disconnected, or whose link to the primary is not up, are
    /// left out).
    ///
    /// # Errors
    /// [`Error::Connect`] when no sentinel answers for the service.
    pub fn discover_replicas(&self) -> Result<Vec<Addr>> {
        Ok(self.shared.ask_replicas(None)?)
    }

    /// The service's name.
    pub fn service(&self) -> &str {
        &self.shared.service
    }

    /// What this sentinel set has seen so far.
    pub fn stats(&self) -> SentinelStats {
        let s = &self.shared;
        SentinelStats {
            switches: s.switches.load(Ordering::Relaxed),
            failovers: s.failovers.load(Ordering::Relaxed),
            role_mismatches: s.role_mismatches.load(Ordering::Relaxed),
            readonly_replies: s.readonly_replies.load(Ordering::Relaxed),
        }
    }

    /// The async form of [`Sentinel::primary`] (feature `tokio`): an
    /// [`aio::Redis`](crate::aio::Redis) whose multiplexed connection and pool go to the
    /// current primary, wait while a failover is announced, and are replaced once the
    /// sentinels' epoch moves on. The sentinels are asked on tokio's blocking thread
    /// pool; a `READONLY` reply is not watched for (the events and the refresher are).
    #[cfg(feature = "tokio")]
    pub fn primary_async(&self) -> crate::aio::Redis {
        self.async_client(Role::Primary)
    }

    /// The async form of [`Sentinel::replicas`] (feature `tokio`).
    #[cfg(feature = "tokio")]
    pub fn replicas_async(&self) -> crate::aio::Redis {
        self.async_client(Role::Replica)
    }

    #[cfg(feature = "tokio")]
    fn async_client(&self, role: Role) -> crate::aio::Redis {
        let mut info = self.shared.node.clone();
        // Only what is known: asking the sentinels would block the caller's task.
        if let Some(addr) = self.shared.lock().primary.clone() {
            info.addr = addr;
        }
        let connector = Arc::new(AsyncSentinelConnector {
            shared: Arc::clone(&self.shared),
            role,
        });
        crate::aio::Redis::with_connector(info, connector, self.pool_options.clone())
    }

    fn client(&self, role: Role) -> Redis {
        // The address in the settings is what a `PubSub` made from the client uses.
        let addr = match role {
            Role::Primary => self.shared.lock().primary.clone(),
            Role::Replica => None,
        };
        let mut info = self.shared.node.clone();
        // Asking is bounded as opening a connection is: a sentinel that stalls must not
        // hold up making a client.
        let deadline = self.shared.node.connect_timeout.map(|t| Instant::now() + t);
        if let Some(addr) = addr.or_else(|| self.shared.ask_primary(deadline).ok()) {
            info.addr = addr;
        }
        let connector = SentinelConnector {
            shared: Arc::clone(&self.shared),
            role,
            info,
        };
        Redis::from_pool(ConnectionPool::with_connector(
            connector,
            self.pool_options.clone(),
        ))
    }
}

impl fmt::Debug for Sentinel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sentinel")
            .field("service", &self.shared.service)
            .field("sentinels", &self.shared.sentinels)
            .field("node", &self.shared.node)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl SentinelBuilder {
    /// Settings for the data nodes (primary and replicas): credentials, database, client
    /// name, timeouts, protocol, TLS. Its address is ignored: the sentinels give it.
    /// Default: [`ConnectionInfo`]'s defaults, no credentials.
    pub fn with_node_info(mut self, info: ConnectionInfo) -> Self {
        self.node = info;
        self
    }

    /// Options of the pools of the clients made ([`Sentinel::primary`],
    /// [`Sentinel::replicas`]).
    pub fn with_pool_options(mut self, options: PoolOptions) -> Self {
        self.pool_options = options;
        self
    }

    /// Longest time new connections to the primary wait once a sentinel announced a
    /// failover, if no sentinel announces its end. Default 10 s. A wait is also cut
    /// short by the connect timeout and the call's budget.
    pub fn with_failover_pause(mut self, pause: Duration) -> Self {
        self.failover_pause = pause;
        self
    }

    /// How often the sentinels are asked for the primary besides their events (a
    /// safety net for an event missed while a subscription was down). Default 1 s.
    pub fn with_refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// Starts watching: one thread subscribed to each sentinel's events, and one asking
    /// the sentinels every refresh interval. Nothing is asked before the threads run,
    /// so building never fails; a client's first connection asks if needed.
    pub fn build(self) -> Sentinel {
        let shared = Arc::new(Shared {
            service: self.service,
            sentinels: self.sentinels,
            node: self.node,
            failover_pause: self.failover_pause,
            refresh_interval: self.refresh_interval,
            preferred: AtomicUsize::new(0),
            query: Mutex::new(None),
            epoch: AtomicU64::new(0),
            next_replica: AtomicUsize::new(0),
            state: Mutex::new(State {
                wake: true,
                ..State::default()
            }),
            changed: Condvar::new(),
            switches: AtomicU64::new(0),
            failovers: AtomicU64::new(0),
            role_mismatches: AtomicU64::new(0),
            readonly_replies: AtomicU64::new(0),
        });
        for index in 0..shared.sentinels.len() {
            let weak = Arc::downgrade(&shared);
            let info = shared.sentinels[index].clone();
            std::thread::Builder::new()
                .name(format!("sentinel-events-{index}"))
                .spawn(move || listen(weak, index, info))
                .expect("spawning a thread");
        }
        let weak = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("sentinel-refresh".to_owned())
            .spawn(move || refresh(weak))
            .expect("spawning a thread");
        Sentinel {
            shared,
            pool_options: self.pool_options,
        }
    }
}

/// Whether a sentinel's answer that the primary is `addr` at configuration epoch `epoch`
/// is older than what is known: the newest epoch reported is `known`, and `switched` says
/// a `+switch-master` moved the primary to `current` since that epoch was reported (a
/// failover makes an epoch above 0, so with none reported, 0 is the floor).
fn stale(
    known: Option<u64>,
    switched: bool,
    current: Option<&Addr>,
    addr: &Addr,
    epoch: u64,
) -> bool {
    let known_or_floor = known.unwrap_or(0);
    known.is_some_and(|k| epoch < k)
        || (switched && current != Some(addr) && epoch <= known_or_floor)
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves the state consistent: every
        // change is one assignment.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The error for "the sentinels could not tell".
    fn unknown(&self, why: String) -> redis_conn::Error {
        redis_conn::Error::Connect {
            addr: format!("sentinels of {:?}", self.service),
            source: io::Error::other(why),
        }
    }

    /// Asks the sentinels in turn, the one that answered last first, until one answers
    /// `Some`, giving up at `deadline` (`None`: each sentinel is bounded by its own
    /// timeouts); the connection to the one that answered is kept for the next question.
    fn ask<T>(
        &self,
        deadline: Option<Instant>,
        mut question: impl FnMut(&mut Connection) -> Result<Option<T>, redis_conn::Error>,
    ) -> Result<T, redis_conn::Error> {
        let n = self.sentinels.len();
        let first = self.preferred.load(Ordering::Relaxed) % n;
        let mut kept = self.query.lock().unwrap_or_else(|e| e.into_inner()).take();
        let mut last = String::from("no sentinel asked");
        for k in 0..n {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                last = format!("timed out ({last})");
                break;
            }
            let i = (first + k) % n;
            let mut conn = match kept.take() {
                Some((j, c)) if j == i && !c.is_broken() => c,
                _ => {
                    let sentinel = DefaultConnector::new(self.sentinels[i].clone());
                    match Connection::open_until(&sentinel, deadline) {
                        Ok(c) => c,
                        Err(e) => {
                            last = format!("sentinel {}: {e}", self.sentinels[i].addr);
                            continue;
                        }
                    }
                }
            };
            conn.set_call_deadline(deadline);
            let answer = question(&mut conn);
            conn.set_call_deadline(None);
            match answer {
                Ok(Some(v)) => {
                    self.keep(i, conn);
                    self.preferred.store(i, Ordering::Relaxed);
                    return Ok(v);
                }
                Ok(None) => {
                    last = format!(
                        "sentinel {} has no usable answer for the service",
                        self.sentinels[i].addr
                    );
                    kept = Some((i, conn));
                }
                Err(e) => last = format!("sentinel {}: {e}", self.sentinels[i].addr),
            }
        }
        if let Some((i, conn)) = kept {
            self.keep(i, conn);
        }
        Err(self.unknown(last))
    }

    /// Keeps the connection to sentinel `i` for the next question (replacing one another
    /// asker kept meanwhile).
    fn keep(&self, i: usize, conn: Connection) {
        *self.query.lock().unwrap_or_else(|e| e.into_inner()) = Some((i, conn));
    }

    /// Asks for the primary (`SENTINEL MASTER`, which also gives the configuration
    /// epoch) and records the answer.
    fn ask_primary(&self, deadline: Option<Instant>) -> Result<Addr, redis_conn::Error> {
        let (known, switched, current) = {
            let st = self.lock();
            (st.config_epoch, st.switched, st.primary.clone())
        };
        let (addr, epoch) = self.ask(deadline, |conn| {
            let reply = conn.command(&["SENTINEL", "MASTER", &self.service]);
            let fields = match reply {
                Ok(v) => fields(v),
                // A sentinel that does not know the service: ask the next.
                Err(redis_conn::Error::Server(_)) => return Ok(None),
                Err(e) => return Err(e),
            };
            let addr = node_addr(&fields);
            let epoch = field(&fields, "config-epoch").and_then(|e| e.parse::<u64>().ok());
            Ok(match (addr, epoch) {
                // An answer older than what was already seen is a sentinel that has not
                // heard of the last failover yet.
                (Some(a), Some(e)) if stale(known, switched, current.as_ref(), &a, e) => None,
                (Some(a), e) => Some((a, e)),
                (None, _) => None,
            })
        })?;
        self.learn_primary(addr.clone(), epoch);
        Ok(addr)
    }

    /// Records `addr` as the primary, at configuration epoch `epoch` if known.
    fn learn_primary(&self, addr: Addr, epoch: Option<u64>) {
        let mut st = self.lock();
        if let Some(e) = epoch {
            if stale(st.config_epoch, st.switched, st.primary.as_ref(), &addr, e) {
                return;
            }
            if !st.config_epoch.is_some_and(|k| e <= k) {
                st.switched = false;
            }
            st.config_epoch = Some(e);
        }
        if st.primary.as_ref() != Some(&addr) {
            let first = st.primary.is_none();
            st.primary = Some(addr);
            st.replicas = None;
            if !first {
                self.switches.fetch_add(1, Ordering::Relaxed);
                self.epoch.fetch_add(1, Ordering::AcqRel);
            }
        }
        drop(st);
        self.changed.notify_all();
    }

    /// Asks for the healthy replicas and records them.
    fn ask_replicas(&self, deadline: Option<Instant>) -> Result<Vec<Addr>, redis_conn::Error> {
        let list = self.ask(deadline, |conn| {
            match conn.command(&["SENTINEL", "REPLICAS", &self.service]) {
                Ok(Value::Array(items)) => Ok(Some(
                    items
                        .into_iter()
                        .map(fields)
                        .filter(|f| healthy_replica(f))
                        .filter_map(|f| node_addr(&f))
                        .collect::<Vec<_>>(),
                )),
                Ok(_) | Err(redis_conn::Error::Server(_)) => Ok(None),
                Err(e) => Err(e),
            }
        })?;
        self.lock().replicas = Some(list.clone());
        Ok(list)
    }

    /// A sentinel announced a step of a failover of the service.
    fn failover_step(&self, sentinel: usize) {
        let mut st = self.lock();
        let already = st.failing_over.iter().any(|(i, _)| *i == sentinel);
        if !already {
            if st.failing_over.is_empty() {
                self.failovers.fetch_add(1, Ordering::Relaxed);
                // Idle connections to the primary are not handed out again until the
                // failover ends: they may be the old primary's.
                self.epoch.fetch_add(1, Ordering::AcqRel);
            }
            st.failing_over.push((sentinel, Instant::now()));
        }
    }

    /// A sentinel gave up a failover: ask again.
    fn failover_over(&self, sentinel: usize) {
        let mut st = self.lock();
        st.failing_over.retain(|(i, _)| *i != sentinel);
        st.wake = true;
        drop(st);
        self.changed.notify_all();
    }

    /// `+switch-master`: the new primary, announced by the sentinel that promoted it.
    fn switched(&self, addr: Addr) {
        let mut st = self.lock();
        if st.primary.as_ref() != Some(&addr) {
            st.primary = Some(addr);
            // The event carries no epoch: answers naming another address at the newest
            // epoch seen are from before the switch (`stale`).
            st.switched = true;
            self.switches.fetch_add(1, Ordering::Relaxed);
            self.epoch.fetch_add(1, Ordering::AcqRel);
        }
        st.replicas = None;
        st.failing_over.clear();
        drop(st);
        self.changed.notify_all();
    }

    /// The primary is not one any more (a `ROLE` or a `READONLY` says it is a replica):
    /// forget it, retire the connections opened to it, and ask again.
    fn doubt_primary(&self, addr: Option<&Addr>) {
        self.forget_primary(addr, true);
    }

    /// Forgets the primary's address if it is still `addr` (any, for `None`) and wakes
    /// the refresher; with `retire`, the connections opened so far are not used again.
    /// A refused connection only forgets: the pooled ones fail by themselves if the
    /// server is gone, and serve on if the refusal was passing.
    fn forget_primary(&self, addr: Option<&Addr>, retire: bool) {
        let mut st = self.lock();
        if addr.is_none() || st.primary.as_ref() == addr {
            st.primary = None;
            st.wake = true;
            if retire {
                self.epoch.fetch_add(1, Ordering::AcqRel);
            }
        }
        drop(st);
        self.changed.notify_all();
    }

    /// Waits while a failover is announced, up to `deadline` or the pause's end.
    fn wait_out_failover(&self, deadline: Option<Instant>) -> Result<(), redis_conn::Error> {
        let mut st = self.lock();
        loop {
            let now = Instant::now();
            let pause = self.failover_pause;
            st.failing_over.retain(|(_, since)| now < *since + pause);
            let Some(end) = st.failing_over.iter().map(|(_, s)| *s + pause).min() else {
                return Ok(());
            };
            let until = deadline.map_or(end, |d| d.min(end));
            if deadline.is_some_and(|d| now >= d) {
                return Err(redis_conn::Error::Connect {
                    addr: format!("primary of {:?}", self.service),
                    source: io::Error::new(io::ErrorKind::TimedOut, "failover in progress"),
                });
            }
            st = self
                .changed
                .wait_timeout(st, until.saturating_duration_since(now))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn handle_event(&self, sentinel: usize, event: &str, payload: &str) {
        let words: Vec<&str> = payload.split(' ').collect();
        if event == "+switch-master" {
            // <name> <old-ip> <old-port> <new-ip> <new-port>
            if let [name, _, _, ip, port] = words[..] {
                // No server is at an empty address or port 0: such an event is garbage,
                // and taking it would also make every true answer look older than it.
                let port = port.parse::<u16>().ok().filter(|p| *p != 0);
                if let (true, false, Some(port)) = (name == self.service, ip.is_empty(), port) {
                    self.switched(Addr::Tcp {
                        host: ip.to_owned(),
                        port,
                    });
                }
            }
            return;
        }
        // Instance events: `master <name> <ip> <port> …` or
        // `<type> <id> <ip> <port> @ <master-name> <master-ip> <master-port>`.
        let service = match words.first() {
            Some(&"master") => words.get(1).copied(),
            _ => words
                .iter()
                .position(|w| *w == "@")
                .and_then(|at| words.get(at + 1).copied()),
        };
        if service != Some(self.service.as_str()) {
            return;
        }
        if FAILOVER_STEPS.contains(&event) {
            self.failover_step(sentinel);
        } else if event.starts_with("-failover-abort") {
            // `+failover-end` is not an end here: the leader announces it a timer tick
            // before `+switch-master`, while every sentinel still names the old primary.
            self.failover_over(sentinel);
        } else if REPLICA_CHANGES.contains(&event) {
            self.lock().replicas = None;
        }
    }
}

/// The connector of the pools of [`Sentinel::primary`] and [`Sentinel::replicas`].
struct SentinelConnector {
    shared: Arc<Shared>,
    role: Role,
    info: ConnectionInfo,
}

impl SentinelConnector {
    fn open(
        &self,
        addr: &Addr,
        deadline: Option<Instant>,
    ) -> Result<Box<dyn Transport>, redis_conn::Error> {
        let mut info = self.info.clone();
        info.addr = addr.clone();
        DefaultConnector::new(info).connect(deadline)
    }

    fn connect_primary(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Box<dyn Transport>, redis_conn::Error> {
        let shared = &*self.shared;
        shared.wait_out_failover(deadline)?;
        // Read before the address: a switch in between makes the connection stale.
        let epoch = shared.epoch.load(Ordering::Acquire);
        let cached = shared.lock().primary.clone();
        let addr = match cached {
            Some(a) => a,
            None => shared.ask_primary(deadline)?,
        };
        match self.open(&addr, deadline) {
            Ok(t) => Ok(self.track(t, epoch)),
            Err(e) => {
                shared.forget_primary(Some(&addr), false);
                Err(e)
            }
        }
    }

    fn connect_replica(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Box<dyn Transport>, redis_conn::Error> {
        let shared = &*self.shared;
        let epoch = shared.epoch.load(Ordering::Acquire);
        let cached = shared.lock().replicas.clone();
        let list = match cached {
            Some(l) if !l.is_empty() => l,
            _ => shared.ask_replicas(deadline)?,
        };
        if list.is_empty() {
            return Err(shared.unknown("no healthy replica".to_owned()));
        }
        let first = shared.next_replica.fetch_add(1, Ordering::Relaxed);
        let mut last = None;
        for k in 0..list.len() {
            let addr = &list[(first + k) % list.len()];
            match self.open(addr, deadline) {
                Ok(t) => return Ok(self.track(t, epoch)),
                Err(e) => last = Some(e),
            }
        }
        shared.lock().replicas = None;
        Err(last.unwrap_or_else(|| shared.unknown("no healthy replica".to_owned())))
    }

    fn track(&self, inner: Box<dyn Transport>, epoch: u64) -> Box<dyn Transport> {
        Box::new(Tracked {
            inner,
            shared: Arc::clone(&self.shared),
            epoch,
            primary: self.role == Role::Primary,
        })
    }
}

impl Connector for SentinelConnector {
    fn info(&self) -> &ConnectionInfo {
        &self.info
    }

    fn connect(&self, deadline: Option<Instant>) -> Result<Box<dyn Transport>, redis_conn::Error> {
        match self.role {
            Role::Primary => self.connect_primary(deadline),
            Role::Replica => self.connect_replica(deadline),
        }
    }

    fn verify(&self, conn: &mut Connection) -> Result<(), redis_conn::Error> {
        let reply = conn.command(&["ROLE"])?;
        self.shared.check_role(self.role, reply)
    }
}

impl Shared {
    /// Accepts a `ROLE` reply that says `role`; otherwise forgets what the sentinels said
    /// and refuses the connection.
    fn check_role(&self, role: Role, reply: Value) -> Result<(), redis_conn::Error> {
        let said = match reply {
            Value::Array(items) => items.into_iter().next().and_then(|v| text(&v)),
            _ => None,
        };
        let wanted = role.word();
        if said.as_deref() == Some(wanted) {
            return Ok(());
        }
        self.role_mismatches.fetch_add(1, Ordering::Relaxed);
        match role {
            Role::Primary => self.doubt_primary(None),
            Role::Replica => self.lock().replicas = None,
        }
        Err(redis_conn::Error::Connect {
            addr: format!("{} of {:?}", wanted, self.service),
            source: io::Error::other(format!(
                "the server the sentinels named answers ROLE {}",
                said.as_deref().unwrap_or("(unreadable)")
            )),
        })
    }

    /// Where the next connection for `role` goes, and the epoch it belongs to: waits out
    /// an announced failover for the primary, takes the next replica in turn.
    #[cfg(feature = "tokio")]
    fn pick(
        &self,
        role: Role,
        deadline: Option<Instant>,
    ) -> Result<(Addr, u64), redis_conn::Error> {
        if role == Role::Primary {
            self.wait_out_failover(deadline)?;
        }
        let epoch = self.epoch.load(Ordering::Acquire);
        if role == Role::Primary {
            let cached = self.lock().primary.clone();
            let addr = match cached {
                Some(a) => a,
                None => self.ask_primary(deadline)?,
            };
            return Ok((addr, epoch));
        }
        let cached = self.lock().replicas.clone();
        let list = match cached {
            Some(l) if !l.is_empty() => l,
            _ => self.ask_replicas(deadline)?,
        };
        if list.is_empty() {
            return Err(self.unknown("no healthy replica".to_owned()));
        }
        let next = self.next_replica.fetch_add(1, Ordering::Relaxed);
        Ok((list[next % list.len()].clone(), epoch))
    }
}

/// The connector of the async clients of [`Sentinel::primary_async`] and
/// [`Sentinel::replicas_async`]: the sentinels are asked on the blocking thread pool,
/// since what they said is shared with the blocking clients and their threads.
#[cfg(feature = "tokio")]
struct AsyncSentinelConnector {
    shared: Arc<Shared>,
    role: Role,
}

#[cfg(feature = "tokio")]
impl fmt::Debug for AsyncSentinelConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncSentinelConnector")
            .field("service", &self.shared.service)
            .field("role", &self.role)
            .finish()
    }
}

#[cfg(feature = "tokio")]
impl redis_conn::aio::Connector for AsyncSentinelConnector {
    fn connect<'a>(
        &'a self,
        dialer: &'a redis_conn::aio::Dialer,
        deadline: Option<Instant>,
    ) -> redis_conn::aio::BoxFuture<'a, Result<redis_conn::aio::Opened, redis_conn::Error>> {
        let shared = Arc::clone(&self.shared);
        let role = self.role;
        Box::pin(async move {
            let (addr, epoch) = tokio::task::spawn_blocking(move || shared.pick(role, deadline))
                .await
                .map_err(|e| redis_conn::Error::Io(io::Error::other(e.to_string())))??;
            let transport = dialer.dial(&addr, deadline).await?;
            Ok(redis_conn::aio::Opened { transport, epoch })
        })
    }

    fn verify<'a>(
        &'a self,
        conn: &'a mut redis_conn::aio::Connection,
    ) -> redis_conn::aio::BoxFuture<'a, Result<(), redis_conn::Error>> {
        Box::pin(async move {
            let reply = conn.command(&["ROLE"]).await?;
            self.shared.check_role(self.role, reply)
        })
    }

    fn is_current(&self, epoch: u64) -> bool {
        self.shared.epoch.load(Ordering::Acquire) == epoch
    }
}

/// A transport opened through the sentinels: it reports itself closed once the
/// sentinel set's epoch moved on, so the pool does not hand it out again, and it notices
/// a `READONLY` reply from a server taken for the primary.
struct Tracked {
    inner: Box<dyn Transport>,
    shared: Arc<Shared>,
    epoch: u64,
    primary: bool,
}

impl Read for Tracked {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        // A single command's error reply starts a read; one inside a pipeline is caught
        // by the next single command.
        if self.primary && buf[..n].starts_with(b"-READONLY") {
            self.shared.readonly_replies.fetch_add(1, Ordering::Relaxed);
            self.shared.doubt_primary(None);
        }
        Ok(n)
    }
}

impl Write for Tracked {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Transport for Tracked {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.inner.set_read_timeout(timeout)
    }
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.inner.set_write_timeout(timeout)
    }
    fn readiness(&mut self) -> Readiness {
        if self.retired() == Some(true) {
            return Readiness::Closed;
        }
        self.inner.readiness()
    }
    fn retired(&self) -> Option<bool> {
        Some(self.shared.epoch.load(Ordering::Acquire) != self.epoch)
    }
}

/// The thread subscribed to one sentinel's events, until every handle is gone.
///
/// A subscription that cannot be made or fails is made again after a backoff, reset only
/// by an event; so is one the subscriber renewed before any event came: a sentinel that
/// confirms the subscription and then sends what is no event, or closes the connection,
/// is not subscribed to (and the sentinels asked) in a loop.
fn listen(shared: Weak<Shared>, index: usize, info: ConnectionInfo) {
    let mut wait = FIRST_RESUBSCRIBE_WAIT;
    let backoff = |wait: &mut Duration| {
        std::thread::sleep(*wait);
        *wait = (*wait * 2).min(MAX_RESUBSCRIBE_WAIT);
    };
    'subscribe: while shared.strong_count() > 0 {
        let mut sub = crate::PubSub::new(info.clone());
        sub.ignore_subscribe_messages(true);
        if sub.psubscribe("*").is_err() {
            backoff(&mut wait);
            continue;
        }
        // Whatever was announced while not subscribed is learnt by asking.
        if let Some(s) = shared.upgrade() {
            s.lock().wake = true;
            s.changed.notify_all();
        }
        // An event came on this subscription since it was last made.
        let mut heard = false;
        loop {
            let msg = match sub.get_message(Some(EVENT_POLL)) {
                Ok(m) => m,
                Err(_) => {
                    backoff(&mut wait);
                    continue 'subscribe;
                }
            };
            let Some(s) = shared.upgrade() else {
                return;
            };
            let Some(msg) = msg else { continue };
            if msg.kind == crate::MessageKind::Reconnected {
                s.lock().wake = true;
                s.changed.notify_all();
                drop(s);
                if !std::mem::take(&mut heard) {
                    backoff(&mut wait);
                }
                continue;
            }
            heard = true;
            wait = FIRST_RESUBSCRIBE_WAIT;
            let event = String::from_utf8_lossy(&msg.channel);
            let payload = String::from_utf8_lossy(&msg.payload);
            s.handle_event(index, &event, &payload);
        }
    }
}

/// The thread asking the sentinels for the primary every refresh interval, and at once
/// when woken (an event missed, a primary in doubt, a failover ended).
fn refresh(shared: Weak<Shared>) {
    let mut last_asked: Option<Instant> = None;
    loop {
        let Some(s) = shared.upgrade() else {
            return;
        };
        let st = s.lock();
        let (mut st, _) = s
            .changed
            .wait_timeout_while(st, EVENT_POLL, |st| !st.wake)
            .unwrap_or_else(|e| e.into_inner());
        let woken = std::mem::take(&mut st.wake);
        let now = Instant::now();
        let pause = s.failover_pause;
        st.failing_over.retain(|(_, since)| now < *since + pause);
        // An answer during an announced failover names the old primary; the end of the
        // failover wakes this thread again.
        let failing_over = !st.failing_over.is_empty();
        drop(st);
        let due = last_asked.map_or(true, |t| now.duration_since(t) >= s.refresh_interval);
        if (woken || due) && !failing_over {
            last_asked = Some(now);
            let _ = s.ask_primary(None);
        }
    }
}

/// A sentinel's description of an instance (a flat array of names and values in RESP2,
/// a map in RESP3) as pairs.
fn fields(v: Value) -> Vec<(String, String)> {
    let items = match v {
        Value::Array(items) => items,
        Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        _ => return Vec::new(),
    };
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        if let (Some(k), Some(v)) = (text(&k), text(&v)) {
            out.push((k, v));
        }
    }
    out
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The address an instance description gives; `None` for one no server can be at (an
/// empty address, a port that is no number, or 0).
fn node_addr(fields: &[(String, String)]) -> Option<Addr> {
    let host = field(fields, "ip").filter(|h| !h.is_empty())?.to_owned();
    let port = field(fields, "port")?.parse().ok().filter(|p| *p != 0)?;
    Some(Addr::Tcp { host, port })
}

/// A replica the sentinels see up and linked to its primary.
fn healthy_replica(fields: &[(String, String)]) -> bool {
    let flags = field(fields, "flags").unwrap_or("");
    let down = flags
        .split(',')
        .any(|f| matches!(f, "s_down" | "o_down" | "disconnected"));
    !down && field(fields, "master-link-status") == Some("ok")
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) | Value::SimpleString(b) => {
            Some(String::from_utf8_lossy(b).into_owned())
        }
        Value::Integer(i) => Some(i.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(service: &str) -> Shared {
        let b = Sentinel::builder(["redis://127.0.0.1:1"], service).unwrap();
        Shared {
            service: b.service,
            sentinels: b.sentinels,
            node: b.node,
            failover_pause: Duration::from_millis(50),
            refresh_interval: b.refresh_interval,
            preferred: AtomicUsize::new(0),
            query: Mutex::new(None),
            epoch: AtomicU64::new(0),
            next_replica: AtomicUsize::new(0),
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            switches: AtomicU64::new(0),
            failovers: AtomicU64::new(0),
            role_mismatches: AtomicU64::new(0),
            readonly_replies: AtomicU64::new(0),
        }
    }

    fn tcp(port: u16) -> Addr {
        Addr::Tcp {
            host: "127.0.0.1".into(),
            port,
        }
    }

    #[test]
    fn switch_master_of_the_service_moves_the_primary_and_the_epoch() {
        let s = shared("mymaster");
        s.learn_primary(tcp(6379), Some(3));
        s.handle_event(0, "+switch-master", "other 127.0.0.1 6379 127.0.0.1 7000");
        assert_eq!(s.lock().primary, Some(tcp(6379)));
        s.handle_event(
            0,
            "+switch-master",
            "mymaster 127.0.0.1 6379 127.0.0.1 6380",
        );
        assert_eq!(s.lock().primary, Some(tcp(6380)));
        assert_eq!(s.epoch.load(Ordering::Relaxed), 1);
        // An answer from a sentinel still on the old configuration is ignored.
        s.learn_primary(tcp(6379), Some(3));
        assert_eq!(s.lock().primary, Some(tcp(6380)));
        s.learn_primary(tcp(6380), Some(4));
        assert_eq!(s.lock().config_epoch, Some(4));
    }

    /// A sentinel reports a failover's new epoch with the old address for a while before
    /// it announces `+switch-master`: the answers it gives after the switch, at that same
    /// epoch, are taken (they used to look older than an epoch guessed at the switch, and
    /// `discover_primary` failed from then on).
    #[test]
    fn the_epoch_reported_before_a_switch_still_takes_the_answers_after_it() {
        let s = shared("mymaster");
        s.learn_primary(tcp(6379), Some(0));
        // Promoted, not yet announced: the new epoch beside the old address.
        s.learn_primary(tcp(6379), Some(1));
        s.handle_event(
            0,
            "+switch-master",
            "mymaster 127.0.0.1 6379 127.0.0.1 6380",
        );
        assert_eq!(s.lock().primary, Some(tcp(6380)));
        // That window's answer is older than the switch; the sentinel's answer after it is
        // the one to take.
        s.learn_primary(tcp(6379), Some(1));
        assert_eq!(s.lock().primary, Some(tcp(6380)));
        let st = s.lock();
        assert!(stale(
            st.config_epoch,
            st.switched,
            st.primary.as_ref(),
            &tcp(6379),
            1
        ));
        assert!(!stale(
            st.config_epoch,
            st.switched,
            st.primary.as_ref(),
            &tcp(6380),
            1
        ));
        drop(st);
        s.learn_primary(tcp(6380), Some(1));
        assert_eq!(s.lock().primary, Some(tcp(6380)));
        // A later failover's answer, at a newer epoch, moves it on.
        s.learn_primary(tcp(6381), Some(2));
        assert_eq!(s.lock().primary, Some(tcp(6381)));
        assert_eq!(s.lock().config_epoch, Some(2));
    }

    #[test]
    fn a_switch_heard_before_any_epoch_ignores_only_the_first_configuration() {
        let s = shared("mymaster");
        s.handle_event(
            0,
            "+switch-master",
            "mymaster 127.0.0.1 6379 127.0.0.1 6380",
        );
        s.learn_primary(tcp(6379), Some(0));
        assert_eq!(s.lock().primary, Some(tcp(6380)));
        s.learn_primary(tcp(6380), Some(3));
        assert_eq!(s.lock().primary, Some(tcp(6380)));
        assert_eq!(s.lock().config_epoch, Some(3));
    }

    #[test]
    fn failover_steps_pause_until_the_end_or_the_pause_bound() {
        let s = shared("mymaster");
        s.handle_event(
            1,
            "+failover-state-send-slaveof-noone",
            "slave 127.0.0.1:6380 127.0.0.1 6380 @ mymaster 127.0.0.1 6379",
        );
        assert_eq!(s.lock().failing_over.len(), 1);
        assert_eq!(s.epoch.load(Ordering::Relaxed), 1);
        let soon = Instant::now() + Duration::from_millis(5);
        assert!(s.wait_out_failover(Some(soon)).is_err());
        s.handle_event(
            1,
            "-failover-abort-not-elected",
            "master mymaster 127.0.0.1 6379",
        );
        assert!(s.wait_out_failover(Some(soon)).is_ok());
        // With no end announced, the pause ends by itself.
        s.handle_event(2, "+try-failover", "master mymaster 127.0.0.1 6379");
        let start = Instant::now();
        s.wait_out_failover(None).unwrap();
        assert!(start.elapsed() >= Duration::from_millis(40));
        // Another service's failover does not pause this one.
        s.handle_event(2, "+try-failover", "master other 127.0.0.1 7000");
        assert!(s.lock().failing_over.is_empty());
    }

    #[test]
    fn replica_health_reads_flags_and_link() {
        let f = |flags: &str, link: &str| {
            vec![
                ("flags".to_owned(), flags.to_owned()),
                ("master-link-status".to_owned(), link.to_owned()),
            ]
        };
        assert!(healthy_replica(&f("slave", "ok")));
        assert!(!healthy_replica(&f("s_down,slave", "ok")));
        assert!(!healthy_replica(&f("slave,disconnected", "ok")));
        assert!(!healthy_replica(&f("slave", "err")));
    }
}
