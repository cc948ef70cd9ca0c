//! Options and reply types of the stream commands: trimming, XADD/XREAD/XREADGROUP/XCLAIM
//! options, entries, pending summaries and the XINFO structs.
//!
//! Every reply type converts alike from RESP2 (flat arrays, numbers as bulk strings) and
//! RESP3 (maps, integers).

use crate::time::{millis, unix_millis};
use crate::{pairs, Cmd, FromValue, FromValueError, ToArgs};
use bytes::Bytes;
use resp_proto::Value;
use std::time::{Duration, SystemTime};

/// Whether trimming is exact (`=`) or may stop early at a node boundary (`~`), which is
/// much cheaper.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrimMode {
    /// `=`: trim exactly to the threshold.
    Exact,
    /// `~`: trim at least down to about the threshold, as the stream's layout allows.
    Approx,
}

/// How `XADD` and `XTRIM` trim a stream: `MAXLEN` or `MINID`, exact or approximate,
/// with an optional `LIMIT` on the work done.
///
/// ```
/// # use redis_commands as redis_client;
/// use redis_client::StreamTrim;
/// let keep_about_1000 = StreamTrim::maxlen(1000).approx().limit(100);
/// let drop_older = StreamTrim::minid("1700000000000-0");
/// # let _ = (keep_about_1000, drop_older);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "options do nothing until passed to a command"]
pub struct StreamTrim {
    threshold: TrimThreshold,
    mode: Option<TrimMode>,
    limit: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum TrimThreshold {
    MaxLen(u64),
    MinId(Bytes),
}

impl StreamTrim {
    /// Keep at most `len` entries (`MAXLEN len`).
    pub fn maxlen(len: u64) -> Self {
        Self::new(TrimThreshold::MaxLen(len))
    }

    /// Drop entries with IDs below `id` (`MINID id`).
    pub fn minid(id: impl AsRef<[u8]>) -> Self {
        Self::new(TrimThreshold::MinId(Bytes::copy_from_slice(id.as_ref())))
    }

    /// Trim exactly (`=`, the default).
    pub fn exact(mut self) -> Self {
        self.mode = Some(TrimMode::Exact);
        self
    }

    /// Trim approximately (`~`).
    pub fn approx(mut self) -> Self {
        self.mode = Some(TrimMode::Approx);
        self
    }

    /// Evict at most `count` entries (`LIMIT`; approximate trimming only).
    pub fn limit(mut self, count: u64) -> Self {
        self.limit = Some(count);
        self
    }

    fn new(threshold: TrimThreshold) -> Self {
        StreamTrim {
            threshold,
            mode: None,
            limit: None,
        }
    }
}

impl ToArgs for StreamTrim {
    fn write_args(&self, cmd: &mut Cmd) {
        cmd.arg(match self.threshold {
            TrimThreshold::MaxLen(_) => "MAXLEN",
            TrimThreshold::MinId(_) => "MINID",
        });
        match self.mode {
            Some(TrimMode::Exact) => {
                cmd.arg("=");
            }
            Some(TrimMode::Approx) => {
                cmd.arg("~");
            }
            None => {}
        }
        match &self.threshold {
            TrimThreshold::MaxLen(n) => cmd.arg(*n),
            TrimThreshold::MinId(id) => cmd.arg(id),
        };
        if let Some(n) = self.limit {
            cmd.arg("LIMIT").arg(n);
        }
    }
}

/// Options of `XADD`: `NOMKSTREAM` and trimming.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use = "options do nothing until passed to a command"]
pub struct XAddOptions {
    nomkstream: bool,
    trim: Option<StreamTrim>,
}

impl XAddOptions {
    /// Do not create the stream if it does not exist; the reply is then nil
    /// (`NOMKSTREAM`).
    pub fn nomkstream(mut self) -> Self {
        self.nomkstream = true;
        self
    }

    /// Trim the stream while adding.
    pub fn trim(mut self, trim: StreamTrim) -> Self {
        self.trim = Some(trim);
        self
    }
}

impl ToArgs for XAddOptions {
    fn write_args(&self, cmd: &mut Cmd) {
        if self.nomkstream {
            cmd.arg("NOMKSTREAM");
        }
        cmd.arg(&self.trim);
    }
}

/// Options of `XREAD`: `COUNT` and `BLOCK`.
///
/// ```
/// # use redis_commands as redis_client;
/// use redis_client::XReadOptions;
/// use std::time::Duration;
/// let wait_2s = XReadOptions::default().count(10).block(Duration::from_secs(2));
/// # let _ = wait_2s;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[must_use = "options do nothing until passed to a command"]
pub struct XReadOptions {
    pub(crate) count: Option<u64>,
    pub(crate) block: Option<Duration>,
}

impl XReadOptions {
    /// Return at most `count` entries per stream.
    pub fn count(mut self, count: u64) -> Self {
        self.count = Some(count);
        self
    }

    /// Wait up to `timeout` (sent in milliseconds, rounded up; `Duration::ZERO`: forever)
    /// for an entry when there is none (`BLOCK`).
    pub fn block(mut self, timeout: Duration) -> Self {
        self.block = Some(timeout);
        self
    }
}

impl ToArgs for XReadOptions {
    fn write_args(&self, cmd: &mut Cmd) {
        if let Some(n) = self.count {
            cmd.arg("COUNT").arg(n);
        }
        if let Some(timeout) = self.block {
            cmd.arg("BLOCK").arg(millis(timeout)).block_for(timeout);
        }
    }
}

/// Options of `XREADGROUP`: `COUNT`, `BLOCK` and `NOACK`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[must_use = "options do nothing until passed to a command"]
pub struct XReadGroupOptions {
    read: XReadOptions,
    noack: bool,
}

impl XReadGroupOptions {
    /// Return at most `count` entries per stream.
    pub fn count(mut self, count: u64) -> Self {
        self.read = self.read.count(count);
        self
    }

    /// Wait up to `timeout` (sent in milliseconds, rounded up; `Duration::ZERO`: forever)
    /// for an entry when there is none (`BLOCK`).
    pub fn block(mut self, timeout: Duration) -> Self {
        self.read = self.read.block(timeout);
        self
    }

    /// Do not add the entries read to the pending list (`NOACK`).
    pub fn noack(mut self) -> Self {
        self.noack = true;
        self
    }
}

impl ToArgs for XReadGroupOptions {
    fn write_args(&self, cmd: &mut Cmd) {
        cmd.arg(self.read);
        if self.noack {
            cmd.arg("NOACK");
        }
    }
}

/// Options of `XGROUP CREATE`: `MKSTREAM` and `ENTRIESREAD`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[must_use = "options do nothing until passed to a command"]
pub struct XGroupCreateOptions {
    mkstream: bool,
    entries_read: Option<i64>,
}

impl XGroupCreateOptions {
    /// Create the stream, empty, if it does not exist (`MKSTREAM`).
    pub fn mkstream(mut self) -> Self {
        self.mkstream = true;
        self
    }

    /// How many entries the group has read so far, for lag tracking (`ENTRIESREAD`).
    pub fn entries_read(mut self, n: i64) -> Self {
        self.entries_read = Some(n);
        self
    }
}

impl ToArgs for XGroupCreateOptions {
    fn write_args(&self, cmd: &mut Cmd) {
        if self.mkstream {
            cmd.arg("MKSTREAM");
        }
        if let Some(n) = self.entries_read {
            cmd.arg("ENTRIESREAD").arg(n);
        }
    }
}

/// Filters of the extended `XPENDING` form: `IDLE` and a consumer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use = "options do nothing until passed to a command"]
pub struct XPendingOptions {
    pub(crate) idle: Option<Duration>,
    pub(crate) consumer: Option<Bytes>,
}

impl XPendingOptions {
    /// Only entries idle for at least `idle` (`IDLE`, sent in milliseconds).
    pub fn idle(mut self, idle: Duration) -> Self {
        self.idle = Some(idle);
        self
    }

    /// Only entries delivered to `consumer`.
    pub fn consumer(mut self, consumer: impl AsRef<[u8]>) -> Self {
        self.consumer = Some(Bytes::copy_from_slice(consumer.as_ref()));
        self
    }
}

/// Options of `XCLAIM`: `IDLE`, `TIME`, `RETRYCOUNT`, `FORCE`, `LASTID`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use = "options do nothing until passed to a command"]
pub struct XClaimOptions {
    idle: Option<Duration>,
    time: Option<SystemTime>,
    retry_count: Option<u64>,
    force: bool,
    last_id: Option<Bytes>,
}

impl XClaimOptions {
    /// Set the claimed entries' idle time to `idle` (`IDLE`, sent in milliseconds).
    pub fn idle(mut self, idle: Duration) -> Self {
        self.idle = Some(idle);
        self
    }

    /// Set the claimed entries' last delivery to the moment `at` (`TIME`, sent as Unix
    /// milliseconds).
    pub fn time(mut self, at: SystemTime) -> Self {
        self.time = Some(at);
        self
    }

    /// Set the claimed entries' delivery count (`RETRYCOUNT`).
    pub fn retry_count(mut self, count: u64) -> Self {
        self.retry_count = Some(count);
        self
    }

    /// Claim IDs even if no consumer has them pending (`FORCE`).
    pub fn force(mut self) -> Self {
        self.force = true;
        self
    }

    /// Move the group's last delivered ID to `id` (`LASTID`).
    pub fn last_id(mut self, id: impl AsRef<[u8]>) -> Self {
        self.last_id = Some(Bytes::copy_from_slice(id.as_ref()));
        self
    }
}

impl ToArgs for XClaimOptions {
    fn write_args(&self, cmd: &mut Cmd) {
        if let Some(idle) = self.idle {
            cmd.arg("IDLE").arg(millis(idle));
        }
        if let Some(at) = self.time {
            cmd.arg("TIME").arg(unix_millis(at));
        }
        if let Some(n) = self.retry_count {
            cmd.arg("RETRYCOUNT").arg(n);
        }
        if self.force {
            cmd.arg("FORCE");
        }
        if let Some(id) = &self.last_id {
            cmd.arg("LASTID").arg(id);
        }
    }
}

/// Options of `XSETID`: `ENTRIESADDED` and `MAXDELETEDID`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use = "options do nothing until passed to a command"]
pub struct XSetIdOptions {
    entries_added: Option<u64>,
    max_deleted_id: Option<Bytes>,
}

impl XSetIdOptions {
    /// The number of entries ever added to the stream (`ENTRIESADDED`).
    pub fn entries_added(mut self, n: u64) -> Self {
        self.entries_added = Some(n);
        self
    }

    /// The greatest ID ever deleted from the stream (`MAXDELETEDID`).
    pub fn max_deleted_id(mut self, id: impl AsRef<[u8]>) -> Self {
        self.max_deleted_id = Some(Bytes::copy_from_slice(id.as_ref()));
        self
    }
}

impl ToArgs for XSetIdOptions {
    fn write_args(&self, cmd: &mut Cmd) {
        if let Some(n) = self.entries_added {
            cmd.arg("ENTRIESADDED").arg(n);
        }
        if let Some(id) = &self.max_deleted_id {
            cmd.arg("MAXDELETEDID").arg(id);
        }
    }
}

/// One stream entry: its ID and its field/value pairs, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamEntry {
    /// The entry's ID (`<ms>-<seq>`).
    pub id: Bytes,
    /// Field/value pairs; empty for an entry deleted while pending (XREADGROUP history).
    pub fields: Vec<(Bytes, Bytes)>,
}

impl StreamEntry {
    /// The value of `field`, if the entry has it.
    pub fn get(&self, field: impl AsRef<[u8]>) -> Option<&Bytes> {
        let field = field.as_ref();
        self.fields
            .iter()
            .find(|(f, _)| &f[..] == field)
            .map(|(_, v)| v)
    }
}

impl FromValue for StreamEntry {
    fn from_value(v: Value) -> Result<Self, FromValueError> {
        let (id, fields) = <(Bytes, Vec<(Bytes, Bytes)>)>::from_value(v)?;
        Ok(StreamEntry { id, fields })
    }
}

/// The summary form of `XPENDING`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XPendingSummary {
    /// Entries delivered and not acknowledged.
    pub count: u64,
    /// The lowest pending ID (none when nothing is pending).
    pub min_id: Option<Bytes>,
    /// The highest pending ID.
    pub max_id: Option<Bytes>,
    /// Each consumer with pending entries, and how many it has.
    pub consumers: Vec<(Bytes, u64)>,
}

impl FromValue for XPendingSummary {
    fn from_value(v: Value) -> Result<Self, FromValueError> {
        let (count, min_id, max_id, consumers) = FromValue::from_value(v)?;
        Ok(XPendingSummary {
            count,
            min_id,
            max_id,
            consumers,
        })
    }
}

/// One entry of the extended form of `XPENDING`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingEntry {
    /// The entry's ID.
    pub id: Bytes,
    /// The consumer it was delivered to.
    pub consumer: Bytes,
    /// Milliseconds since it was last delivered.
    pub idle_ms: u64,
    /// How many times it was delivered.
    pub delivery_count: u64,
}

impl FromValue for PendingEntry {
    fn from_value(v: Value) -> Result<Self, FromValueError> {
        let (id, consumer, idle_ms, delivery_count) = FromValue::from_value(v)?;
        Ok(PendingEntry {
            id,
            consumer,
            idle_ms,
            delivery_count,
        })
    }
}

/// The reply of `XAUTOCLAIM`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XAutoClaim {
    /// Where the next call should start (`0-0` when the scan is complete).
    pub next_id: Bytes,
    /// The entries claimed.
    pub entries: Vec<StreamEntry>,
    /// IDs that were pending but no longer exist in the stream (removed from the pending
    /// list).
    pub deleted_ids: Vec<Bytes>,
}

impl FromValue for XAutoClaim {
    fn from_value(v: Value) -> Result<Self, FromValueError> {
        let (next_id, entries, deleted_ids) = autoclaim_parts(v)?;
        Ok(XAutoClaim {
            next_id,
            entries: FromValue::from_value(entries)?,
            deleted_ids,
        })
    }
}

/// The reply of `XAUTOCLAIM … JUSTID`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XAutoClaimJustId {
    /// Where the next call should start (`0-0` when the scan is complete).
    pub next_id: Bytes,
    /// The IDs claimed.
    pub ids: Vec<Bytes>,
    /// IDs that were pending but no longer exist in the stream.
    pub deleted_ids: Vec<Bytes>,
}

impl FromValue for XAutoClaimJustId {
    fn from_value(v: Value) -> Result<Self, FromValueError> {
        let (next_id, ids, deleted_ids) = autoclaim_parts(v)?;
        Ok(XAutoClaimJustId {
            next_id,
            ids: FromValue::from_value(ids)?,
            deleted_ids,
        })
    }
}

/// Servers before 7.0 answer without the deleted IDs.
fn autoclaim_parts(v: Value) -> Result<(Bytes, Value, Vec<Bytes>), FromValueError> {
    let mut items = Vec::<Value>::from_value(v)?.into_iter();
    if !(2..=3).contains(&items.len()) {
        return Err(FromValueError::Type {
            expected: "xautoclaim reply",
            actual: format!("array of {}", items.len()),
        });
    }
    let next = Bytes::from_value(items.next().unwrap_or(Value::Nil))?;
    let claimed = items.next().unwrap_or(Value::Nil);
    let deleted = Vec::from_value(items.next().unwrap_or(Value::Nil))?;
    Ok((next, claimed, deleted))
}

/// The reply of `XINFO STREAM`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamInfo {
    /// Number of entries.
    pub length: u64,
    /// Keys in the stream's radix tree.
    pub radix_tree_keys: u64,
    /// Nodes in the stream's radix tree.
    pub radix_tree_nodes: u64,
    /// Consumer groups defined on the stream.
    pub groups: u64,
    /// The ID of the last entry added.
    pub last_generated_id: Bytes,
    /// The greatest ID ever deleted (Redis 7.0+).
    pub max_deleted_entry_id: Option<Bytes>,
    /// Entries ever added (Redis 7.0+).
    pub entries_added: Option<u64>,
    /// The first entry's ID as recorded (Redis 7.0+).
    pub recorded_first_entry_id: Option<Bytes>,
    /// The first entry, if any.
    pub first_entry: Option<StreamEntry>,
    /// The last entry, if any.
    pub last_entry: Option<StreamEntry>,
}

impl FromValue for StreamInfo {
    fn from_value(v: Value) -> Result<Self, FromValueError> {
        let mut f = Fields::new("stream info", v)?;
        Ok(StreamInfo {
            length: f.req("length")?,
            radix_tree_keys: f.req("radix-tree-keys")?,
            radix_tree_nodes: f.req("radix-tree-nodes")?,
            groups: f.req("groups")?,
            last_generated_id: f.req("last-generated-id")?,
            max_deleted_entry_id: f.opt("max-deleted-entry-id")?,
            entries_added: f.opt("entries-added")?,
            recorded_first_entry_id: f.opt("recorded-first-entry-id")?,
            first_entry: f.opt("first-entry")?,
            last_entry: f.opt("last-entry")?,
        })
    }
}

/// The reply of `XINFO STREAM … FULL`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamInfoFull {
    /// Number of entries.
    pub length: u64,
    /// Keys in the stream's radix tree.
    pub radix_tree_keys: u64,
    /// Nodes in the stream's radix tree.
    pub radix_tree_nodes: u64,
    /// The ID of the last entry added.
    pub last_generated_id: Bytes,
    /// The greatest ID ever deleted (Redis 7.0+).
    pub max_deleted_entry_id: Option<Bytes>,
    /// Entries ever added (Redis 7.0+).
    pub entries_added: Option<u64>,
    /// The first entry's ID as recorded (Redis 7.0+).
    pub recorded_first_entry_id: Option<Bytes>,
    /// The entries, up to the requested count.
    pub entries: Vec<StreamEntry>,
    /// Every consumer group, with its pending list and consumers.
    pub groups: Vec<StreamGroupFull>,
}

impl FromValue for StreamInfoFull {
    fn from_value(v: Value) -> Result<Self, FromValueError> {
        let mut f = Fields::new("full stream info", v)?;
        Ok(StreamInfoFull {
            length: f.req("length")?,
            radix_tree_keys: f.req("radix-tree-keys")?,
            radix_tree_nodes: f.req("radix-tree-nodes")?,
            last_generated_id: f.req("last-generated-id")?,
            max_deleted_entry_id: f.opt("max-deleted-entry-id")?,
            entries_added: f.opt("entries-added")?,
            recorded_first_entry_id: f.opt("recorded-first-entry-id")?,
            entries: f.opt("entries")?.unwrap_or_default(),
            groups: f.opt("groups")?.unwrap_or_default(),
        })
    }
}

/// A consumer group as `XINFO STREAM … FULL` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamGroupFull {
    /// The group's name.
    pub name: Bytes,
    /// The last ID delivered to the group.
    pub last_delivered_id: Bytes,
    /// Entries the group has read (Redis 7.0+).
    pub entries_read: Option<u64>,
    /// Entries not yet delivered to the group, when the server can tell (Redis 7.0+).
    pub lag: Option<u64>,
    /// Length of the group's pending list.
    pub pel_count: u64,
    /// The pending list, up to the requested count.
    pub pending: Vec<GroupPendingEntry>,
    /// The group's consumers.
    pub consumers: Vec<StreamConsumerFull>,
}

impl FromValue for StreamGroupFull {
    fn from_value(v: Value) -> Result<Self, FromValueError> {
        let mut f = Fields::new("stream group", v)?;
        Ok(StreamGroupFull {
            name: f.req("name")?,
            last_delivered_id: f.req("last-delivered-id")?,
            entries_read: f.opt("entries-read")?,
            lag: f.opt("lag")?,
            pel_count: f.req("pel-count")?,
            pending: f.opt("pending")?.unwrap_or_default(),
            consumers: f.opt("consumers")?.unwrap_or_default(),
        })
    }
}

/// An entry of a group's pending list in `XINFO STREAM … FULL`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupPendingEntry {
    /// The entry's ID.
    pub id: Bytes,
    /// The consumer it was delivered to.
    pub consumer: Bytes,
    /// Unix time in milliseconds of its last delivery.
    pub delivery_time_ms: u64,
    /// How many times it was delivered.
    pub delivery_count: u64,
}

impl FromValue for GroupPendingEntry {
    fn from_value(v: Value) -> Result<Self, FromValueError> {
        let (id, consumer, delivery_time_ms, delivery_count) = FromValue::from_value(v)?;
        Ok(GroupPendingEntry {
            id,
            consumer,
            delivery_time_ms,
            delivery_count,
        })
    }
}

/// A consumer as `XINFO STREAM … FULL` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamConsumerFull {
    /// The consumer's name.
    pub name: Bytes,
    /// Unix time in milliseconds it was last seen.
    pub seen_time_ms: u64,
    /// Length of its pending list.
    pub pel_count: u64,
    /// Its pending entries: ID, last delivery (Unix ms), delivery count.
    pub pending: Vec<(Bytes, u64, u64)>,
}

impl FromValue for StreamConsumerFull {
    fn from_value(v: Value) -> Result<Self, FromValueError> {
        let mut f = Fields::new("stream consumer", v)?;
        Ok(StreamConsumerFull {
            name: f.req("name")?,
            seen_time_ms: f.req("seen-time")?,
            pel_count: f.req("pel-count")?,
            pending: f.opt("pending")?.unwrap_or_default(),
        })
    }
}

/// One group of `XINFO GROUPS`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamGroupInfo {
    /// The group's name.
    pub name: Bytes,
    /// Number of consumers.
    pub consumers: u64,
    /// Length of the group's pending list.
    pub pending: u64,
    /// The last ID delivered to the group.
    pub last_delivered_id: Bytes,
    /// Entries the group has read (Redis 7.0+).
    pub entries_read: Option<u64>,
    /// Entries not yet delivered to the group, when the server can tell (Redis 7.0+).
    pub lag: Option<u64>,
}

impl FromValue for StreamGroupInfo {
    fn from_value(v: Value) -> Result<Self, FromValueError> {
        let mut f = Fields::new("stream group info", v)?;
        Ok(StreamGroupInfo {
            name: f.req("name")?,
            consumers: f.req("consumers")?,
            pending: f.req("pending")?,
            last_delivered_id: f.req("last-delivered-id")?,
            entries_read: f.opt("entries-read")?,
            lag: f.opt("lag")?,
        })
    }
}

/// One consumer of `XINFO CONSUMERS`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamConsumerInfo {
    /// The consumer's name.
    pub name: Bytes,
    /// Entries pending for it.
    pub pending: u64,
    /// Milliseconds since it last read or claimed.
    pub idle_ms: u64,
    /// Milliseconds since its last successful read (Redis 7.2+).
    pub inactive_ms: Option<i64>,
}

impl FromValue for StreamConsumerInfo {
    fn from_value(v: Value) -> Result<Self, FromValueError> {
        let mut f = Fields::new("stream consumer info", v)?;
        Ok(StreamConsumerInfo {
            name: f.req("name")?,
            pending: f.req("pending")?,
            idle_ms: f.req("idle")?,
            inactive_ms: f.opt("inactive")?,
        })
    }
}

/// The named fields of a map reply (RESP3) or flat array of name/value pairs (RESP2).
struct Fields {
    expected: &'static str,
    fields: Vec<(Bytes, Value)>,
}

impl Fields {
    fn new(expected: &'static str, v: Value) -> Result<Self, FromValueError> {
        let fields = pairs(expected, v)?
            .into_iter()
            .map(|(k, v)| Ok((Bytes::from_value(k)?, v)))
            .collect::<Result<_, FromValueError>>()?;
        Ok(Fields { expected, fields })
    }

    fn take(&mut self, name: &str) -> Option<Value> {
        let i = self
            .fields
            .iter()
            .position(|(k, _)| &k[..] == name.as_bytes())?;
        Some(self.fields.swap_remove(i).1)
    }

    /// A field the reply must have.
    fn req<T: FromValue>(&mut self, name: &'static str) -> Result<T, FromValueError> {
        match self.take(name) {
            Some(v) => T::from_value(v),
            None => Err(FromValueError::Type {
                expected: self.expected,
                actual: format!("reply without field {name}"),
            }),
        }
    }

    /// A field that may be missing or nil.
    fn opt<T: FromValue>(&mut self, name: &'static str) -> Result<Option<T>, FromValueError> {
        match self.take(name) {
            Some(v) => Option::<T>::from_value(v),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(Bytes::copy_from_slice(s.as_bytes()))
    }

    fn args(a: impl ToArgs) -> Vec<String> {
        Cmd::from_args(a)
            .args()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    }

    #[test]
    fn trim_and_read_options_encode() {
        assert_eq!(
            args(StreamTrim::maxlen(10).approx().limit(5)),
            ["MAXLEN", "~", "10", "LIMIT", "5"]
        );
        assert_eq!(
            args(StreamTrim::minid("5-0").exact()),
            ["MINID", "=", "5-0"]
        );
        let read = Cmd::from_args(
            XReadGroupOptions::default()
                .count(2)
                .block(Duration::ZERO)
                .noack(),
        );
        assert_eq!(read.blocking_timeout(), crate::Block::Forever);
    }

    #[test]
    fn group_info_from_both_protocols() {
        let resp2 = Value::Array(vec![
            bulk("name"),
            bulk("g"),
            bulk("consumers"),
            Value::Integer(1),
            bulk("pending"),
            Value::Integer(2),
            bulk("last-delivered-id"),
            bulk("1-0"),
            bulk("entries-read"),
            Value::Integer(2),
            bulk("lag"),
            Value::Nil,
        ]);
        let Value::Array(items) = resp2.clone() else {
            unreachable!()
        };
        let resp3 = Value::Map(
            items
                .chunks(2)
                .map(|p| (p[0].clone(), p[1].clone()))
                .collect(),
        );
        let a = StreamGroupInfo::from_value(resp2).unwrap();
        assert_eq!(a, StreamGroupInfo::from_value(resp3).unwrap());
        assert_eq!((a.pending, a.lag), (2, None));
        assert!(StreamGroupInfo::from_value(Value::Array(vec![])).is_err());
    }
}
