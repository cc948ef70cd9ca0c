//! The client: a handle on a connection pool that runs commands.

use crate::observe::{self, Op};
use crate::retry::{RetryPolicy, Stage};
use crate::{Error, Pipeline, Result};
use redis_commands::{
    Block, Callbacks, Cmd, Executor, Flags, FromValue, FromValueError, ToArgs, Typed,
};
use redis_conn::{
    Connection, ConnectionInfo, ConnectionPool, PoolOptions, PooledConnection, ReplyTimeout,
};
use resp_proto::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Extra wait granted to a blocking command beyond its own server-side timeout, for the
/// round trip and server scheduling.
const BLOCKING_MARGIN: Duration = Duration::from_secs(1);

/// A Redis client: cheap to clone, safe to share between threads.
///
/// Each command borrows a connection from the client's pool for the length of one request
/// and returns it at once, as redis-py 2.7.6 does. Every command is a method
/// (from the traits in [`prelude`](crate::prelude)) returning its natural Rust type.
///
/// ```no_run
/// use redis_client::prelude::*;
/// use redis_client::Redis;
///
/// let r = Redis::open("redis://localhost:6379/0")?;
/// r.set("foo", "bar")?;
/// assert_eq!(r.get("foo")?.as_deref(), Some(&b"bar"[..]));
/// # Ok::<(), redis_client::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Redis {
    pool: ConnectionPool,
    retry: RetryPolicy,
    /// Per-client response callback overrides; clones made after a change share it.
    callbacks: Arc<Callbacks>,
    /// The client-side cache, when [`Redis::with_cache`] turned it on.
    cache: Option<Arc<crate::cache::Shared>>,
}

/// redis-py 2.7.6's name for the same type.
pub type StrictRedis = Redis;

impl Redis {
    /// A client for the server at `url` (see [`ConnectionInfo`] for the forms), with its own
    /// pool. No connection is opened until the first command.
    ///
    /// # Errors
    /// [`Error::Url`] when the URL is invalid.
    pub fn open(url: &str) -> Result<Redis> {
        Ok(Self::from_info(url.parse()?))
    }

    /// The same as [`Redis::open`], under redis-py 2.7.6's name.
    ///
    /// # Errors
    /// [`Error::Url`] when the URL is invalid.
    pub fn from_url(url: &str) -> Result<Redis> {
        Self::open(url)
    }

    /// A client with its own pool of connections described by `info`.
    pub fn from_info(info: ConnectionInfo) -> Redis {
        Self::from_pool(ConnectionPool::with_options(info, PoolOptions::default()))
    }

    /// A client sharing `pool` with any other client built from it.
    pub fn from_pool(pool: ConnectionPool) -> Redis {
        Redis {
            pool,
            retry: RetryPolicy::default(),
            callbacks: Arc::new(Callbacks::new()),
            cache: None,
        }
    }

    /// This client with a client-side cache: replies of cacheable reads (the commands
    /// the command table declares [`Flags::CACHEABLE`](redis_commands::Flags::CACHEABLE):
    /// GET, HGETALL, SMEMBERS, LRANGE …) are kept in memory and served from there until
    /// the server reports that their key changed. See `docs/caching.md` for what it
    /// guarantees and costs.
    ///
    /// The client gets a pool of its own, with the same connection info and pool
    /// options, opening connections through the same [`Connector`](redis_conn::Connector)
    /// (a [`Sentinel`](crate::Sentinel) client's follows failovers), whose connections all
    /// turn `CLIENT TRACKING` on; and one more connection, opened the same way, on a thread
    /// of its own, that receives the invalidations. Each new data connection is checked
    /// (one `INFO server`) to be on the invalidation connection's server and refused
    /// otherwise. Clones share the cache.
    ///
    /// The cache is ready when this returns: a first cacheable read waits for the
    /// invalidation connection (up to the connect timeout), so it is cached too.
    ///
    /// ```no_run
    /// use redis_client::{prelude::*, CacheOptions, Redis};
    /// let r = Redis::open("redis://localhost:6379")?.with_cache(CacheOptions::default());
    /// r.get("greeting")?; // from the server
    /// r.get("greeting")?; // from memory
    /// # Ok::<(), redis_client::Error>(())
    /// ```
    pub fn with_cache(mut self, options: crate::CacheOptions) -> Redis {
        let (shared, pool) = crate::cache::attach(&self.pool, options);
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

    /// Sets when failed commands are retried (see [`RetryPolicy`] for the table). The
    /// default retries only what cannot have reached the server, plus read-only commands.
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// Replaces how replies to `command` are interpreted, for this client and clones made
    /// from it afterwards (redis-py 2.7.6's `set_response_callback`).
    ///
    /// The callback sees the raw reply and the command (so it can read options such as
    /// `WITHSCORES`). It applies to [`execute_command`](Redis::execute_command) and to the
    /// typed method, whose result is then converted from the callback's output.
    ///
    /// ```no_run
    /// # use redis_client::{Redis, Value, prelude::*};
    /// let mut r = Redis::open("redis://localhost")?;
    /// // Make GET of a missing key read as an empty string instead of nil.
    /// r.set_response_callback("GET", |v, _cmd| Ok(if v.is_nil() { Value::BulkString("".into()) } else { v }));
    /// assert_eq!(r.get("missing")?.as_deref(), Some(&b""[..]));
    /// # Ok::<(), redis_client::Error>(())
    /// ```
    pub fn set_response_callback<F>(&mut self, command: &str, callback: F)
    where
        F: Fn(Value, &Cmd) -> Result<Value, FromValueError> + Send + Sync + 'static,
    {
        Arc::make_mut(&mut self.callbacks).set(command, callback);
    }

    /// The pool this client takes connections from.
    pub fn pool(&self) -> &ConnectionPool {
        &self.pool
    }

    /// Runs any command given as its arguments and returns the raw reply.
    ///
    /// ```no_run
    /// # let r = redis_client::Redis::open("redis://localhost")?;
    /// let reply = r.execute_command(("OBJECT", "ENCODING", "foo"))?;
    /// # Ok::<(), redis_client::Error>(())
    /// ```
    ///
    /// # Errors
    /// Connection errors, or [`Error::Server`] when the server answers with an error.
    pub fn execute_command<A: ToArgs>(&self, args: A) -> Result<Value> {
        let cmd = Cmd::from_args(args);
        let v = self.request(&cmd)?;
        self.dynamic_reply(&cmd, v).map_err(|source| Error::Reply {
            command: cmd.first_word(),
            source,
        })
    }

    /// Runs a command and converts its reply into a type of the caller's choosing, instead
    /// of the command method's own: one reply read as text, a number, a tuple …
    ///
    /// For text everywhere, the counterpart of redis-py 2.7.6's `decode_responses=True`,
    /// use [`Redis::text`] instead: the same client in text mode, whose every command
    /// method, pipeline, connection and iterator gives `String`s. For one reply of a
    /// command method as another type, [`reply_as`](Executor::reply_as)
    /// (`r.reply_as::<i64>().get("visits")?`) needs no builder from [`cmd`](crate::cmd).
    ///
    /// ```no_run
    /// use redis_client::{cmd, prelude::*, Redis};
    /// let r = Redis::open("redis://localhost")?;
    /// r.set("greeting", "héllo")?;
    /// let text: Option<String> = r.query(cmd::strings::get("greeting"))?;
    /// assert_eq!(text.as_deref(), Some("héllo"));
    /// # Ok::<(), redis_client::Error>(())
    /// ```
    ///
    /// Strings are checked as UTF-8; a reply that is not gives [`Error::Reply`] naming the
    /// command.
    ///
    /// # Errors
    /// As the command method, and [`Error::Reply`] when the reply does not convert to `U`.
    pub fn query<U: FromValue, T>(&self, cmd: Typed<T>) -> Result<U> {
        let v = self.request(&cmd.cmd)?;
        self.typed_reply(&cmd.cmd, v)
    }

    /// A pipeline on this client: commands queue until [`Pipeline::execute`] sends them in
    /// one write, wrapped in MULTI … EXEC unless [`Pipeline::transaction`] turns that off.
    ///
    /// ```no_run
    /// # use redis_client::{prelude::*, Redis, Value};
    /// # let r = Redis::open("redis://localhost")?;
    /// r.set("bing", "baz")?;
    /// let mut pipe = r.pipeline();
    /// pipe.set("foo", "bar").get("bing");
    /// assert_eq!(pipe.execute()?, [Value::Boolean(true), Value::BulkString("baz".into())]);
    /// # Ok::<(), redis_client::Error>(())
    /// ```
    pub fn pipeline(&self) -> Pipeline {
        Pipeline::new(self.clone())
    }

    /// What the dynamic path returns for `cmd`'s reply: this client's override callback,
    /// else the default one.
    pub(crate) fn dynamic_reply(&self, cmd: &Cmd, v: Value) -> Result<Value, FromValueError> {
        dynamic_reply(&self.callbacks, cmd, v)
    }

    /// What a typed method returns for `cmd`'s reply: this client's override callback, if
    /// any, then the conversion to `T`.
    pub(crate) fn typed_reply<T: FromValue>(&self, cmd: &Cmd, v: Value) -> Result<T> {
        convert(cmd, overridden(&self.callbacks, cmd, v)?)
    }

    /// This client's response callback overrides.
    pub(crate) fn callbacks(&self) -> &Callbacks {
        &self.callbacks
    }

    /// Sends `cmd` and reads its reply, retrying as the policy allows, all within the
    /// call's one budget.
    pub(crate) fn request(&self, cmd: &Cmd) -> Result<Value> {
        let op = Op::command(self.pool.info(), cmd);
        let result = op.run(|| self.request_unobserved(cmd));
        op.finish(&result);
        result
    }

    fn request_unobserved(&self, cmd: &Cmd) -> Result<Value> {
        let _writes = match &self.cache {
            Some(cache) => match cache.lookup(cmd) {
                Some(v) => return Ok(v),
                None => {
                    cache.wait_first_listen(cmd, self.pool.info().connect_timeout);
                    Some(cache.writes([cmd]))
                }
            },
            None => None,
        };
        let deadline = self.call_deadline(Some(cmd));
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (err, stage) = match self.attempt(cmd, deadline) {
                Ok(v) => return Ok(v),
                Err(failure) => failure,
            };
            if !self.may_retry(&err, stage, Some(cmd), attempts, deadline) {
                return Err(err.after_attempts(attempts));
            }
        }
    }

    /// A connection from the pool, retrying connect failures as the policy allows (nothing
    /// has been sent, so any request may follow), within one call's budget.
    pub(crate) fn checkout(&self) -> Result<PooledConnection> {
        self.checkout_until(self.call_deadline(None))
    }

    /// As [`Redis::checkout`], within a call's `deadline` already running (a WATCH, whose
    /// one budget covers the checkout and the command).
    pub(crate) fn checkout_until(&self, deadline: Option<Instant>) -> Result<PooledConnection> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let e = match self.pool.get_until(deadline) {
                Ok(conn) => return Ok(conn),
                Err(e) => Error::from(e),
            };
            if !self.may_retry(&e, Stage::Checkout, None, attempts, deadline) {
                return Err(e.after_attempts(attempts));
            }
        }
    }

    /// When a call that starts now must be over: the policy's budget, or one attempt's
    /// worth (the connect timeout plus the reply's wait).
    pub(crate) fn call_deadline(&self, cmd: Option<&Cmd>) -> Option<Instant> {
        call_budget(&self.retry, self.pool.info(), cmd).map(|b| redis_conn::clock::now() + b)
    }

    /// Whether to try again after attempt number `attempts` failed, and if so wait the
    /// backoff first; never past the call's `deadline`.
    fn may_retry(
        &self,
        err: &Error,
        stage: Stage,
        cmd: Option<&Cmd>,
        attempts: u32,
        deadline: Option<Instant>,
    ) -> bool {
        if attempts > self.retry.max_retries || !self.retry.allows(err, stage, cmd) {
            return false;
        }
        let backoff = self.retry.backoff(attempts - 1);
        if deadline.is_some_and(|d| redis_conn::clock::now() + backoff >= d) {
            return false;
        }
        observe::retry(self.pool.info(), attempts + 1, err);
        redis_conn::clock::sleep(backoff);
        true
    }

    /// One try, saying how far it got when it failed.
    fn attempt(&self, cmd: &Cmd, deadline: Option<Instant>) -> Result<Value, (Error, Stage)> {
        let mut conn = self
            .pool
            .get_until(deadline)
            .map_err(|e| (e.into(), Stage::Checkout))?;
        conn.set_call_deadline(deadline);
        let timeout = reply_timeout(&conn, cmd);
        if let Some(ticket) = self
            .cache
            .as_ref()
            .and_then(|c| c.begin(conn.tracking_registration(), cmd))
        {
            return crate::cache::tracked_read(&mut conn, cmd, ticket, timeout);
        }
        let mut header = [0u8; 24];
        let header = cmd.header(&mut header);
        conn.send_with(&[header, cmd.body()], 1, timeout)
            .map_err(|e| (e.into(), Stage::Send))?;
        match conn.read_reply() {
            Ok(Value::Error(e)) => Err((
                Error::from(redis_conn::Error::from_server_error(e)).for_command(cmd),
                Stage::Read,
            )),
            Ok(v) => Ok(v),
            Err(e) => Err((e.into(), Stage::Read)),
        }
    }
}

/// How long a whole call may take: the policy's budget, or one attempt's worth (the
/// connect timeout plus the reply's wait); `None` when neither bounds it. Shared by the
/// blocking and the async client.
pub(crate) fn call_budget(
    retry: &RetryPolicy,
    info: &ConnectionInfo,
    cmd: Option<&Cmd>,
) -> Option<Duration> {
    if retry.budget.is_some() {
        return retry.budget;
    }
    let wait = match cmd.map(|c| reply_wait(info.read_timeout, c)) {
        Some(ReplyTimeout::Exactly(w)) => w,
        _ => info.read_timeout,
    };
    match (info.connect_timeout, wait) {
        (Some(c), Some(w)) => Some(c + w),
        _ => None,
    }
}

/// The budget of a pipeline of `commands` (with MULTI and EXEC when `transactional`):
/// the policy's budget if it sets one, else connecting plus, for each reply, the longest
/// wait any of them may take, since each reply of a pipeline has a deadline of its own
/// (a pipeline sharing a connection may also wait behind other callers' replies).
pub(crate) fn pipeline_budget(
    retry: &RetryPolicy,
    info: &ConnectionInfo,
    commands: &[crate::pipeline::Queued],
    transactional: bool,
) -> Option<Duration> {
    if retry.budget.is_some() {
        return retry.budget;
    }
    let mut wait = info.read_timeout?;
    for q in commands {
        match reply_wait(info.read_timeout, &q.cmd) {
            ReplyTimeout::Exactly(Some(w)) => wait = wait.max(w),
            ReplyTimeout::Exactly(None) => return None,
            ReplyTimeout::Default => {}
        }
    }
    let replies = commands.len() + if transactional { 2 } else { 0 };
    let replies = u32::try_from(replies).unwrap_or(u32::MAX);
    Some(info.connect_timeout? + wait.saturating_mul(replies))
}

/// Sends one command and reads its reply, waiting past the read timeout for blocking ones.
pub(crate) fn send_and_read(
    info: &ConnectionInfo,
    conn: &mut Connection,
    cmd: &Cmd,
) -> Result<Value> {
    let op = Op::command(info, cmd);
    let result = op.run(|| send_and_read_unobserved(conn, cmd));
    op.finish(&result);
    result
}

fn send_and_read_unobserved(conn: &mut Connection, cmd: &Cmd) -> Result<Value> {
    let mut header = [0u8; 24];
    let header = cmd.header(&mut header);
    let timeout = reply_timeout(conn, cmd);
    conn.send_with(&[header, cmd.body()], 1, timeout)?;
    match conn.read_reply()? {
        Value::Error(e) => {
            Err(Error::from(redis_conn::Error::from_server_error(e)).for_command(cmd))
        }
        v => Ok(v),
    }
}

/// A blocking command may legitimately hold its reply back for its own timeout.
pub(crate) fn reply_timeout(conn: &Connection, cmd: &Cmd) -> ReplyTimeout {
    reply_wait(conn.read_timeout(), cmd)
}

pub(crate) fn reply_wait(read: Option<Duration>, cmd: &Cmd) -> ReplyTimeout {
    match (cmd.blocking_timeout(), read) {
        (Block::No, _) | (_, None) => ReplyTimeout::Default,
        (Block::Forever, Some(_)) => ReplyTimeout::Exactly(None),
        (Block::For(wait), Some(read)) => {
            ReplyTimeout::Exactly(Some(read.max(wait + BLOCKING_MARGIN)))
        }
    }
}

/// The longer of two reply timeouts, for a pipeline whose replies all wait as long as its
/// slowest command may. Every `Exactly(Some(_))` that [`reply_timeout`] gives is at least
/// the read timeout, so it outlasts `Default`.
pub(crate) fn longer(a: ReplyTimeout, b: ReplyTimeout) -> ReplyTimeout {
    use ReplyTimeout::{Default, Exactly};
    match (a, b) {
        (Exactly(None), _) | (_, Exactly(None)) => Exactly(None),
        (Exactly(Some(x)), Exactly(Some(y))) => Exactly(Some(x.max(y))),
        (Exactly(x), Default) | (Default, Exactly(x)) => Exactly(x),
        (Default, Default) => Default,
    }
}

/// What the dynamic path returns for `cmd`'s reply: the override callback in
/// `callbacks`, else the default one. Shared by the blocking and async clients.
pub(crate) fn dynamic_reply(
    callbacks: &Callbacks,
    cmd: &Cmd,
    v: Value,
) -> Result<Value, FromValueError> {
    match callbacks.get(cmd) {
        Some(cb) => cb(v, cmd),
        None => Callbacks::defaults().apply(cmd, v),
    }
}

/// `v` after the override callback for `cmd` in `callbacks`, if any: what a typed method
/// converts.
pub(crate) fn overridden(callbacks: &Callbacks, cmd: &Cmd, v: Value) -> Result<Value> {
    match callbacks.get(cmd) {
        Some(cb) => cb(v, cmd).map_err(|source| Error::Reply {
            command: cmd.first_word(),
            source,
        }),
        None => Ok(v),
    }
}

/// Converts a reply, naming the command in the error.
pub(crate) fn convert<T: FromValue>(cmd: &Cmd, v: Value) -> Result<T> {
    T::from_value(v).map_err(|source| Error::Reply {
        command: cmd.first_word(),
        source,
    })
}

/// The kinds of pooled client, for what [`refuse_on_pool`] can point to: only the
/// blocking single-server client offers a dedicated connection.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pooled {
    Blocking,
    Async,
    Cluster,
}

/// Refuses, before anything is sent, a command method whose only effect is the state of
/// the one connection it runs on (CLIENT SETNAME, CLIENT TRACKING, READONLY, RESET …): a
/// pooled client hands that connection back at once and the pool restores it, so the
/// call would look like it worked and change nothing. The error says what to use instead,
/// among what that kind of client offers. Shared by every pooled client; pipelines,
/// WATCH-ed pipelines and connections keep the state for their own commands and are not
/// refused.
pub(crate) fn refuse_on_pool(cmd: &Cmd, client: Pooled) -> Result<()> {
    if !cmd.flags().contains(Flags::CONNECTION_STATE) {
        return Ok(());
    }
    /// The first half of every message.
    macro_rules! undone {
        ($what:literal) => {
            concat!(
                $what,
                " on a pooled client would be undone when its connection goes back to the \
                 pool: "
            )
        };
    }
    use Pooled::{Async, Blocking, Cluster};
    Err(Error::Unsupported(match (cmd.name(), client) {
        ("CLIENT SETNAME", Blocking) => concat!(
            undone!("CLIENT SETNAME"),
            "name every connection with `ConnectionInfo::with_client_name` (or \
             `?client_name=` in the URL), or call it on `dedicated_connection()`"
        ),
        ("CLIENT SETNAME", Async | Cluster) => concat!(
            undone!("CLIENT SETNAME"),
            "name every connection with `ConnectionInfo::with_client_name` (or \
             `?client_name=` in the URL)"
        ),
        ("CLIENT TRACKING", Blocking) => concat!(
            undone!("CLIENT TRACKING"),
            "use `with_cache` for client-side caching, or call it on `dedicated_connection()`"
        ),
        ("CLIENT TRACKING", Async) => concat!(
            undone!("CLIENT TRACKING"),
            "use `with_cache` for client-side caching"
        ),
        ("READONLY" | "READWRITE", Blocking) => concat!(
            undone!("READONLY or READWRITE"),
            "read from replicas with `ConnectionInfo::readonly`, or call it on \
             `dedicated_connection()`"
        ),
        ("READONLY" | "READWRITE", Async) => concat!(
            undone!("READONLY or READWRITE"),
            "read from replicas with `ConnectionInfo::readonly`"
        ),
        ("READONLY" | "READWRITE", Cluster) => concat!(
            undone!("READONLY or READWRITE"),
            "read from replicas with `ClusterOptions::with_read_from_replicas` or \
             `on_replicas(true)`"
        ),
        (_, Blocking) => concat!(
            undone!("this command"),
            "call it on `dedicated_connection()`, or in a pipeline with the commands it is for"
        ),
        (_, Async | Cluster) => concat!(
            undone!("this command"),
            "call it in a pipeline with the commands it is for"
        ),
    }))
}

impl Executor for &Redis {
    type Mode = redis_commands::BinaryMode;
    type Output<T> = Result<T>;

    fn run<T: FromValue>(self, typed: Typed<T>) -> Result<T> {
        refuse_on_pool(&typed.cmd, Pooled::Blocking)?;
        let v = self.request(&typed.cmd)?;
        self.typed_reply(&typed.cmd, v)
    }
}
