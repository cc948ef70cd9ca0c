//! Async pipelines whose result type is built from the commands queued on them: the
//! blocking [`TypedPipeline`](crate::TypedPipeline) over the async [`Pipeline`].

use super::{Pipeline, Redis};
use crate::text::Text;
use crate::typed::{sealed, Queues};
use crate::{Replies, Result, ScriptCall};
use redis_commands::{BinaryMode, Executor, FromValue, TextMode, Typed};
use std::future::Future;

/// The async typed pipeline: a fixed sequence of commands whose
/// [`execute`](crate::TypedPipeline::execute) resolves to a tuple of their typed replies,
/// with no annotation. Each command method takes the pipeline by value and returns one
/// whose type has that command's reply added.
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
/// Made by [`Redis::typed_pipeline`] (byte mode) or `Text<aio::Redis>::typed_pipeline`
/// (text mode). Up to 16 commands; it runs as MULTI … EXEC unless `transaction(false)`,
/// and is sent as the untyped [`Pipeline`] is, over the shared connection unless a
/// command's flags need a dedicated one.
pub type TypedPipeline<L = (), M = BinaryMode> = crate::TypedPipeline<L, M, Pipeline>;

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

impl<L, M> TypedPipeline<L, M> {
    /// Sends the commands in one write and converts their replies into the tuple.
    ///
    /// Cancellation: as [`Pipeline::execute`]: not cancel-safe for the caller (whether
    /// the commands ran is unknown), harmless to everyone else.
    ///
    /// # Errors
    /// As [`Pipeline::execute`], and [`Error::Reply`](crate::Error::Reply) naming the
    /// command (by position and name) whose reply does not fit its type.
    pub fn execute(self) -> impl Future<Output = Result<L::Tuple>> + Send
    where
        L: Replies,
    {
        let (mut pipe, names) = self.into_parts();
        async move {
            let values = pipe.execute().await?;
            L::convert(values, &names)
        }
    }
}

impl sealed::Sealed for Pipeline {}

impl Queues for Pipeline {
    fn with_transaction(&mut self, transaction: bool) {
        self.transaction(transaction);
    }

    fn queue_script(&mut self, call: ScriptCall<'_>) {
        self.invoke_script(call);
    }

    fn queue_typed<T: FromValue>(&mut self, typed: Typed<T>) {
        (&mut *self).run(typed);
    }
}
