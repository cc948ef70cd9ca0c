//! A lock held in Redis (redis-py 2.7.6's `Lock`), safe where that one was not.
//!
//! # How it works
//! Acquiring sets the lock's key to a random token with `SET key token NX PX lease`:
//! it succeeds only if nobody holds the lock, and the key expires by itself if the holder
//! dies. Releasing and extending run a Lua script that first checks the token, so a
//! holder whose lease ran out can never release or extend the lock of whoever took it
//! next ([`LockError::NotHeld`] instead).
//!
//! # What it does not guarantee
//! - It relies on one Redis node. With replication, a failover can lose a freshly set
//!   lock; this is not Redlock.
//! - Leases are measured by the server's clock while your code runs on yours: a process
//!   paused longer than the lease (GC, swap, a stopped VM) can still believe it holds a
//!   lock that expired. Keep critical sections well inside the lease, or
//!   [`LockGuard::extend`] it, and check the result.

use crate::script::Script;
use crate::{Error, Redis, Result};
use bytes::Bytes;
use redis_commands::{SetOptions, StringCommands};
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};
use thiserror::Error;

/// Why a lock operation failed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum LockError {
    /// The lock is no longer held with this guard's token: its lease ran out, and it may
    /// belong to someone else now.
    #[error("lock {name:?} is not held by this holder")]
    NotHeld {
        /// The lock's key.
        name: String,
    },
    /// The sleep between attempts is longer than the lease, which redis-py 2.7.6 refuses
    /// too (`'sleep' must be less than 'timeout'`): a holder would sleep past its lease.
    /// Raised before anything is sent.
    #[error("lock {name:?}: sleep {sleep:?} must not be longer than the lease {lease:?}")]
    SleepLongerThanLease {
        /// The lock's key.
        name: String,
        /// The sleep asked for.
        sleep: Duration,
        /// The lease asked for.
        lease: Duration,
    },
    /// A blocking acquire gave up after its timeout.
    #[error("lock {name:?} not acquired within {waited:?}")]
    Timeout {
        /// The lock's key.
        name: String,
        /// How long it waited.
        waited: Duration,
    },
}

const RELEASE: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then \
                       return redis.call('del', KEYS[1]) else return 0 end";
const EXTEND: &str = "if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end \
                      local ttl = redis.call('pttl', KEYS[1]) \
                      if ttl < 0 then ttl = 0 end \
                      return redis.call('pexpire', KEYS[1], ttl + tonumber(ARGV[2]))";

pub(crate) fn scripts() -> &'static (Script, Script) {
    static SCRIPTS: OnceLock<(Script, Script)> = OnceLock::new();
    SCRIPTS.get_or_init(|| (Script::new(RELEASE), Script::new(EXTEND)))
}

/// Settings of a lock, from [`Redis::lock`].
#[derive(Clone, Debug)]
#[must_use = "a lock builder does nothing until `acquire` or `try_acquire`"]
pub struct LockBuilder {
    client: Redis,
    spec: LockSpec,
}

/// A lock's settings, shared by the blocking and the async builder: one place for the
/// defaults, the check before sending, and the wait between attempts.
#[derive(Clone, Debug)]
pub(crate) struct LockSpec {
    pub(crate) name: Bytes,
    pub(crate) lease: Duration,
    pub(crate) sleep: Duration,
    pub(crate) timeout: Option<Duration>,
}

impl LockSpec {
    /// A 10 s lease, retried every 100 ms, waiting forever.
    pub(crate) fn new(name: Bytes) -> Self {
        LockSpec {
            name,
            lease: Duration::from_secs(10),
            sleep: Duration::from_millis(100),
            timeout: None,
        }
    }

    /// Refuses a sleep between attempts longer than the lease, before anything is sent, as
    /// redis-py 2.7.6 does.
    pub(crate) fn check(&self) -> Result<()> {
        if self.sleep > self.lease {
            return Err(Error::Lock(LockError::SleepLongerThanLease {
                name: String::from_utf8_lossy(&self.name).into_owned(),
                sleep: self.sleep,
                lease: self.lease,
            }));
        }
        Ok(())
    }

    /// How long to wait before the next attempt of an acquire that started at `start`, or
    /// the timeout error once its time is up.
    pub(crate) fn wait_before_retry(&self, start: Instant) -> Result<Duration> {
        let Some(limit) = self.timeout else {
            return Ok(self.sleep);
        };
        let waited = start.elapsed();
        if waited >= limit {
            let name = String::from_utf8_lossy(&self.name).into_owned();
            return Err(Error::Lock(LockError::Timeout { name, waited }));
        }
        Ok(self.sleep.min(limit - waited))
    }
}

impl Redis {
    /// A lock on the key `name`: set its lease, then [`acquire`](LockBuilder::acquire) or
    /// [`try_acquire`](LockBuilder::try_acquire).
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// let r = redis_client::Redis::open("redis://localhost")?;
    /// let guard = r.lock("jobs:nightly").lease(Duration::from_secs(30)).acquire()?;
    /// // … work while holding it …
    /// guard.release()?;
    /// # Ok::<(), redis_client::Error>(())
    /// ```
    pub fn lock(&self, name: impl Into<Bytes>) -> LockBuilder {
        LockBuilder {
            client: self.clone(),
            spec: LockSpec::new(name.into()),
        }
    }
}

impl LockBuilder {
    /// How long the lock lasts unless released or extended (redis-py 2.7.6's `timeout`).
    /// Default 10 s. A lease is always set, so a crashed holder cannot block others
    /// forever. Sent as `PX` with the milliseconds rounded up, at least 1 (1.9 ms is sent
    /// as `PX 2`).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.spec.lease = lease;
        self
    }

    /// How long a blocking acquire waits between attempts (redis-py 2.7.6's `sleep`).
    /// Default 100 ms. It must not exceed the lease: acquiring then fails with
    /// [`LockError::SleepLongerThanLease`], as redis-py 2.7.6 refuses it.
    pub fn sleep(mut self, sleep: Duration) -> Self {
        self.spec.sleep = sleep;
        self
    }

    /// How long a blocking acquire tries before [`LockError::Timeout`]; `None` (the
    /// default) tries until it succeeds.
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.spec.timeout = timeout;
        self
    }

    /// One attempt: the guard if the lock was free, `None` if someone holds it.
    ///
    /// # Errors
    /// [`Error::Lock`] with [`LockError::SleepLongerThanLease`] before sending anything;
    /// connection and server errors.
    pub fn try_acquire(&self) -> Result<Option<LockGuard>> {
        self.spec.check()?;
        let token = new_token();
        let opts = SetOptions::default().nx().px(self.spec.lease);
        // Measured before the request leaves, so the estimate never outlasts the
        // server's own expiry.
        let start = Instant::now();
        if self
            .client
            .set_options(&self.spec.name[..], &token[..], opts)?
        {
            Ok(Some(LockGuard {
                client: self.client.clone(),
                name: self.spec.name.clone(),
                token,
                released: false,
                until: Mutex::new(start + self.spec.lease),
            }))
        } else {
            Ok(None)
        }
    }

    /// Tries until the lock is free, sleeping between attempts, up to the timeout.
    ///
    /// # Errors
    /// [`Error::Lock`] with [`LockError::Timeout`] when the timeout passes, or with
    /// [`LockError::SleepLongerThanLease`] before sending anything; connection and server
    /// errors.
    pub fn acquire(&self) -> Result<LockGuard> {
        self.spec.check()?;
        let start = Instant::now();
        loop {
            if let Some(guard) = self.try_acquire()? {
                return Ok(guard);
            }
            std::thread::sleep(self.spec.wait_before_retry(start)?);
        }
    }
}

/// A held lock; released when dropped (also during a panic), or explicitly with
/// [`LockGuard::release`], which reports whether it was still held.
///
/// Since dropping releases, a guard left unused is a mistake the compiler points out:
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// fn f(r: &redis_client::Redis) -> redis_client::Result<()> {
///     r.lock("jobs").acquire()?; // warning: the lock is released as soon as …
///     Ok(())
/// }
/// ```
///
/// ```no_run
/// fn f(r: &redis_client::Redis) -> redis_client::Result<()> {
///     let _guard = r.lock("jobs").acquire()?; // held until the end of the scope
///     Ok(())
/// }
/// ```
#[derive(Debug)]
#[must_use = "the lock is released as soon as the guard is dropped: bind it, e.g. `let _guard = …`"]
pub struct LockGuard {
    client: Redis,
    name: Bytes,
    token: Bytes,
    released: bool,
    /// When the lease ends, as estimated here (see [`LockGuard::acquired_until`]).
    until: Mutex<Instant>,
}

impl LockGuard {
    /// When the lease ends, by this process's clock: the lease counted from just before
    /// the acquiring request was sent, moved by each successful
    /// [`extend`](LockGuard::extend). The server's own expiry is no earlier, unless the
    /// clocks drift; past this instant, assume the lock is lost.
    pub fn acquired_until(&self) -> Instant {
        *self.until.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Releases the lock.
    ///
    /// # Errors
    /// [`Error::Lock`] with [`LockError::NotHeld`] if the lease ran out (the lock may be
    /// someone else's now, and is left alone); connection and server errors.
    pub fn release(mut self) -> Result<()> {
        self.released = true;
        self.release_inner()
    }

    fn release_inner(&self) -> Result<()> {
        let deleted: i64 = scripts()
            .0
            .key(&self.name[..])
            .arg(&self.token[..])
            .invoke_on(&self.client)?;
        if deleted == 1 {
            Ok(())
        } else {
            Err(self.not_held())
        }
    }

    /// Adds `additional` to the lease's remaining time.
    ///
    /// # Errors
    /// [`Error::Lock`] with [`LockError::NotHeld`] if the lease already ran out.
    pub fn extend(&self, additional: Duration) -> Result<()> {
        let ms = u64::try_from(additional.as_millis()).unwrap_or(u64::MAX);
        let added = Duration::from_millis(ms);
        let ok: i64 = scripts()
            .1
            .key(&self.name[..])
            .arg(&self.token[..])
            .arg(ms)
            .invoke_on(&self.client)?;
        if ok == 1 {
            let mut until = self.until.lock().unwrap_or_else(|e| e.into_inner());
            // The server added `added` to what was left, so the end moves by as much.
            *until += added;
            Ok(())
        } else {
            Err(self.not_held())
        }
    }

    /// True while the lock's key still holds this guard's token.
    ///
    /// # Errors
    /// Connection and server errors.
    pub fn is_held(&self) -> Result<bool> {
        Ok(self.client.get(&self.name[..])?.as_deref() == Some(&self.token[..]))
    }

    /// The lock's key.
    pub fn name(&self) -> &Bytes {
        &self.name
    }

    fn not_held(&self) -> Error {
        Error::Lock(LockError::NotHeld {
            name: String::from_utf8_lossy(&self.name).into_owned(),
        })
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if !self.released {
            // Nobody can act on a failure here; the lease expires the lock regardless.
            let _ = self.release_inner();
        }
    }
}

/// 128 random bits in hex. std's `RandomState` is seeded from the operating system's
/// randomness once per process; a counter and the clock make each token distinct.
pub(crate) fn new_token() -> Bytes {
    static SEED: OnceLock<RandomState> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = SEED.get_or_init(RandomState::new);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut words = [0u64; 2];
    for (i, w) in words.iter_mut().enumerate() {
        let mut h = seed.build_hasher();
        h.write_u64(n);
        h.write_u128(nanos);
        h.write_usize(i);
        *w = h.finish();
    }
    Bytes::from(format!("{:016x}{:016x}", words[0], words[1]))
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_distinct() {
        let tokens: std::collections::HashSet<_> =
            (0..10_000).map(|_| super::new_token()).collect();
        assert_eq!(tokens.len(), 10_000);
        assert!(tokens.iter().all(|t| t.len() == 32));
    }
}
