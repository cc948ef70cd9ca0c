//! Pipelines whose result type is built from the commands queued on them.

use crate::{Error, Pipeline, Redis, Result, ScriptCall};
use redis_commands::{BinaryMode, Executor, FromValue, FromValueError, Mode, Typed};
use resp_proto::Value;
use std::fmt;
use std::marker::PhantomData;

/// A pipeline for a fixed sequence of commands whose [`execute`](TypedPipeline::execute)
/// returns a tuple of their typed replies, with no annotation: each command method takes
/// the pipeline by value and returns one whose type has that command's reply added.
///
/// ```no_run
/// use redis_client::{prelude::*, Redis};
///
/// let r = Redis::open("redis://localhost:6379/0")?;
/// let (stored, value, n) = r.typed_pipeline().set("a", 1).get("a").incr("n").execute()?;
/// // (bool, Option<Bytes>, i64)
/// assert!(stored);
/// assert_eq!(value.as_deref(), Some(&b"1"[..]));
/// # let _: i64 = n;
/// # Ok::<(), redis_client::Error>(())
/// ```
///
/// Made by [`Redis::typed_pipeline`] (byte mode) or
/// [`Text::typed_pipeline`](crate::Text::typed_pipeline) (text mode, `Option<String>` for
/// the `get` above). Up to 16 commands; for more, or for a number of commands known only
/// at run time, use [`Pipeline`], whose [`execute`](Pipeline::execute) returns a `Vec`.
/// Like [`Pipeline`], it runs as MULTI … EXEC unless
/// [`transaction(false)`](TypedPipeline::transaction).
///
/// `L` is the list of reply types so far, as nested pairs (`(((), bool), Option<Bytes>)`);
/// `M` is the [`Mode`]; `P` the pipeline underneath (the async client's is
/// `aio::TypedPipeline`, this type over `aio::Pipeline`).
pub struct TypedPipeline<L = (), M = BinaryMode, P = Pipeline> {
    pipe: P,
    /// The name of each queued command, to say whose reply did not convert.
    names: Vec<&'static str>,
    _replies: PhantomData<fn() -> (L, M)>,
}

impl<L, M, P: fmt::Debug> fmt::Debug for TypedPipeline<L, M, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedPipeline")
            .field("commands", &self.names)
            .field("pipeline", &self.pipe)
            .finish()
    }
}

impl Redis {
    /// A pipeline typed by the commands queued on it: `execute` returns a tuple of their
    /// replies. See [`TypedPipeline`].
    pub fn typed_pipeline(&self) -> TypedPipeline {
        TypedPipeline::new(self.pipeline())
    }
}

/// The pipelines a [`TypedPipeline`] can wrap: the blocking [`Pipeline`] and, with the
/// `tokio` feature, the async one. Implemented by this crate only.
pub trait Queues: sealed::Sealed {
    /// As [`Pipeline::transaction`].
    #[doc(hidden)]
    fn with_transaction(&mut self, transaction: bool);

    /// As [`Pipeline::invoke_script`].
    #[doc(hidden)]
    fn queue_script(&mut self, call: ScriptCall<'_>);

    /// Queues a command whose reply is checked as `T`.
    #[doc(hidden)]
    fn queue_typed<T: FromValue>(&mut self, typed: Typed<T>);
}

pub(crate) mod sealed {
    /// Keeps [`Queues`](super::Queues) to this crate's pipelines.
    pub trait Sealed {}
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
        self.push_typed(typed, None);
    }
}

impl<M, P> TypedPipeline<(), M, P> {
    pub(crate) fn new(pipe: P) -> Self {
        TypedPipeline {
            pipe,
            names: Vec::new(),
            _replies: PhantomData,
        }
    }
}

impl<L, M, P: Queues> TypedPipeline<L, M, P> {
    /// `false` only buffers: the commands are sent together but not as a MULTI … EXEC
    /// transaction. As [`Pipeline::transaction`].
    ///
    /// A typed pipeline is built in one chain, each command adding to its type, so this
    /// takes and returns it by value: `r.typed_pipeline().transaction(false).get("a")`.
    #[must_use]
    pub fn transaction(mut self, transaction: bool) -> Self {
        self.pipe.with_transaction(transaction);
        self
    }

    /// Queues a script run (see [`Pipeline::invoke_script`]); its reply converts into
    /// `T`, which a script's source cannot tell: `invoke_script::<i64>(..)`.
    pub fn invoke_script<T: FromValue>(
        mut self,
        call: ScriptCall<'_>,
    ) -> TypedPipeline<(L, T), M, P> {
        self.names.push("EVALSHA");
        self.pipe.queue_script(call);
        self.retype()
    }

    /// How many commands are queued.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when no command is queued.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The pipeline underneath and the names of the queued commands.
    pub(crate) fn into_parts(self) -> (P, Vec<&'static str>) {
        (self.pipe, self.names)
    }

    fn retype<L2>(self) -> TypedPipeline<L2, M, P> {
        TypedPipeline {
            pipe: self.pipe,
            names: self.names,
            _replies: PhantomData,
        }
    }
}

impl<L, M> TypedPipeline<L, M> {
    /// Sends every queued command in one write and returns their replies as a tuple, each
    /// of the type its command method declares (in this pipeline's [`Mode`]).
    ///
    /// # Errors
    /// As [`Pipeline::execute`], and [`Error::Reply`] naming the first command whose reply
    /// does not convert.
    pub fn execute(mut self) -> Result<L::Tuple>
    where
        L: Replies,
    {
        let values = self.pipe.execute()?;
        L::convert(values, &self.names)
    }
}

/// Each command method queues its command and returns the pipeline with the command's
/// reply type added.
impl<L, M: Mode, P: Queues> Executor for TypedPipeline<L, M, P> {
    type Mode = M;
    type Output<T> = TypedPipeline<(L, T), M, P>;

    fn run<T: FromValue>(mut self, typed: Typed<T>) -> TypedPipeline<(L, T), M, P> {
        self.names.push(typed.cmd.name());
        self.pipe.queue_typed(typed);
        self.retype()
    }
}

/// The reply types of a [`TypedPipeline`], as nested pairs `(((), A), B)`, and the tuple
/// `(A, B)` they become. Implemented for up to 16 commands.
pub trait Replies {
    /// The flat tuple of replies.
    type Tuple;

    /// Converts one reply per command, in order; `names` are the commands, for errors.
    ///
    /// # Errors
    /// [`Error::Reply`] naming the first command whose reply does not convert.
    fn convert(values: Vec<Value>, names: &[&'static str]) -> Result<Self::Tuple>;
}

impl Replies for () {
    type Tuple = ();

    fn convert(_: Vec<Value>, _: &[&'static str]) -> Result<()> {
        Ok(())
    }
}

/// Converts the next reply, naming its command if it does not fit.
fn next_reply<T: FromValue>(
    it: &mut impl Iterator<Item = (usize, (Value, &'static str))>,
) -> Result<T> {
    // `Pipeline::execute` returns one result per queued command, checked by the caller.
    let Some((i, (v, name))) = it.next() else {
        unreachable!("one reply per command")
    };
    T::from_value(v).map_err(|source| Error::Reply {
        command: format!("command #{i} ({name})"),
        source,
    })
}

macro_rules! nested {
    ($acc:ty;) => { $acc };
    ($acc:ty; $head:ident $($rest:ident)*) => { nested!(($acc, $head); $($rest)*) };
}

macro_rules! replies {
    ($($t:ident)+) => {
        impl<$($t: FromValue),+> Replies for nested!((); $($t)+) {
            type Tuple = ($($t,)+);

            fn convert(values: Vec<Value>, names: &[&'static str]) -> Result<Self::Tuple> {
                if values.len() != names.len() {
                    return Err(Error::Reply {
                        command: "pipeline".to_owned(),
                        source: FromValueError::Type {
                            expected: "one reply per command",
                            actual: format!("{} replies to {} commands", values.len(), names.len()),
                        },
                    });
                }
                let mut it = values.into_iter().zip(names.iter().copied()).enumerate();
                Ok(($(next_reply::<$t>(&mut it)?,)+))
            }
        }
    };
}
replies!(A);
replies!(A B);
replies!(A B C);
replies!(A B C D);
replies!(A B C D E);
replies!(A B C D E F);
replies!(A B C D E F G);
replies!(A B C D E F G H);
replies!(A B C D E F G H I);
replies!(A B C D E F G H I J);
replies!(A B C D E F G H I J K);
replies!(A B C D E F G H I J K L);
replies!(A B C D E F G H I J K L N);
replies!(A B C D E F G H I J K L N O);
replies!(A B C D E F G H I J K L N O P);
replies!(A B C D E F G H I J K L N O P Q);
