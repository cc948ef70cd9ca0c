//! Commands on lists, the blocking pops and moves included.
//!
//! A blocking command takes its server-side timeout as a [`Duration`]
//! ([`Duration::ZERO`]: wait forever), sent as seconds with milliseconds, and records it
//! with [`Cmd::block_for`](crate::Cmd::block_for), so the connection waits for its reply
//! that long (plus a margin) instead of failing at its read timeout.

use crate::options::write_numkeys;
use crate::time::TimeoutSecs;
use crate::{Insert, ListDirection, LposOptions, ToArgs};
use bytes::Bytes;
use std::time::Duration;

commands! {
    /// Commands on lists. See <https://redis.io/commands/?group=list>.
    pub trait ListCommands, table LISTS;

    /// Pops and moves like `lmove`, waiting up to `timeout` (`Duration::ZERO`: forever) for
    /// `source` to have an element; `None` on timeout.
    /// See <https://redis.io/commands/blmove/>.
    "BLMOVE" [BLOCKING] fn blmove<S: ToArgs, D: ToArgs>(source: S, destination: D, wherefrom: ListDirection, whereto: ListDirection, timeout: Duration) -> Option<Bytes>
        => |c| { c.key(source).key(destination).arg(wherefrom).arg(whereto).arg(TimeoutSecs(timeout)).block_for(timeout); }

    /// Pops up to `count` elements from the first non-empty list at `keys`, waiting up to
    /// `timeout` (`Duration::ZERO`: forever); `None` on timeout, else the key and the elements.
    /// See <https://redis.io/commands/blmpop/>.
    "BLMPOP" [BLOCKING] fn blmpop<K: ToArgs>(timeout: Duration, keys: K, direction: ListDirection, count: u64) -> Option<(Bytes, Vec<Bytes>)>
        => |c| {
            c.arg(TimeoutSecs(timeout)).block_for(timeout);
            write_numkeys(c, keys);
            c.arg(direction).arg("COUNT").arg(count);
        }

    /// Pops the head of the first non-empty list at `keys`, waiting up to `timeout`
    /// (`Duration::ZERO`: forever); `None` on timeout, else the key and the element.
    /// See <https://redis.io/commands/blpop/>.
    "BLPOP" [BLOCKING] fn blpop<K: ToArgs>(keys: K, timeout: Duration) -> Option<(Bytes, Bytes)>
        => |c| { c.key(keys).arg(TimeoutSecs(timeout)).block_for(timeout); }

    /// Pops the tail of the first non-empty list at `keys`, waiting up to `timeout`
    /// (`Duration::ZERO`: forever); `None` on timeout, else the key and the element.
    /// See <https://redis.io/commands/brpop/>.
    "BRPOP" [BLOCKING] fn brpop<K: ToArgs>(keys: K, timeout: Duration) -> Option<(Bytes, Bytes)>
        => |c| { c.key(keys).arg(TimeoutSecs(timeout)).block_for(timeout); }

    /// Pops the tail of `source` onto the head of `destination`, waiting up to `timeout`
    /// (`Duration::ZERO`: forever); `None` on timeout (deprecated: `blmove`).
    /// See <https://redis.io/commands/brpoplpush/>.
    "BRPOPLPUSH" [BLOCKING] fn brpoplpush<S: ToArgs, D: ToArgs>(source: S, destination: D, timeout: Duration) -> Option<Bytes>
        => |c| { c.key(source).key(destination).arg(TimeoutSecs(timeout)).block_for(timeout); }

    /// Returns the element at `index` of the list at `key` (negative counts from the
    /// tail), or `None` when out of range.
    /// See <https://redis.io/commands/lindex/>.
    "LINDEX" [READONLY | CACHEABLE] fn lindex<K: ToArgs>(key: K, index: i64) -> Option<Bytes> => |c| { c.key(key).arg(index); }

    /// Inserts `element` before or after the first `pivot` in the list at `key`; returns
    /// the new length, -1 if the pivot was not found, 0 if the key does not exist.
    /// See <https://redis.io/commands/linsert/>.
    "LINSERT" [] fn linsert<K: ToArgs, P: ToArgs, E: ToArgs>(key: K, position: Insert, pivot: P, element: E) -> i64
        => |c| { c.key(key).arg(position).arg(pivot).arg(element); }

    /// Returns the length of the list at `key`.
    /// See <https://redis.io/commands/llen/>.
    "LLEN" [READONLY | CACHEABLE] fn llen<K: ToArgs>(key: K) -> i64 => |c| { c.key(key); }

    /// Pops an element from one end of `source` and pushes it onto one end of
    /// `destination`; returns it, or `None` if `source` is empty.
    /// See <https://redis.io/commands/lmove/>.
    "LMOVE" [] fn lmove<S: ToArgs, D: ToArgs>(source: S, destination: D, wherefrom: ListDirection, whereto: ListDirection) -> Option<Bytes>
        => |c| { c.key(source).key(destination).arg(wherefrom).arg(whereto); }

    /// Pops up to `count` elements from the first non-empty list at `keys`; `None` if all
    /// are empty, else the key and the elements.
    /// See <https://redis.io/commands/lmpop/>.
    "LMPOP" [] fn lmpop<K: ToArgs>(keys: K, direction: ListDirection, count: u64) -> Option<(Bytes, Vec<Bytes>)>
        => |c| { write_numkeys(c, keys); c.arg(direction).arg("COUNT").arg(count); }

    /// Removes and returns the head of the list at `key`, or `None` if it is empty.
    /// See <https://redis.io/commands/lpop/>.
    "LPOP" [] fn lpop<K: ToArgs>(key: K) -> Option<Bytes> => |c| { c.key(key); }

    /// Removes and returns up to `count` elements from the head of the list at `key`;
    /// `None` if it does not exist.
    /// See <https://redis.io/commands/lpop/>.
    "LPOP" [] fn lpop_count<K: ToArgs>(key: K, count: u64) -> Option<Vec<Bytes>> => |c| { c.key(key).arg(count); }

    /// Returns the index of `element` in the list at `key` (after `options`), or `None`.
    /// See <https://redis.io/commands/lpos/>.
    "LPOS" [READONLY | CACHEABLE] fn lpos<K: ToArgs, E: ToArgs>(key: K, element: E, options: LposOptions) -> Option<i64>
        => |c| { c.key(key).arg(element).arg(options); }

    /// Returns the indexes of up to `count` matches of `element` (0: all).
    /// See <https://redis.io/commands/lpos/>.
    "LPOS" [READONLY | CACHEABLE] fn lpos_count<K: ToArgs, E: ToArgs>(key: K, element: E, count: u64, options: LposOptions) -> Vec<i64>
        => |c| { c.key(key).arg(element).arg(options).arg("COUNT").arg(count); }

    /// Pushes `elements` onto the head of the list at `key` (creating it), one after the
    /// other; returns the new length.
    /// See <https://redis.io/commands/lpush/>.
    "LPUSH" [] fn lpush<K: ToArgs, E: ToArgs>(key: K, elements: E) -> i64 => |c| { c.key(key).arg(elements); }

    /// Pushes `elements` onto the head of the list at `key` only if it exists; returns the
    /// new length (0: no list).
    /// See <https://redis.io/commands/lpushx/>.
    "LPUSHX" [] fn lpushx<K: ToArgs, E: ToArgs>(key: K, elements: E) -> i64 => |c| { c.key(key).arg(elements); }

    /// Returns the elements of the list at `key` from `start` to `stop` inclusive
    /// (negative counts from the tail).
    /// See <https://redis.io/commands/lrange/>.
    "LRANGE" [READONLY | CACHEABLE] fn lrange<K: ToArgs>(key: K, start: i64, stop: i64) -> Vec<Bytes> => |c| { c.key(key).arg(start).arg(stop); }

    /// Removes elements equal to `element`: the first `count` from the head (positive),
    /// from the tail (negative) or all (0); returns how many.
    /// See <https://redis.io/commands/lrem/>.
    "LREM" [] fn lrem<K: ToArgs, E: ToArgs>(key: K, count: i64, element: E) -> i64 => |c| { c.key(key).arg(count).arg(element); }

    /// Sets the element at `index` of the list at `key`.
    /// See <https://redis.io/commands/lset/>.
    "LSET" [] fn lset<K: ToArgs, E: ToArgs>(key: K, index: i64, element: E) -> bool => |c| { c.key(key).arg(index).arg(element); }

    /// Keeps only the elements from `start` to `stop` inclusive of the list at `key`.
    /// See <https://redis.io/commands/ltrim/>.
    "LTRIM" [] fn ltrim<K: ToArgs>(key: K, start: i64, stop: i64) -> bool => |c| { c.key(key).arg(start).arg(stop); }

    /// Removes and returns the tail of the list at `key`, or `None` if it is empty.
    /// See <https://redis.io/commands/rpop/>.
    "RPOP" [] fn rpop<K: ToArgs>(key: K) -> Option<Bytes> => |c| { c.key(key); }

    /// Removes and returns up to `count` elements from the tail of the list at `key`;
    /// `None` if it does not exist.
    /// See <https://redis.io/commands/rpop/>.
    "RPOP" [] fn rpop_count<K: ToArgs>(key: K, count: u64) -> Option<Vec<Bytes>> => |c| { c.key(key).arg(count); }

    /// Pops the tail of `source` onto the head of `destination` and returns it, or `None`
    /// if `source` is empty (deprecated: `lmove`).
    /// See <https://redis.io/commands/rpoplpush/>.
    "RPOPLPUSH" [] fn rpoplpush<S: ToArgs, D: ToArgs>(source: S, destination: D) -> Option<Bytes>
        => |c| { c.key(source).key(destination); }

    /// Pushes `elements` onto the tail of the list at `key` (creating it); returns the new
    /// length.
    /// See <https://redis.io/commands/rpush/>.
    "RPUSH" [] fn rpush<K: ToArgs, E: ToArgs>(key: K, elements: E) -> i64 => |c| { c.key(key).arg(elements); }

    /// Pushes `elements` onto the tail of the list at `key` only if it exists; returns the
    /// new length (0: no list).
    /// See <https://redis.io/commands/rpushx/>.
    "RPUSHX" [] fn rpushx<K: ToArgs, E: ToArgs>(key: K, elements: E) -> i64 => |c| { c.key(key).arg(elements); }
}
