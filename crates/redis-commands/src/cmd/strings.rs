//! Commands on string values (and the numbers stored in them).

use crate::{SetOptions, ToArgs};
use bytes::Bytes;

commands! {
    /// Commands on string values. See <https://redis.io/commands/?group=string>.
    pub trait StringCommands, table STRINGS;

    /// Returns the value of `key`, or `None` if it does not exist.
    /// See <https://redis.io/commands/get/>.
    "GET" [READONLY] fn get<K: ToArgs>(key: K) -> Option<Bytes> => |c| { c.key(key); }

    /// Sets `key` to `value`; true when it was set.
    /// See <https://redis.io/commands/set/>.
    "SET" [] fn set<K: ToArgs, V: ToArgs>(key: K, value: V) -> bool => |c| { c.key(key).arg(value); }

    /// Sets `key` to `value` with expiry and condition options; false when NX or XX
    /// prevented the write.
    /// See <https://redis.io/commands/set/>.
    "SET" [] fn set_options<K: ToArgs, V: ToArgs>(key: K, value: V, options: SetOptions) -> bool
        => |c| { c.key(key).arg(value).arg(options); }

    /// Increments the integer at `key` by one and returns the new value.
    /// See <https://redis.io/commands/incr/>.
    "INCR" [] fn incr<K: ToArgs>(key: K) -> i64 => |c| { c.key(key); }

    /// Increments the integer at `key` by `delta` and returns the new value.
    /// See <https://redis.io/commands/incrby/>.
    "INCRBY" [] fn incr_by<K: ToArgs>(key: K, delta: i64) -> i64 => |c| { c.key(key).arg(delta); }
}
