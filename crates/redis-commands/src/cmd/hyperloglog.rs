//! HyperLogLog commands: approximate counting of distinct elements.

use crate::ToArgs;

commands! {
    /// HyperLogLog commands. See <https://redis.io/commands/?group=hyperloglog>.
    pub trait HyperLogLogCommands, table HYPERLOGLOG;

    /// Adds `elements` to the HyperLogLog at `key`; true when its estimate changed.
    /// See <https://redis.io/commands/pfadd/>.
    "PFADD" [] fn pfadd<K: ToArgs, E: ToArgs>(key: K, elements: E) -> bool => |c| { c.key(key).arg(elements); }

    /// Returns the estimated number of distinct elements in the union of the
    /// HyperLogLogs at `keys`.
    /// See <https://redis.io/commands/pfcount/>.
    "PFCOUNT" [READONLY] fn pfcount<K: ToArgs>(keys: K) -> i64 => |c| { c.key(keys); }

    /// Merges the HyperLogLogs at `sourcekeys` into `destkey`.
    /// See <https://redis.io/commands/pfmerge/>.
    "PFMERGE" [] fn pfmerge<D: ToArgs, K: ToArgs>(destkey: D, sourcekeys: K) -> bool => |c| { c.key(destkey).key(sourcekeys); }
}
