//! Commands on strings as arrays of bits.

use crate::{BitOffset, BitOp, BitUnit, BitfieldOps, BitfieldType, ToArgs};

commands! {
    /// Commands on strings as bitmaps. See <https://redis.io/commands/?group=bitmap>.
    pub trait BitmapCommands, table BITMAPS;

    /// Returns how many bits are set in the string at `key`.
    /// See <https://redis.io/commands/bitcount/>.
    "BITCOUNT" [READONLY | CACHEABLE] fn bitcount<K: ToArgs>(key: K) -> i64 => |c| { c.key(key); }

    /// Returns how many bits are set between `start` and `end` inclusive, counted in
    /// `unit`s (negative positions count from the end).
    /// See <https://redis.io/commands/bitcount/>.
    "BITCOUNT" [READONLY | CACHEABLE] fn bitcount_range<K: ToArgs>(key: K, start: i64, end: i64, unit: BitUnit) -> i64
        => |c| { c.key(key).arg(start).arg(end).arg(unit); }

    /// Runs the `ops` (GET, SET, INCRBY, OVERFLOW) on integer fields of the string at
    /// `key`; one entry per GET, SET or INCRBY, `None` where OVERFLOW FAIL stopped it.
    /// See <https://redis.io/commands/bitfield/>.
    "BITFIELD" [] fn bitfield<K: ToArgs>(key: K, ops: BitfieldOps) -> Vec<Option<i64>> => |c| { c.key(key).arg(ops); }

    /// Reads integer fields of the string at `key`: one GET per `(type, offset)`.
    /// See <https://redis.io/commands/bitfield_ro/>.
    "BITFIELD_RO" [READONLY | CACHEABLE] fn bitfield_ro<K: ToArgs>(key: K, gets: &[(BitfieldType, BitOffset)]) -> Vec<i64>
        => |c| {
            c.key(key);
            for (ty, offset) in gets {
                c.arg("GET").arg(ty).arg(offset);
            }
        }

    /// Stores the bitwise `operation` of the strings at `keys` in `destkey`; returns the
    /// length of the result.
    /// See <https://redis.io/commands/bitop/>.
    "BITOP" [] fn bitop<D: ToArgs, K: ToArgs>(operation: BitOp, destkey: D, keys: K) -> i64
        => |c| { c.arg(operation).key(destkey).key(keys); }

    /// Returns the position of the first bit set to `bit` in the string at `key`, or -1.
    /// See <https://redis.io/commands/bitpos/>.
    "BITPOS" [READONLY | CACHEABLE] fn bitpos<K: ToArgs>(key: K, bit: bool) -> i64 => |c| { c.key(key).arg(u8::from(bit) as i64); }

    /// Returns the position of the first bit set to `bit` between `start` and `end`
    /// inclusive, counted in `unit`s, or -1.
    /// See <https://redis.io/commands/bitpos/>.
    "BITPOS" [READONLY | CACHEABLE] fn bitpos_range<K: ToArgs>(key: K, bit: bool, start: i64, end: i64, unit: BitUnit) -> i64
        => |c| { c.key(key).arg(u8::from(bit) as i64).arg(start).arg(end).arg(unit); }

    /// Returns the bit at `offset` of the string at `key` (0 past its end).
    /// See <https://redis.io/commands/getbit/>.
    "GETBIT" [READONLY | CACHEABLE] fn getbit<K: ToArgs>(key: K, offset: u64) -> i64 => |c| { c.key(key).arg(offset); }

    /// Sets the bit at `offset` of the string at `key` to `value` and returns the old bit.
    /// See <https://redis.io/commands/setbit/>.
    "SETBIT" [] fn setbit<K: ToArgs>(key: K, offset: u64, value: bool) -> i64
        => |c| { c.key(key).arg(offset).arg(u8::from(value) as i64); }
}
