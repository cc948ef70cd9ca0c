//! An async distributed lock on one Redis key, as the blocking [`LockBuilder`](crate::LockBuilder):
//! a random token per holder, `SET NX PX` to take it, Lua checking the token to release or
//! extend it.

use super::Redis;
use crate::lock::{new_token, scripts, LockSpec};
use crate::{Error, LockError, Result};
use bytes::Bytes;
use redis_commands::{SetOptions, StringCommands};
use std::time::Duration;

/// How to take a lock: made by [`Redis::lock`], taken with [`acquire`](LockBuilder::acquire).
///
/// ```no_run
/// # async fn demo(r: redis_client::aio::Redis) -> redis_client::Result<()> {
/// use std::time::Duration;
/// let guard = r.lock("resource").lease(Duration::from_secs(5)).acquire().await?;
/// // … only one holder at a time runs here …
/// guard.release().await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
#[must_use = "a lock builder does nothing until `acquire` or `try_acquire`"]
pub struct LockBuilder {
    client: Redis,
    spec: LockSpec,
}

impl Redis {
    /// A lock on the key `name`: a 10 s lease, retried every 100 ms, waiting forever by
    /// default.
    pub fn lock(&self, name: impl Into<Bytes>) -> LockBuilder {
        LockBuilder {
            client: self.clone(),
            spec: LockSpec::new(name.into()),
        }
    }
}

impl LockBuilder {
    /// How long the lock is held unless released or extended first.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.spec.lease = lease;
        self
    }

    /// How long to wait between attempts while another holder has it.
    pub fn sleep(mut self, sleep: Duration) -> Self {
        self.spec.sleep = sleep;
        self
    }

    /// Longest wait for the lock (`None`: forever).
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.spec.timeout = timeout;
        self
    }

    /// One attempt: the guard if the lock was free, `None` if another holder has it.
    ///
    /// Cancellation: not cancel-safe: dropped after the server took the lock, the lock is
    /// held by nobody until its lease ends.
    ///
    /// # Errors
    /// [`Error::Lock`] with [`LockError::SleepLongerThanLease`] before sending anything;
    /// connection and server errors.
    pub async fn try_acquire(&self) -> Result<Option<LockGuard>> {
        self.spec.check()?;
        let token = new_token();
        // PX rounds a fraction of a millisecond up, so the lease is never shorter than asked.
        let opts = SetOptions::default().nx().px(self.spec.lease);
        if self
            .client
            .set_options(&self.spec.name[..], &token[..], opts)
            .await?
        {
            Ok(Some(LockGuard {
                client: self.client.clone(),
                name: self.spec.name.clone(),
                token,
                released: false,
            }))
        } else {
            Ok(None)
        }
    }

    /// Waits for the lock, trying every `sleep`, up to `timeout`.
    ///
    /// Cancellation: as [`try_acquire`](LockBuilder::try_acquire).
    ///
    /// # Errors
    /// [`Error::Lock`] with [`LockError::Timeout`] when not acquired in time; connection and
    /// server errors.
    pub async fn acquire(&self) -> Result<LockGuard> {
        let start = redis_conn::aio::now();
        loop {
            if let Some(guard) = self.try_acquire().await? {
                return Ok(guard);
            }
            tokio::time::sleep(self.spec.wait_before_retry(start)?).await;
        }
    }
}

/// A held lock. Release it with [`release`](LockGuard::release); dropping it unreleased
/// releases it on a spawned task (when inside a tokio runtime), else the lease ends it.
#[derive(Debug)]
#[must_use = "dropping the guard releases the lock at once"]
pub struct LockGuard {
    client: Redis,
    name: Bytes,
    token: Bytes,
    released: bool,
}

impl LockGuard {
    /// Releases the lock if this holder still has it.
    ///
    /// Cancellation: cancel-safe: if dropped, the lease still ends the lock.
    ///
    /// # Errors
    /// [`Error::Lock`] with [`LockError::NotHeld`] when the lease ran out and the lock is
    /// gone or someone else's; connection errors.
    pub async fn release(mut self) -> Result<()> {
        self.released = true;
        release(&self.client, &self.name, &self.token).await
    }

    /// Adds `additional` to the time left on the lease.
    ///
    /// Cancellation: cancel-safe.
    ///
    /// # Errors
    /// As [`release`](LockGuard::release).
    pub async fn extend(&self, additional: Duration) -> Result<()> {
        let ms = u64::try_from(additional.as_millis()).unwrap_or(u64::MAX);
        let call = scripts().1.key(&self.name[..]).arg(&self.token[..]).arg(ms);
        let ok: i64 = self.client.invoke_script(call).await?;
        if ok == 1 {
            Ok(())
        } else {
            Err(not_held(&self.name))
        }
    }

    /// Whether this holder still has the lock.
    ///
    /// Cancellation: cancel-safe.
    ///
    /// # Errors
    /// Connection errors.
    pub async fn is_held(&self) -> Result<bool> {
        Ok(self.client.get(&self.name[..]).await?.as_deref() == Some(&self.token[..]))
    }

    /// The lock's key.
    pub fn name(&self) -> &Bytes {
        &self.name
    }
}

async fn release(client: &Redis, name: &Bytes, token: &Bytes) -> Result<()> {
    let call = scripts().0.key(&name[..]).arg(&token[..]);
    let deleted: i64 = client.invoke_script(call).await?;
    if deleted == 1 {
        Ok(())
    } else {
        Err(not_held(name))
    }
}

fn not_held(name: &Bytes) -> Error {
    Error::Lock(LockError::NotHeld {
        name: String::from_utf8_lossy(name).into_owned(),
    })
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        // A drop cannot wait for I/O: a task releases it; without a runtime the lease
        // ends it.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (client, name, token) =
                (self.client.clone(), self.name.clone(), self.token.clone());
            runtime.spawn(async move {
                let _ = release(&client, &name, &token).await;
            });
        }
    }
}
