//! Replies and options of CLUSTER commands: CLUSTER INFO, CLUSTER SLOTS, CLUSTER SETSLOT.

use crate::types::server::{reply_items, reply_text};
use crate::{Cmd, FromValue, FromValueError, ToArgs};
use resp_proto::Value;
use std::collections::BTreeMap;

/// The reply of CLUSTER INFO: its `name:value` lines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterInfo {
    /// Every field as the server wrote it (`cluster_state`, `cluster_slots_assigned` …).
    pub fields: BTreeMap<String, String>,
}

impl ClusterInfo {
    /// A field by name.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(String::as_str)
    }

    /// A numeric field.
    pub fn get_int(&self, field: &str) -> Option<i64> {
        self.get(field)?.parse().ok()
    }
}

impl FromValue for ClusterInfo {
    fn from_value(v: Value) -> Result<Self, FromValueError> {
        let fields = reply_text("cluster info", v)?
            .lines()
            .filter_map(|l| l.trim_end().split_once(':'))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Ok(ClusterInfo { fields })
    }
}

/// A node serving a slot range in CLUSTER SLOTS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotNode {
    /// Its preferred endpoint (an IP address, a host name, or `?` when unknown).
    pub host: String,
    /// Its port.
    pub port: u16,
    /// Its node id.
    pub id: String,
}

/// One range of CLUSTER SLOTS: the primary first, then its replicas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotRange {
    /// First slot.
    pub start: u16,
    /// Last slot, included.
    pub end: u16,
    /// The primary, then the replicas.
    pub nodes: Vec<SlotNode>,
}

impl FromValue for SlotRange {
    fn from_value(v: Value) -> Result<Self, FromValueError> {
        let mut it = reply_items("slot range", v)?.into_iter();
        let start = u16::from_value(it.next().unwrap_or(Value::Nil))?;
        let end = u16::from_value(it.next().unwrap_or(Value::Nil))?;
        let nodes = it
            .map(|n| {
                let mut f = reply_items("slot node", n)?.into_iter();
                Ok(SlotNode {
                    host: String::from_value(f.next().unwrap_or(Value::Nil))?,
                    port: u16::from_value(f.next().unwrap_or(Value::Nil))?,
                    id: Option::<String>::from_value(f.next().unwrap_or(Value::Nil))?
                        .unwrap_or_default(),
                })
            })
            .collect::<Result<_, FromValueError>>()?;
        Ok(SlotRange { start, end, nodes })
    }
}

/// The state CLUSTER SETSLOT gives a slot.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SetSlot {
    /// Being imported from this node (`IMPORTING id`).
    Importing(String),
    /// Being migrated to this node (`MIGRATING id`).
    Migrating(String),
    /// Clear importing or migrating (`STABLE`).
    Stable,
    /// Owned by this node (`NODE id`).
    Node(String),
}

impl ToArgs for SetSlot {
    fn write_args(&self, cmd: &mut Cmd) {
        match self {
            SetSlot::Importing(id) => cmd.arg("IMPORTING").arg(id),
            SetSlot::Migrating(id) => cmd.arg("MIGRATING").arg(id),
            SetSlot::Stable => cmd.arg("STABLE"),
            SetSlot::Node(id) => cmd.arg("NODE").arg(id),
        };
    }
}

/// How CLUSTER RESET resets the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResetMode {
    /// Forget slots and nodes (`SOFT`).
    Soft,
    /// Also take a new node id and reset epochs (`HARD`).
    Hard,
}

impl ToArgs for ResetMode {
    fn write_args(&self, cmd: &mut Cmd) {
        cmd.arg(match self {
            ResetMode::Soft => "SOFT",
            ResetMode::Hard => "HARD",
        });
    }
}

/// How CLUSTER FAILOVER takes over from the primary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClusterFailoverMode {
    /// Without the primary's agreement (`FORCE`).
    Force,
    /// Without the cluster's agreement either (`TAKEOVER`).
    Takeover,
}

impl ToArgs for ClusterFailoverMode {
    fn write_args(&self, cmd: &mut Cmd) {
        cmd.arg(match self {
            ClusterFailoverMode::Force => "FORCE",
            ClusterFailoverMode::Takeover => "TAKEOVER",
        });
    }
}
