//! Every command, grouped as redis.io groups them.

pub mod bitmaps;
pub mod cluster;
pub mod connection;
pub mod geo;
pub mod hashes;
pub mod hyperloglog;
pub mod keys;
pub mod lists;
pub mod pubsub;
pub mod scan;
pub mod scripting;
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
    ("bitmaps", bitmaps::BITMAPS),
    ("hashes", hashes::HASHES),
    ("lists", lists::LISTS),
    ("hyperloglog", hyperloglog::HYPERLOGLOG),
    ("connection", connection::CONNECTION),
    ("pubsub", pubsub::PUBSUB),
    ("scripting", scripting::SCRIPTING),
    ("cluster", cluster::CLUSTER),
    ("scan", scan::SCAN),
    ("sorted_sets", sorted_sets::SORTED_SETS),
    ("streams", streams::STREAMS),
    ("geo", geo::GEO),
];

/// Every declared command, in group order.
pub fn all() -> impl Iterator<Item = &'static CommandInfo> {
    GROUPS.iter().flat_map(|(_, table)| table.iter())
}

/// Server commands deliberately not declared here, with the reason: each belongs to an
/// object with its own connection semantics, or is internal to the server.
pub const EXCLUDED: &[(&str, &str)] = &[
    ("SUBSCRIBE", "pub/sub mode: PubSub owns its connection"),
    ("UNSUBSCRIBE", "pub/sub mode: PubSub owns its connection"),
    ("PSUBSCRIBE", "pub/sub mode: PubSub owns its connection"),
    ("PUNSUBSCRIBE", "pub/sub mode: PubSub owns its connection"),
    ("SSUBSCRIBE", "pub/sub mode: PubSub owns its connection"),
    ("SUNSUBSCRIBE", "pub/sub mode: PubSub owns its connection"),
    ("PFDEBUG", "HyperLogLog internals, for testing the server"),
    (
        "PFSELFTEST",
        "HyperLogLog internals, for testing the server",
    ),
    ("MULTI", "transactions: Pipeline"),
    ("EXEC", "transactions: Pipeline"),
    ("DISCARD", "transactions: Pipeline"),
    ("WATCH", "transactions: Pipeline in immediate mode"),
    ("UNWATCH", "transactions: Pipeline in immediate mode"),
    (
        "SELECT",
        "the database is connection state: a dedicated Connection selects",
    ),
    (
        "AUTH",
        "connection handshake: credentials are part of ConnectionInfo",
    ),
    (
        "HELLO",
        "connection handshake: the protocol is part of ConnectionInfo",
    ),
    (
        "MONITOR",
        "takes the connection over for a stream of events",
    ),
    ("SYNC", "replication internals"),
    ("PSYNC", "replication internals"),
    ("REPLCONF", "replication internals"),
    (
        "DEBUG",
        "server debugging: crashes, sleeps and corrupts on purpose (only the harmless DEBUG OBJECT is declared)",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn table_rows_are_unique_and_documented() {
        let mut rows = HashSet::new();
        let mut methods = HashSet::new();
        for info in all() {
            assert!(
                rows.insert((info.name, info.method)),
                "{} {} declared twice",
                info.name,
                info.method
            );
            // Every group trait is in the prelude, so a method name may exist only once.
            assert!(methods.insert(info.method), "method {} twice", info.method);
            assert!(
                info.doc.contains("https://redis.io/commands/"),
                "{} has no redis.io link",
                info.method
            );
            assert_eq!(info.name, info.name.to_ascii_uppercase(), "{}", info.name);
            // The first doc line is the summary: the text between its quotes.
            let summary = info.doc.split('"').nth(1).unwrap_or("").trim();
            assert!(
                summary.len() > 10,
                "{} undocumented: {:?}",
                info.method,
                info.doc
            );
        }
    }

    #[test]
    fn flags_are_consistent() {
        for info in all() {
            assert!(
                !(info.flags.contains(crate::Flags::READONLY)
                    && info.flags.contains(crate::Flags::ADMIN)),
                "{} is both read-only and admin",
                info.name
            );
        }
        for info in all().filter(|i| i.flags.contains(crate::Flags::CACHEABLE)) {
            assert!(
                info.flags.contains(crate::Flags::READONLY),
                "{} is cacheable but not read-only",
                info.name
            );
        }
        for info in all().filter(|i| i.flags.contains(crate::Flags::BLOCKING)) {
            assert!(
                !info.flags.contains(crate::Flags::READONLY),
                "{}",
                info.name
            );
        }
    }

    #[test]
    fn excluded_commands_are_not_declared() {
        let declared: HashSet<_> = all().map(|i| i.name).collect();
        for (name, reason) in EXCLUDED {
            assert!(
                !declared.contains(name),
                "{name} is both declared and excluded"
            );
            assert!(!reason.is_empty());
        }
    }
}
