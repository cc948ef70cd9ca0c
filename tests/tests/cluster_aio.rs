//! The async cluster client against a real six-node cluster: the same routing as the
//! blocking one (split, fanned-out and single-slot commands, pipelines, transactions,
//! scripts, text mode, replica reads), and many tasks at once.

use redis_client::cluster::aio::ClusterClient;
use redis_client::cluster::key_slot;
use redis_client::prelude::*;
use redis_client::{Bytes, ErrorKind, Script, Value};
use redis_tests::TestCluster;
use std::collections::HashSet;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_cluster_client_end_to_end() {
    let mut cluster = TestCluster::start();
    let c = ClusterClient::open(&cluster.urls()).await.expect("open");
    c.flushall(None).await.unwrap();

    // Single-slot commands and keyslots as the server computes them.
    for key in ["foo", "{a}b", "x{y"] {
        assert_eq!(
            c.cluster_keyslot(key).await.unwrap(),
            i64::from(key_slot(key.as_bytes()))
        );
    }
    assert!(c.set("a:1", "v").await.unwrap());
    assert_eq!(c.get("a:1").await.unwrap().as_deref(), Some(&b"v"[..]));
    c.rpush("q", "job").await.unwrap();
    assert_eq!(
        c.blpop("q", Duration::from_secs(1)).await.unwrap(),
        Some((Bytes::from("q"), Bytes::from("job")))
    );

    // A thousand keys over every primary: MSET split, MGET in the caller's order.
    let keys: Vec<String> = (0..1000).map(|i| format!("k:{i}")).collect();
    let items: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), k.as_str())).collect();
    assert!(c.mset(&items).await.unwrap());
    let mut asked: Vec<String> = keys.iter().rev().cloned().collect();
    asked.insert(500, "missing".into());
    let values = c.mget(&asked).await.unwrap();
    for (k, v) in asked.iter().zip(&values) {
        if k == "missing" {
            assert_eq!(v, &None);
        } else {
            assert_eq!(v.as_deref(), Some(k.as_bytes()), "{k}");
        }
    }
    assert_eq!(c.exists(&keys[..10]).await.unwrap(), 10);
    assert_eq!(c.dbsize().await.unwrap(), 1001);
    assert_eq!(c.keys("k:1*").await.unwrap().len(), 111);
    assert_eq!(c.del(&keys[..10]).await.unwrap(), 10);

    // Many tasks at once, sharing each node's multiplexed connection.
    let tasks: Vec<_> = (0..200)
        .map(|t| {
            let c = c.clone();
            tokio::spawn(async move {
                for i in 0..20 {
                    let key = format!("t:{t}:{i}");
                    c.set(&key, i).await.unwrap();
                    assert_eq!(c.reply_as::<i64>().get(&key).await.unwrap(), i);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }

    // Pipelines over mixed slots, in queue order; transactions in one slot only.
    let mut pipe = c.pipeline();
    pipe.transaction(false);
    pipe.set("p:a", 1)
        .incr("p:a")
        .mget(["p:a", "k:500", "nope"])
        .dbsize();
    let v = pipe.execute().await.unwrap();
    assert_eq!(v[1], Value::Integer(2));
    assert_eq!(
        v[2],
        Value::Array(vec![
            Value::BulkString("2".into()),
            Value::BulkString("k:500".into()),
            Value::Nil
        ])
    );
    // A command split over several slots runs where it was queued, before what follows
    // it on the same node: the SET queued after the DEL is not undone by it.
    c.mset([("p:a", "old"), ("p:b", "old")]).await.unwrap();
    let mut pipe = c.pipeline();
    pipe.transaction(false);
    pipe.del(["p:a", "p:b"])
        .set("p:a", "new")
        .mget(["p:a", "p:b"])
        .incr("p:b");
    let v = pipe.execute().await.unwrap();
    assert_eq!(v[0], Value::Integer(2));
    assert_eq!(
        v[2],
        Value::Array(vec![Value::BulkString("new".into()), Value::Nil])
    );
    assert_eq!(v[3], Value::Integer(1));
    assert_eq!(c.get("p:a").await.unwrap().as_deref(), Some(&b"new"[..]));
    let mut tx = c.pipeline();
    tx.transaction(true).set("{t}a", 1).incr("{t}a");
    assert_eq!(tx.execute().await.unwrap()[1], Value::Integer(2));
    let mut tx = c.pipeline();
    tx.transaction(true).set("foo", 1).set("bar", 1);
    let err = tx.execute().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CrossSlot);
    assert_eq!(
        c.exists(["foo", "bar"]).await.unwrap(),
        0,
        "nothing was sent"
    );
    let err = c.sunion(["foo", "bar"]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CrossSlot);

    // Scripts by their keys, loaded on demand.
    c.script_flush(None).await.unwrap();
    let script = Script::new("return redis.call('INCRBY', KEYS[1], ARGV[1])");
    for key in ["s:1", "s:2", "s:3"] {
        let n: i64 = c.invoke_script(script.key(key).arg(2)).await.unwrap();
        assert_eq!(n, 2);
    }

    // Text mode and raw commands.
    let t = c.text();
    t.set("txt", "héllo").await.unwrap();
    assert_eq!(t.get("txt").await.unwrap().as_deref(), Some("héllo"));
    assert_eq!(
        c.execute_command(("GET", "txt")).await.unwrap(),
        Value::BulkString("héllo".into())
    );

    // Reads from replicas, once they are known: a replica still syncing is left out of
    // the map until a refresh finds it healthy.
    let mut known = false;
    for _ in 0..100 {
        c.refresh_slots().await.unwrap();
        if c.slot_map().shards().iter().all(|s| !s.replicas.is_empty()) {
            known = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        known,
        "a shard without a healthy replica: {:?}",
        c.slot_map()
    );
    let r = c.on_replicas(true);
    let mut got = None;
    for _ in 0..200 {
        got = r.get("a:1").await.unwrap();
        if got.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(got.as_deref(), Some(&b"v"[..]));
    let before = gets_on_replicas(&mut cluster);
    for _ in 0..10 {
        r.get("a:1").await.unwrap();
    }
    assert!(
        gets_on_replicas(&mut cluster) >= before + 10,
        "the reads went to replicas"
    );
    let replicas: HashSet<String> = c
        .slot_map()
        .shards()
        .iter()
        .flat_map(|s| s.replicas.clone())
        .collect();
    assert_eq!(replicas.len(), 3);
}

/// GET calls served by the replicas so far.
fn gets_on_replicas(cluster: &mut TestCluster) -> u64 {
    let primaries = cluster.primaries();
    cluster
        .nodes()
        .filter(|n| !primaries.contains(&n.port()))
        .map(|n| {
            n.raw(&["INFO", "commandstats"])
                .lines()
                .find_map(|l| l.strip_prefix("cmdstat_get:calls="))
                .and_then(|l| l.split(',').next())
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum()
}
