//! Every command, grouped as redis.io groups them.

pub mod bitmaps;
pub mod hashes;
pub mod hyperloglog;
pub mod keys;
pub mod lists;
pub mod server;
pub mod sets;
pub mod strings;

use crate::CommandInfo;

/// Every group's table.
pub const GROUPS: &[(&str, &[CommandInfo])] = &[
    ("strings", strings::STRINGS),
    ("keys", keys::KEYS),
    ("sets", sets::SETS),
    ("server", server::SERVER),
    ("bitmaps", bitmaps::BITMAPS),
    ("hashes", hashes::HASHES),
    ("lists", lists::LISTS),
    ("hyperloglog", hyperloglog::HYPERLOGLOG),
];

/// Every declared command, in group order.
pub fn all() -> impl Iterator<Item = &'static CommandInfo> {
    GROUPS.iter().flat_map(|(_, table)| table.iter())
}
