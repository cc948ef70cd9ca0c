//! The cluster router: slot hashing, the slot map, where a command goes, how a multi-key
//! command is split and its replies merged, and what an error reply means. Sans-IO: no
//! sockets, no clock reads (the time is passed in); the blocking and async cluster clients
//! both drive it.

use crate::retry::RetryPolicy;
use redis_commands::{Cmd, Flags};
use resp_proto::{ErrorCode, ServerError, Value};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// Number of hash slots in a Redis Cluster (the cluster specification's `16384`).
pub const SLOTS: u16 = 16384;

/// The hash slot of `key`: CRC16 (XMODEM) of the key, or of its hash tag, modulo 16384.
///
/// The hash tag is the part between the first `{` and the first `}` after it, if that
/// part is not empty; keys with the same tag are in the same slot.
///
/// ```
/// use redis_client::cluster::key_slot;
/// assert_eq!(key_slot(b"foo"), 12182);
/// assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"{user1000}.followers"));
/// ```
pub fn key_slot(key: &[u8]) -> u16 {
    crc16(hash_part(key)) % SLOTS
}

/// The bytes of `key` that are hashed: its hash tag when it has a non-empty one.
fn hash_part(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{') {
        if let Some(len) = key[open + 1..].iter().position(|&b| b == b'}') {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
}

/// CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0), bit by bit: keys are short,
/// and the cluster specification gives this exact function.
fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in data {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// One primary, its replicas and the slots it serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shard {
    /// The primary's `host:port`.
    pub primary: String,
    /// The replicas' `host:port`, healthy ones only.
    pub replicas: Vec<String>,
    /// The slot ranges served, inclusive.
    pub ranges: Vec<(u16, u16)>,
}

/// Which node of a shard serves a read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadFrom {
    /// The primary (always for writes).
    #[default]
    Primary,
    /// A replica, chosen by the number given (any number: it is reduced modulo the
    /// replica count); the primary when the shard has none.
    Replica(usize),
}

/// The slot map: which shard serves each of the 16384 slots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotMap {
    shards: Vec<Shard>,
    /// Per slot, the index in `shards`, or `NONE`.
    owner: Vec<u16>,
    /// Per shard, whether it serves a slot (kept with `owner`).
    serving: Vec<bool>,
}

const NONE: u16 = u16::MAX;

/// A reply that does not describe a slot map.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed cluster map reply: {0}")]
pub struct MapError(pub String);

impl SlotMap {
    /// A map with no slots assigned.
    pub fn empty() -> SlotMap {
        SlotMap {
            shards: Vec::new(),
            owner: vec![NONE; usize::from(SLOTS)],
            serving: Vec::new(),
        }
    }

    /// Builds the map from shards.
    ///
    /// # Errors
    /// A slot range reversed or past the last slot, or a slot listed twice: no server
    /// sends either, and refusing them bounds the work to one step per slot whatever the
    /// reply's length (and the shards to one per slot).
    pub fn from_shards(shards: Vec<Shard>) -> Result<SlotMap, MapError> {
        let mut map = SlotMap::empty();
        let mut by_primary: HashMap<String, usize> = HashMap::new();
        // A shard with no slot serves nothing.
        for shard in shards.into_iter().filter(|s| !s.ranges.is_empty()) {
            // Two entries for one primary (CLUSTER SLOTS lists each range apart) are merged.
            let index = match by_primary.get(&shard.primary).copied() {
                Some(i) => {
                    let s = &mut map.shards[i];
                    s.ranges.extend(shard.ranges.iter().copied());
                    for r in &shard.replicas {
                        if !s.replicas.contains(r) {
                            s.replicas.push(r.clone());
                        }
                    }
                    i
                }
                None => {
                    by_primary.insert(shard.primary.clone(), map.shards.len());
                    map.shards.push(shard.clone());
                    map.shards.len() - 1
                }
            };
            for &(start, end) in &shard.ranges {
                if start > end || end >= SLOTS {
                    return Err(MapError(format!("slot range {start}-{end}")));
                }
                for slot in start..=end {
                    let owner = &mut map.owner[usize::from(slot)];
                    if *owner != NONE {
                        return Err(MapError(format!("slot {slot} listed twice")));
                    }
                    // Below `NONE`: every shard kept so far serves a slot of its own.
                    *owner = index as u16;
                }
            }
        }
        map.recount();
        Ok(map)
    }

    /// Recomputes which shards serve a slot.
    fn recount(&mut self) {
        self.serving = vec![false; self.shards.len()];
        for &o in &self.owner {
            if let Some(s) = self.serving.get_mut(usize::from(o)) {
                *s = true;
            }
        }
    }

    /// Parses a `CLUSTER SHARDS` reply (Redis 7). `seed_host` replaces an empty or `?`
    /// address: the node that answered did not know its own.
    pub fn parse_shards(reply: &Value, seed_host: &str) -> Result<SlotMap, MapError> {
        let items = array(reply, "CLUSTER SHARDS reply")?;
        let mut shards = Vec::with_capacity(items.len());
        for item in items {
            let fields = pairs(item)?;
            let mut ranges = Vec::new();
            let mut primary = None;
            let mut replicas = Vec::new();
            for (k, v) in fields {
                match k.as_slice() {
                    b"slots" => {
                        let bounds = array(v, "slots")?;
                        for pair in bounds.chunks(2) {
                            let [start, end] = pair else {
                                return Err(MapError("odd slot bound count".into()));
                            };
                            ranges.push((slot_number(start)?, slot_number(end)?));
                        }
                    }
                    b"nodes" => {
                        for node in array(v, "nodes")? {
                            let node = pairs(node)?;
                            let get =
                                |name: &[u8]| node.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
                            let host = get(b"endpoint")
                                .and_then(text)
                                .filter(|h| !h.is_empty() && h != "?")
                                .or_else(|| get(b"ip").and_then(text))
                                .filter(|h| !h.is_empty() && h != "?")
                                .unwrap_or_else(|| seed_host.to_owned());
                            let port = match get(b"port").or_else(|| get(b"tls-port")) {
                                Some(Value::Integer(p)) => {
                                    u16::try_from(*p).map_err(|_| MapError(format!("port {p}")))?
                                }
                                _ => return Err(MapError("node without a port".into())),
                            };
                            let role = get(b"role").and_then(text).unwrap_or_default();
                            let health = get(b"health").and_then(text).unwrap_or_default();
                            let addr = format!("{host}:{port}");
                            if role == "master" || role == "primary" {
                                // A failed primary stays listed beside the replica that
                                // took over from it: the healthy one serves.
                                let healthy = health == "online";
                                if !primary.as_ref().is_some_and(|(_, h)| *h || !healthy) {
                                    primary = Some((addr, healthy));
                                }
                            } else if (role == "replica" || role == "slave") && health == "online" {
                                // A role no server has names no node to read from.
                                replicas.push(addr);
                            }
                        }
                    }
                    _ => {}
                }
            }
            // A shard with no slots (a primary being added, or a failed one whose replica
            // took over) serves nothing and is left out.
            if let (Some((primary, _)), false) = (primary, ranges.is_empty()) {
                shards.push(Shard {
                    primary,
                    replicas,
                    ranges,
                });
            }
        }
        SlotMap::from_shards(shards)
    }

    /// Parses a `CLUSTER SLOTS` reply (the fallback for servers before Redis 7).
    pub fn parse_slots(reply: &Value, seed_host: &str) -> Result<SlotMap, MapError> {
        let entries = array(reply, "CLUSTER SLOTS reply")?;
        // Each entry is a range of its own: more than there are slots is no map.
        if entries.len() > usize::from(SLOTS) {
            return Err(MapError(format!("{} slot ranges", entries.len())));
        }
        let mut shards = Vec::new();
        for entry in entries {
            let parts = array(entry, "slot range")?;
            if parts.len() < 3 {
                return Err(MapError("slot range with no node".into()));
            }
            let start = slot_number(&parts[0])?;
            let end = slot_number(&parts[1])?;
            let mut nodes = Vec::new();
            for node in &parts[2..] {
                let n = array(node, "node")?;
                let host = n
                    .first()
                    .and_then(text)
                    .filter(|h| !h.is_empty() && h != "?")
                    .unwrap_or_else(|| seed_host.to_owned());
                let port = match n.get(1) {
                    Some(Value::Integer(p)) => {
                        u16::try_from(*p).map_err(|_| MapError(format!("port {p}")))?
                    }
                    _ => return Err(MapError("node without a port".into())),
                };
                nodes.push(format!("{host}:{port}"));
            }
            let primary = nodes.remove(0);
            shards.push(Shard {
                primary,
                replicas: nodes,
                ranges: vec![(start, end)],
            });
        }
        SlotMap::from_shards(shards)
    }

    /// The shards, in the order first seen.
    pub fn shards(&self) -> &[Shard] {
        &self.shards
    }

    /// The shard serving `slot`, if any.
    pub fn shard(&self, slot: u16) -> Option<&Shard> {
        let i = *self.owner.get(usize::from(slot))?;
        self.shards.get(usize::from(i))
    }

    /// The node to send a command on `slot` to.
    pub fn node(&self, slot: u16, from: ReadFrom) -> Option<&str> {
        let shard = self.shard(slot)?;
        match from {
            ReadFrom::Replica(n) if !shard.replicas.is_empty() => {
                Some(&shard.replicas[n % shard.replicas.len()])
            }
            _ => Some(&shard.primary),
        }
    }

    /// Every primary serving at least one slot.
    pub fn primaries(&self) -> Vec<&str> {
        self.shards
            .iter()
            .zip(&self.serving)
            .filter(|(_, &serving)| serving)
            .map(|(s, _)| s.primary.as_str())
            .collect()
    }

    /// Every node: primaries serving slots and their replicas.
    pub fn nodes(&self) -> Vec<&str> {
        let mut out = self.primaries();
        for (s, _) in self.shards.iter().zip(&self.serving).filter(|(_, &on)| on) {
            out.extend(s.replicas.iter().map(String::as_str));
        }
        out
    }

    /// True when every slot has an owner.
    pub fn is_complete(&self) -> bool {
        self.owner.iter().all(|&o| o != NONE)
    }

    /// Records a `MOVED`: `slot` is now served by the primary at `addr` (a shard of its
    /// own if `addr` is not yet a known primary; its replicas are learnt at the next
    /// refresh).
    pub fn moved(&mut self, slot: u16, addr: &str) {
        let index = match self.shards.iter().position(|s| s.primary == addr) {
            Some(i) => i,
            None => {
                // Redirections to ever new nodes would grow the map without bound, and
                // number its shards past what a slot's owner holds: the shards that serve
                // no slot any more go first.
                if self.shards.len() >= usize::from(SLOTS) {
                    self.drop_idle_shards();
                }
                self.shards.push(Shard {
                    primary: addr.to_owned(),
                    replicas: Vec::new(),
                    ranges: Vec::new(),
                });
                self.shards.len() - 1
            }
        };
        if let Some(o) = self.owner.get_mut(usize::from(slot)) {
            *o = index as u16;
        }
        self.recount();
    }

    /// Drops the shards that serve no slot, renumbering the others' slots.
    fn drop_idle_shards(&mut self) {
        let mut renumbered = vec![NONE; self.shards.len()];
        let mut kept = Vec::new();
        let shards = std::mem::take(&mut self.shards);
        for (i, (shard, &serving)) in shards.into_iter().zip(&self.serving).enumerate() {
            if serving {
                // Below `NONE`: each kept shard serves a slot of its own.
                renumbered[i] = kept.len() as u16;
                kept.push(shard);
            }
        }
        for o in &mut self.owner {
            if let Some(&n) = renumbered.get(usize::from(*o)) {
                *o = n;
            }
        }
        self.shards = kept;
        self.recount();
    }

    /// The first slot of every slot range served by the primary at `addr` now, to find
    /// the node that took over its keys (the SCAN of a node that went away).
    pub fn slots_of(&self, addr: &str) -> Vec<u16> {
        self.shards
            .iter()
            .filter(|s| s.primary == addr)
            .flat_map(|s| s.ranges.iter().map(|r| r.0))
            .collect()
    }
}

fn array<'v>(v: &'v Value, what: &str) -> Result<&'v [Value], MapError> {
    match v {
        Value::Array(a) | Value::Set(a) => Ok(a),
        other => Err(MapError(format!(
            "{what} is not an array: {}",
            describe(other)
        ))),
    }
}

/// A RESP3 map or a RESP2 flat array of name/value pairs.
fn pairs(v: &Value) -> Result<Vec<(Vec<u8>, &Value)>, MapError> {
    let name = |k: &Value| match k {
        Value::BulkString(b) | Value::SimpleString(b) => Ok(b.to_ascii_lowercase()),
        other => Err(MapError(format!("field name: {}", describe(other)))),
    };
    match v {
        Value::Map(m) => m.iter().map(|(k, v)| Ok((name(k)?, v))).collect(),
        Value::Array(a) if a.len() % 2 == 0 => {
            a.chunks(2).map(|kv| Ok((name(&kv[0])?, &kv[1]))).collect()
        }
        other => Err(MapError(format!("not a map: {}", describe(other)))),
    }
}

/// A value named for an error message: an integer by its value, anything else by its
/// kind (a reply may be as long as the protocol allows; an error need not copy it).
fn describe(v: &Value) -> String {
    match v {
        Value::Integer(n) => format!("integer {n}"),
        other => other.kind_name().to_owned(),
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) | Value::SimpleString(b) => {
            Some(String::from_utf8_lossy(b).into_owned())
        }
        _ => None,
    }
}

fn slot_number(v: &Value) -> Result<u16, MapError> {
    match v {
        Value::Integer(n) if (0..i64::from(SLOTS)).contains(n) => Ok(*n as u16),
        other => Err(MapError(format!("slot: {}", describe(other)))),
    }
}

/// A redirection in an error reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Redirect {
    /// `MOVED slot addr`: the slot lives at `addr` now; update the map.
    Moved {
        /// The slot.
        slot: u16,
        /// Its node, `host:port`.
        addr: String,
    },
    /// `ASK slot addr`: this one command goes to `addr`, preceded by `ASKING` (the slot is
    /// being migrated); the map is unchanged.
    Ask {
        /// The slot.
        slot: u16,
        /// The node to ask, `host:port`.
        addr: String,
    },
}

/// The redirection an error reply carries, if any. `from_host` stands in for an empty
/// host (`MOVED 3999 :6380`: the same host as the node that answered).
pub fn parse_redirect(err: &ServerError, from_host: &str) -> Option<Redirect> {
    let line = err.as_bytes();
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split_ascii_whitespace();
    let kind = words.next()?;
    let slot: u16 = words.next()?.parse().ok().filter(|s| *s < SLOTS)?;
    let addr = words.next()?;
    let (host, port) = addr.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = if host.is_empty() { from_host } else { host };
    let addr = format!("{host}:{port}");
    match kind {
        "MOVED" => Some(Redirect::Moved { slot, addr }),
        "ASK" => Some(Redirect::Ask { slot, addr }),
        _ => None,
    }
}

/// Where one command goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// The node serving this slot (all its keys are in it).
    Slot(u16),
    /// Any primary: the command has no declared keys.
    Any,
    /// Every primary, replies merged.
    AllPrimaries,
    /// Every node, replicas included, replies merged.
    AllNodes,
    /// Split into one command per slot; the parts are grouped per node when sent, and
    /// their replies merged back in the keys' order.
    Split(Vec<Part>),
}

/// One part of a split command: the command for one slot and which of the original keys
/// (by index) it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// The slot of every key of the part.
    pub slot: u16,
    /// The command for those keys alone.
    pub cmd: CmdBytes,
    /// The positions, among the original command's keys, of the part's keys.
    pub keys: Vec<usize>,
}

/// A command compared by its bytes (a [`Cmd`] has no equality of its own).
#[derive(Clone, Debug)]
pub struct CmdBytes(pub Cmd);

impl PartialEq for CmdBytes {
    fn eq(&self, other: &Self) -> bool {
        self.0.body() == other.0.body() && self.0.flags() == other.0.flags()
    }
}

impl Eq for CmdBytes {}

/// Why a command cannot be routed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteError {
    /// Its keys are in more than one slot and it cannot be split.
    CrossSlot {
        /// The command's name.
        command: String,
        /// The slots of its first two keys that differ.
        slots: (u16, u16),
    },
}

/// The command's facts: its own, or for a command built from raw arguments (which has
/// none), those the command table declares for its name, so fan-out follows the table
/// on the raw path too.
pub fn facts(cmd: &Cmd) -> Flags {
    if !cmd.name().is_empty() {
        return cmd.flags();
    }
    let mut args = cmd.args();
    let Some(first) = args.next() else {
        return cmd.flags();
    };
    let second = args.next();
    redis_commands::cmd::all()
        .find(|info| {
            let mut words = info.name.split(' ');
            let w0 = words.next().unwrap_or_default();
            let ok0 = w0.as_bytes().eq_ignore_ascii_case(first);
            match words.next() {
                None => ok0,
                Some(w1) => ok0 && second.is_some_and(|s| w1.as_bytes().eq_ignore_ascii_case(s)),
            }
        })
        .map_or(cmd.flags(), |info| info.flags)
}

/// Where `cmd` goes, from its declared keys and facts.
///
/// # Errors
/// [`RouteError::CrossSlot`] when its keys span slots and it is not one of the commands
/// that split (MGET, MSET, DEL, EXISTS, UNLINK, TOUCH).
pub fn route(cmd: &Cmd) -> Result<Route, RouteError> {
    let flags = facts(cmd);
    let mut keys = cmd.keys();
    let Some(first) = keys.next() else {
        return Ok(if flags.contains(Flags::ALL_NODES) {
            Route::AllNodes
        } else if flags.contains(Flags::ALL_PRIMARIES) {
            Route::AllPrimaries
        } else {
            Route::Any
        });
    };
    let slot = key_slot(first);
    let other = keys.map(key_slot).find(|&s| s != slot);
    match other {
        None => Ok(Route::Slot(slot)),
        Some(_) if flags.contains(Flags::SPLIT) => Ok(Route::Split(split(cmd))),
        Some(o) => Err(RouteError::CrossSlot {
            command: cmd.first_word(),
            slots: (slot, o),
        }),
    }
}

/// Splits a multi-key command into one command per slot: the arguments before the first
/// key are repeated in each, and the arguments from one key to the next go with it.
fn split(cmd: &Cmd) -> Vec<Part> {
    let body = cmd.body().as_ptr() as usize;
    let key_starts: Vec<usize> = cmd.keys().map(|k| k.as_ptr() as usize - body).collect();
    let args: Vec<&[u8]> = cmd.args().collect();
    let arg_starts: Vec<usize> = args.iter().map(|a| a.as_ptr() as usize - body).collect();
    // The argument index of each key (key ranges are argument payloads, so they match);
    // keys are declared in argument order, so each search starts after the last find.
    let mut next = 0;
    let key_args: Vec<usize> = key_starts
        .iter()
        .filter_map(|k| {
            let i = match arg_starts[next..].iter().position(|a| a == k) {
                Some(i) => next + i,
                None => arg_starts.iter().position(|a| a == k)?,
            };
            next = i + 1;
            Some(i)
        })
        .collect();
    let prefix = key_args.first().copied().unwrap_or(args.len());
    let mut by_slot: BTreeMap<u16, Vec<usize>> = BTreeMap::new();
    for (i, &a) in key_args.iter().enumerate() {
        by_slot.entry(key_slot(args[a])).or_default().push(i);
    }
    by_slot
        .into_iter()
        .map(|(slot, keys)| {
            let mut part = Cmd::from_args(&args[..prefix]).with_flags(cmd.flags());
            for &k in &keys {
                let a = key_args[k];
                let end = key_args.get(k + 1).copied().unwrap_or(args.len());
                part.key(args[a]);
                for extra in &args[a + 1..end] {
                    part.push_arg(extra);
                }
            }
            Part {
                slot,
                cmd: CmdBytes(part),
                keys,
            }
        })
        .collect()
}

/// Why replies cannot be merged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot merge cluster replies: {0}")]
pub struct MergeError(pub String);

/// Merges the replies of a split command's parts: error replies win (the first one);
/// with [`Flags::MERGE_SUM`] the integers are added; array replies (MGET) are put back
/// in the original keys' order, each part's holding one element per key of the part;
/// otherwise (MSET) the parts answered alike and the first reply stands for all.
///
/// # Errors
/// A part whose reply is not of the shape the others' are (an MGET part answered with an
/// integer, an MSET part with an array) or holds another number of elements than its
/// keys: handing the caller the others' replies would misplace values.
pub fn merge_split(
    flags: Flags,
    nkeys: usize,
    parts: Vec<(Vec<usize>, Value)>,
) -> Result<Value, MergeError> {
    if let Some((_, e)) = parts.iter().find(|(_, v)| matches!(v, Value::Error(_))) {
        return Ok(e.clone());
    }
    if flags.contains(Flags::MERGE_SUM) {
        return sum(parts.into_iter().map(|(_, v)| v));
    }
    if parts.iter().any(|(_, v)| matches!(v, Value::Array(_))) {
        let mut out = vec![Value::Nil; nkeys];
        for (keys, v) in parts {
            let Value::Array(items) = v else {
                return Err(MergeError(format!(
                    "an array for some parts, {} for another",
                    v.kind_name()
                )));
            };
            if items.len() != keys.len() {
                return Err(MergeError(format!(
                    "{} replies for {} keys",
                    items.len(),
                    keys.len()
                )));
            }
            for (k, item) in keys.into_iter().zip(items) {
                if let Some(slot) = out.get_mut(k) {
                    *slot = item;
                }
            }
        }
        return Ok(Value::Array(out));
    }
    let mut replies = parts.into_iter().map(|(_, v)| v);
    let first = replies
        .next()
        .ok_or_else(|| MergeError("no parts".into()))?;
    if let Some(other) = replies.find(|v| *v != first) {
        return Err(MergeError(format!(
            "parts answered differently ({} and {})",
            first.kind_name(),
            other.kind_name()
        )));
    }
    Ok(first)
}

/// Merges the replies of a command sent to several nodes: error replies win (the first
/// one); [`Flags::MERGE_SUM`] adds integers, [`Flags::MERGE_CONCAT`] concatenates
/// arrays, [`Flags::MERGE_AND`] combines arrays of 0/1 element by element; otherwise every
/// node answered alike (`OK`, `PONG`, a script's SHA1) and the first reply stands for all.
///
/// # Errors
/// A reply of another kind than the merge needs, or, when the first stands for all,
/// nodes that answered differently.
pub fn merge_fanout(flags: Flags, replies: Vec<Value>) -> Result<Value, MergeError> {
    if let Some(e) = replies.iter().find(|v| matches!(v, Value::Error(_))) {
        return Ok(e.clone());
    }
    if flags.contains(Flags::MERGE_SUM) {
        return sum(replies.into_iter());
    }
    if flags.contains(Flags::MERGE_CONCAT) {
        let mut out = Vec::new();
        for v in replies {
            match v {
                Value::Array(items) | Value::Set(items) => out.extend(items),
                other => return Err(MergeError(format!("not an array: {}", describe(&other)))),
            }
        }
        return Ok(Value::Array(out));
    }
    if flags.contains(Flags::MERGE_AND) {
        let mut out: Option<Vec<bool>> = None;
        for v in replies {
            let Value::Array(items) = v else {
                return Err(MergeError(format!("not an array: {}", describe(&v))));
            };
            let bits: Vec<bool> = items
                .iter()
                .map(|i| matches!(i, Value::Integer(1) | Value::Boolean(true)))
                .collect();
            out = Some(match out {
                None => bits,
                Some(acc) if acc.len() == bits.len() => {
                    acc.iter().zip(bits).map(|(a, b)| *a && b).collect()
                }
                Some(_) => return Err(MergeError("arrays of different lengths".into())),
            });
        }
        let out = out.unwrap_or_default();
        return Ok(Value::Array(
            out.into_iter()
                .map(|b| Value::Integer(i64::from(b)))
                .collect(),
        ));
    }
    let mut replies = replies.into_iter();
    let first = replies
        .next()
        .ok_or_else(|| MergeError("no node answered".into()))?;
    if let Some(other) = replies.find(|v| *v != first) {
        return Err(MergeError(format!(
            "nodes answered differently ({} and {})",
            first.kind_name(),
            other.kind_name()
        )));
    }
    Ok(first)
}

fn sum(values: impl Iterator<Item = Value>) -> Result<Value, MergeError> {
    let mut total: i64 = 0;
    for v in values {
        match v {
            Value::Integer(n) => total = total.saturating_add(n),
            other => return Err(MergeError(format!("not an integer: {}", describe(&other)))),
        }
    }
    Ok(Value::Integer(total))
}

/// What a failed attempt means for the cluster client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// `MOVED`: record the new owner, refresh the map soon, send again there at once.
    Moved {
        /// The slot.
        slot: u16,
        /// Its new node.
        addr: String,
    },
    /// `ASK`: send `ASKING` and the command to `addr`, once.
    Ask {
        /// The node to ask.
        addr: String,
    },
    /// `TRYAGAIN` (keys of a multi-key command mid-migration) or `CLUSTERDOWN` (the
    /// cluster is failing over): wait a backoff, then send again.
    Busy,
    /// The node could not be reached or the connection failed: refresh the map (the node
    /// may be gone), wait a backoff, send again if the command cannot have run or is safe
    /// to repeat.
    NodeLost,
    /// Anything else: the call fails with it.
    Final,
}

/// Reads a server error reply for redirections and cluster states.
pub fn classify_server_error(err: &ServerError, from_host: &str) -> Failure {
    match parse_redirect(err, from_host) {
        Some(Redirect::Moved { slot, addr }) => Failure::Moved { slot, addr },
        Some(Redirect::Ask { addr, .. }) => Failure::Ask { addr },
        None => {
            let code = err.code();
            if code == ErrorCode::TRYAGAIN || code == ErrorCode::CLUSTERDOWN {
                Failure::Busy
            } else {
                Failure::Final
            }
        }
    }
}

/// The bookkeeping of one call's attempts: redirections are followed at once, up to a
/// bound; busy clusters and lost nodes wait a backoff first, never past the call's one
/// deadline and never more than the policy's retries.
#[derive(Clone, Debug)]
pub struct Attempts {
    deadline: Option<Instant>,
    retries: u32,
    redirects: u32,
    max_retries: u32,
    max_redirects: u32,
    policy: RetryPolicy,
}

/// What to do after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Send again now (a redirection).
    Now,
    /// Wait this long, then send again.
    After(Duration),
    /// Give up: the call fails.
    GiveUp,
}

impl Attempts {
    /// A call bounded by `deadline` under `policy`, following at most `max_redirects`
    /// redirections.
    pub fn new(policy: RetryPolicy, deadline: Option<Instant>, max_redirects: u32) -> Attempts {
        Attempts {
            deadline,
            retries: 0,
            redirects: 0,
            max_retries: policy.max_retries,
            max_redirects,
            policy,
        }
    }

    /// The call's deadline.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Attempts made after the first.
    pub fn retries(&self) -> u32 {
        self.retries + self.redirects
    }

    /// The next step after `failure`, at `now`. `may_repeat` says whether the command can
    /// be sent again after a lost node (it cannot have run, or repeating it is safe).
    pub fn next(&mut self, failure: &Failure, may_repeat: bool, now: Instant) -> Next {
        if self.deadline.is_some_and(|d| now >= d) {
            return Next::GiveUp;
        }
        match failure {
            Failure::Moved { .. } | Failure::Ask { .. } => {
                self.redirects += 1;
                if self.redirects > self.max_redirects {
                    Next::GiveUp
                } else {
                    Next::Now
                }
            }
            Failure::Busy | Failure::NodeLost => {
                if matches!(failure, Failure::NodeLost) && !may_repeat {
                    return Next::GiveUp;
                }
                self.retries += 1;
                if self.retries > self.max_retries {
                    return Next::GiveUp;
                }
                let wait = self.policy.backoff(self.retries - 1);
                if self.deadline.is_some_and(|d| now + wait >= d) {
                    return Next::GiveUp;
                }
                Next::After(wait)
            }
            Failure::Final => Next::GiveUp,
        }
    }
}

/// Whether the slot map is due for its periodic refresh, which learns the topology
/// changes that raise no error (a replica added or promoted by a manual failover, a node
/// gone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refresh {
    /// Fetch the map now.
    Now,
    /// Not before this moment.
    At(Instant),
    /// Never: periodic refresh is off.
    Off,
}

/// When the next periodic refresh is due, at `now`, given the `interval` between refreshes
/// (`None` or zero: off) and when the map was `last` fetched, for any reason (a refresh
/// after a lost node counts: the period runs from the latest one).
pub fn refresh_due(interval: Option<Duration>, last: Option<Instant>, now: Instant) -> Refresh {
    let Some(interval) = interval.filter(|i| !i.is_zero()) else {
        return Refresh::Off;
    };
    let Some(last) = last else {
        return Refresh::Now;
    };
    match last.checked_add(interval) {
        Some(due) if due > now => Refresh::At(due),
        Some(_) => Refresh::Now,
        // Beyond the clock's range: never due.
        None => Refresh::Off,
    }
}

/// The host part of `host:port`.
pub fn host_of(addr: &str) -> &str {
    addr.rsplit_once(':').map_or(addr, |(h, _)| h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use redis_commands::cmd;

    #[test]
    fn slots_match_known_values() {
        // Values from the cluster specification and from CLUSTER KEYSLOT.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"hello"), 866);
        assert_eq!(key_slot(b""), 0);
    }

    #[test]
    fn hash_tags() {
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(
            key_slot(b"foo{}{bar}"),
            key_slot(b"foo{}{bar}"),
            "empty tag: whole key"
        );
        assert_ne!(key_slot(b"foo{}{bar}"), key_slot(b"bar"));
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
        assert_eq!(key_slot(b"{a"), key_slot(b"{a"), "no closing brace");
        assert_ne!(key_slot(b"{a"), key_slot(b"a"));
    }

    fn bulk(s: &str) -> Value {
        Value::BulkString(Bytes::copy_from_slice(s.as_bytes()))
    }

    fn slots_reply() -> Value {
        let node =
            |port: i64| Value::Array(vec![bulk("127.0.0.1"), Value::Integer(port), bulk("id")]);
        Value::Array(vec![
            Value::Array(vec![
                Value::Integer(0),
                Value::Integer(5460),
                node(7000),
                node(7003),
            ]),
            Value::Array(vec![
                Value::Integer(5461),
                Value::Integer(10922),
                node(7001),
            ]),
            Value::Array(vec![
                Value::Integer(10923),
                Value::Integer(16383),
                Value::Array(vec![bulk(""), Value::Integer(7002)]),
            ]),
        ])
    }

    #[test]
    fn parses_cluster_slots() {
        let map = SlotMap::parse_slots(&slots_reply(), "seed").unwrap();
        assert!(map.is_complete());
        assert_eq!(map.node(0, ReadFrom::Primary), Some("127.0.0.1:7000"));
        assert_eq!(map.node(0, ReadFrom::Replica(5)), Some("127.0.0.1:7003"));
        assert_eq!(
            map.node(5461, ReadFrom::Replica(0)),
            Some("127.0.0.1:7001"),
            "no replica: primary"
        );
        assert_eq!(
            map.node(16383, ReadFrom::Primary),
            Some("seed:7002"),
            "empty host"
        );
        assert_eq!(map.primaries().len(), 3);
        assert_eq!(map.nodes().len(), 4);
    }

    #[test]
    fn parses_cluster_shards_resp2_and_resp3() {
        let node = |port: i64, role: &str, health: &str| {
            vec![
                bulk("id"),
                bulk("x"),
                bulk("port"),
                Value::Integer(port),
                bulk("ip"),
                bulk("127.0.0.1"),
                bulk("endpoint"),
                bulk("127.0.0.1"),
                bulk("role"),
                bulk(role),
                bulk("health"),
                bulk(health),
            ]
        };
        let shard = |lo: i64, hi: i64, p: i64| {
            vec![
                bulk("slots"),
                Value::Array(vec![Value::Integer(lo), Value::Integer(hi)]),
                bulk("nodes"),
                Value::Array(vec![
                    Value::Array(node(p + 9, "master", "fail")),
                    Value::Array(node(p, "master", "online")),
                    Value::Array(node(p + 3, "replica", "online")),
                    Value::Array(node(p + 6, "replica", "fail")),
                ]),
            ]
        };
        let resp2 = Value::Array(vec![
            Value::Array(shard(0, 8000, 7000)),
            Value::Array(shard(8001, 16383, 7001)),
            // A primary that lost its slots to its replica is left out.
            Value::Array(vec![
                bulk("slots"),
                Value::Array(vec![]),
                bulk("nodes"),
                Value::Array(vec![Value::Array(node(7009, "master", "fail"))]),
            ]),
        ]);
        let map = SlotMap::parse_shards(&resp2, "seed").unwrap();
        assert!(map.is_complete());
        assert_eq!(map.node(8001, ReadFrom::Primary), Some("127.0.0.1:7001"));
        assert_eq!(
            map.shard(0).unwrap().replicas,
            vec!["127.0.0.1:7003".to_owned()],
            "failed replica left out"
        );
        assert_eq!(map.primaries(), vec!["127.0.0.1:7000", "127.0.0.1:7001"]);
        let to_map = |v: Value| match v {
            Value::Array(a) => Value::Map(
                a.chunks(2)
                    .map(|kv| (kv[0].clone(), kv[1].clone()))
                    .collect(),
            ),
            v => v,
        };
        let resp3 = Value::Array(vec![to_map(Value::Array(
            shard(0, 16383, 7000)
                .into_iter()
                .map(|v| match v {
                    Value::Array(nodes) if nodes.iter().all(|n| matches!(n, Value::Array(_))) => {
                        Value::Array(nodes.into_iter().map(to_map).collect())
                    }
                    v => v,
                })
                .collect(),
        ))]);
        let map3 = SlotMap::parse_shards(&resp3, "seed").unwrap();
        assert_eq!(map3.node(42, ReadFrom::Replica(0)), Some("127.0.0.1:7003"));
    }

    #[test]
    fn malformed_maps_are_errors() {
        assert!(SlotMap::parse_slots(&Value::Integer(3), "h").is_err());
        let bad = Value::Array(vec![Value::Array(vec![
            Value::Integer(0),
            Value::Integer(99999),
            Value::Array(vec![bulk("h"), Value::Integer(1)]),
        ])]);
        assert!(SlotMap::parse_slots(&bad, "h").is_err());
        let no_port = Value::Array(vec![Value::Array(vec![
            Value::Integer(0),
            Value::Integer(1),
            Value::Array(vec![bulk("h")]),
        ])]);
        assert!(SlotMap::parse_slots(&no_port, "h").is_err());
        assert!(SlotMap::parse_shards(&Value::Array(vec![Value::Integer(1)]), "h").is_err());
        let entry = |host: &str, lo: i64, hi: i64| {
            Value::Array(vec![
                Value::Integer(lo),
                Value::Integer(hi),
                Value::Array(vec![bulk(host), Value::Integer(1)]),
            ])
        };
        let twice = Value::Array(vec![entry("a", 0, 10), entry("b", 10, 16383)]);
        assert!(
            SlotMap::parse_slots(&twice, "h").is_err(),
            "slot 10 listed twice"
        );
        let many = Value::Array(
            (0..=16384)
                .map(|i| entry("a", i % 16384, i % 16384))
                .collect(),
        );
        assert!(
            SlotMap::parse_slots(&many, "h").is_err(),
            "more ranges than slots"
        );
    }

    #[test]
    fn moved_updates_one_slot() {
        let mut map = SlotMap::parse_slots(&slots_reply(), "seed").unwrap();
        map.moved(100, "127.0.0.1:7001");
        assert_eq!(map.node(100, ReadFrom::Primary), Some("127.0.0.1:7001"));
        assert_eq!(map.node(101, ReadFrom::Primary), Some("127.0.0.1:7000"));
        map.moved(5, "10.0.0.9:7100");
        assert_eq!(map.node(5, ReadFrom::Primary), Some("10.0.0.9:7100"));
    }

    #[test]
    fn redirections_to_ever_new_nodes_keep_the_map_bounded() {
        // A primary per slot: the most shards a fetched map holds.
        let one_each = (0..SLOTS).map(|slot| Shard {
            primary: format!("p{slot}:1"),
            replicas: Vec::new(),
            ranges: vec![(slot, slot)],
        });
        let mut map = SlotMap::from_shards(one_each.collect()).unwrap();
        for i in 0..120u16 {
            map.moved(i % 100, &format!("new{i}:1"));
        }
        assert!(map.shards().len() <= usize::from(SLOTS) + 1);
        assert_eq!(map.node(99, ReadFrom::Primary), Some("new99:1"));
        assert_eq!(map.node(0, ReadFrom::Primary), Some("new100:1"));
        assert_eq!(map.node(100, ReadFrom::Primary), Some("p100:1"));
        assert_eq!(map.node(16383, ReadFrom::Primary), Some("p16383:1"));
        assert!(map.is_complete());
        assert_eq!(map.primaries().len(), usize::from(SLOTS));
    }

    #[test]
    fn redirections_parse() {
        let moved = ServerError::new("MOVED 3999 127.0.0.1:6381");
        assert_eq!(
            parse_redirect(&moved, "h"),
            Some(Redirect::Moved {
                slot: 3999,
                addr: "127.0.0.1:6381".into()
            })
        );
        let ask = ServerError::new("ASK 3999 :6381");
        assert_eq!(
            parse_redirect(&ask, "10.1.1.1"),
            Some(Redirect::Ask {
                slot: 3999,
                addr: "10.1.1.1:6381".into()
            })
        );
        let v6 = ServerError::new("MOVED 1 ::1:7000");
        assert_eq!(
            parse_redirect(&v6, "h"),
            Some(Redirect::Moved {
                slot: 1,
                addr: "::1:7000".into()
            })
        );
        for junk in [
            "MOVED",
            "MOVED 99999 h:1",
            "MOVED x h:1",
            "MOVED 1 nohost",
            "ERR 1 h:1",
            "MOVED 1 h:99999",
        ] {
            assert_eq!(parse_redirect(&ServerError::new(junk), "h"), None, "{junk}");
        }
        assert_eq!(
            classify_server_error(&ServerError::new("TRYAGAIN Multiple keys"), "h"),
            Failure::Busy
        );
        assert_eq!(
            classify_server_error(&ServerError::new("CLUSTERDOWN The cluster is down"), "h"),
            Failure::Busy
        );
        assert_eq!(
            classify_server_error(&ServerError::new("WRONGTYPE x"), "h"),
            Failure::Final
        );
    }

    #[test]
    fn routes_by_declared_keys() {
        assert_eq!(route(&cmd::strings::get("foo").cmd), Ok(Route::Slot(12182)));
        assert_eq!(route(&cmd::keys::randomkey().cmd), Ok(Route::Any));
        assert_eq!(route(&cmd::server::dbsize().cmd), Ok(Route::AllPrimaries));
        assert_eq!(
            route(&cmd::server::flushall(None).cmd),
            Ok(Route::AllPrimaries)
        );
        assert_eq!(
            route(&cmd::server::config_set("a", "b").cmd),
            Ok(Route::AllNodes)
        );
        assert_eq!(
            route(&cmd::strings::mget(["{a}1", "{a}2"]).cmd),
            Ok(Route::Slot(key_slot(b"a")))
        );
        let err = route(&cmd::sets::sunion(["foo", "bar"]).cmd).unwrap_err();
        assert_eq!(
            err,
            RouteError::CrossSlot {
                command: "SUNION".into(),
                slots: (12182, 5061)
            }
        );
        // The raw path takes its facts from the table by name.
        assert_eq!(route(&Cmd::from_args(("dbsize",))), Ok(Route::AllPrimaries));
        assert_eq!(
            route(&Cmd::from_args(("SCRIPT", "flush"))),
            Ok(Route::AllPrimaries)
        );
        assert_eq!(route(&Cmd::from_args(("SCRIPT", "KILL"))), Ok(Route::Any));
    }

    #[test]
    fn splits_per_slot_with_following_arguments() {
        let c = cmd::strings::mset([("foo", "1"), ("bar", "2"), ("{foo}x", "3")]).cmd;
        let Ok(Route::Split(parts)) = route(&c) else {
            panic!("not split")
        };
        assert_eq!(parts.len(), 2);
        let bar = parts.iter().find(|p| p.slot == 5061).unwrap();
        assert_eq!(bar.keys, vec![1]);
        assert_eq!(
            bar.cmd.0.args().collect::<Vec<_>>(),
            [&b"MSET"[..], b"bar", b"2"]
        );
        let foo = parts.iter().find(|p| p.slot == 12182).unwrap();
        assert_eq!(foo.keys, vec![0, 2]);
        assert_eq!(
            foo.cmd.0.args().collect::<Vec<_>>(),
            [&b"MSET"[..], b"foo", b"1", b"{foo}x", b"3"]
        );
        assert_eq!(
            foo.cmd.0.keys().collect::<Vec<_>>(),
            [&b"foo"[..], b"{foo}x"]
        );
        assert_eq!(route(&foo.cmd.0), Ok(Route::Slot(12182)));
    }

    #[test]
    fn merges_split_replies() {
        let mget = cmd::strings::mget(["a", "b", "c"]).cmd;
        let flags = mget.flags();
        let merged = merge_split(
            flags,
            3,
            vec![
                (vec![1], Value::Array(vec![bulk("B")])),
                (vec![0, 2], Value::Array(vec![bulk("A"), Value::Nil])),
            ],
        )
        .unwrap();
        assert_eq!(merged, Value::Array(vec![bulk("A"), bulk("B"), Value::Nil]));
        let del = cmd::keys::del(["a", "b"]).cmd.flags();
        assert_eq!(
            merge_split(
                del,
                2,
                vec![(vec![0], Value::Integer(1)), (vec![1], Value::Integer(0))]
            ),
            Ok(Value::Integer(1))
        );
        let err = Value::Error(ServerError::new("ERR no"));
        assert_eq!(
            merge_split(
                del,
                2,
                vec![(vec![0], Value::Integer(1)), (vec![1], err.clone())]
            ),
            Ok(err)
        );
        assert!(merge_split(flags, 2, vec![(vec![0, 1], Value::Array(vec![bulk("x")]))]).is_err());
        // A part of another shape than the others' is no reply to merge.
        for odd in [
            Value::Integer(7),
            Value::Nil,
            Value::SimpleString("OK".into()),
        ] {
            let parts = vec![
                (vec![1], Value::Array(vec![bulk("B")])),
                (vec![0], odd.clone()),
            ];
            assert!(merge_split(flags, 2, parts).is_err(), "{odd:?}");
        }
        let mset = cmd::strings::mset([("a", "1")]).cmd.flags();
        let ok = Value::SimpleString("OK".into());
        assert_eq!(
            merge_split(mset, 2, vec![(vec![0], ok.clone()), (vec![1], ok.clone())]),
            Ok(ok.clone())
        );
        assert!(merge_split(mset, 2, vec![(vec![0], ok), (vec![1], Value::Integer(1))]).is_err());
    }

    #[test]
    fn merges_fanout_replies() {
        let ok = Value::SimpleString("OK".into());
        assert_eq!(
            merge_fanout(Flags::NONE, vec![ok.clone(), ok.clone()]),
            Ok(ok.clone())
        );
        assert_eq!(
            merge_fanout(Flags::MERGE_SUM, vec![Value::Integer(2), Value::Integer(3)]),
            Ok(Value::Integer(5))
        );
        assert_eq!(
            merge_fanout(
                Flags::MERGE_CONCAT,
                vec![Value::Array(vec![bulk("a")]), Value::Array(vec![bulk("b")])]
            ),
            Ok(Value::Array(vec![bulk("a"), bulk("b")]))
        );
        let ints = |v: &[i64]| Value::Array(v.iter().map(|&i| Value::Integer(i)).collect());
        assert_eq!(
            merge_fanout(Flags::MERGE_AND, vec![ints(&[1, 1, 0]), ints(&[1, 0, 0])]),
            Ok(ints(&[1, 0, 0]))
        );
        assert!(merge_fanout(Flags::MERGE_SUM, vec![bulk("x")]).is_err());
        assert!(merge_fanout(Flags::NONE, vec![ok.clone(), Value::Integer(1)]).is_err());
        assert!(merge_fanout(Flags::NONE, vec![bulk("sha1"), bulk("sha2")]).is_err());
    }

    #[test]
    fn periodic_refresh_runs_from_the_latest_fetch() {
        let t0 = Instant::now();
        let every = Some(Duration::from_secs(30));
        assert_eq!(refresh_due(every, None, t0), Refresh::Now, "never fetched");
        assert_eq!(
            refresh_due(every, Some(t0), t0 + Duration::from_secs(10)),
            Refresh::At(t0 + Duration::from_secs(30))
        );
        assert_eq!(
            refresh_due(every, Some(t0), t0 + Duration::from_secs(30)),
            Refresh::Now
        );
        assert_eq!(refresh_due(None, Some(t0), t0), Refresh::Off);
        assert_eq!(
            refresh_due(Some(Duration::ZERO), None, t0),
            Refresh::Off,
            "zero: off"
        );
        assert_eq!(
            refresh_due(Some(Duration::MAX), Some(t0), t0),
            Refresh::Off,
            "an interval past the clock's range never comes"
        );
    }

    #[test]
    fn attempts_follow_redirections_and_bound_retries() {
        let t0 = Instant::now();
        let policy = RetryPolicy::default()
            .with_max_retries(2)
            .with_backoff(Duration::from_millis(10), Duration::from_millis(10));
        let mut a = Attempts::new(policy, Some(t0 + Duration::from_secs(1)), 2);
        let moved = Failure::Moved {
            slot: 1,
            addr: "h:1".into(),
        };
        assert_eq!(a.next(&moved, false, t0), Next::Now);
        assert_eq!(
            a.next(&Failure::Ask { addr: "h:1".into() }, false, t0),
            Next::Now
        );
        assert_eq!(
            a.next(&moved, false, t0),
            Next::GiveUp,
            "redirections bounded"
        );
        let mut a = Attempts::new(policy, Some(t0 + Duration::from_secs(1)), 2);
        assert!(matches!(a.next(&Failure::Busy, false, t0), Next::After(_)));
        assert_eq!(
            a.next(&Failure::NodeLost, false, t0),
            Next::GiveUp,
            "a write that may have run"
        );
        assert!(matches!(
            a.next(&Failure::NodeLost, true, t0),
            Next::After(_)
        ));
        assert_eq!(
            a.next(&Failure::Busy, true, t0),
            Next::GiveUp,
            "retries bounded"
        );
        let mut a = Attempts::new(policy, Some(t0 + Duration::from_millis(5)), 2);
        assert_eq!(
            a.next(&Failure::Busy, true, t0 + Duration::from_millis(6)),
            Next::GiveUp,
            "past the deadline"
        );
        assert_eq!(a.next(&Failure::Final, true, t0), Next::GiveUp);
    }
}
