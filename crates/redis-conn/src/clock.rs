//! The time the blocking drivers read, and how they wait between attempts.
//!
//! The system's (`Instant::now`, `std::thread::sleep`), unless the `sim` feature is on and
//! a thread has installed a clock of its own with [`install`]: the project's deterministic
//! simulation runs the blocking client on simulated time that way. Without the feature
//! these are the system's calls and nothing else.

use std::time::{Duration, Instant};

/// A clock installed for the blocking drivers of one thread (feature `sim`): simulated
/// time, and a sleep that lets the simulation run meanwhile.
#[cfg(feature = "sim")]
pub trait Clock {
    /// The time now.
    fn now(&self) -> Instant;
    /// Waits `d`.
    fn sleep(&self, d: Duration);
}

#[cfg(feature = "sim")]
thread_local! {
    static CLOCK: std::cell::RefCell<Option<std::rc::Rc<dyn Clock>>> = const { std::cell::RefCell::new(None) };
}

/// Makes `clock` the one this thread's blocking drivers read, until the returned guard is
/// dropped (feature `sim`).
#[cfg(feature = "sim")]
pub fn install(clock: std::rc::Rc<dyn Clock>) -> Installed {
    CLOCK.with(|c| *c.borrow_mut() = Some(clock));
    Installed(())
}

/// Keeps a clock installed on this thread while it lives (see [`install`]).
#[cfg(feature = "sim")]
#[derive(Debug)]
#[must_use = "the clock is uninstalled when the guard drops"]
pub struct Installed(());

#[cfg(feature = "sim")]
impl Drop for Installed {
    fn drop(&mut self) {
        let _ = CLOCK.try_with(|c| c.borrow_mut().take());
    }
}

#[cfg(feature = "sim")]
fn installed() -> Option<std::rc::Rc<dyn Clock>> {
    CLOCK.try_with(|c| c.borrow().clone()).ok().flatten()
}

/// The time now, as the blocking drivers read it.
#[inline]
pub fn now() -> Instant {
    #[cfg(feature = "sim")]
    if let Some(c) = installed() {
        return c.now();
    }
    Instant::now()
}

/// Waits `d` (a retry's backoff), as the blocking drivers wait.
pub fn sleep(d: Duration) {
    #[cfg(feature = "sim")]
    if let Some(c) = installed() {
        return c.sleep(d);
    }
    std::thread::sleep(d);
}

/// How long ago `t` was.
#[inline]
pub fn since(t: Instant) -> Duration {
    now().saturating_duration_since(t)
}
