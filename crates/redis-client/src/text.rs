//! Text mode: the same clients with replies as `String`s (the reference client's
//! `decode_responses=True`), chosen once for a client and everything made from it.

use crate::compat::LegacyRedis;
use crate::typed::TypedPipeline;
use crate::{Connection, Error, Message, Pipeline, Redis, Result, ScanIter, ScanOptions, Watched};
use bytes::Bytes;
use redis_commands::{
    Executor, FromValue, FromValueError, Number, ScanState, TextMode, ToArgs, Typed,
};
use resp_proto::Value;
use std::ops::{Deref, DerefMut};

/// A client, connection or pipeline whose command methods give text: every byte string
/// of a reply becomes a `String`, checked as UTF-8 (`get` gives `Option<String>`,
/// `hgetall` a `HashMap<String, String>`, `zrange_withscores` `(String, f64)` pairs), and
/// a reply that is not UTF-8 is an [`Error::Reply`](crate::Error::Reply) naming the
/// command. Numbers stay numbers; parsed replies ([`Info`](crate::redis_commands::Info),
/// stream entries …) are the same as in byte mode.
///
/// Made by `text()` on every client ([`Redis`], `aio::Redis`, both `ClusterClient`s, the
/// clients a [`Sentinel`](crate::Sentinel) hands out, [`LegacyRedis`]) and on
/// [`Pipeline`], [`Watched`] and [`Connection`]; what a text client makes
/// ([`pipeline`](Text::pipeline), [`typed_pipeline`](Text::typed_pipeline), `watch`,
/// [`transaction`](Text::transaction), connections, SCAN iterators and streams) is in
/// text mode too, on every client. Everything else the wrapped value offers is reachable
/// through `Deref`, and [`binary`](Text::binary) gives the byte client back. Byte mode
/// stays the default: keys and values are binary safe, and nothing is checked or copied.
/// Pub/sub messages stay bytes as published; [`Message::payload_str`],
/// [`channel_str`](Message::channel_str) and [`pattern_str`](Message::pattern_str) read
/// them as text.
///
/// ```no_run
/// use redis_client::{prelude::*, Redis};
///
/// let r = Redis::open("redis://localhost:6379/0")?.text();
/// r.set("greeting", "hello")?;
/// let greeting = r.get("greeting")?; // Option<String>
/// assert_eq!(greeting.as_deref(), Some("hello"));
/// let fields = r.hgetall("session:1")?; // HashMap<String, String>
/// # Ok::<(), redis_client::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Text<C>(pub(crate) C);

impl<C> Text<C> {
    /// The wrapped value, in byte mode again.
    pub fn into_inner(self) -> C {
        self.0
    }

    /// The wrapped value, whose command methods give bytes.
    pub fn binary(&self) -> &C {
        &self.0
    }
}

impl<C> Deref for Text<C> {
    type Target = C;

    fn deref(&self) -> &C {
        &self.0
    }
}

impl<C> DerefMut for Text<C> {
    fn deref_mut(&mut self) -> &mut C {
        &mut self.0
    }
}

/// A text client runs commands as the client it wraps, with text replies.
impl<'a, C> Executor for &'a Text<C>
where
    &'a C: Executor,
{
    type Mode = TextMode;
    type Output<T> = <&'a C as Executor>::Output<T>;

    fn run<T: FromValue>(self, cmd: Typed<T>) -> Self::Output<T> {
        (&self.0).run(cmd)
    }
}

/// A text pipeline, connection or WATCH-ed pipeline runs commands as the value it wraps.
impl<'a, C> Executor for &'a mut Text<C>
where
    &'a mut C: Executor,
{
    type Mode = TextMode;
    type Output<T> = <&'a mut C as Executor>::Output<T>;

    fn run<T: FromValue>(self, cmd: Typed<T>) -> Self::Output<T> {
        (&mut self.0).run(cmd)
    }
}

impl Redis {
    /// This client in text mode (a clone sharing the same pool): replies as `String`s.
    /// See [`Text`].
    pub fn text(&self) -> Text<Redis> {
        Text(self.clone())
    }
}

impl Text<Redis> {
    /// A pipeline whose queued commands are typed as text (see [`Redis::pipeline`]).
    pub fn pipeline(&self) -> Text<Pipeline> {
        Text(self.0.pipeline())
    }

    /// A pipeline typed by the commands queued on it, with text replies (see
    /// [`Redis::typed_pipeline`]).
    pub fn typed_pipeline(&self) -> TypedPipeline<(), TextMode> {
        TypedPipeline::new(self.0.pipeline())
    }

    /// [`Redis::transaction`] with `f` given the WATCH-ed pipeline in text mode, and
    /// returning the text pipeline to execute.
    ///
    /// # Errors
    /// As [`Redis::transaction`].
    pub fn transaction<K, F>(&self, keys: K, mut f: F) -> Result<Vec<Value>>
    where
        K: ToArgs,
        F: FnMut(Text<Watched>) -> Result<Text<Pipeline>>,
    {
        self.0
            .transaction(keys, |w| f(Text(w)).map(Text::into_inner))
    }

    /// Iterates over the key names of the database as `String`s, lazily (see
    /// [`Redis::scan_iter`]). A name that is not UTF-8 is an error item.
    pub fn scan_iter(&self, options: ScanOptions) -> ScanIter<'_, String> {
        self.0.walk(ScanState::scan(options).items_as())
    }

    /// Iterates over the members of the set at `key` as `String`s (SSCAN).
    pub fn sscan_iter(&self, key: impl Into<Bytes>, options: ScanOptions) -> ScanIter<'_, String> {
        self.0.walk(ScanState::sscan(key, options).items_as())
    }

    /// Iterates over the `(field, value)` pairs of the hash at `key` as `String`s (HSCAN).
    pub fn hscan_iter(
        &self,
        key: impl Into<Bytes>,
        options: ScanOptions,
    ) -> ScanIter<'_, (String, String)> {
        self.0.walk(ScanState::hscan(key, options).items_as())
    }

    /// Iterates over the `(member, score)` pairs of the sorted set at `key` (ZSCAN).
    pub fn zscan_iter(
        &self,
        key: impl Into<Bytes>,
        options: ScanOptions,
    ) -> ScanIter<'_, (String, f64)> {
        self.0.walk(ScanState::zscan(key, options).items_as())
    }

    /// A pooled connection in text mode (see [`Redis::get_connection`]).
    ///
    /// # Errors
    /// As [`Redis::get_connection`].
    pub fn get_connection(&self) -> Result<Text<Connection>> {
        self.0.get_connection().map(Text)
    }

    /// A connection outside the pool in text mode (see [`Redis::dedicated_connection`]).
    ///
    /// # Errors
    /// As [`Redis::dedicated_connection`].
    pub fn dedicated_connection(&self) -> Result<Text<Connection>> {
        self.0.dedicated_connection().map(Text)
    }
}

impl Pipeline {
    /// This pipeline in text mode. Its [`execute`](Pipeline::execute) results are the
    /// same `Value`s either way; the mode types the commands queued through the wrapper.
    pub fn text(self) -> Text<Pipeline> {
        Text(self)
    }
}

impl Text<Pipeline> {
    /// [`Pipeline::transaction`], keeping the pipeline in text mode.
    pub fn transaction(&mut self, transaction: bool) -> &mut Self {
        self.0.transaction(transaction);
        self
    }

    /// [`Pipeline::raise_on_error`], keeping the pipeline in text mode.
    pub fn raise_on_error(&mut self, raise: bool) -> &mut Self {
        self.0.raise_on_error(raise);
        self
    }

    /// [`Pipeline::watch`], with the immediate-mode pipeline in text mode.
    ///
    /// # Errors
    /// As [`Pipeline::watch`].
    pub fn watch<K: ToArgs>(self, keys: K) -> Result<Text<Watched>> {
        self.0.watch(keys).map(Text)
    }
}

impl Watched {
    /// This WATCH-ed pipeline in text mode: reads give `String`s.
    pub fn text(self) -> Text<Watched> {
        Text(self)
    }
}

impl Text<Watched> {
    /// Switches back to buffering, as [`Watched::multi`], in text mode.
    pub fn multi(self) -> Text<Pipeline> {
        Text(self.0.multi())
    }

    /// UNWATCHes and empties the pipeline, as [`Watched::reset`].
    pub fn reset(self) {
        self.0.reset();
    }
}

impl Connection {
    /// This connection in text mode.
    pub fn text(self) -> Text<Connection> {
        Text(self)
    }
}

impl LegacyRedis {
    /// This legacy client in text mode (a clone sharing the same pool).
    pub fn text(&self) -> Text<LegacyRedis> {
        Text(self.clone())
    }
}

/// The legacy argument orders and TTL replies hold in text mode too; none of these
/// replies holds text.
impl Text<LegacyRedis> {
    /// [`LegacyRedis::lrem`].
    ///
    /// # Errors
    /// As every command.
    pub fn lrem<K: ToArgs, V: ToArgs>(&self, key: K, value: V, num: i64) -> Result<i64> {
        self.0.lrem(key, value, num)
    }

    /// [`LegacyRedis::zadd`].
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
        self.0.zadd(key, members)
    }

    /// [`LegacyRedis::setex`].
    ///
    /// # Errors
    /// As every command.
    pub fn setex<K: ToArgs, V: ToArgs>(
        &self,
        key: K,
        value: V,
        time: std::time::Duration,
    ) -> Result<bool> {
        self.0.setex(key, value, time)
    }

    /// [`LegacyRedis::ttl`].
    ///
    /// # Errors
    /// As every command.
    pub fn ttl<K: ToArgs>(&self, key: K) -> Result<Option<i64>> {
        self.0.ttl(key)
    }

    /// [`LegacyRedis::pttl`].
    ///
    /// # Errors
    /// As every command.
    pub fn pttl<K: ToArgs>(&self, key: K) -> Result<Option<i64>> {
        self.0.pttl(key)
    }
}

/// Pub/sub messages as text.
impl Message {
    /// The payload as text.
    ///
    /// # Errors
    /// [`Error::Reply`] when the payload is not UTF-8.
    pub fn payload_str(&self) -> Result<&str> {
        utf8("payload", &self.payload)
    }

    /// The channel as text.
    ///
    /// # Errors
    /// [`Error::Reply`] when the channel name is not UTF-8.
    pub fn channel_str(&self) -> Result<&str> {
        utf8("channel", &self.channel)
    }

    /// The pattern that matched, as text: `Some` for a [`MessageKind::PMessage`]
    /// (`psubscribe`), `None` otherwise.
    ///
    /// [`MessageKind::PMessage`]: crate::MessageKind::PMessage
    ///
    /// # Errors
    /// [`Error::Reply`] when the pattern is not UTF-8.
    pub fn pattern_str(&self) -> Result<Option<&str>> {
        self.pattern
            .as_deref()
            .map(|p| utf8("pattern", p))
            .transpose()
    }
}

fn utf8<'a>(what: &str, b: &'a [u8]) -> Result<&'a str> {
    std::str::from_utf8(b).map_err(|_| Error::Reply {
        command: format!("pub/sub message {what}"),
        source: FromValueError::Type {
            expected: "UTF-8 string",
            actual: format!("non-UTF-8 {what}"),
        },
    })
}

#[cfg(feature = "tokio")]
impl crate::aio::Redis {
    /// This client in text mode (a clone sharing the same connections): replies as
    /// `String`s. See [`Text`].
    pub fn text(&self) -> Text<crate::aio::Redis> {
        Text(self.clone())
    }
}

#[cfg(feature = "tokio")]
impl Text<crate::aio::Redis> {
    /// A pipeline whose queued commands are typed as text.
    pub fn pipeline(&self) -> Text<crate::aio::Pipeline> {
        Text(self.0.pipeline())
    }

    /// A stream of the key names of the database as `String`s (SCAN). A name that is
    /// not UTF-8 is an error item.
    pub fn scan_stream(&self, options: ScanOptions) -> crate::aio::ScanStream<'_, String> {
        crate::aio::ScanStream::new(&self.0, ScanState::scan(options).items_as())
    }

    /// A stream of the members of the set at `key` as `String`s (SSCAN). A member that
    /// is not UTF-8 is an error item.
    pub fn sscan_stream(
        &self,
        key: impl Into<Bytes>,
        options: ScanOptions,
    ) -> crate::aio::ScanStream<'_, String> {
        crate::aio::ScanStream::new(&self.0, ScanState::sscan(key, options).items_as())
    }

    /// A stream of the `(field, value)` pairs of the hash at `key` as `String`s (HSCAN).
    pub fn hscan_stream(
        &self,
        key: impl Into<Bytes>,
        options: ScanOptions,
    ) -> crate::aio::ScanStream<'_, (String, String)> {
        crate::aio::ScanStream::new(&self.0, ScanState::hscan(key, options).items_as())
    }

    /// A stream of the `(member, score)` pairs of the sorted set at `key`, members as
    /// `String`s (ZSCAN).
    pub fn zscan_stream(
        &self,
        key: impl Into<Bytes>,
        options: ScanOptions,
    ) -> crate::aio::ScanStream<'_, (String, f64)> {
        crate::aio::ScanStream::new(&self.0, ScanState::zscan(key, options).items_as())
    }

    /// [`aio::Redis::transaction`](crate::aio::Redis::transaction) with `f` given the
    /// WATCH-ed pipeline in text mode and returning the text pipeline to execute.
    ///
    /// Cancellation: as [`aio::Redis::transaction`](crate::aio::Redis::transaction).
    ///
    /// # Errors
    /// As [`aio::Redis::transaction`](crate::aio::Redis::transaction).
    pub fn transaction<'a, K, F, Fut>(
        &'a self,
        keys: K,
        mut f: F,
    ) -> impl std::future::Future<Output = Result<Vec<Value>>> + Send + 'a
    where
        K: ToArgs,
        F: FnMut(Text<crate::aio::Watched>) -> Fut + Send + 'a,
        Fut: std::future::Future<Output = Result<Text<crate::aio::Pipeline>>> + Send + 'a,
    {
        self.0.transaction(keys, move |w| {
            let attempt = f(Text(w));
            async move { attempt.await.map(Text::into_inner) }
        })
    }
}

#[cfg(feature = "tokio")]
impl crate::aio::Pipeline {
    /// This pipeline in text mode (see the blocking [`Pipeline::text`]).
    pub fn text(self) -> Text<crate::aio::Pipeline> {
        Text(self)
    }
}

#[cfg(feature = "tokio")]
impl crate::aio::Watched {
    /// This WATCH-ed pipeline in text mode: reads give `String`s.
    pub fn text(self) -> Text<crate::aio::Watched> {
        Text(self)
    }
}

#[cfg(feature = "tokio")]
impl Text<crate::aio::Pipeline> {
    /// [`aio::Pipeline::watch`](crate::aio::Pipeline::watch), with the immediate-mode
    /// pipeline in text mode.
    ///
    /// # Errors
    /// As [`aio::Pipeline::watch`](crate::aio::Pipeline::watch).
    pub fn watch<K: ToArgs>(
        self,
        keys: K,
    ) -> impl std::future::Future<Output = Result<Text<crate::aio::Watched>>> + Send {
        let watched = self.0.watch(keys);
        async move { watched.await.map(Text) }
    }

    /// [`aio::Pipeline::transaction`](crate::aio::Pipeline::transaction), keeping the
    /// pipeline in text mode.
    pub fn transaction(&mut self, transaction: bool) -> &mut Self {
        self.0.transaction(transaction);
        self
    }

    /// [`aio::Pipeline::raise_on_error`](crate::aio::Pipeline::raise_on_error), keeping the
    /// pipeline in text mode.
    pub fn raise_on_error(&mut self, raise: bool) -> &mut Self {
        self.0.raise_on_error(raise);
        self
    }
}

#[cfg(feature = "tokio")]
impl Text<crate::aio::Watched> {
    /// Switches back to buffering, in text mode (see
    /// [`aio::Watched::multi`](crate::aio::Watched::multi)).
    pub fn multi(self) -> Text<crate::aio::Pipeline> {
        Text(self.0.multi())
    }

    /// UNWATCHes (by handing the connection back) and drops the queued commands.
    pub fn reset(self) {
        self.0.reset();
    }
}
