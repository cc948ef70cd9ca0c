//! The seam between command definitions and whatever sends them.

use crate::{BinaryMode, FromValue, Mode, Typed};
use std::fmt;
use std::marker::PhantomData;

/// Something that runs commands: the client (returns the reply), a pipeline (queues it and
/// returns itself for chaining), a WATCH-ed pipeline in immediate mode, and later the async
/// and cluster clients.
///
/// Every command method of the group traits ([`StringCommands`](crate::StringCommands) …)
/// is available on every `Executor` through a blanket impl, so each command is written
/// once for all of them. Implement it on a reference (`&Client`, `&mut Pipeline`) so the
/// methods can take `self` and still be called on a named value.
pub trait Executor: Sized {
    /// How command methods type their replies: [`BinaryMode`] (bytes, as declared) or
    /// [`TextMode`](crate::TextMode) (strings, UTF-8 checked).
    type Mode: Mode;

    /// What a command method returns for a reply of type `T`.
    type Output<T>;

    /// Runs (or queues) `cmd`, converting its reply to `T`.
    fn run<T: FromValue>(self, cmd: Typed<T>) -> Self::Output<T>;

    /// The next command method's reply converted into `U` instead of its declared type:
    /// any [`FromValue`] type, so a counter stored by `SET` or `INCR` reads as a number
    /// (`r.reply_as::<Option<i64>>().get("visits")?`), in any mode and on any executor.
    fn reply_as<U: FromValue>(self) -> ReplyAs<Self, U> {
        ReplyAs {
            inner: self,
            _reply: PhantomData,
        }
    }
}

/// An executor whose next command's reply converts into `U`; made by
/// [`Executor::reply_as`].
pub struct ReplyAs<E, U> {
    inner: E,
    _reply: PhantomData<fn() -> U>,
}

impl<E: fmt::Debug, U> fmt::Debug for ReplyAs<E, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplyAs")
            .field("inner", &self.inner)
            .field("reply", &std::any::type_name::<U>())
            .finish()
    }
}

/// The command runs on the wrapped executor; only the reply type changes.
impl<E: Executor, U: FromValue> Executor for ReplyAs<E, U> {
    // The declared type is replaced whole, so there is nothing for a mode to map.
    type Mode = BinaryMode;
    type Output<T> = E::Output<U>;

    fn run<T: FromValue>(self, cmd: Typed<T>) -> E::Output<U> {
        self.inner.run(Typed::new(cmd.cmd))
    }
}
