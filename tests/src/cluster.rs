//! `TestCluster`: a real local Redis Cluster of six redis-server processes (three primaries,
//! three replicas) made by `redis-cli --cluster create`, torn down on drop.

use crate::{ServerConfig, TestServer};
use redis_client::Value;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long the cluster may take to agree on its state after a change.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Node timeout of the test cluster: short, so a killed primary is failed over in about
/// two seconds.
pub const NODE_TIMEOUT_MS: u64 = 1000;

/// A running cluster owned by a test; every process is killed when it drops.
#[derive(Debug)]
pub struct TestCluster {
    nodes: Vec<TestServer>,
}

impl TestCluster {
    /// Starts six nodes on free loopback ports (each with a free cluster bus port), makes
    /// them a cluster of three primaries with one replica each, and waits until every node
    /// reports `cluster_state:ok`, knows all six and lists every replica as `online` in
    /// `CLUSTER SHARDS`.
    ///
    /// # Panics
    /// If a node does not start or the cluster does not form in time.
    pub fn start() -> TestCluster {
        Self::start_with(1)
    }

    /// Starts three primaries with `replicas` replicas each (`0`: three nodes, no
    /// replication), as [`start`](TestCluster::start) does.
    ///
    /// # Panics
    /// If a node does not start or the cluster does not form in time.
    pub fn start_with(replicas: usize) -> TestCluster {
        Self::start_configured(replicas, Duration::from_millis(NODE_TIMEOUT_MS))
    }

    /// Starts three primaries with one replica each, as [`start`](TestCluster::start)
    /// does, with `cluster-node-timeout` set to `node_timeout`: how long a primary must be
    /// unreachable before it is failed over (a production-like 3 s, say).
    ///
    /// # Panics
    /// If a node does not start or the cluster does not form in time.
    pub fn start_with_node_timeout(node_timeout: Duration) -> TestCluster {
        Self::start_configured(1, node_timeout)
    }

    fn start_configured(replicas: usize, node_timeout: Duration) -> TestCluster {
        let nodes: Vec<TestServer> = (0..3 * (1 + replicas))
            .map(|_| {
                ServerConfig::default()
                    .line("cluster-enabled yes")
                    .line(&format!("cluster-port {}", free_port()))
                    .line("cluster-config-file nodes.conf")
                    .line(&format!(
                        "cluster-node-timeout {}",
                        node_timeout.as_millis()
                    ))
                    // A replica may take over however long it was cut off from its primary.
                    .line("cluster-replica-validity-factor 0")
                    .start()
            })
            .collect();
        let mut cmd = Command::new("redis-cli");
        cmd.arg("--cluster").arg("create");
        for n in &nodes {
            cmd.arg(n.addr());
        }
        cmd.args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"]);
        run(&mut cmd);
        let mut cluster = TestCluster { nodes };
        cluster.wait_settled(3 * replicas);
        cluster
    }

    /// `redis://` URLs of every node, to seed a client.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(TestServer::url).collect()
    }

    /// The running nodes.
    pub fn nodes(&mut self) -> impl Iterator<Item = &mut TestServer> {
        self.nodes
            .iter_mut()
            .filter_map(|n| n.is_running().then_some(n))
    }

    /// The node listening on `port`.
    ///
    /// # Panics
    /// If no node does.
    pub fn node(&self, port: u16) -> &TestServer {
        self.nodes
            .iter()
            .find(|n| n.port() == port)
            .expect("no node on that port")
    }

    /// Ports of the running primaries that serve slots, from each node's own view.
    pub fn primaries(&mut self) -> Vec<u16> {
        let mut out = Vec::new();
        for n in self.nodes() {
            let nodes = n.raw(&["CLUSTER", "NODES"]);
            let me = nodes
                .lines()
                .find(|l| l.contains("myself"))
                .unwrap_or_default();
            let fields: Vec<&str> = me.split(' ').collect();
            // id addr flags master ping pong epoch link-state slot…
            if fields.get(2).is_some_and(|f| f.contains("master")) && fields.len() > 8 {
                out.push(n.port());
            }
        }
        out
    }

    /// The node id of the node on `port`.
    pub fn id(&self, port: u16) -> String {
        self.node(port).raw(&["CLUSTER", "MYID"])
    }

    /// Ports of the running replicas of the primary on `port`.
    pub fn replicas_of(&mut self, port: u16) -> Vec<u16> {
        let needle = format!("master_port:{port}\r");
        let mut out = Vec::new();
        for n in self.nodes() {
            let info = n.raw(&["INFO", "replication"]);
            if info.contains("role:slave") && info.contains(&needle) {
                out.push(n.port());
            }
        }
        out
    }

    /// Kills the node on `port` (SIGKILL).
    pub fn kill(&mut self, port: u16) {
        if let Some(n) = self.nodes.iter_mut().find(|n| n.port() == port) {
            n.stop();
        }
    }

    /// Waits until a replica of the killed primary `port` has taken over and every running
    /// node reports `cluster_state:ok` with every slot served.
    ///
    /// # Panics
    /// If that does not happen in time.
    pub fn wait_failover(&mut self, replicas: &[u16]) -> u16 {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            let promoted = replicas.iter().copied().find(|&r| {
                self.node(r)
                    .raw(&["INFO", "replication"])
                    .contains("role:master")
            });
            if let Some(p) = promoted {
                let running = self.nodes().count();
                if self.all_ok(running) {
                    return p;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no failover within {SETTLE_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until every running node reports `cluster_state:ok` with all 16384 slots
    /// served and knows every running node as healthy (after a test changed the
    /// cluster's state by hand).
    ///
    /// # Panics
    /// If that does not happen in time.
    pub fn wait_ok(&mut self) {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            let running = self.nodes().count();
            if self.all_ok(running) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "cluster not ok within {SETTLE_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Moves `slots` slots from the primary on `from` to the primary on `to` with
    /// `redis-cli --cluster reshard`.
    ///
    /// # Panics
    /// If redis-cli fails.
    pub fn reshard(&self, from: u16, to: u16, slots: u16) {
        let from_id = self.id(from);
        let to_id = self.id(to);
        run(Command::new("redis-cli")
            .arg("--cluster")
            .arg("reshard")
            .arg(self.node(from).addr())
            .args(["--cluster-from", &from_id, "--cluster-to", &to_id])
            .args(["--cluster-slots", &slots.to_string(), "--cluster-yes"])
            .args(["--cluster-pipeline", "100"]));
    }

    /// Waits until every running node reports `cluster_state:ok`, all 16384 slots served,
    /// knows every node, `replicas` replicas are in sync, and every node's
    /// `CLUSTER SHARDS` lists those replicas as `online`, so that a client opened now
    /// learns every replica from whichever node it asks.
    fn wait_settled(&mut self, replicas: usize) {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        let all = self.nodes.len();
        let settling = |what: &str| {
            assert!(
                Instant::now() < deadline,
                "cluster did not settle within {SETTLE_TIMEOUT:?}: {what}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        // Replicas count once they have synchronised (a syncing replica is not `online`).
        while !self.all_ok(all) || self.synced_replicas() < replicas {
            settling("nodes not ok or replicas not in sync");
        }
        // CLUSTER SHARDS calls a replica `loading` while its replication offset, as the
        // node asked last heard by gossip, is 0, and a primary never written to keeps its
        // replicas at 0 until its next replication PING (every 10 s). An empty FLUSHALL is
        // propagated all the same and moves every offset past 0.
        if replicas > 0 {
            for port in self.primaries() {
                self.node(port).raw(&["FLUSHALL"]);
            }
        }
        while self.online_replicas() < replicas {
            settling("a node does not yet report every replica online");
        }
    }

    /// The fewest replicas reported `online` by the `CLUSTER SHARDS` of a running node.
    fn online_replicas(&mut self) -> usize {
        self.nodes()
            .map(|n| {
                let client = redis_client::Redis::open(&n.url()).expect("node url");
                let reply = client
                    .execute_command(("CLUSTER", "SHARDS"))
                    .expect("CLUSTER SHARDS");
                online_in_shards(&reply)
            })
            .min()
            .unwrap_or(0)
    }

    /// The number of replicas whose link to their primary is up.
    fn synced_replicas(&mut self) -> usize {
        self.nodes()
            .filter(|n| {
                let info = n.raw(&["INFO", "replication"]);
                info.contains("role:slave") && info.contains("master_link_status:up")
            })
            .count()
    }

    /// True when every running node is `ok`, serves 16384 slots and knows `known` healthy
    /// nodes.
    fn all_ok(&mut self, known: usize) -> bool {
        self.nodes().all(|n| {
            let info = n.raw(&["CLUSTER", "INFO"]);
            let nodes = n.raw(&["CLUSTER", "NODES"]);
            let healthy = nodes
                .lines()
                .filter(|l| !l.contains("fail") && l.contains("connected"))
                .count();
            info.contains("cluster_state:ok")
                && info.contains("cluster_slots_ok:16384")
                && healthy >= known
        })
    }
}

/// The replicas a `CLUSTER SHARDS` reply (RESP2: flat key/value arrays) lists with
/// `health` `online`.
fn online_in_shards(reply: &Value) -> usize {
    fn field<'v>(pairs: &'v Value, name: &str) -> Option<&'v Value> {
        let Value::Array(items) = pairs else {
            return None;
        };
        items
            .chunks(2)
            .find(|kv| matches!(&kv[0], Value::BulkString(k) if k == name.as_bytes()))
            .and_then(|kv| kv.get(1))
    }
    let is = |node: &Value, name: &str, want: &str| match field(node, name) {
        Some(Value::BulkString(v)) => v == want.as_bytes(),
        _ => false,
    };
    let Value::Array(shards) = reply else {
        return 0;
    };
    shards
        .iter()
        .filter_map(|shard| match field(shard, "nodes") {
            Some(Value::Array(nodes)) => Some(nodes),
            _ => None,
        })
        .flatten()
        .filter(|n| is(n, "role", "replica") && is(n, "health", "online"))
        .count()
}

fn run(cmd: &mut Command) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .expect("run redis-cli (install the redis-tools package)");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// Checks that `got` holds the gap marker of `channel` (`MessageKind::Reconnected`) before
/// the shard message `payload` published after the gap, as a renewed shard subscription
/// must deliver them.
///
/// # Panics
/// When either is missing or they come in the other order.
pub fn assert_gap_before(got: &[redis_client::Message], channel: &str, payload: &str) {
    use redis_client::MessageKind;
    let marker = got
        .iter()
        .position(|m| m.kind == MessageKind::Reconnected && m.channel == channel.as_bytes())
        .unwrap_or_else(|| panic!("no gap marker for {channel}: {got:?}"));
    let after = got
        .iter()
        .position(|m| m.kind == MessageKind::SMessage && m.payload == payload)
        .unwrap_or_else(|| panic!("no message {payload:?} after the gap: {got:?}"));
    assert!(marker < after, "{got:?}");
}
