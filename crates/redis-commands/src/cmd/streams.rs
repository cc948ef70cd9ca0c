//! Commands on streams, consumer groups included.
//!
//! Entry IDs are byte strings (`"1700000000000-0"`, `"*"`, `"$"`, `">"`, `"-"`, `"+"`);
//! entries come back as [`StreamEntry`] values.

use crate::time::millis;
use crate::{
    PendingEntry, StreamConsumerInfo, StreamEntry, StreamGroupInfo, StreamInfo, StreamInfoFull,
    StreamTrim, ToArgs, XAddOptions, XAutoClaim, XAutoClaimJustId, XClaimOptions,
    XGroupCreateOptions, XPendingOptions, XPendingSummary, XReadGroupOptions, XReadOptions,
    XSetIdOptions,
};
use bytes::Bytes;
use std::time::Duration;

commands! {
    /// Commands on streams. See <https://redis.io/commands/?group=stream>.
    pub trait StreamCommands, table STREAMS;

    /// Appends an entry with `fields` (field/value pairs) under `id` (`"*"`: generated);
    /// returns its ID.
    /// See <https://redis.io/commands/xadd/>.
    "XADD" [] fn xadd<K: ToArgs, I: ToArgs, F: ToArgs>(key: K, id: I, fields: F) -> Bytes
        => |c| { c.key(key).arg(id).arg(fields); }

    /// `XADD` with `NOMKSTREAM` and trimming; `None` when `NOMKSTREAM` found no stream.
    /// See <https://redis.io/commands/xadd/>.
    "XADD" [] fn xadd_options<K: ToArgs, I: ToArgs, F: ToArgs>(key: K, options: XAddOptions, id: I, fields: F) -> Option<Bytes>
        => |c| { c.key(key).arg(options).arg(id).arg(fields); }

    /// Returns the number of entries.
    /// See <https://redis.io/commands/xlen/>.
    "XLEN" [READONLY | CACHEABLE] fn xlen<K: ToArgs>(key: K) -> i64 => |c| { c.key(key); }

    /// Returns the entries with IDs from `start` to `end` (`"-"`, `"+"`, `"("` for
    /// exclusive), at most `count` when given.
    /// See <https://redis.io/commands/xrange/>.
    "XRANGE" [READONLY | CACHEABLE] fn xrange<K: ToArgs, S: ToArgs, E: ToArgs>(key: K, start: S, end: E, count: Option<u64>) -> Vec<StreamEntry>
        => |c| {
            c.key(key).arg(start).arg(end);
            if let Some(n) = count {
                c.arg("COUNT").arg(n);
            }
        }

    /// Returns the entries with IDs from `end` down to `start`, newest first.
    /// See <https://redis.io/commands/xrevrange/>.
    "XREVRANGE" [READONLY | CACHEABLE] fn xrevrange<K: ToArgs, E: ToArgs, S: ToArgs>(key: K, end: E, start: S, count: Option<u64>) -> Vec<StreamEntry>
        => |c| {
            c.key(key).arg(end).arg(start);
            if let Some(n) = count {
                c.arg("COUNT").arg(n);
            }
        }

    /// Deletes the entries `ids`; returns how many existed.
    /// See <https://redis.io/commands/xdel/>.
    "XDEL" [] fn xdel<K: ToArgs, I: ToArgs>(key: K, ids: I) -> i64 => |c| { c.key(key).arg(ids); }

    /// Trims the stream; returns how many entries were removed.
    /// See <https://redis.io/commands/xtrim/>.
    "XTRIM" [] fn xtrim<K: ToArgs>(key: K, trim: StreamTrim) -> i64 => |c| { c.key(key).arg(trim); }

    /// Reads entries after `ids` from the streams at `keys` (one ID per key; `"$"` for
    /// only new ones), waiting when the options say `BLOCK`. Returns each stream that had
    /// entries with them; empty when none had any before the wait ended.
    /// See <https://redis.io/commands/xread/>.
    "XREAD" [READONLY] fn xread<K: ToArgs, I: ToArgs>(options: XReadOptions, keys: K, ids: I) -> Vec<(Bytes, Vec<StreamEntry>)>
        => |c| { c.arg(options).arg("STREAMS").key(keys).arg(ids); }

    /// Reads entries for `consumer` of `group` from the streams at `keys` (`">"`: never
    /// delivered to the group; an ID: this consumer's pending history after it).
    /// See <https://redis.io/commands/xreadgroup/>.
    "XREADGROUP" [] fn xreadgroup<G: ToArgs, C: ToArgs, K: ToArgs, I: ToArgs>(group: G, consumer: C, options: XReadGroupOptions, keys: K, ids: I) -> Vec<(Bytes, Vec<StreamEntry>)>
        => |c| { c.arg("GROUP").arg(group).arg(consumer).arg(options).arg("STREAMS").key(keys).arg(ids); }

    /// Creates consumer group `group` starting after `id` (`"$"`: only new entries).
    /// See <https://redis.io/commands/xgroup-create/>.
    "XGROUP CREATE" [] fn xgroup_create<K: ToArgs, G: ToArgs, I: ToArgs>(key: K, group: G, id: I, options: XGroupCreateOptions) -> ()
        => |c| { c.key(key).arg(group).arg(id).arg(options); }

    /// Creates `consumer` in `group`; false if it existed.
    /// See <https://redis.io/commands/xgroup-createconsumer/>.
    "XGROUP CREATECONSUMER" [] fn xgroup_createconsumer<K: ToArgs, G: ToArgs, C: ToArgs>(key: K, group: G, consumer: C) -> bool
        => |c| { c.key(key).arg(group).arg(consumer); }

    /// Deletes `consumer` from `group`; returns how many entries it had pending.
    /// See <https://redis.io/commands/xgroup-delconsumer/>.
    "XGROUP DELCONSUMER" [] fn xgroup_delconsumer<K: ToArgs, G: ToArgs, C: ToArgs>(key: K, group: G, consumer: C) -> i64
        => |c| { c.key(key).arg(group).arg(consumer); }

    /// Destroys `group`; false if it did not exist.
    /// See <https://redis.io/commands/xgroup-destroy/>.
    "XGROUP DESTROY" [] fn xgroup_destroy<K: ToArgs, G: ToArgs>(key: K, group: G) -> bool
        => |c| { c.key(key).arg(group); }

    /// Sets `group`'s last delivered ID to `id`, and its read counter when given.
    /// See <https://redis.io/commands/xgroup-setid/>.
    "XGROUP SETID" [] fn xgroup_setid<K: ToArgs, G: ToArgs, I: ToArgs>(key: K, group: G, id: I, entries_read: Option<i64>) -> ()
        => |c| {
            c.key(key).arg(group).arg(id);
            if let Some(n) = entries_read {
                c.arg("ENTRIESREAD").arg(n);
            }
        }

    /// Acknowledges `ids` for `group`; returns how many were pending.
    /// See <https://redis.io/commands/xack/>.
    "XACK" [] fn xack<K: ToArgs, G: ToArgs, I: ToArgs>(key: K, group: G, ids: I) -> i64
        => |c| { c.key(key).arg(group).arg(ids); }

    /// Summarises `group`'s pending entries.
    /// See <https://redis.io/commands/xpending/>.
    "XPENDING" [READONLY] fn xpending<K: ToArgs, G: ToArgs>(key: K, group: G) -> XPendingSummary
        => |c| { c.key(key).arg(group); }

    /// Lists up to `count` of `group`'s pending entries with IDs from `start` to `end`,
    /// filtered by idle time and consumer.
    /// See <https://redis.io/commands/xpending/>.
    "XPENDING" [READONLY] fn xpending_range<K: ToArgs, G: ToArgs, S: ToArgs, E: ToArgs>(key: K, group: G, start: S, end: E, count: u64, options: XPendingOptions) -> Vec<PendingEntry>
        => |c| {
            c.key(key).arg(group);
            if let Some(idle) = options.idle {
                c.arg("IDLE").arg(millis(idle));
            }
            c.arg(start).arg(end).arg(count).arg(&options.consumer);
        }

    /// Gives `consumer` the pending `ids` idle for at least `min_idle`; returns the
    /// entries claimed.
    /// See <https://redis.io/commands/xclaim/>.
    "XCLAIM" [] fn xclaim<K: ToArgs, G: ToArgs, C: ToArgs, I: ToArgs>(key: K, group: G, consumer: C, min_idle: Duration, ids: I, options: XClaimOptions) -> Vec<StreamEntry>
        => |c| { c.key(key).arg(group).arg(consumer).arg(millis(min_idle)).arg(ids).arg(options); }

    /// As `xclaim`, returning only the claimed IDs (`JUSTID`), without
    /// counting a delivery.
    /// See <https://redis.io/commands/xclaim/>.
    "XCLAIM" [] fn xclaim_justid<K: ToArgs, G: ToArgs, C: ToArgs, I: ToArgs>(key: K, group: G, consumer: C, min_idle: Duration, ids: I, options: XClaimOptions) -> Vec<Bytes>
        => |c| { c.key(key).arg(group).arg(consumer).arg(millis(min_idle)).arg(ids).arg(options).arg("JUSTID"); }

    /// Gives `consumer` up to `count` (server default 100) pending entries idle for at
    /// least `min_idle`, scanning from `start`.
    /// See <https://redis.io/commands/xautoclaim/>.
    "XAUTOCLAIM" [] fn xautoclaim<K: ToArgs, G: ToArgs, C: ToArgs, S: ToArgs>(key: K, group: G, consumer: C, min_idle: Duration, start: S, count: Option<u64>) -> XAutoClaim
        => |c| {
            c.key(key).arg(group).arg(consumer).arg(millis(min_idle)).arg(start);
            if let Some(n) = count {
                c.arg("COUNT").arg(n);
            }
        }

    /// As `xautoclaim`, returning only the claimed IDs (`JUSTID`).
    /// See <https://redis.io/commands/xautoclaim/>.
    "XAUTOCLAIM" [] fn xautoclaim_justid<K: ToArgs, G: ToArgs, C: ToArgs, S: ToArgs>(key: K, group: G, consumer: C, min_idle: Duration, start: S, count: Option<u64>) -> XAutoClaimJustId
        => |c| {
            c.key(key).arg(group).arg(consumer).arg(millis(min_idle)).arg(start);
            if let Some(n) = count {
                c.arg("COUNT").arg(n);
            }
            c.arg("JUSTID");
        }

    /// Returns the help text of XINFO, one line per entry.
    /// See <https://redis.io/commands/xinfo-help/>.
    "XINFO HELP" [] fn xinfo_help() -> Vec<String> => |_c| {}

    /// Returns the help text of XGROUP, one line per entry.
    /// See <https://redis.io/commands/xgroup-help/>.
    "XGROUP HELP" [] fn xgroup_help() -> Vec<String> => |_c| {}

    /// Describes the stream: length, IDs, first and last entries.
    /// See <https://redis.io/commands/xinfo-stream/>.
    "XINFO STREAM" [READONLY] fn xinfo_stream<K: ToArgs>(key: K) -> StreamInfo => |c| { c.key(key); }

    /// Describes the stream in full: entries, groups, pending lists and consumers, each
    /// list cut at `count` (server default 10, 0: all).
    /// See <https://redis.io/commands/xinfo-stream/>.
    "XINFO STREAM" [READONLY] fn xinfo_stream_full<K: ToArgs>(key: K, count: Option<u64>) -> StreamInfoFull
        => |c| {
            c.key(key).arg("FULL");
            if let Some(n) = count {
                c.arg("COUNT").arg(n);
            }
        }

    /// Describes each consumer group of the stream.
    /// See <https://redis.io/commands/xinfo-groups/>.
    "XINFO GROUPS" [READONLY] fn xinfo_groups<K: ToArgs>(key: K) -> Vec<StreamGroupInfo> => |c| { c.key(key); }

    /// Describes each consumer of `group`.
    /// See <https://redis.io/commands/xinfo-consumers/>.
    "XINFO CONSUMERS" [READONLY] fn xinfo_consumers<K: ToArgs, G: ToArgs>(key: K, group: G) -> Vec<StreamConsumerInfo>
        => |c| { c.key(key).arg(group); }

    /// Sets the stream's last generated ID (and its counters, when given).
    /// See <https://redis.io/commands/xsetid/>.
    "XSETID" [] fn xsetid<K: ToArgs, I: ToArgs>(key: K, last_id: I, options: XSetIdOptions) -> ()
        => |c| { c.key(key).arg(last_id).arg(options); }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Block, Flags};
    use std::time::Duration;

    #[test]
    fn xread_marks_stream_keys_and_blocks() {
        let t = xread(
            XReadOptions::default().block(Duration::from_secs(2)),
            ["s1", "s2"],
            ["0", "$"],
        );
        let words: Vec<_> = t.cmd.args().collect();
        assert_eq!(
            words,
            [
                &b"XREAD"[..],
                b"BLOCK",
                b"2000",
                b"STREAMS",
                b"s1",
                b"s2",
                b"0",
                b"$"
            ]
        );
        assert_eq!(t.cmd.keys().collect::<Vec<_>>(), [&b"s1"[..], b"s2"]);
        assert_eq!(
            t.cmd.blocking_timeout(),
            Block::For(Duration::from_millis(2000))
        );
        assert!(t.cmd.flags().contains(Flags::READONLY | Flags::BLOCKING));
        let plain = xread(XReadOptions::default(), "s", "0");
        assert_eq!(plain.cmd.blocking_timeout(), Block::No);
        assert!(!plain.cmd.flags().contains(Flags::BLOCKING));
    }

    #[test]
    fn xpending_range_puts_idle_first_and_consumer_last() {
        let t = xpending_range(
            "s",
            "g",
            "-",
            "+",
            10,
            XPendingOptions::default()
                .idle(Duration::from_millis(5))
                .consumer("c"),
        );
        let words: Vec<_> = t.cmd.args().collect();
        assert_eq!(
            words,
            [
                &b"XPENDING"[..],
                b"s",
                b"g",
                b"IDLE",
                b"5",
                b"-",
                b"+",
                b"10",
                b"c"
            ]
        );
    }
}
