//! The async client on tokio (feature `tokio`): every command of the blocking client, from
//! the same declarations, as futures.
//!
//! [`Redis`] sends ordinary commands over one [`Multiplexed`] connection shared by every
//! task, so concurrent calls become one pipelined write, and sends what cannot share a
//! connection (blocking commands such as BLPOP, commands that change connection state,
//! WATCH … EXEC) over a dedicated connection from an async [`Pool`]: which one is chosen
//! from each command's declared flags, not by the caller.
//!
//! ```no_run
//! use redis_client::aio::Redis;
//! use redis_client::prelude::*;
//!
//! # async fn demo() -> redis_client::Result<()> {
//! let r = Redis::open("redis://localhost:6379/0")?;
//! r.set("foo", "bar").await?;
//! let value = r.get("foo").await?; // Option<Bytes>
//! assert_eq!(value.as_deref(), Some(&b"bar"[..]));
//! # Ok(()) }
//! ```
//!
//! # Cancellation
//! Every future here can be dropped (a `tokio::time::timeout`, a `select!` that took
//! another branch) without harm to anyone else: on the multiplexed connection a caller
//! that gives up never receives, and never makes anyone else receive, the wrong reply,
//! since its reply is read and dropped; a dedicated connection whose call was dropped part
//! way is closed, not reused. What a dropped call did on the server is unknown, as with a
//! timeout: a write may or may not have run.

mod lock;
mod pipeline;
pub(crate) mod pubsub;
mod scan;
mod typed;

pub use lock::{LockBuilder, LockGuard};
pub use pipeline::{Pipeline, Watched};
pub use pubsub::{Messages, PubSub};
pub use redis_conn::aio::{Multiplexed, Pool, PooledConnection};
pub use scan::ScanStream;
pub use typed::TypedPipeline;

use crate::client::{call_budget, convert, dynamic_reply, overridden, reply_wait};
use crate::observe::Op;
use crate::retry::Stage;
use crate::{Error, Result, RetryPolicy, Script, ScriptCall};
use bytes::Bytes;
use redis_commands::{
    Block, Callbacks, Cmd, Executor, Flags, FromValue, FromValueError, ScanOptions, ScanState,
    ToArgs, Typed,
};
use redis_conn::mux::Body;
use redis_conn::{ConnectionInfo, PoolOptions, ReplyTimeout};
use resp_proto::{ErrorCode, Value};
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// A boxed future of this crate's requests.
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An async Redis client: cheap to clone, shared by any number of tasks.
///
/// Every command is a method (from the traits in [`prelude`](crate::prelude)) returning a
/// [`Request`], a future of the command's natural Rust type, exactly as the blocking
/// [`Redis`](crate::Redis) returns it: `get` gives `Option<Bytes>`, `incr` `i64`.
/// [`text`](Redis::text) gives the same client with `String` replies.
///
/// Ordinary commands share one multiplexed connection; blocking commands, commands that
/// change connection state, and WATCH … EXEC take a connection of their own from a
/// bounded pool (see the [module docs](self)). Failed calls are retried as the blocking
/// client's [`RetryPolicy`] says (by default: what cannot have reached
/// the server, and read-only commands after a lost connection; never a timeout), and the
/// next call after a failure reconnects.
#[derive(Clone, Debug)]
pub struct Redis {
    mux: Multiplexed,
    pool: Pool,
    retry: RetryPolicy,
    /// Per-client response callback overrides; clones made after a change share it.
    callbacks: Arc<Callbacks>,
    /// The client-side cache, when [`Redis::with_cache`] turned it on.
    cache: Option<Arc<crate::cache::Shared>>,
}

impl Redis {
    /// A client for the server at `url` (see [`ConnectionInfo`] for the forms). No
    /// connection is opened until the first command.
    ///
    /// # Errors
    /// [`Error::Url`] when the URL is invalid.
    pub fn open(url: &str) -> Result<Redis> {
        Ok(Self::from_info(url.parse()?))
    }

    /// A client for the server `info` describes, with the default pool options for its
    /// dedicated connections.
    pub fn from_info(info: ConnectionInfo) -> Redis {
        Self::with_pool_options(info, PoolOptions::default())
    }

    /// A client whose pool of dedicated connections (blocking commands, transactions)
    /// has `options`.
    pub fn with_pool_options(info: ConnectionInfo, options: PoolOptions) -> Redis {
        Self::from_parts(Multiplexed::new(info.clone()), Pool::new(info, options))
    }

    /// A client whose dedicated connections come from `pool`, shared with whoever else
    /// holds a clone of it (the blocking client's [`from_pool`](crate::Redis::from_pool));
    /// the multiplexed connection is opened with the pool's settings.
    pub fn from_pool(pool: Pool) -> Redis {
        Self::from_parts(Multiplexed::new(pool.info().clone()), pool)
    }

    /// A client over an existing multiplexed connection and pool, both shared with their
    /// other holders (another client made from them sends over the same connection).
    pub fn from_parts(mux: Multiplexed, pool: Pool) -> Redis {
        Redis {
            mux,
            pool,
            retry: RetryPolicy::default(),
            callbacks: Arc::new(Callbacks::new()),
            cache: None,
        }
    }

    /// This client with a client-side cache, as the blocking
    /// [`Redis::with_cache`](crate::Redis::with_cache): replies of cacheable reads kept in
    /// memory until the server reports their key changed. A read that misses goes over a
    /// pooled connection (each of which turns `CLIENT TRACKING` on); the invalidation
    /// connection runs on a thread of its own. Both are opened through the pool's
    /// [`Connector`](redis_conn::aio::Connector), if it has one (a
    /// [`Sentinel`](crate::Sentinel) client's follows failovers), and each data connection
    /// is checked to be on the invalidation connection's server. Clones share the cache.
    ///
    /// ```no_run
    /// use redis_client::{aio::Redis, prelude::*, CacheOptions};
    /// # async fn demo() -> redis_client::Result<()> {
    /// let r = Redis::open("redis://localhost:6379")?.with_cache(CacheOptions::default());
    /// r.get("greeting").await?;
    /// # Ok(()) }
    /// ```
    #[must_use = "the cache is on for the client returned"]
    pub fn with_cache(mut self, options: crate::CacheOptions) -> Self {
        let (shared, pool) = crate::cache::tokio::attach(&self.pool, options);
        self.pool = pool;
        self.cache = Some(shared);
        self
    }

    /// The client-side cache, if [`Redis::with_cache`] turned it on: its statistics.
    pub fn cache(&self) -> Option<crate::Cache> {
        self.cache.as_ref().map(|c| c.handle())
    }

    /// The cache, for the pipelines' write guards.
    pub(crate) fn cache_shared(&self) -> Option<&Arc<crate::cache::Shared>> {
        self.cache.as_ref()
    }

    /// A client whose connections go to the server `connector` picks each time one is
    /// opened (what [`Sentinel::primary_async`](crate::Sentinel::primary_async) builds);
    /// `info` gives every other setting.
    pub fn with_connector(
        info: ConnectionInfo,
        connector: Arc<dyn redis_conn::aio::Connector>,
        options: PoolOptions,
    ) -> Redis {
        Redis {
            mux: Multiplexed::with_connector(info.clone(), Arc::clone(&connector)),
            pool: Pool::with_connector(info, connector, options),
            retry: RetryPolicy::default(),
            callbacks: Arc::new(Callbacks::new()),
            cache: None,
        }
    }

    /// Sets when failed commands are retried; see [`RetryPolicy`] for the table.
    #[must_use = "the policy applies to the client returned"]
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The settings connections are opened with. (Not `info`, which is the INFO
    /// command, as on the blocking client.)
    pub fn connection_info(&self) -> &ConnectionInfo {
        self.mux.info()
    }

    /// The shared connection ordinary commands go over.
    pub fn multiplexed(&self) -> &Multiplexed {
        &self.mux
    }

    /// The pool of dedicated connections.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Replaces how replies to `command` are interpreted, for this client and clones made
    /// from it afterwards; as [`Redis::set_response_callback`](crate::Redis::set_response_callback).
    pub fn set_response_callback<F>(&mut self, command: &str, callback: F)
    where
        F: Fn(Value, &Cmd) -> Result<Value, FromValueError> + Send + Sync + 'static,
    {
        Arc::make_mut(&mut self.callbacks).set(command, callback);
    }

    /// Runs any command given as its arguments and returns the raw reply, after the
    /// default response callback (`SET` gives `true`).
    ///
    /// ```no_run
    /// # async fn demo(r: redis_client::aio::Redis) -> redis_client::Result<()> {
    /// let reply = r.execute_command(("OBJECT", "ENCODING", "foo")).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// Cancellation: cancel-safe (see the [module docs](self)).
    ///
    /// # Errors
    /// Connection errors, or [`Error::Server`] when the server answers with an error.
    pub fn execute_command<A: ToArgs>(&self, args: A) -> Request<'_, Value> {
        let cmd = shared_if_large(Cmd::from_args(args));
        Request::new(Box::pin(async move {
            let v = self.raw(&cmd).await?;
            let v = dynamic_reply(&self.callbacks, &cmd, v).map_err(|source| Error::Reply {
                command: cmd.first_word(),
                source,
            })?;
            Ok((v, cmd))
        }))
    }

    /// Runs a command and converts its reply into a type of the caller's choosing instead
    /// of the command method's own.
    ///
    /// Cancellation: cancel-safe.
    ///
    /// # Errors
    /// As the command method, and [`Error::Reply`] when the reply does not convert to `U`.
    pub fn query<U: FromValue, T>(&self, cmd: Typed<T>) -> Request<'_, U> {
        self.call(cmd.cmd)
    }

    /// A pipeline on this client: commands queue until [`Pipeline::execute`] sends them in
    /// one write, wrapped in MULTI … EXEC unless [`Pipeline::transaction`] turns that off.
    pub fn pipeline(&self) -> Pipeline {
        Pipeline::new(self.clone())
    }

    /// A [`Script`] for this client's server; run it with [`Redis::invoke_script`] or
    /// queue it with [`Pipeline::invoke_script`].
    pub fn register_script(&self, source: impl Into<Bytes>) -> Script {
        Script::new(source)
    }

    /// Runs a script: EVALSHA, and on NOSCRIPT, SCRIPT LOAD and EVALSHA once more.
    ///
    /// ```no_run
    /// # async fn demo(r: redis_client::aio::Redis) -> redis_client::Result<()> {
    /// let multiply = r.register_script("return redis.call('GET', KEYS[1]) * ARGV[1]");
    /// let ten: i64 = r.invoke_script(multiply.key("foo").arg(5)).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// Cancellation: cancel-safe.
    ///
    /// # Errors
    /// [`Error::Server`] with the script's error; connection errors.
    pub fn invoke_script<T: FromValue>(&self, call: ScriptCall<'_>) -> Request<'_, T> {
        let cmd = call.to_cmd();
        let load = call.script().load_cmd();
        Request::new(Box::pin(async move {
            let v = match self.raw(&cmd).await {
                Err(Error::Server(e)) if e.code() == ErrorCode::NOSCRIPT => {
                    self.raw(&load).await?;
                    self.raw(&cmd).await?
                }
                other => other?,
            };
            Ok((v, cmd))
        }))
    }

    /// Runs `f` as an optimistic transaction on `keys` and returns the EXEC results (the
    /// reference client's `transaction(func, *keys)`), as the blocking
    /// [`Redis::transaction`](crate::Redis::transaction).
    ///
    /// Each attempt WATCHes `keys` on a dedicated connection and gives `f` the
    /// [`Watched`] pipeline in immediate mode; `f` reads what it needs, calls
    /// [`Watched::multi`], queues the writes and returns the pipeline, which then runs as
    /// one MULTI … EXEC. When a watched key changed in between, the attempt is discarded
    /// and `f` runs again.
    ///
    /// ```no_run
    /// use redis_client::prelude::*;
    /// # async fn demo(r: redis_client::aio::Redis) -> redis_client::Result<()> {
    /// r.transaction("OUR-SEQUENCE-KEY", |mut w| async move {
    ///     let current = w.reply_as::<Option<i64>>().get("OUR-SEQUENCE-KEY").await?;
    ///     let mut pipe = w.multi();
    ///     pipe.set("OUR-SEQUENCE-KEY", current.unwrap_or(0) + 1);
    ///     Ok(pipe)
    /// })
    /// .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// Cancellation: not cancel-safe: dropping the future part way leaves unknown whether
    /// the transaction ran; its connection is restored or closed, never reused watching.
    ///
    /// # Errors
    /// Any error of `f` other than [`Error::Watch`], and those of [`Pipeline::execute`]
    /// other than [`Error::Watch`].
    pub fn transaction<'a, K, F, Fut>(
        &'a self,
        keys: K,
        mut f: F,
    ) -> impl Future<Output = Result<Vec<Value>>> + Send + 'a
    where
        K: ToArgs,
        F: FnMut(Watched) -> Fut + Send + 'a,
        Fut: Future<Output = Result<Pipeline>> + Send + 'a,
    {
        let mut watch = Cmd::new("WATCH");
        watch.key(keys);
        async move {
            loop {
                let watched = self.pipeline().watch_cmd(watch.clone()).await?;
                let mut pipe = match f(watched).await {
                    Ok(pipe) => pipe,
                    Err(Error::Watch) => continue,
                    Err(e) => return Err(e),
                };
                match pipe.execute().await {
                    Err(Error::Watch) => continue,
                    other => return other,
                }
            }
        }
    }

    /// A stream of the key names of the database, fetched a page at a time (SCAN).
    pub fn scan_stream(&self, options: ScanOptions) -> ScanStream<'_, Bytes> {
        ScanStream::new(self, ScanState::scan(options))
    }

    /// A stream of the members of the set at `key` (SSCAN).
    pub fn sscan_stream(
        &self,
        key: impl Into<Bytes>,
        options: ScanOptions,
    ) -> ScanStream<'_, Bytes> {
        ScanStream::new(self, ScanState::sscan(key, options))
    }

    /// A stream of the `(field, value)` pairs of the hash at `key` (HSCAN).
    pub fn hscan_stream(
        &self,
        key: impl Into<Bytes>,
        options: ScanOptions,
    ) -> ScanStream<'_, (Bytes, Bytes)> {
        ScanStream::new(self, ScanState::hscan(key, options))
    }

    /// A stream of the `(member, score)` pairs of the sorted set at `key` (ZSCAN).
    pub fn zscan_stream(
        &self,
        key: impl Into<Bytes>,
        options: ScanOptions,
    ) -> ScanStream<'_, (Bytes, f64)> {
        ScanStream::new(self, ScanState::zscan(key, options))
    }

    /// A typed command: the reply after this client's override callback, for conversion.
    fn call<T>(&self, cmd: Cmd) -> Request<'_, T> {
        let cmd = shared_if_large(cmd);
        Request::new(Box::pin(async move {
            let v = self.raw(&cmd).await?;
            let v = overridden(&self.callbacks, &cmd, v)?;
            Ok((v, cmd))
        }))
    }

    /// Sends `cmd` where its flags say it belongs and returns its reply; an error reply
    /// becomes [`Error::Server`].
    pub(crate) async fn raw(&self, cmd: &Cmd) -> Result<Value> {
        let op = Op::command(self.connection_info(), cmd);
        let result = op.run_async(self.raw_unobserved(cmd)).await;
        op.finish(&result);
        result
    }

    async fn raw_unobserved(&self, cmd: &Cmd) -> Result<Value> {
        match &self.cache {
            Some(cache) => {
                if let Some(v) = cache.lookup(cmd) {
                    return Ok(v);
                }
                // Boxed: the guard's state stays out of the uncached client's requests.
                Box::pin(self.cached_attempts(cache, cmd)).await
            }
            None => self.attempts(cmd).await,
        }
    }

    /// A cacheable read that missed (or a write), on a cached client: a first read waits for
    /// the invalidation connection (so it is cached), and a write guard drops the keys'
    /// entries around the call.
    async fn cached_attempts(&self, cache: &Arc<crate::cache::Shared>, cmd: &Cmd) -> Result<Value> {
        let timeout = self.connection_info().connect_timeout;
        crate::cache::tokio::wait_first_listen(cache, cmd, timeout).await;
        let _writes = cache.writes([cmd]);
        self.attempts(cmd).await
    }

    /// When a call of `cmd` that starts now must be over: the policy's budget, or one
    /// attempt's worth (the connect timeout plus the reply's wait).
    pub(crate) fn call_deadline(&self, cmd: &Cmd) -> Option<std::time::Instant> {
        call_budget(&self.retry, self.connection_info(), Some(cmd))
            .map(|b| redis_conn::aio::now() + b)
    }

    /// A pooled connection for a call that needs one to itself (WATCH, a pipeline holding
    /// a blocking or state-changing command), within the call's `deadline` (its budget,
    /// which covers the checkout and what follows), trying again as the policy allows
    /// when none can be opened, as the blocking client's checkout.
    pub(crate) async fn checkout_until(
        &self,
        deadline: Option<std::time::Instant>,
    ) -> Result<PooledConnection> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let err = match self.pool.get_until(deadline).await {
                Ok(conn) => return Ok(conn),
                Err(e) => Error::from(e),
            };
            let backoff = self.retry.backoff(attempts - 1);
            let out_of_time = deadline.is_some_and(|d| redis_conn::aio::now() + backoff >= d);
            if attempts > self.retry.max_retries
                || !self.retry.allows(&err, Stage::Checkout, None)
                || out_of_time
            {
                return Err(err.after_attempts(attempts));
            }
            crate::observe::retry(self.connection_info(), attempts + 1, &err);
            tokio::time::sleep(backoff).await;
        }
    }

    /// [`Redis::raw`]'s attempts, retried as the policy allows.
    async fn attempts(&self, cmd: &Cmd) -> Result<Value> {
        // One budget for the whole call, as in the blocking client: an attempt still
        // running at the deadline is dropped (its reply, if any, is read and discarded by
        // the connection, never handed to anyone), and no retry starts past it.
        let deadline = call_budget(&self.retry, self.connection_info(), Some(cmd))
            .map(|b| tokio::time::Instant::now() + b);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let attempt = self.raw_once(cmd);
            let result = match deadline {
                Some(d) => tokio::time::timeout_at(d, attempt)
                    .await
                    .unwrap_or(Err(Error::Timeout)),
                None => attempt.await,
            };
            let err = match result {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            // Whether a request on the shared connection was written before it failed is
            // not known to the caller, so anything but a failure to connect counts as
            // having reached the server.
            let stage = match err {
                Error::Connect { .. } | Error::PoolExhausted(_) => Stage::Checkout,
                _ => Stage::Read,
            };
            let backoff = self.retry.backoff(attempts - 1);
            let out_of_time = deadline.is_some_and(|d| tokio::time::Instant::now() + backoff >= d);
            if attempts > self.retry.max_retries
                || !self.retry.allows(&err, stage, Some(cmd))
                || out_of_time
            {
                return Err(err.after_attempts(attempts));
            }
            crate::observe::retry(self.connection_info(), attempts + 1, &err);
            tokio::time::sleep(backoff).await;
        }
    }

    /// A cacheable read over a tracked pooled connection, its reply stored unless an
    /// invalidation overtook it; `None` when the cache cannot take it now.
    async fn cached_read(
        &self,
        cache: &Arc<crate::cache::Shared>,
        cmd: &Cmd,
        timeout: ReplyTimeout,
    ) -> Result<Option<Value>> {
        let mut conn = self.pool.get().await?;
        match cache.begin(conn.tracking_registration(), cmd) {
            Some(ticket) => crate::cache::tokio::tracked_read(&mut conn, cmd, ticket, timeout)
                .await
                .map(Some),
            None => {
                // The async pool's `disconnect` leaves the connections checked out when
                // the invalidation connection changed: one that can never cache is
                // closed when handed back, and replaced.
                if cache.outdated(conn.tracking_registration()) {
                    conn.mark_broken();
                }
                Ok(None)
            }
        }
    }

    /// One try of [`Redis::raw`].
    async fn raw_once(&self, cmd: &Cmd) -> Result<Value> {
        let timeout = reply_wait(self.connection_info().read_timeout, cmd);
        if let Some(cache) = self.cache.as_ref().filter(|c| c.cache_key(cmd).is_some()) {
            // Boxed, as the dedicated path below.
            if let Some(read) = Box::pin(self.cached_read(cache, cmd, timeout)).await? {
                return Ok(read);
            }
        }
        if needs_own_connection(cmd) {
            // Boxed: the rare path's state stays out of every request's future.
            return Box::pin(self.dedicated(cmd, timeout)).await;
        }
        let mut header = [0u8; 24];
        let head = cmd.header(&mut header);
        // A large value is written from the command's own storage: held once.
        let body = match cmd.shared_body() {
            Some(shared) => Body::Shared(shared),
            None => Body::Copied(cmd.body()),
        };
        match self.mux.request_parts(head, body, timeout).await {
            Ok(v) => Ok(v),
            Err(e @ (redis_conn::Error::Server(_) | redis_conn::Error::Auth(_))) => {
                Err(Error::from(e).for_command(cmd))
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl Redis {
    /// One try of a command on a dedicated connection from the pool.
    async fn dedicated(&self, cmd: &Cmd, timeout: ReplyTimeout) -> Result<Value> {
        let mut conn = self.pool.get().await?;
        let mut header = [0u8; 24];
        let header = cmd.header(&mut header);
        conn.send(&[header, cmd.body()], 1, timeout).await?;
        match conn.read_reply(ReplyTimeout::Default).await? {
            Value::Error(e) => {
                Err(Error::from(redis_conn::Error::from_server_error(e)).for_command(cmd))
            }
            v => Ok(v),
        }
    }
}

/// `cmd`, its arguments made shareable when they are large, so that the multiplexed
/// connection writes them without a copy of its own.
fn shared_if_large(mut cmd: Cmd) -> Cmd {
    if cmd.body().len() >= redis_conn::mux::SHARED_PART {
        cmd.share_body();
    }
    cmd
}

/// Whether `cmd` cannot share the multiplexed connection: it blocks (its reply would hold
/// up every caller behind it) or changes the connection's state (which every later caller
/// would run in). Known from the declared flags; a raw command's from the command table
/// and from the connection core's reading of its first words.
pub(crate) fn needs_own_connection(cmd: &Cmd) -> bool {
    let declared = |f: Flags| f.contains(Flags::BLOCKING) || f.contains(Flags::CONNECTION_STATE);
    if cmd.blocking_timeout() != Block::No {
        return true;
    }
    if !cmd.name().is_empty() {
        return declared(cmd.flags());
    }
    // A raw command: its first words, as text, up to three.
    let words: Vec<String> = cmd
        .args()
        .take(3)
        .map(|w| String::from_utf8_lossy(w).to_ascii_uppercase())
        .collect();
    let refs: Vec<&str> = words.iter().map(String::as_str).collect();
    if redis_conn::changes_connection_state(&refs) {
        return true;
    }
    let two = refs.get(..2).map(|w| w.join(" "));
    redis_commands::cmd::all()
        .filter(|info| {
            Some(info.name) == refs.first().copied() || Some(info.name) == two.as_deref()
        })
        .any(|info| declared(info.flags))
}

/// The future of one command: resolves to its reply converted into `T` (the command's
/// declared type, or the text form of it in text mode).
///
/// Cancellation: cancel-safe. Dropping it before it resolves abandons the call: on the
/// multiplexed connection its reply is read and dropped; a dedicated connection is closed.
#[must_use = "a request does nothing unless awaited"]
pub struct Request<'a, T> {
    inner: BoxFuture<'a, Result<(Value, Cmd)>>,
    _reply: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for Request<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("reply", &std::any::type_name::<T>())
            .finish_non_exhaustive()
    }
}

impl<'a, T> Request<'a, T> {
    pub(crate) fn new(inner: BoxFuture<'a, Result<(Value, Cmd)>>) -> Self {
        Request {
            inner,
            _reply: PhantomData,
        }
    }
}

impl<T: FromValue> Future for Request<'_, T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        match self.inner.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Ready(Ok((v, cmd))) => Poll::Ready(convert(&cmd, v)),
        }
    }
}

/// Each command method returns a [`Request`], a future of its reply.
impl<'a> Executor for &'a Redis {
    type Mode = redis_commands::BinaryMode;
    type Output<T> = Request<'a, T>;

    fn run<T: FromValue>(self, typed: Typed<T>) -> Request<'a, T> {
        match crate::client::refuse_on_pool(&typed.cmd, crate::client::Pooled::Async) {
            Ok(()) => self.call(typed.cmd),
            Err(e) => Request::new(Box::pin(std::future::ready(Err(e)))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_send<T: Send>(_: &T) {}

    #[test]
    fn requests_are_send_and_the_client_is_shared() {
        fn shared<T: Send + Sync + Clone>() {}
        shared::<Redis>();
        let r = Redis::open("redis://127.0.0.1:1").unwrap();
        use redis_commands::StringCommands;
        is_send(&r.get("k"));
        is_send(&r.execute_command(("GET", "k")));
    }

    #[test]
    fn a_request_future_stays_small() {
        // Every command boxes this future: kept under glibc's per-thread cache limit
        // (1,032 bytes), it is allocated and moved cheaply. Opening a connection, the
        // dedicated path, the pool and the cache's paths are boxed apart for that reason;
        // the span and metrics of the call (feature `tracing`) take about 80 bytes.
        let r = Redis::open("redis://127.0.0.1:1").unwrap();
        let cmd = Cmd::new("GET");
        let size = std::mem::size_of_val(&r.raw(&cmd));
        assert!(size <= 960, "{size} bytes");
    }

    #[test]
    fn routing_follows_declared_flags_and_raw_first_words() {
        use redis_commands::cmd;
        assert!(!needs_own_connection(&cmd::strings::get("k").cmd));
        assert!(needs_own_connection(
            &cmd::lists::blpop("k", std::time::Duration::from_secs(1)).cmd
        ));
        assert!(needs_own_connection(
            &cmd::connection::client_setname("n").cmd
        ));
        assert!(needs_own_connection(&Cmd::from_args(("BLPOP", "k", 1))));
        assert!(needs_own_connection(&Cmd::from_args(("watch", "k"))));
        assert!(needs_own_connection(&Cmd::from_args(("SELECT", 2))));
        assert!(!needs_own_connection(&Cmd::from_args(("GET", "k"))));
    }
}
