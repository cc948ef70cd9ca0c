//! Pipelines: commands queued on the client side and sent in one write, wrapped in
//! MULTI … EXEC by default.

use crate::client::{
    convert, dynamic_reply, longer, pipeline_budget, reply_timeout, send_and_read,
};
use crate::observe::{Batch, Op};
use crate::script::{Script, ScriptCall};
use crate::transaction::Watched;
use crate::{Error, Redis, Result};
use bytes::BytesMut;
use redis_commands::{Callbacks, Cmd, Executor, FromValue, FromValueError, ToArgs, Typed};
use redis_conn::{ConnectionInfo, PooledConnection, ReplyTimeout};
use resp_proto::{ErrorCode, Value};

/// Commands queued to be sent together (redis-py 2.7.6's `Pipeline`).
///
/// Each command method queues its command and returns the pipeline, so calls chain;
/// [`execute`](Pipeline::execute) sends everything in one write and returns one result per
/// command, after the same response callbacks
/// [`Redis::execute_command`] applies (`SET` gives `true`, `HGETALL` a map);
/// [`query`](Pipeline::query) converts the results into a tuple or any other
/// [`FromValue`] type. For a fixed sequence of commands,
/// [`Redis::typed_pipeline`] infers that tuple from the commands queued.
///
/// A pipeline is transactional by default: the commands go out between `MULTI` and
/// `EXEC` and run atomically. [`transaction(false)`](Pipeline::transaction) only buffers.
///
/// ```no_run
/// use redis_client::{prelude::*, Bytes, Redis};
///
/// let r = Redis::open("redis://localhost")?;
/// let mut pipe = r.pipeline();
/// pipe.set("foo", "bar").sadd("faz", "baz").incr("auto_number");
/// let (set, added, n): (bool, bool, i64) = pipe.query()?;
/// # Ok::<(), redis_client::Error>(())
/// ```
///
/// [`watch`](Pipeline::watch) binds the pipeline to one connection and switches it to
/// immediate mode for optimistic locking; see [`Watched`]. After `execute` (whether it
/// succeeded or not) and on [`reset`](Pipeline::reset) the queue is empty, any WATCH is
/// gone and the connection is back in the pool, so the pipeline can be used again.
/// Dropping the pipeline resets it.
///
/// A pipeline is `Send` but not shared between threads (redis-py 2.7.6's rule); each thread
/// makes its own from a shared [`Redis`].
#[derive(Debug)]
#[must_use = "a pipeline sends nothing until `execute`"]
pub struct Pipeline {
    pub(crate) client: Redis,
    transaction: bool,
    raise_on_error: bool,
    commands: Vec<Queued>,
    /// The connection the pipeline is bound to while it WATCHes.
    pub(crate) conn: Option<PooledConnection>,
    /// True from WATCH until EXEC or UNWATCH: the bound connection carries watched keys.
    pub(crate) watching: bool,
    /// `multi()` was called: run as a transaction even if `transaction(false)`.
    explicit_multi: bool,
    /// Scripts of queued EVALSHAs, made present on the server just before sending.
    scripts: Vec<Script>,
}

/// One queued command and what to do with its reply.
#[derive(Debug)]
pub(crate) struct Queued {
    pub(crate) cmd: Cmd,
    /// Does the reply convert to the type the command method declares? Used only to name
    /// the culprit when [`Pipeline::query`] fails.
    pub(crate) check: fn(Value) -> Result<(), FromValueError>,
    /// A per-command adjustment after the response callbacks (the legacy client's TTL).
    pub(crate) post: Option<fn(Value) -> Value>,
}

pub(crate) fn check<T: FromValue>(v: Value) -> Result<(), FromValueError> {
    T::from_value(v).map(drop)
}

impl Pipeline {
    pub(crate) fn new(client: Redis) -> Pipeline {
        Pipeline {
            client,
            transaction: true,
            raise_on_error: true,
            commands: Vec::new(),
            conn: None,
            watching: false,
            explicit_multi: false,
            scripts: Vec::new(),
        }
    }

    /// Wraps the commands in MULTI … EXEC (`true`, the default) or only buffers them
    /// (`false`). Takes the pipeline by `&mut` and returns it, like every command method,
    /// so it is set in a chain (`r.pipeline().transaction(false).set("a", 1).execute()?`)
    /// or on a pipeline kept in a variable (`pipe.transaction(false);`), the same way on
    /// every client's pipeline.
    pub fn transaction(&mut self, transaction: bool) -> &mut Self {
        self.transaction = transaction;
        self
    }

    /// Makes [`execute`](Pipeline::execute) fail on the first command that failed on the
    /// server (`true`, the default) or return every result with errors in place as
    /// [`Value::Error`] (`false`). Set as [`transaction`](Pipeline::transaction) is.
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

    /// Queues any command given as its arguments; its result is the raw reply after the
    /// default response callback.
    ///
    /// ```no_run
    /// # let r = redis_client::Redis::open("redis://localhost")?;
    /// let mut pipe = r.pipeline();
    /// pipe.execute_command(("OBJECT", "ENCODING", "foo"));
    /// # Ok::<(), redis_client::Error>(())
    /// ```
    pub fn execute_command<A: ToArgs>(&mut self, args: A) -> &mut Self {
        self.queue(Cmd::from_args(args))
    }

    /// Queues a script run (redis-py 2.7.6's `script(keys=…, args=…, client=pipe)`).
    ///
    /// Just before the pipeline is sent, every script it uses is checked with SCRIPT
    /// EXISTS and loaded if missing, so a NOSCRIPT cannot abort the transaction.
    ///
    /// ```no_run
    /// # use redis_client::{prelude::*, Redis};
    /// # let r = Redis::open("redis://localhost")?;
    /// let multiply = r.register_script("return redis.call('GET', KEYS[1]) * ARGV[1]");
    /// let mut pipe = r.pipeline();
    /// pipe.set("foo", 5).invoke_script(multiply.key("foo").arg(5));
    /// let (stored, product): (bool, i64) = pipe.query()?;
    /// # Ok::<(), redis_client::Error>(())
    /// ```
    pub fn invoke_script(&mut self, call: ScriptCall<'_>) -> &mut Self {
        if !self.scripts.iter().any(|s| s.sha() == call.script().sha()) {
            self.scripts.push(call.script().clone());
        }
        self.queue(call.to_cmd())
    }

    /// Queues a command built by hand.
    pub fn queue(&mut self, cmd: Cmd) -> &mut Self {
        self.push(cmd, check::<Value>, None)
    }

    pub(crate) fn push(
        &mut self,
        cmd: Cmd,
        check: fn(Value) -> Result<(), FromValueError>,
        post: Option<fn(Value) -> Value>,
    ) -> &mut Self {
        self.commands.push(Queued { cmd, check, post });
        self
    }

    pub(crate) fn push_typed<T: FromValue>(
        &mut self,
        typed: Typed<T>,
        post: Option<fn(Value) -> Value>,
    ) -> &mut Self {
        self.push(typed.cmd, check::<T>, post)
    }

    /// Makes the queued commands a transaction (MULTI … EXEC) even on a pipeline made with
    /// `transaction(false)`. After [`watch`](Pipeline::watch), [`Watched::multi`] does this
    /// and gives the pipeline back.
    pub fn multi(&mut self) -> &mut Self {
        self.explicit_multi = true;
        self
    }

    /// WATCHes `keys` (one key or a list): binds the pipeline to one pooled connection and
    /// returns it in immediate mode ([`Watched`], which owns it), where commands run at
    /// once and return their values. [`Watched::multi`] gives the pipeline back for
    /// buffering; its [`execute`](Pipeline::execute) then fails with [`Error::Watch`] if
    /// any watched key changed in between. Takes the pipeline by value, as the async
    /// client's does, so `r.pipeline().watch("key")?` is one expression on both.
    ///
    /// Commands queued before the call stay queued and run in the transaction.
    ///
    /// # Errors
    /// Pool, connection and server errors; the pipeline is dropped, which cleans it up.
    pub fn watch<K: ToArgs>(mut self, keys: K) -> Result<Watched> {
        let mut cmd = Cmd::new("WATCH");
        cmd.key(keys);
        // One budget for the call: the checkout and the command.
        let deadline = self.client.call_deadline(Some(&cmd));
        if self.conn.is_none() {
            self.conn = Some(self.client.checkout_until(deadline)?);
        }
        // Set before sending: should the reply never come, reset still knows to clean up.
        self.watching = true;
        let Some(conn) = self.conn.as_mut() else {
            unreachable!("bound just above")
        };
        // Each command of the WATCH is a call of its own, bounded by the call's budget.
        conn.set_call_deadline(deadline);
        send_and_read(self.client.pool().info(), conn, &cmd)?;
        Ok(Watched::new(self))
    }

    /// The queued commands, in order (for the cluster client's one-slot check).
    pub(crate) fn commands(&self) -> impl Iterator<Item = &Cmd> {
        self.commands.iter().map(|q| &q.cmd)
    }

    /// Sends every queued command in one write and returns one result per command.
    ///
    /// An empty pipeline returns an empty result without any I/O. The pipeline is
    /// [reset](Pipeline::reset) afterwards, whatever the outcome.
    ///
    /// # Errors
    /// - [`Error::Watch`] when a watched key changed: nothing ran.
    /// - [`Error::ExecAbort`] when the server refused a command while queueing the
    ///   transaction: nothing ran.
    /// - [`Error::PipelineCommand`] (with `raise_on_error`, the default) for the first
    ///   command that failed; every reply was still read.
    /// - [`Error::Reply`] when a response callback fails; connection and pool errors.
    ///
    /// On an error the connection is either in step (every reply read) or discarded,
    /// never returned to the pool owing replies.
    pub fn execute(&mut self) -> Result<Vec<Value>> {
        let commands = std::mem::take(&mut self.commands);
        let result = self.run_queued(&commands);
        self.reset();
        result
    }

    /// Sends every queued command as [`execute`](Pipeline::execute) does and converts the
    /// results, as a list, into `T`: a tuple with one element per command, a `Vec`, …
    ///
    /// ```no_run
    /// # use redis_client::{prelude::*, Bytes, Redis};
    /// # let r = Redis::open("redis://localhost")?;
    /// let mut pipe = r.pipeline();
    /// pipe.set("foo", "bar").get("foo");
    /// let (stored, value): (bool, Option<Bytes>) = pipe.query()?;
    /// # Ok::<(), redis_client::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`execute`](Pipeline::execute), and [`Error::Reply`] when the results do not
    /// convert, naming the first command whose reply does not fit its own method's type.
    pub fn query<T: FromValue>(&mut self) -> Result<T> {
        let commands = std::mem::take(&mut self.commands);
        let result = self.run_queued(&commands);
        self.reset();
        convert_results(&commands, result?)
    }

    /// Empties the queue, UNWATCHes if a WATCH is in force and returns the bound connection
    /// to the pool (redis-py 2.7.6's `reset`). Dropping the pipeline does the same.
    ///
    /// Never fails: if UNWATCH cannot be sent or answered, the connection is closed instead
    /// of being returned, so no WATCH outlives the pipeline on a pooled connection.
    pub fn reset(&mut self) {
        self.commands.clear();
        self.scripts.clear();
        self.explicit_multi = false;
        if let Some(mut conn) = self.conn.take() {
            // During a panic the pool discards the connection anyway.
            if self.watching && !std::thread::panicking() {
                let unwatch = Cmd::new("UNWATCH");
                conn.set_call_deadline(self.client.call_deadline(Some(&unwatch)));
                if send_and_read(self.client.pool().info(), &mut conn, &unwatch).is_err() {
                    conn.mark_broken();
                }
            } else if self.watching {
                conn.mark_broken();
            }
        }
        self.watching = false;
    }

    fn run_queued(&mut self, commands: &[Queued]) -> Result<Vec<Value>> {
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
            self.client.pool().info(),
            batch,
            commands.iter().map(|q| &q.cmd),
        );
        let result = op.run(|| self.run_unobserved(commands));
        op.finish(&result);
        result
    }

    fn run_unobserved(&mut self, commands: &[Queued]) -> Result<Vec<Value>> {
        let transactional = self.transaction || self.explicit_multi;
        // One budget for the whole pipeline: checkout, write and every reply.
        let deadline = pipeline_budget(
            self.client.retry_policy(),
            self.client.pool().info(),
            commands,
            transactional,
        )
        .map(|b| redis_conn::clock::now() + b);
        // The bound connection while watching (taken out for the call and put back, so
        // `reset` still finds it), else one from the pool for this call.
        let mut conn = match self.conn.take() {
            Some(bound) => bound,
            None => self.client.checkout_until(deadline)?,
        };
        conn.set_call_deadline(deadline);
        let result = self.send_queued(&mut conn, commands, transactional);
        // `execute` resets the pipeline next, which hands it back (UNWATCHing if needed);
        // the deadline stays, so that a restore at hand-back fits the call's budget too.
        self.conn = Some(conn);
        result
    }

    /// Writes the queued commands on `conn` and reads every reply.
    fn send_queued(
        &mut self,
        conn: &mut PooledConnection,
        commands: &[Queued],
        transactional: bool,
    ) -> Result<Vec<Value>> {
        if !self.scripts.is_empty() {
            ensure_scripts(self.client.pool().info(), conn, &self.scripts)?;
        }

        // One allocation for the whole request: each command's body plus its array header.
        let size = commands
            .iter()
            .map(|q| q.cmd.body().len() + 24)
            .sum::<usize>()
            + 64;
        let mut out = BytesMut::with_capacity(size);
        let multi = Cmd::new("MULTI");
        let exec = Cmd::new("EXEC");
        if transactional {
            multi.encode_into(&mut out);
        }
        let mut timeout = ReplyTimeout::Default;
        for q in commands {
            q.cmd.encode_into(&mut out);
            timeout = longer(timeout, reply_timeout(conn, &q.cmd));
        }
        if transactional {
            exec.encode_into(&mut out);
        }
        let replies = commands.len() + if transactional { 2 } else { 0 };
        conn.send(&[&out], replies)?;

        // Every reply is read before any is judged, so the connection ends in step.
        let mut raw = Vec::with_capacity(replies);
        for _ in 0..replies {
            raw.push(conn.read_reply_timeout(timeout)?);
        }
        if transactional {
            // EXEC ends any WATCH, whether the transaction ran or not.
            self.watching = false;
        }
        let results = judge(commands, raw, transactional)?;
        finish(
            self.client.callbacks(),
            self.raise_on_error,
            commands,
            results,
        )
    }
}

/// The results of a pipeline's commands from every reply it got (MULTI, one per command
/// and EXEC when `transactional`): a watch abort, a refused transaction or a failed MULTI
/// as the error it is. Shared by the blocking and the async pipelines.
pub(crate) fn judge(
    commands: &[Queued],
    raw: Vec<Value>,
    transactional: bool,
) -> Result<Vec<Value>> {
    if !transactional {
        return Ok(raw);
    }
    let mut raw = raw.into_iter();
    let (Some(multi_reply), Some(exec_reply)) = (raw.next(), raw.next_back()) else {
        return Err(Error::OutOfStep(
            "a transaction without its MULTI and EXEC replies".into(),
        ));
    };
    let refused = raw
        .zip(commands)
        .enumerate()
        .find_map(|(i, (v, q))| match v {
            Value::Error(e) => Some((i, q, e)),
            _ => None,
        });
    if let Value::Error(e) = multi_reply {
        return Err(Error::Server(e.into()));
    }
    match exec_reply {
        Value::Nil => Err(Error::Watch),
        Value::Error(e) => Err(match refused {
            Some((index, q, error)) if e.code() == ErrorCode::EXECABORT => Error::ExecAbort {
                index,
                command: q.cmd.first_word(),
                error,
            },
            _ => Error::Server(e.into()),
        }),
        Value::Array(results) if results.len() == commands.len() => Ok(results),
        other => Err(Error::Reply {
            command: "EXEC".to_owned(),
            source: FromValueError::Type {
                expected: "one result per queued command",
                actual: format!("{} reply", other.kind_name()),
            },
        }),
    }
}

/// Applies the response callbacks and the error policy to the results.
pub(crate) fn finish(
    callbacks: &Callbacks,
    raise_on_error: bool,
    commands: &[Queued],
    raw: Vec<Value>,
) -> Result<Vec<Value>> {
    let mut out = Vec::with_capacity(raw.len());
    for (index, (v, q)) in raw.into_iter().zip(commands).enumerate() {
        let v = match v {
            Value::Error(error) if raise_on_error => {
                return Err(Error::PipelineCommand {
                    index,
                    command: q.cmd.first_word(),
                    error,
                })
            }
            e @ Value::Error(_) => e,
            v => {
                let v = dynamic_reply(callbacks, &q.cmd, v).map_err(|source| Error::Reply {
                    command: describe(index, &q.cmd),
                    source,
                })?;
                match q.post {
                    Some(post) => post(v),
                    None => v,
                }
            }
        };
        out.push(v);
    }
    Ok(out)
}

/// The results converted, as a list, into `T`, naming the first command whose reply does
/// not fit its own method's type when they do not.
pub(crate) fn convert_results<T: FromValue>(commands: &[Queued], values: Vec<Value>) -> Result<T> {
    T::from_value(Value::Array(values.clone())).map_err(|source| {
        let culprit = values
            .into_iter()
            .zip(commands)
            .enumerate()
            .find_map(|(i, (v, q))| (q.check)(v).err().map(|e| (i, q, e)));
        match culprit {
            Some((i, q, source)) => Error::Reply {
                command: describe(i, &q.cmd),
                source,
            },
            None => Error::Reply {
                command: "pipeline".to_owned(),
                source,
            },
        }
    })
}

/// Loads whichever of `scripts` the server lacks: one SCRIPT EXISTS, then a SCRIPT LOAD
/// per missing script.
fn ensure_scripts(
    info: &ConnectionInfo,
    conn: &mut PooledConnection,
    scripts: &[Script],
) -> Result<()> {
    let mut exists = Cmd::new("SCRIPT EXISTS");
    for s in scripts {
        exists.arg(s.sha());
    }
    let present: Vec<bool> = convert(&exists, send_and_read(info, conn, &exists)?)?;
    for (script, present) in scripts.iter().zip(present) {
        if !present {
            send_and_read(info, conn, &script.load_cmd())?;
        }
    }
    Ok(())
}

/// How an error names a queued command.
pub(crate) fn describe(index: usize, cmd: &Cmd) -> String {
    format!("command #{index} ({})", cmd.first_word())
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.reset();
    }
}

/// Each command method queues its command and returns the pipeline.
impl<'a> Executor for &'a mut Pipeline {
    type Mode = redis_commands::BinaryMode;
    type Output<T> = &'a mut Pipeline;

    fn run<T: FromValue>(self, typed: Typed<T>) -> &'a mut Pipeline {
        self.push_typed(typed, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn longer_timeout_wins() {
        use ReplyTimeout::{Default, Exactly};
        let s = |n| Exactly(Some(Duration::from_secs(n)));
        assert_eq!(longer(Default, Default), Default);
        assert_eq!(longer(Default, s(3)), s(3));
        assert_eq!(longer(s(5), s(3)), s(5));
        assert_eq!(longer(s(5), Exactly(None)), Exactly(None));
    }
}
