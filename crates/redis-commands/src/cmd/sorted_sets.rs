//! Commands on sorted sets.
//!
//! Scores, increments and weights are any [`Number`] (`10`, `2.5`), sent as
//! Redis parses them (`inf`, `-inf`, exponents); scores in replies are `f64`. Commands whose
//! reply carries scores (`WITHSCORES`, pops) return `(member, score)` pairs, the same over
//! RESP2 (a flat array, scores as strings) and RESP3 (pairs, scores as doubles).

use crate::time::TimeoutSecs;
use crate::zset_types::count_args;
use crate::{Limit, MinMax, Number, ScoredMembers, ToArgs, ZAggregateOptions, ZRange, ZaddOptions};
use bytes::Bytes;
use std::time::Duration;

commands! {
    /// Commands on sorted sets. See <https://redis.io/commands/?group=sorted-set>.
    pub trait SortedSetCommands, table SORTED_SETS;

    /// Adds members to the sorted set at `key`, updating the scores of members already
    /// there; returns how many were added. `items` are `(score, member)` pairs, the score
    /// any number (`[(10, "ada"), (7.5, "bob")]`; a pair written the other way round does
    /// not compile), or a map from member to score; see [`ScoredMembers`].
    /// See <https://redis.io/commands/zadd/>.
    "ZADD" [] fn zadd<K: ToArgs, M: ScoredMembers>(key: K, items: M) -> i64
        => |c| { c.key(key); items.write_scored(c); }

    /// `ZADD` with `NX`/`XX`, `GT`/`LT` and `CH`; returns how many were added (or, with
    /// `CH`, added or changed).
    /// See <https://redis.io/commands/zadd/>.
    "ZADD" [] fn zadd_options<K: ToArgs, M: ScoredMembers>(key: K, options: ZaddOptions, items: M) -> i64
        => |c| { c.key(key).arg(options); items.write_scored(c); }

    /// `ZADD … INCR`: adds `increment` to `member`'s score and returns the new score, or
    /// `None` when the options prevented the update.
    /// See <https://redis.io/commands/zadd/>.
    "ZADD" [] fn zadd_incr<K: ToArgs, N: Number, M: ToArgs>(key: K, options: ZaddOptions, increment: N, member: M) -> Option<f64>
        => |c| { c.key(key).arg(options).arg("INCR"); increment.write_number(c); c.arg(member); }

    /// Returns the number of members.
    /// See <https://redis.io/commands/zcard/>.
    "ZCARD" [READONLY | CACHEABLE] fn zcard<K: ToArgs>(key: K) -> i64 => |c| { c.key(key); }

    /// Counts the members with scores between `min` and `max` (an `f64`, a
    /// [`ScoreBound`](crate::ScoreBound), or text such as `"(1"` or `"-inf"`).
    /// See <https://redis.io/commands/zcount/>.
    "ZCOUNT" [READONLY | CACHEABLE] fn zcount<K: ToArgs, A: ToArgs, B: ToArgs>(key: K, min: A, max: B) -> i64
        => |c| { c.key(key).arg(min).arg(max); }

    /// Counts the members between `min` and `max` in byte order (a
    /// [`LexBound`](crate::LexBound), or text such as `"[a"` or `"-"`).
    /// See <https://redis.io/commands/zlexcount/>.
    "ZLEXCOUNT" [READONLY | CACHEABLE] fn zlexcount<K: ToArgs, A: ToArgs, B: ToArgs>(key: K, min: A, max: B) -> i64
        => |c| { c.key(key).arg(min).arg(max); }

    /// Returns `member`'s score, or `None` if it is not in the set.
    /// See <https://redis.io/commands/zscore/>.
    "ZSCORE" [READONLY | CACHEABLE] fn zscore<K: ToArgs, M: ToArgs>(key: K, member: M) -> Option<f64>
        => |c| { c.key(key).arg(member); }

    /// Returns the score of each of `members`, `None` for those not in the set.
    /// See <https://redis.io/commands/zmscore/>.
    "ZMSCORE" [READONLY | CACHEABLE] fn zmscore<K: ToArgs, M: ToArgs>(key: K, members: M) -> Vec<Option<f64>>
        => |c| { c.key(key).arg(members); }

    /// Adds `increment` to `member`'s score (adding the member if needed) and returns the
    /// new score.
    /// See <https://redis.io/commands/zincrby/>.
    "ZINCRBY" [] fn zincrby<K: ToArgs, N: Number, M: ToArgs>(key: K, increment: N, member: M) -> f64
        => |c| { c.key(key); increment.write_number(c); c.arg(member); }

    /// Returns `member`'s rank, lowest score first, or `None` if it is not in the set.
    /// See <https://redis.io/commands/zrank/>.
    "ZRANK" [READONLY | CACHEABLE] fn zrank<K: ToArgs, M: ToArgs>(key: K, member: M) -> Option<i64>
        => |c| { c.key(key).arg(member); }

    /// Returns `member`'s rank, highest score first, or `None` if it is not in the set.
    /// See <https://redis.io/commands/zrevrank/>.
    "ZREVRANK" [READONLY | CACHEABLE] fn zrevrank<K: ToArgs, M: ToArgs>(key: K, member: M) -> Option<i64>
        => |c| { c.key(key).arg(member); }

    /// Removes `members` and returns how many were there.
    /// See <https://redis.io/commands/zrem/>.
    "ZREM" [] fn zrem<K: ToArgs, M: ToArgs>(key: K, members: M) -> i64
        => |c| { c.key(key).arg(members); }

    /// Removes the members ranked `start..=stop` and returns how many were removed.
    /// See <https://redis.io/commands/zremrangebyrank/>.
    "ZREMRANGEBYRANK" [] fn zremrangebyrank<K: ToArgs>(key: K, start: i64, stop: i64) -> i64
        => |c| { c.key(key).arg(start).arg(stop); }

    /// Removes the members with scores between `min` and `max`; returns how many.
    /// See <https://redis.io/commands/zremrangebyscore/>.
    "ZREMRANGEBYSCORE" [] fn zremrangebyscore<K: ToArgs, A: ToArgs, B: ToArgs>(key: K, min: A, max: B) -> i64
        => |c| { c.key(key).arg(min).arg(max); }

    /// Removes the members between `min` and `max` in byte order; returns how many.
    /// See <https://redis.io/commands/zremrangebylex/>.
    "ZREMRANGEBYLEX" [] fn zremrangebylex<K: ToArgs, A: ToArgs, B: ToArgs>(key: K, min: A, max: B) -> i64
        => |c| { c.key(key).arg(min).arg(max); }

    /// Returns the members `range` selects (by rank, score or name; see [`ZRange`]).
    /// See <https://redis.io/commands/zrange/>.
    "ZRANGE" [READONLY | CACHEABLE] fn zrange<K: ToArgs>(key: K, range: ZRange) -> Vec<Bytes>
        => |c| { c.key(key).arg(range); }

    /// Returns the members `range` selects with their scores (`WITHSCORES`).
    /// See <https://redis.io/commands/zrange/>.
    "ZRANGE" [READONLY | CACHEABLE] fn zrange_withscores<K: ToArgs>(key: K, range: ZRange) -> Vec<(Bytes, f64)>
        => |c| { c.key(key).arg(range).arg("WITHSCORES"); }

    /// Stores the members of `src` that `range` selects in `dst`; returns how many.
    /// See <https://redis.io/commands/zrangestore/>.
    "ZRANGESTORE" [] fn zrangestore<D: ToArgs, S: ToArgs>(dst: D, src: S, range: ZRange) -> i64
        => |c| { c.key(dst).key(src).arg(range); }

    /// Returns the members with scores between `min` and `max`, lowest first.
    /// See <https://redis.io/commands/zrangebyscore/>.
    "ZRANGEBYSCORE" [READONLY | CACHEABLE] fn zrangebyscore<K: ToArgs, A: ToArgs, B: ToArgs>(key: K, min: A, max: B, limit: Option<Limit>) -> Vec<Bytes>
        => |c| { c.key(key).arg(min).arg(max).arg(limit); }

    /// Returns the members with scores between `min` and `max`, lowest first, with their
    /// scores.
    /// See <https://redis.io/commands/zrangebyscore/>.
    "ZRANGEBYSCORE" [READONLY | CACHEABLE] fn zrangebyscore_withscores<K: ToArgs, A: ToArgs, B: ToArgs>(key: K, min: A, max: B, limit: Option<Limit>) -> Vec<(Bytes, f64)>
        => |c| { c.key(key).arg(min).arg(max).arg("WITHSCORES").arg(limit); }

    /// Returns the members with scores between `max` and `min`, highest first.
    /// See <https://redis.io/commands/zrevrangebyscore/>.
    "ZREVRANGEBYSCORE" [READONLY | CACHEABLE] fn zrevrangebyscore<K: ToArgs, A: ToArgs, B: ToArgs>(key: K, max: A, min: B, limit: Option<Limit>) -> Vec<Bytes>
        => |c| { c.key(key).arg(max).arg(min).arg(limit); }

    /// Returns the members with scores between `max` and `min`, highest first, with their
    /// scores.
    /// See <https://redis.io/commands/zrevrangebyscore/>.
    "ZREVRANGEBYSCORE" [READONLY | CACHEABLE] fn zrevrangebyscore_withscores<K: ToArgs, A: ToArgs, B: ToArgs>(key: K, max: A, min: B, limit: Option<Limit>) -> Vec<(Bytes, f64)>
        => |c| { c.key(key).arg(max).arg(min).arg("WITHSCORES").arg(limit); }

    /// Returns the members ranked `start..=stop`, highest score first.
    /// See <https://redis.io/commands/zrevrange/>.
    "ZREVRANGE" [READONLY | CACHEABLE] fn zrevrange<K: ToArgs>(key: K, start: i64, stop: i64) -> Vec<Bytes>
        => |c| { c.key(key).arg(start).arg(stop); }

    /// Returns the members ranked `start..=stop`, highest score first, with their scores.
    /// See <https://redis.io/commands/zrevrange/>.
    "ZREVRANGE" [READONLY | CACHEABLE] fn zrevrange_withscores<K: ToArgs>(key: K, start: i64, stop: i64) -> Vec<(Bytes, f64)>
        => |c| { c.key(key).arg(start).arg(stop).arg("WITHSCORES"); }

    /// Returns the members between `min` and `max` in byte order.
    /// See <https://redis.io/commands/zrangebylex/>.
    "ZRANGEBYLEX" [READONLY | CACHEABLE] fn zrangebylex<K: ToArgs, A: ToArgs, B: ToArgs>(key: K, min: A, max: B, limit: Option<Limit>) -> Vec<Bytes>
        => |c| { c.key(key).arg(min).arg(max).arg(limit); }

    /// Returns the members between `max` and `min` in reverse byte order.
    /// See <https://redis.io/commands/zrevrangebylex/>.
    "ZREVRANGEBYLEX" [READONLY | CACHEABLE] fn zrevrangebylex<K: ToArgs, A: ToArgs, B: ToArgs>(key: K, max: A, min: B, limit: Option<Limit>) -> Vec<Bytes>
        => |c| { c.key(key).arg(max).arg(min).arg(limit); }

    /// Removes and returns up to `count` members with the lowest scores.
    /// See <https://redis.io/commands/zpopmin/>.
    "ZPOPMIN" [] fn zpopmin<K: ToArgs>(key: K, count: u64) -> Vec<(Bytes, f64)>
        => |c| { c.key(key).arg(count); }

    /// Removes and returns up to `count` members with the highest scores.
    /// See <https://redis.io/commands/zpopmax/>.
    "ZPOPMAX" [] fn zpopmax<K: ToArgs>(key: K, count: u64) -> Vec<(Bytes, f64)>
        => |c| { c.key(key).arg(count); }

    /// Pops the lowest-scored member of the first non-empty set of `keys`, waiting up to
    /// `timeout` (`Duration::ZERO`: forever); returns `(key, member, score)`, or `None` on timeout.
    /// See <https://redis.io/commands/bzpopmin/>.
    "BZPOPMIN" [BLOCKING] fn bzpopmin<K: ToArgs>(keys: K, timeout: Duration) -> Option<(Bytes, Bytes, f64)>
        => |c| { c.key(keys).arg(TimeoutSecs(timeout)).block_for(timeout); }

    /// Pops the highest-scored member of the first non-empty set of `keys`, waiting up to
    /// `timeout` (`Duration::ZERO`: forever); returns `(key, member, score)`, or `None` on timeout.
    /// See <https://redis.io/commands/bzpopmax/>.
    "BZPOPMAX" [BLOCKING] fn bzpopmax<K: ToArgs>(keys: K, timeout: Duration) -> Option<(Bytes, Bytes, f64)>
        => |c| { c.key(keys).arg(TimeoutSecs(timeout)).block_for(timeout); }

    /// Pops up to `count` members from the first non-empty set of `keys`, from the `MIN`
    /// or `MAX` end; returns the key and the popped pairs, or `None` if all are empty.
    /// See <https://redis.io/commands/zmpop/>.
    "ZMPOP" [] fn zmpop<K: ToArgs>(keys: K, side: MinMax, count: u64) -> Option<(Bytes, Vec<(Bytes, f64)>)>
        => |c| { c.arg(count_args(&keys)).key(keys).arg(side).arg("COUNT").arg(count); }

    /// `zmpop`, waiting up to `timeout` (`Duration::ZERO`: forever) for a
    /// non-empty set; `None` on timeout.
    /// See <https://redis.io/commands/bzmpop/>.
    "BZMPOP" [BLOCKING] fn bzmpop<K: ToArgs>(timeout: Duration, keys: K, side: MinMax, count: u64) -> Option<(Bytes, Vec<(Bytes, f64)>)>
        => |c| {
            c.arg(TimeoutSecs(timeout)).block_for(timeout);
            c.arg(count_args(&keys)).key(keys).arg(side).arg("COUNT").arg(count);
        }

    /// Returns a random member, or `None` if the set is empty.
    /// See <https://redis.io/commands/zrandmember/>.
    "ZRANDMEMBER" [READONLY] fn zrandmember<K: ToArgs>(key: K) -> Option<Bytes> => |c| { c.key(key); }

    /// Returns up to `count` distinct random members (negative: `-count` members, maybe
    /// repeated).
    /// See <https://redis.io/commands/zrandmember/>.
    "ZRANDMEMBER" [READONLY] fn zrandmember_count<K: ToArgs>(key: K, count: i64) -> Vec<Bytes>
        => |c| { c.key(key).arg(count); }

    /// As `zrandmember_count`, with scores.
    /// See <https://redis.io/commands/zrandmember/>.
    "ZRANDMEMBER" [READONLY] fn zrandmember_withscores<K: ToArgs>(key: K, count: i64) -> Vec<(Bytes, f64)>
        => |c| { c.key(key).arg(count).arg("WITHSCORES"); }

    /// Returns the union of the sets at `keys`.
    /// See <https://redis.io/commands/zunion/>.
    "ZUNION" [READONLY] fn zunion<K: ToArgs>(keys: K, options: ZAggregateOptions) -> Vec<Bytes>
        => |c| { c.arg(count_args(&keys)).key(keys).arg(options); }

    /// Returns the union of the sets at `keys`, with the combined scores.
    /// See <https://redis.io/commands/zunion/>.
    "ZUNION" [READONLY] fn zunion_withscores<K: ToArgs>(keys: K, options: ZAggregateOptions) -> Vec<(Bytes, f64)>
        => |c| { c.arg(count_args(&keys)).key(keys).arg(options).arg("WITHSCORES"); }

    /// Stores the union of the sets at `keys` in `dst`; returns its size.
    /// See <https://redis.io/commands/zunionstore/>.
    "ZUNIONSTORE" [] fn zunionstore<D: ToArgs, K: ToArgs>(dst: D, keys: K, options: ZAggregateOptions) -> i64
        => |c| { c.key(dst).arg(count_args(&keys)).key(keys).arg(options); }

    /// Returns the intersection of the sets at `keys`.
    /// See <https://redis.io/commands/zinter/>.
    "ZINTER" [READONLY] fn zinter<K: ToArgs>(keys: K, options: ZAggregateOptions) -> Vec<Bytes>
        => |c| { c.arg(count_args(&keys)).key(keys).arg(options); }

    /// Returns the intersection of the sets at `keys`, with the combined scores.
    /// See <https://redis.io/commands/zinter/>.
    "ZINTER" [READONLY] fn zinter_withscores<K: ToArgs>(keys: K, options: ZAggregateOptions) -> Vec<(Bytes, f64)>
        => |c| { c.arg(count_args(&keys)).key(keys).arg(options).arg("WITHSCORES"); }

    /// Stores the intersection of the sets at `keys` in `dst`; returns its size.
    /// See <https://redis.io/commands/zinterstore/>.
    "ZINTERSTORE" [] fn zinterstore<D: ToArgs, K: ToArgs>(dst: D, keys: K, options: ZAggregateOptions) -> i64
        => |c| { c.key(dst).arg(count_args(&keys)).key(keys).arg(options); }

    /// Returns the size of the intersection of the sets at `keys`, counting no further
    /// than `limit` when given.
    /// See <https://redis.io/commands/zintercard/>.
    "ZINTERCARD" [READONLY] fn zintercard<K: ToArgs>(keys: K, limit: Option<u64>) -> i64
        => |c| {
            c.arg(count_args(&keys)).key(keys);
            if let Some(n) = limit {
                c.arg("LIMIT").arg(n);
            }
        }

    /// Returns the members of the first set at `keys` that are in none of the others.
    /// See <https://redis.io/commands/zdiff/>.
    "ZDIFF" [READONLY] fn zdiff<K: ToArgs>(keys: K) -> Vec<Bytes>
        => |c| { c.arg(count_args(&keys)).key(keys); }

    /// As `zdiff`, with scores.
    /// See <https://redis.io/commands/zdiff/>.
    "ZDIFF" [READONLY] fn zdiff_withscores<K: ToArgs>(keys: K) -> Vec<(Bytes, f64)>
        => |c| { c.arg(count_args(&keys)).key(keys).arg("WITHSCORES"); }

    /// Stores the difference of the sets at `keys` in `dst`; returns its size.
    /// See <https://redis.io/commands/zdiffstore/>.
    "ZDIFFSTORE" [] fn zdiffstore<D: ToArgs, K: ToArgs>(dst: D, keys: K) -> i64
        => |c| { c.key(dst).arg(count_args(&keys)).key(keys); }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Block, Flags, ScoreBound};

    fn words<T>(t: &crate::Typed<T>) -> Vec<String> {
        t.cmd
            .args()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    }

    #[test]
    fn numkeys_precede_keys_and_keys_are_marked() {
        let t = zunionstore(
            "dst",
            ["a", "b"],
            ZAggregateOptions::default().weights([1.0, 2.0]),
        );
        assert_eq!(
            words(&t),
            ["ZUNIONSTORE", "dst", "2", "a", "b", "WEIGHTS", "1", "2"]
        );
        assert_eq!(t.cmd.keys().collect::<Vec<_>>(), [&b"dst"[..], b"a", b"b"]);
    }

    #[test]
    fn blocking_pops_carry_their_timeout() {
        let t = bzmpop(Duration::from_millis(1500), ["z"], MinMax::Max, 2);
        assert_eq!(words(&t), ["BZMPOP", "1.5", "1", "z", "MAX", "COUNT", "2"]);
        assert_eq!(
            t.cmd.blocking_timeout(),
            Block::For(std::time::Duration::from_millis(1500))
        );
        assert!(bzpopmin("z", Duration::ZERO)
            .cmd
            .flags()
            .contains(Flags::BLOCKING));
        assert_eq!(
            bzpopmin("z", Duration::ZERO).cmd.blocking_timeout(),
            Block::Forever
        );
    }

    #[test]
    fn score_arguments() {
        let t = zadd_incr("z", ZaddOptions::default().gt(), f64::NEG_INFINITY, "m");
        assert_eq!(words(&t), ["ZADD", "z", "GT", "INCR", "-inf", "m"]);
        let t = zcount("z", ScoreBound::Exclusive(1.0), "+inf");
        assert_eq!(words(&t), ["ZCOUNT", "z", "(1", "+inf"]);
    }
}
