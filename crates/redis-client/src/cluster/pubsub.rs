//! Pub/sub on a cluster: channels and patterns on any one node, shard channels on the
//! node serving their slot, each renewed where it belongs after a failover or a reshard.

use super::client::ClusterClient;
use super::subscriptions::{Arrival, Conn, Subscriptions};
use crate::pubsub::SubscribeArgs;
use crate::{Error, Message, PubSub, Result};
use bytes::Bytes;
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// How long a subscriber waits on one node's connection at a time while others may have
/// messages: short, so a message on another node waits little.
const SLICE: Duration = Duration::from_millis(5);

/// A cluster subscriber, from [`ClusterClient::pubsub`].
///
/// Redis Cluster forwards `PUBLISH` to every node, so channels and patterns are subscribed
/// on one connection to any primary. A shard channel (`SSUBSCRIBE`, published with
/// `SPUBLISH`) lives on the node serving its slot: each slot with shard channels gets its
/// own connection to that slot's primary.
///
/// When a node goes away (its connection fails and cannot be re-opened) or a shard
/// channel's slot moves (the server then unsubscribes it), the subscriptions are renewed
/// where they now belong, after refreshing the slot map, and a
/// [`MessageKind::Reconnected`](crate::MessageKind::Reconnected) message marks the gap: its `channel` names the shard
/// channel renewed (empty for channels and patterns). Messages published in between are
/// lost; Redis pub/sub keeps nothing.
/// A subscribe or unsubscribe that fails leaves its connection to be renewed the same way
/// (the names are kept), besides returning the error.
///
/// ```no_run
/// use redis_client::cluster::ClusterClient;
/// use redis_client::MessageKind;
/// use std::time::Duration;
///
/// let c = ClusterClient::open(&["redis://127.0.0.1:7000"])?;
/// let mut sub = c.pubsub();
/// sub.ssubscribe(["orders:eu"])?;
/// while let Some(m) = sub.get_message(Some(Duration::from_secs(1)))? {
///     if m.kind == MessageKind::SMessage {
///         println!("{:?}", m.payload);
///     }
/// }
/// # Ok::<(), redis_client::Error>(())
/// ```
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
    /// Which connection waits next, so none is starved.
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
    /// Skip subscribe/unsubscribe confirmations in [`get_message`](Self::get_message).
    pub fn ignore_subscribe_messages(&mut self, ignore: bool) -> &mut Self {
        self.subs.ignore_confirmations(ignore);
        self
    }

    /// Subscribes to `channels`; returns once the server confirmed them.
    ///
    /// # Errors
    /// Connection errors; [`Error::Cluster`] when no node is known.
    pub fn subscribe<C: SubscribeArgs>(&mut self, channels: C) -> Result<()> {
        let names = channels.names();
        self.subs.subscribe(&names);
        let r = self
            .classic_sub()
            .and_then(|s| s.map_or(Ok(()), |s| s.subscribe(names.as_slice())));
        self.renew_if_failed(Conn::Classic, r)
    }

    /// Subscribes to `patterns`; returns once the server confirmed them.
    ///
    /// # Errors
    /// As [`subscribe`](Self::subscribe).
    pub fn psubscribe<C: SubscribeArgs>(&mut self, patterns: C) -> Result<()> {
        let names = patterns.names();
        self.subs.psubscribe(&names);
        let r = self
            .classic_sub()
            .and_then(|s| s.map_or(Ok(()), |s| s.psubscribe(names.as_slice())));
        self.renew_if_failed(Conn::Classic, r)
    }

    /// Unsubscribes from `channels` (from every channel for an empty list).
    ///
    /// # Errors
    /// Connection errors.
    pub fn unsubscribe<C: SubscribeArgs>(&mut self, channels: C) -> Result<()> {
        let names = channels.names();
        self.subs.unsubscribe(&names);
        let r = match self.classic.as_mut() {
            Some(s) if names.is_empty() => s.unsubscribe_all(),
            Some(s) => s.unsubscribe(names.as_slice()),
            None => Ok(()),
        };
        self.renew_if_failed(Conn::Classic, r)
    }

    /// Unsubscribes from `patterns` (from every pattern for an empty list).
    ///
    /// # Errors
    /// Connection errors.
    pub fn punsubscribe<C: SubscribeArgs>(&mut self, patterns: C) -> Result<()> {
        let names = patterns.names();
        self.subs.punsubscribe(&names);
        let r = match self.classic.as_mut() {
            Some(s) if names.is_empty() => s.punsubscribe_all(),
            Some(s) => s.punsubscribe(names.as_slice()),
            None => Ok(()),
        };
        self.renew_if_failed(Conn::Classic, r)
    }

    /// Subscribes to shard `channels`, each on the primary serving its slot; returns once
    /// every node confirmed.
    ///
    /// # Errors
    /// Connection errors; [`Error::Cluster`] when a slot has no known node.
    pub fn ssubscribe<C: SubscribeArgs>(&mut self, channels: C) -> Result<()> {
        for (slot, names) in self.subs.ssubscribe(&channels.names()) {
            let conn = Conn::Shard(slot);
            if self.subs.is_lost(conn) {
                // Subscribed where the slot is served once the connection is renewed.
                continue;
            }
            let r = match self.shards.entry(slot) {
                Entry::Occupied(e) => Ok(e.into_mut()),
                Entry::Vacant(e) => node_info(&self.client, &self.subs, conn)
                    .map(|info| e.insert(PubSub::without_reconnect(info))),
            }
            .and_then(|sub| sub.ssubscribe(names.as_slice()));
            self.renew_if_failed(conn, r)?;
        }
        Ok(())
    }

    /// Unsubscribes from shard `channels` (from every shard channel for an empty list).
    ///
    /// # Errors
    /// Connection errors.
    pub fn sunsubscribe<C: SubscribeArgs>(&mut self, channels: C) -> Result<()> {
        for (slot, names) in self.subs.sunsubscribe(&channels.names()) {
            if let Some(s) = self.shards.get_mut(&slot) {
                let r = s.sunsubscribe(names.as_slice());
                self.renew_if_failed(Conn::Shard(slot), r)?;
            }
        }
        Ok(())
    }

    /// The channels currently subscribed to.
    pub fn channels(&self) -> impl Iterator<Item = &Bytes> {
        self.subs.channels()
    }

    /// The patterns currently subscribed to.
    pub fn patterns(&self) -> impl Iterator<Item = &Bytes> {
        self.subs.patterns()
    }

    /// The shard channels currently subscribed to.
    pub fn shard_channels(&self) -> impl Iterator<Item = &Bytes> {
        self.subs.shard_channels()
    }

    /// The next message from any node, waiting up to `timeout` (`None`: until one comes).
    ///
    /// Renewals that are due (a node lost, a slot moved) are made first: a map refresh,
    /// then for each connection a new one where its names belong now, subscribed to them
    /// again. They take what is left of `timeout`, or 100 ms if that is more, each step
    /// bounded by that time (and the connections' own timeouts); those not reached in it
    /// are made on the next call. So a call lasts at most `timeout` plus 100 ms, and a
    /// failed renewal is tried again 100 ms later while the cluster cannot serve it (during
    /// a failover), so a subscription is renewed soon after it can be as long as the caller
    /// keeps calling. With `None`, each step is bounded by the connections' own timeouts
    /// only.
    ///
    /// # Errors
    /// [`Error::PubSub`] for a reply that is not a pub/sub message. A node that cannot be
    /// reached is not an error: its subscriptions are renewed where they belong once the
    /// cluster serves them again, with a
    /// [`MessageKind::Reconnected`](crate::MessageKind::Reconnected) marker.
    pub fn get_message(&mut self, timeout: Option<Duration>) -> Result<Option<Message>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if let Some(m) = self.queued.pop_front() {
                return Ok(Some(m));
            }
            self.renew_due(deadline);
            if !self.queued.is_empty() {
                continue;
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let slice = left.map_or(SLICE, |l| l.min(SLICE));
            let conns: Vec<Conn> = self
                .classic
                .as_ref()
                .map(|_| Conn::Classic)
                .into_iter()
                .chain(self.shards.keys().map(|s| Conn::Shard(*s)))
                .collect();
            if conns.is_empty() {
                // Nothing open: wait for the next renewal or the deadline, a slice at most.
                let renewal = self.subs.next_renewal().map_or(slice, |r| {
                    r.saturating_duration_since(Instant::now()).min(slice)
                });
                std::thread::sleep(renewal);
            }
            // One pass polls every connection; the last of the pass waits a slice.
            for i in 0..conns.len() {
                let which = (self.turn + i) % conns.len();
                let wait = if i + 1 == conns.len() {
                    slice
                } else {
                    Duration::ZERO
                };
                self.read_one(conns[which], wait)?;
                if !self.queued.is_empty() {
                    self.turn = which + 1;
                    break;
                }
            }
            if self.queued.is_empty() && deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
        }
    }

    /// Reads from `conn` for up to `wait`, queueing what arrives; a connection that failed,
    /// or whose slot moved, is closed and set to be renewed.
    fn read_one(&mut self, conn: Conn, wait: Duration) -> Result<()> {
        let sub = match conn {
            Conn::Classic => self.classic.as_mut(),
            Conn::Shard(slot) => self.shards.get_mut(&slot),
        };
        let Some(sub) = sub else {
            return Ok(());
        };
        let arrival = match sub.get_message(Some(wait)) {
            Ok(Some(m)) => self.subs.arrived(conn, m, Instant::now()),
            Ok(None) => return Ok(()),
            // The connection failed (it does not re-open itself): renewed where the map
            // says, by a later round.
            Err(e) => self.subs.failed(conn, e, Instant::now())?,
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
            self.subs.lost(conn, Instant::now());
            self.close(conn);
        }
        r
    }

    /// Renews the connections whose renewal is due, as many as the round's time allows
    /// (the others stay due): a fresh slot map, a connection to the node serving its names
    /// now, the names subscribed again, and the gap markers.
    fn renew_due(&mut self, deadline: Option<Instant>) {
        let Some(mut round) = self.subs.round(Instant::now(), deadline) else {
            return;
        };
        let until = round.until();
        let _ = self.client.refresh_slots_until(until);
        while let Some(conn) = round.next(Instant::now()) {
            let renewal = self.subs.renewal(conn);
            if renewal.is_empty() {
                self.subs.renewed(conn, Instant::now());
                continue;
            }
            let renewed = node_info(&self.client, &self.subs, conn).and_then(|info| {
                let mut s = PubSub::without_reconnect(info);
                s.subscribe_all_until(
                    &renewal.channels,
                    &renewal.patterns,
                    &renewal.shard_channels,
                    until,
                )?;
                Ok(s)
            });
            match renewed {
                Ok(s) => {
                    match conn {
                        Conn::Classic => self.classic = Some(s),
                        Conn::Shard(slot) => {
                            self.shards.insert(slot, s);
                        }
                    }
                    let markers = self.subs.renewed(conn, Instant::now());
                    self.queued.extend(markers);
                }
                Err(_) => self.subs.renew_failed(conn, Instant::now()),
            }
        }
    }

    /// The connection for channels and patterns, opened on a primary if none is; `None`
    /// while it waits to be renewed (the names are subscribed then).
    fn classic_sub(&mut self) -> Result<Option<&mut PubSub>> {
        if self.subs.is_lost(Conn::Classic) {
            return Ok(None);
        }
        if self.classic.is_none() {
            self.classic = Some(PubSub::without_reconnect(node_info(
                &self.client,
                &self.subs,
                Conn::Classic,
            )?));
        }
        Ok(self.classic.as_mut())
    }
}

/// Connection settings for the node `conn` belongs on now.
fn node_info(
    client: &ClusterClient,
    subs: &Subscriptions,
    conn: Conn,
) -> Result<redis_conn::ConnectionInfo> {
    let map = client.slot_map();
    let addr = subs
        .node(conn, &map)
        .ok_or_else(|| Error::Cluster(format!("no node known for {conn:?}")))?;
    Ok(client.node_info(addr, false))
}
