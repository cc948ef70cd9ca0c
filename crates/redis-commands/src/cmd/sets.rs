//! Commands on sets.

use crate::ToArgs;

commands! {
    /// Commands on sets. See <https://redis.io/commands/?group=set>.
    pub trait SetCommands, table SETS;

    /// Adds `members` to the set at `key`; returns how many were new.
    /// See <https://redis.io/commands/sadd/>.
    "SADD" [] fn sadd<K: ToArgs, M: ToArgs>(key: K, members: M) -> i64 => |c| { c.key(key).arg(members); }
}
