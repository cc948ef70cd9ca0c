//! How a time is sent. A length of time (an expiry, a timeout, a lease, an idle time) is a
//! [`Duration`]; a moment (EXPIREAT, EXAT, PXAT …) is a [`SystemTime`]. Each is written in
//! the unit its command takes, rounded up, so a key never expires and a wait never ends
//! earlier than asked.

use crate::{Cmd, ToArgs};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Whole seconds, rounded up.
pub(crate) fn secs(d: Duration) -> u64 {
    d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0))
}

/// Whole milliseconds, rounded up.
pub(crate) fn millis(d: Duration) -> u64 {
    let whole = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    whole.saturating_add(u64::from(d.subsec_nanos() % 1_000_000 > 0))
}

/// Whole milliseconds, rounded up and at least 1: an expiry Redis refuses when 0 (SET PX,
/// PSETEX, GETEX PX).
pub(crate) fn expiry_millis(d: Duration) -> u64 {
    millis(d).max(1)
}

/// Whole seconds, rounded up and at least 1: an expiry Redis refuses when 0 (SET EX,
/// SETEX, GETEX EX).
pub(crate) fn expiry_secs(d: Duration) -> u64 {
    secs(d).max(1)
}

/// The time since the Unix epoch (zero for a moment before it).
fn since_epoch(t: SystemTime) -> Duration {
    t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO)
}

/// A moment as Unix seconds, rounded up.
pub(crate) fn unix_secs(t: SystemTime) -> u64 {
    secs(since_epoch(t))
}

/// A moment as Unix milliseconds, rounded up.
pub(crate) fn unix_millis(t: SystemTime) -> u64 {
    millis(since_epoch(t))
}

/// A blocking command's timeout in seconds, as BLPOP, BRPOP, BZPOPMIN … take it: whole
/// seconds when it is a whole number of them, else seconds with a fraction (`1.5`),
/// rounded up to the millisecond; [`Duration::ZERO`] is `0`, which waits forever.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TimeoutSecs(pub(crate) Duration);

impl ToArgs for TimeoutSecs {
    fn write_args(&self, cmd: &mut Cmd) {
        let ms = millis(self.0);
        if ms % 1000 == 0 {
            cmd.arg(ms / 1000);
        } else {
            let text = format!("{}.{:03}", ms / 1000, ms % 1000);
            cmd.push_arg(text.trim_end_matches('0').as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(a: impl ToArgs) -> String {
        let cmd = Cmd::from_args(a);
        let first = cmd.args().next().unwrap_or_default().to_vec();
        String::from_utf8(first).unwrap_or_default()
    }

    #[test]
    fn lengths_round_up() {
        assert_eq!(secs(Duration::from_millis(1001)), 2);
        assert_eq!(secs(Duration::from_secs(60)), 60);
        assert_eq!(secs(Duration::ZERO), 0);
        assert_eq!(expiry_secs(Duration::ZERO), 1);
        assert_eq!(millis(Duration::from_micros(1_900)), 2);
        assert_eq!(millis(Duration::ZERO), 0);
        assert_eq!(expiry_millis(Duration::from_nanos(1)), 1);
        assert_eq!(millis(Duration::MAX), u64::MAX);
    }

    #[test]
    fn moments_count_from_the_epoch() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_500);
        assert_eq!(unix_secs(t), 1_700_000_001);
        assert_eq!(unix_millis(t), 1_700_000_000_500);
        assert_eq!(unix_secs(UNIX_EPOCH - Duration::from_secs(5)), 0);
    }

    #[test]
    fn blocking_timeouts_are_seconds_with_milliseconds() {
        assert_eq!(arg(TimeoutSecs(Duration::from_secs(2))), "2");
        assert_eq!(arg(TimeoutSecs(Duration::from_millis(1500))), "1.5");
        assert_eq!(arg(TimeoutSecs(Duration::from_micros(1))), "0.001");
        assert_eq!(arg(TimeoutSecs(Duration::ZERO)), "0");
    }
}
