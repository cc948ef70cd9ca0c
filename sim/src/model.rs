//! The model server: a small in-process Redis with the commands the scenarios need
//! (PING, HELLO, ECHO, GET, SET, INCR, INCRBY, DEL, LPUSH, BLPOP, MULTI, EXEC, DISCARD,
//! WATCH, UNWATCH, RESET, SELECT 0, CLIENT SETNAME/GETNAME), small enough to be
//! obviously right, and a log of every command it answered: the answer each request got,
//! which the checker compares with what each caller received.

use crate::net::{self, LinkRef};
use crate::rng::Rng;
use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use redis_client::redis_conn::aio::now;
use resp_proto::{Decode, Value};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A key's value.
#[derive(Clone, Debug)]
enum Entry {
    Str(Bytes),
    List(VecDeque<Bytes>),
}

/// One command the model answered.
#[derive(Debug)]
pub struct Exec {
    /// The connection it came on.
    pub link: u64,
    /// Its arguments (for EXEC: see [`exec_key`]).
    pub args: Vec<Bytes>,
    /// The answer sent.
    pub reply: Value,
    /// Sent after an extra reply on a connection that owed replies: no client can tell
    /// the two apart, so whoever receives it may have received another's.
    pub exposed: bool,
    /// A caller has matched it to its own request.
    pub claimed: bool,
}

/// What the checker found for a caller's reply.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    /// The model's answer to this very request.
    Own,
    /// Not the model's answer, but the request went over a connection made ambiguous by
    /// an extra reply while replies were owed.
    Exposed,
    /// Not any answer the model gave this request.
    Wrong,
}

#[derive(Debug, Default)]
struct State {
    data: BTreeMap<Bytes, Entry>,
    /// Bumped at every write of a key, for WATCH.
    versions: BTreeMap<Bytes, u64>,
    log: Vec<Exec>,
    /// Connections given an extra reply while they owed replies, and when.
    /// Connections that received an extra reply, when, and whether it came behind every
    /// reply owed (only calls begun before it may have met it then).
    desynced: Vec<(u64, Instant, bool)>,
    /// Connections that ended, and when.
    ended: BTreeMap<u64, Instant>,
    /// Which node serves which slot, when the model is a cluster.
    cluster: Option<ClusterMap>,
}

/// The model server's state, shared by the tasks serving its connections.
#[derive(Debug, Default)]
pub struct Model {
    state: Mutex<State>,
    /// Woken when a list gets an element (BLPOP waiters).
    pushed: tokio::sync::Notify,
}

/// How often the model misbehaves, in percent.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServerFaults {
    /// Before answering a request, it waits past the client's deadlines.
    pub stall: u64,
    /// After answering, the reactor reports its bytes late (the runtime was busy).
    pub lag: u64,
    /// After answering on a RESP3 connection, a push frame follows.
    pub push: u64,
    /// An ECHO is answered with a reply past the client's limits: a declared length too
    /// long, or (RESP3) a streamed string that never ends.
    pub hostile: u64,
}

/// The per-connection state the model keeps.
#[derive(Debug, Default)]
struct Session {
    resp3: bool,
    multi: Option<Vec<Vec<Bytes>>>,
    watched: Vec<(Bytes, u64)>,
    name: Option<Bytes>,
    /// ASKING came before this command.
    asking: bool,
}

/// The slots of a model cluster: which node serves each, the nodes that died, and the
/// migration in progress.
#[derive(Clone, Debug)]
pub struct ClusterMap {
    /// Every node's `host:port`, in the order they joined.
    pub nodes: Vec<String>,
    /// Nodes that died (they answer nothing; their slots wait for a failover).
    pub dead: Vec<bool>,
    /// Who serves what: `(first, last, node)`, in slot order, covering every slot.
    ranges: Vec<(u16, u16, usize)>,
    migrating: Option<Migration>,
}

/// Slots moving from one node to another: keys whose hash is even have moved already.
#[derive(Clone, Debug)]
struct Migration {
    first: u16,
    last: u16,
    from: usize,
    to: usize,
}

/// Slots in a cluster.
const SLOTS: usize = 16384;

impl ClusterMap {
    /// `n` nodes, `node0:7000` …, each serving an equal share of the slots.
    pub fn new(n: usize) -> ClusterMap {
        let nodes = (0..n).map(|i| format!("node{i}:7000")).collect();
        let ranges = (0..n)
            .map(|i| ((i * SLOTS / n) as u16, ((i + 1) * SLOTS / n - 1) as u16, i))
            .collect();
        ClusterMap {
            nodes,
            dead: vec![false; n],
            ranges,
            migrating: None,
        }
    }

    /// The node at `addr`, if it is one.
    pub fn node(&self, addr: &str) -> Option<usize> {
        self.nodes.iter().position(|a| a == addr)
    }

    /// The node serving `slot`.
    pub fn owner_of(&self, slot: u16) -> Option<usize> {
        self.ranges
            .iter()
            .find(|(a, b, _)| (*a..=*b).contains(&slot))
            .map(|r| r.2)
    }

    /// The nodes serving slots now.
    pub fn primaries(&self) -> Vec<usize> {
        let mut p: Vec<usize> = self.ranges.iter().map(|r| r.2).collect();
        p.sort_unstable();
        p.dedup();
        p
    }

    /// The slots `node` serves, first and last of each range.
    pub fn ranges(&self, node: usize) -> Vec<(u16, u16)> {
        self.ranges
            .iter()
            .filter(|r| r.2 == node)
            .map(|r| (r.0, r.1))
            .collect()
    }

    /// Gives slots `first..=last` to `node`, keeping the ranges in order and merged.
    fn assign(&mut self, first: u16, last: u16, node: usize) {
        let mut out = Vec::with_capacity(self.ranges.len() + 2);
        for &(a, b, n) in &self.ranges {
            if b < first || a > last {
                out.push((a, b, n));
                continue;
            }
            if a < first {
                out.push((a, first - 1, n));
            }
            if a <= first {
                out.push((first, last, node));
            }
            if b > last {
                out.push((last + 1, b, n));
            }
        }
        out.sort_unstable();
        let mut merged: Vec<(u16, u16, usize)> = Vec::with_capacity(out.len());
        for r in out {
            match merged.last_mut() {
                Some(m) if m.2 == r.2 && m.1 + 1 == r.0 => m.1 = r.1,
                _ => merged.push(r),
            }
        }
        self.ranges = merged;
    }

    fn slots_reply(&self) -> Value {
        let entries = self
            .ranges
            .iter()
            .map(|&(first, last, node)| {
                let addr = &self.nodes[node];
                let (host, port) = addr.rsplit_once(':').unwrap_or((addr, "7000"));
                Value::Array(vec![
                    Value::Integer(i64::from(first)),
                    Value::Integer(i64::from(last)),
                    Value::Array(vec![
                        bulk(host),
                        Value::Integer(port.parse().unwrap_or(7000)),
                        bulk(&format!("id-{node}")),
                    ]),
                ])
            })
            .collect();
        Value::Array(entries)
    }

    /// Slots `first..=last` (all `from`'s) start moving to `to`.
    pub fn start_migration(&mut self, first: u16, last: u16, from: usize, to: usize) {
        self.migrating = Some(Migration {
            first,
            last,
            from,
            to,
        });
    }

    /// The migration in progress ends: its slots are the target's.
    pub fn finish_migration(&mut self) {
        if let Some(m) = self.migrating.take() {
            self.assign(m.first, m.last, m.to);
        }
    }

    /// `node` dies.
    pub fn kill(&mut self, node: usize) {
        self.dead[node] = true;
        if self
            .migrating
            .as_ref()
            .is_some_and(|m| m.from == node || m.to == node)
        {
            self.migrating = None;
        }
    }

    /// A replica of dead `node` is promoted: a new node serves its slots. Returns it.
    pub fn promote(&mut self, node: usize) -> usize {
        let new = self.nodes.len();
        self.nodes.push(format!("node{new}:7000"));
        self.dead.push(false);
        for r in &mut self.ranges {
            if r.2 == node {
                r.2 = new;
            }
        }
        new
    }

    /// The redirection or refusal `node` answers a command on `keys` with, if any.
    fn route(&self, node: usize, keys: &[Bytes], asking: bool) -> Option<Value> {
        let slot = redis_client::cluster::key_slot(keys.first()?);
        if keys
            .iter()
            .any(|k| redis_client::cluster::key_slot(k) != slot)
        {
            return Some(error(
                "CROSSSLOT Keys in request don't hash to the same slot",
            ));
        }
        if let Some(m) = self
            .migrating
            .as_ref()
            .filter(|m| (m.first..=m.last).contains(&slot))
        {
            if node == m.from {
                let moved = keys.iter().filter(|k| moved_already(k)).count();
                if moved == keys.len() {
                    return Some(error(&format!("ASK {slot} {}", self.nodes[m.to])));
                }
                if moved > 0 {
                    return Some(error(
                        "TRYAGAIN Multiple keys request during rehashing of slot",
                    ));
                }
                return None;
            }
            if node == m.to && asking {
                return None;
            }
        }
        let owner = self.owner_of(slot)?;
        (owner != node).then(|| error(&format!("MOVED {slot} {}", self.nodes[owner])))
    }
}

/// Whether `key` counts as moved to the target of its slot's migration.
fn moved_already(key: &[u8]) -> bool {
    key.iter()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(*b)))
        % 2
        == 0
}

/// The key arguments of the commands the model knows.
fn keys_of(name: &str, args: &[Bytes]) -> Vec<Bytes> {
    match name {
        "GET" | "SET" | "INCR" | "INCRBY" | "LPUSH" => args.get(1).cloned().into_iter().collect(),
        "MGET" | "DEL" | "WATCH" => args[1..].to_vec(),
        "BLPOP" => args[1..args.len().saturating_sub(1)].to_vec(),
        _ => Vec::new(),
    }
}

/// The log key of an EXEC: its queued commands, in order.
pub fn exec_key(queued: &[Vec<Bytes>]) -> Vec<Bytes> {
    let mut key = vec![Bytes::from_static(b"EXEC")];
    for cmd in queued {
        key.push(Bytes::from_static(b"|"));
        key.extend(cmd.iter().cloned());
    }
    key
}

impl Model {
    /// A new, empty model.
    pub fn new() -> Arc<Model> {
        Arc::new(Model::default())
    }

    /// A new, empty model cluster of `nodes` primaries.
    pub fn cluster(nodes: usize) -> Arc<Model> {
        let model = Model::default();
        model.state.lock().cluster = Some(ClusterMap::new(nodes));
        Arc::new(model)
    }

    /// Changes the cluster's map (a migration, a failover) and returns what `change` gave.
    pub fn with_cluster<T>(&self, change: impl FnOnce(&mut ClusterMap) -> T) -> Option<T> {
        self.state.lock().cluster.as_mut().map(change)
    }

    /// The server restarts: its data is gone (the log stays: it is the record).
    pub fn forget(&self) {
        let mut st = self.state.lock();
        st.data.clear();
        for v in st.versions.values_mut() {
            *v += 1;
        }
    }

    /// Marks connection `link` as having received an extra reply while it owed replies.
    pub fn desync(&self, link: u64) {
        self.state.lock().desynced.push((link, now(), false));
    }

    /// Marks connection `link` as having received an extra reply behind every reply owed
    /// for what the client had written: a call begun before it may meet it (its request
    /// may have been recorded and not yet written), a call begun after must not.
    pub fn desync_behind(&self, link: u64) {
        self.state.lock().desynced.push((link, now(), true));
    }

    /// Notes that connection `link` ended.
    pub fn ended(&self, link: u64) {
        self.state.lock().ended.entry(link).or_insert_with(now);
    }

    /// Finds and claims the model's answer to a caller's request `args` that `matches`
    /// its reply; the call ran from `start` until now.
    pub fn claim(&self, args: &[Bytes], start: Instant, matches: impl Fn(&Value) -> bool) -> Found {
        let mut st = self.state.lock();
        if let Some(e) = st
            .log
            .iter_mut()
            .find(|e| !e.claimed && e.args == args && matches(&e.reply))
        {
            e.claimed = true;
            return if e.exposed {
                Found::Exposed
            } else {
                Found::Own
            };
        }
        // A desynced connection alive while the call ran may have handed it anything.
        let ended = &st.ended;
        let overlaps = st.desynced.iter().any(|(link, at, behind)| {
            *at <= now()
                && ended.get(link).map_or(true, |end| *end >= start)
                && (!*behind || start <= *at)
        });
        if overlaps {
            Found::Exposed
        } else {
            Found::Wrong
        }
    }

    /// How many answers were a redirection or a refusal to wait (`MOVED`, `ASK`,
    /// `TRYAGAIN`).
    pub fn redirections(&self) -> u64 {
        let st = self.state.lock();
        st.log
            .iter()
            .filter(|e| {
                matches!(&e.reply, Value::Error(err)
                    if ["MOVED", "ASK", "TRYAGAIN"].iter().any(|c| err.as_bytes().starts_with(c.as_bytes())))
            })
            .count() as u64
    }

    /// Every answer of the log for `args` (for a failure's report).
    pub fn answers(&self, args: &[Bytes]) -> Vec<Value> {
        let st = self.state.lock();
        st.log
            .iter()
            .filter(|e| e.args == args)
            .map(|e| e.reply.clone())
            .collect()
    }

    fn log(&self, st: &mut State, link: u64, args: Vec<Bytes>, reply: &Value) {
        let exposed = st.desynced.iter().any(|(l, _, _)| *l == link);
        st.log.push(Exec {
            link,
            args,
            reply: reply.clone(),
            exposed,
            claimed: false,
        });
    }

    /// Serves one connection until it ends.
    pub async fn serve(
        self: Arc<Self>,
        link: LinkRef,
        mut rng: Rng,
        faults: ServerFaults,
        node: Option<usize>,
    ) {
        let id = link.lock().id;
        let mut session = Session::default();
        let mut buf = BytesMut::new();
        let mut decoder = resp_proto::Decoder::new();
        'serve: loop {
            loop {
                let args = match decoder.decode(&mut buf) {
                    Ok(Some(Value::Array(items))) => items
                        .into_iter()
                        .map(|v| match v {
                            Value::BulkString(b) => Some(b),
                            _ => None,
                        })
                        .collect::<Option<Vec<Bytes>>>(),
                    Ok(None) => break,
                    _ => None,
                };
                let Some(args) = args.filter(|a| !a.is_empty()) else {
                    // Not a request a client of ours sends: hang up.
                    break 'serve;
                };
                link.lock().server_busy = true;
                // The network's and the server's own time.
                if rng.chance(50) {
                    tokio::time::sleep(Duration::from_micros(rng.between(10, 500))).await;
                }
                if rng.chance(faults.stall) {
                    tokio::time::sleep(Duration::from_millis(rng.between(50, 3_000))).await;
                }
                let echo = args[0].eq_ignore_ascii_case(b"ECHO");
                let reply = self.execute(&mut session, id, args, &link, node).await;
                let mut out = BytesMut::new();
                if echo && rng.chance(faults.hostile) {
                    hostile(&mut out, session.resp3 && rng.chance(50));
                    link.lock().server_write(&out, now());
                    break 'serve;
                }
                encode(&mut out, &reply, session.resp3);
                if session.resp3 && rng.chance(faults.push) {
                    let push = Value::Push(vec![
                        Value::BulkString(Bytes::from_static(b"message")),
                        Value::BulkString(Bytes::from_static(b"news")),
                        Value::BulkString(Bytes::from(format!("push-{}", rng.below(1000)))),
                    ]);
                    encode(&mut out, &push, true);
                }
                if rng.chance(faults.lag) {
                    net::lag(&link, Duration::from_millis(rng.between(1, 200)));
                }
                if !link.lock().server_write(&out, now()) {
                    break 'serve;
                }
            }
            link.lock().server_busy = !buf.is_empty();
            match net::read(&link).await {
                Some(bytes) => buf.extend_from_slice(&bytes),
                None => break,
            }
        }
        link.lock().server_close();
        self.ended(id);
    }

    async fn execute(
        &self,
        s: &mut Session,
        link: u64,
        args: Vec<Bytes>,
        l: &LinkRef,
        node: Option<usize>,
    ) -> Value {
        let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
        let asking = std::mem::take(&mut s.asking);
        if let Some(node) = node {
            let mut st = self.state.lock();
            let refusal = match (name.as_str(), &st.cluster) {
                ("ASKING", _) => {
                    s.asking = true;
                    Some(ok())
                }
                ("CLUSTER", Some(map)) => Some(
                    if args
                        .get(1)
                        .is_some_and(|a| a.eq_ignore_ascii_case(b"SLOTS"))
                    {
                        map.slots_reply()
                    } else {
                        error("ERR unknown subcommand")
                    },
                ),
                (_, Some(map)) => map.route(node, &keys_of(&name, &args), asking),
                (_, None) => None,
            };
            if let Some(reply) = refusal {
                self.log(&mut st, link, args, &reply);
                return reply;
            }
        }
        if let Some(queued) = &mut s.multi {
            match name.as_str() {
                "EXEC" | "DISCARD" | "MULTI" | "WATCH" => {}
                _ => {
                    queued.push(args.clone());
                    let reply = Value::SimpleString(Bytes::from_static(b"QUEUED"));
                    self.log(&mut self.state.lock(), link, args, &reply);
                    return reply;
                }
            }
        }
        if name == "BLPOP" {
            return self.blpop(link, &args, l).await;
        }
        let mut st = self.state.lock();
        let reply = match name.as_str() {
            "EXEC" => match s.multi.take() {
                None => error("ERR EXEC without MULTI"),
                Some(queued) => {
                    let aborted = s
                        .watched
                        .drain(..)
                        .any(|(k, v)| st.versions.get(&k).copied().unwrap_or(0) != v);
                    let reply = if aborted {
                        Value::Nil
                    } else {
                        Value::Array(queued.iter().map(|c| apply(&mut st, s, c)).collect())
                    };
                    self.log(&mut st, link, exec_key(&queued), &reply);
                    if !aborted {
                        self.pushed.notify_waiters();
                    }
                    return reply;
                }
            },
            "MULTI" if s.multi.is_some() => error("ERR MULTI calls can not be nested"),
            "MULTI" => {
                s.multi = Some(Vec::new());
                ok()
            }
            "DISCARD" => {
                s.multi = None;
                s.watched.clear();
                ok()
            }
            "WATCH" if s.multi.is_some() => error("ERR WATCH inside MULTI is not allowed"),
            _ => apply(&mut st, s, &args),
        };
        self.log(&mut st, link, args, &reply);
        if name == "LPUSH" {
            self.pushed.notify_waiters();
        }
        reply
    }

    async fn blpop(&self, link: u64, args: &[Bytes], l: &LinkRef) -> Value {
        let secs: f64 = std::str::from_utf8(args.last().map_or(&b""[..], |a| a))
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0.0);
        let keys = &args[1..args.len().saturating_sub(1)];
        let deadline = (secs > 0.0).then(|| now() + Duration::from_secs_f64(secs));
        loop {
            {
                let mut st = self.state.lock();
                for key in keys {
                    let popped = match st.data.get_mut(key) {
                        Some(Entry::List(items)) => items.pop_front(),
                        _ => None,
                    };
                    if let Some(v) = popped {
                        if matches!(st.data.get(key), Some(Entry::List(i)) if i.is_empty()) {
                            st.data.remove(key);
                        }
                        *st.versions.entry(key.clone()).or_default() += 1;
                        let reply = Value::Array(vec![
                            Value::BulkString(key.clone()),
                            Value::BulkString(v),
                        ]);
                        self.log(&mut st, link, args.to_vec(), &reply);
                        return reply;
                    }
                }
                if deadline.is_some_and(|d| now() >= d) || l.lock().is_dead() {
                    // RESP2 sends a null array, RESP3 a null: both are `Nil` here.
                    self.log(&mut st, link, args.to_vec(), &Value::Nil);
                    return Value::Nil;
                }
            }
            // Woken by a push, or at the deadline, or every 10 ms to see whether the
            // client went away.
            let wait = deadline
                .map_or(Duration::from_millis(10), |d| {
                    d.saturating_duration_since(now())
                })
                .min(Duration::from_millis(10));
            tokio::select! {
                biased;
                () = self.pushed.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// A reply past the simulation's client limits (64 KiB strings, 256 KiB replies): a
/// declared length of a megabyte with nothing after it, or a streamed string of
/// half a megabyte in 4-byte chunks.
fn hostile(out: &mut BytesMut, streamed: bool) {
    if streamed {
        out.extend_from_slice(b"$?\r\n");
        for _ in 0..(512 << 10) / 9 {
            out.extend_from_slice(b";4\r\nxxxx\r\n");
        }
    } else {
        out.extend_from_slice(b"$1048576\r\n");
    }
}

fn ok() -> Value {
    Value::SimpleString(Bytes::from_static(b"OK"))
}

fn error(text: &str) -> Value {
    Value::Error(resp_proto::ServerError::new(Bytes::copy_from_slice(
        text.as_bytes(),
    )))
}

/// Runs one command (outside MULTI, or at EXEC) on the data.
fn apply(st: &mut State, s: &mut Session, args: &[Bytes]) -> Value {
    let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    let touch = |st: &mut State, k: &Bytes| *st.versions.entry(k.clone()).or_default() += 1;
    match name.as_str() {
        "PING" => Value::SimpleString(Bytes::from_static(b"PONG")),
        "HELLO" => {
            s.resp3 = &arg(1)[..] == b"3";
            let fields = vec![
                (bulk("server"), bulk("redis")),
                (bulk("version"), bulk("7.0.15")),
                (bulk("proto"), Value::Integer(if s.resp3 { 3 } else { 2 })),
            ];
            if s.resp3 {
                Value::Map(fields)
            } else {
                Value::Array(fields.into_iter().flat_map(|(k, v)| [k, v]).collect())
            }
        }
        "ECHO" => Value::BulkString(arg(1)),
        "GET" => match st.data.get(&arg(1)) {
            None => Value::Nil,
            Some(Entry::Str(v)) => Value::BulkString(v.clone()),
            Some(Entry::List(_)) => wrongtype(),
        },
        "SET" => {
            let k = arg(1);
            st.data.insert(k.clone(), Entry::Str(arg(2)));
            touch(st, &k);
            ok()
        }
        "INCR" | "INCRBY" => {
            let k = arg(1);
            let by: i64 = if name == "INCR" {
                1
            } else {
                match std::str::from_utf8(&arg(2))
                    .ok()
                    .and_then(|t| t.parse().ok())
                {
                    Some(n) => n,
                    None => return error("ERR value is not an integer or out of range"),
                }
            };
            let current = match st.data.get(&k) {
                None => 0,
                Some(Entry::Str(v)) => match std::str::from_utf8(v)
                    .ok()
                    .and_then(|t| t.parse::<i64>().ok())
                {
                    Some(n) => n,
                    None => return error("ERR value is not an integer or out of range"),
                },
                Some(Entry::List(_)) => return wrongtype(),
            };
            let Some(next) = current.checked_add(by) else {
                return error("ERR increment or decrement would overflow");
            };
            st.data
                .insert(k.clone(), Entry::Str(Bytes::from(next.to_string())));
            touch(st, &k);
            Value::Integer(next)
        }
        "DEL" => {
            let mut n = 0;
            for k in &args[1..] {
                if st.data.remove(k).is_some() {
                    n += 1;
                    touch(st, k);
                }
            }
            Value::Integer(n)
        }
        "LPUSH" => {
            let k = arg(1);
            let len = match st
                .data
                .entry(k.clone())
                .or_insert_with(|| Entry::List(VecDeque::new()))
            {
                Entry::List(items) => {
                    for v in &args[2..] {
                        items.push_front(v.clone());
                    }
                    items.len()
                }
                Entry::Str(_) => return wrongtype(),
            };
            touch(st, &k);
            Value::Integer(len as i64)
        }
        "WATCH" => {
            for k in &args[1..] {
                let v = st.versions.get(k).copied().unwrap_or(0);
                s.watched.push((k.clone(), v));
            }
            ok()
        }
        "UNWATCH" => {
            s.watched.clear();
            ok()
        }
        "RESET" => {
            *s = Session::default();
            Value::SimpleString(Bytes::from_static(b"RESET"))
        }
        "SELECT" if &arg(1)[..] == b"0" => ok(),
        "SELECT" => error("ERR DB index is out of range"),
        "CLIENT" => match String::from_utf8_lossy(&arg(1))
            .to_ascii_uppercase()
            .as_str()
        {
            "SETNAME" => {
                s.name = Some(arg(2));
                ok()
            }
            "GETNAME" => s.name.clone().map_or(Value::Nil, Value::BulkString),
            _ => error("ERR unknown subcommand"),
        },
        _ => error("ERR unknown command"),
    }
}

fn bulk(text: &str) -> Value {
    Value::BulkString(Bytes::copy_from_slice(text.as_bytes()))
}

fn wrongtype() -> Value {
    error("WRONGTYPE Operation against a key holding the wrong kind of value")
}

/// Encodes a reply as the connection's protocol has it.
pub fn encode(out: &mut BytesMut, v: &Value, resp3: bool) {
    match v {
        Value::Nil if resp3 => out.extend_from_slice(b"_\r\n"),
        Value::Nil => out.extend_from_slice(b"$-1\r\n"),
        Value::SimpleString(s) => {
            out.extend_from_slice(b"+");
            out.extend_from_slice(s);
            out.extend_from_slice(b"\r\n");
        }
        Value::Error(e) => {
            out.extend_from_slice(b"-");
            out.extend_from_slice(e.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        Value::Integer(n) => out.extend_from_slice(format!(":{n}\r\n").as_bytes()),
        Value::BulkString(b) => {
            out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
            out.extend_from_slice(b);
            out.extend_from_slice(b"\r\n");
        }
        Value::Array(items) => {
            out.extend_from_slice(format!("*{}\r\n", items.len()).as_bytes());
            for i in items {
                encode(out, i, resp3);
            }
        }
        Value::Map(pairs) => {
            out.extend_from_slice(format!("%{}\r\n", pairs.len()).as_bytes());
            for (k, v) in pairs {
                encode(out, k, resp3);
                encode(out, v, resp3);
            }
        }
        Value::Push(items) => {
            out.extend_from_slice(format!(">{}\r\n", items.len()).as_bytes());
            for i in items {
                encode(out, i, resp3);
            }
        }
        other => unreachable!("the model never answers with {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_migration_moves_exactly_its_slots_and_a_failover_all_of_a_node() {
        let mut map = ClusterMap::new(3);
        assert_eq!(map.ranges(1), vec![(5461, 10921)]);
        map.start_migration(6000, 6010, 1, 2);
        assert_eq!(
            map.owner_of(6005),
            Some(1),
            "still the source's until it ends"
        );
        map.finish_migration();
        assert_eq!(map.owner_of(5999), Some(1));
        assert_eq!(map.owner_of(6000), Some(2));
        assert_eq!(map.owner_of(6010), Some(2));
        assert_eq!(map.owner_of(6011), Some(1));
        assert_eq!(map.ranges(1), vec![(5461, 5999), (6011, 10921)]);
        // Slots moved back join their neighbours again.
        map.start_migration(6000, 6010, 2, 1);
        map.finish_migration();
        assert_eq!(map.ranges(1), vec![(5461, 10921)]);
        map.kill(0);
        let new = map.promote(0);
        assert_eq!(map.ranges(new), vec![(0, 5460)]);
        assert_eq!(map.primaries(), vec![1, 2, new]);
    }

    #[test]
    fn a_node_redirects_what_it_does_not_serve_and_asks_for_what_moved() {
        let mut map = ClusterMap::new(2);
        let key = Bytes::from_static(b"foo");
        let keys = std::slice::from_ref(&key);
        let slot = redis_client::cluster::key_slot(&key);
        let owner = map.owner_of(slot).unwrap();
        let other = 1 - owner;
        assert!(map.route(owner, keys, false).is_none());
        let moved = map.route(other, keys, false);
        assert!(matches!(moved, Some(Value::Error(e)) if e.as_bytes().starts_with(b"MOVED")));
        map.start_migration(slot, slot, owner, other);
        let expect = if moved_already(&key) { "ASK" } else { "" };
        match map.route(owner, keys, false) {
            Some(Value::Error(e)) => assert!(e.as_bytes().starts_with(expect.as_bytes())),
            None => assert_eq!(expect, ""),
            other => panic!("{other:?}"),
        }
        // The target serves it only after ASKING.
        assert!(map.route(other, keys, true).is_none());
        assert!(map.route(other, keys, false).is_some());
    }
}
