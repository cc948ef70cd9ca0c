//! Async pub/sub on a cluster: channels and patterns on one node, shard channels on the
//! node serving their slot, each renewed where it belongs after a failover or a reshard.
//! The decisions are those of the blocking [`ClusterPubSub`](crate::cluster::ClusterPubSub)
//! (one sans-IO `Subscriptions` state); this module only does the I/O.

use super::{within, ClusterClient};
use crate::aio::pubsub::StreamReader;
use crate::aio::PubSub;
use crate::cluster::subscriptions::{Arrival, Conn, Subscriptions};
use crate::{Error, Message, Result, SubscribeArgs};
use bytes::Bytes;
use futures_core::Stream;
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// An async cluster subscriber, from [`ClusterClient::pubsub`].
///
/// Redis Cluster forwards `PUBLISH` to every node, so channels and patterns are subscribed
/// on one connection to any primary. A shard channel (`SSUBSCRIBE`, published with
/// `SPUBLISH`) lives on the node serving its slot: each slot with shard channels gets its
/// own connection to that slot's primary. Every connection is read at once.
///
/// When a node goes away (its connection fails and cannot be re-opened) or a shard
/// channel's slot moves (the server then unsubscribes it), the subscriptions are renewed
/// where they now belong, after refreshing the slot map, and a
/// [`MessageKind::Reconnected`](crate::MessageKind::Reconnected) message marks the gap:
/// its `channel` names the shard channel renewed (empty for channels and patterns).
/// Messages published in between are lost; Redis pub/sub keeps nothing.
/// A subscribe or unsubscribe that fails leaves its connection to be renewed the same way
/// (the names are kept), besides returning the error.
///
/// ```no_run
/// use redis_client::cluster::aio::ClusterClient;
/// use redis_client::MessageKind;
///
/// # async fn demo(c: ClusterClient) -> redis_client::Result<()> {
/// let mut sub = c.pubsub();
/// sub.ssubscribe(["orders:eu"]).await?;
/// while let Some(m) = sub.get_message(None).await? {
///     match m.kind {
///         MessageKind::SMessage => println!("{:?}", m.payload),
///         MessageKind::Reconnected => println!("gap on {:?}", m.channel),
///         _ => {}
///     }
/// }
/// # Ok(()) }
/// ```
///
/// [`into_stream`](ClusterPubSub::into_stream) turns it into a [`Stream`] of messages.
#[derive(Debug)]
pub struct ClusterPubSub {
    client: ClusterClient,
    /// What is subscribed to, where, and what waits to be renewed.
    subs: Subscriptions,
    /// Channels and patterns, on one node.
    classic: Option<PubSub>,
    /// Shard channels, one connection per slot.
    shards: BTreeMap<u16, PubSub>,
    queued: VecDeque<Message>,
    /// Which connection is polled first, so none is starved.
    turn: usize,
}

impl ClusterClient {
    /// A subscriber for this cluster; nothing is opened until the first subscription.
    pub fn pubsub(&self) -> ClusterPubSub {
        ClusterPubSub {
            client: self.clone(),
            subs: Subscriptions::default(),
            classic: None,
            shards: BTreeMap::new(),
            queued: VecDeque::new(),
            turn: 0,
        }
    }
}

impl ClusterPubSub {
    /// Skips subscribe and unsubscribe confirmations instead of returning them.
    pub fn ignore_subscribe_messages(&mut self, ignore: bool) -> &mut Self {
        self.subs.ignore_confirmations(ignore);
        self
    }

    /// Subscribes to one channel or a list of channels, on one primary.
    ///
    /// Cancellation: cancel-safe as far as the subscriptions go: they are remembered
    /// before anything is sent and renewed with the connection.
    ///
    /// # Errors
    /// Connection errors; [`Error::Cluster`] when no node is known.
    pub async fn subscribe<C: SubscribeArgs>(&mut self, channels: C) -> Result<()> {
        let names = channels.names();
        self.subs.subscribe(&names);
        let r = match self.classic_sub() {
            Ok(Some(s)) => s.subscribe(names.as_slice()).await,
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        self.renew_if_failed(Conn::Classic, r)
    }

    /// Subscribes to one pattern or a list of patterns, on one primary.
    ///
    /// Cancellation: as [`subscribe`](Self::subscribe).
    ///
    /// # Errors
    /// As [`subscribe`](Self::subscribe).
    pub async fn psubscribe<C: SubscribeArgs>(&mut self, patterns: C) -> Result<()> {
        let names = patterns.names();
        self.subs.psubscribe(&names);
        let r = match self.classic_sub() {
            Ok(Some(s)) => s.psubscribe(names.as_slice()).await,
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        self.renew_if_failed(Conn::Classic, r)
    }

    /// Unsubscribes from the given channels, or from all with an empty list.
    ///
    /// Cancellation: as [`subscribe`](Self::subscribe).
    ///
    /// # Errors
    /// Connection errors.
    pub async fn unsubscribe<C: SubscribeArgs>(&mut self, channels: C) -> Result<()> {
        let names = channels.names();
        self.subs.unsubscribe(&names);
        let r = match self.classic.as_mut() {
            Some(s) => s.unsubscribe(names.as_slice()).await,
            None => Ok(()),
        };
        self.renew_if_failed(Conn::Classic, r)
    }

    /// Unsubscribes from the given patterns, or from all with an empty list.
    ///
    /// Cancellation: as [`subscribe`](Self::subscribe).
    ///
    /// # Errors
    /// Connection errors.
    pub async fn punsubscribe<C: SubscribeArgs>(&mut self, patterns: C) -> Result<()> {
        let names = patterns.names();
        self.subs.punsubscribe(&names);
        let r = match self.classic.as_mut() {
            Some(s) => s.punsubscribe(names.as_slice()).await,
            None => Ok(()),
        };
        self.renew_if_failed(Conn::Classic, r)
    }

    /// Subscribes to shard channels, each on the primary serving its slot.
    ///
    /// Cancellation: as [`subscribe`](Self::subscribe).
    ///
    /// # Errors
    /// Connection errors; [`Error::Cluster`] when a slot has no known node.
    pub async fn ssubscribe<C: SubscribeArgs>(&mut self, channels: C) -> Result<()> {
        for (slot, names) in self.subs.ssubscribe(&channels.names()) {
            let conn = Conn::Shard(slot);
            if self.subs.is_lost(conn) {
                // Subscribed where the slot is served once the connection is renewed.
                continue;
            }
            if !self.shards.contains_key(&slot) {
                let s = self.open(conn);
                let s = self.renew_if_failed(conn, s)?;
                self.shards.insert(slot, s);
            }
            if let Some(s) = self.shards.get_mut(&slot) {
                let r = s.ssubscribe(names.as_slice()).await;
                self.renew_if_failed(conn, r)?;
            }
        }
        Ok(())
    }

    /// Unsubscribes from the given shard channels, or from all with an empty list.
    ///
    /// Cancellation: as [`subscribe`](Self::subscribe).
    ///
    /// # Errors
    /// Connection errors.
    pub async fn sunsubscribe<C: SubscribeArgs>(&mut self, channels: C) -> Result<()> {
        for (slot, names) in self.subs.sunsubscribe(&channels.names()) {
            if let Some(s) = self.shards.get_mut(&slot) {
                let r = s.sunsubscribe(names.as_slice()).await;
                self.renew_if_failed(Conn::Shard(slot), r)?;
            }
        }
        Ok(())
    }

    /// The channels subscribed to.
    pub fn channels(&self) -> impl Iterator<Item = &Bytes> {
        self.subs.channels()
    }

    /// The patterns subscribed to.
    pub fn patterns(&self) -> impl Iterator<Item = &Bytes> {
        self.subs.patterns()
    }

    /// The shard channels subscribed to.
    pub fn shard_channels(&self) -> impl Iterator<Item = &Bytes> {
        self.subs.shard_channels()
    }

    /// Waits up to `timeout` (`None`: forever) for the next message from any node;
    /// `Ok(None)` when none arrived in time.
    ///
    /// Renewals that are due (a node lost, a slot moved) are made first, as by the
    /// blocking [`get_message`](crate::cluster::ClusterPubSub::get_message): within what is
    /// left of `timeout`, or 100 ms if that is more, those not reached made on the next
    /// call; so a call lasts at most `timeout` plus 100 ms. With `None`, each step is
    /// bounded by the connections' own timeouts only.
    ///
    /// Cancellation: cancel-safe: each connection's read is, and a renewal cut short is
    /// done again on the next call.
    ///
    /// # Errors
    /// [`Error::PubSub`] for a reply that is not a pub/sub message. A node that cannot be
    /// reached is not an error: its subscriptions are renewed where they belong once the
    /// cluster serves them again, with a
    /// [`MessageKind::Reconnected`](crate::MessageKind::Reconnected) marker.
    pub async fn get_message(&mut self, timeout: Option<Duration>) -> Result<Option<Message>> {
        let deadline = timeout.map(|t| redis_conn::aio::now() + t);
        loop {
            if let Some(m) = self.queued.pop_front() {
                return Ok(Some(m));
            }
            self.renew_due(deadline).await;
            if !self.queued.is_empty() {
                continue;
            }
            // Wake at the deadline or at the next renewal, whichever comes first.
            let wake = match (deadline, self.subs.next_renewal()) {
                (Some(d), Some(r)) => Some(d.min(r)),
                (d, r) => d.or(r),
            };
            let read = first_message(&mut self.classic, &mut self.shards, self.turn);
            let got = match wake {
                Some(w) => tokio::time::timeout_at(w.into(), read).await.ok(),
                None => Some(read.await),
            };
            if let Some((conn, result)) = got {
                self.turn = self.turn.wrapping_add(1);
                self.arrived(conn, result)?;
            }
            if self.queued.is_empty() && deadline.is_some_and(|d| redis_conn::aio::now() >= d) {
                return Ok(None);
            }
        }
    }

    /// This subscriber as a [`Stream`] of messages; it ends after yielding an error.
    pub fn into_stream(self) -> ClusterMessages {
        ClusterMessages {
            reader: StreamReader::new(self),
        }
    }

    /// Acts on what a connection's read gave: queue a message, or close a connection that
    /// failed or whose slot moved, to be renewed.
    fn arrived(&mut self, conn: Conn, result: Result<Option<Message>>) -> Result<()> {
        let now = redis_conn::aio::now();
        let arrival = match result {
            Ok(Some(m)) => self.subs.arrived(conn, m, now),
            Ok(None) => Arrival::Skip,
            // Its node is gone, or answered with an error (a slot served elsewhere): the
            // connection (which does not re-open itself) is in doubt; renew it where the
            // map says, by a later round.
            Err(e) => self.subs.failed(conn, e, now)?,
        };
        match arrival {
            Arrival::Deliver(m) => self.queued.push_back(m),
            Arrival::Skip => {}
            Arrival::Renew => self.close(conn),
        }
        Ok(())
    }

    fn close(&mut self, conn: Conn) {
        match conn {
            Conn::Classic => self.classic = None,
            Conn::Shard(slot) => {
                self.shards.remove(&slot);
            }
        }
    }

    /// A subscription or unsubscription on `conn` that failed leaves the connection to be
    /// renewed (its names are remembered), by `get_message`, where the map says then.
    fn renew_if_failed<T>(&mut self, conn: Conn, r: Result<T>) -> Result<T> {
        if r.is_err() {
            self.subs.lost(conn, redis_conn::aio::now());
            self.close(conn);
        }
        r
    }

    /// Renews the connections whose renewal is due, as many as the round's time allows
    /// (the others stay due, as does one cut short by a dropped future): a fresh slot map,
    /// a connection to the node serving its names now, the names subscribed again, and the
    /// gap markers.
    async fn renew_due(&mut self, deadline: Option<Instant>) {
        let Some(mut round) = self.subs.round(redis_conn::aio::now(), deadline) else {
            return;
        };
        let until = round.until();
        let _ = self.client.refresh_slots_until(until).await;
        while let Some(conn) = round.next(redis_conn::aio::now()) {
            let renewal = self.subs.renewal(conn);
            if renewal.is_empty() {
                self.subs.renewed(conn, redis_conn::aio::now());
                continue;
            }
            // Made before the wait (it opens nothing), so the future holds no `&self`.
            let opened = self.open(conn);
            let subscribed = within(until, async move {
                let mut s = opened?;
                s.subscribe(renewal.channels.as_slice()).await?;
                s.psubscribe(renewal.patterns.as_slice()).await?;
                s.ssubscribe(renewal.shard_channels.as_slice()).await?;
                Ok(s)
            })
            .await;
            let Ok(s) = subscribed else {
                self.subs.renew_failed(conn, redis_conn::aio::now());
                continue;
            };
            match conn {
                Conn::Classic => self.classic = Some(s),
                Conn::Shard(slot) => {
                    self.shards.insert(slot, s);
                }
            }
            let markers = self.subs.renewed(conn, redis_conn::aio::now());
            self.queued.extend(markers);
        }
    }

    /// A subscriber (not yet connected) on the node `conn` belongs on now.
    fn open(&self, conn: Conn) -> Result<PubSub> {
        let map = self.client.slot_map();
        let addr = self
            .subs
            .node(conn, &map)
            .ok_or_else(|| Error::Cluster(format!("no node known for {conn:?}")))?;
        Ok(PubSub::without_reconnect(
            self.client.node(addr, false).connection_info().clone(),
        ))
    }

    /// The connection for channels and patterns, made on a primary if none is; `None`
    /// while it waits to be renewed (the names are subscribed then).
    fn classic_sub(&mut self) -> Result<Option<&mut PubSub>> {
        if self.subs.is_lost(Conn::Classic) {
            return Ok(None);
        }
        if self.classic.is_none() {
            self.classic = Some(self.open(Conn::Classic)?);
        }
        Ok(self.classic.as_mut())
    }
}

type Read<'a> = Pin<Box<dyn Future<Output = (Conn, Result<Option<Message>>)> + Send + 'a>>;

/// The first message (or failure) from any of the connections, polled starting at
/// `turn`; never ready when there is none. Each read is cancel-safe, so the reads that
/// lose the race are dropped without loss.
fn first_message<'a>(
    classic: &'a mut Option<PubSub>,
    shards: &'a mut BTreeMap<u16, PubSub>,
    turn: usize,
) -> First<'a> {
    let mut reads: Vec<Read<'a>> = Vec::with_capacity(1 + shards.len());
    if let Some(s) = classic.as_mut() {
        reads.push(Box::pin(async move {
            (Conn::Classic, s.get_message(None).await)
        }));
    }
    for (slot, s) in shards.iter_mut() {
        let conn = Conn::Shard(*slot);
        reads.push(Box::pin(async move { (conn, s.get_message(None).await) }));
    }
    if !reads.is_empty() {
        let n = turn % reads.len();
        reads.rotate_left(n);
    }
    First { reads }
}

/// Resolves with the first of its futures to finish.
struct First<'a> {
    reads: Vec<Read<'a>>,
}

impl Future for First<'_> {
    type Output = (Conn, Result<Option<Message>>);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        for r in &mut self.reads {
            if let Poll::Ready(v) = r.as_mut().poll(cx) {
                return Poll::Ready(v);
            }
        }
        Poll::Pending
    }
}

/// The [`Stream`] of messages a [`ClusterPubSub`] becomes with
/// [`ClusterPubSub::into_stream`].
///
/// Cancellation: dropping it drops the subscriber and its connections.
pub struct ClusterMessages {
    reader: StreamReader<ClusterPubSub>,
}

impl std::fmt::Debug for ClusterMessages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterMessages")
            .field("reading", &self.reader.is_reading())
            .finish_non_exhaustive()
    }
}

impl ClusterMessages {
    /// The next message (`while let Some(m) = messages.next().await { … }`), with no other
    /// crate; the same as `StreamExt::next`.
    pub async fn next(&mut self) -> Option<Result<Message>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl Stream for ClusterMessages {
    type Item = Result<Message>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Message>>> {
        self.get_mut().reader.poll_next(cx, |mut sub| {
            Box::pin(async move {
                let r = sub.get_message(None).await;
                (sub, r)
            })
        })
    }
}
