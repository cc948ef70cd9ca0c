//! Redis Cluster: a client that routes each command to the node serving its keys.
//!
//! [`router`] holds every routing decision (slot hashing, the slot map, where a command
//! goes, how multi-key commands are split and merged, what `MOVED`, `ASK`, `TRYAGAIN` and
//! `CLUSTERDOWN` mean) with no I/O; [`ClusterClient`] drives it over one connection pool
//! per node. See `docs/cluster.md` for the behaviour in full.

#[cfg(feature = "tokio")]
pub mod aio;
mod client;
mod pubsub;
pub mod router;
mod scan;
mod subscriptions;

pub use client::{ClusterClient, ClusterOptions, ClusterPipeline, ClusterScan};
pub use pubsub::ClusterPubSub;
pub use router::{key_slot, SlotMap};

use redis_conn::{Addr, ConnectionInfo};

/// The `host:port` of each TCP seed, asked for a map when the nodes the map lists fail.
pub(crate) fn seed_addrs(seeds: &[ConnectionInfo]) -> Vec<String> {
    seeds
        .iter()
        .filter_map(|s| match &s.addr {
            Addr::Tcp { host, port } => Some(format!("{host}:{port}")),
            _ => None,
        })
        .collect()
}

/// Whether a client still needs connections to the node at `addr` after fetching `map`:
/// only if the map lists it. The others left the cluster (or changed address), and their
/// idle connections would otherwise stay open for the client's life; a seed among them
/// is connected to again if a refresh has to ask it.
pub(crate) fn still_needed(map: &SlotMap, addr: &str) -> bool {
    map.nodes().contains(&addr)
}
