//! The runs: a client, the model server behind the simulated network, callers doing
//! random work, and a chaos task injecting faults, all on one thread in simulated time.

use crate::model::{exec_key, Found, Model, ServerFaults};
use crate::net::{Faults, LinkRef, SideCall, SideCalls, SimConnector};
use crate::rng::Rng;
use bytes::Bytes;
use parking_lot::Mutex;
use redis_client::aio::Redis;
use redis_client::cluster::aio::ClusterClient;
use redis_client::cluster::ClusterOptions;
use redis_client::prelude::*;
use redis_client::redis_commands::cmd;
use redis_client::redis_conn::aio::now;
use redis_client::{
    Cmd, ConnectionInfo, Error, Executor, FromValue, PoolOptions, Protocol, RetryPolicy, Typed,
    Value,
};
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a run exercises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Many callers on the multiplexed connection: single commands and pipelines.
    Mux,
    /// Calls that take a pooled connection: blocking commands, WATCH transactions,
    /// connection-state commands restored at hand-back, under a small pool.
    Pool,
    /// The async cluster client's router over a model cluster whose slots migrate
    /// (`ASK`, `TRYAGAIN`, then `MOVED`) and whose primaries fail over.
    Cluster,
    /// The blocking client (`redis_client::Redis`, its pool and connections, the core
    /// under them) on simulated time: single commands, pipelines, WATCH, blocking pops
    /// and state commands from one caller.
    Blocking,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 4] = [Target::Mux, Target::Pool, Target::Cluster, Target::Blocking];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Target::Mux => "mux",
            Target::Pool => "pool",
            Target::Cluster => "cluster",
            Target::Blocking => "blocking",
        }
    }

    /// The target named `name`.
    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// What went wrong in a run.
#[derive(Debug, Clone)]
pub struct Violation {
    /// When, in simulated time since the start.
    pub at: Duration,
    /// What.
    pub what: String,
}

/// What a run found.
#[derive(Debug, Default)]
pub struct Report {
    /// Calls made.
    pub calls: u64,
    /// Calls that ended with an error (connection lost, timeout …), which faults allow.
    pub errors: u64,
    /// Calls whose reply could not be attributed because an extra reply reached their
    /// connection while it owed replies (no client can tell those apart).
    pub exposed: u64,
    /// Faults injected: extra replies while idle.
    pub strays: u64,
    /// Redirections the model cluster answered (`MOVED`, `ASK`, `TRYAGAIN`).
    pub redirections: u64,
    /// Calls started from inside a system call of the client (side calls).
    pub side_calls: u64,
    /// Broken promises: a wrong reply, a call past its budget.
    pub violations: Vec<Violation>,
}

/// The settings a seed drew.
#[derive(Debug)]
pub(crate) struct Knobs {
    pub(crate) info: ConnectionInfo,
    pub(crate) pool: PoolOptions,
    pub(crate) callers: u64,
    pub(crate) calls_each: u64,
    drop_percent: u64,
    stray_idle: u64,
    stray_owed: u64,
    /// Extra replies behind every reply owed for what the client wrote (read or not).
    stray_behind: u64,
    restart: u64,
    migrate: u64,
    failover: u64,
    faults: Faults,
    server: ServerFaults,
    /// Percent of single calls handed to the network, to be started from inside a
    /// connection task's system call as a caller on another thread would be.
    side: u64,
    /// The chance, in percent, that one system call starts a call handed over.
    side_start: u64,
    /// No fault that may make a call fail (cuts, stalls, lags, replies past the limits,
    /// extra replies, restarts, failovers, a pool smaller than its callers): every call
    /// must then succeed.
    pub(crate) calm: bool,
}

impl Knobs {
    /// The settings `target` runs with, drawn from `rng`.
    pub(crate) fn draw(target: Target, rng: &mut Rng) -> Knobs {
        setup(target, rng)
    }

    /// The chaos task's fault rates: extra replies on idle connections, on connections
    /// owing replies, behind every reply owed, restarts.
    pub(crate) fn chaos(&self) -> [u64; 4] {
        [
            self.stray_idle,
            self.stray_owed,
            self.stray_behind,
            self.restart,
        ]
    }
}

fn setup(target: Target, rng: &mut Rng) -> Knobs {
    let protocol = if rng.chance(50) {
        Protocol::Resp3
    } else {
        Protocol::Resp2
    };
    let read = Duration::from_millis(rng.between(100, 1_000));
    let connect = Duration::from_millis(rng.between(100, 1_000));
    let limits = redis_client::Limits {
        max_bulk_len: 64 << 10,
        max_reply_bytes: 256 << 10,
        ..redis_client::Limits::default()
    };
    let info = ConnectionInfo::tcp("model", 6379)
        .with_limits(limits)
        .with_protocol(protocol)
        .with_read_timeout(Some(read))
        .with_connect_timeout(Some(connect));
    // A fault is off in about half the runs, so calm runs test the common paths too.
    let mut pct = |max: u64| {
        if rng.chance(50) {
            0
        } else {
            rng.between(1, max)
        }
    };
    let faults = Faults {
        cut: pct(10),
        slow_reader: pct(30),
    };
    let server = ServerFaults {
        stall: pct(3),
        lag: pct(30),
        push: pct(30),
        hostile: pct(5),
    };
    let stray_idle = pct(40);
    let restart = if target == Target::Cluster { 0 } else { pct(3) };
    let drop_percent = pct(20);
    // Side calls need callers whose calls wait on connection tasks: the multiplexed
    // connection's, and the cluster's (one multiplexed connection a node). A pooled
    // connection's reads and writes run in its caller's own task instead.
    let side = match target {
        Target::Mux | Target::Cluster => pct(50),
        Target::Pool | Target::Blocking => 0,
    };
    // Behind replies owed, an extra reply is caught before the multiplexed connection's
    // next batch, and before a pooled connection's next request.
    let stray_behind = pct(20);
    let side_start = rng.between(10, 90);
    let stray_owed = if rng.chance(90) {
        0
    } else {
        rng.between(1, 10)
    };
    let migrate = if rng.chance(30) {
        0
    } else {
        rng.between(5, 50)
    };
    let failover = if rng.chance(50) {
        0
    } else {
        rng.between(1, 10)
    };
    let (callers, calls_each, pool) = match target {
        Target::Blocking => (
            1,
            rng.between(10, 60),
            PoolOptions::default().with_max_size(rng.between(1, 3) as usize),
        ),
        Target::Cluster => (
            rng.between(1, 6),
            rng.between(5, 20),
            PoolOptions::default(),
        ),
        Target::Mux => (
            rng.between(1, 8),
            rng.between(5, 20),
            PoolOptions::default(),
        ),
        Target::Pool => (
            rng.between(1, 6),
            rng.between(5, 20),
            PoolOptions::default().with_max_size(rng.between(1, 3) as usize),
        ),
    };
    let mut knobs = Knobs {
        info,
        pool,
        callers,
        calls_each,
        drop_percent,
        stray_idle,
        stray_owed,
        stray_behind,
        restart,
        migrate,
        failover,
        faults,
        server,
        side,
        side_start,
        calm: false,
    };
    // One run in five is calm, so that a call failing for no reason is caught too.
    if rng.chance(20) {
        knobs.calm();
    }
    knobs
}

impl Knobs {
    /// Turns off every fault that may make a call fail.
    fn calm(&mut self) {
        self.calm = true;
        self.faults.cut = 0;
        self.server.stall = 0;
        self.server.lag = 0;
        self.server.hostile = 0;
        self.stray_idle = 0;
        self.stray_owed = 0;
        self.stray_behind = 0;
        self.restart = 0;
        self.failover = 0;
        if self.pool.max_size < self.callers as usize {
            self.pool = self.pool.clone().with_max_size(self.callers as usize);
        }
    }
}

/// Runs `target` with the choices `seed` gives, on a current-thread runtime in paused
/// (simulated) time.
pub fn run(target: Target, seed: u64) -> Report {
    if target == Target::Blocking {
        return crate::blocking::run(seed);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime");
    runtime.block_on(world(target, seed))
}

/// What the callers and the checker share: the model and the report.
pub(crate) struct Shared {
    model: Arc<Model>,
    report: Mutex<Report>,
    start: Instant,
    /// Every call must succeed (see [`Knobs::calm`]).
    calm: bool,
    /// Bytes live when the run started, for the memory check at its end.
    baseline: isize,
    /// How long any call may take, where nothing but the server's own time can delay it.
    prompt: Option<Duration>,
}

/// How long a call may take in a run of the multiplexed connection without faults: the
/// model answers each request within 0.5 ms and the network moves bytes in no time, so
/// a call waits only for the requests queued before it. A request left unwritten until
/// some unrelated event (a lost wakeup) waits far longer.
const PROMPT: Duration = Duration::from_millis(15);

/// Most bytes a run may have live at once beyond what it started with: the model, the
/// network's buffers and the client, whose replies are limited to 256 KiB each.
const MEMORY_LIMIT: isize = 16 << 20;

impl Shared {
    pub(crate) fn new(model: Arc<Model>, calm: bool) -> Shared {
        Shared {
            model,
            report: Mutex::new(Report::default()),
            start: now(),
            calm,
            baseline: crate::memory::reset_peak(),
            prompt: None,
        }
    }

    /// Every call must also end within `prompt`.
    fn with_prompt(mut self, prompt: Duration) -> Shared {
        self.prompt = Some(prompt);
        self
    }

    /// A call ended with an error, which faults allow and a calm run does not.
    pub(crate) fn error(&self, what: impl Fn() -> String) {
        if self.calm {
            self.violation(format!("a call failed in a run without faults: {}", what()));
        }
        self.report.lock().errors += 1;
    }

    /// The run's report, with the end-of-run checks.
    pub(crate) fn finish(&self, model: &Model) -> Report {
        let peak = crate::memory::peak() - self.baseline;
        if peak > MEMORY_LIMIT {
            self.violation(format!(
                "{peak} bytes were live at once, past the run's limit of {MEMORY_LIMIT}"
            ));
        }
        let mut report = std::mem::take(&mut *self.report.lock());
        report.redirections = model.redirections();
        report
    }

    fn violation(&self, what: String) {
        let at = now().saturating_duration_since(self.start);
        self.report.lock().violations.push(Violation { at, what });
    }

    /// Checks one call: its reply is the model's answer to its request `args` (as `T`,
    /// the type the caller asked for), and it ended within `bound` of `start`.
    pub(crate) fn check<T: FromValue + PartialEq + Debug>(
        &self,
        args: &[Bytes],
        start: Instant,
        bound: Duration,
        got: &Result<T, Error>,
    ) {
        self.report.lock().calls += 1;
        self.within(args, start, bound);
        match got {
            Ok(v) => {
                let found = self.model.claim(args, start, |reply| {
                    T::from_value(reply.clone()).is_ok_and(|r| r == *v)
                });
                self.judge(found, args, || format!("{v:?}"));
            }
            // A reply that does not convert, or an error reply the model never sent for
            // this request, was someone else's.
            Err(e @ (Error::Reply { .. } | Error::Server(_))) => {
                let found = self.model.claim(args, start, |reply| {
                    matches!((reply, e), (Value::Error(a), Error::Server(b)) if a.as_bytes() == b.as_bytes())
                });
                self.judge(found, args, || format!("{e}"));
            }
            Err(e) => self.error(|| format!("{} gave {e}", show(args))),
        }
    }

    fn judge(&self, found: Found, args: &[Bytes], got: impl Fn() -> String) {
        match found {
            Found::Own => {}
            Found::Exposed => self.report.lock().exposed += 1,
            Found::Wrong => self.violation(format!(
                "a caller of {} received {}, which the model never answered it (its answers: {:?})",
                show(args),
                got(),
                self.model.answers(args)
            )),
        }
    }

    /// Calls made so far.
    fn calls(&self) -> u64 {
        self.report.lock().calls
    }

    /// A request queued at `start` on a connection already `open` went out before any
    /// time passed (at `written`), where nothing but a lost wakeup could delay it: the
    /// network writes at once, and the connection's task writes what is queued before
    /// it waits. Checked where [`Shared::prompt`] is.
    fn written_promptly(
        &self,
        args: &[Bytes],
        open: bool,
        start: Instant,
        written: Option<Instant>,
    ) {
        if self.prompt.is_none() || !open {
            return;
        }
        match written {
            Some(at) if at == start => {}
            Some(at) => self.violation(format!(
                "a request of {} queued at {:?} was written {:?} later, on a connection \
                 that had nothing else to wait for",
                show(args),
                start.saturating_duration_since(self.start),
                at.saturating_duration_since(start)
            )),
            None => self.violation(format!("a request of {} was never written", show(args))),
        }
    }

    pub(crate) fn within(&self, args: &[Bytes], start: Instant, bound: Duration) {
        let took = now().saturating_duration_since(start);
        // The timer wheel's granularity.
        if took > bound + Duration::from_millis(2) {
            self.violation(format!(
                "a call of {} took {took:?}, past its bound of {bound:?}",
                show(args)
            ));
        } else if let Some(prompt) = self.prompt.filter(|p| took > *p) {
            self.violation(format!(
                "a call of {} took {took:?} in a run where nothing delays it, past {prompt:?}",
                show(args)
            ));
        }
    }
}

fn show(args: &[Bytes]) -> String {
    args.iter()
        .map(|a| {
            // A large value is shown by its length.
            if a.len() > 40 {
                format!("<{} bytes>", a.len())
            } else {
                String::from_utf8_lossy(a).into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn args_of(cmd: &Cmd) -> Vec<Bytes> {
    cmd.args().map(Bytes::copy_from_slice).collect()
}

/// Every connection to a node of the model cluster, with the node.
type NodeLinks = Arc<Mutex<Vec<(LinkRef, usize)>>>;

/// The simulated network to the model: each link served by a task of the model (for a
/// cluster, the node its address names, noted in `node_links`).
pub(crate) fn network(
    knobs: &Knobs,
    model: &Arc<Model>,
    rng: &mut Rng,
    node_links: Option<NodeLinks>,
) -> Arc<SimConnector> {
    let serving = Arc::clone(model);
    let server_rng = Mutex::new(rng.fork());
    let server_faults = knobs.server;
    let side = SideCalls::new(rng.fork(), knobs.side_start);
    SimConnector::with_side_calls(
        rng.fork(),
        knobs.faults.clone(),
        side,
        move |link: LinkRef, addr: &str| {
            let rng = server_rng.lock().fork();
            let node = serving.with_cluster(|m| m.node(addr)).flatten();
            if let (Some(node), Some(noted)) = (node, &node_links) {
                noted.lock().push((Arc::clone(&link), node));
            }
            tokio::spawn(Arc::clone(&serving).serve(link, rng, server_faults, node));
        },
    )
}

async fn world(target: Target, seed: u64) -> Report {
    let mut rng = Rng::new(seed ^ (target as u64) << 56);
    let knobs = Knobs::draw(target, &mut rng);
    let model = if target == Target::Cluster {
        Model::cluster(3)
    } else {
        Model::new()
    };
    let node_links: NodeLinks = Arc::default();
    let net = network(&knobs, &model, &mut rng, Some(Arc::clone(&node_links)));
    let mut shared = Shared::new(Arc::clone(&model), knobs.calm);
    if knobs.calm && target == Target::Mux && knobs.faults.slow_reader == 0 {
        shared = shared.with_prompt(PROMPT);
    }
    let shared = Arc::new(shared);
    // No jitter: a run must repeat exactly.
    let retry = RetryPolicy::default().with_jitter(false);
    let budget = Duration::from_millis(rng.between(500, 4_000));
    let client = match target {
        Target::Cluster => {
            let seeds = (0..3)
                .map(|i| {
                    let mut info = knobs.info.clone();
                    info.addr = redis_client::Addr::Tcp {
                        host: format!("node{i}"),
                        port: 7000,
                    };
                    info
                })
                .collect();
            let refresh = rng
                .chance(50)
                .then(|| Duration::from_millis(rng.between(500, 5_000)));
            let options = ClusterOptions::default()
                .with_retry_policy(
                    ClusterOptions::default()
                        .retry
                        .with_jitter(false)
                        .with_budget(Some(budget)),
                )
                .with_refresh_interval(refresh);
            match ClusterClient::with_connector(seeds, options, net.clone()).await {
                Ok(c) => Client::Cluster(c, budget),
                // Faults can keep every seed from answering (stalls, cuts): a client that
                // cannot start is an error the faults allow, and the run ends there.
                Err(e) => {
                    shared.error(|| format!("the cluster client could not start: {e}"));
                    return shared.finish(&model);
                }
            }
        }
        _ => Client::Single(
            Redis::with_connector(knobs.info.clone(), net.clone(), knobs.pool.clone())
                .with_retry_policy(retry),
        ),
    };
    let (chaos, stop) = start_chaos(&net, &model, &shared, &knobs, &mut rng);
    let topology = (target == Target::Cluster).then(|| {
        tokio::spawn(topology(
            Arc::clone(&net),
            Arc::clone(&model),
            node_links,
            rng.fork(),
            // A calm run's migrations end well within any call's budget.
            [
                knobs.migrate,
                knobs.failover,
                if knobs.calm { 100 } else { 500 },
            ],
            Arc::clone(&stop),
        ))
    });
    let mut callers = Vec::new();
    for caller in 0..knobs.callers {
        let work = Caller {
            id: caller,
            client: client.clone(),
            shared: Arc::clone(&shared),
            rng: rng.fork(),
            info: knobs.info.clone(),
            drop_percent: knobs.drop_percent,
            side: Arc::clone(net.side_calls()),
            side_percent: knobs.side,
        };
        callers.push(tokio::spawn(work.run(target, knobs.calls_each)));
    }
    for c in callers {
        if let Err(e) = c.await {
            shared.violation(format!("a caller panicked: {e}"));
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = chaos.await;
    if let Some(t) = topology {
        let _ = t.await;
    }
    drop(client);
    // Let every connection's task see its end.
    tokio::time::sleep(Duration::from_secs(30)).await;
    let mut report = shared.finish(&model);
    report.side_calls = net.side_calls().started();
    report
}

/// Starts [`chaos`] on the run's runtime; setting the flag it returns stops it.
pub(crate) fn start_chaos(
    net: &Arc<SimConnector>,
    model: &Arc<Model>,
    shared: &Arc<Shared>,
    knobs: &Knobs,
    rng: &mut Rng,
) -> (
    tokio::task::JoinHandle<()>,
    Arc<std::sync::atomic::AtomicBool>,
) {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let task = tokio::spawn(chaos(
        Arc::clone(net),
        Arc::clone(model),
        Arc::clone(shared),
        rng.fork(),
        knobs.chaos(),
        Arc::clone(&stop),
    ));
    (task, stop)
}

/// Injects faults at random moments until told to stop: extra replies on idle
/// connections (with the reactor lagging, as a busy runtime's does), extra replies on
/// connections owing replies, server restarts.
async fn chaos(
    net: Arc<SimConnector>,
    model: Arc<Model>,
    shared: Arc<Shared>,
    mut rng: Rng,
    [stray_idle, stray_owed, stray_behind, restart]: [u64; 4],
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(rng.between(1, 10))).await;
        let links = net.links();
        if links.is_empty() {
            continue;
        }
        let link = &links[rng.below(links.len() as u64) as usize];
        let stray: &[u8] = match rng.below(3) {
            0 => b"+OK\r\n",
            1 => b":1\r\n",
            _ => b"$5\r\nstray\r\n",
        };
        let (idle, caught_up, dead, id) = {
            let l = link.lock();
            (l.is_idle(), l.is_caught_up(), l.is_dead(), l.id)
        };
        if idle && rng.chance(stray_idle) {
            // The runtime is busy: its reactor reports the bytes late.
            let lag = Duration::from_millis(rng.between(1, 100));
            crate::net::lag(link, lag);
            link.lock().server_write(stray, now());
            shared.report.lock().strays += 1;
        } else if caught_up && !idle && rng.chance(stray_behind) {
            // Behind replies the client has not read yet, the reactor late again: no
            // request made from now on may receive it.
            let lag = Duration::from_millis(rng.between(1, 100));
            crate::net::lag(link, lag);
            link.lock().server_write(stray, now());
            model.desync_behind(id);
            shared.report.lock().strays += 1;
        } else if !dead && !idle && rng.chance(stray_owed) {
            link.lock().server_write(stray, now());
            model.desync(id);
        } else if rng.chance(restart) {
            model.forget();
            for link in &links {
                link.lock().reset();
            }
            net.refuse("model:6379");
            tokio::time::sleep(Duration::from_millis(rng.between(0, 300))).await;
            net.accept_again("model:6379");
        }
    }
}

/// The client a run drives.
#[derive(Clone, Debug)]
enum Client {
    /// One server: the multiplexed connection and the pool.
    Single(Redis),
    /// A cluster, with the budget of its calls.
    Cluster(ClusterClient, Duration),
}

impl Client {
    async fn call<T: FromValue>(&self, cmd: Cmd) -> Result<T, Error> {
        match self {
            Client::Single(r) => r.run(Typed::new(cmd)).await,
            Client::Cluster(c, _) => c.run(Typed::new(cmd)).await,
        }
    }

    /// The one-server client (the targets that use pipelines, WATCH and the pool).
    fn single(&self) -> &Redis {
        match self {
            Client::Single(r) => r,
            Client::Cluster(..) => unreachable!("the cluster target makes single calls only"),
        }
    }
}

/// Moves slots and fails primaries over until told to stop: a migration answers `ASK`
/// (and `TRYAGAIN` for keys split across it) then `MOVED`; a failover kills a primary
/// (its connections cut, new ones refused) and, after a while, promotes a new node to
/// its slots.
async fn topology(
    net: Arc<SimConnector>,
    model: Arc<Model>,
    links: NodeLinks,
    mut rng: Rng,
    [migrate, failover, migration_ms]: [u64; 3],
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut failovers = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(rng.between(5, 50))).await;
        let Some((live, nodes)) = model.with_cluster(|m| {
            let live: Vec<usize> = m.primaries().into_iter().filter(|n| !m.dead[*n]).collect();
            (live, m.nodes.clone())
        }) else {
            return;
        };
        if live.len() >= 2 && rng.chance(migrate) {
            // A slot the callers' keys live in, and a few around it of the same node.
            let hot = redis_client::cluster::key_slot(hot_tag(rng.below(HOT_TAGS)).as_bytes());
            let Some(from) = model
                .with_cluster(|m| m.owner_of(hot))
                .flatten()
                .filter(|n| live.contains(n))
            else {
                continue;
            };
            let to = loop {
                let t = live[rng.below(live.len() as u64) as usize];
                if t != from {
                    break t;
                }
            };
            let Some((first, last)) = model
                .with_cluster(|m| m.ranges(from))
                .unwrap_or_default()
                .into_iter()
                .find(|(a, b)| (*a..=*b).contains(&hot))
            else {
                continue;
            };
            let first = first.max(hot.saturating_sub(rng.below(50) as u16));
            let last = last.min(hot.saturating_add(rng.below(50) as u16));
            model.with_cluster(|m| m.start_migration(first, last, from, to));
            tokio::time::sleep(Duration::from_millis(rng.between(10, migration_ms))).await;
            model.with_cluster(|m| m.finish_migration());
        } else if failovers == 0 && live.len() >= 2 && rng.chance(failover) {
            failovers += 1;
            let node = live[rng.below(live.len() as u64) as usize];
            let addr = nodes[node].clone();
            model.with_cluster(|m| m.kill(node));
            net.refuse(&addr);
            for (link, n) in links.lock().iter() {
                if *n == node {
                    link.lock().reset();
                }
            }
            // The cluster notices and promotes a replica.
            tokio::time::sleep(Duration::from_millis(rng.between(100, 2_000))).await;
            model.with_cluster(|m| m.promote(node));
        }
    }
}

/// The longest a single call may take under the default budget: the connect timeout plus
/// the reply's wait (a blocking command's timeout and a second, at least the read timeout).
pub(crate) fn call_bound(info: &ConnectionInfo, block: Option<f64>) -> Duration {
    let read = info.read_timeout.unwrap_or_default();
    let wait = match block {
        Some(secs) => read.max(Duration::from_secs_f64(secs) + Duration::from_secs(1)),
        None => read,
    };
    info.connect_timeout.unwrap_or_default() + wait
}

/// The longest a pipeline of `replies` replies may take under the default budget:
/// connecting, then each reply's own wait.
pub(crate) fn pipeline_bound(info: &ConnectionInfo, replies: u32) -> Duration {
    info.connect_timeout.unwrap_or_default() + info.read_timeout.unwrap_or_default() * replies
}

/// The commands of the pipeline workload: an increment, a read and an echo of a token.
pub(crate) fn pipeline_commands(key: &str, by: i64, token: &str) -> [Cmd; 3] {
    [
        cmd::strings::incrby(key, by).cmd,
        cmd::strings::get(key).cmd,
        cmd::connection::echo(token).cmd,
    ]
}

/// Checks a pipeline's outcome: as a transaction, against the model's EXEC of the same
/// commands; otherwise each reply against its own command's answer.
pub(crate) fn check_pipeline(
    shared: &Shared,
    queued: &[Vec<Bytes>],
    atomic: bool,
    start: Instant,
    bound: Duration,
    got: Result<Vec<Value>, Error>,
) {
    if atomic {
        let got = got.map(Value::Array);
        shared.check::<Value>(&exec_key(queued), start, bound, &got);
        return;
    }
    match got {
        Ok(values) => {
            for (args, v) in queued.iter().zip(values) {
                shared.check::<Value>(args, start, bound, &Ok(v));
            }
        }
        Err(e) => shared.check::<Value>(&queued[0], start, bound, &Err(e)),
    }
}

/// Hash tags the cluster target's keys carry, so that they live in a few slots, which
/// migrations and failovers then move.
const HOT_TAGS: u64 = 8;

fn hot_tag(n: u64) -> String {
    format!("{{t{n}}}")
}

/// One task calling the client.
struct Caller {
    id: u64,
    client: Client,
    shared: Arc<Shared>,
    rng: Rng,
    info: ConnectionInfo,
    drop_percent: u64,
    side: Arc<SideCalls>,
    side_percent: u64,
}

impl Caller {
    async fn run(mut self, target: Target, calls: u64) {
        for n in 0..calls {
            // Time between calls, so faults find connections both busy and idle.
            match self.rng.below(8) {
                0 => tokio::task::yield_now().await,
                1 => {}
                2 => tokio::time::sleep(Duration::from_millis(self.rng.between(20, 200))).await,
                _ => tokio::time::sleep(Duration::from_millis(self.rng.below(20))).await,
            }
            let token = format!("c{}-{n}", self.id);
            let op = match target {
                Target::Mux => [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 10][self.rng.below(11) as usize],
                Target::Pool => 5 + self.rng.below(4),
                Target::Cluster => [0, 1, 2, 9][self.rng.below(4) as usize],
                Target::Blocking => unreachable!("the blocking target has its own caller"),
            };
            match op {
                0 => self.echo(&token).await,
                1 => self.get().await,
                2 => self.incrby().await,
                3 => self.transaction(true).await,
                4 => self.transaction(false).await,
                5 => self.blpop(&token).await,
                6 => self.watch().await,
                7 => self.setname(&token).await,
                9 => self.mget().await,
                10 => self.big_set().await,
                _ => self.echo(&token).await,
            }
        }
    }

    fn budget(&self, block: Option<f64>) -> Duration {
        match &self.client {
            Client::Cluster(_, budget) => *budget,
            Client::Single(_) => call_bound(&self.info, block),
        }
    }

    fn pipeline_bound(&self, replies: u32) -> Duration {
        pipeline_bound(&self.info, replies)
    }

    /// Runs `call`, or drops it part way when the seed says so (at whatever await it
    /// has reached after a random wait); `None` when dropped.
    async fn maybe_drop<T>(&mut self, call: impl Future<Output = T>) -> Option<T> {
        if self.rng.chance(self.drop_percent) {
            let after = Duration::from_millis(self.rng.below(50));
            tokio::time::timeout(after, call).await.ok()
        } else {
            Some(call.await)
        }
    }

    async fn single<T: FromValue + PartialEq + Debug + Send + 'static>(
        &mut self,
        cmd: Cmd,
        block: Option<f64>,
    ) {
        let args = args_of(&cmd);
        let bound = self.budget(block);
        if self.rng.chance(self.side_percent) {
            return self.side_call::<T>(cmd, args, bound).await;
        }
        let start = now();
        let client = self.client.clone();
        let call = async move { client.call::<T>(cmd).await };
        if let Some(got) = self.maybe_drop(call).await {
            self.shared.check(&args, start, bound, &got);
        }
    }

    /// Hands the call to the network, to be started from inside a connection task's
    /// read or write (its request queued while the task has its lock let go), and waits
    /// for it; takes it back and makes it here if no system call started it within a
    /// millisecond.
    async fn side_call<T: FromValue + PartialEq + Debug + Send + 'static>(
        &mut self,
        cmd: Cmd,
        args: Vec<Bytes>,
        bound: Duration,
    ) {
        let (done_tx, done) = tokio::sync::oneshot::channel();
        let client = self.client.clone();
        let shared = Arc::clone(&self.shared);
        let side = Arc::clone(&self.side);
        // An ECHO's token is unique: the network notes when it is written.
        let token = args[0]
            .eq_ignore_ascii_case(b"ECHO")
            .then(|| args[1].clone());
        if let Some(t) = &token {
            side.watch(t);
        }
        let call: SideCall = Box::pin(async move {
            // Its bound counts from its start, whenever a system call makes it.
            let start = now();
            let open = shared.calls() > 0;
            let got = client.call::<T>(cmd).await;
            if let Some(t) = token {
                let written = side.written(&t);
                shared.written_promptly(&args, open, start, written);
            }
            shared.check(&args, start, bound, &got);
            let _ = done_tx.send(());
        });
        let id = self.side.hand(call);
        tokio::time::sleep(Duration::from_millis(1)).await;
        match self.side.take_back(id) {
            Some(call) => call.await,
            None => {
                let _ = done.await;
            }
        }
    }

    async fn echo(&mut self, token: &str) {
        self.single::<Bytes>(cmd::connection::echo(token).cmd, None)
            .await;
    }

    fn key(&mut self) -> String {
        if let Client::Cluster(..) = self.client {
            let tag = hot_tag(self.rng.below(HOT_TAGS));
            return format!("{tag}k{}-{}", self.id, self.rng.below(3));
        }
        // A few keys per caller, and some shared by all.
        if self.rng.chance(20) {
            format!("shared-{}", self.rng.below(3))
        } else {
            format!("k{}-{}", self.id, self.rng.below(3))
        }
    }

    async fn get(&mut self) {
        let key = self.key();
        self.single::<Option<Bytes>>(cmd::strings::get(key).cmd, None)
            .await;
    }

    async fn incrby(&mut self) {
        let key = self.key();
        let by = self.rng.between(1, 9) as i64;
        self.single::<i64>(cmd::strings::incrby(key, by).cmd, None)
            .await;
    }

    /// A pipeline on the multiplexed connection: MULTI … EXEC, or only buffered.
    async fn transaction(&mut self, atomic: bool) {
        let key = self.key();
        let by = self.rng.between(1, 9) as i64;
        let token = format!("p{}-{}", self.id, self.rng.below(1 << 30));
        let cmds = pipeline_commands(&key, by, &token);
        let queued: Vec<Vec<Bytes>> = cmds.iter().map(args_of).collect();
        let mut pipe = self.client.single().pipeline();
        pipe.transaction(atomic);
        for c in cmds {
            pipe.queue(c);
        }
        // MULTI, three commands and EXEC, or the three alone.
        let bound = self.pipeline_bound(if atomic { 5 } else { 3 });
        let start = now();
        let Some(got) = self.maybe_drop(async move { pipe.execute().await }).await else {
            return;
        };
        check_pipeline(&self.shared, &queued, atomic, start, bound, got);
    }

    /// A blocking pop (on a pooled connection) from a list of the caller's own, pushed to
    /// first or not.
    async fn blpop(&mut self, token: &str) {
        let list = format!("list-{}", self.id);
        if self.rng.chance(60) {
            self.single::<i64>(cmd::lists::lpush(list.as_str(), token).cmd, None)
                .await;
        }
        let secs = [0.05, 0.2, 0.5][self.rng.below(3) as usize];
        self.single::<Option<(Bytes, Bytes)>>(
            cmd::lists::blpop(list.as_str(), std::time::Duration::from_secs_f64(secs)).cmd,
            Some(secs),
        )
        .await;
    }

    /// WATCH, a read in immediate mode, and MULTI … EXEC, on a pooled connection; another
    /// caller's write to the key in between aborts it.
    async fn watch(&mut self) {
        let key = format!("shared-{}", self.rng.below(2));
        let by = self.rng.between(1, 9) as i64;
        let budget = self.budget(None);
        // MULTI, the command and EXEC, on the connection already held.
        let exec_bound = self.pipeline_bound(3);
        let shared = Arc::clone(&self.shared);
        let client = self.client.single().clone();
        let work = async move {
            let start = now();
            let watching = client.pipeline().watch(key.as_str()).await;
            let mut watch = Cmd::new("WATCH");
            watch.key(key.as_str());
            let watch_args = args_of(&watch);
            shared.within(&watch_args, start, budget);
            let mut w = match watching {
                Ok(w) => w,
                Err(e) => return shared.error(|| format!("WATCH gave {e}")),
            };
            let get = cmd::strings::get(key.as_str()).cmd;
            let start = now();
            let got = w.get(key.as_str()).await;
            shared.check(&args_of(&get), start, budget, &got);
            if got.is_err() {
                return;
            }
            let incr = cmd::strings::incrby(key.as_str(), by).cmd;
            let queued = vec![args_of(&incr)];
            let mut pipe = w.multi();
            pipe.queue(incr);
            let start = now();
            let got = match pipe.execute().await {
                Err(Error::Watch) => Ok(Value::Nil),
                other => other.map(Value::Array),
            };
            shared.check::<Value>(&exec_key(&queued), start, exec_bound, &got);
        };
        let _ = self.maybe_drop(work).await;
    }

    /// A SET of a value large enough to be written from its own buffer rather than
    /// copied into the batch.
    async fn big_set(&mut self) {
        let len = redis_client::redis_conn::mux::SHARED_PART + self.rng.below(4096) as usize;
        let value = vec![b'v'; len];
        let key = format!("big{}", self.id);
        self.single::<bool>(cmd::strings::set(key, value).cmd, None)
            .await;
    }

    /// MGET of two keys of one slot (a hash tag), which a migration can split.
    async fn mget(&mut self) {
        let tag = hot_tag(self.rng.below(HOT_TAGS));
        let keys = [format!("{tag}a"), format!("{tag}b")];
        self.single::<Vec<Option<Bytes>>>(cmd::strings::mget(keys).cmd, None)
            .await;
    }

    /// A connection-state command on a pooled connection, restored at hand-back.
    /// Through `query`, which sends it as given (the command method refuses it on a
    /// pooled client), so that its connection is restored at hand-back.
    async fn setname(&mut self, token: &str) {
        let cmd = cmd::connection::client_setname(token).cmd;
        let args = args_of(&cmd);
        let bound = self.budget(None);
        let start = now();
        let client = self.client.single().clone();
        let call = async move { client.query::<(), ()>(Typed::new(cmd)).await };
        if let Some(got) = self.maybe_drop(call).await {
            self.shared.check(&args, start, bound, &got);
        }
    }
}
