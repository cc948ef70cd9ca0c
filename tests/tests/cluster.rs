//! The cluster client against a real six-node cluster: routing by declared keys, split
//! and fanned-out commands, pipelines, transactions, scripts, SCAN, replica reads and text
//! mode. One cluster is started for the whole file; each step uses its own keys.

use redis_client::cluster::{key_slot, ClusterClient, ClusterOptions};
use redis_client::prelude::*;
use redis_client::{Bytes, ConnectionInfo, ErrorKind, ScanOptions, Script, Value};
use redis_tests::TestCluster;
use std::collections::HashSet;
use std::time::Duration;

mod capture;
use capture::Capture;

#[test]
fn cluster_client_end_to_end() {
    let mut cluster = TestCluster::start();
    let c = ClusterClient::open(&cluster.urls()).expect("open");
    c.flushall(None).expect("flushall on every primary");

    slots_agree_with_the_server(&c);
    every_group_works(&c);
    ten_thousand_keys_over_all_slots(&c);
    mget_of_a_thousand_keys_in_caller_order(&c);
    split_commands_merge(&c);
    fan_out_commands_merge(&c);
    cross_slot_requests_refused_before_sending(&c);
    pipelines_in_queue_order(&c);
    pipelines_are_transactions_on_one_slot_unless_told(&c);
    transactions_in_one_slot(&c);
    scripts_routed_by_keys(&c);
    scan_walks_every_node(&c);
    text_mode(&c);
    raw_commands_follow_moved(&c);
    spans_name_their_node_and_redirections_are_events(&c);
    replica_reads(&mut cluster, &c);
    resp3_nodes(&cluster);
}

fn slots_agree_with_the_server(c: &ClusterClient) {
    for key in [
        "foo",
        "bar",
        "{user1000}.following",
        "a{b}c",
        "{}x",
        "",
        "é",
        "x{y",
    ] {
        let server = c.cluster_keyslot(key).expect("CLUSTER KEYSLOT");
        assert_eq!(i64::from(key_slot(key.as_bytes())), server, "{key:?}");
    }
}

fn every_group_works(c: &ClusterClient) {
    // Strings and keys.
    assert!(c.set("s:1", "v").unwrap());
    assert_eq!(c.get("s:1").unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(c.incr("s:n").unwrap(), 1);
    assert_eq!(c.append("s:1", "w").unwrap(), 2);
    assert!(c.expire("s:1", Duration::from_secs(100)).unwrap());
    assert_eq!(c.exists("s:1").unwrap(), 1);
    // Hashes, lists, sets, sorted sets.
    c.hset("h:1", "f", "v").unwrap();
    assert_eq!(c.hget("h:1", "f").unwrap().as_deref(), Some(&b"v"[..]));
    c.rpush("l:1", ["a", "b"]).unwrap();
    assert_eq!(
        c.lrange("l:1", 0, -1).unwrap(),
        vec![Bytes::from("a"), Bytes::from("b")]
    );
    c.sadd("{set}a", ["x", "y"]).unwrap();
    c.sadd("{set}b", ["y", "z"]).unwrap();
    assert_eq!(
        c.sinter(["{set}a", "{set}b"]).unwrap(),
        HashSet::from([Bytes::from("y")])
    );
    c.zadd("z:1", [(1.0, "a"), (2.0, "b")]).unwrap();
    assert_eq!(c.zscore("z:1", "b").unwrap(), Some(2.0));
    // Streams, geo, hyperloglog, bitmaps.
    c.xadd("x:1", "*", [("f", "v")]).unwrap();
    assert_eq!(c.xlen("x:1").unwrap(), 1);
    assert_eq!(
        c.geoadd("g:1", (13.361389, 38.115556, "Palermo")).unwrap(),
        1
    );
    assert!(c.pfadd("p:1", ["a", "b"]).unwrap());
    assert_eq!(c.pfcount("p:1").unwrap(), 2);
    c.setbit("b:1", 7, true).unwrap();
    assert_eq!(c.bitcount("b:1").unwrap(), 1);
    // Pub/sub publishing and blocking commands go to the keys' node.
    assert_eq!(c.spublish("chan", "m").unwrap(), 0);
    c.rpush("q:1", "job").unwrap();
    assert_eq!(
        c.blpop("q:1", Duration::from_secs(1)).unwrap(),
        Some((Bytes::from("q:1"), Bytes::from("job")))
    );
}

fn ten_thousand_keys_over_all_slots(c: &ClusterClient) {
    let keys: Vec<String> = (0..10_000).map(|i| format!("k:{i}")).collect();
    let slots: HashSet<u16> = keys.iter().map(|k| key_slot(k.as_bytes())).collect();
    assert!(
        slots.len() > 7000,
        "the keys cover most slots: {}",
        slots.len()
    );
    for chunk in keys.chunks(2000) {
        let items: Vec<(&str, &str)> = chunk.iter().map(|k| (k.as_str(), k.as_str())).collect();
        assert!(c.mset(&items).unwrap());
    }
    let mut pipe = c.pipeline();
    pipe.transaction(false);
    for k in &keys {
        pipe.get(k);
    }
    let values = pipe.execute().unwrap();
    assert_eq!(values.len(), keys.len());
    for (k, v) in keys.iter().zip(values) {
        assert_eq!(v, Value::BulkString(Bytes::from(k.clone())), "{k}");
    }
}

fn mget_of_a_thousand_keys_in_caller_order(c: &ClusterClient) {
    // Reversed and interleaved with missing keys, so order is the caller's, not a slot's.
    let keys: Vec<String> = (0..1000)
        .rev()
        .map(|i| {
            if i % 7 == 0 {
                format!("missing:{i}")
            } else {
                format!("k:{i}")
            }
        })
        .collect();
    let values = c.mget(&keys).unwrap();
    assert_eq!(values.len(), 1000);
    for (k, v) in keys.iter().zip(&values) {
        if k.starts_with("missing") {
            assert_eq!(v, &None, "{k}");
        } else {
            assert_eq!(v.as_deref(), Some(k.as_bytes()), "{k}");
        }
    }
    let map = c.slot_map();
    let primaries: HashSet<&str> = keys
        .iter()
        .filter_map(|k| map.node(key_slot(k.as_bytes()), Default::default()))
        .collect();
    assert_eq!(primaries.len(), 3, "the keys span every primary");
}

fn split_commands_merge(c: &ClusterClient) {
    let keys = ["del:a", "del:b", "del:c", "del:d"];
    let items: Vec<(&str, i64)> = keys.iter().map(|k| (*k, 1)).collect();
    c.mset(&items).unwrap();
    assert_eq!(c.exists(keys).unwrap(), 4);
    assert_eq!(c.touch(keys).unwrap(), 4);
    assert_eq!(
        c.exists(["del:a", "del:a", "nope"]).unwrap(),
        2,
        "EXISTS counts repeats"
    );
    assert_eq!(c.del(["del:a", "del:b"]).unwrap(), 2);
    assert_eq!(c.unlink(["del:c", "del:d", "del:a"]).unwrap(), 2);
    assert_eq!(c.exists(keys).unwrap(), 0);
}

fn fan_out_commands_merge(c: &ClusterClient) {
    c.flushall(None).unwrap();
    let keys: Vec<String> = (0..300).map(|i| format!("fan:{i}")).collect();
    let items: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), "v")).collect();
    c.mset(&items).unwrap();
    assert_eq!(c.dbsize().unwrap(), 300, "DBSIZE is summed over primaries");
    let mut found = c.keys("fan:*").unwrap();
    found.sort();
    let mut want: Vec<Bytes> = keys.iter().map(|k| Bytes::from(k.clone())).collect();
    want.sort();
    assert_eq!(found, want, "KEYS is concatenated over primaries");
    assert_eq!(c.ping().unwrap(), Bytes::from("PONG"));
    let sha = c.script_load("return 7").unwrap();
    assert_eq!(
        c.script_exists([sha.as_str(), "0000000000000000000000000000000000000000"])
            .unwrap(),
        vec![true, false]
    );
    for node in c.slot_map().primaries() {
        let one = redis_client::Redis::open(&format!("redis://{node}")).unwrap();
        assert_eq!(
            one.script_exists(sha.as_str()).unwrap(),
            vec![true],
            "loaded on {node}"
        );
    }
    // FUNCTION LOAD reaches every primary; a node's error is the command's result.
    let lib = "#!lua name=fanlib\nredis.register_function('fan_seven', function() return 7 end)";
    let first = c.slot_map().primaries()[0].to_string();
    redis_client::Redis::open(&format!("redis://{first}"))
        .unwrap()
        .function_load(lib)
        .unwrap();
    let err = c.function_load(lib).unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    for node in c.slot_map().primaries() {
        let one = redis_client::Redis::open(&format!("redis://{node}")).unwrap();
        assert_eq!(
            one.execute_command(("FCALL", "fan_seven", 0)).unwrap(),
            Value::Integer(7),
            "loaded on {node}"
        );
    }
    c.function_flush(None).unwrap();
    c.config_set("slowlog-max-len", "129").unwrap();
    for node in c.slot_map().nodes() {
        let one = redis_client::Redis::open(&format!("redis://{node}")).unwrap();
        let v = one.config_get("slowlog-max-len").unwrap();
        assert_eq!(
            v.get("slowlog-max-len").map(|s| s.as_str()),
            Some("129"),
            "set on {node}"
        );
    }
    c.flushdb(None).unwrap();
    assert_eq!(c.dbsize().unwrap(), 0);
}

/// Issue 29: a cluster pipeline has the single-server pipeline's methods and defaults: a
/// MULTI … EXEC transaction unless `transaction(false)`, refused before sending when its
/// keys span slots with an error naming the way out; `raise_on_error`, `execute_command`,
/// `invoke_script`, `query` and the typed pipeline, in byte and text mode.
fn pipelines_are_transactions_on_one_slot_unless_told(c: &ClusterClient) {
    let multi_calls = || -> i64 {
        let mut calls = 0;
        for node in c.slot_map().primaries() {
            let one = redis_client::Redis::open(&format!("redis://{node}")).unwrap();
            let stats = one.info_section("commandstats").unwrap();
            calls += stats
                .get("cmdstat_multi")
                .and_then(|v| v.fields()?.get("calls")?.as_int())
                .unwrap_or(0);
        }
        calls
    };
    let before = multi_calls();
    let mut pipe = c.pipeline();
    pipe.set("{d}:a", 1).incr("{d}:a").get("{d}:a");
    let (stored, n, got): (bool, i64, Option<i64>) = pipe.query().unwrap();
    assert_eq!((stored, n, got), (true, 2, Some(2)));
    assert_eq!(
        multi_calls(),
        before + 1,
        "a default pipeline is MULTI … EXEC"
    );

    pipe.set("d:one", 1).set("d:two", 2);
    let err = pipe.execute().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CrossSlot, "{err}");
    assert!(err.to_string().contains("transaction(false)"), "{err}");
    assert_eq!(c.exists(["d:one", "d:two"]).unwrap(), 0, "nothing was sent");
    assert!(pipe.is_empty(), "the queue is emptied");

    pipe.transaction(false)
        .set("d:one", 1)
        .set("d:two", "x")
        .incr("d:two")
        .execute_command(("GET", "d:one"));
    let err = pipe.execute().unwrap_err();
    assert!(
        matches!(err, redis_client::Error::PipelineCommand { index: 2, .. }),
        "{err:?}"
    );
    pipe.transaction(false)
        .raise_on_error(false)
        .incr("d:two")
        .get("d:one");
    let values = pipe.execute().unwrap();
    assert!(matches!(values[0], Value::Error(_)), "{values:?}");
    assert_eq!(values[1], Value::BulkString(Bytes::from("1")));

    let script = Script::new("return redis.call('INCRBY', KEYS[1], ARGV[1])");
    c.script_flush(None).unwrap();
    let mut pipe = c.pipeline();
    pipe.invoke_script(script.key("{d}:s").arg(5))
        .invoke_script(script.key("{d}:s").arg(1));
    assert_eq!(pipe.query::<(i64, i64)>().unwrap(), (5, 6));

    let (stored, value, n) = c
        .typed_pipeline()
        .set("{d}:t", "v")
        .get("{d}:t")
        .incr("{d}:n")
        .execute()
        .unwrap();
    assert_eq!((stored, value, n), (true, Some(Bytes::from("v")), 1));
    let (value, other): (Option<String>, Option<String>) = c
        .text()
        .typed_pipeline()
        .transaction(false)
        .get("{d}:t")
        .get("d:one")
        .execute()
        .unwrap();
    assert_eq!((value.as_deref(), other.as_deref()), (Some("v"), Some("1")));
}

fn cross_slot_requests_refused_before_sending(c: &ClusterClient) {
    let err = c.sunion(["foo", "bar"]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CrossSlot, "{err}");
    let err = c.rename("foo", "bar").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CrossSlot, "{err}");

    let mut tx = c.pipeline();
    tx.transaction(true).set("foo", "tx").set("bar", "tx");
    let err = tx.execute().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CrossSlot, "{err}");
    assert_eq!(c.get("foo").unwrap(), None, "nothing was sent");
    assert_eq!(c.get("bar").unwrap(), None, "nothing was sent");

    c.config_resetstat().unwrap();
    let err = c
        .transaction(["foo", "bar"], |w| Ok(w.multi()))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CrossSlot, "{err}");
    for node in c.slot_map().primaries() {
        let one = redis_client::Redis::open(&format!("redis://{node}")).unwrap();
        let stats = one.execute_command(("INFO", "commandstats")).unwrap();
        let stats = format!("{stats:?}");
        assert!(!stats.contains("cmdstat_watch"), "WATCH sent to {node}");
    }
    // The check can see a WATCH: one sent straight to a node shows.
    let node = c
        .slot_map()
        .node(key_slot(b"foo"), Default::default())
        .unwrap()
        .to_string();
    let one = redis_client::Redis::open(&format!("redis://{node}")).unwrap();
    one.execute_command(("WATCH", "foo")).unwrap();
    let stats = format!(
        "{:?}",
        one.execute_command(("INFO", "commandstats")).unwrap()
    );
    assert!(stats.contains("cmdstat_watch"), "{stats}");
    let err = c
        .invoke_script::<i64>(Script::new("return 1").key("foo").key("bar"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CrossSlot, "{err}");
}

fn pipelines_in_queue_order(c: &ClusterClient) {
    let mut pipe = c.pipeline();
    pipe.transaction(false);
    pipe.set("p:a", 1)
        .set("p:b", 2)
        .incr("p:a")
        .mget(["p:b", "p:a", "p:none"])
        .get("p:b")
        .dbsize();
    let (s1, s2, n, m, b, size): (bool, bool, i64, Vec<Option<i64>>, Option<i64>, i64) =
        pipe.query().unwrap();
    assert!(s1 && s2);
    assert_eq!(n, 2);
    assert_eq!(m, vec![Some(2), Some(2), None]);
    assert_eq!(b, Some(2));
    assert_eq!(size, 2);
    assert!(pipe.is_empty());

    // A command split over several slots runs where it was queued, before what follows
    // it on the same node: the SET queued after the DEL is not undone by it.
    c.mset([("p:a", "old"), ("p:b", "old")]).unwrap();
    let mut pipe = c.pipeline();
    pipe.transaction(false);
    pipe.del(["p:a", "p:b"])
        .set("p:a", "new")
        .mget(["p:a", "p:b"])
        .incr("p:b")
        .exists(["p:a", "p:b"]);
    let (deleted, set, m, n, e): (i64, bool, Vec<Option<String>>, i64, i64) = pipe.query().unwrap();
    assert_eq!((deleted, set, n, e), (2, true, 1, 2));
    assert_eq!(m, vec![Some("new".to_owned()), None]);
    assert_eq!(c.get("p:a").unwrap().as_deref(), Some(&b"new"[..]));

    let mut pipe = c.pipeline();
    pipe.transaction(false);
    pipe.set("p:a", "x").incr("p:a").get("p:a");
    let err = pipe.execute().unwrap_err();
    assert!(
        matches!(err, redis_client::Error::PipelineCommand { index: 1, .. }),
        "{err}"
    );
}

fn transactions_in_one_slot(c: &ClusterClient) {
    let mut tx = c.pipeline();
    tx.transaction(true)
        .set("{acct}:a", 10)
        .set("{acct}:b", 5)
        .incrby("{acct}:a", -3)
        .incrby("{acct}:b", 3);
    let v = tx.execute().unwrap();
    assert_eq!(v[2], Value::Integer(7));
    let out = c
        .transaction(["{acct}:a", "{acct}:b"], |mut w| {
            let a: i64 = w.reply_as::<i64>().get("{acct}:a")?;
            let mut pipe = w.multi();
            pipe.set("{acct}:a", a * 2);
            Ok(pipe)
        })
        .unwrap();
    assert_eq!(out, vec![Value::Boolean(true)]);
    assert_eq!(c.reply_as::<i64>().get("{acct}:a").unwrap(), 14);
}

fn scripts_routed_by_keys(c: &ClusterClient) {
    c.script_flush(None).unwrap();
    let script = Script::new("return redis.call('INCRBY', KEYS[1], ARGV[1])");
    // Flushed everywhere: the first call loads it through EVAL on the key's node.
    for key in ["sc:1", "sc:2", "sc:3", "sc:4"] {
        let n: i64 = c.invoke_script(script.key(key).arg(5)).unwrap();
        assert_eq!(n, 5, "{key}");
        let n: i64 = c.invoke_script(script.key(key).arg(5)).unwrap();
        assert_eq!(n, 10, "{key}");
    }
    let v = c.eval("return KEYS[1]", ["{t}1", "{t}2"], 2).unwrap();
    assert_eq!(v, Value::BulkString(Bytes::from("{t}1")));
}

fn scan_walks_every_node(c: &ClusterClient) {
    c.flushall(None).unwrap();
    let keys: Vec<String> = (0..500).map(|i| format!("scan:{i}")).collect();
    let items: Vec<(&str, i64)> = keys.iter().map(|k| (k.as_str(), 1)).collect();
    c.mset(&items).unwrap();
    c.set("other", 1).unwrap();
    let seen: HashSet<Bytes> = c
        .scan_iter(ScanOptions::new().pattern("scan:*").count(50))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(seen.len(), 500);
    assert!(seen.iter().all(|k| k.starts_with(b"scan:")));
}

fn text_mode(c: &ClusterClient) {
    let t = c.text();
    t.set("t:1", "héllo").unwrap();
    let v: Option<String> = t.get("t:1").unwrap();
    assert_eq!(v.as_deref(), Some("héllo"));
    let all: Vec<Option<String>> = t.mget(["t:1", "t:2", "foo"]).unwrap();
    assert_eq!(all, vec![Some("héllo".to_owned()), None, None]);
    let mut pipe = t.pipeline();
    pipe.transaction(false);
    pipe.get("t:1");
    assert_eq!(
        pipe.execute().unwrap(),
        vec![Value::BulkString(Bytes::from("héllo"))]
    );
}

fn raw_commands_follow_moved(c: &ClusterClient) {
    // No declared keys: sent to any primary, so most land on the wrong node and follow
    // MOVED.
    for i in 0..30 {
        let key = format!("raw:{i}");
        c.execute_command(("SET", key.as_str(), i)).unwrap();
        assert_eq!(
            c.execute_command(("GET", key.as_str())).unwrap(),
            Value::BulkString(Bytes::from(i.to_string()))
        );
    }
    assert_eq!(
        c.execute_command(("DBSIZE",)).unwrap(),
        Value::Integer(c.dbsize().unwrap())
    );
}

fn spans_name_their_node_and_redirections_are_events(c: &ClusterClient) {
    let capture = Capture::default();
    tracing::subscriber::with_default(capture.subscriber(), || {
        for i in 0..30 {
            c.execute_command(("GET", format!("raw:{i}").as_str()))
                .unwrap();
        }
        let mut pipe = c.pipeline();
        pipe.transaction(false);
        pipe.set("obs:a", 1).set("obs:b", 2);
        pipe.execute().unwrap();
    });
    let commands = capture.spans_named("redis.command");
    assert!(
        commands.len() >= 30,
        "one span per attempt: {}",
        commands.len()
    );
    let nodes: HashSet<String> = commands
        .iter()
        .map(|s| {
            format!(
                "{}:{}",
                s.get("server.address").unwrap(),
                s.get("server.port").unwrap()
            )
        })
        .collect();
    assert!(nodes.len() >= 2, "spans name the nodes tried: {nodes:?}");
    // Raw commands have no declared keys, so some land on the wrong node and are moved;
    // each redirection names a node that a later attempt's span names too.
    let redirections = capture.events_named("redis.redirection");
    assert!(!redirections.is_empty());
    for e in &redirections {
        assert_eq!(e.get("kind"), Some("MOVED"));
        assert!(
            nodes.contains(e.get("to").unwrap()),
            "{e:?} not in {nodes:?}"
        );
    }
    let pipelines = capture.spans_named("redis.pipeline");
    assert_eq!(pipelines.len(), 1);
    assert_eq!(pipelines[0].get("db.operation.batch.size"), Some("2"));
}

fn replica_reads(cluster: &mut TestCluster, c: &ClusterClient) {
    let gets_on_replicas = |cluster: &mut TestCluster| -> u64 {
        let primaries = cluster.primaries();
        cluster
            .nodes()
            .filter(|n| !primaries.contains(&n.port()))
            .map(|n| {
                let stats = n.raw(&["INFO", "commandstats"]);
                stats
                    .lines()
                    .find_map(|l| l.strip_prefix("cmdstat_get:calls="))
                    .and_then(|l| l.split(',').next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0)
            })
            .sum()
    };
    let before = gets_on_replicas(cluster);
    // The harness returns once every node reports every replica online, so the map the
    // client fetched when it opened lists them all.
    let every_replica = |c: &ClusterClient| {
        let map = c.slot_map();
        assert!(
            map.shards().iter().all(|s| s.replicas.len() == 1),
            "a shard without its replica: {:?}",
            map.shards()
        );
    };
    every_replica(c);
    c.set("r:1", "v").unwrap();
    let replicas = c.on_replicas(true);
    let mut got = None;
    // Replication is asynchronous: the replica may lag a moment.
    for _ in 0..200 {
        got = replicas.get("r:1").unwrap();
        if got.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(got.as_deref(), Some(&b"v"[..]));
    assert!(
        gets_on_replicas(cluster) > before,
        "the reads went to replicas"
    );
    // Writes through the replica handle still go to primaries.
    assert!(replicas.set("r:2", "w").unwrap());

    let client_wide = ClusterClient::with_options(
        cluster.urls().iter().map(|u| u.parse().unwrap()).collect(),
        ClusterOptions::default().with_read_from_replicas(true),
    )
    .unwrap();
    every_replica(&client_wide);
    let before = gets_on_replicas(cluster);
    for _ in 0..10 {
        let _ = client_wide.get("r:1").unwrap();
    }
    assert!(
        gets_on_replicas(cluster) >= before + 10,
        "every read went to a replica"
    );
}

/// The first seed's settings (here RESP3 and a client name) apply to every node; the other
/// seeds give only addresses.
fn resp3_nodes(cluster: &TestCluster) {
    let seeds: Vec<ConnectionInfo> = cluster
        .urls()
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let info = u.parse::<ConnectionInfo>().unwrap();
            if i == 0 {
                info.with_protocol(redis_client::Protocol::Resp3)
                    .with_client_name("first-seed")
            } else {
                info
            }
        })
        .collect();
    let c = ClusterClient::with_options(seeds, ClusterOptions::default()).unwrap();
    let keys: Vec<String> = (0..100).map(|i| format!("r3:{i}")).collect();
    let items: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), "1")).collect();
    c.mset(&items).unwrap();
    assert_eq!(c.mget(&keys).unwrap().len(), 100);
    assert!(c.slot_map().is_complete());
    for node in c.slot_map().primaries() {
        let one = redis_client::Redis::open(&format!("redis://{node}")).unwrap();
        let list = one.client_list().unwrap();
        let ours: Vec<_> = list
            .iter()
            .filter(|c| c.get("name") == Some("first-seed"))
            .collect();
        assert!(
            !ours.is_empty(),
            "no connection named by the first seed on {node}: {list:?}"
        );
        assert!(
            ours.iter().all(|c| c.get("resp") == Some("3")),
            "not RESP3 on {node}: {ours:?}"
        );
    }
}
