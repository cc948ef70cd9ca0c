//! The cache's memory: entries bounded in number and bytes, least recently used first
//! out, a time-to-live ceiling, and the bookkeeping that keeps a reply that raced its
//! invalidation out of the cache. Sans-I/O: no clock, no lock; the time is passed in.

use bytes::Bytes;
use resp_proto::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Bytes counted for an entry beyond its key, command and value: the slot, the two map
/// entries and the value's headers, roughly (a bound, not an exact figure).
pub(crate) const ENTRY_OVERHEAD: usize = 128;

/// No slot: the end of the recency list.
const NIL: usize = usize::MAX;

/// How much the store may hold.
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
    cmd: Bytes,
    key: Bytes,
    value: Value,
    /// The tracking registration of the connection it was read on: the server reports
    /// changes to the key only while that registration lasts.
    owner: u64,
    size: usize,
    expires: Option<Instant>,
    prev: usize,
    next: usize,
}

/// Reads in flight for one key, and the last invalidation of that key while any was.
#[derive(Debug)]
struct Pending {
    readers: usize,
    invalidated_at: u64,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Store {
    limits: Limits,
    slots: Vec<Option<Entry>>,
    free: Vec<usize>,
    /// Most recently used.
    head: usize,
    /// Least recently used: evicted first.
    tail: usize,
    by_cmd: HashMap<Bytes, usize>,
    by_key: HashMap<Bytes, Vec<usize>>,
    bytes: usize,
    /// Advances at every invalidation and clear; a read that began before an
    /// invalidation of its key (or a clear) is not stored.
    seq: u64,
    cleared_at: u64,
    pending: HashMap<Bytes, Pending>,
    pub counters: Counters,
}

impl Store {
    pub(crate) fn new(limits: Limits) -> Store {
        Store {
            limits,
            slots: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            by_cmd: HashMap::new(),
            by_key: HashMap::new(),
            bytes: 0,
            seq: 0,
            cleared_at: 0,
            pending: HashMap::new(),
            counters: Counters::default(),
        }
    }

    /// Entries held.
    pub(crate) fn len(&self) -> usize {
        self.by_cmd.len()
    }

    /// Bytes held, as counted against the limit.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The reply stored for the command whose encoded arguments are `cmd`, unless it
    /// outlived the time-to-live ceiling at `now`. Counts a hit or a miss.
    pub(crate) fn get(&mut self, cmd: &[u8], now: Instant) -> Option<Value> {
        let Some(&i) = self.by_cmd.get(cmd) else {
            self.counters.misses += 1;
            return None;
        };
        let entry = self.slots[i].as_ref().expect("indexed slots are occupied");
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
        match self.pending.get_mut(key) {
            Some(p) => p.readers += 1,
            None => {
                self.pending.insert(
                    Bytes::copy_from_slice(key),
                    Pending {
                        readers: 1,
                        invalidated_at: 0,
                    },
                );
            }
        }
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
        let mut raced = begun.seq < self.cleared_at;
        if let Some(p) = self.pending.get_mut(key) {
            raced |= p.invalidated_at > begun.seq;
            p.readers -= 1;
            if p.readers == 0 {
                self.pending.remove(key);
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
        self.insert(key, cmd, value, begun.owner, now)
    }

    /// The tracking registration `owner` ended: the server no longer reports changes to
    /// what was read through it, so its entries go.
    pub(crate) fn forget(&mut self, owner: u64) {
        for i in 0..self.slots.len() {
            if self.slots[i].as_ref().is_some_and(|e| e.owner == owner) {
                self.remove(i);
                self.counters.invalidations += 1;
            }
        }
    }

    fn insert(
        &mut self,
        key: &[u8],
        cmd: &[u8],
        value: &Value,
        owner: u64,
        now: Instant,
    ) -> Outcome {
        let size = ENTRY_OVERHEAD + key.len() + cmd.len() + weight(value);
        if size > self.limits.max_bytes || self.limits.max_entries == 0 {
            return Outcome::Refused;
        }
        if let Some(&old) = self.by_cmd.get(cmd) {
            self.remove(old);
        }
        while self.len() >= self.limits.max_entries || self.bytes + size > self.limits.max_bytes {
            let victim = self.tail;
            debug_assert_ne!(victim, NIL);
            self.remove(victim);
            self.counters.evictions += 1;
        }
        let key = match self.by_key.get_key_value(key) {
            Some((k, _)) => k.clone(),
            None => Bytes::copy_from_slice(key),
        };
        let cmd = Bytes::copy_from_slice(cmd);
        let entry = Entry {
            cmd: cmd.clone(),
            key: key.clone(),
            // Copied out of the read buffer, so a small value never pins a large buffer
            // and the bytes counted are the bytes held.
            value: own(value),
            owner,
            size,
            expires: self.limits.ttl.map(|t| now + t),
            prev: NIL,
            next: NIL,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(entry);
                i
            }
            None => {
                self.slots.push(Some(entry));
                self.slots.len() - 1
            }
        };
        self.push_front(i);
        self.by_cmd.insert(cmd, i);
        self.by_key.entry(key).or_default().push(i);
        self.bytes += size;
        self.counters.stored += 1;
        Outcome::Stored
    }

    /// The server (or a write of this client) says `key` changed: drops its entries and
    /// keeps out the replies of reads of it in flight.
    pub(crate) fn invalidate(&mut self, key: &[u8]) {
        self.seq += 1;
        if let Some(p) = self.pending.get_mut(key) {
            p.invalidated_at = self.seq;
        }
        if let Some(slots) = self.by_key.get(key).cloned() {
            for i in slots {
                self.remove(i);
                self.counters.invalidations += 1;
            }
        }
    }

    /// Drops everything and keeps out the replies of every read in flight (a flush, a
    /// lost or replaced invalidation connection).
    pub(crate) fn clear(&mut self) {
        self.seq += 1;
        self.cleared_at = self.seq;
        self.slots.clear();
        self.free.clear();
        self.by_cmd.clear();
        self.by_key.clear();
        self.head = NIL;
        self.tail = NIL;
        self.bytes = 0;
        self.counters.flushes += 1;
    }

    fn remove(&mut self, i: usize) {
        self.unlink(i);
        let entry = self.slots[i].take().expect("indexed slots are occupied");
        self.free.push(i);
        self.by_cmd.remove(&entry.cmd);
        if let Some(slots) = self.by_key.get_mut(&entry.key) {
            slots.retain(|&s| s != i);
            if slots.is_empty() {
                self.by_key.remove(&entry.key);
            }
        }
        self.bytes -= entry.size;
    }

    fn unlink(&mut self, i: usize) {
        let (prev, next) = {
            let e = self.slots[i].as_ref().expect("indexed slots are occupied");
            (e.prev, e.next)
        };
        match prev {
            NIL => self.head = next,
            p => self.slot(p).next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.slot(n).prev = prev,
        }
        let e = self.slot(i);
        e.prev = NIL;
        e.next = NIL;
    }

    fn push_front(&mut self, i: usize) {
        let old = self.head;
        {
            let e = self.slot(i);
            e.prev = NIL;
            e.next = old;
        }
        match old {
            NIL => self.tail = i,
            o => self.slot(o).prev = i,
        }
        self.head = i;
    }

    fn slot(&mut self, i: usize) -> &mut Entry {
        self.slots[i].as_mut().expect("linked slots are occupied")
    }
}

/// Payload bytes a value holds.
pub(crate) fn weight(v: &Value) -> usize {
    match v {
        Value::SimpleString(b) | Value::BulkString(b) | Value::BigNumber(b) => b.len(),
        Value::Verbatim { text, .. } => text.len() + 3,
        Value::Error(e) => e.as_bytes().len(),
        Value::Array(items) | Value::Set(items) | Value::Push(items) => {
            items.iter().map(|v| weight(v) + 16).sum()
        }
        Value::Map(pairs) => pairs.iter().map(|(k, v)| weight(k) + weight(v) + 32).sum(),
        Value::Attribute { attributes, value } => {
            attributes
                .iter()
                .map(|(k, v)| weight(k) + weight(v) + 32)
                .sum::<usize>()
                + weight(value)
        }
        Value::Nil | Value::Integer(_) | Value::Double(_) | Value::Boolean(_) => 0,
    }
}

/// `v` with its payloads copied into allocations of its own.
fn own(v: &Value) -> Value {
    let copy = |b: &Bytes| Bytes::copy_from_slice(b);
    match v {
        Value::SimpleString(b) => Value::SimpleString(copy(b)),
        Value::BulkString(b) => Value::BulkString(copy(b)),
        Value::BigNumber(b) => Value::BigNumber(copy(b)),
        Value::Verbatim { format, text } => Value::Verbatim {
            format: *format,
            text: copy(text),
        },
        Value::Array(items) => Value::Array(items.iter().map(own).collect()),
        Value::Set(items) => Value::Set(items.iter().map(own).collect()),
        Value::Push(items) => Value::Push(items.iter().map(own).collect()),
        Value::Map(pairs) => Value::Map(pairs.iter().map(|(k, v)| (own(k), own(v))).collect()),
        Value::Attribute { attributes, value } => Value::Attribute {
            attributes: attributes.iter().map(|(k, v)| (own(k), own(v))).collect(),
            value: Box::new(own(value)),
        },
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
        assert_eq!(s.bytes(), ENTRY_OVERHEAD + 1 + 5 + 1);
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
        assert_eq!(s.bytes(), ENTRY_OVERHEAD + 1 + 5 + 1);
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
        assert_eq!(s.bytes(), 0);
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
        let one = ENTRY_OVERHEAD + 1 + 5 + 100;
        let mut s = store(100, 2 * one + 10);
        let big = "x".repeat(100);
        read(&mut s, "a", &big, now);
        read(&mut s, "b", &big, now);
        read(&mut s, "c", &big, now);
        assert_eq!(s.len(), 2);
        assert!(s.bytes() <= 2 * one + 10);
        assert!(get(&mut s, "a", now).is_none());
        let huge = "x".repeat(3 * one);
        assert_eq!(read(&mut s, "d", &huge, now), Outcome::Refused);
        assert_eq!(s.len(), 2);
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
        assert_eq!(s.bytes(), 0);
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
            match i % 4 {
                0 => s.invalidate(k.as_bytes()),
                1 => {
                    get(&mut s, &k, now);
                }
                _ => {
                    read(&mut s, &k, "v", now);
                }
            }
            assert!(s.len() <= 8);
            // The list and the index agree.
            let mut n = 0;
            let mut i = s.head;
            while i != NIL {
                n += 1;
                i = s.slots[i].as_ref().unwrap().next;
            }
            assert_eq!(n, s.len());
        }
    }
}
