//! Redis Cluster commands: slot assignment, node management and introspection, and the
//! connection switches ASKING, READONLY and READWRITE.
//!
//! Most of them answer an error on a server started without `cluster-enabled yes`.

use crate::types::{ClusterFailoverMode, ClusterInfo, ResetMode, SetSlot, SlotRange, ValueMap};
use crate::ToArgs;
use bytes::Bytes;

commands! {
    /// Redis Cluster commands. See <https://redis.io/commands/?group=cluster>.
    pub trait ClusterCommands, table CLUSTER;

    /// Lets the next command on this connection reach a slot being imported.
    /// See <https://redis.io/commands/asking/>.
    "ASKING" [] fn asking() -> () => |_c| {}

    /// Allows reads from this replica on this connection.
    /// See <https://redis.io/commands/readonly/>.
    /// A pooled client refuses it (the pool would undo it): call it on a dedicated
    /// connection, a pipeline or a WATCH-ed pipeline.
    "READONLY" [CONNECTION_STATE] fn readonly() -> () => |_c| {}

    /// Ends READONLY on this connection.
    /// See <https://redis.io/commands/readwrite/>.
    /// A pooled client refuses it (the pool would undo it): call it on a dedicated
    /// connection, a pipeline or a WATCH-ed pipeline.
    "READWRITE" [CONNECTION_STATE] fn readwrite() -> () => |_c| {}

    /// Assigns slots to this node.
    /// See <https://redis.io/commands/cluster-addslots/>.
    "CLUSTER ADDSLOTS" [ADMIN] fn cluster_addslots(slots: &[u16]) -> () => |c| { c.arg(slots); }

    /// Assigns ranges of slots (`(first, last)`, inclusive) to this node.
    /// See <https://redis.io/commands/cluster-addslotsrange/>.
    "CLUSTER ADDSLOTSRANGE" [ADMIN] fn cluster_addslotsrange(ranges: &[(u16, u16)]) -> ()
        => |c| { for (a, b) in ranges { c.arg(*a).arg(*b); } }

    /// Advances the node's config epoch; returns `BUMPED <epoch>` or `STILL <epoch>`.
    /// See <https://redis.io/commands/cluster-bumpepoch/>.
    "CLUSTER BUMPEPOCH" [ADMIN] fn cluster_bumpepoch() -> String => |_c| {}

    /// Returns how many failure reports about `node_id` this node holds.
    /// See <https://redis.io/commands/cluster-count-failure-reports/>.
    "CLUSTER COUNT-FAILURE-REPORTS" [ADMIN] fn cluster_count_failure_reports<N: ToArgs>(node_id: N) -> i64
        => |c| { c.arg(node_id); }

    /// Returns how many keys this node holds in `slot`.
    /// See <https://redis.io/commands/cluster-countkeysinslot/>.
    "CLUSTER COUNTKEYSINSLOT" [] fn cluster_countkeysinslot(slot: u16) -> i64 => |c| { c.arg(slot); }

    /// Unassigns slots from this node.
    /// See <https://redis.io/commands/cluster-delslots/>.
    "CLUSTER DELSLOTS" [ADMIN] fn cluster_delslots(slots: &[u16]) -> () => |c| { c.arg(slots); }

    /// Unassigns ranges of slots from this node.
    /// See <https://redis.io/commands/cluster-delslotsrange/>.
    "CLUSTER DELSLOTSRANGE" [ADMIN] fn cluster_delslotsrange(ranges: &[(u16, u16)]) -> ()
        => |c| { for (a, b) in ranges { c.arg(*a).arg(*b); } }

    /// Makes this replica take over from its primary (with its agreement unless `mode`
    /// says otherwise).
    /// See <https://redis.io/commands/cluster-failover/>.
    "CLUSTER FAILOVER" [ADMIN] fn cluster_failover(mode: Option<ClusterFailoverMode>) -> () => |c| { c.arg(mode); }

    /// Unassigns every slot of this node.
    /// See <https://redis.io/commands/cluster-flushslots/>.
    "CLUSTER FLUSHSLOTS" [ADMIN] fn cluster_flushslots() -> () => |_c| {}

    /// Removes a node from this node's table.
    /// See <https://redis.io/commands/cluster-forget/>.
    "CLUSTER FORGET" [ADMIN] fn cluster_forget<N: ToArgs>(node_id: N) -> () => |c| { c.arg(node_id); }

    /// Returns up to `count` key names of `slot` held by this node.
    /// See <https://redis.io/commands/cluster-getkeysinslot/>.
    "CLUSTER GETKEYSINSLOT" [] fn cluster_getkeysinslot(slot: u16, count: u64) -> Vec<Bytes>
        => |c| { c.arg(slot).arg(count); }

    /// Returns CLUSTER's help text.
    /// See <https://redis.io/commands/cluster-help/>.
    "CLUSTER HELP" [] fn cluster_help() -> Vec<String> => |_c| {}

    /// Returns the cluster's state as this node sees it.
    /// See <https://redis.io/commands/cluster-info/>.
    "CLUSTER INFO" [] fn cluster_info() -> ClusterInfo => |_c| {}

    /// Returns the hash slot of `key`.
    /// See <https://redis.io/commands/cluster-keyslot/>.
    "CLUSTER KEYSLOT" [] fn cluster_keyslot<K: ToArgs>(key: K) -> i64 => |c| { c.arg(key); }

    /// Returns this node's cluster bus links, each as a map.
    /// See <https://redis.io/commands/cluster-links/>.
    "CLUSTER LINKS" [] fn cluster_links() -> Vec<ValueMap> => |_c| {}

    /// Connects this node to the node at `ip:port`.
    /// See <https://redis.io/commands/cluster-meet/>.
    "CLUSTER MEET" [ADMIN] fn cluster_meet<H: ToArgs>(ip: H, port: u16) -> () => |c| { c.arg(ip).arg(port); }

    /// Returns this node's id.
    /// See <https://redis.io/commands/cluster-myid/>.
    "CLUSTER MYID" [] fn cluster_myid() -> String => |_c| {}

    /// Returns the node table, in the text format of `nodes.conf`.
    /// See <https://redis.io/commands/cluster-nodes/>.
    "CLUSTER NODES" [] fn cluster_nodes() -> String => |_c| {}

    /// Returns the replicas of `node_id`, as CLUSTER NODES lines.
    /// See <https://redis.io/commands/cluster-replicas/>.
    "CLUSTER REPLICAS" [ADMIN] fn cluster_replicas<N: ToArgs>(node_id: N) -> Vec<String> => |c| { c.arg(node_id); }

    /// Makes this node a replica of `node_id`.
    /// See <https://redis.io/commands/cluster-replicate/>.
    "CLUSTER REPLICATE" [ADMIN] fn cluster_replicate<N: ToArgs>(node_id: N) -> () => |c| { c.arg(node_id); }

    /// Resets this node (it must hold no keys).
    /// See <https://redis.io/commands/cluster-reset/>.
    "CLUSTER RESET" [ADMIN] fn cluster_reset(mode: Option<ResetMode>) -> () => |c| { c.arg(mode); }

    /// Saves the node table to `nodes.conf`.
    /// See <https://redis.io/commands/cluster-saveconfig/>.
    "CLUSTER SAVECONFIG" [ADMIN] fn cluster_saveconfig() -> () => |_c| {}

    /// Sets this new node's config epoch.
    /// See <https://redis.io/commands/cluster-set-config-epoch/>.
    "CLUSTER SET-CONFIG-EPOCH" [ADMIN] fn cluster_set_config_epoch(epoch: u64) -> () => |c| { c.arg(epoch); }

    /// Changes the state of a slot on this node (migration steps, or its owner).
    /// See <https://redis.io/commands/cluster-setslot/>.
    "CLUSTER SETSLOT" [ADMIN] fn cluster_setslot(slot: u16, state: SetSlot) -> () => |c| { c.arg(slot).arg(state); }

    /// Returns the cluster's shards, each as a map (`slots`, `nodes`).
    /// See <https://redis.io/commands/cluster-shards/>.
    "CLUSTER SHARDS" [] fn cluster_shards() -> Vec<ValueMap> => |_c| {}

    /// The old name of CLUSTER REPLICAS.
    /// See <https://redis.io/commands/cluster-slaves/>.
    "CLUSTER SLAVES" [ADMIN] fn cluster_slaves<N: ToArgs>(node_id: N) -> Vec<String> => |c| { c.arg(node_id); }

    /// Returns the slot ranges and the nodes serving them.
    /// See <https://redis.io/commands/cluster-slots/>.
    "CLUSTER SLOTS" [] fn cluster_slots() -> Vec<SlotRange> => |_c| {}
}
