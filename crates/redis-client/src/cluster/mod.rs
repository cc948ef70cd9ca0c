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
