//! The owned RESP value and the server error it can carry.

use bytes::Bytes;
use std::fmt;

/// One complete RESP2 or RESP3 value.
///
/// Byte payloads are [`Bytes`] views into the buffer they were decoded from, so cloning
/// a value or keeping a payload does not copy it.
///
/// RESP2's null bulk string (`$-1`), null array (`*-1`) and RESP3's null (`_`) all decode
/// to [`Value::Nil`]: no Redis command gives them different meanings. Only writing RESP2
/// again needs the shape, which the writer chooses (see [`Resp2Null`](crate::Resp2Null)).
/// Streamed strings and aggregates (`$?`, `*?`, `%?`, `~?`) decode to the same variants as
/// their sized forms.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Null: RESP2 `$-1` / `*-1`, RESP3 `_`.
    Nil,
    /// A simple string (`+OK`).
    SimpleString(Bytes),
    /// An error reply, simple (`-ERR …`) or blob (`!`).
    Error(ServerError),
    /// A signed 64-bit integer (`:`).
    Integer(i64),
    /// A binary-safe bulk string (`$`).
    BulkString(Bytes),
    /// An array (`*`).
    Array(Vec<Value>),
    /// A RESP3 double (`,`), `inf`, `-inf` and `nan` included.
    Double(f64),
    /// A RESP3 boolean (`#t` / `#f`).
    Boolean(bool),
    /// A RESP3 big number (`(`), kept as its decimal digits (with an optional leading `-`).
    BigNumber(Bytes),
    /// A RESP3 verbatim string (`=`): a three-byte format such as `txt` or `mkd`, and the text.
    Verbatim {
        /// The format, for example `*b"txt"`.
        format: [u8; 3],
        /// The text, without the `fmt:` prefix.
        text: Bytes,
    },
    /// A RESP3 map (`%`), in the order the server sent it.
    Map(Vec<(Value, Value)>),
    /// A RESP3 set (`~`), in the order the server sent it.
    Set(Vec<Value>),
    /// A RESP3 attribute (`|`) kept together with the value it annotates.
    Attribute {
        /// The attribute's key/value pairs.
        attributes: Vec<(Value, Value)>,
        /// The value that followed the attribute.
        value: Box<Value>,
    },
    /// A RESP3 out-of-band push message (`>`), e.g. a pub/sub message.
    Push(Vec<Value>),
}

impl Value {
    /// A short lowercase name of the variant, for error messages ("bulk string", "map" …).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::SimpleString(_) => "simple string",
            Value::Error(_) => "error",
            Value::Integer(_) => "integer",
            Value::BulkString(_) => "bulk string",
            Value::Array(_) => "array",
            Value::Double(_) => "double",
            Value::Boolean(_) => "boolean",
            Value::BigNumber(_) => "big number",
            Value::Verbatim { .. } => "verbatim string",
            Value::Map(_) => "map",
            Value::Set(_) => "set",
            Value::Attribute { .. } => "attribute",
            Value::Push(_) => "push",
        }
    }

    /// The string payload of a simple, bulk or verbatim string.
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            Value::SimpleString(b) | Value::BulkString(b) => Some(b),
            Value::Verbatim { text, .. } => Some(text),
            _ => None,
        }
    }

    /// True for [`Value::Nil`].
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    /// The value itself, or the annotated value inside an [`Value::Attribute`].
    ///
    /// Callers that do not care about attributes use this to see the reply proper.
    pub fn without_attributes(self) -> Value {
        match self {
            Value::Attribute { value, .. } => value.without_attributes(),
            other => other,
        }
    }
}

/// An error reply sent by the server, e.g. `WRONGTYPE Operation against a key holding the
/// wrong kind of value`.
///
/// By Redis convention the first word is a code ([`ErrorCode`]) and the rest is a message.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ServerError {
    line: Bytes,
}

impl ServerError {
    /// Wraps the text of an error reply (without the leading `-` or `!` and the line end).
    pub fn new(line: impl Into<Bytes>) -> Self {
        ServerError { line: line.into() }
    }

    /// The whole error text as the server sent it.
    pub fn as_bytes(&self) -> &Bytes {
        &self.line
    }

    /// The code: the first word of the error text (`ERR`, `WRONGTYPE`, `MOVED` …).
    pub fn code(&self) -> ErrorCode {
        let end = memchr::memchr(b' ', &self.line).unwrap_or(self.line.len());
        ErrorCode(self.line.slice(..end))
    }

    /// The text after the code; the whole text if it has a single word.
    pub fn message(&self) -> String {
        let text = &self.line[..];
        let rest = match memchr::memchr(b' ', text) {
            Some(i) => &text[i + 1..],
            None => text,
        };
        String::from_utf8_lossy(rest).into_owned()
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.line))
    }
}

impl fmt::Debug for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerError({:?})", String::from_utf8_lossy(&self.line))
    }
}

/// The code of a server error: an open set, so codes this version does not name are still
/// values that compare and print.
///
/// ```
/// use resp_proto::{ErrorCode, ServerError};
/// let e = ServerError::new("WRONGTYPE Operation against a key holding the wrong kind of value");
/// assert_eq!(e.code(), ErrorCode::WRONGTYPE);
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ErrorCode(Bytes);

macro_rules! error_codes {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        impl ErrorCode {
            $($(#[$doc])* pub const $name: ErrorCode = ErrorCode(Bytes::from_static(stringify!($name).as_bytes()));)*
        }
    };
}

error_codes! {
    /// A generic error.
    ERR,
    /// An operation against a key holding the wrong kind of value.
    WRONGTYPE,
    /// EVALSHA named a script the server does not have.
    NOSCRIPT,
    /// Cluster: the key's slot is served by another node.
    MOVED,
    /// Cluster: the key's slot is being migrated; ask the other node once.
    ASK,
    /// The server is loading its dataset into memory.
    LOADING,
    /// EXEC refused the whole transaction because a queued command was invalid.
    EXECABORT,
    /// Authentication is required.
    NOAUTH,
    /// Wrong username or password.
    WRONGPASS,
    /// The user lacks a permission (ACL).
    NOPERM,
    /// A script or function is running.
    BUSY,
    /// The key already exists (e.g. BUSYGROUP for an existing consumer group uses its own code).
    BUSYKEY,
    /// A consumer group with this name already exists.
    BUSYGROUP,
    /// A cluster command touched keys of different slots.
    CROSSSLOT,
    /// The cluster is down.
    CLUSTERDOWN,
    /// A replica is read-only.
    READONLY,
    /// Commands were refused because the server is out of memory.
    OOM,
    /// The replica is not yet synchronized with its master.
    MASTERDOWN,
    /// The key's slot is being migrated and the multi-key command must be retried.
    TRYAGAIN,
    /// The server does not know the protocol version asked with HELLO.
    NOPROTO,
}

impl ErrorCode {
    /// Builds a code from its text.
    pub fn new(code: impl Into<Bytes>) -> Self {
        ErrorCode(code.into())
    }

    /// The code's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ErrorCode({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_code_and_message() {
        let e = ServerError::new("NOSCRIPT No matching script. Please use EVAL.");
        assert_eq!(e.code(), ErrorCode::NOSCRIPT);
        assert_eq!(e.message(), "No matching script. Please use EVAL.");
        let single = ServerError::new("OOPS");
        assert_eq!(single.code(), ErrorCode::new("OOPS"));
        assert_eq!(single.message(), "OOPS");
    }
}
