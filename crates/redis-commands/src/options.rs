//! Typed options for commands that take many optional arguments.

use crate::{Cmd, ToArgs};
use std::time::Duration;

/// Expiry and condition options of `SET`.
///
/// ```
/// use redis_commands::SetOptions;
/// use std::time::Duration;
/// let opts = SetOptions::default().nx().expire(Duration::from_secs(10));
/// # let _ = opts;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetOptions {
    condition: Option<&'static str>,
    expiry: Option<Expiry>,
    get: bool,
}

/// When a key expires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// After this long (sent as `PX` milliseconds).
    In(Duration),
    /// At this Unix time in milliseconds (`PXAT`).
    AtUnixMillis(u64),
    /// Keep the key's current time to live (`KEEPTTL`).
    KeepTtl,
}

impl SetOptions {
    /// Only set if the key does not exist (`NX`).
    pub fn nx(mut self) -> Self {
        self.condition = Some("NX");
        self
    }

    /// Only set if the key already exists (`XX`).
    pub fn xx(mut self) -> Self {
        self.condition = Some("XX");
        self
    }

    /// Expire after `ttl`.
    pub fn expire(mut self, ttl: Duration) -> Self {
        self.expiry = Some(Expiry::In(ttl));
        self
    }

    /// Set the expiry precisely.
    pub fn expiry(mut self, expiry: Expiry) -> Self {
        self.expiry = Some(expiry);
        self
    }

    /// Also return the old value (`GET`); the reply is then the old value, not `OK`.
    pub fn get(mut self) -> Self {
        self.get = true;
        self
    }
}

impl ToArgs for SetOptions {
    fn write_args(&self, cmd: &mut Cmd) {
        match self.expiry {
            Some(Expiry::In(d)) => {
                cmd.arg("PX")
                    .arg(u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1));
            }
            Some(Expiry::AtUnixMillis(ms)) => {
                cmd.arg("PXAT").arg(ms);
            }
            Some(Expiry::KeepTtl) => {
                cmd.arg("KEEPTTL");
            }
            None => {}
        }
        if let Some(c) = self.condition {
            cmd.arg(c);
        }
        if self.get {
            cmd.arg("GET");
        }
    }
}
