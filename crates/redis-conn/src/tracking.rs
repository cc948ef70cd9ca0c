//! Server-assisted client-side caching's part of the handshake: `CLIENT TRACKING ON
//! REDIRECT <id> …`, sent by every connection opened or restored with a [`Tracking`].

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
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
///
/// Each connection that turns tracking on holds a [`TrackingRegistration`] until it
/// closes or leaves tracking; [`Tracking::on_end`] is told when one ends.
#[derive(Clone)]
pub struct Tracking {
    shared: Arc<Shared>,
    mode: TrackingMode,
    noloop: bool,
}

/// What every copy of a [`Tracking`] shares.
struct Shared {
    redirect: AtomicI64,
    /// The serial the next registration gets.
    next_serial: AtomicU64,
    on_end: Mutex<Option<EndHook>>,
}

type EndHook = Arc<dyn Fn(u64) + Send + Sync>;

/// One connection's `CLIENT TRACKING` registration, from the handshake step that turned
/// tracking on until the connection closes, is reset, or has its tracking changed by a
/// command of its user.
///
/// The server remembers which keys a connection read under the connection itself: once
/// that connection is gone or stops tracking, a change to those keys is reported to
/// nobody. So whatever was learnt through a connection can be trusted only while its
/// registration has not ended.
pub struct TrackingRegistration {
    serial: u64,
    redirect: i64,
    ended: AtomicBool,
    tracking: Arc<Shared>,
}

impl TrackingRegistration {
    /// A number no other registration of the same [`Tracking`] has.
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// The client id this connection's invalidations are redirected to.
    pub fn redirect(&self) -> i64 {
        self.redirect
    }

    /// Whether the registration has ended (the connection closed, was reset, or its
    /// tracking was changed).
    pub fn is_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// Ends the registration and runs the [`Tracking::on_end`] hook, once.
    pub(crate) fn end(&self) {
        if self.ended.swap(true, Ordering::AcqRel) {
            return;
        }
        let hook = self.tracking.on_end.lock().clone();
        if let Some(hook) = hook {
            hook(self.serial);
        }
    }
}

impl fmt::Debug for TrackingRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrackingRegistration")
            .field("serial", &self.serial)
            .field("redirect", &self.redirect)
            .field("ended", &self.is_ended())
            .finish()
    }
}

/// No redirect target: tracking is left off.
const NONE: i64 = 0;

impl Tracking {
    /// Tracking in `mode`, with no redirect target yet; writes from the tracked
    /// connection itself invalidate too (no `NOLOOP`).
    pub fn new(mode: TrackingMode) -> Tracking {
        Tracking {
            shared: Arc::new(Shared {
                redirect: AtomicI64::new(NONE),
                next_serial: AtomicU64::new(1),
                on_end: Mutex::new(None),
            }),
            mode,
            noloop: false,
        }
    }

    /// Runs `hook` with a registration's serial whenever one ends: its connection closed,
    /// was reset, or had its tracking changed. It runs on the thread that ended it, and
    /// replaces any hook set before.
    pub fn on_end(&self, hook: impl Fn(u64) + Send + Sync + 'static) {
        *self.shared.on_end.lock() = Some(Arc::new(hook));
    }

    /// The mode.
    pub fn mode(&self) -> &TrackingMode {
        &self.mode
    }

    /// The client id invalidations go to, if any.
    pub fn redirect(&self) -> Option<i64> {
        match self.shared.redirect.load(Ordering::Acquire) {
            NONE => None,
            id => Some(id),
        }
    }

    /// Sets (or, with `None`, clears) the client id invalidations go to, for every
    /// connection opened or restored from now on. Client ids start at 1.
    pub fn set_redirect(&self, id: Option<i64>) {
        self.shared
            .redirect
            .store(id.unwrap_or(NONE), Ordering::Release);
    }

    /// Clears the client id invalidations go to if it is still `id`; says whether it was.
    pub fn clear_redirect_if(&self, id: i64) -> bool {
        self.shared
            .redirect
            .compare_exchange(id, NONE, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Whether `registration` was made by this tracking setting (or a clone of it), not by
    /// another client's.
    pub fn owns(&self, registration: &TrackingRegistration) -> bool {
        Arc::ptr_eq(&self.shared, &registration.tracking)
    }

    /// Writes the `CLIENT TRACKING ON REDIRECT …` command into `out` and returns the
    /// registration it makes; writes nothing and returns `None` without a redirect target.
    pub(crate) fn encode(&self, out: &mut BytesMut) -> Option<Arc<TrackingRegistration>> {
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
        Some(Arc::new(TrackingRegistration {
            serial: self.shared.next_serial.fetch_add(1, Ordering::Relaxed),
            redirect: id,
            ended: AtomicBool::new(false),
            tracking: self.shared.clone(),
        }))
    }
}

/// Two settings are equal when they share the redirect cell and the mode.
impl PartialEq for Tracking {
    fn eq(&self, other: &Tracking) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
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
        assert!(t.encode(&mut out).is_none());
        assert!(out.is_empty());
        t.clone().set_redirect(Some(42));
        let reg = t.encode(&mut out).expect("a registration");
        assert_eq!(reg.redirect(), 42);
        let mut want = BytesMut::new();
        resp_proto::encode_command(
            &mut want,
            &[
                "CLIENT", "TRACKING", "ON", "REDIRECT", "42", "BCAST", "PREFIX", "user:",
            ],
        );
        assert_eq!(out, want);
    }

    #[test]
    fn a_registration_ends_once_and_tells_the_hook() {
        let t = Tracking::new(TrackingMode::Default);
        t.set_redirect(Some(3));
        let ended = Arc::new(Mutex::new(Vec::new()));
        let seen = ended.clone();
        t.on_end(move |serial| seen.lock().push(serial));
        let mut out = BytesMut::new();
        let a = t.encode(&mut out).unwrap();
        let b = t.encode(&mut out).unwrap();
        assert_ne!(a.serial(), b.serial());
        assert!(!a.is_ended());
        a.end();
        a.end();
        assert!(a.is_ended() && !b.is_ended());
        assert_eq!(*ended.lock(), vec![a.serial()]);
        assert!(t.owns(&a) && t.clone().owns(&b));
        assert!(!Tracking::new(TrackingMode::Default).owns(&a));
    }
}
