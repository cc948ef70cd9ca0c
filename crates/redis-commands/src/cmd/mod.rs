//! Every command, grouped as redis.io groups them.

pub mod geo;
pub mod keys;
pub mod server;
pub mod sets;
pub mod sorted_sets;
pub mod streams;
pub mod strings;

use crate::CommandInfo;

/// Every group's table.
pub const GROUPS: &[(&str, &[CommandInfo])] = &[
    ("strings", strings::STRINGS),
    ("keys", keys::KEYS),
    ("sets", sets::SETS),
    ("server", server::SERVER),
    ("sorted_sets", sorted_sets::SORTED_SETS),
    ("streams", streams::STREAMS),
    ("geo", geo::GEO),
];

/// Every declared command, in group order.
pub fn all() -> impl Iterator<Item = &'static CommandInfo> {
    GROUPS.iter().flat_map(|(_, table)| table.iter())
}
