//! The cursor commands SCAN, SSCAN, HSCAN and ZSCAN, one page per call; the lazy
//! iterators over them are built on [`ScanState`](crate::ScanState).

use crate::{ScanOptions, ToArgs};
use bytes::Bytes;

commands! {
    /// Cursor commands, one page per call. See <https://redis.io/commands/scan/>.
    pub trait ScanCommands, table SCAN;

    /// Returns the next cursor (0 when the walk is complete) and a page of key names.
    /// See <https://redis.io/commands/scan/>.
    "SCAN" [READONLY] fn scan(cursor: u64, options: ScanOptions) -> (u64, Vec<Bytes>)
        => |c| { c.arg(cursor).arg(options); }

    /// Returns the next cursor and a page of members of the set at `key`.
    /// See <https://redis.io/commands/sscan/>.
    "SSCAN" [READONLY] fn sscan<K: ToArgs>(key: K, cursor: u64, options: ScanOptions) -> (u64, Vec<Bytes>)
        => |c| { c.key(key).arg(cursor).arg(options); }

    /// Returns the next cursor and a page of `(field, value)` pairs of the hash at `key`.
    /// See <https://redis.io/commands/hscan/>.
    "HSCAN" [READONLY] fn hscan<K: ToArgs>(key: K, cursor: u64, options: ScanOptions) -> (u64, Vec<(Bytes, Bytes)>)
        => |c| { c.key(key).arg(cursor).arg(options); }

    /// Returns the next cursor and a page of `(member, score)` pairs of the sorted set at
    /// `key`.
    /// See <https://redis.io/commands/zscan/>.
    "ZSCAN" [READONLY] fn zscan<K: ToArgs>(key: K, cursor: u64, options: ScanOptions) -> (u64, Vec<(Bytes, f64)>)
        => |c| { c.key(key).arg(cursor).arg(options); }
}
