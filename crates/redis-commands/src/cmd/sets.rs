//! Commands on sets.

use crate::options::write_numkeys;
use crate::ToArgs;
use bytes::Bytes;
use std::collections::HashSet;

commands! {
    /// Commands on sets. See <https://redis.io/commands/?group=set>.
    pub trait SetCommands, table SETS;

    /// Adds `members` to the set at `key`; returns how many were new.
    /// See <https://redis.io/commands/sadd/>.
    "SADD" [] fn sadd<K: ToArgs, M: ToArgs>(key: K, members: M) -> i64 => |c| { c.key(key).arg(members); }

    /// Returns the number of members of the set at `key`.
    /// See <https://redis.io/commands/scard/>.
    "SCARD" [READONLY | CACHEABLE] fn scard<K: ToArgs>(key: K) -> i64 => |c| { c.key(key); }

    /// Returns the members of the first set at `keys` that are in none of the others.
    /// See <https://redis.io/commands/sdiff/>.
    "SDIFF" [READONLY] fn sdiff<K: ToArgs>(keys: K) -> HashSet<Bytes> => |c| { c.key(keys); }

    /// Stores the difference of the sets at `keys` in `destination`; returns its size.
    /// See <https://redis.io/commands/sdiffstore/>.
    "SDIFFSTORE" [] fn sdiffstore<D: ToArgs, K: ToArgs>(destination: D, keys: K) -> i64 => |c| { c.key(destination).key(keys); }

    /// Returns the members common to every set at `keys`.
    /// See <https://redis.io/commands/sinter/>.
    "SINTER" [READONLY] fn sinter<K: ToArgs>(keys: K) -> HashSet<Bytes> => |c| { c.key(keys); }

    /// Returns the size of the intersection of the sets at `keys`, counting at most to
    /// `limit` (0: no limit).
    /// See <https://redis.io/commands/sintercard/>.
    "SINTERCARD" [READONLY] fn sintercard<K: ToArgs>(keys: K, limit: u64) -> i64
        => |c| { write_numkeys(c, keys); c.arg("LIMIT").arg(limit); }

    /// Stores the intersection of the sets at `keys` in `destination`; returns its size.
    /// See <https://redis.io/commands/sinterstore/>.
    "SINTERSTORE" [] fn sinterstore<D: ToArgs, K: ToArgs>(destination: D, keys: K) -> i64 => |c| { c.key(destination).key(keys); }

    /// True if `member` is in the set at `key`.
    /// See <https://redis.io/commands/sismember/>.
    "SISMEMBER" [READONLY | CACHEABLE] fn sismember<K: ToArgs, M: ToArgs>(key: K, member: M) -> bool => |c| { c.key(key).arg(member); }

    /// Returns the members of the set at `key`.
    /// See <https://redis.io/commands/smembers/>.
    "SMEMBERS" [READONLY | CACHEABLE] fn smembers<K: ToArgs>(key: K) -> HashSet<Bytes> => |c| { c.key(key); }

    /// For each of `members`, whether it is in the set at `key`.
    /// See <https://redis.io/commands/smismember/>.
    "SMISMEMBER" [READONLY | CACHEABLE] fn smismember<K: ToArgs, M: ToArgs>(key: K, members: M) -> Vec<bool> => |c| { c.key(key).arg(members); }

    /// Moves `member` from the set at `source` to the one at `destination`; true when it
    /// was in `source`.
    /// See <https://redis.io/commands/smove/>.
    "SMOVE" [] fn smove<S: ToArgs, D: ToArgs, M: ToArgs>(source: S, destination: D, member: M) -> bool
        => |c| { c.key(source).key(destination).arg(member); }

    /// Removes and returns a random member of the set at `key`, or `None` if it is empty.
    /// See <https://redis.io/commands/spop/>.
    "SPOP" [] fn spop<K: ToArgs>(key: K) -> Option<Bytes> => |c| { c.key(key); }

    /// Removes and returns up to `count` random members of the set at `key`.
    /// See <https://redis.io/commands/spop/>.
    "SPOP" [] fn spop_count<K: ToArgs>(key: K, count: u64) -> Vec<Bytes> => |c| { c.key(key).arg(count); }

    /// Returns a random member of the set at `key`, or `None` if it is empty.
    /// See <https://redis.io/commands/srandmember/>.
    "SRANDMEMBER" [READONLY] fn srandmember<K: ToArgs>(key: K) -> Option<Bytes> => |c| { c.key(key); }

    /// Returns up to `count` distinct random members, or `-count` members that may repeat
    /// when `count` is negative.
    /// See <https://redis.io/commands/srandmember/>.
    "SRANDMEMBER" [READONLY] fn srandmember_count<K: ToArgs>(key: K, count: i64) -> Vec<Bytes> => |c| { c.key(key).arg(count); }

    /// Removes `members` from the set at `key`; returns how many were there.
    /// See <https://redis.io/commands/srem/>.
    "SREM" [] fn srem<K: ToArgs, M: ToArgs>(key: K, members: M) -> i64 => |c| { c.key(key).arg(members); }

    /// Returns the members of any of the sets at `keys`.
    /// See <https://redis.io/commands/sunion/>.
    "SUNION" [READONLY] fn sunion<K: ToArgs>(keys: K) -> HashSet<Bytes> => |c| { c.key(keys); }

    /// Stores the union of the sets at `keys` in `destination`; returns its size.
    /// See <https://redis.io/commands/sunionstore/>.
    "SUNIONSTORE" [] fn sunionstore<D: ToArgs, K: ToArgs>(destination: D, keys: K) -> i64 => |c| { c.key(destination).key(keys); }
}
