//! `TRYAGAIN` and `CLUSTERDOWN` made by hand on a real cluster, for the blocking and the
//! async cluster clients: a condition lifted within the call's budget lets the call
//! succeed with the right values; one that outlasts it fails with the server's typed
//! error before the budget is spent.
//!
//! TRYAGAIN: a slot set MIGRATING on its owner and IMPORTING on another primary, one of two
//! same-slot keys moved with MIGRATE; the owner then answers a command on both keys with
//! `TRYAGAIN Multiple keys request during rehashing of slot`. CLUSTERDOWN: a slot removed
//! from its owner with `CLUSTER DELSLOTS`; the owner then answers `CLUSTERDOWN Hash slot not
//! served` for it. Each scenario leaves the cluster with every slot served and no slot
//! mid-migration (the migration completed). The scenarios change the whole cluster's state (an owner without a slot
//! fails every command), so they run one after another in one test.

use redis_client::cluster::router::ReadFrom;
use redis_client::cluster::{aio, key_slot, ClusterClient, ClusterOptions};
use redis_client::prelude::*;
use redis_client::{Bytes, ConnectionInfo, Error, ErrorCode, Result};
use redis_tests::TestCluster;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The budget of calls that outwait the condition.
const PATIENT: Duration = Duration::from_secs(10);
/// The budget of calls that the condition outlasts.
const BRIEF: Duration = Duration::from_millis(1000);
/// How late past its budget a failing call may return (scheduling on a busy machine).
const SLACK: Duration = Duration::from_millis(300);

/// One MGET through a client under test, with its duration.
type Call = Arc<dyn Fn(Vec<String>) -> (Result<Vec<Option<Bytes>>>, Duration) + Send + Sync>;

struct Clients {
    name: &'static str,
    patient: Call,
    brief: Call,
}

/// The clients refresh their map every 100 ms, so background refreshes run while the
/// cluster is broken (a node without a slot gives a map that does not cover every slot,
/// which is refused): they must never fail or disturb a call.
fn options(budget: Duration) -> ClusterOptions {
    let retry = ClusterOptions::default().retry.with_budget(Some(budget));
    ClusterOptions::default()
        .with_retry_policy(retry)
        .with_refresh_interval(Some(Duration::from_millis(100)))
}

fn seeds(cluster: &TestCluster) -> Vec<ConnectionInfo> {
    cluster.urls().iter().map(|u| u.parse().unwrap()).collect()
}

fn blocking(cluster: &TestCluster) -> Clients {
    let call = |budget| -> Call {
        let c = ClusterClient::with_options(seeds(cluster), options(budget)).expect("open");
        Arc::new(move |keys: Vec<String>| {
            let t = Instant::now();
            let r = c.mget(&keys);
            (r, t.elapsed())
        })
    };
    Clients {
        name: "blocking",
        patient: call(PATIENT),
        brief: call(BRIEF),
    }
}

fn asynchronous(cluster: &TestCluster, rt: &tokio::runtime::Runtime) -> Clients {
    let call = |budget| -> Call {
        let c = rt
            .block_on(aio::ClusterClient::with_options(
                seeds(cluster),
                options(budget),
            ))
            .expect("open");
        let handle = rt.handle().clone();
        Arc::new(move |keys: Vec<String>| {
            let c = c.clone();
            handle.block_on(async move {
                let t = Instant::now();
                let r = c.mget(&keys).await;
                (r, t.elapsed())
            })
        })
    };
    Clients {
        name: "async",
        patient: call(PATIENT),
        brief: call(BRIEF),
    }
}

/// The port of the primary serving `slot`, and of another primary.
fn owner_and_other(cluster: &mut TestCluster, slot: u16) -> (u16, u16) {
    let map = ClusterClient::open(&cluster.urls()).unwrap().slot_map();
    let owner = map.node(slot, ReadFrom::Primary).unwrap();
    let owner: u16 = owner.rsplit_once(':').unwrap().1.parse().unwrap();
    let other = cluster
        .primaries()
        .into_iter()
        .find(|&p| p != owner)
        .unwrap();
    (owner, other)
}

/// How many `code` error replies the node on `port` has sent (INFO errorstats).
fn errors_sent(cluster: &TestCluster, port: u16, code: &str) -> u64 {
    let info = cluster.node(port).raw(&["INFO", "errorstats"]);
    let prefix = format!("errorstat_{code}:count=");
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// Waits until the node on `port` has sent more `code` errors than `before`: the client
/// under test has met the condition and is retrying.
fn wait_for_error(cluster: &TestCluster, port: u16, code: &str, before: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while errors_sent(cluster, port, code) <= before {
        assert!(Instant::now() < deadline, "no {code} sent by {port}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn ok(reply: String) {
    assert_eq!(reply, "+OK");
}

/// Puts the slot of `tag` mid-migration from its owner to another primary with `{tag}a`
/// moved and `{tag}b` not: the owner answers TRYAGAIN to a command on both. Returns the
/// slot, the owner's port and the importing node's port.
fn start_migration(cluster: &mut TestCluster, tag: &str) -> (u16, u16, u16) {
    let slot = key_slot(tag.as_bytes());
    let (from, to) = owner_and_other(cluster, slot);
    let (a, b) = (format!("{{{tag}}}a"), format!("{{{tag}}}b"));
    ok(cluster.node(from).raw(&["SET", &a, "A"]));
    ok(cluster.node(from).raw(&["SET", &b, "B"]));
    let s = slot.to_string();
    ok(cluster
        .node(to)
        .raw(&["CLUSTER", "SETSLOT", &s, "IMPORTING", &cluster.id(from)]));
    ok(cluster
        .node(from)
        .raw(&["CLUSTER", "SETSLOT", &s, "MIGRATING", &cluster.id(to)]));
    let port = to.to_string();
    ok(cluster
        .node(from)
        .raw(&["MIGRATE", "127.0.0.1", &port, &a, "0", "5000"]));
    (slot, from, to)
}

/// Completes the migration started by [`start_migration`]: the other key moved too and the
/// slot given to the importing node everywhere.
fn complete_migration(cluster: &mut TestCluster, tag: &str, (slot, from, to): (u16, u16, u16)) {
    let b = format!("{{{tag}}}b");
    let port = to.to_string();
    ok(cluster
        .node(from)
        .raw(&["MIGRATE", "127.0.0.1", &port, &b, "0", "5000"]));
    let (s, id) = (slot.to_string(), cluster.id(to));
    // The new owner first, then the old, then the rest (as `redis-cli --cluster` does).
    let mut order = vec![to, from];
    order.extend(
        cluster
            .primaries()
            .into_iter()
            .filter(|p| ![to, from].contains(p)),
    );
    for p in order {
        ok(cluster
            .node(p)
            .raw(&["CLUSTER", "SETSLOT", &s, "NODE", &id]));
    }
    cluster.wait_ok();
}

fn expect_values(clients: &Clients, r: Result<Vec<Option<Bytes>>>, want: &[&str]) {
    let got = r.unwrap_or_else(|e| panic!("{}: {e}", clients.name));
    let want: Vec<Option<Bytes>> = want
        .iter()
        .map(|v| Some(Bytes::copy_from_slice(v.as_bytes())))
        .collect();
    assert_eq!(got, want, "{}", clients.name);
}

fn expect_code(clients: &Clients, r: Result<Vec<Option<Bytes>>>, took: Duration, code: ErrorCode) {
    match r {
        Err(e @ Error::Server(_)) => assert_eq!(e.code(), Some(code), "{}: {e}", clients.name),
        other => panic!("{}: expected {code:?}, got {other:?}", clients.name),
    }
    assert!(
        took <= BRIEF + SLACK,
        "{}: failed after {took:?}, past its budget of {BRIEF:?}",
        clients.name
    );
}

/// TRYAGAIN while the migration runs; the migration finished while the client waits: the
/// call succeeds with both values, in a split MGET whose other key lives elsewhere.
fn tryagain_lifted(cluster: &mut TestCluster, clients: &Clients, tag: &str) {
    let migration = start_migration(cluster, tag);
    let from = migration.1;
    assert_ne!(key_slot(b"elsewhere"), migration.0);
    let before = errors_sent(cluster, from, "TRYAGAIN");
    let call = clients.patient.clone();
    let keys = vec![
        format!("{{{tag}}}a"),
        "elsewhere".to_owned(),
        format!("{{{tag}}}b"),
    ];
    let c = ClusterClient::open(&cluster.urls()).unwrap();
    c.set("elsewhere", "E").unwrap();
    let waiter = std::thread::spawn(move || call(keys));
    wait_for_error(cluster, from, "TRYAGAIN", before);
    complete_migration(cluster, tag, migration);
    let (r, took) = waiter.join().unwrap();
    expect_values(clients, r, &["A", "E", "B"]);
    assert!(took < PATIENT, "{}: {took:?}", clients.name);
}

/// TRYAGAIN for longer than the budget: the server's error, before the budget is spent,
/// after several tries.
fn tryagain_outlasts(cluster: &mut TestCluster, clients: &Clients, tag: &str) {
    let migration = start_migration(cluster, tag);
    let from = migration.1;
    let before = errors_sent(cluster, from, "TRYAGAIN");
    let (r, took) = (clients.brief)(vec![format!("{{{tag}}}a"), format!("{{{tag}}}b")]);
    expect_code(clients, r, took, ErrorCode::TRYAGAIN);
    assert!(
        errors_sent(cluster, from, "TRYAGAIN") >= before + 2,
        "{}: not retried",
        clients.name
    );
    complete_migration(cluster, tag, migration);
}

/// The slot of `key` taken from its owner (which then answers CLUSTERDOWN); returns the
/// owner's port. Undone by [`restore_slot`].
fn unserve(cluster: &mut TestCluster, key: &str, value: &str) -> u16 {
    let slot = key_slot(key.as_bytes());
    let (owner, _) = owner_and_other(cluster, slot);
    ok(cluster.node(owner).raw(&["SET", key, value]));
    ok(cluster
        .node(owner)
        .raw(&["CLUSTER", "DELSLOTS", &slot.to_string()]));
    assert_eq!(
        cluster.node(owner).raw(&["GET", key]),
        "-CLUSTERDOWN Hash slot not served"
    );
    owner
}

fn restore_slot(cluster: &mut TestCluster, key: &str, owner: u16) {
    let slot = key_slot(key.as_bytes()).to_string();
    ok(cluster.node(owner).raw(&["CLUSTER", "ADDSLOTS", &slot]));
    cluster.wait_ok();
}

/// CLUSTERDOWN until the slot is served again within the budget: the call succeeds.
fn clusterdown_lifted(cluster: &mut TestCluster, clients: &Clients, key: &str) {
    let owner = unserve(cluster, key, "D");
    let before = errors_sent(cluster, owner, "CLUSTERDOWN");
    let call = clients.patient.clone();
    let keys = vec![key.to_owned()];
    let waiter = std::thread::spawn(move || call(keys));
    wait_for_error(cluster, owner, "CLUSTERDOWN", before);
    restore_slot(cluster, key, owner);
    let (r, took) = waiter.join().unwrap();
    expect_values(clients, r, &["D"]);
    assert!(took < PATIENT, "{}: {took:?}", clients.name);
}

/// CLUSTERDOWN for longer than the budget: the server's error within the budget.
fn clusterdown_outlasts(cluster: &mut TestCluster, clients: &Clients, key: &str) {
    let owner = unserve(cluster, key, "D");
    let before = errors_sent(cluster, owner, "CLUSTERDOWN");
    let (r, took) = (clients.brief)(vec![key.to_owned()]);
    expect_code(clients, r, took, ErrorCode::CLUSTERDOWN);
    assert!(
        errors_sent(cluster, owner, "CLUSTERDOWN") >= before + 2,
        "{}: not retried",
        clients.name
    );
    restore_slot(cluster, key, owner);
}

#[test]
fn tryagain_and_clusterdown_from_a_real_cluster() {
    let mut cluster = TestCluster::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sync = blocking(&cluster);
    let not_sync = asynchronous(&cluster, &rt);
    for (i, clients) in [&sync, &not_sync].into_iter().enumerate() {
        tryagain_lifted(&mut cluster, clients, &format!("done{i}"));
        tryagain_outlasts(&mut cluster, clients, &format!("long{i}"));
        clusterdown_lifted(&mut cluster, clients, &format!("down{i}"));
        clusterdown_outlasts(&mut cluster, clients, &format!("longdown{i}"));
    }
    // The cluster is whole again: every slot served, through both clients.
    let keys: Vec<String> = (0..200).map(|i| format!("after:{i}")).collect();
    let items: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), k.as_str())).collect();
    let c = ClusterClient::open(&cluster.urls()).unwrap();
    assert!(c.mset(&items).unwrap());
    let (r, _) = (not_sync.patient)(keys.clone());
    assert_eq!(r.unwrap().iter().flatten().count(), 200);
}
