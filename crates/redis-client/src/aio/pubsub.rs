//! Async publish/subscribe: a [`PubSub`] owns one dedicated connection, remembers its
//! subscriptions, and becomes a [`Stream`] of messages that survives a lost connection.

use super::Redis;
use crate::observe::Op;
use crate::pubsub::{parse_message, RECONNECT_ATTEMPTS, RETIRED_CHECK};
use crate::{Error, Message, Result, SubscribeArgs};
use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use redis_commands::Cmd;
use redis_conn::aio::{Connection, Pool};
use redis_conn::{ConnectionInfo, ReplyTimeout};
use std::collections::{BTreeSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// An async subscriber: one dedicated connection, opened on first use.
///
/// ```no_run
/// use redis_client::{aio::Redis, MessageKind};
/// # async fn demo(r: Redis) -> redis_client::Result<()> {
/// let mut p = r.pubsub();
/// p.subscribe("news").await?;
/// while let Some(msg) = p.get_message(None).await? {
///     if msg.kind == MessageKind::Message {
///         println!("{:?}", msg.payload);
///         break;
///     }
/// }
/// # Ok(()) }
/// ```
///
/// [`into_stream`](PubSub::into_stream) turns it into a [`Stream`] of messages.
///
/// # Lost connections
/// When the connection breaks, the next read opens a new one and subscribes again to
/// every current channel, pattern and shard channel, then yields a
/// [`MessageKind::Reconnected`](crate::MessageKind::Reconnected) message: anything
/// published meanwhile is lost, as Redis pub/sub keeps nothing. Up to five attempts are
/// made, 50 ms apart and doubling, before the error is returned.
#[derive(Debug)]
pub struct PubSub {
    info: ConnectionInfo,
    /// The dedicated-connection pool of the client that made this subscriber: its
    /// connections go where that pool's connector says (a Sentinel client's current
    /// primary), not to a fixed address.
    via: Option<Pool>,
    conn: Option<Connection>,
    channels: BTreeSet<Bytes>,
    patterns: BTreeSet<Bytes>,
    shard_channels: BTreeSet<Bytes>,
    ignore_subscribe_messages: bool,
    queued: VecDeque<Message>,
    /// A connection was lost and not yet replaced: the next one renews subscriptions.
    lost: bool,
    /// The first connection was being opened with subscriptions remembered, and the
    /// opening was cut short (its future dropped) or failed: they were never sent, so the
    /// next connection subscribes to all of them.
    unsent: bool,
    /// Whether a lost connection is opened again here, or the error returned at once for
    /// an owner that renews it elsewhere (a cluster subscriber).
    reconnects: bool,
}

impl Redis {
    /// A subscriber on a connection of its own, outside the client's connections.
    pub fn pubsub(&self) -> PubSub {
        let mut info = self.pool.info().clone();
        // A subscriber reads no keys: the client-side cache's tracking is not for it.
        info.tracking = None;
        PubSub {
            via: Some(self.pool.clone()),
            ..PubSub::new(info)
        }
    }
}

impl PubSub {
    /// A subscriber to the server `info` describes.
    pub fn new(info: ConnectionInfo) -> PubSub {
        PubSub {
            info,
            via: None,
            conn: None,
            channels: BTreeSet::new(),
            patterns: BTreeSet::new(),
            shard_channels: BTreeSet::new(),
            ignore_subscribe_messages: false,
            queued: VecDeque::new(),
            lost: false,
            unsent: false,
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

    /// Skips subscribe and unsubscribe confirmations instead of returning them.
    pub fn ignore_subscribe_messages(&mut self, ignore: bool) -> &mut Self {
        self.ignore_subscribe_messages = ignore;
        self
    }

    /// Subscribes to one channel or a list of channels.
    ///
    /// Cancellation: cancel-safe as far as the subscriptions go: they are remembered
    /// before anything is sent, and the next connection subscribes to them if this one
    /// breaks or its opening was cut short.
    ///
    /// # Errors
    /// Connection errors that persist after reconnecting.
    pub async fn subscribe<C: SubscribeArgs>(&mut self, channels: C) -> Result<()> {
        let names = channels.names();
        self.channels.extend(names.iter().cloned());
        self.send("SUBSCRIBE", &names).await
    }

    /// Unsubscribes from the given channels, or from all with an empty list.
    ///
    /// Cancellation: as [`subscribe`](PubSub::subscribe).
    ///
    /// # Errors
    /// As [`subscribe`](PubSub::subscribe).
    pub async fn unsubscribe<C: SubscribeArgs>(&mut self, channels: C) -> Result<()> {
        let names = channels.names();
        remove(&mut self.channels, &names);
        self.send_always("UNSUBSCRIBE", &names).await
    }

    /// Subscribes to one pattern or a list of patterns.
    ///
    /// Cancellation: as [`subscribe`](PubSub::subscribe).
    ///
    /// # Errors
    /// As [`subscribe`](PubSub::subscribe).
    pub async fn psubscribe<C: SubscribeArgs>(&mut self, patterns: C) -> Result<()> {
        let names = patterns.names();
        self.patterns.extend(names.iter().cloned());
        self.send("PSUBSCRIBE", &names).await
    }

    /// Unsubscribes from the given patterns, or from all with an empty list.
    ///
    /// Cancellation: as [`subscribe`](PubSub::subscribe).
    ///
    /// # Errors
    /// As [`subscribe`](PubSub::subscribe).
    pub async fn punsubscribe<C: SubscribeArgs>(&mut self, patterns: C) -> Result<()> {
        let names = patterns.names();
        remove(&mut self.patterns, &names);
        self.send_always("PUNSUBSCRIBE", &names).await
    }

    /// Subscribes to one shard channel or a list of them (`SSUBSCRIBE`).
    ///
    /// Cancellation: as [`subscribe`](PubSub::subscribe).
    ///
    /// # Errors
    /// As [`subscribe`](PubSub::subscribe).
    pub async fn ssubscribe<C: SubscribeArgs>(&mut self, channels: C) -> Result<()> {
        let names = channels.names();
        self.shard_channels.extend(names.iter().cloned());
        self.send("SSUBSCRIBE", &names).await
    }

    /// Unsubscribes from the given shard channels, or from all with an empty list.
    ///
    /// Cancellation: as [`subscribe`](PubSub::subscribe).
    ///
    /// # Errors
    /// As [`subscribe`](PubSub::subscribe).
    pub async fn sunsubscribe<C: SubscribeArgs>(&mut self, channels: C) -> Result<()> {
        let names = channels.names();
        remove(&mut self.shard_channels, &names);
        self.send_always("SUNSUBSCRIBE", &names).await
    }

    /// Sends PING on the subscriber connection; its answer arrives as a
    /// [`MessageKind::Pong`](crate::MessageKind::Pong) message carrying `message`.
    ///
    /// Cancellation: not cancel-safe: a PING cut short breaks the connection, which the
    /// next read re-opens and resubscribes.
    ///
    /// # Errors
    /// As [`subscribe`](PubSub::subscribe).
    pub async fn ping<M: SubscribeArgs>(&mut self, message: M) -> Result<()> {
        let message = message.names();
        self.write("PING", &message).await
    }

    /// The channels subscribed to.
    pub fn channels(&self) -> impl Iterator<Item = &Bytes> {
        self.channels.iter()
    }

    /// The patterns subscribed to.
    pub fn patterns(&self) -> impl Iterator<Item = &Bytes> {
        self.patterns.iter()
    }

    /// Waits up to `timeout` (`None`: forever) for the next message; `Ok(None)` when none
    /// arrived in time.
    ///
    /// Cancellation: cancel-safe: a message partly received is kept for the next call,
    /// and a reconnect cut short is done again on the next call.
    ///
    /// # Errors
    /// Connection errors that persist after reconnecting; [`Error::PubSub`] for a reply
    /// that is not a pub/sub message.
    pub async fn get_message(&mut self, timeout: Option<Duration>) -> Result<Option<Message>> {
        let deadline = timeout.map(|t| redis_conn::aio::now() + t);
        loop {
            if let Some(m) = self.queued.pop_front() {
                if self.wanted(&m) {
                    return Ok(Some(m));
                }
                continue;
            }
            let left = match deadline {
                None => None,
                Some(d) => match d.checked_duration_since(redis_conn::aio::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return Ok(None),
                },
            };
            let conn = self.connection().await?;
            // A connection its connector can retire (a Sentinel client's, whose primary
            // may change) is waited on in slices, and left once retired.
            let wait = match conn.retired() {
                Some(true) => {
                    self.conn = None;
                    self.reconnect(Error::PubSub(
                        "the server is no longer the client's (a failover)".into(),
                    ))
                    .await?;
                    return Ok(Some(Message::reconnected()));
                }
                Some(false) => Some(left.map_or(RETIRED_CHECK, |l| l.min(RETIRED_CHECK))),
                None => left,
            };
            match conn.read_push(wait).await {
                Ok(Some(v)) => {
                    let m = parse_message(v)?;
                    if self.wanted(&m) {
                        return Ok(Some(m));
                    }
                }
                // A slice ended before the caller's wait did: look again.
                Ok(None) if wait != left => continue,
                Ok(None) => return Ok(None),
                Err(e) if e.is_connection_lost() => {
                    self.conn = None;
                    self.reconnect(e.into()).await?;
                    return Ok(Some(Message::reconnected()));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// This subscriber as a [`Stream`] of messages; it ends after yielding an error that
    /// reconnecting could not fix.
    pub fn into_stream(self) -> Messages {
        Messages {
            reader: StreamReader::new(self),
        }
    }

    fn wanted(&self, m: &Message) -> bool {
        !(m.kind.is_confirmation() && self.ignore_subscribe_messages)
    }

    async fn connection(&mut self) -> Result<&mut Connection> {
        self.ensure_connection().await?;
        // Just ensured above.
        Ok(self.conn.as_mut().expect("connection opened above"))
    }

    /// Opens the connection if there is none; true when the opening subscribed to every
    /// remembered channel, pattern and shard channel.
    async fn ensure_connection(&mut self) -> Result<bool> {
        if self.conn.is_some() {
            return Ok(false);
        }
        if self.lost {
            // An earlier reconnect was cut short or gave up: renew the subscriptions.
            self.resubscribe().await?;
            self.queued.push_back(Message::reconnected());
            return Ok(true);
        }
        if self.unsent {
            // A subscribe whose connection was never opened: its names are remembered
            // but were never sent.
            self.resubscribe().await?;
            return Ok(true);
        }
        // Stays set if this opening is cut short or fails.
        self.unsent = !(self.channels.is_empty()
            && self.patterns.is_empty()
            && self.shard_channels.is_empty());
        self.conn = Some(open(&self.info, self.via.as_ref()).await?);
        self.unsent = false;
        Ok(false)
    }

    async fn send(&mut self, command: &'static str, names: &[Bytes]) -> Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        self.write(command, names).await
    }

    async fn send_always(&mut self, command: &'static str, names: &[Bytes]) -> Result<()> {
        if self.conn.is_none() {
            // Nothing is subscribed on a connection that does not exist.
            return Ok(());
        }
        self.write(command, names).await
    }

    async fn write(&mut self, command: &'static str, names: &[Bytes]) -> Result<()> {
        let op = Op::pubsub(&self.info, command);
        let result = op.run_async(self.write_unobserved(command, names)).await;
        op.finish(&result);
        result
    }

    async fn write_unobserved(&mut self, command: &'static str, names: &[Bytes]) -> Result<()> {
        let mut cmd = Cmd::new(command);
        cmd.arg(names);
        let mut header = [0u8; 24];
        let header = cmd.header(&mut header);
        let renewed = self.ensure_connection().await?;
        if renewed && matches!(command, "SUBSCRIBE" | "PSUBSCRIBE" | "SSUBSCRIBE") {
            // The new connection subscribed to these names with the rest.
            return Ok(());
        }
        let conn = self.connection().await?;
        // Announces no replies: a subscriber's commands are answered by pushes.
        match conn
            .send(&[header, cmd.body()], 0, ReplyTimeout::Default)
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if e.is_connection_lost() => {
                // Every subscription, this one included, is renewed on the new connection.
                self.conn = None;
                self.reconnect(e.into()).await?;
                self.queued.push_back(Message::reconnected());
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Opens a new connection and renews every subscription on it; for a subscriber
    /// [`without_reconnect`](Self::without_reconnect), returns `cause` at once.
    async fn reconnect(&mut self, cause: Error) -> Result<()> {
        self.lost = true;
        if !self.reconnects {
            self.conn = None;
            return Err(cause);
        }
        let mut delay = Duration::from_millis(50);
        let mut last = None;
        for _ in 0..RECONNECT_ATTEMPTS {
            match self.resubscribe().await {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(1));
        }
        self.conn = None;
        Err(last.unwrap_or_else(|| Error::PubSub("cannot reconnect".to_owned())))
    }

    async fn resubscribe(&mut self) -> Result<()> {
        let mut conn = open(&self.info, self.via.as_ref()).await?;
        let mut out = BytesMut::new();
        for (command, names) in [
            ("SUBSCRIBE", &self.channels),
            ("PSUBSCRIBE", &self.patterns),
            ("SSUBSCRIBE", &self.shard_channels),
        ] {
            if !names.is_empty() {
                let mut cmd = Cmd::new(command);
                cmd.arg(names.iter().cloned().collect::<Vec<_>>());
                cmd.encode_into(&mut out);
            }
        }
        if !out.is_empty() {
            conn.send(&[&out], 0, ReplyTimeout::Default).await?;
        }
        self.conn = Some(conn);
        if std::mem::take(&mut self.lost) {
            redis_conn::observe::reconnect(&self.info, "pubsub");
        }
        self.unsent = false;
        Ok(())
    }
}

fn remove(set: &mut BTreeSet<Bytes>, names: &[Bytes]) {
    if names.is_empty() {
        set.clear();
    } else {
        for n in names {
            set.remove(n);
        }
    }
}

/// A subscriber read as a stream: the read in flight owns the subscriber, which comes back
/// with its result. Shared by [`Messages`] and the cluster subscriber's stream.
pub(crate) struct StreamReader<S> {
    idle: Option<S>,
    reading: Option<Reading<S>>,
}

type Reading<S> = Pin<Box<dyn Future<Output = (S, Result<Option<Message>>)> + Send>>;

impl<S> StreamReader<S> {
    pub(crate) fn new(subscriber: S) -> Self {
        StreamReader {
            idle: Some(subscriber),
            reading: None,
        }
    }

    pub(crate) fn is_reading(&self) -> bool {
        self.reading.is_some()
    }

    /// The next message; `read` starts a wait for one (with no timeout) that gives the
    /// subscriber back. After an error the subscriber is gone and the stream has ended.
    pub(crate) fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        read: fn(S) -> Reading<S>,
    ) -> Poll<Option<Result<Message>>> {
        loop {
            let reading = match &mut self.reading {
                Some(r) => r,
                None => {
                    let Some(subscriber) = self.idle.take() else {
                        return Poll::Ready(None);
                    };
                    self.reading.insert(read(subscriber))
                }
            };
            let (subscriber, result) = match reading.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(done) => done,
            };
            self.reading = None;
            match result {
                Ok(Some(m)) => {
                    self.idle = Some(subscriber);
                    return Poll::Ready(Some(Ok(m)));
                }
                // Without a timeout, a read returns nothing only when what arrived was
                // skipped: read again.
                Ok(None) => self.idle = Some(subscriber),
                Err(e) => return Poll::Ready(Some(Err(e))),
            }
        }
    }
}

/// The [`Stream`] of messages a [`PubSub`] becomes with [`PubSub::into_stream`].
///
/// Cancellation: dropping it drops the subscriber and its connection.
pub struct Messages {
    reader: StreamReader<PubSub>,
}

impl std::fmt::Debug for Messages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Messages")
            .field("reading", &self.reader.is_reading())
            .finish_non_exhaustive()
    }
}

impl Messages {
    /// The next message (`while let Some(m) = messages.next().await { … }`), with no other
    /// crate; the same as `StreamExt::next`.
    pub async fn next(&mut self) -> Option<Result<Message>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl Stream for Messages {
    type Item = Result<Message>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Message>>> {
        self.get_mut().reader.poll_next(cx, |mut pubsub| {
            Box::pin(async move {
                let r = pubsub.get_message(None).await;
                (pubsub, r)
            })
        })
    }
}

/// Opens a subscriber's connection: where the client's pool `via` would, for a subscriber
/// made by a client. (Not a method: a borrowed `PubSub` would make the future not `Send`.)
async fn open(info: &ConnectionInfo, via: Option<&Pool>) -> Result<Connection> {
    Ok(match via {
        Some(pool) => pool.open_unpooled(info).await?,
        None => Connection::open(info).await?,
    })
}
