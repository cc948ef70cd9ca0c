//! What can be wrong with bytes that claim to be RESP.

use thiserror::Error;

/// Malformed or over-limit input, with the byte offset (from the start of the frame being
/// decoded) where the problem was found.
///
/// After this error the stream is out of step: the only safe thing is to drop the
/// connection it came from.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{kind} at byte {offset}")]
pub struct ProtocolError {
    kind: ProtocolErrorKind,
    offset: usize,
}

impl ProtocolError {
    /// Builds an error of `kind` found at `offset`.
    pub fn new(kind: ProtocolErrorKind, offset: usize) -> Self {
        ProtocolError { kind, offset }
    }

    /// What was wrong.
    pub fn kind(&self) -> &ProtocolErrorKind {
        &self.kind
    }

    /// Where it was found, counted in bytes from the start of the frame.
    pub fn offset(&self) -> usize {
        self.offset
    }
}

/// The kinds of [`ProtocolError`].
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ProtocolErrorKind {
    /// The first byte of a value is not a RESP type marker.
    #[error("invalid type byte 0x{0:02x}")]
    InvalidTypeByte(u8),
    /// A line did not end with `\r\n`, or a payload was not followed by `\r\n`.
    #[error("expected CRLF")]
    ExpectedCrlf,
    /// A length or integer field is not a valid decimal number.
    #[error("invalid integer")]
    InvalidInteger,
    /// A declared length is negative where only -1 (null) is allowed, or otherwise invalid.
    #[error("invalid length {0}")]
    InvalidLength(i64),
    /// A double field is not a valid number.
    #[error("invalid double")]
    InvalidDouble,
    /// A boolean is neither `#t` nor `#f`.
    #[error("invalid boolean")]
    InvalidBoolean,
    /// A big number is not an optional `-` followed by digits.
    #[error("invalid big number")]
    InvalidBigNumber,
    /// A verbatim string lacks its three-byte format and `:`.
    #[error("invalid verbatim string")]
    InvalidVerbatim,
    /// A streamed string held something other than `;` chunks.
    #[error("invalid streamed string chunk")]
    InvalidStreamChunk,
    /// A streamed-aggregate end marker (`.`) appeared outside a streamed aggregate, or a
    /// streamed map ended between a key and its value.
    #[error("unexpected end-of-aggregate marker")]
    UnexpectedEnd,
    /// A bulk string declared a length over [`Limits::max_bulk_len`](crate::Limits).
    #[error("bulk length {len} exceeds the limit of {limit}")]
    BulkTooLong {
        /// The declared length.
        len: u64,
        /// The configured limit.
        limit: usize,
    },
    /// An aggregate declared more elements than [`Limits::max_aggregate_len`](crate::Limits).
    #[error("aggregate length {len} exceeds the limit of {limit}")]
    AggregateTooLong {
        /// The declared element count.
        len: u64,
        /// The configured limit.
        limit: usize,
    },
    /// Aggregates nested deeper than [`Limits::max_depth`](crate::Limits).
    #[error("nesting deeper than the limit of {limit}")]
    TooDeep {
        /// The configured limit.
        limit: usize,
    },
    /// A single line (simple string, error, number) grew past
    /// [`Limits::max_line_len`](crate::Limits) without ending.
    #[error("line longer than the limit of {limit}")]
    LineTooLong {
        /// The configured limit.
        limit: usize,
    },
    /// One reply would take more bytes of input than
    /// [`Limits::max_reply_bytes`](crate::Limits): the offset is that of the line or of
    /// the length field whose bytes would pass the limit. Raise the limit if the peer is
    /// trusted and the reply is wanted; otherwise drop the connection.
    #[error("reply longer than the limit of {limit} bytes")]
    ReplyTooLong {
        /// The configured limit.
        limit: usize,
    },
    /// One reply would hold more elements, at every depth, than
    /// [`Limits::max_reply_elements`](crate::Limits): the offset is that of the length
    /// field of the aggregate whose elements would pass the limit, or of the streamed
    /// element that passed it.
    #[error("reply holds more than the limit of {limit} elements")]
    TooManyElements {
        /// The configured limit.
        limit: usize,
    },
}
