//! Options of the sorted set commands: ZADD flags, score and lex bounds, ZRANGE's forms,
//! LIMIT, and the WEIGHTS/AGGREGATE options of ZUNION/ZINTER.

use crate::{Cmd, ToArgs};
use bytes::Bytes;

/// A number as a command takes a score, an increment or a weight: any Rust integer or
/// float, so `zadd("board", [(10, "ada")])` and `zincrby("board", 2.5, "ada")` both
/// compile. Integers are sent as written (exact, however large), floats as Redis parses
/// them (`inf`, `-inf`, exponents).
///
/// ```
/// # use redis_commands as redis_client;
/// use redis_client::{Cmd, Number};
/// let mut cmd = Cmd::new("ZINCRBY");
/// 10.write_number(&mut cmd);
/// 2.5.write_number(&mut cmd);
/// u64::MAX.write_number(&mut cmd);
/// assert_eq!(cmd.args().skip(1).collect::<Vec<_>>(),
///            [&b"10"[..], b"2.5", b"18446744073709551615"]);
/// ```
pub trait Number: Copy {
    /// Appends the number as one argument.
    fn write_number(self, cmd: &mut Cmd);

    /// The number as an `f64` (the type Redis keeps scores in).
    fn to_f64(self) -> f64;
}

macro_rules! number {
    ($($t:ty),*) => {$(
        impl Number for $t {
            fn write_number(self, cmd: &mut Cmd) {
                cmd.arg(self);
            }

            #[allow(clippy::cast_precision_loss, clippy::cast_lossless)]
            fn to_f64(self) -> f64 {
                self as f64
            }
        }
    )*};
}
number!(i8, i16, i32, i64, isize, u16, u32, u64, usize, f32, f64);

impl Number for u8 {
    fn write_number(self, cmd: &mut Cmd) {
        cmd.arg(i64::from(self));
    }

    fn to_f64(self) -> f64 {
        f64::from(self)
    }
}

/// The members of a `ZADD` with their scores: `(score, member)` pairs, in the order Redis
/// takes them, or a map from member to score (redis-py 2.7.6's `name=score` keyword
/// arguments). A score is any [`Number`]: `10`, `2.5`, a `u32` count.
///
/// A member is never a number's place, so a pair written the other way round does not
/// compile:
///
/// ```
/// # use redis_commands as redis_client;
/// use redis_client::{Cmd, ScoredMembers};
/// use std::collections::BTreeMap;
/// let mut cmd = Cmd::new("ZADD");
/// [(1.5, "alice"), (2.0, "bob")].write_scored(&mut cmd);
/// [(10, "dave")].write_scored(&mut cmd);
/// BTreeMap::from([("carol", 3.0)]).write_scored(&mut cmd);
/// assert_eq!(cmd.args().skip(1).collect::<Vec<_>>(),
///            [&b"1.5"[..], b"alice", b"2", b"bob", b"10", b"dave", b"3", b"carol"]);
/// ```
///
/// ```compile_fail
/// # use redis_commands as redis_client;
/// use redis_client::{Cmd, ScoredMembers};
/// [("alice", 1.5)].write_scored(&mut Cmd::new("ZADD")); // member first: refused
/// ```
pub trait ScoredMembers {
    /// Appends `score member` for each member.
    fn write_scored(&self, cmd: &mut Cmd);
}

/// One member.
impl<S: Number, M: ToArgs> ScoredMembers for (S, M) {
    fn write_scored(&self, cmd: &mut Cmd) {
        self.0.write_number(cmd);
        cmd.arg(&self.1);
    }
}

impl<S: Number, M: ToArgs> ScoredMembers for [(S, M)] {
    fn write_scored(&self, cmd: &mut Cmd) {
        self.iter().for_each(|p| p.write_scored(cmd));
    }
}

impl<S: Number, M: ToArgs, const N: usize> ScoredMembers for [(S, M); N] {
    fn write_scored(&self, cmd: &mut Cmd) {
        self.iter().for_each(|p| p.write_scored(cmd));
    }
}

impl<S: Number, M: ToArgs> ScoredMembers for Vec<(S, M)> {
    fn write_scored(&self, cmd: &mut Cmd) {
        self.iter().for_each(|p| p.write_scored(cmd));
    }
}

impl<T: ScoredMembers + ?Sized> ScoredMembers for &T {
    fn write_scored(&self, cmd: &mut Cmd) {
        (**self).write_scored(cmd);
    }
}

/// Member to score, in the map's iteration order.
impl<M: ToArgs, S: Number, H> ScoredMembers for std::collections::HashMap<M, S, H> {
    fn write_scored(&self, cmd: &mut Cmd) {
        self.iter().for_each(|(m, s)| {
            s.write_number(cmd);
            cmd.arg(m);
        });
    }
}

/// Member to score, in the map's order.
impl<M: ToArgs, S: Number> ScoredMembers for std::collections::BTreeMap<M, S> {
    fn write_scored(&self, cmd: &mut Cmd) {
        self.iter().for_each(|(m, s)| {
            s.write_number(cmd);
            cmd.arg(m);
        });
    }
}

/// Condition and comparison flags of `ZADD` (`NX`/`XX`, `GT`/`LT`, `CH`).
///
/// ```
/// # use redis_commands as redis_client;
/// use redis_client::ZaddOptions;
/// let only_raise = ZaddOptions::default().xx().gt().ch();
/// # let _ = only_raise;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[must_use = "options do nothing until passed to a command"]
pub struct ZaddOptions {
    condition: Option<&'static str>,
    comparison: Option<&'static str>,
    ch: bool,
}

impl ZaddOptions {
    /// Only add new members, never update existing ones (`NX`).
    pub fn nx(mut self) -> Self {
        self.condition = Some("NX");
        self
    }

    /// Only update existing members, never add new ones (`XX`).
    pub fn xx(mut self) -> Self {
        self.condition = Some("XX");
        self
    }

    /// Only update a score when the new one is greater (`GT`).
    pub fn gt(mut self) -> Self {
        self.comparison = Some("GT");
        self
    }

    /// Only update a score when the new one is less (`LT`).
    pub fn lt(mut self) -> Self {
        self.comparison = Some("LT");
        self
    }

    /// Count changed members too, not only added ones (`CH`).
    pub fn ch(mut self) -> Self {
        self.ch = true;
        self
    }
}

impl ToArgs for ZaddOptions {
    fn write_args(&self, cmd: &mut Cmd) {
        cmd.arg(self.condition).arg(self.comparison);
        if self.ch {
            cmd.arg("CH");
        }
    }
}

/// One end of a score interval: `1.5`, `(1.5` (exclusive), `-inf`, `+inf`.
///
/// An `f64` converts to an inclusive bound (infinities to `-inf`/`+inf`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ScoreBound {
    /// The score itself is in the interval.
    Inclusive(f64),
    /// The score itself is not in the interval.
    Exclusive(f64),
    /// Below every score (`-inf`).
    NegInf,
    /// Above every score (`+inf`).
    PosInf,
}

impl From<f64> for ScoreBound {
    fn from(x: f64) -> Self {
        ScoreBound::Inclusive(x)
    }
}

impl From<i64> for ScoreBound {
    fn from(x: i64) -> Self {
        ScoreBound::Inclusive(x as f64)
    }
}

impl ToArgs for ScoreBound {
    fn write_args(&self, cmd: &mut Cmd) {
        match *self {
            ScoreBound::Inclusive(x) => {
                cmd.arg(x);
            }
            ScoreBound::Exclusive(x) => {
                // The encoder writes floats as Redis parses them (`inf`, exponents); only
                // the `(` prefix is added here.
                let text = Cmd::from_args(x);
                let mut arg = vec![b'('];
                arg.extend_from_slice(text.args().next().unwrap_or_default());
                cmd.push_arg(&arg);
            }
            ScoreBound::NegInf => {
                cmd.arg("-inf");
            }
            ScoreBound::PosInf => {
                cmd.arg("+inf");
            }
        }
    }
}

/// One end of a lexicographic interval: `[a` (inclusive), `(a` (exclusive), `-`, `+`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LexBound {
    /// The member itself is in the interval (`[member`).
    Inclusive(Bytes),
    /// The member itself is not in the interval (`(member`).
    Exclusive(Bytes),
    /// Before every member (`-`).
    Min,
    /// After every member (`+`).
    Max,
}

impl LexBound {
    /// `[member`.
    pub fn inclusive(member: impl AsRef<[u8]>) -> Self {
        LexBound::Inclusive(Bytes::copy_from_slice(member.as_ref()))
    }

    /// `(member`.
    pub fn exclusive(member: impl AsRef<[u8]>) -> Self {
        LexBound::Exclusive(Bytes::copy_from_slice(member.as_ref()))
    }
}

impl ToArgs for LexBound {
    fn write_args(&self, cmd: &mut Cmd) {
        let prefixed = |p: u8, m: &Bytes| {
            let mut a = Vec::with_capacity(m.len() + 1);
            a.push(p);
            a.extend_from_slice(m);
            a
        };
        match self {
            LexBound::Inclusive(m) => cmd.push_arg(&prefixed(b'[', m)),
            LexBound::Exclusive(m) => cmd.push_arg(&prefixed(b'(', m)),
            LexBound::Min => cmd.push_arg(b"-"),
            LexBound::Max => cmd.push_arg(b"+"),
        }
    }
}

/// `LIMIT offset count`: skip `offset` results, return at most `count` (negative: all).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "options do nothing until passed to a command"]
pub struct Limit {
    /// Results skipped.
    pub offset: i64,
    /// Results returned at most; negative for all the rest.
    pub count: i64,
}

impl Limit {
    /// `LIMIT offset count`.
    pub fn new(offset: i64, count: i64) -> Self {
        Limit { offset, count }
    }
}

impl ToArgs for Limit {
    fn write_args(&self, cmd: &mut Cmd) {
        cmd.arg("LIMIT").arg(self.offset).arg(self.count);
    }
}

/// Which members `ZRANGE` and `ZRANGESTORE` select: by rank, by score or by member name,
/// in either order, optionally paged.
///
/// Score and lex intervals are always given low end first; for [`ZRange::rev`] the
/// arguments are sent high end first, as the server wants them.
///
/// ```
/// # use redis_commands as redis_client;
/// use redis_client::{LexBound, ScoreBound, ZRange};
/// let top3 = ZRange::by_index(0, 2).rev();
/// let cheap = ZRange::by_score(ScoreBound::NegInf, ScoreBound::Exclusive(10.0)).limit(0, 5);
/// let names = ZRange::by_lex(LexBound::inclusive("a"), LexBound::Max);
/// # let _ = (top3, cheap, names);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[must_use = "options do nothing until passed to a command"]
pub struct ZRange {
    by: RangeBy,
    rev: bool,
    limit: Option<Limit>,
}

#[derive(Clone, Debug, PartialEq)]
enum RangeBy {
    Index(i64, i64),
    Score(ScoreBound, ScoreBound),
    Lex(LexBound, LexBound),
}

impl ZRange {
    /// Members at ranks `start..=stop` (negative counts from the end).
    pub fn by_index(start: i64, stop: i64) -> Self {
        Self::new(RangeBy::Index(start, stop))
    }

    /// Members with scores between `min` and `max` (`BYSCORE`).
    pub fn by_score(min: impl Into<ScoreBound>, max: impl Into<ScoreBound>) -> Self {
        Self::new(RangeBy::Score(min.into(), max.into()))
    }

    /// Members between `min` and `max` in byte order, for members of equal score
    /// (`BYLEX`).
    pub fn by_lex(min: LexBound, max: LexBound) -> Self {
        Self::new(RangeBy::Lex(min, max))
    }

    /// Highest first (`REV`).
    pub fn rev(mut self) -> Self {
        self.rev = true;
        self
    }

    /// Skip `offset` results and return at most `count` (`LIMIT`; by score or lex only).
    pub fn limit(mut self, offset: i64, count: i64) -> Self {
        self.limit = Some(Limit::new(offset, count));
        self
    }

    fn new(by: RangeBy) -> Self {
        ZRange {
            by,
            rev: false,
            limit: None,
        }
    }
}

impl ToArgs for ZRange {
    fn write_args(&self, cmd: &mut Cmd) {
        match &self.by {
            RangeBy::Index(start, stop) => {
                cmd.arg(*start).arg(*stop);
            }
            RangeBy::Score(min, max) => {
                if self.rev {
                    cmd.arg(max).arg(min);
                } else {
                    cmd.arg(min).arg(max);
                }
                cmd.arg("BYSCORE");
            }
            RangeBy::Lex(min, max) => {
                if self.rev {
                    cmd.arg(max).arg(min);
                } else {
                    cmd.arg(min).arg(max);
                }
                cmd.arg("BYLEX");
            }
        }
        if self.rev {
            cmd.arg("REV");
        }
        cmd.arg(self.limit);
    }
}

/// How `ZUNION`/`ZINTER` combine the scores of a member found in several sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aggregate {
    /// Add them (the default).
    Sum,
    /// Keep the lowest.
    Min,
    /// Keep the highest.
    Max,
}

/// `WEIGHTS` and `AGGREGATE` of `ZUNION`, `ZINTER` and their `STORE` forms.
///
/// ```
/// # use redis_commands as redis_client;
/// use redis_client::{Aggregate, ZAggregateOptions};
/// let opts = ZAggregateOptions::default().weights([1.0, 2.0]).aggregate(Aggregate::Max);
/// # let _ = opts;
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[must_use = "options do nothing until passed to a command"]
pub struct ZAggregateOptions {
    weights: Vec<f64>,
    aggregate: Option<Aggregate>,
}

impl ZAggregateOptions {
    /// Multiplies each input set's scores by its weight, in key order (`WEIGHTS`); any
    /// [`Number`]: `weights([1, 2])` or `weights([0.5, 2.0])`.
    pub fn weights<W: Number>(mut self, weights: impl IntoIterator<Item = W>) -> Self {
        self.weights = weights.into_iter().map(Number::to_f64).collect();
        self
    }

    /// How scores are combined (`AGGREGATE`).
    pub fn aggregate(mut self, aggregate: Aggregate) -> Self {
        self.aggregate = Some(aggregate);
        self
    }
}

impl ToArgs for ZAggregateOptions {
    fn write_args(&self, cmd: &mut Cmd) {
        if !self.weights.is_empty() {
            cmd.arg("WEIGHTS").arg(&self.weights[..]);
        }
        if let Some(a) = self.aggregate {
            cmd.arg("AGGREGATE").arg(match a {
                Aggregate::Sum => "SUM",
                Aggregate::Min => "MIN",
                Aggregate::Max => "MAX",
            });
        }
    }
}

/// Which end `ZMPOP`/`BZMPOP` pop from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MinMax {
    /// Lowest scores first (`MIN`).
    Min,
    /// Highest scores first (`MAX`).
    Max,
}

impl ToArgs for MinMax {
    fn write_args(&self, cmd: &mut Cmd) {
        cmd.arg(match self {
            MinMax::Min => "MIN",
            MinMax::Max => "MAX",
        });
    }
}

/// The number of arguments `a` encodes to, for `numkeys` arguments sent before the keys.
pub(crate) fn count_args<A: ToArgs>(a: &A) -> usize {
    Cmd::from_args(a).argc()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: impl ToArgs) -> Vec<String> {
        Cmd::from_args(a)
            .args()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    }

    #[test]
    fn bounds_encode_as_redis_parses_them() {
        assert_eq!(args(ScoreBound::Exclusive(1.5)), ["(1.5"]);
        assert_eq!(args(ScoreBound::Inclusive(f64::INFINITY)), ["inf"]);
        assert_eq!(
            args((ScoreBound::NegInf, ScoreBound::PosInf)),
            ["-inf", "+inf"]
        );
        assert_eq!(
            args((
                LexBound::inclusive("a"),
                LexBound::exclusive("b"),
                LexBound::Min
            )),
            ["[a", "(b", "-"]
        );
    }

    #[test]
    fn zrange_forms() {
        assert_eq!(args(ZRange::by_index(0, -1)), ["0", "-1"]);
        assert_eq!(
            args(ZRange::by_score(1.0, ScoreBound::PosInf).rev().limit(0, 2)),
            ["+inf", "1", "BYSCORE", "REV", "LIMIT", "0", "2"]
        );
        assert_eq!(
            args(ZRange::by_lex(LexBound::Min, LexBound::inclusive("c"))),
            ["-", "[c", "BYLEX"]
        );
    }

    #[test]
    fn zadd_and_aggregate_options() {
        assert_eq!(
            args(ZaddOptions::default().xx().lt().ch()),
            ["XX", "LT", "CH"]
        );
        assert_eq!(
            args(
                ZAggregateOptions::default()
                    .weights([2.0, 0.5])
                    .aggregate(Aggregate::Min)
            ),
            ["WEIGHTS", "2", "0.5", "AGGREGATE", "MIN"]
        );
    }
}
