//! A Redis Cluster from a few seed URLs: the same command methods as on one server, keys
//! spread over every node, multi-key commands split per node, hash tags for keys that
//! belong together, and a whole-cluster SCAN.
//!
//! `REDIS_CLUSTER_URLS=redis://127.0.0.1:7000,redis://127.0.0.1:7001 cargo run --example cluster`

use redis_client::cluster::ClusterClient;
use redis_client::prelude::*;
use redis_client::{ErrorKind, ScanOptions};

fn main() -> Result<(), redis_client::Error> {
    let seeds: Vec<String> = std::env::var("REDIS_CLUSTER_URLS")
        .unwrap_or_else(|_| "redis://127.0.0.1:7000".into())
        .split(',')
        .map(str::to_owned)
        .collect();
    let c = ClusterClient::open(&seeds)?.text();

    // 1,000 keys land in slots all over the cluster; MSET and MGET are split per node,
    // each node's part sent at once, and the replies come back in the caller's order.
    let users: Vec<(String, String)> = (0..1000)
        .map(|i| (format!("user:{i}"), format!("name-{i}")))
        .collect();
    c.mset(&users)?;
    let names = c.mget(["user:1", "user:500", "user:999"])?;
    println!("MGET across slots -> {names:?}");

    // Keys sharing a hash tag ({cart:7}) share a slot, so they can go in one transaction:
    // a pipeline is MULTI … EXEC by default, as on one server.
    let mut tx = c.pipeline();
    tx.rpush("{cart:7}:items", "apple").incr("{cart:7}:count");
    let replies = tx.execute()?;
    println!("transaction on {{cart:7}} -> {} replies", replies.len());

    // A transaction over keys of several slots cannot be atomic: refused before sending,
    // the error saying to use a hash tag or `transaction(false)`.
    let mut cross = c.pipeline();
    cross.incr("a").incr("b");
    match cross.execute() {
        Err(e) if e.kind() == ErrorKind::CrossSlot => println!("cross-slot transaction refused"),
        other => println!("unexpected: {other:?}"),
    }
    // Without MULTI … EXEC the commands go to their nodes, grouped per node (not atomic).
    cross.transaction(false).incr("a").incr("b");
    println!("pipeline over two slots -> {:?}", cross.execute()?);

    // SCAN walks every primary in turn; DBSIZE is summed over them.
    let found = c
        .scan_iter(ScanOptions::new().pattern("user:*").count(500))
        .filter(Result::is_ok)
        .count();
    println!("SCAN user:* over the cluster -> {found} keys");
    println!("DBSIZE over the primaries -> {}", c.dbsize()?);
    Ok(())
}
