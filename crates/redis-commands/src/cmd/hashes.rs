//! Commands on hashes.

use crate::{Number, ToArgs};
use bytes::Bytes;
use std::collections::HashMap;

commands! {
    /// Commands on hashes. See <https://redis.io/commands/?group=hash>.
    pub trait HashCommands, table HASHES;

    /// Deletes `fields` from the hash at `key`; returns how many existed.
    /// See <https://redis.io/commands/hdel/>.
    "HDEL" [] fn hdel<K: ToArgs, F: ToArgs>(key: K, fields: F) -> i64 => |c| { c.key(key).arg(fields); }

    /// True if `field` is in the hash at `key`.
    /// See <https://redis.io/commands/hexists/>.
    "HEXISTS" [READONLY | CACHEABLE] fn hexists<K: ToArgs, F: ToArgs>(key: K, field: F) -> bool => |c| { c.key(key).arg(field); }

    /// Returns the value of `field` in the hash at `key`, or `None`.
    /// See <https://redis.io/commands/hget/>.
    "HGET" [READONLY | CACHEABLE] fn hget<K: ToArgs, F: ToArgs>(key: K, field: F) -> Option<Bytes> => |c| { c.key(key).arg(field); }

    /// Returns every field and value of the hash at `key`.
    /// See <https://redis.io/commands/hgetall/>.
    "HGETALL" [READONLY | CACHEABLE] fn hgetall<K: ToArgs>(key: K) -> HashMap<Bytes, Bytes> => |c| { c.key(key); }

    /// Increments the integer in `field` of the hash at `key` by `increment`; returns the
    /// new value.
    /// See <https://redis.io/commands/hincrby/>.
    "HINCRBY" [] fn hincrby<K: ToArgs, F: ToArgs>(key: K, field: F, increment: i64) -> i64
        => |c| { c.key(key).arg(field).arg(increment); }

    /// Increments the number in `field` of the hash at `key` by `increment` (any number:
    /// `2`, `0.5`); returns the new value.
    /// See <https://redis.io/commands/hincrbyfloat/>.
    "HINCRBYFLOAT" [] fn hincrbyfloat<K: ToArgs, F: ToArgs, N: Number>(key: K, field: F, increment: N) -> f64
        => |c| { c.key(key).arg(field); increment.write_number(c); }

    /// Returns the fields of the hash at `key`.
    /// See <https://redis.io/commands/hkeys/>.
    "HKEYS" [READONLY | CACHEABLE] fn hkeys<K: ToArgs>(key: K) -> Vec<Bytes> => |c| { c.key(key); }

    /// Returns the number of fields of the hash at `key`.
    /// See <https://redis.io/commands/hlen/>.
    "HLEN" [READONLY | CACHEABLE] fn hlen<K: ToArgs>(key: K) -> i64 => |c| { c.key(key); }

    /// Returns the values of `fields` in the hash at `key`, `None` for each missing one.
    /// See <https://redis.io/commands/hmget/>.
    "HMGET" [READONLY | CACHEABLE] fn hmget<K: ToArgs, F: ToArgs>(key: K, fields: F) -> Vec<Option<Bytes>> => |c| { c.key(key).arg(fields); }

    /// Sets many fields from field/value pairs (deprecated: `hset_multiple`).
    /// See <https://redis.io/commands/hmset/>.
    "HMSET" [] fn hmset<K: ToArgs, I: ToArgs>(key: K, items: I) -> bool => |c| { c.key(key).arg(items); }

    /// Returns a random field of the hash at `key`, or `None` if it is empty.
    /// See <https://redis.io/commands/hrandfield/>.
    "HRANDFIELD" [READONLY] fn hrandfield<K: ToArgs>(key: K) -> Option<Bytes> => |c| { c.key(key); }

    /// Returns up to `count` distinct random fields, or `-count` fields that may repeat
    /// when `count` is negative.
    /// See <https://redis.io/commands/hrandfield/>.
    "HRANDFIELD" [READONLY] fn hrandfield_count<K: ToArgs>(key: K, count: i64) -> Vec<Bytes> => |c| { c.key(key).arg(count); }

    /// Returns random fields as `hrandfield_count` does, each with its value
    /// (`WITHVALUES`).
    /// See <https://redis.io/commands/hrandfield/>.
    "HRANDFIELD" [READONLY] fn hrandfield_withvalues<K: ToArgs>(key: K, count: i64) -> Vec<(Bytes, Bytes)>
        => |c| { c.key(key).arg(count).arg("WITHVALUES"); }

    /// Sets `field` to `value` in the hash at `key`; returns 1 if the field is new.
    /// Several fields at once: `hset_multiple`.
    /// See <https://redis.io/commands/hset/>.
    "HSET" [] fn hset<K: ToArgs, F: ToArgs, V: ToArgs>(key: K, field: F, value: V) -> i64
        => |c| { c.key(key).arg(field).arg(value); }

    /// Sets many fields from field/value pairs (`[("f1", 1), ("f2", 2)]`); returns how
    /// many fields are new.
    /// See <https://redis.io/commands/hset/>.
    "HSET" [] fn hset_multiple<K: ToArgs, I: ToArgs>(key: K, items: I) -> i64 => |c| { c.key(key).arg(items); }

    /// Sets `field` to `value` only if the field does not exist; true when it set it.
    /// See <https://redis.io/commands/hsetnx/>.
    "HSETNX" [] fn hsetnx<K: ToArgs, F: ToArgs, V: ToArgs>(key: K, field: F, value: V) -> bool
        => |c| { c.key(key).arg(field).arg(value); }

    /// Returns the length of the value of `field` (0 when missing).
    /// See <https://redis.io/commands/hstrlen/>.
    "HSTRLEN" [READONLY | CACHEABLE] fn hstrlen<K: ToArgs, F: ToArgs>(key: K, field: F) -> i64 => |c| { c.key(key).arg(field); }

    /// Returns the values of the hash at `key`.
    /// See <https://redis.io/commands/hvals/>.
    "HVALS" [READONLY | CACHEABLE] fn hvals<K: ToArgs>(key: K) -> Vec<Bytes> => |c| { c.key(key); }
}
