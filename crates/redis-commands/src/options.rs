//! Typed options for commands that take many optional arguments.

use crate::time::{expiry_millis, expiry_secs, unix_millis, unix_secs};
use crate::{Cmd, ToArgs};
use std::time::{Duration, SystemTime};

/// Expiry and condition options of `SET`.
///
/// The expiry methods are named after the words they send: [`ex`](SetOptions::ex) and
/// [`px`](SetOptions::px) take a [`Duration`] (sent in seconds or milliseconds, rounded
/// up), [`exat`](SetOptions::exat) and [`pxat`](SetOptions::pxat) a [`SystemTime`], and
/// [`keepttl`](SetOptions::keepttl) nothing.
///
/// ```
/// # use redis_commands as redis_client;
/// use redis_client::{Cmd, SetOptions, ToArgs};
/// use std::time::Duration;
/// let opts = SetOptions::default().nx().px(Duration::from_micros(1_500));
/// let mut cmd = Cmd::new("SET");
/// opts.write_args(&mut cmd);
/// assert_eq!(cmd.args().skip(1).collect::<Vec<_>>(), [&b"PX"[..], b"2", b"NX"]);
/// let session = SetOptions::default().ex(Duration::from_secs(60));
/// # let _ = session;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[must_use = "options do nothing until passed to a command"]
pub struct SetOptions {
    condition: Option<&'static str>,
    expiry: Option<Expiry>,
    get: bool,
}

/// When a key expires, as `SET` takes it. A length of time is sent rounded up (and at
/// least 1: Redis refuses 0), so the key lives at least as long as asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// After this long, in whole seconds (`EX`).
    Ex(Duration),
    /// After this long, in whole milliseconds (`PX`).
    Px(Duration),
    /// At this moment, in Unix seconds (`EXAT`).
    ExAt(SystemTime),
    /// At this moment, in Unix milliseconds (`PXAT`).
    PxAt(SystemTime),
    /// Keep the key's current time to live (`KEEPTTL`).
    KeepTtl,
}

impl SetOptions {
    /// Only set if the key does not exist (`NX`).
    pub fn nx(mut self) -> Self {
        self.condition = Some("NX");
        self
    }

    /// Only set if the key already exists (`XX`).
    pub fn xx(mut self) -> Self {
        self.condition = Some("XX");
        self
    }

    /// Expire after `ttl` (`EX seconds`, rounded up to a whole second and at least 1).
    pub fn ex(self, ttl: Duration) -> Self {
        self.expiry(Expiry::Ex(ttl))
    }

    /// Expire after `ttl` (`PX milliseconds`, rounded up to a whole millisecond and at
    /// least 1, so 1.9 ms is sent as `PX 2`).
    pub fn px(self, ttl: Duration) -> Self {
        self.expiry(Expiry::Px(ttl))
    }

    /// Expire at the moment `at` (`EXAT`, in Unix seconds).
    pub fn exat(self, at: SystemTime) -> Self {
        self.expiry(Expiry::ExAt(at))
    }

    /// Expire at the moment `at` (`PXAT`, in Unix milliseconds).
    pub fn pxat(self, at: SystemTime) -> Self {
        self.expiry(Expiry::PxAt(at))
    }

    /// Keep the key's current time to live (`KEEPTTL`).
    pub fn keepttl(self) -> Self {
        self.expiry(Expiry::KeepTtl)
    }

    /// Set the expiry from an [`Expiry`].
    pub fn expiry(mut self, expiry: Expiry) -> Self {
        self.expiry = Some(expiry);
        self
    }

    /// Also return the old value (`GET`); the reply is then the old value, not `OK`.
    pub fn get(mut self) -> Self {
        self.get = true;
        self
    }
}

impl ToArgs for Expiry {
    fn write_args(&self, cmd: &mut Cmd) {
        match *self {
            Expiry::Ex(d) => cmd.arg("EX").arg(expiry_secs(d)),
            Expiry::Px(d) => cmd.arg("PX").arg(expiry_millis(d)),
            Expiry::ExAt(t) => cmd.arg("EXAT").arg(unix_secs(t)),
            Expiry::PxAt(t) => cmd.arg("PXAT").arg(unix_millis(t)),
            Expiry::KeepTtl => cmd.arg("KEEPTTL"),
        };
    }
}

impl ToArgs for SetOptions {
    fn write_args(&self, cmd: &mut Cmd) {
        cmd.arg(self.expiry).arg(self.condition);
        if self.get {
            cmd.arg("GET");
        }
    }
}

/// Appends `keys` preceded by their count, as the `numkeys` form of LMPOP, SINTERCARD …
/// takes them; each is recorded as a key.
pub(crate) fn write_numkeys<K: ToArgs>(c: &mut Cmd, keys: K) {
    // Encoding into a scratch command first is what tells how many arguments `keys` makes
    // (a slice, a tuple and a single name all differ), since the count goes before them.
    let scratch = Cmd::from_args(keys);
    c.arg(scratch.argc());
    for k in scratch.args() {
        c.key(k);
    }
}

/// Appends `items` as alternating key and value arguments (MSET, MSETNX), recording only
/// the keys.
pub(crate) fn write_key_values<I: ToArgs>(c: &mut Cmd, items: I) {
    let scratch = Cmd::from_args(items);
    for (i, a) in scratch.args().enumerate() {
        if i % 2 == 0 {
            c.key(a);
        } else {
            c.arg(a);
        }
    }
}

/// A word chosen from a fixed set, sent as that word.
macro_rules! word_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $word:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// The word sent to the server.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word),+
                }
            }
        }

        impl ToArgs for $name {
            fn write_args(&self, cmd: &mut Cmd) {
                cmd.arg(self.as_str());
            }
        }
    };
}

word_enum! {
    /// When EXPIRE and its relatives may change a key's expiry (Redis 7).
    ExpireCondition {
        /// Only if the key has no expiry (`NX`).
        Nx => "NX",
        /// Only if the key has an expiry (`XX`).
        Xx => "XX",
        /// Only if the new expiry is later than the current one (`GT`).
        Gt => "GT",
        /// Only if the new expiry is earlier than the current one (`LT`).
        Lt => "LT",
    }
}

word_enum! {
    /// An end of a list (LMOVE, LMPOP, BLMOVE, BLMPOP).
    ListDirection {
        /// The head (`LEFT`).
        Left => "LEFT",
        /// The tail (`RIGHT`).
        Right => "RIGHT",
    }
}

word_enum! {
    /// Where LINSERT puts the new element relative to the pivot.
    Insert {
        /// Before the pivot (`BEFORE`).
        Before => "BEFORE",
        /// After the pivot (`AFTER`).
        After => "AFTER",
    }
}

word_enum! {
    /// What the range of BITCOUNT and BITPOS counts in (Redis 7).
    BitUnit {
        /// Bits (`BIT`).
        Bit => "BIT",
        /// Bytes (`BYTE`), the server's default.
        Byte => "BYTE",
    }
}

word_enum! {
    /// The operation of BITOP.
    BitOp {
        /// Bitwise and (`AND`).
        And => "AND",
        /// Bitwise or (`OR`).
        Or => "OR",
        /// Bitwise exclusive or (`XOR`).
        Xor => "XOR",
        /// Bitwise negation of a single source (`NOT`).
        Not => "NOT",
    }
}

word_enum! {
    /// What BITFIELD does when a SET or INCRBY goes out of range (`OVERFLOW`).
    BitfieldOverflow {
        /// Wrap around (`WRAP`), the server's default.
        Wrap => "WRAP",
        /// Saturate at the type's minimum or maximum (`SAT`).
        Sat => "SAT",
        /// Do nothing and answer nil for that operation (`FAIL`).
        Fail => "FAIL",
    }
}

/// When GETEX sets or clears the key's expiry; a length of time is sent rounded up (and
/// at least 1), as [`Expiry`] does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GetExpiry {
    /// Expire after this long, in whole seconds (`EX`).
    Ex(Duration),
    /// Expire after this long, in whole milliseconds (`PX`).
    Px(Duration),
    /// Expire at this moment, in Unix seconds (`EXAT`).
    ExAt(SystemTime),
    /// Expire at this moment, in Unix milliseconds (`PXAT`).
    PxAt(SystemTime),
    /// Remove the expiry (`PERSIST`).
    Persist,
}

impl ToArgs for GetExpiry {
    fn write_args(&self, cmd: &mut Cmd) {
        match *self {
            GetExpiry::Ex(d) => cmd.arg(Expiry::Ex(d)),
            GetExpiry::Px(d) => cmd.arg(Expiry::Px(d)),
            GetExpiry::ExAt(t) => cmd.arg(Expiry::ExAt(t)),
            GetExpiry::PxAt(t) => cmd.arg(Expiry::PxAt(t)),
            GetExpiry::Persist => cmd.arg("PERSIST"),
        };
    }
}

/// Options of `LCS … IDX`.
///
/// ```
/// # use redis_commands as redis_client;
/// use redis_client::LcsOptions;
/// let opts = LcsOptions::default().min_match_len(4).with_match_len();
/// # let _ = opts;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[must_use = "options do nothing until passed to a command"]
pub struct LcsOptions {
    min_match_len: Option<u64>,
    with_match_len: bool,
}

impl LcsOptions {
    /// Report only matches at least `len` long (`MINMATCHLEN`).
    pub fn min_match_len(mut self, len: u64) -> Self {
        self.min_match_len = Some(len);
        self
    }

    /// Report each match's length too (`WITHMATCHLEN`).
    pub fn with_match_len(mut self) -> Self {
        self.with_match_len = true;
        self
    }
}

impl ToArgs for LcsOptions {
    fn write_args(&self, cmd: &mut Cmd) {
        if let Some(n) = self.min_match_len {
            cmd.arg("MINMATCHLEN").arg(n);
        }
        if self.with_match_len {
            cmd.arg("WITHMATCHLEN");
        }
    }
}

/// The integer type of a BITFIELD field: signed up to 64 bits, unsigned up to 63.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BitfieldType {
    /// A signed integer of this many bits (`i8`).
    Signed(u8),
    /// An unsigned integer of this many bits (`u8`).
    Unsigned(u8),
}

impl ToArgs for BitfieldType {
    fn write_args(&self, cmd: &mut Cmd) {
        let s = match *self {
            BitfieldType::Signed(n) => format!("i{n}"),
            BitfieldType::Unsigned(n) => format!("u{n}"),
        };
        cmd.arg(s);
    }
}

/// Where a BITFIELD field starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BitOffset {
    /// At this bit.
    Bit(u64),
    /// At this index, counted in fields of the operation's type (`#N`).
    Field(u64),
}

impl ToArgs for BitOffset {
    fn write_args(&self, cmd: &mut Cmd) {
        match *self {
            BitOffset::Bit(n) => {
                cmd.arg(n);
            }
            BitOffset::Field(n) => {
                cmd.arg(format!("#{n}"));
            }
        }
    }
}

/// The subcommands of one BITFIELD call, in order; the reply has one entry per GET, SET
/// and INCRBY.
///
/// ```
/// # use redis_commands as redis_client;
/// use redis_client::{BitfieldOps, BitfieldOverflow, BitfieldType, BitOffset};
/// let ops = BitfieldOps::new()
///     .set(BitfieldType::Unsigned(8), BitOffset::Bit(0), 200)
///     .overflow(BitfieldOverflow::Sat)
///     .incrby(BitfieldType::Unsigned(8), BitOffset::Bit(0), 100)
///     .get(BitfieldType::Signed(4), BitOffset::Field(1));
/// # let _ = ops;
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use = "options do nothing until passed to a command"]
pub struct BitfieldOps {
    ops: Vec<BitfieldOp>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum BitfieldOp {
    Get(BitfieldType, BitOffset),
    Set(BitfieldType, BitOffset, i64),
    IncrBy(BitfieldType, BitOffset, i64),
    Overflow(BitfieldOverflow),
}

impl BitfieldOps {
    /// No operations yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads a field (`GET`).
    pub fn get(mut self, ty: BitfieldType, offset: BitOffset) -> Self {
        self.ops.push(BitfieldOp::Get(ty, offset));
        self
    }

    /// Writes a field, answering its old value (`SET`).
    pub fn set(mut self, ty: BitfieldType, offset: BitOffset, value: i64) -> Self {
        self.ops.push(BitfieldOp::Set(ty, offset, value));
        self
    }

    /// Adds to a field, answering its new value (`INCRBY`).
    pub fn incrby(mut self, ty: BitfieldType, offset: BitOffset, increment: i64) -> Self {
        self.ops.push(BitfieldOp::IncrBy(ty, offset, increment));
        self
    }

    /// Sets how the SET and INCRBY operations after it overflow (`OVERFLOW`).
    pub fn overflow(mut self, behaviour: BitfieldOverflow) -> Self {
        self.ops.push(BitfieldOp::Overflow(behaviour));
        self
    }
}

impl ToArgs for BitfieldOps {
    fn write_args(&self, cmd: &mut Cmd) {
        for op in &self.ops {
            match op {
                BitfieldOp::Get(t, o) => cmd.arg("GET").arg(t).arg(o),
                BitfieldOp::Set(t, o, v) => cmd.arg("SET").arg(t).arg(o).arg(v),
                BitfieldOp::IncrBy(t, o, v) => cmd.arg("INCRBY").arg(t).arg(o).arg(v),
                BitfieldOp::Overflow(b) => cmd.arg("OVERFLOW").arg(b),
            };
        }
    }
}

/// Options of SORT and SORT_RO: the sort key, the range, what to return and the order.
///
/// ```
/// # use redis_commands as redis_client;
/// use redis_client::SortOptions;
/// let opts = SortOptions::default().by("weight_*").limit(0, 10).get("#").get("name_*").desc().alpha();
/// # let _ = opts;
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use = "options do nothing until passed to a command"]
pub struct SortOptions {
    by: Option<Vec<u8>>,
    limit: Option<(i64, i64)>,
    get: Vec<Vec<u8>>,
    desc: bool,
    alpha: bool,
}

impl SortOptions {
    /// Sort by the values of the keys this pattern names, `*` replaced by each element
    /// (`BY`); `"nosort"` skips sorting.
    pub fn by(mut self, pattern: impl AsRef<[u8]>) -> Self {
        self.by = Some(pattern.as_ref().to_vec());
        self
    }

    /// Return only `count` elements from `offset` (`LIMIT`).
    pub fn limit(mut self, offset: i64, count: i64) -> Self {
        self.limit = Some((offset, count));
        self
    }

    /// Return the value of the key this pattern names instead of the element, `#` for the
    /// element itself (`GET`); may be given many times, each adding one reply per element.
    pub fn get(mut self, pattern: impl AsRef<[u8]>) -> Self {
        self.get.push(pattern.as_ref().to_vec());
        self
    }

    /// How many [`get`](SortOptions::get) patterns were given: the number of replies per
    /// element.
    pub fn get_count(&self) -> usize {
        self.get.len()
    }

    /// Descending order (`DESC`).
    pub fn desc(mut self) -> Self {
        self.desc = true;
        self
    }

    /// Ascending order (`ASC`), the default.
    pub fn asc(mut self) -> Self {
        self.desc = false;
        self
    }

    /// Compare as strings rather than numbers (`ALPHA`).
    pub fn alpha(mut self) -> Self {
        self.alpha = true;
        self
    }
}

impl ToArgs for SortOptions {
    fn write_args(&self, cmd: &mut Cmd) {
        if let Some(by) = &self.by {
            cmd.arg("BY").arg(&by[..]);
        }
        if let Some((offset, count)) = self.limit {
            cmd.arg("LIMIT").arg(offset).arg(count);
        }
        for g in &self.get {
            cmd.arg("GET").arg(&g[..]);
        }
        if self.desc {
            cmd.arg("DESC");
        }
        if self.alpha {
            cmd.arg("ALPHA");
        }
    }
}

/// Options of COPY.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[must_use = "options do nothing until passed to a command"]
pub struct CopyOptions {
    db: Option<i64>,
    replace: bool,
}

impl CopyOptions {
    /// Copy into this database instead of the current one (`DB`).
    pub fn db(mut self, db: i64) -> Self {
        self.db = Some(db);
        self
    }

    /// Overwrite the destination if it exists (`REPLACE`).
    pub fn replace(mut self) -> Self {
        self.replace = true;
        self
    }
}

impl ToArgs for CopyOptions {
    fn write_args(&self, cmd: &mut Cmd) {
        if let Some(db) = self.db {
            cmd.arg("DB").arg(db);
        }
        if self.replace {
            cmd.arg("REPLACE");
        }
    }
}

/// Options of RESTORE.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[must_use = "options do nothing until passed to a command"]
pub struct RestoreOptions {
    replace: bool,
    pub(crate) expire_at: Option<SystemTime>,
    idletime: Option<Duration>,
    freq: Option<i64>,
}

impl RestoreOptions {
    /// Overwrite the key if it exists (`REPLACE`).
    pub fn replace(mut self) -> Self {
        self.replace = true;
        self
    }

    /// Expire the key at the moment `at` rather than after the command's `ttl`: sent as
    /// Unix milliseconds in the TTL's place, with `ABSTTL`.
    pub fn expire_at(mut self, at: SystemTime) -> Self {
        self.expire_at = Some(at);
        self
    }

    /// Set the key's idle time, under an LRU eviction policy (`IDLETIME`, sent in whole
    /// seconds).
    pub fn idletime(mut self, idle: Duration) -> Self {
        self.idletime = Some(idle);
        self
    }

    /// Set the key's access frequency, under an LFU eviction policy (`FREQ`).
    pub fn freq(mut self, frequency: i64) -> Self {
        self.freq = Some(frequency);
        self
    }
}

impl ToArgs for RestoreOptions {
    fn write_args(&self, cmd: &mut Cmd) {
        if self.replace {
            cmd.arg("REPLACE");
        }
        if self.expire_at.is_some() {
            cmd.arg("ABSTTL");
        }
        if let Some(idle) = self.idletime {
            cmd.arg("IDLETIME").arg(idle.as_secs());
        }
        if let Some(f) = self.freq {
            cmd.arg("FREQ").arg(f);
        }
    }
}

/// Options of LPOS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[must_use = "options do nothing until passed to a command"]
pub struct LposOptions {
    rank: Option<i64>,
    maxlen: Option<i64>,
}

impl LposOptions {
    /// Skip to the `rank`-th match, counting from the tail when negative (`RANK`).
    pub fn rank(mut self, rank: i64) -> Self {
        self.rank = Some(rank);
        self
    }

    /// Compare at most `len` elements (`MAXLEN`; 0 means all).
    pub fn maxlen(mut self, len: i64) -> Self {
        self.maxlen = Some(len);
        self
    }
}

impl ToArgs for LposOptions {
    fn write_args(&self, cmd: &mut Cmd) {
        if let Some(r) = self.rank {
            cmd.arg("RANK").arg(r);
        }
        if let Some(m) = self.maxlen {
            cmd.arg("MAXLEN").arg(m);
        }
    }
}

/// Options of MIGRATE.
///
/// ```
/// # use redis_commands as redis_client;
/// use redis_client::MigrateOptions;
/// let opts = MigrateOptions::default().copy().replace().auth2("app", "secret");
/// # let _ = opts;
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use = "options do nothing until passed to a command"]
pub struct MigrateOptions {
    copy: bool,
    replace: bool,
    auth: Option<(Option<Vec<u8>>, Vec<u8>)>,
}

impl MigrateOptions {
    /// Leave the keys on the source too (`COPY`).
    pub fn copy(mut self) -> Self {
        self.copy = true;
        self
    }

    /// Overwrite keys that exist on the target (`REPLACE`).
    pub fn replace(mut self) -> Self {
        self.replace = true;
        self
    }

    /// Authenticate to the target with a password (`AUTH`).
    pub fn auth(mut self, password: impl AsRef<[u8]>) -> Self {
        self.auth = Some((None, password.as_ref().to_vec()));
        self
    }

    /// Authenticate to the target as an ACL user (`AUTH2`).
    pub fn auth2(mut self, username: impl AsRef<[u8]>, password: impl AsRef<[u8]>) -> Self {
        self.auth = Some((Some(username.as_ref().to_vec()), password.as_ref().to_vec()));
        self
    }
}

impl ToArgs for MigrateOptions {
    fn write_args(&self, cmd: &mut Cmd) {
        if self.copy {
            cmd.arg("COPY");
        }
        if self.replace {
            cmd.arg("REPLACE");
        }
        match &self.auth {
            Some((None, password)) => {
                cmd.arg("AUTH").arg(&password[..]);
            }
            Some((Some(user), password)) => {
                cmd.arg("AUTH2").arg(&user[..]).arg(&password[..]);
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(opts: SetOptions) -> Vec<String> {
        let mut cmd = Cmd::new("SET");
        opts.write_args(&mut cmd);
        cmd.args()
            .skip(1)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    }

    #[test]
    fn set_expiry_wire_forms() {
        let o = SetOptions::default();
        assert_eq!(words(o.ex(Duration::from_secs(10))), ["EX", "10"]);
        assert_eq!(words(o.ex(Duration::from_millis(1500))), ["EX", "2"]);
        assert_eq!(words(o.ex(Duration::ZERO)), ["EX", "1"]);
        assert_eq!(words(o.px(Duration::from_millis(1500))), ["PX", "1500"]);
        assert_eq!(words(o.px(Duration::from_micros(1900))), ["PX", "2"]);
        assert_eq!(words(o.px(Duration::from_nanos(1))), ["PX", "1"]);
        assert_eq!(words(o.px(Duration::ZERO)), ["PX", "1"]);
        let at = std::time::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(words(o.exat(at)), ["EXAT", "1700000001"]);
        assert_eq!(words(o.pxat(at)), ["PXAT", "1700000000123"]);
        assert_eq!(words(o.keepttl().xx().get()), ["KEEPTTL", "XX", "GET"]);
        assert_eq!(
            words(o.px(Duration::MAX)),
            ["PX", &u64::MAX.to_string()[..]]
        );
    }
}
