//! Async pipelines whose result type is built from the commands queued on them.

use super::{Pipeline, Redis};
use crate::text::Text;
use crate::{Replies, Result, ScriptCall};
use redis_commands::{BinaryMode, Executor, FromValue, Mode, TextMode, Typed};
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;

/// The async [`TypedPipeline`](crate::TypedPipeline): a fixed sequence of commands whose
/// [`execute`](TypedPipeline::execute) resolves to a tuple of their typed replies, with
/// no annotation. Each command method takes the pipeline by value and returns one whose
/// type has that command's reply added.
///
/// ```no_run
/// use redis_client::prelude::*;
/// # async fn demo(r: redis_client::aio::Redis) -> redis_client::Result<()> {
/// let (stored, value, n) = r.typed_pipeline().set("a", 1).get("a").incr("n").execute().await?;
/// // (bool, Option<Bytes>, i64)
/// assert!(stored);
/// assert_eq!(value.as_deref(), Some(&b"1"[..]));
/// # let _: i64 = n;
/// # Ok(()) }
/// ```
///
/// Made by [`Redis::typed_pipeline`] (byte mode) or
/// [`Text<aio::Redis>::typed_pipeline`](crate::Text) (text mode). Up to 16 commands; it
/// runs as MULTI … EXEC unless [`transaction(false)`](TypedPipeline::transaction), and
/// is sent as the untyped [`Pipeline`] is, over the shared connection unless a command's
/// flags need a dedicated one.
pub struct TypedPipeline<L = (), M = BinaryMode> {
    pipe: Pipeline,
    /// The name of each queued command, to say whose reply did not convert.
    names: Vec<&'static str>,
    _replies: PhantomData<fn() -> (L, M)>,
}

impl<L, M> fmt::Debug for TypedPipeline<L, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedPipeline")
            .field("commands", &self.names)
            .field("pipeline", &self.pipe)
            .finish()
    }
}

impl Redis {
    /// A pipeline typed by the commands queued on it: `execute` resolves to a tuple of
    /// their replies. See [`TypedPipeline`].
    pub fn typed_pipeline(&self) -> TypedPipeline {
        TypedPipeline::new(self.pipeline())
    }
}

impl Text<Redis> {
    /// A typed pipeline whose replies are text (`Option<String>` for GET). See
    /// [`TypedPipeline`].
    pub fn typed_pipeline(&self) -> TypedPipeline<(), TextMode> {
        TypedPipeline::new(self.pipeline().into_inner())
    }
}

impl<M> TypedPipeline<(), M> {
    fn new(pipe: Pipeline) -> Self {
        TypedPipeline {
            pipe,
            names: Vec::new(),
            _replies: PhantomData,
        }
    }
}

impl<L, M> TypedPipeline<L, M> {
    /// Wraps the commands in MULTI … EXEC (`true`, the default) or only buffers them.
    #[must_use]
    pub fn transaction(mut self, transaction: bool) -> Self {
        self.pipe = self.pipe.transaction(transaction);
        self
    }

    /// Queues a script run whose reply converts into `T`; the script is loaded before the
    /// pipeline is sent if the server lacks it, as [`Pipeline::invoke_script`] does.
    pub fn invoke_script<T: FromValue>(mut self, call: ScriptCall<'_>) -> TypedPipeline<(L, T), M> {
        self.names.push("EVALSHA");
        self.pipe.invoke_script(call);
        self.retype()
    }

    /// Number of queued commands.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when no command is queued.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Sends the commands in one write and converts their replies into the tuple.
    ///
    /// Cancellation: as [`Pipeline::execute`]: not cancel-safe for the caller (whether
    /// the commands ran is unknown), harmless to everyone else.
    ///
    /// # Errors
    /// As [`Pipeline::execute`], and [`Error::Reply`](crate::Error::Reply) naming the
    /// command (by position and name) whose reply does not fit its type.
    pub fn execute(mut self) -> impl Future<Output = Result<L::Tuple>> + Send
    where
        L: Replies,
    {
        async move {
            let values = self.pipe.execute().await?;
            L::convert(values, &self.names)
        }
    }

    fn retype<L2>(self) -> TypedPipeline<L2, M> {
        TypedPipeline {
            pipe: self.pipe,
            names: self.names,
            _replies: PhantomData,
        }
    }
}

/// Each command method queues its command and returns the pipeline with the command's
/// reply type added.
impl<L, M: Mode> Executor for TypedPipeline<L, M> {
    type Mode = M;
    type Output<T> = TypedPipeline<(L, T), M>;

    fn run<T: FromValue>(mut self, typed: Typed<T>) -> TypedPipeline<(L, T), M> {
        self.names.push(typed.cmd.name());
        (&mut self.pipe).run(typed);
        self.retype()
    }
}
