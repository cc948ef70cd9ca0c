//! What a cluster subscriber is subscribed to and where, without I/O: channels and
//! patterns on one connection, shard channels on one connection per slot; which
//! connection must be renewed (its node went away, or the server dropped a shard channel
//! whose slot moved), when, with what, how much of a call renewals may take, and the gap
//! markers to hand out. The blocking [`ClusterPubSub`](super::ClusterPubSub) and the async
//! [`aio::ClusterPubSub`](super::aio::ClusterPubSub) both drive it; the time is passed in.

use super::router::{key_slot, ReadFrom, SlotMap};
use crate::{Error, ErrorKind, Message, MessageKind};
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// The wait before trying again to renew a connection whose node could not be reached,
/// or which failed again just after it was renewed.
pub(super) const RENEW_BACKOFF: Duration = Duration::from_millis(100);

/// What a call may spend on renewals past its own deadline: a map refresh, a connect and
/// a subscription take a few milliseconds on a local network, so a caller polling with a
/// zero timeout still renews, and a call lasts at most this past its timeout.
pub(super) const MIN_RENEW_BUDGET: Duration = Duration::from_millis(100);

/// One of a cluster subscriber's connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Conn {
    /// Channels and patterns, on any primary.
    Classic,
    /// The shard channels of one slot, on the primary serving it.
    Shard(u16),
}

/// What to do with a message that arrived on a connection.
#[derive(Debug)]
pub(super) enum Arrival {
    /// Hand it to the caller.
    Deliver(Message),
    /// Skip it (a confirmation the caller asked not to see).
    Skip,
    /// The server dropped a shard channel because its slot moved: close the connection;
    /// it is renewed where the slot is served now.
    Renew,
}

/// One call's renewals: the connections due, in turn, while the call's time lasts. Those
/// not reached stay due, for the next call.
#[derive(Debug)]
pub(super) struct Round {
    due: std::vec::IntoIter<Conn>,
    until: Option<Instant>,
}

impl Round {
    /// The deadline of every step of the round (the map refresh, each connection's opening
    /// and subscription); `None`: each is bounded by the connections' own timeouts.
    pub(super) fn until(&self) -> Option<Instant> {
        self.until
    }

    /// The next connection to renew, or `None` once every one due was tried or the round's
    /// time is up (the others stay due).
    pub(super) fn next(&mut self, now: Instant) -> Option<Conn> {
        if self.until.is_some_and(|u| now >= u) {
            return None;
        }
        self.due.next()
    }
}

/// The names to subscribe again on a renewed connection.
#[derive(Debug, Default)]
pub(super) struct Renewal {
    pub(super) channels: Vec<Bytes>,
    pub(super) patterns: Vec<Bytes>,
    pub(super) shard_channels: Vec<Bytes>,
}

impl Renewal {
    /// True when nothing is left to subscribe: no connection is needed.
    pub(super) fn is_empty(&self) -> bool {
        self.channels.is_empty() && self.patterns.is_empty() && self.shard_channels.is_empty()
    }
}

/// The subscriptions of a cluster subscriber.
#[derive(Debug, Default)]
pub(super) struct Subscriptions {
    channels: BTreeSet<Bytes>,
    patterns: BTreeSet<Bytes>,
    shards: BTreeMap<u16, BTreeSet<Bytes>>,
    /// Connections lost and when to renew each.
    renew_at: BTreeMap<Conn, Instant>,
    /// When each connection was last renewed, so one that fails again at once waits.
    renewed_at: BTreeMap<Conn, Instant>,
    ignore_confirmations: bool,
}

impl Subscriptions {
    /// Skips subscribe and unsubscribe confirmations (`true`) or delivers them.
    pub(super) fn ignore_confirmations(&mut self, ignore: bool) {
        self.ignore_confirmations = ignore;
    }

    /// Records channels subscribed to (on [`Conn::Classic`]).
    pub(super) fn subscribe(&mut self, names: &[Bytes]) {
        self.channels.extend(names.iter().cloned());
    }

    /// Records patterns subscribed to (on [`Conn::Classic`]).
    pub(super) fn psubscribe(&mut self, names: &[Bytes]) {
        self.patterns.extend(names.iter().cloned());
    }

    /// Forgets channels (all of them for an empty list).
    pub(super) fn unsubscribe(&mut self, names: &[Bytes]) {
        remove(&mut self.channels, names);
    }

    /// Forgets patterns (all of them for an empty list).
    pub(super) fn punsubscribe(&mut self, names: &[Bytes]) {
        remove(&mut self.patterns, names);
    }

    /// Records shard channels and returns them grouped by slot: one `SSUBSCRIBE` may name
    /// channels of one slot only.
    pub(super) fn ssubscribe(&mut self, names: &[Bytes]) -> BTreeMap<u16, Vec<Bytes>> {
        let by_slot = by_slot(names);
        for (slot, names) in &by_slot {
            self.shards
                .entry(*slot)
                .or_default()
                .extend(names.iter().cloned());
        }
        by_slot
    }

    /// Forgets shard channels and returns them grouped by slot, each slot's still
    /// subscribed on its connection (an empty list: every shard channel).
    pub(super) fn sunsubscribe(&mut self, names: &[Bytes]) -> BTreeMap<u16, Vec<Bytes>> {
        let by_slot = if names.is_empty() {
            std::mem::take(&mut self.shards)
                .into_iter()
                .map(|(slot, set)| (slot, set.into_iter().collect()))
                .collect()
        } else {
            by_slot(names)
        };
        for (slot, names) in &by_slot {
            if let Some(set) = self.shards.get_mut(slot) {
                for n in names {
                    set.remove(n);
                }
            }
        }
        by_slot
    }

    /// The channels subscribed to.
    pub(super) fn channels(&self) -> impl Iterator<Item = &Bytes> {
        self.channels.iter()
    }

    /// The patterns subscribed to.
    pub(super) fn patterns(&self) -> impl Iterator<Item = &Bytes> {
        self.patterns.iter()
    }

    /// The shard channels subscribed to.
    pub(super) fn shard_channels(&self) -> impl Iterator<Item = &Bytes> {
        self.shards.values().flatten()
    }

    /// Judges a message from `conn`. A server's `sunsubscribe` of a shard channel still
    /// wanted means its slot moved: the connection is to be renewed at once.
    pub(super) fn arrived(&mut self, conn: Conn, m: Message, now: Instant) -> Arrival {
        if let (Conn::Shard(slot), MessageKind::SUnsubscribe) = (conn, m.kind) {
            let wanted = self
                .shards
                .get(&slot)
                .is_some_and(|set| set.contains(&m.channel));
            if wanted {
                self.lost(conn, now);
                return Arrival::Renew;
            }
        }
        if m.kind.is_confirmation() && self.ignore_confirmations {
            return Arrival::Skip;
        }
        Arrival::Deliver(m)
    }

    /// Judges a failed read on `conn`: a reply that is not a pub/sub message is the
    /// caller's error; anything else (its node gone, the connection in doubt, a slot served
    /// elsewhere) closes the connection, to be renewed where the map says.
    pub(super) fn failed(&mut self, conn: Conn, e: Error, now: Instant) -> Result<Arrival, Error> {
        if e.kind() == ErrorKind::PubSub {
            return Err(e);
        }
        self.lost(conn, now);
        Ok(Arrival::Renew)
    }

    /// `conn` failed (its node cannot be reached, or it is in doubt): renew it now, or
    /// after [`RENEW_BACKOFF`] when it was renewed less than that ago.
    pub(super) fn lost(&mut self, conn: Conn, now: Instant) {
        let at = match self.renewed_at.get(&conn) {
            Some(t) => now.max(*t + RENEW_BACKOFF),
            None => now,
        };
        self.renew_at.insert(conn, at);
    }

    /// True when `conn` waits to be renewed.
    pub(super) fn is_lost(&self, conn: Conn) -> bool {
        self.renew_at.contains_key(&conn)
    }

    /// The connections whose renewal is due at `now`.
    pub(super) fn due(&self, now: Instant) -> Vec<Conn> {
        self.renew_at
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(c, _)| *c)
            .collect()
    }

    /// The renewals due at `now` for a call that ends at `deadline` (`None`: one that waits
    /// for a message however long), if any: they may take until the deadline, or
    /// [`MIN_RENEW_BUDGET`] from `now` if that is later, so that they never make the call
    /// last much longer than asked and yet a call about to end still renews.
    pub(super) fn round(&self, now: Instant, deadline: Option<Instant>) -> Option<Round> {
        let due = self.due(now);
        if due.is_empty() {
            return None;
        }
        Some(Round {
            due: due.into_iter(),
            until: deadline.map(|d| d.max(now + MIN_RENEW_BUDGET)),
        })
    }

    /// When the next renewal falls due, if one waits.
    pub(super) fn next_renewal(&self) -> Option<Instant> {
        self.renew_at.values().min().copied()
    }

    /// The node `conn` belongs on in `map`: any primary (the first) for channels and
    /// patterns, the slot's primary for shard channels.
    pub(super) fn node<'m>(&self, conn: Conn, map: &'m SlotMap) -> Option<&'m str> {
        match conn {
            Conn::Classic => map.primaries().first().copied(),
            Conn::Shard(slot) => map.node(slot, ReadFrom::Primary),
        }
    }

    /// What to subscribe to again on a new connection for `conn`.
    pub(super) fn renewal(&self, conn: Conn) -> Renewal {
        match conn {
            Conn::Classic => Renewal {
                channels: self.channels.iter().cloned().collect(),
                patterns: self.patterns.iter().cloned().collect(),
                shard_channels: Vec::new(),
            },
            Conn::Shard(slot) => Renewal {
                shard_channels: self
                    .shards
                    .get(&slot)
                    .map(|s| s.iter().cloned().collect())
                    .unwrap_or_default(),
                ..Renewal::default()
            },
        }
    }

    /// `conn` was renewed: the gap markers to hand out, one per shard channel renewed (one
    /// with an empty channel for channels and patterns).
    pub(super) fn renewed(&mut self, conn: Conn, now: Instant) -> Vec<Message> {
        self.renew_at.remove(&conn);
        self.renewed_at.insert(conn, now);
        match conn {
            Conn::Classic if self.channels.is_empty() && self.patterns.is_empty() => Vec::new(),
            Conn::Classic => vec![marker(Bytes::new())],
            Conn::Shard(slot) => self
                .shards
                .get(&slot)
                .map(|s| s.iter().cloned().map(marker).collect())
                .unwrap_or_default(),
        }
    }

    /// Renewing `conn` failed (the cluster cannot serve it yet): try again later.
    pub(super) fn renew_failed(&mut self, conn: Conn, now: Instant) {
        self.renew_at.insert(conn, now + RENEW_BACKOFF);
    }
}

fn by_slot(names: &[Bytes]) -> BTreeMap<u16, Vec<Bytes>> {
    let mut by_slot: BTreeMap<u16, Vec<Bytes>> = BTreeMap::new();
    for n in names {
        by_slot.entry(key_slot(n)).or_default().push(n.clone());
    }
    by_slot
}

fn remove(set: &mut BTreeSet<Bytes>, names: &[Bytes]) {
    if names.is_empty() {
        set.clear();
    }
    for n in names {
        set.remove(n);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sunsubscribe(channel: &str) -> Message {
        Message {
            kind: MessageKind::SUnsubscribe,
            channel: Bytes::copy_from_slice(channel.as_bytes()),
            pattern: None,
            payload: Bytes::from_static(b"0"),
        }
    }

    #[test]
    fn a_dropped_shard_channel_renews_its_slot_with_a_marker_per_channel() {
        let t0 = Instant::now();
        let mut s = Subscriptions::default();
        let names = [Bytes::from("a{x}"), Bytes::from("b{x}"), Bytes::from("c")];
        let by_slot = s.ssubscribe(&names);
        let slot = key_slot(b"x");
        assert_eq!(by_slot[&slot].len(), 2);
        let conn = Conn::Shard(slot);
        // The server dropping a channel still wanted: renew.
        assert!(matches!(
            s.arrived(conn, sunsubscribe("a{x}"), t0),
            Arrival::Renew
        ));
        assert_eq!(s.due(t0), vec![conn]);
        assert_eq!(s.renewal(conn).shard_channels.len(), 2);
        let markers = s.renewed(conn, t0);
        assert_eq!(markers.len(), 2);
        assert!(markers.iter().all(|m| m.kind == MessageKind::Reconnected));
        assert!(s.due(t0).is_empty());
        // Failing again at once waits the backoff.
        s.lost(conn, t0);
        assert!(s.due(t0).is_empty());
        assert_eq!(s.next_renewal(), Some(t0 + RENEW_BACKOFF));
        // The caller's own SUNSUBSCRIBE is a confirmation, not a renewal.
        s.sunsubscribe(&[Bytes::from("b{x}")]);
        assert!(matches!(
            s.arrived(conn, sunsubscribe("b{x}"), t0),
            Arrival::Deliver(_)
        ));
        s.ignore_confirmations(true);
        assert!(matches!(
            s.arrived(conn, sunsubscribe("b{x}"), t0),
            Arrival::Skip
        ));
    }

    #[test]
    fn a_round_of_renewals_keeps_to_the_call_and_leaves_the_rest_due() {
        let t0 = Instant::now();
        let mut s = Subscriptions::default();
        let names: Vec<Bytes> = (0..3).map(|i| Bytes::from(format!("ch:{i}"))).collect();
        let slots: Vec<Conn> = s
            .ssubscribe(&names)
            .keys()
            .map(|&k| Conn::Shard(k))
            .collect();
        assert_eq!(slots.len(), 3, "three slots");
        assert!(s.round(t0, None).is_none(), "nothing is due");
        for &c in &slots {
            s.lost(c, t0);
        }

        // A call with time left: the round ends at its deadline.
        let deadline = t0 + Duration::from_millis(300);
        let mut round = s.round(t0, Some(deadline)).unwrap();
        assert_eq!(round.until(), Some(deadline));
        assert_eq!(round.next(t0), Some(slots[0]));
        s.renewed(slots[0], t0);
        // Its time is up: the others are carried over to the next call, still due.
        assert_eq!(round.next(deadline), None);
        assert_eq!(s.due(deadline), slots[1..].to_vec());

        // A call about to end (or polling) still gets the least budget.
        let late = deadline + Duration::from_millis(5);
        let mut round = s.round(late, Some(late)).unwrap();
        assert_eq!(round.until(), Some(late + MIN_RENEW_BUDGET));
        assert_eq!(round.next(late), Some(slots[1]));
        s.renew_failed(slots[1], late);
        assert_eq!(round.next(late), Some(slots[2]));
        assert_eq!(round.next(late), None);
        // A call with no timeout is bounded by the connections' own timeouts.
        assert_eq!(s.round(late, None).unwrap().until(), None);
        // The last is due since it was lost; once renewed, the next renewal is the one
        // that failed, after the backoff.
        assert_eq!(s.next_renewal(), Some(t0));
        s.renewed(slots[2], late);
        assert_eq!(s.next_renewal(), Some(late + RENEW_BACKOFF));

        // A read failing: a reply that is not a message is the caller's error, anything
        // else renews the connection.
        let bad = Error::PubSub("unexpected integer".into());
        assert!(s.failed(slots[0], bad, late).is_err());
        assert!(!s.is_lost(slots[0]));
        let gone = Error::Cluster("gone".into());
        assert!(matches!(s.failed(slots[0], gone, late), Ok(Arrival::Renew)));
        assert!(s.is_lost(slots[0]));
    }
}
