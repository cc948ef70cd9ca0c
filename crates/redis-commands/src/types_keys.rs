//! Reply types of the string and key commands: TYPE's answer, TTL's and PTTL's, and
//! LCS's matches.

use crate::{pairs, FromValue, FromValueError};
use bytes::Bytes;
use resp_proto::Value;
use std::time::Duration;

macro_rules! ttl_type {
    ($(#[$doc:meta])* $name:ident, $command:literal, $unit:literal, $per:expr) => {
        $(#[$doc])*
        ///
        /// redis-py 2.7.6's `StrictRedis` returns the server's number as it is (`-1`: no
        /// expiry, `-2`: no such key) and its legacy `Redis` turns `-1` into `None`, as
        /// `compat::LegacyRedis` still does; here each case is a variant.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            /// The key does not exist (the server's `-2`).
            Missing,
            /// The key exists and has no expiry (the server's `-1`).
            Persistent,
            #[doc = concat!("The key expires after this long (whole ", $unit, ", as `", $command, "` counts).")]
            Expires(Duration),
        }

        impl $name {
            /// The time left, for a key that expires.
            pub fn expires_in(self) -> Option<Duration> {
                match self {
                    $name::Expires(d) => Some(d),
                    _ => None,
                }
            }
        }

        impl FromValue for $name {
            fn from_value(v: Value) -> Result<Self, FromValueError> {
                match i64::from_value(v)? {
                    -2 => Ok($name::Missing),
                    -1 => Ok($name::Persistent),
                    n => match u64::try_from(n) {
                        Ok(n) => Ok($name::Expires($per(n))),
                        Err(_) => Err(FromValueError::mismatch(
                            stringify!($name),
                            &Value::Integer(n),
                        )),
                    },
                }
            }
        }
    };
}

ttl_type!(
    /// How long a key has left, as `TTL` answers it (in seconds).
    Ttl, "TTL", "seconds", Duration::from_secs
);
ttl_type!(
    /// How long a key has left, as `PTTL` answers it (in milliseconds).
    PTtl, "PTTL", "milliseconds", Duration::from_millis
);

/// The type of the value at a key, as TYPE answers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyType {
    /// No such key (`none`).
    None,
    /// A string (`string`).
    String,
    /// A list (`list`).
    List,
    /// A set (`set`).
    Set,
    /// A sorted set (`zset`).
    ZSet,
    /// A hash (`hash`).
    Hash,
    /// A stream (`stream`).
    Stream,
    /// A type this version does not know, such as a module's.
    Other(String),
}

impl FromValue for KeyType {
    fn from_value(v: Value) -> Result<Self, FromValueError> {
        let name = String::from_value(v)?;
        Ok(match name.as_str() {
            "none" => KeyType::None,
            "string" => KeyType::String,
            "list" => KeyType::List,
            "set" => KeyType::Set,
            "zset" => KeyType::ZSet,
            "hash" => KeyType::Hash,
            "stream" => KeyType::Stream,
            _ => KeyType::Other(name),
        })
    }
}

/// One common substring found by `LCS … IDX`: where it is in each string (inclusive
/// ranges) and, when asked for with `WITHMATCHLEN`, its length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LcsMatch {
    /// Its first and last position in the first string.
    pub a: (i64, i64),
    /// Its first and last position in the second string.
    pub b: (i64, i64),
    /// Its length, when the command had `WITHMATCHLEN`.
    pub len: Option<i64>,
}

impl FromValue for LcsMatch {
    fn from_value(v: Value) -> Result<Self, FromValueError> {
        let items = Vec::<Value>::from_value(v)?;
        if !(2..=3).contains(&items.len()) {
            return Err(FromValueError::Type {
                expected: "LCS match",
                actual: format!("array of {}", items.len()),
            });
        }
        let mut it = items.into_iter();
        // The length was checked above: the first two `next` calls yield.
        let a = <(i64, i64)>::from_value(it.next().unwrap_or(Value::Nil))?;
        let b = <(i64, i64)>::from_value(it.next().unwrap_or(Value::Nil))?;
        let len = it.next().map(i64::from_value).transpose()?;
        Ok(LcsMatch { a, b, len })
    }
}

/// The reply of `LCS … IDX`: the matches, longest first, and the total length of the
/// longest common subsequence.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LcsMatches {
    /// The matching ranges.
    pub matches: Vec<LcsMatch>,
    /// The length of the longest common subsequence.
    pub len: i64,
}

impl FromValue for LcsMatches {
    fn from_value(v: Value) -> Result<Self, FromValueError> {
        let mut out = LcsMatches::default();
        // RESP2 sends `["matches", […], "len", n]`, RESP3 a map with the same entries.
        for (k, v) in pairs("LCS matches", v)? {
            match &Bytes::from_value(k)?[..] {
                b"matches" => out.matches = Vec::from_value(v)?,
                b"len" => out.len = i64::from_value(v)?,
                _ => {}
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(n: i64) -> Value {
        Value::Integer(n)
    }

    fn range(a: i64, b: i64) -> Value {
        Value::Array(vec![int(a), int(b)])
    }

    #[test]
    fn key_type_names() {
        let t = |s: &'static str| KeyType::from_value(Value::SimpleString(s.into())).unwrap();
        assert_eq!(t("zset"), KeyType::ZSet);
        assert_eq!(t("none"), KeyType::None);
        assert_eq!(t("ReJSON-RL"), KeyType::Other("ReJSON-RL".into()));
    }

    #[test]
    fn lcs_matches_from_resp2_and_resp3() {
        let m = Value::Array(vec![range(4, 7), range(5, 8), int(4)]);
        let resp2 = Value::Array(vec![
            Value::BulkString("matches".into()),
            Value::Array(vec![m.clone()]),
            Value::BulkString("len".into()),
            int(6),
        ]);
        let resp3 = Value::Map(vec![
            (Value::BulkString("matches".into()), Value::Array(vec![m])),
            (Value::BulkString("len".into()), int(6)),
        ]);
        let want = LcsMatches {
            matches: vec![LcsMatch {
                a: (4, 7),
                b: (5, 8),
                len: Some(4),
            }],
            len: 6,
        };
        assert_eq!(LcsMatches::from_value(resp2), Ok(want.clone()));
        assert_eq!(LcsMatches::from_value(resp3), Ok(want));
    }
}
