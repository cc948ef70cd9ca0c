//! The invalidation connection: one per cache, on a thread of its own, receiving what the
//! server reports about the keys the data connections read, and telling the cache.
//!
//! RESP2: it subscribes to `__redis__:invalidate` and reads pub/sub messages. RESP3: it
//! reads `invalidate` pushes (and subscribes too, so the answer to its `PING` comes among
//! them). Either way a message names the keys that changed, or is null for a flush.
//! Losing the connection clears the cache (invalidations may have been missed meanwhile)
//! and stops caching until it is back; a new connection has a new client id, so the data
//! connections still redirecting to the old one are closed.
//!
//! A connection can also go silent without closing (a stalled network path, a proxy that
//! stops forwarding): nothing would ever say so, and invalidations would be missed with
//! no end. So it is pinged every `CacheOptions::ping_interval`, and an answer that does
//! not come within `ping_timeout` counts as a lost connection. The server answers a
//! `PING` after every invalidation it sent before, on the same connection, so an answer
//! proves nothing was missed up to then.
//!
//! It is opened the way the client's pool opens its connections ([`Dial`]: through the
//! pool's connector, so after a Sentinel failover to the new primary), and learns its
//! server's `run_id`, which every data connection's server must share (see
//! `Shared::vouch`). It is given up, and opened anew, when its connector says the server
//! it reached is not the one to use any more, or when data connections keep reaching
//! another server.

use super::Shared;
use bytes::Bytes;
use redis_conn::{Connection, Readiness};
use resp_proto::Value;
use std::sync::Weak;
use std::time::{Duration, Instant};

/// How long a read waits before the thread checks whether the cache is still in use.
const POLL: Duration = Duration::from_millis(50);

/// How often the idle data connections are looked at (see `Shared::sweep`): the longest
/// a connection the server closed goes unnoticed while nobody uses it.
pub(crate) const SWEEP: Duration = Duration::from_millis(50);

/// First wait between attempts to connect, doubled after each failure up to `MAX_BACKOFF`.
const MIN_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// The channel RESP2 invalidations are published on.
const CHANNEL: &[u8] = b"__redis__:invalidate";

/// The health check's request.
const PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";

/// The shortest ping interval and timeout used, whatever the options say: a check every
/// few microseconds would only burn the thread.
const MIN_PING: Duration = Duration::from_millis(10);

/// How the invalidation connection is health-checked: a `PING` every `interval` after the
/// last answer, which must come within `timeout`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Health {
    pub(crate) interval: Duration,
    pub(crate) timeout: Duration,
}

impl Health {
    pub(crate) fn of(options: &crate::CacheOptions) -> Health {
        Health {
            interval: options.ping_interval.max(MIN_PING),
            timeout: options.ping_timeout.max(MIN_PING),
        }
    }
}

/// What an invalidation message says.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Message {
    /// These keys changed.
    Keys(Vec<Bytes>),
    /// Every key may have changed (FLUSHALL, FLUSHDB).
    Flush,
}

/// Opens the invalidation connection, where the client's pool would open a connection now.
pub(crate) trait Dial: Send + 'static {
    /// A new connection, its handshake done (without tracking).
    fn dial(&mut self) -> Result<Box<dyn Link>, redis_conn::Error>;
}

/// The invalidation connection, blocking or async (driven on the thread's own runtime).
pub(crate) trait Link {
    /// Sends a command and reads its reply; an error reply is an error.
    fn command(&mut self, args: &[&[u8]]) -> Result<Value, redis_conn::Error>;
    /// Sends encoded bytes owing no reply (SUBSCRIBE, and PING once subscribed).
    fn send_unanswered(&mut self, out: &[u8]) -> Result<(), redis_conn::Error>;
    /// The next push or pub/sub message, waiting at most `timeout`.
    fn read_push(&mut self, timeout: Option<Duration>) -> Result<Option<Value>, redis_conn::Error>;
    /// The configured read timeout: how long the subscription's confirmation may take.
    fn read_timeout(&self) -> Option<Duration>;
    /// Whether the connector that picked this connection's server says it is not the
    /// one to use any more (a Sentinel failover), or the server closed it.
    fn moved(&mut self) -> bool;
}

/// The blocking client's way: the pool's connector with the cache's settings.
pub(crate) struct BlockingDial {
    pub(crate) connector: super::Via,
}

impl Dial for BlockingDial {
    fn dial(&mut self) -> Result<Box<dyn Link>, redis_conn::Error> {
        Ok(Box::new(Connection::open_until(&self.connector, None)?))
    }
}

impl Link for Connection {
    fn command(&mut self, args: &[&[u8]]) -> Result<Value, redis_conn::Error> {
        Connection::command(self, args)
    }
    fn send_unanswered(&mut self, out: &[u8]) -> Result<(), redis_conn::Error> {
        self.send(&[out], 0)
    }
    fn read_push(&mut self, timeout: Option<Duration>) -> Result<Option<Value>, redis_conn::Error> {
        Connection::read_push(self, timeout)
    }
    fn read_timeout(&self) -> Option<Duration> {
        Connection::read_timeout(self)
    }
    fn moved(&mut self) -> bool {
        // A transport opened through a Sentinel reports itself closed once the sentinels'
        // epoch moved on.
        self.look() == Readiness::Closed
    }
}

/// Starts the thread; it ends once the cache is dropped.
pub(crate) fn spawn(cache: Weak<Shared>, dial: Box<dyn Dial>) {
    let spawned = std::thread::Builder::new()
        .name("redis-cache-invalidations".into())
        .spawn(move || run(&cache, dial));
    // Without the thread nothing is ever cached: reads go to the server, still correct.
    drop(spawned);
}

fn run(cache: &Weak<Shared>, mut dial: Box<dyn Dial>) {
    let mut backoff = MIN_BACKOFF;
    while cache.strong_count() > 0 {
        match dial.dial().and_then(|mut link| {
            let (id, run_id) = open(&mut *link)?;
            Ok((link, id, run_id))
        }) {
            Ok((link, id, run_id)) => {
                backoff = MIN_BACKOFF;
                let Some(shared) = cache.upgrade() else {
                    return;
                };
                let health = Health::of(&shared.options);
                shared.connected(id, run_id);
                drop(shared);
                listen(cache, link, health);
                if let Some(shared) = cache.upgrade() {
                    shared.lost();
                }
            }
            Err(_) => {
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Learns the client id and the server's `run_id` (`None` when the server does not
/// answer `INFO`), and subscribes: over RESP2 that is how invalidations come; over RESP3
/// they come as pushes anyway, and subscribed, the connection gets the answer to its
/// `PING` among them instead of as a reply owed.
fn open(conn: &mut dyn Link) -> Result<(i64, Option<String>), redis_conn::Error> {
    let id = match conn.command(&[b"CLIENT", b"ID"])? {
        Value::Integer(id) => id,
        other => {
            return Err(redis_conn::Error::OutOfStep(format!(
                "CLIENT ID answered with a {}",
                other.kind_name()
            )))
        }
    };
    let run_id = match conn.command(&[b"INFO", b"server"]) {
        Ok(v) => super::run_id(&v),
        Err(redis_conn::Error::Server(_)) => None,
        Err(e) => return Err(e),
    };
    let mut out = bytes::BytesMut::new();
    resp_proto::encode_command(&mut out, &[b"SUBSCRIBE".as_slice(), CHANNEL]);
    conn.send_unanswered(&out)?;
    // Caching starts only once the subscription is confirmed: before that, an
    // invalidation would be lost.
    let wait = conn.read_timeout().or(Some(MAX_BACKOFF));
    loop {
        match conn.read_push(wait)? {
            Some(Value::Array(items)) | Some(Value::Push(items))
                if items.first().is_some_and(|k| bulk_is(k, b"subscribe")) =>
            {
                break
            }
            Some(_) => {}
            None => return Err(redis_conn::Error::Timeout),
        }
    }
    Ok((id, run_id))
}

/// Reads messages until the connection fails, does not answer its `PING` in time, its
/// server is not the one to use any more, or the cache is dropped; sweeps the data
/// connections every [`SWEEP`] meanwhile.
fn listen(cache: &Weak<Shared>, mut conn: Box<dyn Link>, health: Health) {
    let mut swept = Instant::now();
    let mut next_ping = Instant::now() + health.interval;
    // When the answer to the `PING` in flight is due.
    let mut pong_due: Option<Instant> = None;
    loop {
        if swept.elapsed() >= SWEEP {
            let Some(shared) = cache.upgrade() else {
                return;
            };
            if shared.take_relisten() || conn.moved() {
                return;
            }
            shared.sweep();
            swept = Instant::now();
        }
        let now = Instant::now();
        match pong_due {
            // Silent: whatever was sent meanwhile may be lost.
            Some(due) if now >= due => return,
            None if now >= next_ping => {
                if conn.send_unanswered(PING).is_err() {
                    return;
                }
                pong_due = Some(now + health.timeout);
            }
            _ => {}
        }
        // Wake in time for the answer's deadline or the next ping.
        let wake = pong_due.unwrap_or(next_ping);
        let wait = wake
            .saturating_duration_since(now)
            .clamp(Duration::from_millis(1), POLL);
        match conn.read_push(Some(wait)) {
            Ok(Some(v)) if is_pong(&v) => {
                pong_due = None;
                next_ping = Instant::now() + health.interval;
            }
            Ok(Some(v)) => {
                let Some(shared) = cache.upgrade() else {
                    return;
                };
                match parse(&v) {
                    Some(Message::Keys(keys)) => shared.invalidate(&keys),
                    Some(Message::Flush) => shared.flush(),
                    None => {}
                }
            }
            Ok(None) => {
                if cache.strong_count() == 0 {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

/// Reads an invalidation message: a RESP3 push `invalidate <keys|null>` or a RESP2
/// pub/sub message on `__redis__:invalidate`; `None` for anything else.
pub(crate) fn parse(v: &Value) -> Option<Message> {
    let payload = match v {
        Value::Push(items) | Value::Array(items) => match items.as_slice() {
            [kind, payload] if bulk_is(kind, b"invalidate") => payload,
            [kind, channel, payload] if bulk_is(kind, b"message") && bulk_is(channel, CHANNEL) => {
                payload
            }
            _ => return None,
        },
        _ => return None,
    };
    match payload {
        Value::Nil => Some(Message::Flush),
        Value::Array(keys) | Value::Set(keys) => Some(Message::Keys(
            keys.iter()
                .filter_map(|k| match k {
                    Value::BulkString(b) | Value::SimpleString(b) => Some(b.clone()),
                    _ => None,
                })
                .collect(),
        )),
        _ => None,
    }
}

/// Whether a push says the tracking redirect target no longer exists, and which client
/// id that was (`Some(None)` when the push does not say).
pub(crate) fn redirect_broken(v: &Value) -> Option<Option<i64>> {
    match v {
        Value::Push(items)
            if items
                .first()
                .is_some_and(|k| bulk_is(k, b"tracking-redir-broken")) =>
        {
            Some(match items.get(1) {
                Some(Value::Integer(id)) => Some(*id),
                _ => None,
            })
        }
        _ => None,
    }
}

/// The answer to `PING` on a subscribed connection: `pong` and an empty message over
/// RESP2, `PONG` over RESP3.
fn is_pong(v: &Value) -> bool {
    match v {
        Value::SimpleString(s) => s.eq_ignore_ascii_case(b"PONG"),
        Value::Array(items) | Value::Push(items) => {
            items.len() == 2 && items.first().is_some_and(|k| bulk_is(k, b"pong"))
        }
        _ => false,
    }
}

fn bulk_is(v: &Value, want: &[u8]) -> bool {
    matches!(v, Value::BulkString(b) | Value::SimpleString(b) if b.eq_ignore_ascii_case(want))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn reads_resp3_pushes_and_resp2_messages() {
        let keys = Value::Array(vec![bulk("a"), bulk("b")]);
        let want = Some(Message::Keys(vec![Bytes::from("a"), Bytes::from("b")]));
        assert_eq!(
            parse(&Value::Push(vec![bulk("invalidate"), keys.clone()])),
            want
        );
        assert_eq!(
            parse(&Value::Array(vec![
                bulk("message"),
                bulk("__redis__:invalidate"),
                keys.clone()
            ])),
            want
        );
        assert_eq!(
            parse(&Value::Push(vec![bulk("invalidate"), Value::Nil])),
            Some(Message::Flush)
        );
        assert_eq!(
            parse(&Value::Array(vec![
                bulk("message"),
                bulk("__redis__:invalidate"),
                Value::Nil
            ])),
            Some(Message::Flush)
        );
        // Other channels and the subscription's confirmation are not invalidations.
        assert_eq!(
            parse(&Value::Array(vec![bulk("message"), bulk("news"), keys])),
            None
        );
        assert_eq!(
            parse(&Value::Array(vec![
                bulk("subscribe"),
                bulk("__redis__:invalidate"),
                Value::Integer(1)
            ])),
            None
        );
        assert_eq!(
            redirect_broken(&Value::Push(vec![
                bulk("tracking-redir-broken"),
                Value::Integer(7)
            ])),
            Some(Some(7))
        );
        assert_eq!(
            redirect_broken(&Value::Push(vec![bulk("invalidate")])),
            None
        );
    }

    #[test]
    fn the_answer_to_ping_is_known_over_resp2_and_resp3() {
        assert!(is_pong(&Value::Array(vec![bulk("pong"), bulk("")])));
        assert!(is_pong(&Value::SimpleString(Bytes::from("PONG"))));
        // An invalidation, a message or a confirmation is not.
        assert!(!is_pong(&Value::Push(vec![bulk("invalidate"), Value::Nil])));
        assert!(!is_pong(&Value::Array(vec![
            bulk("message"),
            bulk("__redis__:invalidate"),
            Value::Nil
        ])));
        assert!(!is_pong(&Value::SimpleString(Bytes::from("OK"))));
    }
}
