//! Async pipelines and transactions: commands queued and sent in one write, MULTI … EXEC
//! by default, and WATCH in immediate mode on a dedicated connection.

use super::{needs_own_connection, BoxFuture, Redis, Request};
use crate::client::{dynamic_reply, longer, overridden, pipeline_budget, reply_wait};
use crate::observe::{Batch, Op};
use crate::pipeline::{check, convert_results, finish, judge, Queued};
use crate::{Error, Result, Script, ScriptCall};
use bytes::BytesMut;
use redis_commands::{Cmd, Executor, FromValue, ToArgs, Typed};
use redis_conn::aio::PooledConnection;
use redis_conn::{ConnectionInfo, ReplyTimeout};
use resp_proto::Value;
use std::future::Future;

/// Commands queued to be sent together, as the blocking [`Pipeline`](crate::Pipeline):
/// each command method queues and returns the pipeline, [`execute`](Pipeline::execute)
/// sends everything in one write and returns one result per command (after the response
/// callbacks), [`query`](Pipeline::query) converts them into a tuple.
///
/// Transactional by default (MULTI … EXEC); [`transaction(false)`](Pipeline::transaction)
/// only buffers. Unless it WATCHes or holds a blocking or state-changing command, a
/// pipeline goes over the client's multiplexed connection as one request: a whole
/// MULTI … EXEC is written at once, so no other caller's command can land inside it.
///
/// ```no_run
/// use redis_client::prelude::*;
/// # async fn demo(r: redis_client::aio::Redis) -> redis_client::Result<()> {
/// let mut pipe = r.pipeline();
/// pipe.set("foo", "bar").sadd("faz", "baz").incr("auto_number");
/// let (set, added, n): (bool, bool, i64) = pipe.query().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Pipeline {
    client: Redis,
    transaction: bool,
    raise_on_error: bool,
    commands: Vec<Queued>,
    /// The connection the pipeline is bound to from WATCH until it is executed or reset.
    conn: Option<PooledConnection>,
    /// `multi()` was called: run as a transaction even if `transaction(false)`.
    explicit_multi: bool,
    /// Scripts of queued EVALSHAs, made present on the server just before sending.
    scripts: Vec<Script>,
}

impl Pipeline {
    pub(crate) fn new(client: Redis) -> Pipeline {
        Pipeline {
            client,
            transaction: true,
            raise_on_error: true,
            commands: Vec::new(),
            conn: None,
            explicit_multi: false,
            scripts: Vec::new(),
        }
    }

    /// Wraps the commands in MULTI … EXEC (`true`, the default) or only buffers them,
    /// as the blocking [`Pipeline::transaction`](crate::Pipeline::transaction): by `&mut`,
    /// in a chain or on a pipeline kept in a variable.
    pub fn transaction(&mut self, transaction: bool) -> &mut Self {
        self.transaction = transaction;
        self
    }

    /// Makes [`execute`](Pipeline::execute) fail on the first command that failed on the
    /// server (`true`, the default) or return every result with errors in place.
    pub fn raise_on_error(&mut self, raise: bool) -> &mut Self {
        self.raise_on_error = raise;
        self
    }

    /// Number of queued commands.
    pub fn len(&self) -> usize {
        self.commands.len()
    }

    /// True when no command is queued.
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    /// The queued commands, in order (for the cluster client's one-slot check).
    pub(crate) fn commands(&self) -> impl Iterator<Item = &Cmd> {
        self.commands.iter().map(|q| &q.cmd)
    }

    /// Queues any command given as its arguments.
    pub fn execute_command<A: ToArgs>(&mut self, args: A) -> &mut Self {
        self.queue(Cmd::from_args(args))
    }

    /// Queues a command built by hand.
    pub fn queue(&mut self, cmd: Cmd) -> &mut Self {
        self.commands.push(Queued {
            cmd,
            check: check::<Value>,
            post: None,
        });
        self
    }

    /// Queues a script run; every script queued is checked with SCRIPT EXISTS and loaded
    /// if missing just before the pipeline is sent, so NOSCRIPT cannot abort it.
    pub fn invoke_script(&mut self, call: ScriptCall<'_>) -> &mut Self {
        if !self.scripts.iter().any(|s| s.sha() == call.script().sha()) {
            self.scripts.push(call.script().clone());
        }
        self.queue(call.to_cmd())
    }

    /// Makes the queued commands a transaction even with `transaction(false)`.
    pub fn multi(&mut self) -> &mut Self {
        self.explicit_multi = true;
        self
    }

    /// WATCHes `keys` on a dedicated connection from the client's pool and returns the
    /// pipeline in immediate mode ([`Watched`]).
    ///
    /// Cancellation: cancel-safe as far as others go: a dropped call leaves its
    /// connection to be restored or closed by the pool.
    ///
    /// # Errors
    /// Pool, connection and server errors.
    pub fn watch<K: ToArgs>(self, keys: K) -> impl Future<Output = Result<Watched>> + Send {
        let mut cmd = Cmd::new("WATCH");
        cmd.key(keys);
        self.watch_cmd(cmd)
    }

    pub(crate) async fn watch_cmd(mut self, cmd: Cmd) -> Result<Watched> {
        // One budget for the call: the checkout and the command.
        let deadline = self.client.call_deadline(&cmd);
        if self.conn.is_none() {
            self.conn = Some(self.client.checkout_until(deadline).await?);
        }
        let Some(conn) = self.conn.as_mut() else {
            unreachable!("bound just above")
        };
        // Each command of the WATCH is a call of its own, bounded by the call's budget.
        conn.set_call_deadline(deadline);
        send_and_read(self.client.connection_info(), conn, &cmd).await?;
        Ok(Watched { pipe: self })
    }

    /// Sends every queued command in one write and returns one result per command; the
    /// pipeline is empty (and unbound) afterwards, whatever the outcome.
    ///
    /// Cancellation: not cancel-safe: the queued commands are lost and whether they ran is
    /// unknown; no one else is affected.
    ///
    /// # Errors
    /// As the blocking [`Pipeline::execute`](crate::Pipeline::execute): [`Error::Watch`],
    /// [`Error::ExecAbort`], [`Error::PipelineCommand`], [`Error::Reply`], connection
    /// and pool errors.
    pub async fn execute(&mut self) -> Result<Vec<Value>> {
        let commands = std::mem::take(&mut self.commands);
        let result = self.run_queued(&commands).await;
        self.reset();
        result
    }

    /// Sends every queued command as [`execute`](Pipeline::execute) does and converts the
    /// results, as a list, into `T`.
    ///
    /// Cancellation: as [`execute`](Pipeline::execute).
    ///
    /// # Errors
    /// As [`execute`](Pipeline::execute), and [`Error::Reply`] naming the first command
    /// whose reply does not fit.
    pub async fn query<T: FromValue>(&mut self) -> Result<T> {
        let commands = std::mem::take(&mut self.commands);
        let result = self.run_queued(&commands).await;
        self.reset();
        convert_results(&commands, result?)
    }

    /// Empties the queue and hands a bound connection back to the pool, which ends its
    /// WATCH (the core sees the WATCH and restores the connection with RESET).
    pub fn reset(&mut self) {
        self.commands.clear();
        self.scripts.clear();
        self.explicit_multi = false;
        self.conn = None;
    }

    async fn run_queued(&mut self, commands: &[Queued]) -> Result<Vec<Value>> {
        if commands.is_empty() {
            return Ok(Vec::new());
        }
        // Pipelines are never answered from the cache; their writes invalidate it.
        let _writes =
            (self.client.cache_shared()).map(|c| c.writes(commands.iter().map(|q| &q.cmd)));
        let batch = if self.transaction || self.explicit_multi {
            Batch::Transaction
        } else {
            Batch::Pipeline
        };
        let op = Op::batch(
            self.client.connection_info(),
            batch,
            commands.iter().map(|q| &q.cmd),
        );
        let result = op.run_async(self.run_unobserved(commands)).await;
        op.finish(&result);
        result
    }

    async fn run_unobserved(&mut self, commands: &[Queued]) -> Result<Vec<Value>> {
        let transactional = self.transaction || self.explicit_multi;
        if !self.scripts.is_empty() {
            ensure_scripts(&self.client, &self.scripts).await?;
        }
        let size = commands
            .iter()
            .map(|q| q.cmd.body().len() + 24)
            .sum::<usize>()
            + 64;
        let mut out = BytesMut::with_capacity(size);
        if transactional {
            Cmd::new("MULTI").encode_into(&mut out);
        }
        let read = self.client.connection_info().read_timeout;
        let mut timeout = ReplyTimeout::Default;
        let mut own = false;
        for q in commands {
            q.cmd.encode_into(&mut out);
            timeout = longer(timeout, reply_wait(read, &q.cmd));
            own |= needs_own_connection(&q.cmd);
        }
        if transactional {
            Cmd::new("EXEC").encode_into(&mut out);
        }
        let replies = commands.len() + if transactional { 2 } else { 0 };
        // One budget for the whole pipeline: checkout, write and every reply (on the
        // shared connection, the wait behind other callers' replies too).
        let deadline = pipeline_budget(
            &self.client.retry,
            self.client.connection_info(),
            commands,
            transactional,
        )
        .map(|b| redis_conn::aio::now() + b);
        let mut pooled = None;
        let conn = match self.conn.as_mut() {
            Some(bound) => Some(bound),
            None if own => Some(pooled.insert(self.client.checkout_until(deadline).await?)),
            None => None,
        };
        // Every reply is read before any is judged, so the connection ends in step.
        let raw = match conn {
            Some(conn) => {
                conn.set_call_deadline(deadline);
                let raw = read_all(conn, &out, replies, timeout).await;
                conn.set_call_deadline(None);
                raw?
            }
            None => {
                let send = self.client.mux.send(out.freeze(), replies, timeout);
                match deadline {
                    // Given up at the deadline, the replies are read and dropped by the
                    // connection, never handed to anyone.
                    Some(d) => match tokio::time::timeout_at(d.into(), send).await {
                        Ok(raw) => raw?,
                        Err(_) => return Err(Error::Timeout),
                    },
                    None => send.await?,
                }
            }
        };
        let results = judge(commands, raw, transactional)?;
        finish(
            &self.client.callbacks,
            self.raise_on_error,
            commands,
            results,
        )
    }
}

/// Writes a pipeline's request on a dedicated connection and reads every reply.
async fn read_all(
    conn: &mut PooledConnection,
    out: &[u8],
    replies: usize,
    timeout: ReplyTimeout,
) -> Result<Vec<Value>> {
    conn.send(&[out], replies, timeout).await?;
    let mut raw = Vec::with_capacity(replies);
    for _ in 0..replies {
        raw.push(conn.read_reply(ReplyTimeout::Default).await?);
    }
    Ok(raw)
}

/// Loads whichever of `scripts` the server lacks: one SCRIPT EXISTS, then a SCRIPT LOAD
/// per missing script.
async fn ensure_scripts(client: &Redis, scripts: &[Script]) -> Result<()> {
    let mut exists = Cmd::new("SCRIPT EXISTS");
    for s in scripts {
        exists.arg(s.sha());
    }
    let present: Vec<bool> = crate::client::convert(&exists, client.raw(&exists).await?)?;
    for (script, present) in scripts.iter().zip(present) {
        if !present {
            client.raw(&script.load_cmd()).await?;
        }
    }
    Ok(())
}

async fn send_and_read(
    info: &ConnectionInfo,
    conn: &mut PooledConnection,
    cmd: &Cmd,
) -> Result<Value> {
    let op = Op::command(info, cmd);
    let result = op.run_async(send_and_read_unobserved(conn, cmd)).await;
    op.finish(&result);
    result
}

async fn send_and_read_unobserved(conn: &mut PooledConnection, cmd: &Cmd) -> Result<Value> {
    let mut header = [0u8; 24];
    let header = cmd.header(&mut header);
    let timeout = reply_wait(conn.read_timeout(), cmd);
    conn.send(&[header, cmd.body()], 1, timeout).await?;
    match conn.read_reply(ReplyTimeout::Default).await? {
        Value::Error(e) => Err(redis_conn::Error::from_server_error(e).into()),
        v => Ok(v),
    }
}

/// Each command method queues its command and returns the pipeline.
impl<'a> Executor for &'a mut Pipeline {
    type Mode = redis_commands::BinaryMode;
    type Output<T> = &'a mut Pipeline;

    fn run<T: FromValue>(self, typed: Typed<T>) -> &'a mut Pipeline {
        self.commands.push(Queued {
            cmd: typed.cmd,
            check: check::<T>,
            post: None,
        });
        self
    }
}

/// A pipeline that WATCHes keys, in immediate mode on its own connection: every command
/// method runs at once and returns a future of its value. Made by [`Pipeline::watch`] and
/// given to the closure of [`Redis::transaction`]; [`multi`](Watched::multi) goes back to
/// buffering. Dropping it hands the connection back to the pool, which ends the WATCH.
#[derive(Debug)]
pub struct Watched {
    pipe: Pipeline,
}

impl Watched {
    /// Switches back to buffering: commands queued on the returned pipeline run between
    /// MULTI and EXEC on the watching connection when it is executed, and only if no
    /// watched key changed.
    pub fn multi(mut self) -> Pipeline {
        self.pipe.explicit_multi = true;
        self.pipe
    }

    /// WATCHes more keys on the same connection.
    ///
    /// Cancellation: not cancel-safe: the connection is closed by the pool.
    ///
    /// # Errors
    /// Connection and server errors.
    pub async fn watch<K: ToArgs>(&mut self, keys: K) -> Result<()> {
        let mut cmd = Cmd::new("WATCH");
        cmd.key(keys);
        self.request(&cmd).await.map(drop)
    }

    /// Runs any command given as its arguments at once, returning its reply after the
    /// default response callback.
    ///
    /// Cancellation: not cancel-safe: the connection is closed by the pool.
    ///
    /// # Errors
    /// Connection errors, or [`Error::Server`].
    pub fn execute_command<A: ToArgs>(&mut self, args: A) -> Request<'_, Value> {
        let cmd = Cmd::from_args(args);
        Request::new(Box::pin(async move {
            let v = self.request(&cmd).await?;
            let v = dynamic_reply(&self.pipe.client.callbacks, &cmd, v).map_err(|source| {
                Error::Reply {
                    command: cmd.first_word(),
                    source,
                }
            })?;
            Ok((v, cmd))
        }))
    }

    /// UNWATCHes (by handing the connection back) and drops the queued commands.
    pub fn reset(mut self) {
        self.pipe.reset();
    }

    fn request<'s>(&'s mut self, cmd: &'s Cmd) -> BoxFuture<'s, Result<Value>> {
        Box::pin(async move {
            let _writes = self.pipe.client.cache_shared().map(|c| c.writes([cmd]));
            // Bound by `Pipeline::watch_cmd` and released only by consuming `self`.
            let Some(conn) = self.pipe.conn.as_mut() else {
                return Err(Error::ConnectionBroken);
            };
            conn.set_call_deadline(self.pipe.client.call_deadline(cmd));
            send_and_read(self.pipe.client.connection_info(), conn, cmd).await
        })
    }
}

/// Each command method runs at once on the watching connection.
impl<'a> Executor for &'a mut Watched {
    type Mode = redis_commands::BinaryMode;
    type Output<T> = Request<'a, T>;

    fn run<T: FromValue>(self, typed: Typed<T>) -> Request<'a, T> {
        let cmd = typed.cmd;
        Request::new(Box::pin(async move {
            let v = self.request(&cmd).await?;
            let v = overridden(&self.pipe.client.callbacks, &cmd, v)?;
            Ok((v, cmd))
        }))
    }
}
