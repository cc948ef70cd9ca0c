//! Optimistic locking: WATCH, immediate-mode reads, then a MULTI … EXEC that runs only
//! if no watched key changed; and the retry loop around it.

use crate::client::send_and_read;
use crate::{Error, Pipeline, Redis, Result};
use redis_commands::{Cmd, Executor, FromValue, ToArgs, Typed};
use resp_proto::Value;

/// A pipeline that WATCHes keys, in immediate mode: every command runs at once on the
/// pipeline's connection and returns its value, so the transaction can be computed from
/// what is stored now. [`multi`](Watched::multi) gives the pipeline back for buffering.
///
/// Made by [`Pipeline::watch`], which it owns (with its connection), as the async
/// client's [`aio::Watched`](crate::aio::Watched) does: the same code runs on both,
/// `.await` aside. redis-py 2.7.6's client-side INCR:
///
/// ```no_run
/// use redis_client::{prelude::*, Error, Redis};
///
/// let r = Redis::open("redis://localhost")?;
/// loop {
///     let mut watched = r.pipeline().watch("OUR-SEQUENCE-KEY")?;
///     // Immediate mode: the value comes back at once, read as a number.
///     let current = watched
///         .reply_as::<Option<i64>>()
///         .get("OUR-SEQUENCE-KEY")?
///         .unwrap_or(0);
///     // Back to buffering: the SET is queued, then sent with MULTI … EXEC.
///     let mut tx = watched.multi();
///     tx.set("OUR-SEQUENCE-KEY", current + 1);
///     match tx.execute() {
///         Ok(_) => break,
///         // Another client changed the key since WATCH: nothing ran; try again.
///         Err(Error::Watch) => continue,
///         Err(e) => return Err(e),
///     }
/// }
/// # Ok::<(), redis_client::Error>(())
/// ```
///
/// Dropping a `Watched` (or the pipeline [`multi`](Watched::multi) gave back) ends the
/// WATCH and returns the connection to the pool; so does the pipeline's
/// [`execute`](Pipeline::execute) or [`reset`](Pipeline::reset).
#[derive(Debug)]
pub struct Watched {
    pipe: Pipeline,
}

impl Watched {
    pub(crate) fn new(pipe: Pipeline) -> Self {
        Watched { pipe }
    }

    /// Switches back to buffering (redis-py 2.7.6's `multi()`): gives the pipeline back;
    /// commands queued on it run between MULTI and EXEC on the watching connection when
    /// it is executed, and only if no watched key changed.
    pub fn multi(mut self) -> Pipeline {
        self.pipe.multi();
        self.pipe
    }

    /// WATCHes more keys on the same connection.
    ///
    /// # Errors
    /// Connection and server errors.
    pub fn watch<K: ToArgs>(&mut self, keys: K) -> Result<()> {
        let mut cmd = Cmd::new("WATCH");
        cmd.key(keys);
        self.request(&cmd).map(drop)
    }

    /// Runs any command given as its arguments at once and returns its reply after the
    /// default response callback.
    ///
    /// # Errors
    /// Connection errors, or [`Error::Server`] when the server answers with an error.
    pub fn execute_command<A: ToArgs>(&mut self, args: A) -> Result<Value> {
        let cmd = Cmd::from_args(args);
        let v = self.request(&cmd)?;
        self.pipe
            .client
            .dynamic_reply(&cmd, v)
            .map_err(|source| Error::Reply {
                command: cmd.first_word(),
                source,
            })
    }

    /// UNWATCHes, empties the pipeline and returns its connection to the pool.
    pub fn reset(mut self) {
        self.pipe.reset();
    }

    fn request(&mut self, cmd: &Cmd) -> Result<Value> {
        // The connection stays bound from `Pipeline::watch` until the pipeline resets.
        let _writes = self.pipe.client.cache_shared().map(|c| c.writes([cmd]));
        let Some(conn) = self.pipe.conn.as_mut() else {
            return Err(Error::ConnectionBroken);
        };
        conn.set_call_deadline(self.pipe.client.call_deadline(Some(cmd)));
        send_and_read(self.pipe.client.pool().info(), conn, cmd)
    }
}

/// Each command method runs at once and returns its value, as on [`Redis`].
impl Executor for &mut Watched {
    type Mode = redis_commands::BinaryMode;
    type Output<T> = Result<T>;

    fn run<T: FromValue>(self, typed: Typed<T>) -> Result<T> {
        let v = self.request(&typed.cmd)?;
        self.pipe.client.typed_reply(&typed.cmd, v)
    }
}

impl Redis {
    /// Runs `f` as an optimistic transaction on `keys` and returns the EXEC results
    /// (redis-py 2.7.6's `transaction(func, *keys)`).
    ///
    /// Each attempt WATCHes `keys` on a new pipeline and calls `f` with it in immediate
    /// mode; `f` reads what it needs, calls [`Watched::multi`], queues the writes on the
    /// pipeline it gives back and returns that pipeline, which then runs as one
    /// MULTI … EXEC. When a watched key changed in the meantime ([`Error::Watch`], from
    /// EXEC or from `f` itself), the attempt is discarded and `f` runs again, as often as
    /// it takes. Values `f` wants to hand out can be written to variables it captures: the
    /// last attempt's writes are the ones that count. The async client's
    /// [`transaction`](crate::aio::Redis::transaction) takes the same closure, `async`.
    ///
    /// ```no_run
    /// use redis_client::{prelude::*, Redis};
    ///
    /// let r = Redis::open("redis://localhost")?;
    /// r.transaction("OUR-SEQUENCE-KEY", |mut w| {
    ///     let current = w.reply_as::<Option<i64>>().get("OUR-SEQUENCE-KEY")?;
    ///     let mut pipe = w.multi();
    ///     pipe.set("OUR-SEQUENCE-KEY", current.unwrap_or(0) + 1);
    ///     Ok(pipe)
    /// })?;
    /// # Ok::<(), redis_client::Error>(())
    /// ```
    ///
    /// # Errors
    /// Any error of `f` other than [`Error::Watch`], and the errors of
    /// [`Pipeline::execute`] other than [`Error::Watch`]. The connection is returned
    /// unwatched in every case.
    pub fn transaction<K, F>(&self, keys: K, mut f: F) -> Result<Vec<Value>>
    where
        K: ToArgs,
        F: FnMut(Watched) -> Result<Pipeline>,
    {
        loop {
            let result = match self.pipeline().watch(&keys).and_then(&mut f) {
                Ok(mut pipe) => pipe.execute(),
                Err(e) => Err(e),
            };
            match result {
                Err(Error::Watch) => continue,
                other => return other,
            }
        }
    }
}
