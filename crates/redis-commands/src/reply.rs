//! Converting reply [`Value`]s into Rust types.

use bytes::Bytes;
use resp_proto::{ServerError, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::Hash;
use thiserror::Error;

/// A reply that does not have the shape the requested type needs.
#[derive(Clone, Debug, PartialEq, Error)]
#[non_exhaustive]
pub enum FromValueError {
    /// The reply's type or content does not fit.
    #[error("cannot convert {actual} reply to {expected}")]
    Type {
        /// The Rust type asked for.
        expected: &'static str,
        /// What the reply was (its kind, and content where short).
        actual: String,
    },
    /// The reply was an error where a value was expected (e.g. inside an EXEC result).
    #[error("server error: {0}")]
    Server(ServerError),
}

impl FromValueError {
    /// An error for `value` not converting to `expected`.
    pub fn mismatch(expected: &'static str, value: &Value) -> Self {
        if let Value::Error(e) = value {
            return FromValueError::Server(e.clone());
        }
        let actual = match value {
            Value::SimpleString(b) | Value::BulkString(b) if b.len() <= 32 => {
                format!("{} {:?}", value.kind_name(), String::from_utf8_lossy(b))
            }
            Value::Integer(n) => format!("integer {n}"),
            other => other.kind_name().to_owned(),
        };
        FromValueError::Type { expected, actual }
    }
}

/// Types a reply converts into. Implemented for std types; RESP2 and RESP3 shapes of the
/// same data convert alike (a RESP2 flat array of pairs and a RESP3 map both give a map,
/// a bulk string and a RESP3 double both give an `f64`).
pub trait FromValue: Sized {
    /// Converts `v`.
    ///
    /// # Errors
    /// [`FromValueError`] naming the expected type and what the reply was.
    fn from_value(v: Value) -> Result<Self, FromValueError>;

    /// Converts a reply meant as a list of `Self` (what `Vec<Self>` uses). By default each
    /// element of an array, set or push reply converts alone; types override it where the
    /// list has another shape (pairs from a flat array, lines of a text reply).
    ///
    /// # Errors
    /// As [`FromValue::from_value`].
    fn vec_from_value(v: Value) -> Result<Vec<Self>, FromValueError> {
        elements("list", v)?
            .into_iter()
            .map(Self::from_value)
            .collect()
    }
}

impl FromValue for Value {
    fn from_value(v: Value) -> Result<Self, FromValueError> {
        Ok(v)
    }
}

impl FromValue for () {
    fn from_value(v: Value) -> Result<Self, FromValueError> {
        match v {
            Value::Error(e) => Err(FromValueError::Server(e)),
            _ => Ok(()),
        }
    }
}

/// `OK` and other status replies, integer 1, RESP3 true and bulk `"1"` are true; nil,
/// integer 0, RESP3 false and bulk `"0"` are false (SET with NX gives nil when it did not
/// set).
impl FromValue for bool {
    fn from_value(v: Value) -> Result<Self, FromValueError> {
        match v.without_attributes() {
            Value::Boolean(b) => Ok(b),
            Value::Integer(n) => Ok(n != 0),
            Value::Nil => Ok(false),
            Value::SimpleString(_) => Ok(true),
            Value::BulkString(b) if &b[..] == b"1" => Ok(true),
            Value::BulkString(b) if &b[..] == b"0" => Ok(false),
            other => Err(FromValueError::mismatch("bool", &other)),
        }
    }
}

fn parse_text<T: std::str::FromStr>(
    expected: &'static str,
    v: &Value,
    b: &[u8],
) -> Result<T, FromValueError> {
    std::str::from_utf8(b)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| FromValueError::mismatch(expected, v))
}

macro_rules! from_integer {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(v: Value) -> Result<Self, FromValueError> {
                match v.without_attributes() {
                    Value::Integer(n) => <$t>::try_from(n).map_err(|_| FromValueError::mismatch(stringify!($t), &Value::Integer(n))),
                    ref v @ (Value::BulkString(ref b) | Value::SimpleString(ref b) | Value::BigNumber(ref b)) => parse_text(stringify!($t), v, b),
                    Value::Boolean(b) => Ok(b as $t),
                    other => Err(FromValueError::mismatch(stringify!($t), &other)),
                }
            }
        }
    )*};
}
from_integer!(i8, i16, i32, i64, i128, isize, u16, u32, u64, u128, usize);

macro_rules! from_float {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(v: Value) -> Result<Self, FromValueError> {
                match v.without_attributes() {
                    Value::Double(x) => Ok(x as $t),
                    Value::Integer(n) => Ok(n as $t),
                    ref v @ (Value::BulkString(ref b) | Value::SimpleString(ref b)) => {
                        parse_float(b).map(|x| x as $t).ok_or_else(|| FromValueError::mismatch(stringify!($t), v))
                    }
                    other => Err(FromValueError::mismatch(stringify!($t), &other)),
                }
            }
        }
    )*};
}
from_float!(f32, f64);

/// Redis writes floats as decimals, exponents, `inf`/`-inf` (also `+inf`) and `nan`.
fn parse_float(b: &[u8]) -> Option<f64> {
    match b {
        b"inf" | b"+inf" | b"infinity" | b"+infinity" => Some(f64::INFINITY),
        b"-inf" | b"-infinity" => Some(f64::NEG_INFINITY),
        b"nan" | b"-nan" => Some(f64::NAN),
        _ => std::str::from_utf8(b).ok()?.parse().ok(),
    }
}

impl FromValue for Bytes {
    fn from_value(v: Value) -> Result<Self, FromValueError> {
        match v.without_attributes() {
            Value::BulkString(b) | Value::SimpleString(b) | Value::BigNumber(b) => Ok(b),
            Value::Verbatim { text, .. } => Ok(text),
            Value::Integer(n) => Ok(Bytes::from(n.to_string())),
            Value::Double(x) => Ok(Bytes::from(x.to_string())),
            other => Err(FromValueError::mismatch("bytes", &other)),
        }
    }
}

/// Byte strings; `u8` has no `FromValue` of its own so that `Vec<u8>` means bytes.
impl FromValue for Vec<u8> {
    fn from_value(v: Value) -> Result<Self, FromValueError> {
        Bytes::from_value(v).map(Vec::from)
    }
}

impl FromValue for String {
    fn from_value(v: Value) -> Result<Self, FromValueError> {
        let shown = match &v {
            Value::BulkString(_) => "bulk string",
            _ => "reply",
        };
        let b = Bytes::from_value(v)?;
        String::from_utf8(b.into()).map_err(|_| FromValueError::Type {
            expected: "UTF-8 string",
            actual: format!("non-UTF-8 {shown}"),
        })
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: Value) -> Result<Self, FromValueError> {
        match v.without_attributes() {
            Value::Nil => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// The elements of an array, set or push reply; nil is an empty list.
fn elements(expected: &'static str, v: Value) -> Result<Vec<Value>, FromValueError> {
    match v.without_attributes() {
        Value::Array(items) | Value::Set(items) | Value::Push(items) => Ok(items),
        Value::Nil => Ok(Vec::new()),
        other => Err(FromValueError::mismatch(expected, &other)),
    }
}

/// Key/value pairs from a RESP3 map, a RESP2 flat array `[k1, v1, k2, v2, …]`, or an array
/// of two-element arrays `[[k1, v1], [k2, v2], …]` (how RESP3 sends `WITHSCORES` results
/// and RESP2 sends `XREAD`).
pub fn pairs(expected: &'static str, v: Value) -> Result<Vec<(Value, Value)>, FromValueError> {
    match v.without_attributes() {
        Value::Map(pairs) => Ok(pairs),
        Value::Nil => Ok(Vec::new()),
        // RESP3 answers some commands with an array of two-element arrays.
        // Checked before the flat form: an even number of pairs is also an even-length array.
        Value::Array(items)
            if !items.is_empty()
                && items
                    .iter()
                    .all(|i| matches!(i, Value::Array(p) if p.len() == 2)) =>
        {
            Ok(items
                .into_iter()
                .map(|i| match i {
                    Value::Array(p) => {
                        let mut p = p.into_iter();
                        (
                            p.next().unwrap_or(Value::Nil),
                            p.next().unwrap_or(Value::Nil),
                        )
                    }
                    _ => unreachable!("checked above"),
                })
                .collect())
        }
        Value::Array(items) if items.len() % 2 == 0 => {
            let mut out = Vec::with_capacity(items.len() / 2);
            let mut it = items.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                out.push((k, v));
            }
            Ok(out)
        }
        other => Err(FromValueError::mismatch(expected, &other)),
    }
}

impl<T: FromValue> FromValue for Vec<T> {
    fn from_value(v: Value) -> Result<Self, FromValueError> {
        T::vec_from_value(v)
    }
}

impl<T: FromValue + Eq + Hash> FromValue for HashSet<T> {
    fn from_value(v: Value) -> Result<Self, FromValueError> {
        elements("set", v)?.into_iter().map(T::from_value).collect()
    }
}

impl<K: FromValue + Eq + Hash, V: FromValue> FromValue for HashMap<K, V> {
    fn from_value(v: Value) -> Result<Self, FromValueError> {
        pairs("map", v)?
            .into_iter()
            .map(|(k, v)| Ok((K::from_value(k)?, V::from_value(v)?)))
            .collect()
    }
}

impl<K: FromValue + Ord, V: FromValue> FromValue for BTreeMap<K, V> {
    fn from_value(v: Value) -> Result<Self, FromValueError> {
        pairs("map", v)?
            .into_iter()
            .map(|(k, v)| Ok((K::from_value(k)?, V::from_value(v)?)))
            .collect()
    }
}

macro_rules! from_tuple {
    ($n:literal; $($name:ident)+) => {
        from_tuple!($n; $($name)+; {});
    };
    ($n:literal; $($name:ident)+; { $($extra:item)* }) => {
        impl<$($name: FromValue),+> FromValue for ($($name,)+) {
            fn from_value(v: Value) -> Result<Self, FromValueError> {
                let items = elements(concat!("tuple of ", $n), v)?;
                if items.len() != $n {
                    return Err(FromValueError::Type {
                        expected: concat!("tuple of ", $n),
                        actual: format!("array of {}", items.len()),
                    });
                }
                let mut it = items.into_iter();
                // The length was checked above, so each `next` yields.
                Ok(($($name::from_value(it.next().unwrap_or(Value::Nil))?,)+))
            }

            $($extra)*
        }
    };
}
from_tuple!(1; A);

/// A pair from a two-element array; a list of pairs also reads from a RESP2 flat array
/// `[a1, b1, a2, b2, …]` (HSCAN, ZRANGE WITHSCORES) or a RESP3 map.
impl<A: FromValue, B: FromValue> FromValue for (A, B) {
    fn from_value(v: Value) -> Result<Self, FromValueError> {
        let items = elements("tuple of 2", v)?;
        if items.len() != 2 {
            return Err(FromValueError::Type {
                expected: "tuple of 2",
                actual: format!("array of {}", items.len()),
            });
        }
        let mut it = items.into_iter();
        // The length was checked above, so each `next` yields.
        Ok((
            A::from_value(it.next().unwrap_or(Value::Nil))?,
            B::from_value(it.next().unwrap_or(Value::Nil))?,
        ))
    }

    fn vec_from_value(v: Value) -> Result<Vec<Self>, FromValueError> {
        pairs("list of pairs", v)?
            .into_iter()
            .map(|(a, b)| Ok((A::from_value(a)?, B::from_value(b)?)))
            .collect()
    }
}
from_tuple!(3; A B C);
from_tuple!(4; A B C D);
from_tuple!(5; A B C D E);
from_tuple!(6; A B C D E F);
from_tuple!(7; A B C D E F G);
from_tuple!(8; A B C D E F G H);

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn scalars() {
        assert_eq!(bool::from_value(Value::SimpleString("OK".into())), Ok(true));
        assert_eq!(bool::from_value(Value::Nil), Ok(false));
        assert_eq!(i64::from_value(bulk("-12")), Ok(-12));
        assert_eq!(f64::from_value(bulk("1.5")), Ok(1.5));
        assert_eq!(f64::from_value(Value::Double(2.5)), Ok(2.5));
        assert_eq!(f64::from_value(bulk("-inf")), Ok(f64::NEG_INFINITY));
        assert_eq!(Option::<Bytes>::from_value(Value::Nil), Ok(None));
        assert!(matches!(
            i64::from_value(bulk("x")),
            Err(FromValueError::Type {
                expected: "i64",
                ..
            })
        ));
        assert!(matches!(
            String::from_value(Value::BulkString(Bytes::from_static(b"\xff"))),
            Err(FromValueError::Type { .. })
        ));
    }

    #[test]
    fn maps_from_both_protocols() {
        let resp2 = Value::Array(vec![bulk("a"), bulk("1"), bulk("b"), bulk("2")]);
        let resp3 = Value::Map(vec![
            (bulk("a"), Value::Integer(1)),
            (bulk("b"), Value::Integer(2)),
        ]);
        let m2: BTreeMap<String, i64> = FromValue::from_value(resp2).unwrap();
        let m3: BTreeMap<String, i64> = FromValue::from_value(resp3).unwrap();
        assert_eq!(m2, m3);
    }

    #[test]
    fn pair_lists_from_flat_and_nested_arrays() {
        let flat = Value::Array(vec![bulk("a"), bulk("1.5"), bulk("b"), bulk("2")]);
        let nested = Value::Array(vec![
            Value::Array(vec![bulk("a"), Value::Double(1.5)]),
            Value::Array(vec![bulk("b"), Value::Double(2.0)]),
        ]);
        let want = vec![("a".to_owned(), 1.5), ("b".to_owned(), 2.0)];
        assert_eq!(Vec::<(String, f64)>::from_value(flat), Ok(want.clone()));
        assert_eq!(Vec::<(String, f64)>::from_value(nested), Ok(want));
        assert!(Vec::<(String, f64)>::from_value(Value::Array(vec![bulk("a")])).is_err());
    }

    #[test]
    fn pair_lists_from_both_protocols() {
        // RESP2 WITHSCORES: flat, scores as strings.
        let resp2 = Value::Array(vec![bulk("a"), bulk("1"), bulk("b"), bulk("2.5")]);
        // RESP3 WITHSCORES: an array of pairs (here an even number of them), doubles.
        let resp3 = Value::Array(vec![
            Value::Array(vec![bulk("a"), Value::Double(1.0)]),
            Value::Array(vec![bulk("b"), Value::Double(2.5)]),
        ]);
        let expected = vec![(Bytes::from("a"), 1.0), (Bytes::from("b"), 2.5)];
        assert_eq!(Vec::<(Bytes, f64)>::from_value(resp2), Ok(expected.clone()));
        assert_eq!(Vec::<(Bytes, f64)>::from_value(resp3), Ok(expected));
        let map = Value::Map(vec![(bulk("k"), Value::Integer(3))]);
        assert_eq!(
            Vec::<(String, i64)>::from_value(map),
            Ok(vec![("k".to_owned(), 3)])
        );
        assert!(Vec::<(Bytes, f64)>::from_value(Value::Array(vec![bulk("odd")])).is_err());
    }

    #[test]
    fn tuples_check_length() {
        let v = Value::Array(vec![Value::Integer(1), bulk("x")]);
        assert_eq!(
            <(i64, String)>::from_value(v.clone()),
            Ok((1, "x".to_owned()))
        );
        assert!(<(i64, String, i64)>::from_value(v).is_err());
    }
}
