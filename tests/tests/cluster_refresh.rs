//! The periodic slot map refresh, on a real cluster: a manual `CLUSTER FAILOVER` (which
//! raises no error for a client reading from replicas or writing to other slots, so no
//! `MOVED` tells the client) is learnt within the refresh interval plus one refresh, by the
//! blocking and the async cluster clients; with the refresh off it is not learnt. A node
//! gone is learnt the same way.

use redis_client::cluster::router::ReadFrom;
use redis_client::cluster::{aio, key_slot, ClusterClient, ClusterOptions, SlotMap};
use redis_client::prelude::*;
use redis_client::ConnectionInfo;
use redis_tests::TestCluster;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const INTERVAL: Duration = Duration::from_millis(300);
/// Time for one refresh (a CLUSTER SHARDS round trip) on a loaded machine.
const ONE_REFRESH: Duration = Duration::from_millis(700);

fn options(interval: Option<Duration>) -> ClusterOptions {
    ClusterOptions::default()
        .with_read_from_replicas(true)
        .with_refresh_interval(interval)
}

/// The total count of `code` error replies sent by every node (INFO errorstats).
fn errors_sent(cluster: &mut TestCluster, code: &str) -> u64 {
    let prefix = format!("errorstat_{code}:count=");
    cluster
        .nodes()
        .map(|n| {
            n.raw(&["INFO", "errorstats"])
                .lines()
                .find_map(|l| l.strip_prefix(&prefix))
                .map_or(0, |c| c.trim().parse::<u64>().unwrap())
        })
        .sum()
}

/// True once every running node names `id` as a primary.
fn all_see_primary(cluster: &mut TestCluster, id: &str) -> bool {
    cluster.nodes().all(|n| {
        n.raw(&["CLUSTER", "NODES"])
            .lines()
            .any(|l| l.starts_with(id) && l.contains("master"))
    })
}

fn primary_of(map: &SlotMap, slot: u16) -> String {
    map.node(slot, ReadFrom::Primary).unwrap().to_owned()
}

#[test]
fn a_manual_failover_is_learnt_by_periodic_refresh_only() {
    let mut cluster = TestCluster::start();
    let seeds: Vec<ConnectionInfo> = cluster.urls().iter().map(|u| u.parse().unwrap()).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let refreshing = ClusterClient::with_options(seeds.clone(), options(Some(INTERVAL))).unwrap();
    let control = ClusterClient::with_options(seeds.clone(), options(None)).unwrap();
    let refreshing_aio = rt
        .block_on(aio::ClusterClient::with_options(
            seeds.clone(),
            options(Some(INTERVAL)),
        ))
        .unwrap();
    let control_aio = rt
        .block_on(aio::ClusterClient::with_options(seeds, options(None)))
        .unwrap();

    // The shard to fail over, its replica, keys it serves and keys others serve.
    let slot = key_slot(b"r:0");
    let map = refreshing.slot_map();
    let old = primary_of(&map, slot);
    let old_port: u16 = old.rsplit_once(':').unwrap().1.parse().unwrap();
    let replica_port = cluster.replicas_of(old_port)[0];
    let new = format!("127.0.0.1:{replica_port}");
    let served = map.slots_of(&old);
    let shard_ranges = map.shard(slot).unwrap().ranges.clone();
    let in_shard = |s: u16| shard_ranges.iter().any(|&(lo, hi)| lo <= s && s <= hi);
    let reads: Vec<String> = (0..1000)
        .map(|i| format!("r:{i}"))
        .filter(|k| in_shard(key_slot(k.as_bytes())))
        .take(20)
        .collect();
    let writes: Vec<String> = (0..1000)
        .map(|i| format!("w:{i}"))
        .filter(|k| !in_shard(key_slot(k.as_bytes())))
        .take(20)
        .collect();
    assert!(!served.is_empty() && reads.len() == 20 && writes.len() == 20);
    // Every client writes to the old primary, so each holds a pool for it (its replica
    // reads go to the replica): only the refresh can make one let that pool go.
    for k in &reads {
        refreshing.set(k, "v").unwrap();
        control.set(k, "v").unwrap();
        rt.block_on(refreshing_aio.set(k, "v")).unwrap();
        rt.block_on(control_aio.set(k, "v")).unwrap();
    }

    // Replica reads and other-slot writes through every client, all through the failover:
    // none may fail.
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));
    let mut threads = Vec::new();
    for c in [refreshing.clone(), control.clone()] {
        let (stop, calls, reads, writes) =
            (stop.clone(), calls.clone(), reads.clone(), writes.clone());
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for (r, w) in reads.iter().zip(&writes) {
                    c.get(r).unwrap_or_else(|e| panic!("replica read {r}: {e}"));
                    c.set(w, "x").unwrap_or_else(|e| panic!("write {w}: {e}"));
                    calls.fetch_add(2, Ordering::Relaxed);
                }
            }
        }));
    }
    let mut tasks = Vec::new();
    for c in [refreshing_aio.clone(), control_aio.clone()] {
        let (stop, calls, reads, writes) =
            (stop.clone(), calls.clone(), reads.clone(), writes.clone());
        tasks.push(rt.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                for (r, w) in reads.iter().zip(&writes) {
                    c.get(r)
                        .await
                        .unwrap_or_else(|e| panic!("async replica read {r}: {e}"));
                    c.set(w, "x")
                        .await
                        .unwrap_or_else(|e| panic!("async write {w}: {e}"));
                    calls.fetch_add(2, Ordering::Relaxed);
                }
            }
        }));
    }

    let moved_before = errors_sent(&mut cluster, "MOVED") + errors_sent(&mut cluster, "ASK");
    let replica_id = cluster.id(replica_port);
    assert_eq!(
        cluster.node(replica_port).raw(&["CLUSTER", "FAILOVER"]),
        "+OK"
    );
    cluster.wait_failover(&[replica_port]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !all_see_primary(&mut cluster, &replica_id) {
        assert!(Instant::now() < deadline, "the failover did not spread");
        std::thread::sleep(Duration::from_millis(10));
    }
    // From here every node names the new primary: the next refresh of each client learns it.
    let agreed = Instant::now();
    let bound = INTERVAL + ONE_REFRESH;
    let learnt = |m: &SlotMap| primary_of(m, slot) == new;
    loop {
        if learnt(&refreshing.slot_map()) && learnt(&refreshing_aio.slot_map()) {
            break;
        }
        assert!(
            agreed.elapsed() < bound,
            "not learnt within {bound:?}: blocking {}, async {}",
            primary_of(&refreshing.slot_map(), slot),
            primary_of(&refreshing_aio.slot_map(), slot)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Every slot of the shard moved with it, and the old primary is learnt as its replica
    // once it has synchronised with the new one.
    for &s in &served {
        assert_eq!(primary_of(&refreshing.slot_map(), s), new);
        assert_eq!(primary_of(&refreshing_aio.slot_map(), s), new);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let demoted = |m: &SlotMap| m.shard(slot).unwrap().replicas.contains(&old);
    while !(demoted(&refreshing.slot_map()) && demoted(&refreshing_aio.slot_map())) {
        assert!(
            Instant::now() < deadline,
            "the old primary never listed as a replica"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // The controls, with the refresh off, still name the old primary after several
    // intervals: nothing else told them.
    std::thread::sleep(INTERVAL * 3);
    assert_eq!(primary_of(&control.slot_map(), slot), old);
    assert_eq!(primary_of(&control_aio.slot_map(), slot), old);

    let before = calls.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        calls.load(Ordering::Relaxed) > before,
        "the clients stalled"
    );
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("a blocking client saw an error");
    }
    for t in tasks {
        rt.block_on(t).expect("an async client saw an error");
    }
    // No redirection was ever sent: the clients learnt from the refresh alone.
    let moved_after = errors_sent(&mut cluster, "MOVED") + errors_sent(&mut cluster, "ASK");
    assert_eq!(moved_after, moved_before, "a redirection was sent");

    // A node gone: the old primary, now a replica, killed while no call runs. Once every
    // node has marked it failed, the refreshing clients leave it out of the shard within
    // the interval plus one refresh, learnt from nothing but the refresh.
    let old_id = cluster.id(old_port);
    cluster.kill(old_port);
    let deadline = Instant::now() + Duration::from_secs(15);
    while !cluster.nodes().all(|n| {
        n.raw(&["CLUSTER", "NODES"])
            .lines()
            .any(|l| l.starts_with(&old_id) && l.contains(",fail "))
    }) {
        assert!(
            Instant::now() < deadline,
            "the killed node never marked failed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let failed = Instant::now();
    while demoted(&refreshing.slot_map()) || demoted(&refreshing_aio.slot_map()) {
        assert!(
            failed.elapsed() < bound,
            "the gone node still listed after {bound:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Its connections went with it: the clients keep no pool for a node the map dropped
    // (both had written to it while it was a primary).
    let gone = |nodes: Vec<String>| nodes.iter().any(|n| n.ends_with(&format!(":{old_port}")));
    assert!(
        !gone(refreshing.known_nodes()),
        "{:?}",
        refreshing.known_nodes()
    );
    assert!(!gone(refreshing_aio.known_nodes()));
    assert!(
        gone(control.known_nodes()),
        "the control client still holds it"
    );

    // One refresh thread, for the one blocking client with the refresh on; it ends, and
    // so does the async client's task, once the clients are dropped.
    assert_eq!(refresh_threads(), 1);
    drop((refreshing, control));
    let deadline = Instant::now() + Duration::from_secs(2);
    while refresh_threads() > 0 {
        assert!(
            Instant::now() < deadline,
            "the refresh thread outlived its client"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    drop((refreshing_aio, control_aio));
    while rt.metrics().num_alive_tasks() > 0 {
        assert!(Instant::now() < deadline, "a task outlived its client");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The threads of this process named as the blocking client's refresh thread (the kernel
/// keeps the first 15 bytes of a name).
fn refresh_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter(|t| {
            let comm = std::fs::read_to_string(t.as_ref().unwrap().path().join("comm"));
            comm.is_ok_and(|c| c.trim() == "redis-cluster-r")
        })
        .count()
}
