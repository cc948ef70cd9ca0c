//! Generic commands on keys of any type.

use crate::ToArgs;

commands! {
    /// Commands on keys of any type. See <https://redis.io/commands/?group=generic>.
    pub trait KeyCommands, table KEYS;

    /// Deletes `keys` and returns how many existed.
    /// See <https://redis.io/commands/del/>.
    "DEL" [] fn del<K: ToArgs>(keys: K) -> i64 => |c| { c.key(keys); }

    /// Returns how many of `keys` exist (a key named twice counts twice).
    /// See <https://redis.io/commands/exists/>.
    "EXISTS" [READONLY] fn exists<K: ToArgs>(keys: K) -> i64 => |c| { c.key(keys); }
}
