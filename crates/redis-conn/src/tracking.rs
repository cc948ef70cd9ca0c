//! Server-assisted client-side caching's part of the handshake: `CLIENT TRACKING ON
//! REDIRECT <id> …`, sent by every connection opened or restored with a [`Tracking`].

use bytes::{Bytes, BytesMut};
use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Which keys the server reports changes of (`CLIENT TRACKING` modes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrackingMode {
    /// The server remembers the keys each connection read and reports a change once per
    /// read (`CLIENT TRACKING ON`).
    #[default]
    Default,
    /// As `Default`, but only the reads preceded by `CLIENT CACHING YES` are remembered
    /// (`OPTIN`): the server tracks only what the client caches.
    OptIn,
    /// The server reports every change of a key starting with one of the prefixes (all
    /// keys when there is none), read or not (`BCAST PREFIX …`): no per-read memory on the
    /// server, more messages.
    Broadcast(Vec<Bytes>),
}

/// The `CLIENT TRACKING` step a connection's handshake ends with, redirecting invalidation
/// messages to the connection whose id is in a cell shared by every connection of a
/// client, so a connection opened or restored after the invalidation connection was
/// replaced redirects to the new one.
///
/// While the cell holds no id (the invalidation connection is down), connections are
/// opened without tracking.
#[derive(Clone)]
pub struct Tracking {
    redirect: Arc<AtomicI64>,
    mode: TrackingMode,
    noloop: bool,
}

/// No redirect target: tracking is left off.
const NONE: i64 = 0;

impl Tracking {
    /// Tracking in `mode`, with no redirect target yet; writes from the tracked
    /// connection itself invalidate too (no `NOLOOP`).
    pub fn new(mode: TrackingMode) -> Tracking {
        Tracking {
            redirect: Arc::new(AtomicI64::new(NONE)),
            mode,
            noloop: false,
        }
    }

    /// The mode.
    pub fn mode(&self) -> &TrackingMode {
        &self.mode
    }

    /// The client id invalidations go to, if any.
    pub fn redirect(&self) -> Option<i64> {
        match self.redirect.load(Ordering::Acquire) {
            NONE => None,
            id => Some(id),
        }
    }

    /// Sets (or, with `None`, clears) the client id invalidations go to, for every
    /// connection opened or restored from now on. Client ids start at 1.
    pub fn set_redirect(&self, id: Option<i64>) {
        self.redirect.store(id.unwrap_or(NONE), Ordering::Release);
    }

    /// Writes the `CLIENT TRACKING ON REDIRECT …` command into `out` and returns the id
    /// it redirects to; writes nothing and returns `None` without a redirect target.
    pub(crate) fn encode(&self, out: &mut BytesMut) -> Option<i64> {
        let id = self.redirect()?;
        let id_text = id.to_string();
        let mut args: Vec<&[u8]> = vec![
            b"CLIENT".as_slice(),
            b"TRACKING",
            b"ON",
            b"REDIRECT",
            id_text.as_bytes(),
        ];
        match &self.mode {
            TrackingMode::Default => {}
            TrackingMode::OptIn => args.push(b"OPTIN"),
            TrackingMode::Broadcast(prefixes) => {
                args.push(b"BCAST");
                for p in prefixes {
                    args.push(b"PREFIX");
                    args.push(p.as_ref());
                }
            }
        }
        if self.noloop {
            args.push(b"NOLOOP");
        }
        resp_proto::encode_command(out, &args);
        Some(id)
    }
}

/// Two settings are equal when they share the redirect cell and the mode.
impl PartialEq for Tracking {
    fn eq(&self, other: &Tracking) -> bool {
        Arc::ptr_eq(&self.redirect, &other.redirect)
            && self.mode == other.mode
            && self.noloop == other.noloop
    }
}

impl fmt::Debug for Tracking {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracking")
            .field("redirect", &self.redirect())
            .field("mode", &self.mode)
            .field("noloop", &self.noloop)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_mode_and_current_redirect() {
        let t = Tracking::new(TrackingMode::Broadcast(vec![Bytes::from("user:")]));
        let mut out = BytesMut::new();
        assert_eq!(t.encode(&mut out), None);
        assert!(out.is_empty());
        t.clone().set_redirect(Some(42));
        assert_eq!(t.encode(&mut out), Some(42));
        let mut want = BytesMut::new();
        resp_proto::encode_command(
            &mut want,
            &[
                "CLIENT", "TRACKING", "ON", "REDIRECT", "42", "BCAST", "PREFIX", "user:",
            ],
        );
        assert_eq!(out, want);
    }
}
