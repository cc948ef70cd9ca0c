//! The cache's memory: entries bounded in number and bytes, least recently used first
//! out, a time-to-live ceiling, and the bookkeeping that keeps a reply that raced its
//! invalidation out of the cache. Sans-I/O: no clock, no lock; the time is passed in.
//!
//! The bytes counted against the limit are the bytes held, as the allocator sees them:
//! each entry's one buffer (its command and every payload of its value) and the headers
//! around it, rounded as the system allocator rounds requests ([`alloc_cost`]), plus the
//! index tables at their current capacity. So the budget is what the process spends, and
//! the tables are kept small: an entry is a slot of a few words in one `Vec`, found
//! through two maps from 64-bit hashes to slot numbers (of its command, and of its key,
//! whose entries are chained through their slots), with no allocation of its own beyond
//! its buffer.

use bytes::Bytes;
use resp_proto::Value;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::time::{Duration, Instant};

/// No slot: the end of a list.
const NIL: u32 = u32::MAX;

/// Size of the header the `bytes` crate allocates when a buffer is first shared (its
/// `Shared`: the buffer's pointer, capacity and a reference count).
const SHARED_HEADER: usize = 3 * std::mem::size_of::<usize>();

/// Requests from this size up are mapped in whole pages by glibc's malloc (its default
/// `M_MMAP_THRESHOLD`).
const MMAP_FROM: usize = 128 << 10;

/// How much memory a request for `n` bytes takes: glibc's malloc (the system allocator on
/// Linux) adds an 8-byte header and rounds up to 16 bytes, at least 32; a request past
/// its mmap threshold takes whole 4 KiB pages. Other allocators round in ways of their
/// own, by similar amounts.
pub(crate) fn alloc_cost(n: usize) -> usize {
    match n {
        0 => 0,
        n if n >= MMAP_FROM => (n + 16 + 4095) & !4095,
        n => ((n + 8 + 15) & !15).max(32),
    }
}

/// How much may be held.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub max_entries: usize,
    pub max_bytes: usize,
    pub ttl: Option<Duration>,
}

/// What the store counted since it was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    pub hits: u64,
    pub misses: u64,
    pub stored: u64,
    pub invalidations: u64,
    pub flushes: u64,
    pub evictions: u64,
    pub expired: u64,
    pub discarded: u64,
}

/// What became of a reply offered with [`Store::complete`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Stored,
    /// Its key was invalidated (or the cache cleared) while it was in flight.
    Raced,
    /// Larger than the byte limit allows, or an error reply.
    Refused,
}

/// A read registered with [`Store::begin`]: the point in the store's history it started
/// at, and the owner its reply would be stored under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Begun {
    seq: u64,
    owner: u64,
}

#[derive(Debug)]
struct Entry {
    /// The command's encoded arguments: a view of the entry's one buffer, which the
    /// value's payloads view too.
    cmd: Bytes,
    value: Value,
    /// The hash of the key it is about, and its neighbours among the entries whose key has
    /// that hash.
    key_hash: u64,
    key_prev: u32,
    key_next: u32,
    /// The tracking registration of the connection it was read on: the server reports
    /// changes to the key only while that registration lasts.
    owner: u64,
    /// Bytes its buffer, headers and value take (not its slot, counted with the tables).
    size: usize,
    expires: Option<Instant>,
    /// Neighbours in recency order.
    prev: u32,
    next: u32,
}

/// Reads in flight for one key, and the last invalidation of that key while any was.
#[derive(Debug)]
struct Pending {
    readers: usize,
    invalidated_at: u64,
}

/// A map keyed by hashes already made with a random key: no hashing again.
type ByHash<V> = HashMap<u64, V, BuildHasherDefault<Prehashed>>;

/// Passes a `u64` key through as its own hash.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed here; fold anything else in anyway.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Store {
    limits: Limits,
    /// Hashes commands and keys; random per store, so chosen keys cannot make entries
    /// collide on purpose. Two commands (or keys) with one hash share a place: the later
    /// entry replaces the earlier, and an invalidation drops both keys' entries, so a
    /// collision costs a miss, never a stale read.
    hasher: RandomState,
    slots: Vec<Option<Entry>>,
    free: Vec<u32>,
    /// Most recently used.
    head: u32,
    /// Least recently used: evicted first.
    tail: u32,
    /// The slot of each command, by its hash.
    by_cmd: ByHash<u32>,
    /// The first of the entries about each key, by the key's hash.
    by_key: ByHash<u32>,
    /// Bytes the entries take ([`Entry::size`]), without the tables.
    held: usize,
    /// Advances at every invalidation and clear; a read that began before an
    /// invalidation of its key (or a clear) is not stored.
    seq: u64,
    cleared_at: u64,
    /// Reads in flight, by their key's hash.
    pending: ByHash<Pending>,
    pub counters: Counters,
}

impl Store {
    pub(crate) fn new(limits: Limits) -> Store {
        Store {
            limits,
            hasher: RandomState::new(),
            slots: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            by_cmd: ByHash::default(),
            by_key: ByHash::default(),
            held: 0,
            seq: 0,
            cleared_at: 0,
            pending: ByHash::default(),
            counters: Counters::default(),
        }
    }

    /// Entries held.
    pub(crate) fn len(&self) -> usize {
        self.by_cmd.len()
    }

    /// Bytes held, as counted against the limit: the entries and the tables.
    pub(crate) fn bytes(&self) -> usize {
        self.held + self.tables()
    }

    /// Bytes the tables take at their current capacity.
    fn tables(&self) -> usize {
        fn map<V>(capacity: usize) -> usize {
            if capacity == 0 {
                return 0;
            }
            // The buckets behind a capacity (hashbrown keeps them at most 7/8 full), each
            // a key, a value and a control byte, and a group of control bytes more.
            let buckets = if capacity < 8 {
                capacity + 1
            } else {
                (capacity * 8 / 7).next_power_of_two()
            };
            alloc_cost(buckets * (std::mem::size_of::<(u64, V)>() + 1) + 16)
        }
        alloc_cost(self.slots.capacity() * std::mem::size_of::<Option<Entry>>())
            + alloc_cost(self.free.capacity() * std::mem::size_of::<u32>())
            + map::<u32>(self.by_cmd.capacity())
            + map::<u32>(self.by_key.capacity())
            + map::<Pending>(self.pending.capacity())
    }

    fn hash(&self, bytes: &[u8]) -> u64 {
        self.hasher.hash_one(bytes)
    }

    /// The reply stored for the command whose encoded arguments are `cmd`, unless it
    /// outlived the time-to-live ceiling at `now`. Counts a hit or a miss.
    pub(crate) fn get(&mut self, cmd: &[u8], now: Instant) -> Option<Value> {
        let found = self
            .by_cmd
            .get(&self.hash(cmd))
            .copied()
            .filter(|&i| self.slot(i).cmd[..] == *cmd);
        let Some(i) = found else {
            self.counters.misses += 1;
            return None;
        };
        let entry = self.slot(i);
        if entry.expires.is_some_and(|e| now >= e) {
            self.remove(i);
            self.counters.expired += 1;
            self.counters.misses += 1;
            return None;
        }
        let value = entry.value.clone();
        self.unlink(i);
        self.push_front(i);
        self.counters.hits += 1;
        Some(value)
    }

    /// Registers a read of `key` about to be sent on a connection whose tracking
    /// registration is `owner`: an invalidation of the key, or a clear, from now until
    /// [`Store::complete`] keeps its reply out.
    pub(crate) fn begin(&mut self, key: &[u8], owner: u64) -> Begun {
        let h = self.hash(key);
        self.pending
            .entry(h)
            .and_modify(|p| p.readers += 1)
            .or_insert(Pending {
                readers: 1,
                invalidated_at: 0,
            });
        Begun {
            seq: self.seq,
            owner,
        }
    }

    /// Ends a read begun at `begun`: stores `value` as the reply to `cmd` (about `key`)
    /// unless the key was invalidated or the cache cleared meanwhile. `None` abandons the
    /// read (it failed).
    pub(crate) fn complete(
        &mut self,
        key: &[u8],
        cmd: &[u8],
        begun: Begun,
        value: Option<&Value>,
        now: Instant,
    ) -> Outcome {
        let key_hash = self.hash(key);
        let mut raced = begun.seq < self.cleared_at;
        if let Some(p) = self.pending.get_mut(&key_hash) {
            raced |= p.invalidated_at > begun.seq;
            p.readers -= 1;
            if p.readers == 0 {
                self.pending.remove(&key_hash);
            }
        }
        let Some(value) = value else {
            return Outcome::Refused;
        };
        if raced {
            self.counters.discarded += 1;
            return Outcome::Raced;
        }
        if matches!(value, Value::Error(_)) {
            return Outcome::Refused;
        }
        self.insert(key_hash, cmd, value, begun.owner, now)
    }

    /// The tracking registration `owner` ended: the server no longer reports changes to
    /// what was read through it, so its entries go.
    pub(crate) fn forget(&mut self, owner: u64) {
        for i in 0..self.slots.len() as u32 {
            if self.slots[i as usize]
                .as_ref()
                .is_some_and(|e| e.owner == owner)
            {
                self.remove(i);
                self.counters.invalidations += 1;
            }
        }
    }

    fn insert(
        &mut self,
        key_hash: u64,
        cmd: &[u8],
        value: &Value,
        owner: u64,
        now: Instant,
    ) -> Outcome {
        let (cmd, value, size) = own(cmd, value);
        // Evicting everything would not make room: refused before anything is evicted.
        if size + self.tables() > self.limits.max_bytes || self.limits.max_entries == 0 {
            return Outcome::Refused;
        }
        let cmd_hash = self.hash(&cmd);
        if let Some(&old) = self.by_cmd.get(&cmd_hash) {
            self.remove(old);
        }
        while self.len() >= self.limits.max_entries || self.bytes() + size > self.limits.max_bytes {
            if self.tail == NIL {
                return Outcome::Refused;
            }
            self.evict_tail();
        }
        let entry = Entry {
            cmd,
            value,
            key_hash,
            key_prev: NIL,
            key_next: NIL,
            owner,
            size,
            expires: self.limits.ttl.map(|t| now + t),
            prev: NIL,
            next: NIL,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(entry);
                i
            }
            None => {
                if self.slots.len() == self.slots.capacity() {
                    // Grown by an eighth, not doubled: the slack the budget counts stays
                    // small, at an amortized copy of eight entries per entry added.
                    self.slots.reserve_exact((self.slots.len() / 8).max(16));
                }
                self.slots.push(Some(entry));
                (self.slots.len() - 1) as u32
            }
        };
        self.push_front(i);
        self.by_cmd.insert(cmd_hash, i);
        // First in its key's chain.
        if let Some(first) = self.by_key.insert(key_hash, i) {
            self.slot_mut(i).key_next = first;
            self.slot_mut(first).key_prev = i;
        }
        self.held += size;
        // A table that grew for this entry may have taken the store past the limit.
        while self.bytes() > self.limits.max_bytes && self.tail != i {
            self.evict_tail();
        }
        if self.bytes() > self.limits.max_bytes {
            self.remove(i);
            return Outcome::Refused;
        }
        self.counters.stored += 1;
        Outcome::Stored
    }

    fn evict_tail(&mut self) {
        self.remove(self.tail);
        self.counters.evictions += 1;
    }

    /// The server (or a write of this client) says `key` changed: drops its entries and
    /// keeps out the replies of reads of it in flight.
    pub(crate) fn invalidate(&mut self, key: &[u8]) {
        self.seq += 1;
        let h = self.hash(key);
        if let Some(p) = self.pending.get_mut(&h) {
            p.invalidated_at = self.seq;
        }
        while let Some(&i) = self.by_key.get(&h) {
            self.remove(i);
            self.counters.invalidations += 1;
        }
    }

    /// Drops everything, the tables' memory too, and keeps out the replies of every read
    /// in flight (a flush, a lost or replaced invalidation connection).
    pub(crate) fn clear(&mut self) {
        self.seq += 1;
        self.cleared_at = self.seq;
        self.slots = Vec::new();
        self.free = Vec::new();
        self.by_cmd = ByHash::default();
        self.by_key = ByHash::default();
        self.head = NIL;
        self.tail = NIL;
        self.held = 0;
        self.counters.flushes += 1;
    }

    fn remove(&mut self, i: u32) {
        self.unlink(i);
        let entry = self.slots[i as usize]
            .take()
            .expect("indexed slots are occupied");
        self.free.push(i);
        self.by_cmd.remove(&self.hasher.hash_one(&entry.cmd[..]));
        // Out of its key's chain.
        match entry.key_prev {
            NIL => {
                if entry.key_next == NIL {
                    self.by_key.remove(&entry.key_hash);
                } else {
                    self.by_key.insert(entry.key_hash, entry.key_next);
                }
            }
            p => self.slot_mut(p).key_next = entry.key_next,
        }
        if entry.key_next != NIL {
            self.slot_mut(entry.key_next).key_prev = entry.key_prev;
        }
        self.held -= entry.size;
        // A map never gives memory back by itself, and one that churns can double on
        // deleted markers alone: a map left four times larger than its entries need is
        // made smaller again (a rehash, at most once per halving, so amortized O(1)).
        for map in [&mut self.by_cmd, &mut self.by_key] {
            if map.capacity() > 4 * map.len() + 64 {
                map.shrink_to(2 * map.len());
            }
        }
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = {
            let e = self.slot(i);
            (e.prev, e.next)
        };
        match prev {
            NIL => self.head = next,
            p => self.slot_mut(p).next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.slot_mut(n).prev = prev,
        }
        let e = self.slot_mut(i);
        e.prev = NIL;
        e.next = NIL;
    }

    fn push_front(&mut self, i: u32) {
        let old = self.head;
        {
            let e = self.slot_mut(i);
            e.prev = NIL;
            e.next = old;
        }
        match old {
            NIL => self.tail = i,
            o => self.slot_mut(o).prev = i,
        }
        self.head = i;
    }

    fn slot(&self, i: u32) -> &Entry {
        self.slots[i as usize]
            .as_ref()
            .expect("linked slots are occupied")
    }

    fn slot_mut(&mut self, i: u32) -> &mut Entry {
        self.slots[i as usize]
            .as_mut()
            .expect("linked slots are occupied")
    }
}

/// `cmd` and `v` copied into one buffer of their own (so a small value never pins a large
/// read buffer, and the bytes counted are the bytes held), and what that takes: the
/// buffer, the header the `bytes` crate adds once it is shared, and each aggregate's
/// `Vec` (and an attribute's `Box`), as [`alloc_cost`] counts them.
fn own(cmd: &[u8], v: &Value) -> (Bytes, Value, usize) {
    let mut buf = Vec::with_capacity(cmd.len() + payload_len(v));
    buf.extend_from_slice(cmd);
    copy_payloads(v, &mut buf);
    let all = Bytes::from(buf);
    // Slicing shares the buffer now (its header allocated once, here), so serving a hit
    // later allocates nothing.
    let cmd = all.slice(..cmd.len());
    let mut at = cmd.len();
    let mut size = alloc_cost(all.len()) + alloc_cost(SHARED_HEADER);
    let value = rebuild(v, &all, &mut at, &mut size);
    (cmd, value, size)
}

/// Payload bytes a value holds.
fn payload_len(v: &Value) -> usize {
    match v {
        Value::SimpleString(b) | Value::BulkString(b) | Value::BigNumber(b) => b.len(),
        Value::Verbatim { text, .. } => text.len(),
        Value::Error(e) => e.as_bytes().len(),
        Value::Array(items) | Value::Set(items) | Value::Push(items) => {
            items.iter().map(payload_len).sum()
        }
        Value::Map(pairs) => pairs
            .iter()
            .map(|(k, v)| payload_len(k) + payload_len(v))
            .sum(),
        Value::Attribute { attributes, value } => {
            attributes
                .iter()
                .map(|(k, v)| payload_len(k) + payload_len(v))
                .sum::<usize>()
                + payload_len(value)
        }
        Value::Nil | Value::Integer(_) | Value::Double(_) | Value::Boolean(_) => 0,
    }
}

/// Appends every payload of `v` to `buf`, depth first.
fn copy_payloads(v: &Value, buf: &mut Vec<u8>) {
    match v {
        Value::SimpleString(b) | Value::BulkString(b) | Value::BigNumber(b) => {
            buf.extend_from_slice(b)
        }
        Value::Verbatim { text, .. } => buf.extend_from_slice(text),
        Value::Error(e) => buf.extend_from_slice(e.as_bytes()),
        Value::Array(items) | Value::Set(items) | Value::Push(items) => {
            items.iter().for_each(|v| copy_payloads(v, buf))
        }
        Value::Map(pairs) => pairs.iter().for_each(|(k, v)| {
            copy_payloads(k, buf);
            copy_payloads(v, buf);
        }),
        Value::Attribute { attributes, value } => {
            attributes.iter().for_each(|(k, v)| {
                copy_payloads(k, buf);
                copy_payloads(v, buf);
            });
            copy_payloads(value, buf);
        }
        Value::Nil | Value::Integer(_) | Value::Double(_) | Value::Boolean(_) => {}
    }
}

/// `v` with its payloads taken from `all` from `*at` on, in the order [`copy_payloads`]
/// wrote them; adds what its aggregates allocate to `size`.
fn rebuild(v: &Value, all: &Bytes, at: &mut usize, size: &mut usize) -> Value {
    let mut take = |len: usize| {
        let b = all.slice(*at..*at + len);
        *at += len;
        b
    };
    match v {
        Value::SimpleString(b) => Value::SimpleString(take(b.len())),
        Value::BulkString(b) => Value::BulkString(take(b.len())),
        Value::BigNumber(b) => Value::BigNumber(take(b.len())),
        Value::Verbatim { format, text } => Value::Verbatim {
            format: *format,
            text: take(text.len()),
        },
        Value::Error(e) => Value::Error(resp_proto::ServerError::new(take(e.as_bytes().len()))),
        Value::Array(items) | Value::Set(items) | Value::Push(items) => {
            *size += alloc_cost(items.len() * std::mem::size_of::<Value>());
            let items = items.iter().map(|v| rebuild(v, all, at, size)).collect();
            match v {
                Value::Array(_) => Value::Array(items),
                Value::Set(_) => Value::Set(items),
                _ => Value::Push(items),
            }
        }
        Value::Map(pairs) => {
            *size += alloc_cost(pairs.len() * std::mem::size_of::<(Value, Value)>());
            Value::Map(
                pairs
                    .iter()
                    .map(|(k, v)| (rebuild(k, all, at, size), rebuild(v, all, at, size)))
                    .collect(),
            )
        }
        Value::Attribute { attributes, value } => {
            *size += alloc_cost(attributes.len() * std::mem::size_of::<(Value, Value)>())
                + alloc_cost(std::mem::size_of::<Value>());
            Value::Attribute {
                attributes: attributes
                    .iter()
                    .map(|(k, v)| (rebuild(k, all, at, size), rebuild(v, all, at, size)))
                    .collect(),
                value: Box::new(rebuild(value, all, at, size)),
            }
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(max_entries: usize, max_bytes: usize) -> Store {
        Store::new(Limits {
            max_entries,
            max_bytes,
            ttl: None,
        })
    }

    fn bulk(s: &str) -> Value {
        Value::BulkString(Bytes::copy_from_slice(s.as_bytes()))
    }

    /// A read of `key` (command `GET key`) that completes with `value` at once.
    fn read(s: &mut Store, key: &str, value: &str, now: Instant) -> Outcome {
        let b = s.begin(key.as_bytes(), 1);
        let cmd = format!("GET {key}");
        s.complete(key.as_bytes(), cmd.as_bytes(), b, Some(&bulk(value)), now)
    }

    fn get(s: &mut Store, key: &str, now: Instant) -> Option<Value> {
        s.get(format!("GET {key}").as_bytes(), now)
    }

    #[test]
    fn stores_and_serves() {
        let now = Instant::now();
        let mut s = store(10, 1 << 20);
        assert_eq!(get(&mut s, "a", now), None);
        assert_eq!(read(&mut s, "a", "1", now), Outcome::Stored);
        assert_eq!(get(&mut s, "a", now), Some(bulk("1")));
        assert_eq!((s.counters.hits, s.counters.misses), (1, 1));
        assert_eq!(s.len(), 1);
        // One buffer for "GET a" and "1", its shared header, and the tables.
        assert_eq!(s.held, alloc_cost(5 + 1) + alloc_cost(SHARED_HEADER));
        assert_eq!(s.bytes(), s.held + s.tables());
        assert!(s.tables() >= 16 * std::mem::size_of::<Option<Entry>>());
    }

    #[test]
    fn forgetting_an_owner_drops_only_what_was_read_through_it() {
        let now = Instant::now();
        let mut s = store(10, 1 << 20);
        for (key, owner) in [("a", 1), ("b", 2), ("c", 1)] {
            let b = s.begin(key.as_bytes(), owner);
            let cmd = format!("GET {key}");
            s.complete(key.as_bytes(), cmd.as_bytes(), b, Some(&bulk("v")), now);
        }
        s.forget(1);
        assert_eq!(get(&mut s, "a", now), None);
        assert_eq!(get(&mut s, "c", now), None);
        assert_eq!(get(&mut s, "b", now), Some(bulk("v")));
        assert_eq!((s.len(), s.counters.invalidations), (1, 2));
        assert_eq!(s.held, alloc_cost(5 + 1) + alloc_cost(SHARED_HEADER));
    }

    #[test]
    fn an_invalidation_during_the_read_keeps_the_reply_out() {
        let now = Instant::now();
        let mut s = store(10, 1 << 20);
        let b = s.begin(b"a", 1);
        s.invalidate(b"a");
        let out = s.complete(b"a", b"GET a", b, Some(&bulk("old")), now);
        assert_eq!(out, Outcome::Raced);
        assert_eq!(get(&mut s, "a", now), None);
        assert_eq!(s.counters.discarded, 1);
        // A read that begins after the invalidation is stored.
        assert_eq!(read(&mut s, "a", "new", now), Outcome::Stored);
    }

    #[test]
    fn overlapping_reads_each_judged_by_when_they_began() {
        let now = Instant::now();
        let mut s = store(10, 1 << 20);
        let first = s.begin(b"a", 1);
        s.invalidate(b"a");
        let second = s.begin(b"a", 1);
        // The second began after the invalidation: its reply is current.
        assert_eq!(
            s.complete(b"a", b"GET a", second, Some(&bulk("new")), now),
            Outcome::Stored
        );
        assert_eq!(
            s.complete(b"a", b"GET a", first, Some(&bulk("old")), now),
            Outcome::Raced
        );
        assert_eq!(get(&mut s, "a", now), Some(bulk("new")));
        assert!(s.pending.is_empty());
    }

    #[test]
    fn an_invalidation_of_another_key_does_not_matter() {
        let now = Instant::now();
        let mut s = store(10, 1 << 20);
        let b = s.begin(b"a", 1);
        s.invalidate(b"b");
        assert_eq!(
            s.complete(b"a", b"GET a", b, Some(&bulk("1")), now),
            Outcome::Stored
        );
    }

    #[test]
    fn a_clear_during_the_read_keeps_the_reply_out() {
        let now = Instant::now();
        let mut s = store(10, 1 << 20);
        read(&mut s, "x", "1", now);
        let b = s.begin(b"a", 1);
        s.clear();
        assert_eq!(s.len(), 0);
        // Only the read in flight is left.
        assert_eq!((s.held, s.slots.capacity()), (0, 0));
        assert_eq!(s.bytes(), s.tables());
        assert_eq!(
            s.complete(b"a", b"GET a", b, Some(&bulk("old")), now),
            Outcome::Raced
        );
        assert_eq!(get(&mut s, "x", now), None);
    }

    #[test]
    fn invalidation_drops_every_command_of_the_key() {
        let now = Instant::now();
        let mut s = store(10, 1 << 20);
        for cmd in ["HGET h f1", "HGET h f2", "HGETALL h"] {
            let b = s.begin(b"h", 1);
            s.complete(b"h", cmd.as_bytes(), b, Some(&bulk("v")), now);
        }
        read(&mut s, "other", "1", now);
        s.invalidate(b"h");
        assert_eq!(s.len(), 1);
        assert_eq!(s.counters.invalidations, 3);
        assert_eq!(s.get(b"HGETALL h", now), None);
        assert_eq!(get(&mut s, "other", now), Some(bulk("1")));
    }

    #[test]
    fn evicts_the_least_recently_used_by_count() {
        let now = Instant::now();
        let mut s = store(2, 1 << 20);
        read(&mut s, "a", "1", now);
        read(&mut s, "b", "2", now);
        get(&mut s, "a", now); // b is now the least recently used
        read(&mut s, "c", "3", now);
        assert_eq!(s.len(), 2);
        assert_eq!(s.counters.evictions, 1);
        assert!(get(&mut s, "b", now).is_none());
        assert!(get(&mut s, "a", now).is_some());
        assert!(get(&mut s, "c", now).is_some());
    }

    #[test]
    fn evicts_by_bytes_and_refuses_what_cannot_fit() {
        let now = Instant::now();
        let big = "x".repeat(100);
        // What two such entries take, tables included.
        let mut probe = store(100, 1 << 20);
        read(&mut probe, "a", &big, now);
        read(&mut probe, "b", &big, now);
        let two = probe.bytes();
        // The free list's first allocation, made at the first eviction, fits too.
        let mut s = store(100, two + 64);
        read(&mut s, "a", &big, now);
        read(&mut s, "b", &big, now);
        read(&mut s, "c", &big, now);
        assert_eq!(s.len(), 2);
        assert!(s.bytes() <= two + 64);
        assert!(get(&mut s, "a", now).is_none());
        let huge = "x".repeat(two);
        assert_eq!(read(&mut s, "d", &huge, now), Outcome::Refused);
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn bytes_count_what_the_allocator_takes_and_the_tables() {
        let now = Instant::now();
        let mut s = store(1 << 20, 1 << 30);
        for i in 0..1000 {
            read(&mut s, &format!("key:{i}"), "0123456789abcdef", now);
        }
        // "GET key:NNN" (11 bytes) with its 16-byte value: one 48-byte chunk (27 bytes
        // and the allocator's header, rounded to 16) and the 32-byte shared header.
        let per_entry = alloc_cost(11 + 16) + alloc_cost(SHARED_HEADER);
        assert_eq!(per_entry, 48 + 32);
        assert_eq!(s.held, 1000 * per_entry);
        // The slots grow by an eighth, not by doubling.
        assert!(
            s.slots.capacity() <= 1000 + 1000 / 8 + 16,
            "{}",
            s.slots.capacity()
        );
        let slot = std::mem::size_of::<Option<Entry>>();
        assert!(s.tables() >= 1000 * slot, "{}", s.tables());
        assert_eq!(s.bytes(), s.held + s.tables());
        // Aggregates count their `Vec`s too.
        let b = s.begin(b"h", 1);
        let pairs = Value::Map(vec![(bulk("f"), bulk("v")), (bulk("g"), bulk("w"))]);
        s.complete(b"h", b"HGETALL h", b, Some(&pairs), now);
        let held = 1000 * per_entry
            + alloc_cost(9 + 4)
            + alloc_cost(SHARED_HEADER)
            + alloc_cost(2 * std::mem::size_of::<(Value, Value)>());
        assert_eq!(s.held, held);
        assert_eq!(s.get(b"HGETALL h", now), Some(pairs));
    }

    #[test]
    fn a_table_that_grows_past_the_budget_makes_room() {
        let now = Instant::now();
        // Room for some entries with the tables they had, not for the tables grown.
        let mut s = store(1 << 20, 64 << 10);
        for i in 0..10_000 {
            read(&mut s, &format!("k{i}"), "v", now);
            assert!(s.bytes() <= 64 << 10, "{} at {i}", s.bytes());
        }
        assert!(
            s.len() > 100,
            "{} entries, {} held, tables {} (slots {}, by_cmd {}, by_key {}, free {}, pending {})",
            s.len(),
            s.held,
            s.tables(),
            s.slots.capacity(),
            s.by_cmd.capacity(),
            s.by_key.capacity(),
            s.free.capacity(),
            s.pending.capacity()
        );
        assert!(s.counters.evictions > 0);
    }

    #[test]
    fn ttl_ceiling_expires_entries() {
        let now = Instant::now();
        let mut s = Store::new(Limits {
            max_entries: 10,
            max_bytes: 1 << 20,
            ttl: Some(Duration::from_secs(5)),
        });
        read(&mut s, "a", "1", now);
        assert!(get(&mut s, "a", now + Duration::from_secs(4)).is_some());
        assert!(get(&mut s, "a", now + Duration::from_secs(5)).is_none());
        assert_eq!(s.counters.expired, 1);
        assert_eq!(s.len(), 0);
        assert_eq!(s.bytes(), s.tables());
    }

    #[test]
    fn a_reread_replaces_and_errors_are_not_stored() {
        let now = Instant::now();
        let mut s = store(10, 1 << 20);
        read(&mut s, "a", "1", now);
        read(&mut s, "a", "22", now);
        assert_eq!(s.len(), 1);
        assert_eq!(get(&mut s, "a", now), Some(bulk("22")));
        let b = s.begin(b"e", 1);
        let err = Value::Error(resp_proto::ServerError::new(Bytes::from_static(
            b"WRONGTYPE x",
        )));
        assert_eq!(
            s.complete(b"e", b"GET e", b, Some(&err), now),
            Outcome::Refused
        );
        let b = s.begin(b"f", 1);
        assert_eq!(s.complete(b"f", b"GET f", b, None, now), Outcome::Refused);
        assert!(s.pending.is_empty());
    }

    #[test]
    fn recency_list_survives_churn() {
        let now = Instant::now();
        let mut s = store(8, 1 << 20);
        for i in 0..1000 {
            let k = format!("k{}", i % 13);
            match i % 5 {
                0 => s.invalidate(k.as_bytes()),
                1 => {
                    get(&mut s, &k, now);
                }
                2 => s.forget(i % 3),
                _ => {
                    // Several commands per key, read through different owners.
                    let b = s.begin(k.as_bytes(), i % 3);
                    let cmd = format!("GETRANGE {k} 0 {}", i % 4);
                    s.complete(k.as_bytes(), cmd.as_bytes(), b, Some(&bulk("v")), now);
                }
            }
            assert!(s.len() <= 8);
            // The list, the key chains and the index agree.
            let mut n = 0;
            let mut i = s.head;
            while i != NIL {
                n += 1;
                i = s.slot(i).next;
            }
            assert_eq!(n, s.len());
            let mut chained = 0;
            for &first in s.by_key.values() {
                let mut i = first;
                assert_eq!(s.slot(i).key_prev, NIL);
                while i != NIL {
                    chained += 1;
                    let next = s.slot(i).key_next;
                    if next != NIL {
                        assert_eq!(s.slot(next).key_prev, i);
                    }
                    i = next;
                }
            }
            assert_eq!(chained, s.len());
            assert_eq!(
                s.held,
                s.slots.iter().flatten().map(|e| e.size).sum::<usize>()
            );
        }
    }
}
