//! Commands on string values (and the numbers stored in them).

use crate::options::write_key_values;
use crate::time::{expiry_millis, expiry_secs};
use crate::{GetExpiry, LcsMatches, LcsOptions, Number, SetOptions, ToArgs};
use bytes::Bytes;
use std::time::Duration;

commands! {
    /// Commands on string values. See <https://redis.io/commands/?group=string>.
    pub trait StringCommands, table STRINGS;

    /// Appends `value` to the string at `key` (creating it) and returns the new length.
    /// See <https://redis.io/commands/append/>.
    "APPEND" [] fn append<K: ToArgs, V: ToArgs>(key: K, value: V) -> i64 => |c| { c.key(key).arg(value); }

    /// Decrements the integer at `key` by one and returns the new value.
    /// See <https://redis.io/commands/decr/>.
    "DECR" [] fn decr<K: ToArgs>(key: K) -> i64 => |c| { c.key(key); }

    /// Decrements the integer at `key` by `decrement` and returns the new value.
    /// See <https://redis.io/commands/decrby/>.
    "DECRBY" [] fn decrby<K: ToArgs>(key: K, decrement: i64) -> i64 => |c| { c.key(key).arg(decrement); }

    /// Returns the value of `key`, or `None` if it does not exist.
    /// See <https://redis.io/commands/get/>.
    "GET" [READONLY | CACHEABLE] fn get<K: ToArgs>(key: K) -> Option<Bytes> => |c| { c.key(key); }

    /// Returns the value of `key` and deletes the key, or `None` if it did not exist.
    /// See <https://redis.io/commands/getdel/>.
    "GETDEL" [] fn getdel<K: ToArgs>(key: K) -> Option<Bytes> => |c| { c.key(key); }

    /// Returns the value of `key` and sets or clears its expiry.
    /// See <https://redis.io/commands/getex/>.
    "GETEX" [] fn getex<K: ToArgs>(key: K, expiry: GetExpiry) -> Option<Bytes> => |c| { c.key(key).arg(expiry); }

    /// Returns the bytes of the string at `key` from `start` to `end` inclusive (negative
    /// positions count from the end); empty for a missing key.
    /// See <https://redis.io/commands/getrange/>.
    "GETRANGE" [READONLY | CACHEABLE] fn getrange<K: ToArgs>(key: K, start: i64, end: i64) -> Bytes => |c| { c.key(key).arg(start).arg(end); }

    /// Sets `key` to `value` and returns the old value (deprecated: `set_get`).
    /// See <https://redis.io/commands/getset/>.
    "GETSET" [] fn getset<K: ToArgs, V: ToArgs>(key: K, value: V) -> Option<Bytes> => |c| { c.key(key).arg(value); }

    /// Increments the integer at `key` by one and returns the new value.
    /// See <https://redis.io/commands/incr/>.
    "INCR" [] fn incr<K: ToArgs>(key: K) -> i64 => |c| { c.key(key); }

    /// Increments the integer at `key` by `increment` and returns the new value.
    /// See <https://redis.io/commands/incrby/>.
    "INCRBY" [] fn incrby<K: ToArgs>(key: K, increment: i64) -> i64 => |c| { c.key(key).arg(increment); }

    /// Increments the number at `key` by `increment` (any number: `2`, `0.5`) and returns
    /// the new value.
    /// See <https://redis.io/commands/incrbyfloat/>.
    "INCRBYFLOAT" [] fn incrbyfloat<K: ToArgs, N: Number>(key: K, increment: N) -> f64 => |c| { c.key(key); increment.write_number(c); }

    /// Returns the longest common subsequence of the strings at `key1` and `key2`.
    /// See <https://redis.io/commands/lcs/>.
    "LCS" [READONLY] fn lcs<K1: ToArgs, K2: ToArgs>(key1: K1, key2: K2) -> Bytes => |c| { c.key(key1).key(key2); }

    /// Returns the length of the longest common subsequence of the strings at `key1` and
    /// `key2` (`LEN`).
    /// See <https://redis.io/commands/lcs/>.
    "LCS" [READONLY] fn lcs_len<K1: ToArgs, K2: ToArgs>(key1: K1, key2: K2) -> i64 => |c| { c.key(key1).key(key2).arg("LEN"); }

    /// Returns where the common substrings of the strings at `key1` and `key2` are (`IDX`).
    /// See <https://redis.io/commands/lcs/>.
    "LCS" [READONLY] fn lcs_idx<K1: ToArgs, K2: ToArgs>(key1: K1, key2: K2, options: LcsOptions) -> LcsMatches
        => |c| { c.key(key1).key(key2).arg("IDX").arg(options); }

    /// Returns the values of `keys`, `None` for each that does not exist or is no string.
    /// See <https://redis.io/commands/mget/>.
    "MGET" [READONLY | SPLIT] fn mget<K: ToArgs>(keys: K) -> Vec<Option<Bytes>> => |c| { c.key(keys); }

    /// Sets many keys at once from `items`, given as key/value pairs (`[("a", 1), ("b", 2)]`).
    /// See <https://redis.io/commands/mset/>.
    "MSET" [SPLIT] fn mset<I: ToArgs>(items: I) -> bool => |c| { write_key_values(c, items); }

    /// Sets many keys at once, only if none of them exists; true when it set them.
    /// See <https://redis.io/commands/msetnx/>.
    "MSETNX" [] fn msetnx<I: ToArgs>(items: I) -> bool => |c| { write_key_values(c, items); }

    /// Sets `key` to `value` expiring after `ttl` (sent in milliseconds, rounded up, at
    /// least 1).
    /// See <https://redis.io/commands/psetex/>.
    "PSETEX" [] fn psetex<K: ToArgs, V: ToArgs>(key: K, ttl: Duration, value: V) -> bool
        => |c| { c.key(key).arg(expiry_millis(ttl)).arg(value); }

    /// Sets `key` to `value`; true when it was set.
    /// See <https://redis.io/commands/set/>.
    "SET" [] fn set<K: ToArgs, V: ToArgs>(key: K, value: V) -> bool => |c| { c.key(key).arg(value); }

    /// Sets `key` to `value` with expiry and condition options; false when NX or XX
    /// prevented the write.
    /// See <https://redis.io/commands/set/>.
    "SET" [] fn set_options<K: ToArgs, V: ToArgs>(key: K, value: V, options: SetOptions) -> bool
        => |c| { c.key(key).arg(value).arg(options); }

    /// Sets `key` to `value` with `options` and returns the old value (`GET`), `None` when
    /// there was none.
    /// See <https://redis.io/commands/set/>.
    "SET" [] fn set_get<K: ToArgs, V: ToArgs>(key: K, value: V, options: SetOptions) -> Option<Bytes>
        => |c| { c.key(key).arg(value).arg(options.get()); }

    /// Sets `key` to `value` expiring after `ttl` (sent in seconds, rounded up, at least
    /// 1: `Duration::from_secs(60)`); `psetex` for milliseconds.
    /// See <https://redis.io/commands/setex/>.
    "SETEX" [] fn setex<K: ToArgs, V: ToArgs>(key: K, ttl: Duration, value: V) -> bool
        => |c| { c.key(key).arg(expiry_secs(ttl)).arg(value); }

    /// Sets `key` to `value` only if it does not exist; true when it set it.
    /// See <https://redis.io/commands/setnx/>.
    "SETNX" [] fn setnx<K: ToArgs, V: ToArgs>(key: K, value: V) -> bool => |c| { c.key(key).arg(value); }

    /// Overwrites the string at `key` from byte `offset` with `value` (zero-padding as
    /// needed) and returns the new length.
    /// See <https://redis.io/commands/setrange/>.
    "SETRANGE" [] fn setrange<K: ToArgs, V: ToArgs>(key: K, offset: u64, value: V) -> i64
        => |c| { c.key(key).arg(offset).arg(value); }

    /// Returns the length of the string at `key` (0 when missing).
    /// See <https://redis.io/commands/strlen/>.
    "STRLEN" [READONLY | CACHEABLE] fn strlen<K: ToArgs>(key: K) -> i64 => |c| { c.key(key); }

    /// Returns a substring of the string at `key` (deprecated: `getrange`).
    /// See <https://redis.io/commands/substr/>.
    "SUBSTR" [READONLY | CACHEABLE] fn substr<K: ToArgs>(key: K, start: i64, end: i64) -> Bytes => |c| { c.key(key).arg(start).arg(end); }
}
