//! The seam between command definitions and whatever sends them.

use crate::{FromValue, Typed};

/// Something that runs commands: the client (returns the reply), a pipeline (queues it and
/// returns itself for chaining), a WATCH-ed pipeline in immediate mode, and later the async
/// and cluster clients.
///
/// Every command method of the group traits ([`StringCommands`](crate::StringCommands) …)
/// is available on every `Executor` through a blanket impl, so each command is written
/// once for all of them. Implement it on a reference (`&Client`, `&mut Pipeline`) so the
/// methods can take `self` and still be called on a named value.
pub trait Executor: Sized {
    /// What a command method returns for a reply of type `T`.
    type Output<T>;

    /// Runs (or queues) `cmd`, converting its reply to `T`.
    fn run<T: FromValue>(self, cmd: Typed<T>) -> Self::Output<T>;
}
