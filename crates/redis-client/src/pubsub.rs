//! Publish/subscribe: a [`PubSub`] owns one connection, subscribes to channels, patterns
//! and shard channels, and hands out the messages that arrive.

use crate::observe::Op;
use crate::{Error, Redis, Result};
use bytes::Bytes;
use redis_commands::{Cmd, ToArgs};
use redis_conn::{Connection, ConnectionInfo, ConnectionPool, DefaultConnector};
use resp_proto::Value;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What a [`Message`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MessageKind {
    /// A message published to a subscribed channel.
    Message,
    /// A message published to a channel matching a subscribed pattern.
    PMessage,
    /// A message published to a subscribed shard channel (`SPUBLISH`).
    SMessage,
    /// Confirmation of `SUBSCRIBE`; the payload is the number of subscriptions.
    Subscribe,
    /// Confirmation of `UNSUBSCRIBE`; the payload is the number of subscriptions left.
    Unsubscribe,
    /// Confirmation of `PSUBSCRIBE`.
    PSubscribe,
    /// Confirmation of `PUNSUBSCRIBE`.
    PUnsubscribe,
    /// Confirmation of `SSUBSCRIBE`.
    SSubscribe,
    /// Confirmation of `SUNSUBSCRIBE`.
    SUnsubscribe,
    /// The answer to [`PubSub::ping`]; the payload is the ping's message.
    Pong,
    /// The connection was lost and has been re-established, with every subscription
    /// renewed. Messages published in between were lost: Redis pub/sub does not keep them.
    Reconnected,
}

impl MessageKind {
    pub(crate) fn is_confirmation(self) -> bool {
        matches!(
            self,
            MessageKind::Subscribe
                | MessageKind::Unsubscribe
                | MessageKind::PSubscribe
                | MessageKind::PUnsubscribe
                | MessageKind::SSubscribe
                | MessageKind::SUnsubscribe
        )
    }
}

/// One message from a [`PubSub`] connection (redis-py 2.7.6's message dict), from every
/// kind of subscriber alike (blocking, async, cluster).
///
/// Its fields are bytes, as published; [`payload_str`](Message::payload_str),
/// [`channel_str`](Message::channel_str) and [`pattern_str`](Message::pattern_str) read
/// them as text (checked as UTF-8), the subscriber's counterpart of a client's text mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// What it is.
    pub kind: MessageKind,
    /// The channel it was published to (for confirmations, the channel or pattern
    /// concerned; empty for [`MessageKind::Pong`] and [`MessageKind::Reconnected`]).
    pub channel: Bytes,
    /// The pattern that matched, for [`MessageKind::PMessage`].
    pub pattern: Option<Bytes>,
    /// The published payload; for confirmations the subscription count in decimal.
    pub payload: Bytes,
}

impl Message {
    /// The subscription count carried by a confirmation.
    pub fn subscription_count(&self) -> Option<i64> {
        if !self.kind.is_confirmation() {
            return None;
        }
        std::str::from_utf8(&self.payload).ok()?.parse().ok()
    }

    pub(crate) fn reconnected() -> Message {
        Message {
            kind: MessageKind::Reconnected,
            channel: Bytes::new(),
            pattern: None,
            payload: Bytes::new(),
        }
    }
}

/// A handler called for each message of one channel or pattern.
type Handler = Box<dyn FnMut(&Message) + Send>;

/// How many times a lost connection is re-opened in a row before the error is returned.
pub(crate) const RECONNECT_ATTEMPTS: u32 = 5;

/// How long [`PubSub::run_in_thread`] waits on the socket at a time when given a zero
/// poll interval: short enough that a stop is noticed quickly, long enough that an idle
/// thread wakes only ten times a second.
const DEFAULT_THREAD_WAIT: Duration = Duration::from_millis(100);

/// How often a subscriber whose connection can be retired (a Sentinel client's) looks
/// whether it was: how late it may move to a new primary after a failover.
pub(crate) const RETIRED_CHECK: Duration = Duration::from_millis(100);

/// A subscriber: one dedicated connection (outside the pool), opened on first use.
///
/// ```no_run
/// use redis_client::{MessageKind, Redis};
/// let r = Redis::open("redis://localhost")?;
/// let mut p = r.pubsub();
/// p.subscribe(["news"])?;
/// for msg in p.listen() {
///     let msg = msg?;
///     if msg.kind == MessageKind::Message {
///         println!("{:?}", msg.payload);
///         break;
///     }
/// }
/// # Ok::<(), redis_client::Error>(())
/// ```
///
/// # Lost connections
/// When the connection breaks, the next read re-opens it and subscribes again to every
/// current channel, pattern and shard channel, then yields a [`MessageKind::Reconnected`]
/// message: anything published while it was down is lost, as Redis pub/sub keeps nothing.
/// A subscriber made from a [`Sentinel`](crate::Sentinel) client does the same when a
/// failover retires its connection, so it follows the primary.
///
/// `PubSub` is `Send` but not `Sync`; for a background thread see [`PubSub::run_in_thread`].
pub struct PubSub {
    info: ConnectionInfo,
    /// The pool of the client that made this subscriber: its connections go where that
    /// pool's connector says (a Sentinel client's current primary), not to a fixed address.
    via: Option<ConnectionPool>,
    conn: Option<Connection>,
    channels: BTreeMap<Bytes, Option<Handler>>,
    patterns: BTreeMap<Bytes, Option<Handler>>,
    shard_channels: BTreeMap<Bytes, Option<Handler>>,
    ignore_subscribe_messages: bool,
    queued: VecDeque<Message>,
    /// A connection was lost and not yet replaced: the next one must renew subscriptions.
    lost: bool,
    /// Whether a lost connection is opened again here, or the error returned at once for
    /// an owner that renews it elsewhere (a cluster subscriber).
    reconnects: bool,
}

impl fmt::Debug for PubSub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PubSub")
            .field("info", &self.info)
            .field("connected", &self.conn.is_some())
            .field("channels", &self.channels.keys().collect::<Vec<_>>())
            .field("patterns", &self.patterns.keys().collect::<Vec<_>>())
            .field(
                "shard_channels",
                &self.shard_channels.keys().collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Redis {
    /// A subscriber with its own connection to this client's server.
    pub fn pubsub(&self) -> PubSub {
        let mut info = self.pool().info().clone();
        // A subscriber reads no keys: the client-side cache's tracking is not for it.
        info.tracking = None;
        PubSub {
            via: Some(self.pool().clone()),
            ..PubSub::new(info)
        }
    }
}

impl PubSub {
    /// A subscriber to the server `info` describes; nothing is opened until first use.
    pub fn new(info: ConnectionInfo) -> PubSub {
        PubSub {
            info,
            via: None,
            conn: None,
            channels: BTreeMap::new(),
            patterns: BTreeMap::new(),
            shard_channels: BTreeMap::new(),
            ignore_subscribe_messages: false,
            queued: VecDeque::new(),
            lost: false,
            reconnects: true,
        }
    }

    /// A subscriber that never re-opens a lost connection itself: the error is returned
    /// at once, for an owner that decides where and when to renew it (a cluster
    /// subscriber, which renews it where the slot map says, within its caller's time).
    pub(crate) fn without_reconnect(info: ConnectionInfo) -> PubSub {
        PubSub {
            reconnects: false,
            ..PubSub::new(info)
        }
    }

    /// Opens the connection with these names subscribed, by `deadline` as well as the
    /// connect and read timeouts, and keeps their confirmations for `get_message`; no
    /// [`MessageKind::Reconnected`] marker is queued (the owner marks the gap).
    pub(crate) fn subscribe_all_until(
        &mut self,
        channels: &[Bytes],
        patterns: &[Bytes],
        shard_channels: &[Bytes],
        deadline: Option<Instant>,
    ) -> Result<()> {
        for (set, names) in [
            (&mut self.channels, channels),
            (&mut self.patterns, patterns),
            (&mut self.shard_channels, shard_channels),
        ] {
            for n in names {
                set.entry(n.clone()).or_insert(None);
            }
        }
        self.subscribe_all(deadline)
    }

    /// Skip subscribe/unsubscribe confirmations in [`get_message`](PubSub::get_message)
    /// and [`listen`](PubSub::listen).
    pub fn ignore_subscribe_messages(&mut self, ignore: bool) -> &mut Self {
        self.ignore_subscribe_messages = ignore;
        self
    }

    /// Subscribes to `channels`, returning once the server has confirmed every one, so a
    /// message published afterwards is received. Messages that arrive while waiting are
    /// kept for [`get_message`](PubSub::get_message) and [`listen`](PubSub::listen), as
    /// are the confirmations themselves.
    ///
    /// # Errors
    /// Connection errors; [`Error::Timeout`] when the confirmations take longer than the
    /// connection's read timeout.
    pub fn subscribe<C: SubscribeArgs>(&mut self, channels: C) -> Result<()> {
        let names = channels.names();
        for n in &names {
            self.channels.insert(n.clone(), None);
        }
        self.send("SUBSCRIBE", MessageKind::Subscribe, &names)
    }

    /// Subscribes to `channel` with a handler that receives its messages instead of
    /// [`get_message`](PubSub::get_message); returns once the server confirmed it.
    ///
    /// # Errors
    /// As [`subscribe`](PubSub::subscribe).
    pub fn subscribe_with<F: FnMut(&Message) + Send + 'static>(
        &mut self,
        channel: impl ToArgs,
        handler: F,
    ) -> Result<()> {
        let name = one_name(channel);
        self.channels.insert(name.clone(), Some(Box::new(handler)));
        self.send("SUBSCRIBE", MessageKind::Subscribe, &[name])
    }

    /// Unsubscribes from `channels`, or from every channel when given none.
    ///
    /// # Errors
    /// Connection errors.
    pub fn unsubscribe<C: SubscribeArgs>(&mut self, channels: C) -> Result<()> {
        let names = channels.names();
        remove(&mut self.channels, &names);
        self.send_unsubscribe("UNSUBSCRIBE", &names)
    }

    /// Unsubscribes from every channel.
    ///
    /// # Errors
    /// Connection errors.
    pub fn unsubscribe_all(&mut self) -> Result<()> {
        self.unsubscribe(&[] as &[&str])
    }

    /// Subscribes to glob-style `patterns`, returning once the server has confirmed every
    /// one (see [`subscribe`](PubSub::subscribe)).
    ///
    /// # Errors
    /// As [`subscribe`](PubSub::subscribe).
    pub fn psubscribe<C: SubscribeArgs>(&mut self, patterns: C) -> Result<()> {
        let names = patterns.names();
        for n in &names {
            self.patterns.insert(n.clone(), None);
        }
        self.send("PSUBSCRIBE", MessageKind::PSubscribe, &names)
    }

    /// Subscribes to `pattern` with a handler for its messages; returns once the server
    /// confirmed it.
    ///
    /// # Errors
    /// As [`subscribe`](PubSub::subscribe).
    pub fn psubscribe_with<F: FnMut(&Message) + Send + 'static>(
        &mut self,
        pattern: impl ToArgs,
        handler: F,
    ) -> Result<()> {
        let name = one_name(pattern);
        self.patterns.insert(name.clone(), Some(Box::new(handler)));
        self.send("PSUBSCRIBE", MessageKind::PSubscribe, &[name])
    }

    /// Unsubscribes from `patterns`, or from every pattern when given none.
    ///
    /// # Errors
    /// Connection errors.
    pub fn punsubscribe<C: SubscribeArgs>(&mut self, patterns: C) -> Result<()> {
        let names = patterns.names();
        remove(&mut self.patterns, &names);
        self.send_unsubscribe("PUNSUBSCRIBE", &names)
    }

    /// Unsubscribes from every pattern.
    ///
    /// # Errors
    /// Connection errors.
    pub fn punsubscribe_all(&mut self) -> Result<()> {
        self.punsubscribe(&[] as &[&str])
    }

    /// Subscribes to shard channels (Redis 7; `SPUBLISH` sends to them), returning once
    /// the server has confirmed every one (see [`subscribe`](PubSub::subscribe)).
    ///
    /// # Errors
    /// As [`subscribe`](PubSub::subscribe).
    pub fn ssubscribe<C: SubscribeArgs>(&mut self, channels: C) -> Result<()> {
        let names = channels.names();
        for n in &names {
            self.shard_channels.insert(n.clone(), None);
        }
        self.send("SSUBSCRIBE", MessageKind::SSubscribe, &names)
    }

    /// Subscribes to shard channel `channel` with a handler for its messages; returns once
    /// the server confirmed it.
    ///
    /// # Errors
    /// As [`subscribe`](PubSub::subscribe).
    pub fn ssubscribe_with<F: FnMut(&Message) + Send + 'static>(
        &mut self,
        channel: impl ToArgs,
        handler: F,
    ) -> Result<()> {
        let name = one_name(channel);
        self.shard_channels
            .insert(name.clone(), Some(Box::new(handler)));
        self.send("SSUBSCRIBE", MessageKind::SSubscribe, &[name])
    }

    /// Unsubscribes from shard `channels`, or from every shard channel when given none.
    ///
    /// # Errors
    /// Connection errors.
    pub fn sunsubscribe<C: SubscribeArgs>(&mut self, channels: C) -> Result<()> {
        let names = channels.names();
        remove(&mut self.shard_channels, &names);
        self.send_unsubscribe("SUNSUBSCRIBE", &names)
    }

    /// Unsubscribes from every shard channel.
    ///
    /// # Errors
    /// Connection errors.
    pub fn sunsubscribe_all(&mut self) -> Result<()> {
        self.sunsubscribe(&[] as &[&str])
    }

    /// Sends `PING` in subscribed mode; the answer arrives as a [`MessageKind::Pong`].
    ///
    /// # Errors
    /// Connection errors.
    pub fn ping(&mut self, message: impl ToArgs) -> Result<()> {
        let mut cmd = Cmd::new("PING");
        cmd.arg(message);
        let op = Op::command(&self.info, &cmd);
        let result = op.run(|| self.write(&cmd).map(drop));
        op.finish(&result);
        result
    }

    /// The channels currently subscribed to.
    pub fn channels(&self) -> impl Iterator<Item = &Bytes> {
        self.channels.keys()
    }

    /// The patterns currently subscribed to.
    pub fn patterns(&self) -> impl Iterator<Item = &Bytes> {
        self.patterns.keys()
    }

    /// The shard channels currently subscribed to.
    pub fn shard_channels(&self) -> impl Iterator<Item = &Bytes> {
        self.shard_channels.keys()
    }

    /// True while any channel, pattern or shard channel is subscribed.
    pub fn is_subscribed(&self) -> bool {
        !(self.channels.is_empty() && self.patterns.is_empty() && self.shard_channels.is_empty())
    }

    /// Waits up to `timeout` (`None`: forever) for the next message; `Ok(None)` when none
    /// arrived in time, or when the ones that arrived went to handlers or were skipped
    /// confirmations.
    ///
    /// A zero timeout polls: it returns a message already received or already readable on
    /// the socket, and `Ok(None)` otherwise, without waiting for more.
    ///
    /// # Errors
    /// Connection errors that persist after reconnecting; [`Error::PubSub`] for a reply
    /// that is not a pub/sub message.
    pub fn get_message(&mut self, timeout: Option<Duration>) -> Result<Option<Message>> {
        let poll = timeout == Some(Duration::ZERO);
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if let Some(m) = self.queued.pop_front() {
                if let Some(m) = self.dispatch(m) {
                    return Ok(Some(m));
                }
                continue;
            }
            let left = match deadline {
                None => None,
                // A poll asks the connection for what is readable now, however often a
                // handler took the previous message.
                Some(_) if poll => Some(Duration::ZERO),
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return Ok(None),
                },
            };
            let conn = self.connection()?;
            // A connection its connector can retire (a Sentinel client's, whose primary
            // may change) is waited on in slices, and left once retired.
            let wait = match conn.retired() {
                Some(true) => {
                    self.conn = None;
                    self.reconnect(Error::PubSub(
                        "the server is no longer the client's (a failover)".into(),
                    ))?;
                    continue;
                }
                Some(false) if !poll => Some(left.map_or(RETIRED_CHECK, |l| l.min(RETIRED_CHECK))),
                _ => left,
            };
            match conn.read_push(wait) {
                Ok(Some(v)) => {
                    let m = parse_message(v)?;
                    if let Some(m) = self.dispatch(m) {
                        return Ok(Some(m));
                    }
                }
                // A slice ended before the caller's wait did: look again.
                Ok(None) if wait != left => continue,
                Ok(None) => return Ok(None),
                Err(e) if e.is_connection_lost() => {
                    self.conn = None;
                    // Queues the `Reconnected` marker, returned next.
                    self.reconnect(Error::from(e))?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// A blocking iterator over messages (redis-py 2.7.6's `listen()`); it ends only
    /// on an error that reconnecting cannot fix, which it yields last.
    pub fn listen(&mut self) -> Listen<'_> {
        Listen {
            pubsub: self,
            done: false,
        }
    }

    /// Moves the subscriber to a background thread that passes every message to its
    /// handler, and returns a handle that stops it.
    ///
    /// Messages of channels without a handler, and confirmations, are dropped: subscribe
    /// with [`subscribe_with`](PubSub::subscribe_with) and friends first.
    ///
    /// The thread waits on the socket for up to `poll` at a time, which bounds how long a
    /// [`stop`](PubSubThread::stop) takes to be noticed. A zero `poll` means the default
    /// wait of 100 ms rather than spinning: a message is handled as soon as it arrives
    /// whatever the wait.
    pub fn run_in_thread(mut self, poll: Duration) -> PubSubThread {
        let wait = if poll.is_zero() {
            DEFAULT_THREAD_WAIT
        } else {
            poll
        };
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                self.get_message(Some(wait))?;
            }
            Ok(self)
        });
        PubSubThread {
            stop,
            handle: Some(handle),
        }
    }

    /// Closes the connection; subscriptions are forgotten.
    pub fn close(&mut self) {
        self.conn = None;
        self.lost = false;
        self.channels.clear();
        self.patterns.clear();
        self.shard_channels.clear();
        self.queued.clear();
    }

    /// Hands a message to its handler, returning it only if the caller should see it.
    fn dispatch(&mut self, m: Message) -> Option<Message> {
        if m.kind.is_confirmation() && self.ignore_subscribe_messages {
            return None;
        }
        let handler = match m.kind {
            MessageKind::Message => self.channels.get_mut(&m.channel),
            MessageKind::SMessage => self.shard_channels.get_mut(&m.channel),
            MessageKind::PMessage => m.pattern.as_ref().and_then(|p| self.patterns.get_mut(p)),
            _ => None,
        };
        match handler {
            Some(Some(h)) => {
                h(&m);
                None
            }
            _ => Some(m),
        }
    }

    fn connection(&mut self) -> Result<&mut Connection> {
        if self.conn.is_none() {
            if self.lost {
                // An earlier reconnect gave up; this one renews the subscriptions (and
                // queues the `Reconnected` marker).
                self.resubscribe()?;
            } else {
                self.conn = Some(self.open(None)?);
            }
        }
        // Just ensured above.
        Ok(self.conn.as_mut().expect("connection opened above"))
    }

    /// Sends a subscribe command and waits for one confirmation per name.
    fn send(&mut self, command: &'static str, kind: MessageKind, names: &[Bytes]) -> Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        let op = Op::pubsub(&self.info, command);
        let result = op.run(|| self.send_unobserved(command, kind, names));
        op.finish(&result);
        result
    }

    fn send_unobserved(
        &mut self,
        command: &'static str,
        kind: MessageKind,
        names: &[Bytes],
    ) -> Result<()> {
        let mut cmd = Cmd::new(command);
        cmd.arg(names);
        if !self.write(&cmd)? {
            // A new connection renewed (and confirmed) every subscription, these included.
            return Ok(());
        }
        match self.await_confirmations(&[(kind, names.len())], None) {
            // A timeout of our own leaves the connection usable (late confirmations are
            // queued when they come); a broken connection is replaced, which renews and
            // confirms every subscription.
            Err(e) if e.is_connection_lost() && !matches!(e, Error::Timeout) => {
                self.conn = None;
                self.reconnect(e)
            }
            r => r,
        }
    }

    fn send_unsubscribe(&mut self, command: &'static str, names: &[Bytes]) -> Result<()> {
        if self.conn.is_none() {
            // Nothing is subscribed on a connection that does not exist.
            return Ok(());
        }
        let mut cmd = Cmd::new(command);
        cmd.arg(names);
        let op = Op::command(&self.info, &cmd);
        let result = op.run(|| self.write(&cmd).map(drop));
        op.finish(&result);
        result
    }

    /// Writes `cmd`; `Ok(false)` when the connection was lost and a new one renewed every
    /// subscription instead.
    fn write(&mut self, cmd: &Cmd) -> Result<bool> {
        let mut header = [0u8; 24];
        let header = cmd.header(&mut header);
        let first = self.connection()?.send(&[header, cmd.body()], 0);
        match first {
            Ok(()) => Ok(true),
            Err(e) if e.is_connection_lost() => {
                // The subscriptions, including this one, are renewed on the new connection.
                self.conn = None;
                self.reconnect(Error::from(e))?;
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Reads until the server has sent `count` confirmations of each `kind`, keeping every
    /// message read (confirmations included) for `get_message`, in order. One deadline, the
    /// connection's read timeout or `until` if that comes first, covers them all.
    ///
    /// Connection errors are returned as they are: the caller decides whether to reconnect.
    fn await_confirmations(
        &mut self,
        want: &[(MessageKind, usize)],
        until: Option<Instant>,
    ) -> Result<()> {
        let mut left: Vec<(MessageKind, usize)> =
            want.iter().copied().filter(|&(_, n)| n > 0).collect();
        let conn = self
            .conn
            .as_mut()
            .expect("a subscribe was just written on it");
        let deadline = match (conn.read_timeout().map(|t| Instant::now() + t), until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        while !left.is_empty() {
            let wait = match deadline {
                None => None,
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(w) if !w.is_zero() => Some(w),
                    _ => return Err(Error::Timeout),
                },
            };
            match conn.read_push(wait)? {
                Some(v) => {
                    let m = parse_message(v)?;
                    if let Some(i) = left.iter().position(|&(k, _)| k == m.kind) {
                        left[i].1 -= 1;
                        if left[i].1 == 0 {
                            left.swap_remove(i);
                        }
                    }
                    self.queued.push_back(m);
                }
                None => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(Error::Timeout);
                    }
                }
            }
        }
        Ok(())
    }

    /// Opens a connection: where the client's pool would, for a subscriber made by a client;
    /// by `deadline` as well as the connect timeout for one made by a cluster subscriber
    /// (the only one given a deadline).
    fn open(&self, deadline: Option<Instant>) -> Result<Connection> {
        Ok(match &self.via {
            Some(pool) => pool.open_unpooled(&self.info)?,
            None => Connection::open_until(&DefaultConnector::new(self.info.clone()), deadline)?,
        })
    }

    /// Opens a new connection and renews every subscription on it; for a subscriber
    /// [`without_reconnect`](Self::without_reconnect), returns `cause` at once.
    fn reconnect(&mut self, cause: Error) -> Result<()> {
        self.lost = true;
        if !self.reconnects {
            self.conn = None;
            return Err(cause);
        }
        let mut delay = Duration::from_millis(50);
        let mut last = None;
        for _ in 0..RECONNECT_ATTEMPTS {
            match self.resubscribe() {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_secs(1));
        }
        self.conn = None;
        Err(last.unwrap_or_else(|| Error::PubSub(format!("cannot reconnect after: {cause}"))))
    }

    /// Opens a connection, subscribes it to every channel, pattern and shard channel, and
    /// waits for the confirmations; queues a [`MessageKind::Reconnected`] marker ahead of
    /// them.
    fn resubscribe(&mut self) -> Result<()> {
        let mark = self.queued.len();
        self.subscribe_all(None)?;
        self.queued.insert(mark, Message::reconnected());
        self.lost = false;
        redis_conn::observe::reconnect(&self.info, "pubsub");
        Ok(())
    }

    /// Opens a connection by `deadline` (and the connect timeout), subscribes it to every
    /// channel, pattern and shard channel, and waits for the confirmations by `deadline`
    /// (and the read timeout), keeping them for `get_message`.
    fn subscribe_all(&mut self, deadline: Option<Instant>) -> Result<()> {
        let mut conn = self.open(deadline)?;
        let mut out = bytes::BytesMut::new();
        let mut want = Vec::new();
        for (command, kind, names) in [
            ("SUBSCRIBE", MessageKind::Subscribe, &self.channels),
            ("PSUBSCRIBE", MessageKind::PSubscribe, &self.patterns),
            ("SSUBSCRIBE", MessageKind::SSubscribe, &self.shard_channels),
        ] {
            if !names.is_empty() {
                let mut cmd = Cmd::new(command);
                cmd.arg(names.keys().cloned().collect::<Vec<_>>());
                cmd.encode_into(&mut out);
                want.push((kind, names.len()));
            }
        }
        if !out.is_empty() {
            conn.send(&[&out], 0)?;
        }
        self.conn = Some(conn);
        let mark = self.queued.len();
        if let Err(e) = self.await_confirmations(&want, deadline) {
            self.conn = None;
            self.queued.truncate(mark);
            return Err(e);
        }
        Ok(())
    }
}

/// The blocking iterator of [`PubSub::listen`].
#[derive(Debug)]
#[must_use = "iterators are lazy and read nothing unless consumed"]
pub struct Listen<'a> {
    pubsub: &'a mut PubSub,
    done: bool,
}

impl Iterator for Listen<'_> {
    type Item = Result<Message>;

    fn next(&mut self) -> Option<Result<Message>> {
        if self.done {
            return None;
        }
        loop {
            match self.pubsub.get_message(None) {
                Ok(Some(m)) => return Some(Ok(m)),
                Ok(None) => continue,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// The handle of a subscriber running in a background thread.
#[derive(Debug)]
#[must_use = "dropping the handle stops the thread at once: keep it while messages should be handled"]
pub struct PubSubThread {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Result<PubSub>>>,
}

impl PubSubThread {
    /// Stops the thread (within its poll interval) and gives the subscriber back, or the
    /// error that ended the thread early.
    ///
    /// # Errors
    /// The error that stopped the thread, or [`Error::PubSub`] if its handler panicked.
    pub fn stop(mut self) -> Result<PubSub> {
        self.stop.store(true, Ordering::Relaxed);
        let handle = self.handle.take().expect("joined only here or in drop");
        handle
            .join()
            .unwrap_or_else(|_| Err(Error::PubSub("a message handler panicked".to_owned())))
    }

    /// True while the thread runs.
    pub fn is_running(&self) -> bool {
        self.handle.as_ref().is_some_and(|h| !h.is_finished())
    }
}

impl Drop for PubSubThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Channel or pattern names for the subscribe methods: one name, or a list of names.
/// An empty list means "all" for the unsubscribe methods.
pub trait SubscribeArgs {
    /// The names as byte strings.
    fn names(&self) -> Vec<Bytes>;
}

impl<T: ToArgs + ?Sized> SubscribeArgs for T {
    fn names(&self) -> Vec<Bytes> {
        let mut cmd = Cmd::new("");
        self.write_args(&mut cmd);
        // Skip the placeholder name argument.
        cmd.args().skip(1).map(Bytes::copy_from_slice).collect()
    }
}

fn one_name(name: impl ToArgs) -> Bytes {
    name.names().into_iter().next().unwrap_or_default()
}

fn remove(map: &mut BTreeMap<Bytes, Option<Handler>>, names: &[Bytes]) {
    if names.is_empty() {
        map.clear();
    } else {
        for n in names {
            map.remove(n);
        }
    }
}

/// Turns a RESP2 array or RESP3 push into a [`Message`].
pub(crate) fn parse_message(v: Value) -> Result<Message> {
    let bad = |v: &Value| {
        Error::PubSub(format!(
            "unexpected {} where a pub/sub message was expected",
            v.kind_name()
        ))
    };
    let items = match v {
        Value::Array(items) | Value::Push(items) => items,
        // RESP3 answers PING in subscribed mode as a plain PING: a status, or the echoed
        // message as a bulk string. PING is the only request here with a direct reply.
        Value::SimpleString(s) | Value::BulkString(s) => {
            return Ok(Message {
                kind: MessageKind::Pong,
                channel: Bytes::new(),
                pattern: None,
                payload: s,
            });
        }
        Value::Error(e) => return Err(Error::Server(e.into())),
        other => return Err(bad(&other)),
    };
    let text = |v: &Value| -> Bytes {
        match v {
            Value::Integer(n) => Bytes::from(n.to_string()),
            other => other.as_bytes().cloned().unwrap_or_default(),
        }
    };
    let kind_name = items
        .first()
        .and_then(Value::as_bytes)
        .map(|b| b.to_ascii_lowercase())
        .unwrap_or_default();
    let kind = match &kind_name[..] {
        b"message" => MessageKind::Message,
        b"pmessage" => MessageKind::PMessage,
        b"smessage" => MessageKind::SMessage,
        b"subscribe" => MessageKind::Subscribe,
        b"unsubscribe" => MessageKind::Unsubscribe,
        b"psubscribe" => MessageKind::PSubscribe,
        b"punsubscribe" => MessageKind::PUnsubscribe,
        b"ssubscribe" => MessageKind::SSubscribe,
        b"sunsubscribe" => MessageKind::SUnsubscribe,
        b"pong" => MessageKind::Pong,
        _ => return Err(bad(&Value::Array(items))),
    };
    let field = |i: usize| items.get(i).map(text).unwrap_or_default();
    let msg = match kind {
        MessageKind::PMessage => {
            if items.len() != 4 {
                return Err(bad(&Value::Array(items)));
            }
            Message {
                kind,
                pattern: Some(field(1)),
                channel: field(2),
                payload: field(3),
            }
        }
        MessageKind::Pong => Message {
            kind,
            channel: Bytes::new(),
            pattern: None,
            payload: field(1),
        },
        _ => {
            if items.len() != 3 {
                return Err(bad(&Value::Array(items)));
            }
            Message {
                kind,
                channel: field(1),
                pattern: None,
                payload: field(2),
            }
        }
    };
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn parses_both_protocol_shapes() {
        let resp2 = Value::Array(vec![bulk("message"), bulk("ch"), bulk("hi")]);
        let resp3 = Value::Push(vec![bulk("message"), bulk("ch"), bulk("hi")]);
        assert_eq!(parse_message(resp2).unwrap(), parse_message(resp3).unwrap());
        let p = parse_message(Value::Array(vec![
            bulk("pmessage"),
            bulk("c*"),
            bulk("ch"),
            bulk("x"),
        ]))
        .unwrap();
        assert_eq!(p.pattern.as_deref(), Some(&b"c*"[..]));
        let s = parse_message(Value::Push(vec![
            bulk("subscribe"),
            bulk("ch"),
            Value::Integer(2),
        ]))
        .unwrap();
        assert_eq!(s.subscription_count(), Some(2));
        let u = parse_message(Value::Array(vec![
            bulk("unsubscribe"),
            Value::Nil,
            Value::Integer(0),
        ]))
        .unwrap();
        assert_eq!((u.kind, u.channel.len()), (MessageKind::Unsubscribe, 0));
    }

    #[test]
    fn rejects_what_is_not_a_message() {
        assert!(matches!(
            parse_message(Value::Integer(3)),
            Err(Error::PubSub(_))
        ));
        assert!(matches!(
            parse_message(Value::Array(vec![bulk("message"), bulk("ch")])),
            Err(Error::PubSub(_))
        ));
        assert!(matches!(
            parse_message(Value::Array(vec![bulk("bogus"), bulk("a"), bulk("b")])),
            Err(Error::PubSub(_))
        ));
    }

    #[test]
    fn pubsub_is_send() {
        fn send<T: Send>() {}
        send::<PubSub>();
        send::<PubSubThread>();
    }
}
