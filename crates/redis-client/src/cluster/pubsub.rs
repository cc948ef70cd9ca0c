//! Pub/sub on a cluster: channels and patterns on any one node, shard channels on the
//! node serving their slot, each renewed where it belongs after a failover or a reshard.

use super::client::ClusterClient;
use super::router::{key_slot, ReadFrom};
use crate::pubsub::SubscribeArgs;
use crate::{Error, Message, MessageKind, PubSub, Result};
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

/// How long a subscriber waits on one node's connection at a time while others may have
/// messages: short, so a message on another node waits little.
const SLICE: Duration = Duration::from_millis(5);

/// The wait before trying again to renew subscriptions whose node could not be reached.
const RENEW_BACKOFF: Duration = Duration::from_millis(100);

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
/// [`MessageKind::Reconnected`] message marks the gap: its `channel` names the shard
/// channel renewed (empty for channels and patterns). Messages published in between are
/// lost; Redis pub/sub keeps nothing.
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
    ignore_subscribe_messages: bool,
    /// Channels and patterns, on one node.
    classic: Subscriber,
    channels: BTreeSet<Bytes>,
    patterns: BTreeSet<Bytes>,
    /// Shard channels per slot, each slot on its own connection.
    shards: BTreeMap<u16, (Subscriber, BTreeSet<Bytes>)>,
    queued: VecDeque<Message>,
    /// Which subscriber waits next, so none is starved.
    turn: usize,
}

/// One connection's subscriber, or the time to try renewing it again.
#[derive(Debug, Default)]
struct Subscriber {
    sub: Option<PubSub>,
    /// Set when the connection failed for good: renew at this instant.
    renew_at: Option<Instant>,
}

impl ClusterClient {
    /// A subscriber for this cluster; nothing is opened until the first subscription.
    pub fn pubsub(&self) -> ClusterPubSub {
        ClusterPubSub {
            client: self.clone(),
            ignore_subscribe_messages: false,
            classic: Subscriber::default(),
            channels: BTreeSet::new(),
            patterns: BTreeSet::new(),
            shards: BTreeMap::new(),
            queued: VecDeque::new(),
            turn: 0,
        }
    }
}

impl ClusterPubSub {
    /// Skip subscribe/unsubscribe confirmations in [`get_message`](Self::get_message).
    pub fn ignore_subscribe_messages(&mut self, ignore: bool) -> &mut Self {
        self.ignore_subscribe_messages = ignore;
        self
    }

    /// Subscribes to `channels`; returns once the server confirmed them.
    ///
    /// # Errors
    /// Connection errors; [`Error::Cluster`] when no node is known.
    pub fn subscribe<C: SubscribeArgs>(&mut self, channels: C) -> Result<()> {
        let names = channels.names();
        self.channels.extend(names.iter().cloned());
        self.classic_sub()?.subscribe(names.as_slice())
    }

    /// Subscribes to `patterns`; returns once the server confirmed them.
    ///
    /// # Errors
    /// As [`subscribe`](Self::subscribe).
    pub fn psubscribe<C: SubscribeArgs>(&mut self, patterns: C) -> Result<()> {
        let names = patterns.names();
        self.patterns.extend(names.iter().cloned());
        self.classic_sub()?.psubscribe(names.as_slice())
    }

    /// Unsubscribes from `channels`.
    ///
    /// # Errors
    /// Connection errors.
    pub fn unsubscribe<C: SubscribeArgs>(&mut self, channels: C) -> Result<()> {
        let names = channels.names();
        for n in &names {
            self.channels.remove(n);
        }
        match self.classic.sub.as_mut() {
            Some(s) if !names.is_empty() => s.unsubscribe(names.as_slice()),
            _ => Ok(()),
        }
    }

    /// Subscribes to shard `channels`, each on the primary serving its slot; returns once
    /// every node confirmed.
    ///
    /// # Errors
    /// Connection errors; [`Error::Cluster`] when a slot has no known node.
    pub fn ssubscribe<C: SubscribeArgs>(&mut self, channels: C) -> Result<()> {
        let mut by_slot: BTreeMap<u16, Vec<Bytes>> = BTreeMap::new();
        for n in channels.names() {
            by_slot.entry(key_slot(&n)).or_default().push(n);
        }
        for (slot, names) in by_slot {
            let (subscriber, set) = self.shards.entry(slot).or_default();
            set.extend(names.iter().cloned());
            if subscriber.sub.is_none() {
                subscriber.sub = Some(PubSub::new(node_info(&self.client, slot)?));
            }
            if let Some(s) = subscriber.sub.as_mut() {
                s.ssubscribe(names.as_slice())?;
            }
        }
        Ok(())
    }

    /// Unsubscribes from shard `channels`.
    ///
    /// # Errors
    /// Connection errors.
    pub fn sunsubscribe<C: SubscribeArgs>(&mut self, channels: C) -> Result<()> {
        for n in channels.names() {
            let slot = key_slot(&n);
            if let Some((subscriber, set)) = self.shards.get_mut(&slot) {
                set.remove(&n);
                if let Some(s) = subscriber.sub.as_mut() {
                    s.sunsubscribe(&[n][..])?;
                }
            }
        }
        Ok(())
    }

    /// The shard channels currently subscribed to.
    pub fn shard_channels(&self) -> impl Iterator<Item = &Bytes> {
        self.shards.values().flat_map(|(_, set)| set.iter())
    }

    /// The next message from any node, waiting up to `timeout` (`None`: until one comes).
    ///
    /// # Errors
    /// [`Error::PubSub`] for a reply that is not a pub/sub message. A node that cannot be
    /// reached is not an error: its subscriptions are renewed where they belong once the
    /// cluster serves them again, with a [`MessageKind::Reconnected`] marker.
    pub fn get_message(&mut self, timeout: Option<Duration>) -> Result<Option<Message>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if let Some(m) = self.queued.pop_front() {
                return Ok(Some(m));
            }
            self.renew_due();
            let count = 1 + self.shards.len();
            // One pass polls every connection; the last of the pass waits a slice.
            for i in 0..count {
                let which = (self.turn + i) % count;
                let last = i + 1 == count;
                let wait = if last {
                    let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                    Some(left.map_or(SLICE, |l| l.min(SLICE)))
                } else {
                    Some(Duration::ZERO)
                };
                self.read_one(which, wait)?;
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

    /// Reads from subscriber `which` (0: channels and patterns; then the slots in order)
    /// for up to `wait`, queueing what arrives; a subscriber that failed is set to renew.
    fn read_one(&mut self, which: usize, wait: Option<Duration>) -> Result<()> {
        let slot = if which == 0 {
            None
        } else {
            self.shards.keys().nth(which - 1).copied()
        };
        let subscriber = match slot {
            None => &mut self.classic,
            Some(s) => match self.shards.get_mut(&s) {
                Some((sub, _)) => sub,
                None => return Ok(()),
            },
        };
        let Some(sub) = subscriber.sub.as_mut() else {
            if wait.is_some_and(|w| !w.is_zero()) {
                std::thread::sleep(wait.unwrap_or_default());
            }
            return Ok(());
        };
        match sub.get_message(wait) {
            Ok(Some(m)) => self.arrived(slot, m),
            Ok(None) => {}
            Err(e) if e.kind() == crate::ErrorKind::PubSub => return Err(e),
            // The subscriber could not re-open its connection: its node is gone. Renew
            // its subscriptions where they belong now.
            Err(_) => {
                subscriber.sub = None;
                subscriber.renew_at = Some(Instant::now());
            }
        }
        Ok(())
    }

    /// Queues a message from `slot`'s subscriber (`None`: channels and patterns), unless
    /// it is the server unsubscribing a shard channel whose slot moved: then the slot's
    /// subscriptions are renewed at its new owner.
    fn arrived(&mut self, slot: Option<u16>, m: Message) {
        if let (Some(slot), MessageKind::SUnsubscribe) = (slot, m.kind) {
            let wanted = self
                .shards
                .get(&slot)
                .is_some_and(|(_, set)| set.contains(&m.channel));
            if wanted {
                if let Some((subscriber, _)) = self.shards.get_mut(&slot) {
                    subscriber.sub = None;
                    subscriber.renew_at = Some(Instant::now());
                }
                return;
            }
        }
        if m.kind.is_confirmation() && self.ignore_subscribe_messages {
            return;
        }
        self.queued.push_back(m);
    }

    /// Renews every subscriber whose renewal is due: a fresh slot map, a connection to the
    /// node serving its names now, the names subscribed again, and a marker.
    fn renew_due(&mut self) {
        let now = Instant::now();
        let due = |s: &Subscriber| s.sub.is_none() && s.renew_at.is_some_and(|t| t <= now);
        let mut refreshed = false;
        if due(&self.classic) {
            let _ = self.client.refresh_slots();
            refreshed = true;
            self.classic.renew_at = None;
            let channels: Vec<Bytes> = self.channels.iter().cloned().collect();
            let patterns: Vec<Bytes> = self.patterns.iter().cloned().collect();
            let ignore = self.ignore_subscribe_messages;
            let renewed = self.classic_sub().and_then(|s| {
                s.ignore_subscribe_messages(true);
                s.subscribe(channels.as_slice())?;
                s.psubscribe(patterns.as_slice())?;
                s.ignore_subscribe_messages(ignore);
                Ok(())
            });
            match renewed {
                Ok(()) => self.queued.push_back(marker(Bytes::new())),
                Err(_) => {
                    self.classic.sub = None;
                    self.classic.renew_at = Some(now + RENEW_BACKOFF);
                }
            }
        }
        let slots: Vec<u16> = self
            .shards
            .iter()
            .filter(|(_, (s, _))| due(s))
            .map(|(slot, _)| *slot)
            .collect();
        for slot in slots {
            if !refreshed {
                let _ = self.client.refresh_slots();
                refreshed = true;
            }
            let Some((subscriber, names)) = self.shards.get_mut(&slot) else {
                continue;
            };
            let names: Vec<Bytes> = names.iter().cloned().collect();
            let renewed = node_info(&self.client, slot).and_then(|info| {
                let mut s = PubSub::new(info);
                s.ignore_subscribe_messages(true);
                s.ssubscribe(names.as_slice())?;
                Ok(s)
            });
            match renewed {
                Ok(mut s) => {
                    s.ignore_subscribe_messages(self.ignore_subscribe_messages);
                    subscriber.sub = Some(s);
                    subscriber.renew_at = None;
                    for n in names {
                        self.queued.push_back(marker(n));
                    }
                }
                Err(_) => subscriber.renew_at = Some(now + RENEW_BACKOFF),
            }
        }
    }

    /// The subscriber for channels and patterns, opened on a primary if none is.
    fn classic_sub(&mut self) -> Result<&mut PubSub> {
        if self.classic.sub.is_none() {
            let map = self.client.slot_map();
            let addr = map
                .primaries()
                .first()
                .map(|a| (*a).to_owned())
                .ok_or_else(|| Error::Cluster("no primary known".into()))?;
            let mut sub = PubSub::new(self.client.node_info(&addr, false));
            sub.ignore_subscribe_messages(self.ignore_subscribe_messages);
            self.classic.sub = Some(sub);
        }
        // Just ensured above.
        Ok(self.classic.sub.as_mut().expect("opened above"))
    }
}

/// Connection settings for the primary serving `slot`.
fn node_info(client: &ClusterClient, slot: u16) -> Result<redis_conn::ConnectionInfo> {
    let map = client.slot_map();
    let addr = map
        .node(slot, ReadFrom::Primary)
        .ok_or_else(|| Error::Cluster(format!("slot {slot} has no node")))?;
    Ok(client.node_info(addr, false))
}

/// The gap marker for a renewed shard channel (`channel` empty for channels and patterns).
fn marker(channel: Bytes) -> Message {
    Message {
        kind: MessageKind::Reconnected,
        channel,
        pattern: None,
        payload: Bytes::new(),
    }
}
