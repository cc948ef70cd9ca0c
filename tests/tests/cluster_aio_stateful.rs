//! The async cluster client's stateful features against a real six-node cluster: pub/sub
//! (channels, patterns, shard channels renewed after a slot migration and a primary
//! failover, the gap marked), WATCH transactions in one slot (retried on abort, refused
//! before sending across slots), and SCAN over the whole cluster as one stream (exact key
//! set, MATCH, TYPE, text mode, and a primary killed mid-walk).

use redis_client::cluster::aio::{ClusterClient, ClusterPubSub};
use redis_client::cluster::key_slot;
use redis_client::futures_core::Stream;
use redis_client::prelude::*;
use redis_client::{ErrorKind, Message, MessageKind, ScanOptions, Value};
use redis_tests::{assert_gap_before, TestCluster};
use std::collections::HashSet;
use std::future::poll_fn;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The next item of a stream.
async fn next<S: Stream + Unpin>(s: &mut S) -> Option<S::Item> {
    poll_fn(|cx| std::pin::Pin::new(&mut *s).poll_next(cx)).await
}

/// Messages from `sub` until `done` says enough, publishing with `nudge` every 100 ms;
/// at most 15 s.
async fn receive<N, F>(
    sub: &mut ClusterPubSub,
    nudge: N,
    done: impl Fn(&[Message]) -> bool,
) -> Vec<Message>
where
    N: Fn() -> F,
    F: std::future::Future<Output = ()>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut got = Vec::new();
    while Instant::now() < deadline && !done(&got) {
        nudge().await;
        while let Some(m) = sub
            .get_message(Some(Duration::from_millis(100)))
            .await
            .unwrap()
        {
            got.push(m);
        }
    }
    got
}

fn has(got: &[Message], kind: MessageKind, channel: &str, payload: &str) -> bool {
    got.iter()
        .any(|m| m.kind == kind && m.channel == channel.as_bytes() && m.payload == payload)
}

/// Calls of `command` served by the running nodes so far (INFO commandstats).
fn calls(cluster: &mut TestCluster, command: &str) -> u64 {
    let prefix = format!("cmdstat_{command}:calls=");
    cluster
        .nodes()
        .map(|n| {
            n.raw(&["INFO", "commandstats"])
                .lines()
                .find_map(|l| l.strip_prefix(prefix.as_str()))
                .and_then(|l| l.split(',').next())
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum()
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit_once(':').unwrap().1.parse().unwrap()
}

/// A name with prefix `prefix` whose slot the primary at `addr` serves and no key uses.
fn name_on(c: &ClusterClient, addr: &str, prefix: &str) -> String {
    let map = c.slot_map();
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .find(|n| map.node(key_slot(n.as_bytes()), Default::default()) == Some(addr))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_cluster_pubsub_watch_and_scan() {
    let mut cluster = TestCluster::start();
    let c = ClusterClient::open(&cluster.urls()).await.expect("open");
    c.flushall(None).await.unwrap();
    let primaries: Vec<String> = c
        .slot_map()
        .primaries()
        .iter()
        .map(|a| (*a).to_owned())
        .collect();
    assert_eq!(primaries.len(), 3);

    // Channels and patterns on one node hear PUBLISH from any node; shard channels are
    // subscribed on the node owning each one's slot.
    let victim = primaries[0].clone();
    let (mover_from, mover_to) = (primaries[1].clone(), primaries[2].clone());
    let on_victim = name_on(&c, &victim, "ch:");
    let moving = name_on(&c, &mover_from, "mv:");
    let (cc, ov, mv) = (&c, on_victim.as_str(), moving.as_str());
    let mut sub = c.pubsub();
    sub.subscribe("news").await.unwrap();
    sub.psubscribe("ev:*").await.unwrap();
    sub.ssubscribe([on_victim.as_str(), moving.as_str()])
        .await
        .unwrap();
    let got = receive(
        &mut sub,
        || async move {
            cc.publish("news", "n1").await.unwrap();
            cc.publish("ev:1", "e1").await.unwrap();
            cc.spublish(ov, "s1").await.unwrap();
            cc.spublish(mv, "m1").await.unwrap();
        },
        |got| {
            has(got, MessageKind::Message, "news", "n1")
                && has(got, MessageKind::SMessage, &on_victim, "s1")
                && has(got, MessageKind::SMessage, &moving, "m1")
                && got.iter().any(|m| m.kind == MessageKind::PMessage)
        },
    )
    .await;
    assert!(has(&got, MessageKind::Message, "news", "n1"), "{got:?}");
    assert!(
        got.iter().any(|m| m.kind == MessageKind::PMessage
            && m.pattern.as_deref() == Some(&b"ev:*"[..])
            && m.payload == "e1"),
        "{got:?}"
    );
    assert!(
        has(&got, MessageKind::SMessage, &on_victim, "s1"),
        "{got:?}"
    );
    assert!(has(&got, MessageKind::SMessage, &moving, "m1"), "{got:?}");
    assert!(
        got.iter().any(|m| m.kind == MessageKind::SSubscribe),
        "confirmations are delivered unless ignored: {got:?}"
    );
    assert_eq!(sub.shard_channels().count(), 2);
    sub.ignore_subscribe_messages(true);

    // A slot migration: the source drops the shard channel, which is renewed at the
    // target, the gap marked.
    let slot = key_slot(moving.as_bytes()).to_string();
    let (from_port, to_port) = (port_of(&mover_from), port_of(&mover_to));
    let (from_id, to_id) = (cluster.id(from_port), cluster.id(to_port));
    let (from, to) = (cluster.node(from_port), cluster.node(to_port));
    to.raw(&["CLUSTER", "SETSLOT", &slot, "IMPORTING", &from_id]);
    from.raw(&["CLUSTER", "SETSLOT", &slot, "MIGRATING", &to_id]);
    to.raw(&["CLUSTER", "SETSLOT", &slot, "NODE", &to_id]);
    from.raw(&["CLUSTER", "SETSLOT", &slot, "NODE", &to_id]);
    let got = receive(
        &mut sub,
        || async move {
            let _ = cc.spublish(mv, "m2").await;
        },
        |got| has(got, MessageKind::SMessage, &moving, "m2"),
    )
    .await;
    assert_gap_before(&got, &moving, "m2");
    assert_eq!(
        c.slot_map()
            .node(key_slot(moving.as_bytes()), Default::default()),
        Some(mover_to.as_str())
    );

    watch_transactions(&c, &mut cluster).await;

    // The victim's primary is killed: its shard channel is renewed at the promoted
    // replica, the gap marked, and every subscription hears what is published after.
    let victim_port = port_of(&victim);
    let replicas = cluster.replicas_of(victim_port);
    assert_eq!(replicas.len(), 1, "the victim has a replica");
    cluster.kill(victim_port);
    let promoted = cluster.wait_failover(&replicas);
    let got = receive(
        &mut sub,
        || async move {
            let _ = cc.spublish(ov, "s2").await;
            let _ = cc.publish("news", "n2").await;
        },
        |got| {
            has(got, MessageKind::SMessage, &on_victim, "s2")
                && has(got, MessageKind::Message, "news", "n2")
        },
    )
    .await;
    assert_gap_before(&got, &on_victim, "s2");
    assert!(has(&got, MessageKind::Message, "news", "n2"), "{got:?}");
    assert_eq!(
        c.slot_map()
            .node(key_slot(on_victim.as_bytes()), Default::default()),
        Some(format!("127.0.0.1:{promoted}").as_str())
    );

    // The subscriber as a stream.
    let mut messages = sub.into_stream();
    let publisher = {
        let c = c.clone();
        tokio::spawn(async move {
            for _ in 0..100 {
                let _ = c.publish("news", "streamed").await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let streamed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let m = next(&mut messages).await.unwrap().unwrap();
            if m.kind == MessageKind::Message && m.payload == "streamed" {
                return m;
            }
        }
    })
    .await
    .expect("a message through the stream");
    assert_eq!(streamed.channel, "news");
    publisher.abort();

    let keys = scan_streams(&c).await;
    scan_through_a_reshard(&c, &mut cluster, &keys).await;
    scan_through_a_failover(&c, &mut cluster, keys).await;
}

async fn watch_transactions(c: &ClusterClient, cluster: &mut TestCluster) {
    // Another client changes the watched key during the first attempt: EXEC aborts and
    // the closure runs again, reading the new value.
    c.set("{w}:n", 1).await.unwrap();
    let other = ClusterClient::open(&cluster.urls()).await.unwrap();
    let attempts = Arc::new(AtomicUsize::new(0));
    let out = c
        .transaction("{w}:n", |mut w| {
            let (attempts, other) = (attempts.clone(), other.clone());
            async move {
                let n = w.reply_as::<i64>().get("{w}:n").await?;
                if attempts.fetch_add(1, Ordering::SeqCst) == 0 {
                    other.set("{w}:n", 100).await?;
                }
                let mut pipe = w.multi();
                pipe.set("{w}:n", n + 1).incr("{w}:count");
                Ok(pipe)
            }
        })
        .await
        .unwrap();
    assert_eq!(attempts.load(Ordering::SeqCst), 2, "aborted once, retried");
    assert_eq!(out[1], Value::Integer(1));
    assert_eq!(c.reply_as::<i64>().get("{w}:n").await.unwrap(), 101);
    assert_eq!(c.reply_as::<i64>().get("{w}:count").await.unwrap(), 1);

    // Watched keys in two slots: refused before anything is sent.
    let watches = calls(cluster, "watch");
    let ran = Arc::new(AtomicUsize::new(0));
    let err = c
        .transaction(["foo", "bar"], |w| {
            let ran = ran.clone();
            async move {
                ran.fetch_add(1, Ordering::SeqCst);
                Ok(w.multi())
            }
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CrossSlot, "{err}");
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert_eq!(calls(cluster, "watch"), watches, "no WATCH was sent");

    // A queued write to another slot: refused before MULTI … EXEC is sent.
    let (multis, execs) = (calls(cluster, "multi"), calls(cluster, "exec"));
    let err = c
        .transaction("{w}:n", |w| async move {
            let mut pipe = w.multi();
            pipe.set("{w}:n", 0).set("elsewhere", 1);
            Ok(pipe)
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CrossSlot, "{err}");
    assert_eq!(calls(cluster, "multi"), multis, "no MULTI was sent");
    assert_eq!(calls(cluster, "exec"), execs, "no EXEC was sent");
    assert_eq!(c.reply_as::<i64>().get("{w}:n").await.unwrap(), 101);
    assert_eq!(c.exists("elsewhere").await.unwrap(), 0);
    // The connection that watched went back clean: the next transaction runs.
    let out = c
        .transaction("{w}:n", |w| async move {
            let mut pipe = w.multi();
            pipe.incr("{w}:n");
            Ok(pipe)
        })
        .await
        .unwrap();
    assert_eq!(out, vec![Value::Integer(102)]);
}

/// SCAN over every node: exactly the keys written, with MATCH, TYPE and in text mode.
/// Returns the keys written.
async fn scan_streams(c: &ClusterClient) -> HashSet<String> {
    c.flushall(None).await.unwrap();
    let keys: HashSet<String> = (0..1500).map(|i| format!("s:{i}")).collect();
    let items: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), "v")).collect();
    assert!(c.mset(&items).await.unwrap());
    c.hset("h:1", "f", "v").await.unwrap();
    assert_eq!(c.dbsize().await.unwrap(), 1501);

    let mut walk = c.scan_stream(ScanOptions::new().pattern("s:*").count(100));
    let mut seen = Vec::new();
    while let Some(k) = next(&mut walk).await {
        seen.push(String::from_utf8(k.unwrap().to_vec()).unwrap());
    }
    let set: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(set, keys, "every key written, nothing else");
    assert_eq!(seen.len(), keys.len(), "each once");

    let mut hashes = c.scan_stream(ScanOptions::new().key_type("hash"));
    let mut found = Vec::new();
    while let Some(k) = next(&mut hashes).await {
        found.push(k.unwrap());
    }
    assert_eq!(found, vec![redis_client::Bytes::from("h:1")]);

    let t = c.text();
    let mut text = t.scan_stream(ScanOptions::new().pattern("s:1*"));
    let mut names = HashSet::new();
    while let Some(k) = next(&mut text).await {
        names.insert(k.unwrap());
    }
    let want: HashSet<String> = keys
        .iter()
        .filter(|k| k.starts_with("s:1"))
        .cloned()
        .collect();
    assert_eq!(names, want);
    keys
}

/// Slots moved during the walk from a primary not yet walked to one already walked: the
/// keys in them are found at the recheck after the pass, by the async stream and the
/// blocking iterator alike.
async fn scan_through_a_reshard(
    c: &ClusterClient,
    cluster: &mut TestCluster,
    keys: &HashSet<String>,
) {
    c.refresh_slots().await.unwrap();
    let order: Vec<u16> = c
        .slot_map()
        .primaries()
        .iter()
        .map(|a| port_of(a))
        .collect();
    let first: usize = cluster
        .node(order[0])
        .raw(&["DBSIZE"])
        .trim_start_matches(':')
        .parse()
        .unwrap();
    let options = ScanOptions::new().pattern("s:*").count(10);
    let mut walk = c.scan_stream(options.clone());
    let mut seen = HashSet::new();
    for _ in 0..first + 5 {
        let k = next(&mut walk).await.unwrap().unwrap();
        seen.insert(String::from_utf8(k.to_vec()).unwrap());
    }
    let urls = cluster.urls();
    let blocking =
        tokio::task::block_in_place(|| redis_client::cluster::ClusterClient::open(&urls).unwrap());
    let mut blocking_walk = blocking.scan_iter(options);
    let mut blocking_seen: HashSet<String> = tokio::task::block_in_place(|| {
        blocking_walk
            .by_ref()
            .take(first + 5)
            .map(|k| String::from_utf8(k.unwrap().to_vec()).unwrap())
            .collect()
    });
    let before = c.slot_map();
    tokio::task::block_in_place(|| cluster.reshard(order[2], order[0], 1000));
    let agreed = Instant::now() + Duration::from_secs(10);
    while !views_agree(cluster) {
        assert!(
            Instant::now() < agreed,
            "the nodes did not agree on the slots"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    while let Some(k) = next(&mut walk).await {
        seen.insert(String::from_utf8(k.unwrap().to_vec()).unwrap());
    }
    tokio::task::block_in_place(|| {
        for k in blocking_walk {
            blocking_seen.insert(String::from_utf8(k.unwrap().to_vec()).unwrap());
        }
    });
    let after = c.slot_map();
    let moved = keys
        .iter()
        .filter(|k| {
            let slot = key_slot(k.as_bytes());
            before.node(slot, Default::default()) != after.node(slot, Default::default())
        })
        .count();
    assert!(moved > 0, "keys of the walk's last node moved to its first");
    assert_eq!(&seen, keys, "the async stream saw every key");
    assert_eq!(&blocking_seen, keys, "the blocking iterator saw every key");
}

/// True when every running node describes the same owners of the same slots.
fn views_agree(cluster: &mut TestCluster) -> bool {
    let views: Vec<Vec<String>> = cluster
        .nodes()
        .map(|n| {
            let mut view: Vec<String> = n
                .raw(&["CLUSTER", "NODES"])
                .lines()
                .map(|l| {
                    let fields: Vec<&str> = l.split(' ').collect();
                    let slots: Vec<&str> = fields
                        .iter()
                        .skip(8)
                        .filter(|f| !f.starts_with('['))
                        .copied()
                        .collect();
                    format!("{} {}", fields[0], slots.join(" "))
                })
                .collect();
            view.sort();
            view
        })
        .collect();
    views.windows(2).all(|w| w[0] == w[1])
}

/// A primary killed while the stream walks it: the walk of its slots restarts on the
/// replica that took over, and no key present throughout is missed.
async fn scan_through_a_failover(
    c: &ClusterClient,
    cluster: &mut TestCluster,
    mut keys: HashSet<String>,
) {
    c.refresh_slots().await.unwrap();
    let order: Vec<u16> = c
        .slot_map()
        .primaries()
        .iter()
        .map(|a| port_of(a))
        .collect();
    let j = order
        .iter()
        .position(|&p| cluster.replicas_of(p).len() == 1)
        .expect("a primary with a replica");
    let replicas = cluster.replicas_of(order[j]);
    let before: usize = order[..j]
        .iter()
        .map(|&p| {
            cluster
                .node(p)
                .raw(&["DBSIZE"])
                .trim_start_matches(':')
                .parse::<usize>()
                .unwrap()
        })
        .sum();
    let mut walk = c.scan_stream(ScanOptions::new().pattern("s:*").count(10));
    for _ in 0..before + 5 {
        let k = next(&mut walk).await.unwrap().unwrap();
        keys.remove(std::str::from_utf8(&k).unwrap());
    }
    // Every key written has reached the replica about to take over.
    let offset = |port: u16, field: &str| -> Option<u64> {
        cluster
            .node(port)
            .raw(&["INFO", "replication"])
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().parse().ok())
    };
    let synced = Instant::now() + Duration::from_secs(5);
    while offset(order[j], "master_repl_offset:") != offset(replicas[0], "slave_repl_offset:") {
        assert!(Instant::now() < synced, "the replica did not catch up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.kill(order[j]);
    cluster.wait_failover(&replicas);
    while let Some(k) = next(&mut walk).await {
        let k = k.unwrap();
        keys.remove(std::str::from_utf8(&k).unwrap());
    }
    assert!(keys.is_empty(), "{} keys not seen by SCAN", keys.len());
}
