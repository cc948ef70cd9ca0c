//! Every Redis command written once: how its arguments are encoded, which of them are keys,
//! whether it is read-only or blocking, and what Rust type its reply becomes.
//!
//! This crate does no I/O. Whatever sends commands implements [`Executor`]; it then has
//! every command as a method, through the group traits ([`StringCommands`],
//! [`KeyCommands`] …), returning the natural reply type.
//!
//! ```
//! use redis_commands::{cmd, Block, Flags};
//! let get = cmd::strings::get("greeting");
//! assert!(get.cmd.flags().contains(Flags::READONLY));
//! assert_eq!(get.cmd.blocking_timeout(), Block::No);
//! assert_eq!(get.cmd.args().collect::<Vec<_>>(), vec![&b"GET"[..], b"greeting"]);
//! ```
//!
//! `redis-client` re-exports every item of this crate at its root, so the examples on
//! items are written as a user of that facade reads them (`use redis_client::SetOptions`);
//! with this crate alone, read `redis_commands::` for `redis_client::`.
//!
//! # What this crate does not do
//! It opens no connection and sends nothing: `redis-client` does.
//!
//! # Crate features
//! None.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[macro_use]
mod macros;
pub mod callbacks;
pub mod cmd;
mod command;
mod executor;
mod geo_types;
mod mode;
mod options;
mod reply;
mod stream_types;
mod time;
pub mod types;
mod types_keys;
mod zset_types;

pub use callbacks::{Callbacks, ResponseCallback};
pub use cmd::bitmaps::BitmapCommands;
pub use cmd::cluster::ClusterCommands;
pub use cmd::connection::ConnectionCommands;
pub use cmd::hashes::HashCommands;
pub use cmd::hyperloglog::HyperLogLogCommands;

pub use cmd::geo::GeoCommands;
pub use cmd::keys::KeyCommands;
pub use cmd::lists::ListCommands;
pub use cmd::pubsub::PubSubCommands;
pub use cmd::scan::ScanCommands;
pub use cmd::scripting::ScriptingCommands;
pub use cmd::server::ServerCommands;
pub use cmd::sets::SetCommands;
pub use cmd::sorted_sets::SortedSetCommands;
pub use cmd::streams::StreamCommands;
pub use cmd::strings::StringCommands;
pub use command::{Block, Cmd, Flags, IterArgs, ToArgs, Typed};
pub use executor::{Executor, ReplyAs};
pub use mode::{BinaryMode, Mode, TextForm, TextMode};
pub use options::{
    BitOffset, BitOp, BitUnit, BitfieldOps, BitfieldOverflow, BitfieldType, CopyOptions,
    ExpireCondition, GetExpiry, Insert, LcsOptions, ListDirection, LposOptions, MigrateOptions,
    RestoreOptions, SortOptions,
};
pub use options::{Expiry, SetOptions};
pub use reply::{pairs, FromValue, FromValueError};
pub use types_keys::{KeyType, LcsMatch, LcsMatches, PTtl, Ttl};

pub use types::*;

pub use geo_types::{
    GeoAddOptions, GeoBy, GeoFrom, GeoSearchOptions, GeoSearchResult, GeoStore, GeoUnit, GeoWith,
};
pub use stream_types::{
    GroupPendingEntry, PendingEntry, StreamConsumerFull, StreamConsumerInfo, StreamEntry,
    StreamGroupFull, StreamGroupInfo, StreamInfo, StreamInfoFull, StreamTrim, TrimMode,
    XAddOptions, XAutoClaim, XAutoClaimJustId, XClaimOptions, XGroupCreateOptions, XPendingOptions,
    XPendingSummary, XReadGroupOptions, XReadOptions, XSetIdOptions,
};
pub use zset_types::{
    Aggregate, LexBound, Limit, MinMax, Number, ScoreBound, ScoredMembers, ZAggregateOptions,
    ZRange, ZaddOptions,
};

/// One row of the command table: a declared command and its facts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandInfo {
    /// The command as sent, subcommand included (`"CONFIG GET"`).
    pub name: &'static str,
    /// The method that sends it.
    pub method: &'static str,
    /// Its facts.
    pub flags: Flags,
    /// Its doc attributes as written (`doc = "…"` lines), for checks on the table.
    pub doc: &'static str,
}

/// Brings every command trait into scope: `use redis_commands::prelude::*;`.
pub mod prelude {
    pub use crate::GeoCommands;
    pub use crate::ScriptingCommands;
    pub use crate::SortedSetCommands;
    pub use crate::StreamCommands;
    pub use crate::{BitmapCommands, HashCommands, HyperLogLogCommands, ListCommands};
    pub use crate::{ClusterCommands, ConnectionCommands, PubSubCommands, ScanCommands};
    pub use crate::{Executor, KeyCommands, ServerCommands, SetCommands, StringCommands};
}
