//! Hostile and broken cluster nodes, for the blocking and the async cluster clients:
//! malformed slot maps, redirection loops, split commands answered with the wrong shape
//! or not at all. Each call ends within its budget with a typed error, and never hands
//! the caller a reply that is not its own.
//!
//! The nodes are scripted fakes, since a real Redis cannot be made to send these.

use redis_client::cluster::{aio, key_slot, ClusterClient, ClusterOptions};
use redis_client::prelude::*;
use redis_client::{Bytes, ConnectionInfo, Error, ErrorCode, RetryPolicy};
use redis_tests::{FakeConn, FakeServer};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Every call's budget.
const BUDGET: Duration = Duration::from_millis(600);
/// How late past its budget a call may end (scheduling on a busy machine).
const SLACK: Duration = Duration::from_millis(400);

/// `CLUSTER SHARDS` for nodes at `ports`, node `i` serving the `i`-th equal share of the
/// slots.
fn shards_reply(ports: &[u16]) -> Vec<u8> {
    let n = ports.len();
    let mut out = format!("*{n}\r\n");
    for (i, port) in ports.iter().enumerate() {
        let lo = i * 16384 / n;
        let hi = (i + 1) * 16384 / n - 1;
        out += &format!("*4\r\n$5\r\nslots\r\n*2\r\n:{lo}\r\n:{hi}\r\n$5\r\nnodes\r\n");
        out += "*1\r\n*8\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$4\r\nport\r\n";
        out += &format!(":{port}\r\n");
        out += "$4\r\nrole\r\n$6\r\nmaster\r\n$6\r\nhealth\r\n$6\r\nonline\r\n";
    }
    out.into_bytes()
}

/// What a scripted node does with a request other than `CLUSTER …`: it is given the
/// node's index, every node's port, the connection and the request.
type Script = dyn Fn(usize, &[u16], &mut FakeConn, &[Vec<u8>]) + Send + Sync;

/// `n` scripted nodes of one cluster; each answers `CLUSTER SHARDS` with the map of
/// [`shards_reply`] and passes every other request to `script`.
fn fake_cluster(
    n: usize,
    script: impl Fn(usize, &[u16], &mut FakeConn, &[Vec<u8>]) + Send + Sync + 'static,
) -> Vec<FakeServer> {
    let ports: Arc<Mutex<Vec<u16>>> = Arc::default();
    let script: Arc<Script> = Arc::new(script);
    let fakes: Vec<FakeServer> = (0..n)
        .map(|i| {
            let (ports, script) = (ports.clone(), script.clone());
            FakeServer::start(move |mut c: FakeConn| {
                while let Some(args) = c.read_request() {
                    let ports = ports.lock().unwrap().clone();
                    if args[0].eq_ignore_ascii_case(b"CLUSTER") {
                        c.write(&shards_reply(&ports));
                    } else {
                        script(i, &ports, &mut c, &args);
                    }
                }
            })
        })
        .collect();
    *ports.lock().unwrap() = fakes.iter().map(FakeServer::port).collect();
    fakes
}

fn options() -> ClusterOptions {
    ClusterOptions::default()
        .with_refresh_interval(None)
        .with_retry_policy(
            RetryPolicy::default()
                .with_backoff(Duration::from_millis(10), Duration::from_millis(20))
                .with_budget(Some(BUDGET)),
        )
}

fn seeds(fakes: &[FakeServer]) -> Vec<ConnectionInfo> {
    fakes
        .iter()
        .map(|f| ConnectionInfo::tcp("127.0.0.1", f.port()).with_connect_timeout(Some(BUDGET)))
        .collect()
}

fn blocking(fakes: &[FakeServer]) -> ClusterClient {
    ClusterClient::with_options(seeds(fakes), options()).expect("open")
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn asynchronous(rt: &tokio::runtime::Runtime, fakes: &[FakeServer]) -> aio::ClusterClient {
    rt.block_on(aio::ClusterClient::with_options(seeds(fakes), options()))
        .expect("open")
}

/// The call ended within its budget.
fn in_time(took: Duration, what: &str) {
    assert!(took < BUDGET + SLACK, "{what} took {took:?}");
}

/// Runs `call`, which must fail within its budget; returns its error.
fn fails_in_time<T: std::fmt::Debug>(what: &str, call: impl FnOnce() -> Result<T, Error>) -> Error {
    let t = Instant::now();
    let r = call();
    in_time(t.elapsed(), what);
    r.expect_err(what)
}

/// Two keys on the two nodes of a two-node fake cluster: `b` on node 0, `a` on node 1.
fn keys_on_two_nodes() -> [&'static str; 2] {
    assert!(key_slot(b"b") < 8192 && key_slot(b"a") >= 8192);
    ["a", "b"]
}

// ---------------------------------------------------------------------------------------
// Split commands answered with the wrong shape.

/// A two-node cluster whose node 0 answers MGET as asked (`v` per key) and whose node 1
/// answers any command with `reply`.
fn one_node_answers(reply: &'static [u8]) -> Vec<FakeServer> {
    fake_cluster(2, move |i, _, c, args| {
        if i == 1 {
            c.write(reply);
        } else if args[0].eq_ignore_ascii_case(b"MGET") {
            c.write(format!("*{}\r\n", args.len() - 1).as_bytes());
            for _ in 1..args.len() {
                c.write(b"$1\r\nv\r\n");
            }
        } else {
            c.write(b"+OK\r\n");
        }
    })
}

/// Replies a node may give to its part of a split MGET that are not an array of one
/// value per key.
const WRONG_MGET_PARTS: &[&[u8]] = &[
    b":7\r\n",
    b"$-1\r\n",
    b"+OK\r\n",
    b"*2\r\n$1\r\nx\r\n$1\r\ny\r\n",
];

#[test]
fn a_split_mget_part_of_the_wrong_shape_is_an_error() {
    let rt = rt();
    for &reply in WRONG_MGET_PARTS {
        let fakes = one_node_answers(reply);
        let what = String::from_utf8_lossy(reply).trim().to_owned();
        let c = blocking(&fakes);
        let r = c.mget::<_>(keys_on_two_nodes());
        assert!(
            matches!(r, Err(Error::Cluster(_))),
            "blocking, part answered {what}: {r:?}"
        );
        let c = asynchronous(&rt, &fakes);
        let r = rt.block_on(c.mget::<_>(keys_on_two_nodes()));
        assert!(
            matches!(r, Err(Error::Cluster(_))),
            "async, part answered {what}: {r:?}"
        );
    }
}

#[test]
fn a_split_mset_part_answered_otherwise_than_ok_is_an_error() {
    let rt = rt();
    for reply in [&b":1\r\n"[..], b"*0\r\n", b"$-1\r\n"] {
        let fakes = one_node_answers(reply);
        let what = String::from_utf8_lossy(reply).trim().to_owned();
        let pairs = [("a", "1"), ("b", "2")];
        let c = blocking(&fakes);
        let r = c.mset(pairs);
        assert!(
            matches!(r, Err(Error::Cluster(_))),
            "blocking, part answered {what}: {r:?}"
        );
        let c = asynchronous(&rt, &fakes);
        let r = rt.block_on(c.mset(pairs));
        assert!(
            matches!(r, Err(Error::Cluster(_))),
            "async, part answered {what}: {r:?}"
        );
    }
}

#[test]
fn a_split_del_part_that_is_not_an_integer_is_an_error() {
    let rt = rt();
    let fakes = one_node_answers(b"+OK\r\n");
    let c = blocking(&fakes);
    let r = c.del(keys_on_two_nodes());
    assert!(matches!(r, Err(Error::Cluster(_))), "blocking: {r:?}");
    let c = asynchronous(&rt, &fakes);
    let r = rt.block_on(c.del(keys_on_two_nodes()));
    assert!(matches!(r, Err(Error::Cluster(_))), "async: {r:?}");
}

// ---------------------------------------------------------------------------------------
// Redirections.

/// Two nodes that send every command to each other with `MOVED`.
fn moved_ping_pong() -> Vec<FakeServer> {
    fake_cluster(2, |i, ports, c, args| {
        let slot = key_slot(args.get(1).map_or(&b""[..], |k| k));
        c.write(format!("-MOVED {slot} 127.0.0.1:{}\r\n", ports[1 - i]).as_bytes());
    })
}

#[test]
fn a_moved_loop_ends_within_the_budget_with_the_moved_error() {
    let rt = rt();
    let fakes = moved_ping_pong();
    let check = |r: redis_client::Result<Option<Bytes>>, took: Duration, what: &str| {
        in_time(took, what);
        match r {
            Err(Error::Server(e)) => assert_eq!(e.code(), ErrorCode::MOVED, "{what}"),
            other => panic!("{what}: {other:?}"),
        }
    };
    let c = blocking(&fakes);
    let t = Instant::now();
    check(c.get("k"), t.elapsed(), "blocking");
    let c = asynchronous(&rt, &fakes);
    let t = Instant::now();
    check(rt.block_on(c.get("k")), t.elapsed(), "async");
}

/// A one-node cluster whose node redirects every command with `reply(port)`, `port`
/// being its own.
fn redirecting(reply: fn(u16, u16) -> String, extra: u16) -> Vec<FakeServer> {
    fake_cluster(1, move |_, ports, c, args| {
        let _ = args;
        c.write(reply(ports[0], extra).as_bytes());
    })
}

#[test]
fn unusable_redirections_are_the_servers_error_at_once() {
    let rt = rt();
    let replies: &[fn(u16, u16) -> String] = &[
        |_, _| "-MOVED 99999 127.0.0.1:1\r\n".into(),
        |_, _| "-MOVED 1 nohost\r\n".into(),
        |_, _| "-MOVED -1 127.0.0.1:7000\r\n".into(),
        |_, _| "-ASK 1 127.0.0.1:99999\r\n".into(),
        |_, _| "-MOVED\r\n".into(),
    ];
    for reply in replies {
        let fakes = redirecting(*reply, 0);
        let what = reply(0, 0);
        let c = blocking(&fakes);
        let e = fails_in_time(&what, || c.get("k"));
        assert!(matches!(e, Error::Server(_)), "blocking, {what}: {e:?}");
        let c = asynchronous(&rt, &fakes);
        let e = fails_in_time(&what, || rt.block_on(c.get("k")));
        assert!(matches!(e, Error::Server(_)), "async, {what}: {e:?}");
    }
}

#[test]
fn an_ask_to_a_node_that_never_answers_ends_within_the_budget() {
    let rt = rt();
    let silent = FakeServer::start(|mut c: FakeConn| c.hold(Duration::from_secs(10)));
    let port = silent.port();
    let fakes = fake_cluster(1, move |_, _, c, _| {
        c.write(format!("-ASK 1 127.0.0.1:{port}\r\n").as_bytes());
    });
    let c = blocking(&fakes);
    fails_in_time("blocking", || c.get("k"));
    let c = asynchronous(&rt, &fakes);
    fails_in_time("async", || rt.block_on(c.get("k")));
}

#[test]
fn a_moved_to_a_closed_port_ends_within_the_budget() {
    let rt = rt();
    let closed = FakeServer::closing();
    let port = closed.port();
    let fakes = fake_cluster(1, move |_, _, c, args| {
        let slot = key_slot(args.get(1).map_or(&b""[..], |k| k));
        c.write(format!("-MOVED {slot} 127.0.0.1:{port}\r\n").as_bytes());
    });
    let c = blocking(&fakes);
    fails_in_time("blocking", || c.get("k"));
    let c = asynchronous(&rt, &fakes);
    fails_in_time("async", || rt.block_on(c.get("k")));
}

// ---------------------------------------------------------------------------------------
// A node that stalls mid-reply during a split MGET.

/// A two-node cluster whose node 1 answers its first MGET with half a reply and then
/// nothing; every other MGET is answered with the keys as values.
fn stalling_once() -> Vec<FakeServer> {
    let stalled = Arc::new(AtomicUsize::new(0));
    fake_cluster(2, move |i, _, c, args| {
        let n = args.len() - 1;
        if i == 1 && stalled.fetch_add(1, Ordering::SeqCst) == 0 {
            // A later command on this connection would read the rest as its own.
            c.write(format!("*{n}\r\n$6\r\nstal").as_bytes());
            c.hold(Duration::from_secs(5));
            return;
        }
        c.write(format!("*{n}\r\n").as_bytes());
        for k in &args[1..] {
            let k = String::from_utf8_lossy(k);
            c.write(format!("${}\r\n{k}\r\n", k.len()).as_bytes());
        }
    })
}

#[test]
fn a_node_stalling_mid_reply_fails_the_split_call_and_its_connection_is_not_reused() {
    let rt = rt();
    let want = vec![Some(Bytes::from("a")), Some(Bytes::from("b"))];
    let fakes = stalling_once();
    let c = blocking(&fakes);
    fails_in_time("blocking", || c.mget::<_>(keys_on_two_nodes()));
    let got: Vec<Option<Bytes>> = c.mget(keys_on_two_nodes()).unwrap();
    assert_eq!(got, want, "blocking, next call");
    let fakes = stalling_once();
    let c = asynchronous(&rt, &fakes);
    fails_in_time("async", || rt.block_on(c.mget::<_>(keys_on_two_nodes())));
}

// ---------------------------------------------------------------------------------------
// Malformed slot maps.

/// A seed that answers every `CLUSTER …` with `reply`.
fn map_server(reply: Vec<u8>) -> FakeServer {
    FakeServer::start(move |mut c: FakeConn| {
        while c.read_request().is_some() {
            c.write(&reply);
        }
    })
}

/// One shard of a `CLUSTER SHARDS` reply with the given slot bounds and node fields.
fn shard(slots: &str, node: &str) -> String {
    format!("*4\r\n$5\r\nslots\r\n{slots}$5\r\nnodes\r\n*1\r\n{node}")
}

fn node(port: &str, role: &str) -> String {
    format!("*8\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$4\r\nport\r\n{port}$4\r\nrole\r\n{role}$6\r\nhealth\r\n$6\r\nonline\r\n")
}

#[test]
fn malformed_slot_maps_are_refused_with_a_cluster_error() {
    let rt = rt();
    let master = "$6\r\nmaster\r\n";
    let full = "*2\r\n:0\r\n:16383\r\n";
    let cases: Vec<(&str, String)> = vec![
        ("not an array", ":1\r\n".into()),
        ("shard not a map", "*1\r\n:1\r\n".into()),
        ("odd field list", "*1\r\n*1\r\n$5\r\nslots\r\n".into()),
        (
            "slots not an array",
            format!("*1\r\n{}", shard(":1\r\n", &node(":1\r\n", master))),
        ),
        (
            "odd slot bounds",
            format!("*1\r\n{}", shard("*1\r\n:0\r\n", &node(":1\r\n", master))),
        ),
        (
            "reversed range",
            format!(
                "*1\r\n{}",
                shard("*2\r\n:9\r\n:3\r\n", &node(":1\r\n", master))
            ),
        ),
        (
            "slot past 16383",
            format!(
                "*1\r\n{}",
                shard("*2\r\n:0\r\n:16384\r\n", &node(":1\r\n", master))
            ),
        ),
        (
            "negative slot",
            format!(
                "*1\r\n{}",
                shard("*2\r\n:-1\r\n:5\r\n", &node(":1\r\n", master))
            ),
        ),
        (
            "negative port",
            format!("*1\r\n{}", shard(full, &node(":-1\r\n", master))),
        ),
        (
            "port past 65535",
            format!("*1\r\n{}", shard(full, &node(":65536\r\n", master))),
        ),
        (
            "port as text",
            format!("*1\r\n{}", shard(full, &node("$4\r\n6379\r\n", master))),
        ),
        (
            "nested garbage",
            "*1\r\n*2\r\n*1\r\n*1\r\n*0\r\n:1\r\n".into(),
        ),
        ("error", "-ERR no\r\n".into()),
    ];
    for (what, reply) in cases {
        let fake = map_server(reply.into_bytes());
        let t = Instant::now();
        let r = ClusterClient::with_options(seeds(std::slice::from_ref(&fake)), options());
        in_time(t.elapsed(), what);
        assert!(
            matches!(r, Err(Error::Cluster(_))),
            "blocking, {what}: {:?}",
            r.err()
        );
        let t = Instant::now();
        let r = rt.block_on(aio::ClusterClient::with_options(
            seeds(std::slice::from_ref(&fake)),
            options(),
        ));
        in_time(t.elapsed(), what);
        assert!(
            matches!(r, Err(Error::Cluster(_))),
            "async, {what}: {:?}",
            r.err()
        );
    }
}

/// A seed that refuses `CLUSTER SHARDS` (a server before Redis 7) and answers
/// `CLUSTER SLOTS` with `reply`.
fn slots_server(reply: Vec<u8>) -> FakeServer {
    FakeServer::start(move |mut c: FakeConn| {
        while let Some(args) = c.read_request() {
            if args
                .get(1)
                .is_some_and(|a| a.eq_ignore_ascii_case(b"SHARDS"))
            {
                c.write(b"-ERR unknown subcommand\r\n");
            } else {
                c.write(&reply);
            }
        }
    })
}

/// A `CLUSTER SLOTS` reply of `n` entries, entry `i` giving `range(i)` to a primary of
/// its own (hosts are never connected to: the map is refused or the test ends first).
fn slots_entries(n: usize, range: impl Fn(usize) -> (usize, usize)) -> Vec<u8> {
    let mut out = format!("*{n}\r\n");
    for i in 0..n {
        let (lo, hi) = range(i);
        let host = format!("h{i}");
        out += &format!(
            "*3\r\n:{lo}\r\n:{hi}\r\n*2\r\n${}\r\n{host}\r\n:1\r\n",
            host.len()
        );
    }
    out.into_bytes()
}

/// A `CLUSTER SHARDS` reply of `n` shards, each serving every slot.
fn whole_range_shards(n: usize) -> Vec<u8> {
    let mut out = format!("*{n}\r\n");
    for i in 0..n {
        let port = format!(":{}\r\n", i + 1);
        out += &shard("*2\r\n:0\r\n:16383\r\n", &node(&port, "$6\r\nmaster\r\n"));
    }
    out.into_bytes()
}

/// Opens both clients on `seed`; the time each took and whether it opened.
fn open_both(
    rt: &tokio::runtime::Runtime,
    seed: &FakeServer,
) -> [(Duration, Result<(), Error>); 2] {
    let seeds = || seeds(std::slice::from_ref(seed));
    let t = Instant::now();
    let b = ClusterClient::with_options(seeds(), options()).map(drop);
    let b = (t.elapsed(), b);
    let t = Instant::now();
    let a = rt
        .block_on(aio::ClusterClient::with_options(seeds(), options()))
        .map(drop);
    [b, (t.elapsed(), a)]
}

#[test]
fn an_enormous_slot_map_is_refused_within_the_budget() {
    let rt = rt();
    // Slots listed again and again, each by a primary of its own: quadratic work, and
    // more shards than the map can number, before the fix.
    let cases = [
        (
            "20,000 one-slot entries",
            slots_server(slots_entries(20_000, |i| (i % 16384, i % 16384))),
        ),
        (
            "10,000 whole-range entries",
            slots_server(slots_entries(10_000, |_| (0, 16383))),
        ),
        (
            "10,000 whole-range shards",
            map_server(whole_range_shards(10_000)),
        ),
    ];
    for (what, seed) in cases {
        for (took, r) in open_both(&rt, &seed) {
            in_time(took, what);
            assert!(matches!(r, Err(Error::Cluster(_))), "{what}: {r:?}");
        }
    }
}

#[test]
fn a_map_of_one_primary_per_slot_is_accepted_within_the_budget() {
    let rt = rt();
    let seed = slots_server(slots_entries(16384, |i| (i, i)));
    for (took, r) in open_both(&rt, &seed) {
        in_time(took, "16,384 primaries");
        r.unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// Replies a node owes no one, and roles no node has.

#[test]
fn an_extra_reply_after_a_split_part_is_never_handed_to_a_later_call() {
    let rt = rt();
    let fakes = fake_cluster(2, |i, _, c, args| {
        if args[0].eq_ignore_ascii_case(b"MGET") {
            // One write: the extra reply is in the client's socket as soon as the MGET's
            // own is. (One that came later than the client's next request could not be
            // told from that request's reply by any client: docs/reliability.md.)
            let mut out = format!("*{}\r\n", args.len() - 1);
            for k in &args[1..] {
                let k = String::from_utf8_lossy(k);
                out += &format!("${}\r\n{k}\r\n", k.len());
            }
            if i == 1 {
                // A reply nobody asked for, where the next command's would come.
                out += "$5\r\nextra\r\n";
            }
            c.write(out.as_bytes());
        } else {
            c.write(b"$4\r\nmine\r\n");
        }
    });
    let want = vec![Some(Bytes::from("a")), Some(Bytes::from("b"))];
    // The MGET may fail (bytes followed its reply: the connection is out of step) or
    // give its own values; the GET after it gets its own reply or an error.
    let mget = |r: redis_client::Result<Vec<Option<Bytes>>>, what: &str| match r {
        Ok(v) => assert_eq!(v, want, "{what}"),
        Err(e) => assert_eq!(e.kind(), redis_client::ErrorKind::Protocol, "{what}: {e}"),
    };
    let get = |r: redis_client::Result<Option<Bytes>>, what: &str| {
        assert!(
            matches!(&r, Ok(Some(v)) if v == "mine") || r.is_err(),
            "{what}: {r:?}"
        );
    };
    let c = blocking(&fakes);
    mget(c.mget(keys_on_two_nodes()), "blocking MGET");
    get(c.get("a"), "blocking GET");
    let c = asynchronous(&rt, &fakes);
    mget(rt.block_on(c.mget(keys_on_two_nodes())), "async MGET");
    get(rt.block_on(c.get("a")), "async GET");
}

#[test]
fn a_node_of_an_unknown_role_serves_no_read() {
    let rt = rt();
    let other = FakeServer::start(|mut c: FakeConn| {
        while c.read_request().is_some() {
            c.write(b"$5\r\nwrong\r\n");
        }
    });
    let other_port = other.port();
    let ports: Arc<Mutex<u16>> = Arc::default();
    let own = ports.clone();
    let primary = FakeServer::start(move |mut c: FakeConn| {
        while let Some(args) = c.read_request() {
            if args[0].eq_ignore_ascii_case(b"CLUSTER") {
                let port = *own.lock().unwrap();
                let mut out = String::from("*1\r\n");
                out += "*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16383\r\n$5\r\nnodes\r\n*2\r\n";
                out += &node(&format!(":{port}\r\n"), "$6\r\nmaster\r\n");
                out += &node(&format!(":{other_port}\r\n"), "$7\r\narbiter\r\n");
                c.write(out.as_bytes());
            } else if args[0].eq_ignore_ascii_case(b"READONLY") {
                c.write(b"+OK\r\n");
            } else {
                c.write(b"$5\r\nright\r\n");
            }
        }
    });
    *ports.lock().unwrap() = primary.port();
    let fakes = [primary];
    let c = ClusterClient::with_options(seeds(&fakes), options().with_read_from_replicas(true))
        .expect("open");
    assert_eq!(c.get("k").unwrap(), Some(Bytes::from("right")), "blocking");
    assert_eq!(c.slot_map().nodes().len(), 1);
    let c = rt
        .block_on(aio::ClusterClient::with_options(
            seeds(&fakes),
            options().with_read_from_replicas(true),
        ))
        .expect("open");
    assert_eq!(
        rt.block_on(c.get("k")).unwrap(),
        Some(Bytes::from("right")),
        "async"
    );
}

// ---------------------------------------------------------------------------------------
// A transaction redirected while the map cannot be fetched.

/// A one-node cluster whose every transaction's queued command answers `MOVED` back to
/// the node itself, and whose `CLUSTER SHARDS` stalls after the first.
fn moving_transactions() -> FakeServer {
    let port: Arc<Mutex<u16>> = Arc::default();
    let asked = Arc::new(AtomicUsize::new(0));
    let own = port.clone();
    let fake = FakeServer::start(move |mut c: FakeConn| {
        while let Some(args) = c.read_request() {
            let port = *own.lock().unwrap();
            if args[0].eq_ignore_ascii_case(b"CLUSTER") {
                if asked.fetch_add(1, Ordering::SeqCst) > 0 {
                    std::thread::sleep(Duration::from_secs(2));
                }
                c.write(&shards_reply(&[port]));
            } else if args[0].eq_ignore_ascii_case(b"MULTI") {
                c.write(b"+OK\r\n");
            } else if args[0].eq_ignore_ascii_case(b"EXEC") {
                c.write(b"-EXECABORT Transaction discarded because of previous errors.\r\n");
            } else {
                let slot = key_slot(args.get(1).map_or(&b""[..], |k| k));
                c.write(format!("-MOVED {slot} 127.0.0.1:{port}\r\n").as_bytes());
            }
        }
    });
    *port.lock().unwrap() = fake.port();
    fake
}

#[test]
fn a_redirected_transaction_ends_within_the_budget() {
    let rt = rt();
    let fakes = [moving_transactions()];
    let c = blocking(&fakes);
    fails_in_time("blocking", || {
        c.pipeline().transaction(true).set("k", "v").execute()
    });
    let fakes = [moving_transactions()];
    let c = asynchronous(&rt, &fakes);
    fails_in_time("async", || {
        rt.block_on(c.pipeline().transaction(true).set("k", "v").execute())
    });
}

#[test]
fn nodes_answering_a_fanned_out_command_differently_is_an_error() {
    let rt = rt();
    for reply in [&b":1\r\n"[..], b"+QUEUED\r\n", b"$-1\r\n"] {
        let fakes = one_node_answers(reply);
        let what = String::from_utf8_lossy(reply).trim().to_owned();
        let c = blocking(&fakes);
        let r = c.flushall(None);
        assert!(
            matches!(r, Err(Error::Cluster(_))),
            "blocking, {what}: {r:?}"
        );
        let c = asynchronous(&rt, &fakes);
        let r = rt.block_on(c.flushall(None));
        assert!(matches!(r, Err(Error::Cluster(_))), "async, {what}: {r:?}");
    }
}

#[test]
fn a_watch_transaction_on_a_stalling_node_ends_within_the_budget() {
    let rt = rt();
    let fakes = fake_cluster(1, |_, _, c, _| c.hold(Duration::from_secs(5)));
    let c = blocking(&fakes);
    fails_in_time("blocking", || c.transaction("k", |w| Ok(w.multi())));
    let c = asynchronous(&rt, &fakes);
    fails_in_time("async", || {
        rt.block_on(c.transaction("k", |w| async move { Ok(w.multi()) }))
    });
}

// ---------------------------------------------------------------------------------------
// A busy cluster whose retry outlasts the budget.

/// A one-node cluster whose node answers the first GET of each connection `TRYAGAIN` and
/// then says nothing more to it.
fn busy_then_silent() -> Vec<FakeServer> {
    fake_cluster(1, |_, _, c, args| {
        if args[0].eq_ignore_ascii_case(b"GET") {
            c.write(b"-TRYAGAIN Multiple keys request during rehashing of slot\r\n");
            c.hold(Duration::from_secs(5));
        } else {
            c.write(b"+OK\r\n");
        }
    })
}

#[test]
fn a_budget_spent_in_a_retry_of_a_busy_cluster_reports_the_busy_reply() {
    // The retry after TRYAGAIN meets a node that says nothing until the budget ends: the
    // call fails with TRYAGAIN, what made it try again, not with the timeout of its last
    // attempt.
    let check = |what: &str, took: Duration, r: Result<Option<Bytes>, Error>| {
        let err = r.expect_err(what);
        assert_eq!(err.code(), Some(ErrorCode::TRYAGAIN), "{what}: {err:?}");
        in_time(took, what);
    };
    let fakes = busy_then_silent();
    let c = blocking(&fakes);
    let start = Instant::now();
    let r = c.get("k");
    check("blocking", start.elapsed(), r);

    let rt = rt();
    let fakes = busy_then_silent();
    let c = asynchronous(&rt, &fakes);
    let start = Instant::now();
    let r = rt.block_on(c.get("k"));
    check("async", start.elapsed(), r);
}

// ---------------------------------------------------------------------------------------
// How the slot map is fetched, and how a split command is sent.

/// A one-node cluster on a server without `CLUSTER SHARDS` (before Redis 7): it answers
/// `CLUSTER SLOTS`, counted in `slots_asked`, and `GET` with `v`.
fn without_shards(slots_asked: Arc<AtomicUsize>) -> FakeServer {
    let port = Arc::new(Mutex::new(0u16));
    let own = port.clone();
    let fake = FakeServer::start(move |mut c: FakeConn| {
        while let Some(args) = c.read_request() {
            let sub = args.get(1).map(|a| a.to_ascii_uppercase());
            match (args[0].to_ascii_uppercase().as_slice(), sub.as_deref()) {
                (b"CLUSTER", Some(b"SHARDS")) => {
                    c.write(b"-ERR unknown subcommand 'shards'. Try CLUSTER HELP.\r\n")
                }
                (b"CLUSTER", Some(b"SLOTS")) => {
                    slots_asked.fetch_add(1, Ordering::SeqCst);
                    let port = *own.lock().unwrap();
                    c.write(
                        format!(
                            "*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n$9\r\n127.0.0.1\r\n:{port}\r\n$2\r\nid\r\n"
                        )
                        .as_bytes(),
                    );
                }
                (b"GET", _) => c.write(b"$1\r\nv\r\n"),
                _ => c.write(b"+OK\r\n"),
            }
        }
    });
    *port.lock().unwrap() = fake.port();
    fake
}

#[test]
fn a_server_without_cluster_shards_is_mapped_with_cluster_slots() {
    let asked = Arc::new(AtomicUsize::new(0));
    let fakes = vec![without_shards(asked.clone())];
    let c = blocking(&fakes);
    assert_eq!(c.get("k").unwrap().as_deref(), Some(&b"v"[..]));
    assert!(c.slot_map().is_complete());
    assert!(asked.load(Ordering::SeqCst) >= 1, "CLUSTER SLOTS was asked");

    let rt = rt();
    let asked = Arc::new(AtomicUsize::new(0));
    let fakes = vec![without_shards(asked.clone())];
    let c = asynchronous(&rt, &fakes);
    assert_eq!(rt.block_on(c.get("k")).unwrap().as_deref(), Some(&b"v"[..]));
    assert!(c.slot_map().is_complete());
    assert!(asked.load(Ordering::SeqCst) >= 1, "CLUSTER SLOTS was asked");
}

/// One key per node of a three-node fake cluster (equal thirds of the slots).
fn one_key_per_node() -> Vec<String> {
    (0..3)
        .map(|node| {
            (0..)
                .map(|i| format!("k{i}"))
                .find(|k| usize::from(key_slot(k.as_bytes())) * 3 / 16384 == node)
                .unwrap()
        })
        .collect()
}

#[test]
fn a_split_mget_asks_every_node_at_once() {
    // Each node takes 300 ms to answer its part: sent to all at once, the call takes
    // about 300 ms; one node after another, 900 ms.
    let slow = || {
        fake_cluster(3, |_, _, c, args| {
            if args[0].eq_ignore_ascii_case(b"MGET") {
                std::thread::sleep(Duration::from_millis(300));
                c.write(format!("*{}\r\n", args.len() - 1).as_bytes());
                for _ in 1..args.len() {
                    c.write(b"$1\r\nv\r\n");
                }
            } else {
                c.write(b"+OK\r\n");
            }
        })
    };
    let options = options()
        .with_retry_policy(RetryPolicy::default().with_budget(Some(Duration::from_secs(5))));
    let keys = one_key_per_node();
    let want = vec![Some(Bytes::from("v")); 3];

    let fakes = slow();
    let c = ClusterClient::with_options(seeds(&fakes), options.clone()).unwrap();
    c.mget(&keys).unwrap(); // connections opened
    let start = Instant::now();
    assert_eq!(c.mget(&keys).unwrap(), want);
    let took = start.elapsed();
    assert!(took < Duration::from_millis(700), "blocking took {took:?}");

    let rt = rt();
    let fakes = slow();
    let c = rt
        .block_on(aio::ClusterClient::with_options(seeds(&fakes), options))
        .unwrap();
    rt.block_on(c.mget(&keys)).unwrap();
    let start = Instant::now();
    assert_eq!(rt.block_on(c.mget(&keys)).unwrap(), want);
    let took = start.elapsed();
    assert!(took < Duration::from_millis(700), "async took {took:?}");
}

/// A two-node cluster whose nodes give the whole map the first time each is asked, and
/// a map without node 1's slots after that.
fn map_shrinking_after_first() -> Vec<FakeServer> {
    let asked: Arc<Mutex<Vec<usize>>> = Arc::default();
    let ports: Arc<Mutex<Vec<u16>>> = Arc::default();
    let fakes: Vec<FakeServer> = (0..2)
        .map(|i| {
            let (asked, ports) = (asked.clone(), ports.clone());
            FakeServer::start(move |mut c: FakeConn| {
                while let Some(args) = c.read_request() {
                    if args[0].eq_ignore_ascii_case(b"CLUSTER") {
                        let ports = ports.lock().unwrap().clone();
                        let first = {
                            let mut asked = asked.lock().unwrap();
                            let first = !asked.contains(&i);
                            asked.push(i);
                            first
                        };
                        if first {
                            c.write(&shards_reply(&ports));
                        } else {
                            // Node 0's half only: slots 8192-16383 are not covered.
                            let whole = String::from_utf8(shards_reply(&ports[..1])).unwrap();
                            c.write(whole.replace(":16383\r\n", ":8191\r\n").as_bytes());
                        }
                    } else if args[0].eq_ignore_ascii_case(b"GET") {
                        c.write(format!("$1\r\n{i}\r\n").as_bytes());
                    } else {
                        c.write(b"+OK\r\n");
                    }
                }
            })
        })
        .collect();
    *ports.lock().unwrap() = fakes.iter().map(FakeServer::port).collect();
    fakes
}

#[test]
fn a_map_that_does_not_cover_every_slot_is_not_taken() {
    let [on_one, on_zero] = keys_on_two_nodes();
    let fakes = map_shrinking_after_first();
    let c = blocking(&fakes);
    assert_eq!(c.get(on_one).unwrap().as_deref(), Some(&b"1"[..]));
    let _ = c.refresh_slots();
    assert!(c.slot_map().is_complete(), "the incomplete map was taken");
    assert_eq!(c.get(on_one).unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(c.get(on_zero).unwrap().as_deref(), Some(&b"0"[..]));

    let rt = rt();
    let fakes = map_shrinking_after_first();
    let c = asynchronous(&rt, &fakes);
    assert_eq!(
        rt.block_on(c.get(on_one)).unwrap().as_deref(),
        Some(&b"1"[..])
    );
    let _ = rt.block_on(c.refresh_slots());
    assert!(c.slot_map().is_complete(), "the incomplete map was taken");
    assert_eq!(
        rt.block_on(c.get(on_one)).unwrap().as_deref(),
        Some(&b"1"[..])
    );
}

#[test]
fn a_failing_background_refresh_is_never_seen_by_a_caller() {
    // After the first map, every CLUSTER SHARDS fails; the client refreshes every 20 ms
    // in the background while calls go on.
    let first = Arc::new(AtomicUsize::new(0));
    let ports: Arc<Mutex<Vec<u16>>> = Arc::default();
    let (f, p) = (first.clone(), ports.clone());
    let fake = FakeServer::start(move |mut c: FakeConn| {
        while let Some(args) = c.read_request() {
            if args[0].eq_ignore_ascii_case(b"CLUSTER") {
                if f.fetch_add(1, Ordering::SeqCst) == 0 {
                    c.write(&shards_reply(&p.lock().unwrap()));
                } else {
                    c.write(b"-ERR the map is not available\r\n");
                }
            } else if args[0].eq_ignore_ascii_case(b"GET") {
                c.write(b"$1\r\nv\r\n");
            } else {
                c.write(b"+OK\r\n");
            }
        }
    });
    *ports.lock().unwrap() = vec![fake.port()];
    let fakes = vec![fake];
    let c = ClusterClient::with_options(
        seeds(&fakes),
        options().with_refresh_interval(Some(Duration::from_millis(20))),
    )
    .unwrap();
    let until = Instant::now() + Duration::from_millis(400);
    let mut calls = 0;
    while Instant::now() < until {
        assert_eq!(c.get("k").unwrap().as_deref(), Some(&b"v"[..]));
        calls += 1;
    }
    assert!(calls > 10, "{calls} calls");
    assert!(
        first.load(Ordering::SeqCst) > 3,
        "the background refresh ran and failed"
    );
}

#[test]
fn a_cluster_scan_whose_cursors_go_round_ends_with_an_error() {
    let going_round = || {
        fake_cluster(1, |_, _, c, args| {
            if args[0].eq_ignore_ascii_case(b"SCAN") {
                let cursor: u64 = std::str::from_utf8(&args[1]).unwrap().parse().unwrap();
                let next = if cursor == 7 { 9 } else { 7 };
                c.write(format!("*2\r\n$1\r\n{next}\r\n*0\r\n").as_bytes());
            } else {
                c.write(b"+OK\r\n");
            }
        })
    };
    let fakes = going_round();
    let c = blocking(&fakes);
    let mut walk = c.scan_iter(Default::default());
    assert!(
        matches!(walk.next(), Some(Err(Error::Reply { .. }))),
        "blocking"
    );
    assert!(walk.next().is_none());

    let rt = rt();
    let fakes = going_round();
    let c = asynchronous(&rt, &fakes);
    rt.block_on(async {
        use redis_client::futures_core::Stream;
        let mut walk = std::pin::pin!(c.scan_stream(Default::default()));
        let first = std::future::poll_fn(|cx| walk.as_mut().poll_next(cx)).await;
        assert!(
            matches!(first, Some(Err(Error::Reply { .. }))),
            "async: {first:?}"
        );
        let then = std::future::poll_fn(|cx| walk.as_mut().poll_next(cx)).await;
        assert!(then.is_none());
    });
}
