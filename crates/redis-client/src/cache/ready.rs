//! Whether the invalidation connection's first attempt is over. Until it is, a cacheable
//! read waits for it (up to the connect timeout), so the reads made right after
//! `with_cache` returns are cached: without the wait they went to the server on
//! connections opened before any tracking redirect existed, and were never stored.
//!
//! The latch is set when the invalidation connection is first up (`Shared::connected`),
//! or when its first attempt failed ([`FirstAttempt`], which wraps the listener's
//! [`Dial`]): reads made while the server refuses it are not held up longer than one try.

use super::listener::{Dial, Link};
use parking_lot::{Condvar, Mutex};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// Set once, when the invalidation connection's first attempt is over.
#[derive(Debug, Default)]
pub(crate) struct Latch {
    state: Mutex<State>,
    cond: Condvar,
}

#[derive(Debug, Default)]
struct State {
    set: bool,
    /// Async reads waiting for it.
    wakers: Vec<Waker>,
}

impl Latch {
    /// Sets it, waking every waiter; later calls do nothing.
    pub(crate) fn set(&self) {
        let wakers = {
            let mut state = self.state.lock();
            if state.set {
                return;
            }
            state.set = true;
            std::mem::take(&mut state.wakers)
        };
        self.cond.notify_all();
        wakers.into_iter().for_each(Waker::wake);
    }

    pub(crate) fn is_set(&self) -> bool {
        self.state.lock().set
    }

    /// Blocks until it is set or `deadline` passes (`None`: no deadline).
    pub(crate) fn wait_until(&self, deadline: Option<Instant>) {
        let mut state = self.state.lock();
        while !state.set {
            match deadline {
                Some(d) => {
                    if self.cond.wait_until(&mut state, d).timed_out() {
                        return;
                    }
                }
                None => self.cond.wait(&mut state),
            }
        }
    }

    /// A future that resolves once it is set (the caller bounds the wait).
    pub(crate) fn wait(&self) -> Wait<'_> {
        Wait { latch: self }
    }
}

/// The future of [`Latch::wait`].
pub(crate) struct Wait<'a> {
    latch: &'a Latch,
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.latch.state.lock();
        if state.set {
            return Poll::Ready(());
        }
        if !state.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            state.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// The listener's [`Dial`], setting `latch` when the first attempt failed: a failed dial,
/// or any dial after the first (the attempt before it ended without the connection up,
/// or the connection was up and the latch set already).
pub(crate) struct FirstAttempt {
    pub(crate) inner: Box<dyn Dial>,
    pub(crate) latch: Arc<Latch>,
    pub(crate) dialled: bool,
}

impl Dial for FirstAttempt {
    fn dial(&mut self) -> Result<Box<dyn Link>, redis_conn::Error> {
        if std::mem::replace(&mut self.dialled, true) {
            self.latch.set();
        }
        let link = self.inner.dial();
        if link.is_err() {
            self.latch.set();
        }
        link
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_wait_ends_when_set_or_at_its_deadline() {
        let latch = Arc::new(Latch::default());
        let started = Instant::now();
        latch.wait_until(Some(started + Duration::from_millis(30)));
        assert!(started.elapsed() >= Duration::from_millis(30));
        assert!(!latch.is_set());
        let setter = Arc::clone(&latch);
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            setter.set();
        });
        latch.wait_until(None);
        assert!(latch.is_set());
        t.join().unwrap();
    }
}
