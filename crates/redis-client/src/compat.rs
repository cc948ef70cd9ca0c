//! redis-py 2.7.6's backward-compatible `Redis` class: the strict client with the
//! argument orders of LREM, ZADD and SETEX its early versions used, and TTL/PTTL giving
//! `None` for a key without expiry.
//!
//! New code should use [`Redis`]; this exists so that code ported from redis-py 2.7.6's
//! legacy class keeps its meaning.

use crate::client::convert;
use crate::{Pipeline, Redis, Result};
use redis_commands::{Cmd, Executor, Flags, FromValue, Number, ToArgs, Typed};
use redis_conn::{ConnectionInfo, ConnectionPool};
use resp_proto::Value;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

/// The legacy client: [`Redis`] in every respect but five commands, whose inherent methods
/// here shadow the strict ones:
///
/// | method | sends |
/// | --- | --- |
/// | `lrem(key, value, num)` | `LREM key num value` |
/// | `zadd(key, [(member, score), …])` | `ZADD key score member …` |
/// | `setex(key, value, time)` | `SETEX key time value` (`time` a `Duration`, as everywhere) |
/// | `ttl(key)`, `pttl(key)` | `TTL key`, `PTTL key`; `None` where the server says -1 (no expiry) |
///
/// A missing key still gives `Some(-2)`, as the server says. Every other command, the
/// pipeline's included, is the strict one; the strict client is
/// [`strict`](LegacyRedis::strict) away. Generic code over [`Executor`] (and the immediate
/// mode of a WATCHed pipeline) sees the strict signatures, since only inherent methods
/// differ.
///
/// ```no_run
/// use redis_client::compat::LegacyRedis;
/// use redis_client::prelude::*;
/// use std::time::Duration;
///
/// let r = LegacyRedis::open("redis://localhost")?;
/// r.setex("session", "data", Duration::from_secs(60))?; // value before time
/// r.zadd("ranking", [("alice", 10.0), ("bob", 7.5)])?; // member before score
/// assert_eq!(r.ttl("ranking")?, None); // no expiry
/// # Ok::<(), redis_client::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct LegacyRedis {
    inner: Redis,
}

impl LegacyRedis {
    /// A legacy client for the server at `url`, with its own pool.
    ///
    /// # Errors
    /// [`Error::Url`](crate::Error::Url) when the URL is invalid.
    pub fn open(url: &str) -> Result<LegacyRedis> {
        Redis::open(url).map(LegacyRedis::from)
    }

    /// A legacy client with its own pool of connections described by `info`.
    pub fn from_info(info: ConnectionInfo) -> LegacyRedis {
        Redis::from_info(info).into()
    }

    /// A legacy client sharing `pool`.
    pub fn from_pool(pool: ConnectionPool) -> LegacyRedis {
        Redis::from_pool(pool).into()
    }

    /// The strict client underneath (same pool, same callbacks).
    pub fn strict(&self) -> &Redis {
        &self.inner
    }

    /// A pipeline with the legacy argument orders.
    pub fn pipeline(&self) -> LegacyPipeline {
        LegacyPipeline {
            inner: self.inner.pipeline(),
        }
    }

    /// Removes up to `num` elements equal to `value` from the list at `key` (0: all,
    /// negative: from the tail); returns how many were removed.
    ///
    /// # Errors
    /// As every command.
    pub fn lrem<K: ToArgs, V: ToArgs>(&self, key: K, value: V, num: i64) -> Result<i64> {
        (&self.inner).run(lrem(key, value, num))
    }

    /// Adds `(member, score)` pairs to the sorted set at `key`, in redis-py 2.7.6's legacy
    /// order (`name1, score1, …`); returns how many were new. The score is any number and
    /// the member never is, so the strict order `(score, member)` does not compile here.
    ///
    /// # Errors
    /// As every command.
    pub fn zadd<K, I, M, S>(&self, key: K, members: I) -> Result<i64>
    where
        K: ToArgs,
        I: IntoIterator<Item = (M, S)>,
        M: ToArgs,
        S: Number,
    {
        (&self.inner).run(zadd(key, members))
    }

    /// Sets `key` to `value`, expiring after `time` (sent in seconds, rounded up, at least
    /// 1, as the strict `setex`).
    ///
    /// # Errors
    /// As every command.
    pub fn setex<K: ToArgs, V: ToArgs>(&self, key: K, value: V, time: Duration) -> Result<bool> {
        (&self.inner).run(setex(key, value, time))
    }

    /// Seconds until `key` expires; `None` when it has no expiry, `Some(-2)` when it does
    /// not exist.
    ///
    /// # Errors
    /// As every command.
    pub fn ttl<K: ToArgs>(&self, key: K) -> Result<Option<i64>> {
        self.expiry(ttl_cmd("TTL", key))
    }

    /// Milliseconds until `key` expires; `None` when it has no expiry, `Some(-2)` when it
    /// does not exist.
    ///
    /// # Errors
    /// As every command.
    pub fn pttl<K: ToArgs>(&self, key: K) -> Result<Option<i64>> {
        self.expiry(ttl_cmd("PTTL", key))
    }

    fn expiry(&self, cmd: Cmd) -> Result<Option<i64>> {
        // The raw reply goes through any callback override first, as on the strict client.
        let v: Value = (&self.inner).run(Typed::new(cmd.clone()))?;
        convert(&cmd, no_expiry_is_none(v))
    }
}

impl From<Redis> for LegacyRedis {
    fn from(inner: Redis) -> Self {
        LegacyRedis { inner }
    }
}

impl Deref for LegacyRedis {
    type Target = Redis;
    fn deref(&self) -> &Redis {
        &self.inner
    }
}

impl DerefMut for LegacyRedis {
    fn deref_mut(&mut self) -> &mut Redis {
        &mut self.inner
    }
}

/// Every strict command, as on [`Redis`].
impl Executor for &LegacyRedis {
    type Mode = redis_commands::BinaryMode;
    type Output<T> = Result<T>;

    fn run<T: FromValue>(self, typed: Typed<T>) -> Result<T> {
        (&self.inner).run(typed)
    }
}

/// A [`Pipeline`] with the legacy argument orders of [`LegacyRedis`]; from
/// [`LegacyRedis::pipeline`].
///
/// Command methods return the `LegacyPipeline`, so legacy and strict commands chain;
/// `execute`, `query`, `watch`, `reset` … are the [`Pipeline`]'s. In its results TTL and
/// PTTL of a key without expiry are nil.
///
/// ```no_run
/// # use redis_client::{compat::LegacyRedis, prelude::*};
/// # use std::time::Duration;
/// # let r = LegacyRedis::open("redis://localhost")?;
/// let mut pipe = r.pipeline();
/// pipe.setex("k", "v", Duration::from_secs(60)).ttl("k").set("other", 1).ttl("other");
/// let (_, ttl, _, none): (bool, Option<i64>, bool, Option<i64>) = pipe.query()?;
/// assert_eq!(none, None);
/// # Ok::<(), redis_client::Error>(())
/// ```
#[derive(Debug)]
#[must_use = "a pipeline sends nothing until `execute`"]
pub struct LegacyPipeline {
    inner: Pipeline,
}

impl LegacyPipeline {
    /// As [`Pipeline::transaction`].
    pub fn transaction(&mut self, transaction: bool) -> &mut Self {
        self.inner.transaction(transaction);
        self
    }

    /// As [`Pipeline::raise_on_error`].
    pub fn raise_on_error(&mut self, raise: bool) -> &mut Self {
        self.inner.raise_on_error(raise);
        self
    }

    /// As [`Pipeline::execute_command`].
    pub fn execute_command<A: ToArgs>(&mut self, args: A) -> &mut Self {
        self.inner.execute_command(args);
        self
    }

    /// As [`Pipeline::queue`].
    pub fn queue(&mut self, cmd: Cmd) -> &mut Self {
        self.inner.queue(cmd);
        self
    }

    /// Queues [`LegacyRedis::lrem`].
    pub fn lrem<K: ToArgs, V: ToArgs>(&mut self, key: K, value: V, num: i64) -> &mut Self {
        self.inner.push_typed(lrem(key, value, num), None);
        self
    }

    /// Queues [`LegacyRedis::zadd`].
    pub fn zadd<K, I, M, S>(&mut self, key: K, members: I) -> &mut Self
    where
        K: ToArgs,
        I: IntoIterator<Item = (M, S)>,
        M: ToArgs,
        S: Number,
    {
        self.inner.push_typed(zadd(key, members), None);
        self
    }

    /// Queues [`LegacyRedis::setex`].
    pub fn setex<K: ToArgs, V: ToArgs>(&mut self, key: K, value: V, time: Duration) -> &mut Self {
        self.inner.push_typed(setex(key, value, time), None);
        self
    }

    /// Queues [`LegacyRedis::ttl`]; its result is nil for a key without expiry.
    pub fn ttl<K: ToArgs>(&mut self, key: K) -> &mut Self {
        let cmd = Typed::<Option<i64>>::new(ttl_cmd("TTL", key));
        self.inner.push_typed(cmd, Some(no_expiry_is_none));
        self
    }

    /// Queues [`LegacyRedis::pttl`]; its result is nil for a key without expiry.
    pub fn pttl<K: ToArgs>(&mut self, key: K) -> &mut Self {
        let cmd = Typed::<Option<i64>>::new(ttl_cmd("PTTL", key));
        self.inner.push_typed(cmd, Some(no_expiry_is_none));
        self
    }
}

impl Deref for LegacyPipeline {
    type Target = Pipeline;
    fn deref(&self) -> &Pipeline {
        &self.inner
    }
}

impl DerefMut for LegacyPipeline {
    fn deref_mut(&mut self) -> &mut Pipeline {
        &mut self.inner
    }
}

/// Each strict command method queues its command and returns the legacy pipeline.
impl<'a> Executor for &'a mut LegacyPipeline {
    type Mode = redis_commands::BinaryMode;
    type Output<T> = &'a mut LegacyPipeline;

    fn run<T: FromValue>(self, typed: Typed<T>) -> &'a mut LegacyPipeline {
        self.inner.push_typed(typed, None);
        self
    }
}

// The legacy commands, each written once for the client and the pipeline. Their argument
// orders differ from the strict definitions in `redis_commands::cmd`, so they are separate
// definitions rather than wrappers.

/// `LREM key num value`, from the legacy order.
fn lrem<K: ToArgs, V: ToArgs>(key: K, value: V, num: i64) -> Typed<i64> {
    let mut cmd = Cmd::new("LREM");
    cmd.key(key).arg(num).arg(value);
    Typed::new(cmd)
}

/// `ZADD key score member …`, from `(member, score)` pairs.
fn zadd<K, I, M, S>(key: K, members: I) -> Typed<i64>
where
    K: ToArgs,
    I: IntoIterator<Item = (M, S)>,
    M: ToArgs,
    S: Number,
{
    let mut cmd = Cmd::new("ZADD");
    cmd.key(key);
    for (member, score) in members {
        score.write_number(&mut cmd);
        cmd.arg(member);
    }
    Typed::new(cmd)
}

/// `SETEX key time value`, from the legacy order: the strict definition with its
/// arguments swapped, so the time is sent as the strict `setex` sends it.
fn setex<K: ToArgs, V: ToArgs>(key: K, value: V, time: Duration) -> Typed<bool> {
    redis_commands::cmd::strings::setex(key, time, value)
}

/// `TTL key` or `PTTL key`.
fn ttl_cmd<K: ToArgs>(name: &'static str, key: K) -> Cmd {
    let mut cmd = Cmd::new(name).with_flags(Flags::READONLY);
    cmd.key(key);
    cmd
}

/// redis-py 2.7.6's legacy TTL callback: -1 (the key has no expiry) becomes nil. It turned
/// 0 into `None` as well, by accident of Python truthiness; that is not copied.
fn no_expiry_is_none(v: Value) -> Value {
    match v {
        Value::Integer(-1) => Value::Nil,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(cmd: &Cmd) -> Vec<&[u8]> {
        cmd.args().collect()
    }

    #[test]
    fn legacy_argument_orders() {
        assert_eq!(
            args(&lrem("l", "v", 2).cmd),
            [&b"LREM"[..], b"l", b"2", b"v"]
        );
        assert_eq!(
            args(&setex("k", "v", Duration::from_secs(30)).cmd),
            [&b"SETEX"[..], b"k", b"30", b"v"]
        );
        assert_eq!(
            args(&zadd("z", [("a", 1.5), ("b", 2.0)]).cmd),
            [&b"ZADD"[..], b"z", b"1.5", b"a", b"2", b"b"]
        );
        assert_eq!(
            args(&zadd("z", [("a", 3)]).cmd),
            [&b"ZADD"[..], b"z", b"3", b"a"]
        );
    }

    #[test]
    fn only_minus_one_means_no_expiry() {
        assert_eq!(no_expiry_is_none(Value::Integer(-1)), Value::Nil);
        assert_eq!(no_expiry_is_none(Value::Integer(-2)), Value::Integer(-2));
        assert_eq!(no_expiry_is_none(Value::Integer(0)), Value::Integer(0));
    }
}
