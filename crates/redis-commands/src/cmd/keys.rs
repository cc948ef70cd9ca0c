//! Generic commands on keys of any type.

use crate::time::{millis, secs, unix_millis, unix_secs};
use crate::{
    CopyOptions, ExpireCondition, KeyType, MigrateOptions, RestoreOptions, SortOptions, ToArgs,
};
use bytes::Bytes;
use std::time::{Duration, SystemTime};

commands! {
    /// Commands on keys of any type. See <https://redis.io/commands/?group=generic>.
    pub trait KeyCommands, table KEYS;

    /// Copies the value at `source` to `destination`; true when it copied.
    /// See <https://redis.io/commands/copy/>.
    "COPY" [] fn copy<S: ToArgs, D: ToArgs>(source: S, destination: D, options: CopyOptions) -> bool
        => |c| { c.key(source).key(destination).arg(options); }

    /// Deletes `keys` and returns how many existed.
    /// See <https://redis.io/commands/del/>.
    "DEL" [SPLIT | MERGE_SUM] fn del<K: ToArgs>(keys: K) -> i64 => |c| { c.key(keys); }

    /// Returns the value at `key` serialized for RESTORE, or `None` if it does not exist.
    /// See <https://redis.io/commands/dump/>.
    "DUMP" [READONLY] fn dump<K: ToArgs>(key: K) -> Option<Bytes> => |c| { c.key(key); }

    /// Returns how many of `keys` exist (a key named twice counts twice).
    /// See <https://redis.io/commands/exists/>.
    "EXISTS" [READONLY | CACHEABLE | SPLIT | MERGE_SUM] fn exists<K: ToArgs>(keys: K) -> i64 => |c| { c.key(keys); }

    /// Makes `key` expire after `ttl` (sent in seconds, rounded up; `Duration::ZERO`
    /// deletes it); true when the expiry was set.
    /// See <https://redis.io/commands/expire/>.
    "EXPIRE" [] fn expire<K: ToArgs>(key: K, ttl: Duration) -> bool => |c| { c.key(key).arg(secs(ttl)); }

    /// Makes `key` expire after `ttl` (seconds, rounded up) if `condition` holds; true
    /// when it was set.
    /// See <https://redis.io/commands/expire/>.
    "EXPIRE" [] fn expire_options<K: ToArgs>(key: K, ttl: Duration, condition: ExpireCondition) -> bool
        => |c| { c.key(key).arg(secs(ttl)).arg(condition); }

    /// Makes `key` expire at the moment `at` (sent as Unix seconds, rounded up); true when
    /// it was set.
    /// See <https://redis.io/commands/expireat/>.
    "EXPIREAT" [] fn expireat<K: ToArgs>(key: K, at: SystemTime) -> bool => |c| { c.key(key).arg(unix_secs(at)); }

    /// Makes `key` expire at the moment `at` (Unix seconds) if `condition` holds.
    /// See <https://redis.io/commands/expireat/>.
    "EXPIREAT" [] fn expireat_options<K: ToArgs>(key: K, at: SystemTime, condition: ExpireCondition) -> bool
        => |c| { c.key(key).arg(unix_secs(at)).arg(condition); }

    /// Returns the Unix time in seconds at which `key` expires: -1 if it has no expiry,
    /// -2 if it does not exist.
    /// See <https://redis.io/commands/expiretime/>.
    "EXPIRETIME" [READONLY] fn expiretime<K: ToArgs>(key: K) -> i64 => |c| { c.key(key); }

    /// Returns the keys matching the glob-style `pattern` (blocks the server: prefer SCAN).
    /// See <https://redis.io/commands/keys/>.
    "KEYS" [READONLY | ALL_PRIMARIES | MERGE_CONCAT] fn keys<P: ToArgs>(pattern: P) -> Vec<Bytes> => |c| { c.arg(pattern); }

    /// Moves `key` to database `destination_db` of the server at `host`:`port`, waiting at
    /// most `timeout` (sent in milliseconds) for it; answers `"OK"`, or `"NOKEY"` if `key`
    /// does not exist.
    /// See <https://redis.io/commands/migrate/>.
    "MIGRATE" [] fn migrate<H: ToArgs, K: ToArgs>(host: H, port: u16, key: K, destination_db: i64, timeout: Duration, options: MigrateOptions) -> String
        => |c| { c.arg(host).arg(port).key(key).arg(destination_db).arg(millis(timeout)).arg(options); }

    /// Moves many `keys` at once as `migrate` does (`KEYS`); answers `"NOKEY"` if none
    /// exists.
    /// See <https://redis.io/commands/migrate/>.
    "MIGRATE" [] fn migrate_keys<H: ToArgs, K: ToArgs>(host: H, port: u16, keys: K, destination_db: i64, timeout: Duration, options: MigrateOptions) -> String
        => |c| { c.arg(host).arg(port).arg("").arg(destination_db).arg(millis(timeout)).arg(options).arg("KEYS").key(keys); }

    /// Moves `key` to database `db`; true when it moved (`MOVE`, named so because `move`
    /// is a Rust keyword).
    /// See <https://redis.io/commands/move/>.
    "MOVE" [] fn move_key<K: ToArgs>(key: K, db: i64) -> bool => |c| { c.key(key).arg(db); }

    /// Returns the internal encoding of the value at `key`, or `None` if it does not exist.
    /// See <https://redis.io/commands/object-encoding/>.
    "OBJECT ENCODING" [READONLY] fn object_encoding<K: ToArgs>(key: K) -> Option<String> => |c| { c.key(key); }

    /// Returns the access frequency counter of `key` (needs an LFU eviction policy).
    /// See <https://redis.io/commands/object-freq/>.
    "OBJECT FREQ" [READONLY] fn object_freq<K: ToArgs>(key: K) -> Option<i64> => |c| { c.key(key); }

    /// Returns the help text of OBJECT, one line per entry.
    /// See <https://redis.io/commands/object-help/>.
    "OBJECT HELP" [] fn object_help() -> Vec<String> => |_c| {}

    /// Returns how many seconds `key` has been idle (needs an LRU eviction policy or none).
    /// See <https://redis.io/commands/object-idletime/>.
    "OBJECT IDLETIME" [READONLY] fn object_idletime<K: ToArgs>(key: K) -> Option<i64> => |c| { c.key(key); }

    /// Returns the reference count of the value at `key`.
    /// See <https://redis.io/commands/object-refcount/>.
    "OBJECT REFCOUNT" [READONLY] fn object_refcount<K: ToArgs>(key: K) -> Option<i64> => |c| { c.key(key); }

    /// Removes the expiry of `key`; true when it had one.
    /// See <https://redis.io/commands/persist/>.
    "PERSIST" [] fn persist<K: ToArgs>(key: K) -> bool => |c| { c.key(key); }

    /// Makes `key` expire after `ttl` (sent in milliseconds, rounded up;
    /// `Duration::ZERO` deletes it); true when the expiry was set.
    /// See <https://redis.io/commands/pexpire/>.
    "PEXPIRE" [] fn pexpire<K: ToArgs>(key: K, ttl: Duration) -> bool => |c| { c.key(key).arg(millis(ttl)); }

    /// Makes `key` expire after `ttl` (milliseconds, rounded up) if `condition` holds.
    /// See <https://redis.io/commands/pexpire/>.
    "PEXPIRE" [] fn pexpire_options<K: ToArgs>(key: K, ttl: Duration, condition: ExpireCondition) -> bool
        => |c| { c.key(key).arg(millis(ttl)).arg(condition); }

    /// Makes `key` expire at the moment `at` (sent as Unix milliseconds, rounded up).
    /// See <https://redis.io/commands/pexpireat/>.
    "PEXPIREAT" [] fn pexpireat<K: ToArgs>(key: K, at: SystemTime) -> bool
        => |c| { c.key(key).arg(unix_millis(at)); }

    /// Makes `key` expire at the moment `at` (Unix milliseconds) if `condition` holds.
    /// See <https://redis.io/commands/pexpireat/>.
    "PEXPIREAT" [] fn pexpireat_options<K: ToArgs>(key: K, at: SystemTime, condition: ExpireCondition) -> bool
        => |c| { c.key(key).arg(unix_millis(at)).arg(condition); }

    /// Returns the Unix time in milliseconds at which `key` expires: -1 if it has no
    /// expiry, -2 if it does not exist.
    /// See <https://redis.io/commands/pexpiretime/>.
    "PEXPIRETIME" [READONLY] fn pexpiretime<K: ToArgs>(key: K) -> i64 => |c| { c.key(key); }

    /// Returns how long `key` has left, in milliseconds, telling a key without expiry
    /// from a missing one (see [`PTtl`](crate::PTtl)).
    /// See <https://redis.io/commands/pttl/>.
    "PTTL" [READONLY] fn pttl<K: ToArgs>(key: K) -> crate::PTtl => |c| { c.key(key); }

    /// Returns a random key of the database, or `None` if it is empty.
    /// See <https://redis.io/commands/randomkey/>.
    "RANDOMKEY" [READONLY] fn randomkey() -> Option<Bytes> => |_c| {}

    /// Renames `key` to `newkey`, overwriting it.
    /// See <https://redis.io/commands/rename/>.
    "RENAME" [] fn rename<K: ToArgs, N: ToArgs>(key: K, newkey: N) -> bool => |c| { c.key(key).key(newkey); }

    /// Renames `key` to `newkey` only if `newkey` does not exist; true when it renamed.
    /// See <https://redis.io/commands/renamenx/>.
    "RENAMENX" [] fn renamenx<K: ToArgs, N: ToArgs>(key: K, newkey: N) -> bool => |c| { c.key(key).key(newkey); }

    /// Creates `key` from a DUMP payload, expiring after `ttl` (`None`: never; sent in
    /// milliseconds, rounded up); [`RestoreOptions::expire_at`](crate::RestoreOptions::expire_at)
    /// gives a moment instead (`ABSTTL`).
    /// See <https://redis.io/commands/restore/>.
    "RESTORE" [] fn restore<K: ToArgs, S: ToArgs>(key: K, ttl: Option<Duration>, serialized_value: S, options: RestoreOptions) -> bool
        => |c| {
            let ttl = match options.expire_at {
                Some(at) => unix_millis(at),
                None => ttl.map_or(0, |t| millis(t).max(1)),
            };
            c.key(key).arg(ttl).arg(serialized_value).arg(options);
        }

    /// Returns the elements of the list, set or sorted set at `key`, sorted; `None` for
    /// each GET pattern naming a missing key.
    /// See <https://redis.io/commands/sort/>.
    "SORT" [] fn sort<K: ToArgs>(key: K, options: SortOptions) -> Vec<Option<Bytes>> => |c| { c.key(key).arg(options); }

    /// Sorts like `sort` and stores the result as a list at `destination`; returns its
    /// length.
    /// See <https://redis.io/commands/sort/>.
    "SORT" [] fn sort_store<K: ToArgs, D: ToArgs>(key: K, options: SortOptions, destination: D) -> i64
        => |c| { c.key(key).arg(options).arg("STORE").key(destination); }

    /// The read-only SORT, safe on replicas.
    /// See <https://redis.io/commands/sort_ro/>.
    "SORT_RO" [READONLY] fn sort_ro<K: ToArgs>(key: K, options: SortOptions) -> Vec<Option<Bytes>> => |c| { c.key(key).arg(options); }

    /// Updates the last access time of `keys`; returns how many exist.
    /// See <https://redis.io/commands/touch/>.
    "TOUCH" [READONLY | SPLIT | MERGE_SUM] fn touch<K: ToArgs>(keys: K) -> i64 => |c| { c.key(keys); }

    /// Returns how long `key` has left, in whole seconds, telling a key without expiry
    /// from a missing one (see [`Ttl`](crate::Ttl)).
    /// See <https://redis.io/commands/ttl/>.
    "TTL" [READONLY] fn ttl<K: ToArgs>(key: K) -> crate::Ttl => |c| { c.key(key); }

    /// Returns the type of the value at `key` (`TYPE`, named so because `type` is a Rust
    /// keyword).
    /// See <https://redis.io/commands/type/>.
    "TYPE" [READONLY | CACHEABLE] fn key_type<K: ToArgs>(key: K) -> KeyType => |c| { c.key(key); }

    /// Deletes `keys`, reclaiming their memory in the background; returns how many existed.
    /// See <https://redis.io/commands/unlink/>.
    "UNLINK" [SPLIT | MERGE_SUM] fn unlink<K: ToArgs>(keys: K) -> i64 => |c| { c.key(keys); }
}
