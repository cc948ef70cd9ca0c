//! Shard channels of several slots on one primary, which is killed: each call to a
//! cluster subscriber's `get_message` keeps to its timeout while the subscriptions wait to
//! be renewed, and each is renewed (its gap marked) soon after the cluster serves its slot
//! again, on the blocking and the async client.

use bytes::Bytes;
use redis_client::cluster::{key_slot, ClusterClient};
use redis_client::prelude::*;
use redis_client::{Message, MessageKind};
use redis_tests::TestCluster;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Slots of the killed primary with a shard channel each.
const SLOTS: usize = 5;

/// The timeout of each `get_message` call.
const TIMEOUT: Duration = Duration::from_millis(300);

/// What a call may take beyond its timeout on a loaded two-core machine: a connect
/// attempt, a map refresh and a subscription are bounded by what is left of the call, and
/// the rest is scheduling.
const SLACK: Duration = Duration::from_millis(700);

/// How long after the cluster serves the slots again each subscription must be renewed:
/// a renewal is tried every 100 ms; the rest is a loaded machine's scheduling.
const RENEWED_WITHIN: Duration = Duration::from_millis(1000);

/// What one subscriber saw from the kill on: when each call started and how long it took,
/// and when each channel's marker and first message published after the failover arrived.
#[derive(Debug, Default)]
struct Seen {
    calls: Vec<(Instant, Duration)>,
    markers: BTreeMap<String, Instant>,
    after: BTreeMap<String, Instant>,
    /// Messages in the order received, for the failure message.
    log: Vec<(Duration, MessageKind, String, String)>,
}

impl Seen {
    fn take(&mut self, m: &Message, start: Instant) {
        let channel = String::from_utf8_lossy(&m.channel).into_owned();
        let payload = String::from_utf8_lossy(&m.payload).into_owned();
        let now = Instant::now();
        self.log
            .push((now - start, m.kind, channel.clone(), payload.clone()));
        match m.kind {
            MessageKind::Reconnected => {
                self.markers.entry(channel).or_insert(now);
            }
            MessageKind::SMessage if payload == "after" => {
                self.after.entry(channel).or_insert(now);
            }
            _ => {}
        }
    }

    /// The failover's length, the longest call, and when each channel was renewed, for
    /// the test's output.
    fn summary(&self, killed_at: Instant, served_at: Instant) -> String {
        let longest = self.calls.iter().map(|(_, took)| *took).max();
        let renewed: Vec<_> = self
            .markers
            .iter()
            .map(|(c, at)| (c, at.saturating_duration_since(killed_at)))
            .collect();
        format!(
            "served again {:?} after the kill; longest call {longest:?}; renewed {renewed:?}",
            served_at - killed_at
        )
    }

    fn done(&self, channels: &[String]) -> bool {
        channels.iter().all(|c| self.after.contains_key(c))
    }

    /// Checks the calls' durations and the renewals against the failover's end.
    fn check(&self, who: &str, channels: &[String], killed_at: Instant, served_at: Instant) {
        let slow: Vec<_> = self
            .calls
            .iter()
            .filter(|(_, took)| *took > TIMEOUT + SLACK)
            .map(|(at, took)| (at.saturating_duration_since(killed_at), *took))
            .collect();
        assert!(
            slow.is_empty(),
            "{who}: calls of get_message(Some({TIMEOUT:?})) that took longer than {:?} \
             (since the kill, took): {slow:?}",
            TIMEOUT + SLACK
        );
        for c in channels {
            let marker = self.markers.get(c);
            let after = self.after.get(c);
            let (Some(marker), Some(after)) = (marker, after) else {
                panic!(
                    "{who}: {c}: marker {marker:?}, message after {after:?}; log: {:?}",
                    self.log
                );
            };
            assert!(marker <= after, "{who}: {c}: {:?}", self.log);
            assert!(
                *marker <= served_at + RENEWED_WITHIN,
                "{who}: {c} renewed {:?} after the kill, the cluster served it again {:?} \
                 after the kill; log: {:?}",
                marker.saturating_duration_since(killed_at),
                served_at.saturating_duration_since(killed_at),
                self.log
            );
        }
    }
}

/// Channels in `SLOTS` distinct slots served by `victim`, then one served elsewhere.
fn channels(c: &ClusterClient, victim: u16) -> Vec<String> {
    let victim_addr = format!("127.0.0.1:{victim}");
    let map = c.slot_map();
    let on_victim = |ch: &String| {
        map.node(key_slot(ch.as_bytes()), Default::default()) == Some(victim_addr.as_str())
    };
    let mut slots = Vec::new();
    let mut channels = Vec::new();
    for ch in (0..).map(|i| format!("sh:{i}")) {
        if channels.len() == SLOTS {
            break;
        }
        let slot = key_slot(ch.as_bytes());
        if on_victim(&ch) && !slots.contains(&slot) {
            slots.push(slot);
            channels.push(ch);
        }
    }
    channels.extend(
        (0..)
            .map(|i| format!("other:{i}"))
            .find(|ch| !on_victim(ch)),
    );
    channels
}

/// The channel of `m` if it is a message published before the kill.
fn before(m: &Message) -> Option<Bytes> {
    (m.kind == MessageKind::SMessage && m.payload == "before").then(|| m.channel.clone())
}

/// The async twin of the blocking subscriber's part: subscribes, says so, reads the first
/// message of every channel, says so, then reads from the kill on (its instant comes through
/// `go`) until every channel has a message published after the failover, or 20 s.
fn async_subscriber(
    urls: Vec<String>,
    channels: Vec<String>,
    ready: mpsc::Sender<()>,
    go: mpsc::Receiver<Instant>,
) -> Seen {
    use redis_client::cluster::aio::ClusterClient;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let c = ClusterClient::open(&urls).await.expect("open");
        let mut sub = c.pubsub();
        sub.ignore_subscribe_messages(true);
        for ch in &channels {
            sub.ssubscribe(ch.as_str()).await.unwrap();
        }
        ready.send(()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut got = BTreeSet::new();
        while got.len() < channels.len() && Instant::now() < deadline {
            if let Some(m) = sub.get_message(Some(TIMEOUT)).await.unwrap() {
                got.extend(before(&m));
            }
        }
        assert_eq!(
            got.len(),
            channels.len(),
            "async: every channel's first message"
        );
        ready.send(()).unwrap();
        let killed_at = go.recv().unwrap();
        let mut seen = Seen::default();
        let give_up = killed_at + Duration::from_secs(20);
        while !seen.done(&channels) && Instant::now() < give_up {
            let start = Instant::now();
            let got = sub.get_message(Some(TIMEOUT)).await.unwrap();
            seen.calls.push((start, start.elapsed()));
            if let Some(m) = got {
                seen.take(&m, killed_at);
            }
        }
        seen
    })
}

#[test]
fn shard_channels_of_a_killed_primary_are_renewed_promptly_within_each_calls_timeout() {
    let mut cluster = TestCluster::start();
    let c = ClusterClient::open(&cluster.urls()).expect("open");
    let victim = cluster.primaries()[0];
    let replicas = cluster.replicas_of(victim);
    assert_eq!(replicas.len(), 1, "the victim has a replica");
    let channels = channels(&c, victim);

    // A blocking and an async subscriber to every channel, each with its first message.
    let (ready, is_ready) = mpsc::channel();
    let (go, gone) = mpsc::channel();
    let twin = {
        let (urls, channels) = (cluster.urls(), channels.clone());
        std::thread::spawn(move || async_subscriber(urls, channels, ready, gone))
    };
    let mut sub = c.pubsub();
    sub.ignore_subscribe_messages(true);
    for ch in &channels {
        sub.ssubscribe(ch.as_str()).unwrap();
    }
    is_ready.recv().expect("the async subscriber subscribed");
    // Published again until both have one on every channel: the async subscriber's
    // SSUBSCRIBE is written, not yet confirmed, when it says it subscribed.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = BTreeSet::new();
    let mut twin_got = false;
    while (got.len() < channels.len() || !twin_got) && Instant::now() < deadline {
        for ch in &channels {
            c.spublish(ch.as_str(), "before").unwrap();
        }
        while let Some(m) = sub.get_message(Some(TIMEOUT)).unwrap() {
            got.extend(before(&m));
        }
        twin_got |= is_ready.try_recv().is_ok();
    }
    assert_eq!(
        got.len(),
        channels.len(),
        "blocking: every channel's first message"
    );
    assert!(twin_got, "async: every channel's first message");

    // Both read from the kill on, the blocking one on a thread of its own, while this one
    // waits for the failover and then publishes to every channel every 50 ms (it owns
    // the cluster, so a failed check stops the servers).
    let killed_at = Instant::now();
    cluster.kill(victim);
    go.send(killed_at).unwrap();
    let blocking = {
        let channels = channels.clone();
        std::thread::spawn(move || {
            let mut seen = Seen::default();
            let give_up = killed_at + Duration::from_secs(20);
            while !seen.done(&channels) && Instant::now() < give_up {
                let start = Instant::now();
                let got = sub.get_message(Some(TIMEOUT)).unwrap();
                seen.calls.push((start, start.elapsed()));
                if let Some(m) = got {
                    seen.take(&m, killed_at);
                }
            }
            seen
        })
    };
    cluster.wait_failover(&replicas);
    let served_at = Instant::now();
    while !(blocking.is_finished() && twin.is_finished()) {
        for ch in &channels {
            let _ = c.spublish(ch.as_str(), "after");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let seen = blocking.join().unwrap();
    let twin = twin.join().unwrap();
    let both = [("blocking", &seen), ("async", &twin)];
    for (who, seen) in both {
        eprintln!("{who}: {}", seen.summary(killed_at, served_at));
    }
    for (who, seen) in both {
        seen.check(who, &channels[..SLOTS], killed_at, served_at);
        // The channel served elsewhere was never renewed.
        assert!(
            !seen.markers.contains_key(&channels[SLOTS]),
            "{:?}",
            seen.log
        );
    }
}
