//! `redis-cli --cluster reshard` while the cluster client writes and reads: `ASK` and
//! `MOVED` are followed, no call fails, and no acknowledged write is lost.

use redis_client::cluster::{key_slot, ClusterClient};
use redis_client::prelude::*;
use redis_client::MessageKind;
use redis_tests::TestCluster;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A value read back during the reshard must be at least the acknowledged one.
trait AtLeast {
    fn is_none_or_less(&self, than: usize) -> bool;
}

impl AtLeast for Option<usize> {
    fn is_none_or_less(&self, than: usize) -> bool {
        !self.is_some_and(|v| v >= than)
    }
}

#[test]
fn resharding_under_load_loses_nothing() {
    let mut cluster = TestCluster::start();
    let c = ClusterClient::open(&cluster.urls()).expect("open");
    let primaries = cluster.primaries();
    let (from, to) = (primaries[0], primaries[1]);
    let from_addr = format!("127.0.0.1:{from}");
    // Keys served by the source, so many of them move.
    let map = c.slot_map();
    let keys: Arc<Vec<String>> = Arc::new(
        (0..200_000)
            .map(|i| format!("rk:{i}"))
            .filter(|k| map.node(key_slot(k.as_bytes()), Default::default()) == Some(&from_addr))
            .take(10_000)
            .collect(),
    );
    assert_eq!(keys.len() % 2, 0, "each writer owns the keys of its parity");

    // Opened before the reshard and left idle during it: its map goes stale.
    let stale = ClusterClient::open(&cluster.urls()).expect("open");
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<usize>>> = Arc::default();
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut threads = Vec::new();
    for t in 0..2 {
        let (c, stop, acked, errors, keys) = (
            c.clone(),
            stop.clone(),
            acked.clone(),
            errors.clone(),
            keys.clone(),
        );
        threads.push(std::thread::spawn(move || {
            // Writes go round the keys until stopped, each value larger than the last of
            // its key, so the last acknowledged one is what must be read back.
            let mut i = t;
            while !stop.load(Ordering::Relaxed) {
                match c.set(&keys[i % keys.len()], i) {
                    Ok(_) => acked.lock().unwrap().push(i),
                    Err(e) => errors.lock().unwrap().push(format!("SET: {e}")),
                }
                i += 2;
            }
        }));
    }
    // Reads of keys written earlier, one by one and split over slots, meet ASK and TRYAGAIN
    // while their slots migrate.
    {
        let (c, stop, acked, errors, keys) = (
            c.clone(),
            stop.clone(),
            acked.clone(),
            errors.clone(),
            keys.clone(),
        );
        threads.push(std::thread::spawn(move || {
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let done: Vec<usize> = {
                    let a = acked.lock().unwrap();
                    a.iter().rev().step_by(37).take(20).copied().collect()
                };
                if done.is_empty() {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
                let ks: Vec<&str> = done
                    .iter()
                    .map(|&i| keys[i % keys.len()].as_str())
                    .collect();
                match c.reply_as::<Vec<Option<usize>>>().mget(&ks) {
                    Ok(v) => {
                        for (i, got) in done.iter().zip(v) {
                            if got.is_none_or_less(*i) {
                                errors
                                    .lock()
                                    .unwrap()
                                    .push(format!("MGET {}: {got:?} < {i}", ks[0]));
                            }
                        }
                    }
                    Err(e) => errors.lock().unwrap().push(format!("MGET: {e}")),
                }
                let k = &keys[done[n % done.len()] % keys.len()];
                if let Err(e) = c.get(k) {
                    errors.lock().unwrap().push(format!("GET: {e}"));
                }
                n += 1;
            }
        }));
    }

    // Shard channels over the source's slots, one per slot: those whose slot moves are
    // unsubscribed by the source and must be renewed at the target.
    let channels: Vec<String> = {
        let mut seen = std::collections::HashSet::new();
        (0..)
            .map(|i| format!("sch:{i}"))
            .filter(|ch| {
                let slot = key_slot(ch.as_bytes());
                map.node(slot, Default::default()) == Some(&from_addr) && seen.insert(slot)
            })
            .take(40)
            .collect()
    };
    let mut sub = c.pubsub();
    sub.ignore_subscribe_messages(true);
    sub.ssubscribe(&channels).unwrap();

    std::thread::sleep(Duration::from_millis(300));
    cluster.reshard(from, to, 1000);
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }

    let errors = errors.lock().unwrap();
    assert!(
        errors.is_empty(),
        "{} failures: {:?}",
        errors.len(),
        &errors[..errors.len().min(10)]
    );
    let acked = acked.lock().unwrap();
    assert!(
        acked.len() > keys.len(),
        "writes went on through the reshard: {}",
        acked.len()
    );
    let mut last = vec![None; keys.len()];
    for &i in acked.iter() {
        let slot = &mut last[i % keys.len()];
        *slot = Some(slot.unwrap_or(0).max(i));
    }
    let ks: Vec<&str> = keys.iter().map(String::as_str).collect();
    let values = c.reply_as::<Vec<Option<usize>>>().mget(&ks).unwrap();
    for ((k, want), got) in ks.iter().zip(&last).zip(values) {
        assert_eq!(&got, want, "acknowledged write of {k} lost");
    }
    // The slots moved, and the client learnt it from the redirections.
    let to_addr = format!("127.0.0.1:{to}");
    let map = c.slot_map();
    let moved = keys
        .iter()
        .filter(|k| map.node(key_slot(k.as_bytes()), Default::default()) == Some(&to_addr))
        .count();
    assert!(moved > 0, "some written keys' slots moved to the target");
    // The stale client learns each moved slot from MOVED: per command in a pipeline, and
    // for a transaction, which the server discards (nothing ran) and the client resends.
    let moved_keys: Vec<(usize, &String)> = keys
        .iter()
        .enumerate()
        .filter(|(_, k)| map.node(key_slot(k.as_bytes()), Default::default()) == Some(&to_addr))
        .take(50)
        .collect();
    let stale_map = stale.slot_map();
    assert!(
        moved_keys.iter().all(
            |(_, k)| stale_map.node(key_slot(k.as_bytes()), Default::default()) == Some(&from_addr)
        ),
        "the stale client still places the moved keys on the source"
    );
    // A counter on a slot that did not move, in the middle of the pipeline: only the
    // redirected commands are sent again, so it is incremented once.
    let unmoved = (0..)
        .map(|i| format!("unmoved:{i}"))
        .find(|k| {
            let slot = key_slot(k.as_bytes());
            stale_map.node(slot, Default::default()) == map.node(slot, Default::default())
        })
        .unwrap();
    let mut pipe = stale.pipeline();
    pipe.transaction(false);
    for (n, (_, k)) in moved_keys.iter().enumerate() {
        if n == moved_keys.len() / 2 {
            pipe.incr(unmoved.as_str());
        }
        pipe.get(k.as_str());
    }
    let mut got = pipe.execute().unwrap();
    assert_eq!(
        got.remove(moved_keys.len() / 2),
        redis_client::Value::Integer(1),
        "the command that was not redirected ran once"
    );
    for ((i, k), v) in moved_keys.iter().zip(got) {
        assert_eq!(
            v,
            redis_client::Value::BulkString(last[*i].unwrap().to_string().into()),
            "{k}"
        );
    }
    let (_, k) = moved_keys[0];
    let mut tx = stale.pipeline();
    tx.transaction(true).set(k.as_str(), "tx").get(k.as_str());
    let v = tx.execute().unwrap();
    assert_eq!(v[1], redis_client::Value::BulkString("tx".into()));

    // Shard channels whose slot moved were renewed at the target, the gap marked, and
    // every channel hears what is published now.
    let moved_channels: Vec<&String> = channels
        .iter()
        .filter(|ch| map.node(key_slot(ch.as_bytes()), Default::default()) == Some(&to_addr))
        .collect();
    assert!(
        !moved_channels.is_empty(),
        "some shard channels' slots moved"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut markers = std::collections::HashSet::new();
    let mut heard = std::collections::HashSet::new();
    while heard.len() < channels.len() && std::time::Instant::now() < deadline {
        for ch in &channels {
            if !heard.contains(ch.as_bytes()) {
                let _ = c.spublish(ch.as_str(), "after");
            }
        }
        while let Some(m) = sub.get_message(Some(Duration::from_millis(100))).unwrap() {
            match m.kind {
                MessageKind::Reconnected => {
                    markers.insert(m.channel.clone());
                }
                MessageKind::SMessage => {
                    heard.insert(m.channel.clone());
                }
                _ => {}
            }
        }
    }
    assert_eq!(
        heard.len(),
        channels.len(),
        "every shard channel hears SPUBLISH after the reshard"
    );
    for ch in &moved_channels {
        assert!(markers.contains(ch.as_bytes()), "no gap marker for {ch}");
    }

    let stats = cluster.node(to).raw(&["INFO", "commandstats"]);
    let asking = stats
        .lines()
        .find(|l| l.starts_with("cmdstat_asking"))
        .unwrap_or("no ASKING");
    eprintln!(
        "{} writes, {moved} keys in moved slots; target: {asking}",
        acked.len()
    );
    assert!(
        asking.starts_with("cmdstat_asking:calls="),
        "ASK was followed"
    );
}
