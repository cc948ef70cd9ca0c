//! Reply modes: whether a command method gives byte strings (the default) or text.
//!
//! Each command declares one reply type, written with [`Bytes`] where the server sends a
//! byte string (`GET` → `Option<Bytes>`). An [`Executor`](crate::Executor) names a
//! [`Mode`], and the command methods return [`Mode::Reply`] of the declared type:
//! [`BinaryMode`] keeps it as declared, [`TextMode`] swaps every [`Bytes`] in it for a
//! UTF-8 checked [`String`] through [`TextForm`]. The swap happens in the types only: the
//! command is the same, and the reply is converted once, straight into the final type.

use crate::FromValue;
use bytes::Bytes;
use resp_proto::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::Hash;

/// A reply type and its text form: the same shape with every [`Bytes`] replaced by a
/// [`String`] (`Option<Bytes>` → `Option<String>`, `Vec<(Bytes, f64)>` →
/// `Vec<(String, f64)>`). Numbers, booleans and [`Value`] stay as they are, and so do the
/// parsed reply structs ([`Info`](crate::Info), [`StreamEntry`](crate::StreamEntry) …),
/// which have already decided which of their fields are text.
///
/// Implemented for every reply type a command declares; a new reply type implements it
/// with `type Text = Self` unless it holds bytes a caller would want as text.
pub trait TextForm: FromValue {
    /// The text form of `Self`.
    type Text: FromValue;
}

impl TextForm for Bytes {
    type Text = String;
}

macro_rules! text_is_self {
    ($($t:ty),* $(,)?) => {$(
        impl TextForm for $t {
            type Text = $t;
        }
    )*};
}
text_is_self!((), bool, i64, u64, f64, String, Value);
text_is_self!(
    crate::KeyType,
    crate::Ttl,
    crate::PTtl,
    crate::types::DebugObject,
    crate::LcsMatches,
    crate::GeoSearchResult,
    crate::StreamEntry,
    crate::StreamInfo,
    crate::StreamInfoFull,
    crate::StreamGroupInfo,
    crate::StreamConsumerInfo,
    crate::PendingEntry,
    crate::XPendingSummary,
    crate::XAutoClaim,
    crate::XAutoClaimJustId,
    crate::Info,
    crate::ClientInfo,
    crate::ServerTime,
    crate::SlowlogEntry,
    crate::Role,
    crate::CommandDetails,
    crate::LatencyEvent,
    crate::LibraryInfo,
    crate::ClusterInfo,
    crate::SlotRange,
);

impl<T: TextForm> TextForm for Option<T> {
    type Text = Option<T::Text>;
}

impl<T: TextForm> TextForm for Vec<T> {
    type Text = Vec<T::Text>;
}

impl<T: TextForm + Eq + Hash> TextForm for HashSet<T>
where
    T::Text: Eq + Hash,
{
    type Text = HashSet<T::Text>;
}

impl<K: TextForm + Eq + Hash, V: TextForm> TextForm for HashMap<K, V>
where
    K::Text: Eq + Hash,
{
    type Text = HashMap<K::Text, V::Text>;
}

impl<K: TextForm + Ord, V: TextForm> TextForm for BTreeMap<K, V>
where
    K::Text: Ord,
{
    type Text = BTreeMap<K::Text, V::Text>;
}

impl<A: TextForm, B: TextForm> TextForm for (A, B) {
    type Text = (A::Text, B::Text);
}

impl<A: TextForm, B: TextForm, C: TextForm> TextForm for (A, B, C) {
    type Text = (A::Text, B::Text, C::Text);
}

/// How an [`Executor`](crate::Executor)'s command methods type their replies.
pub trait Mode {
    /// What a command declared with reply type `T` returns in this mode.
    type Reply<T: TextForm>: FromValue;
}

/// Replies as declared: byte strings as [`Bytes`], binary safe. The default of every
/// client, and free: nothing is checked or copied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryMode {}

impl Mode for BinaryMode {
    type Reply<T: TextForm> = T;
}

/// Replies as text, the counterpart of the reference client's `decode_responses=True`:
/// byte strings become [`String`]s, checked as UTF-8; a reply that is not UTF-8 is a
/// conversion error naming the command. Numbers stay numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TextMode {}

impl Mode for TextMode {
    type Reply<T: TextForm> = T::Text;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same<A: 'static, B: 'static>() -> bool {
        std::any::TypeId::of::<A>() == std::any::TypeId::of::<B>()
    }

    #[test]
    fn text_forms_swap_bytes_only() {
        type T<R> = <TextMode as Mode>::Reply<R>;
        assert!(same::<T<Option<Bytes>>, Option<String>>());
        assert!(same::<T<Vec<(Bytes, f64)>>, Vec<(String, f64)>>());
        assert!(same::<T<HashMap<Bytes, Bytes>>, HashMap<String, String>>());
        assert!(same::<T<i64>, i64>());
        assert!(same::<
            <BinaryMode as Mode>::Reply<Option<Bytes>>,
            Option<Bytes>,
        >());
    }
}
