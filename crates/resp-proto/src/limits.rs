//! Bounds that keep a hostile peer from exhausting memory or the stack.

/// Decoding limits. A declared length over a limit is refused before anything is allocated,
/// and a reply that keeps coming is refused as soon as it passes a limit, not when it ends.
///
/// Both decoders enforce the same limits with the same [`ProtocolErrorKind`]s and offsets.
/// Add fields with struct-update syntax, so code keeps compiling when a limit is added:
///
/// ```
/// use resp_proto::Limits;
/// let strict = Limits { max_bulk_len: 1 << 20, ..Limits::default() };
/// assert_eq!(strict.max_depth, Limits::default().max_depth);
/// ```
///
/// What the defaults bound: the input one reply may hold ([`max_reply_bytes`], 1 GiB), and
/// the memory of its decoded form. Payloads are views of the input (a streamed string is
/// joined into a copy of its chunks), so the decoded form adds one
/// [`Value`](crate::Value) (40 bytes on 64-bit targets) per element, and the elements of
/// one whole reply, at every depth, are at most [`max_reply_elements`] (2^24: 640 MiB of
/// `Value`s). So one reply takes at most its input (1 GiB) plus 640 MiB with the defaults;
/// without the element bound, the three-byte elements of a 1 GiB reply would decode into
/// about 14 GiB.
///
/// [`ProtocolErrorKind`]: crate::ProtocolErrorKind
/// [`max_reply_bytes`]: Limits::max_reply_bytes
/// [`max_reply_elements`]: Limits::max_reply_elements
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest bulk string, blob error or verbatim string, in bytes; for a streamed string
    /// (`$?`), the total of its chunks, counted as each chunk's header arrives. Default
    /// 512 MiB, the largest string value Redis stores (`proto-max-bulk-len`).
    /// Exceeding it gives [`BulkTooLong`](crate::ProtocolErrorKind::BulkTooLong).
    pub max_bulk_len: usize,
    /// Most elements of one aggregate (a map or an attribute counts its pairs): refused
    /// from the header when declared, counted as they arrive when streamed (`*?`, `~?`,
    /// `%?`). Default 2^24 (16,777,216): a Redis reply holds that many elements only when
    /// a command fetches a collection of over 16 million members whole (`KEYS *`,
    /// `SMEMBERS`, `LRANGE 0 -1` of such a key), which the `SCAN` family and ranges exist
    /// to avoid; decoded, an aggregate this long is a 640 MiB `Vec`.
    /// Exceeding it gives [`AggregateTooLong`](crate::ProtocolErrorKind::AggregateTooLong).
    pub max_aggregate_len: usize,
    /// Deepest nesting of aggregates. Default 128: Redis replies nest a handful of levels
    /// (Lua scripts can return deeper tables, but not usefully beyond this).
    /// Exceeding it gives [`TooDeep`](crate::ProtocolErrorKind::TooDeep).
    pub max_depth: usize,
    /// Longest line of a simple string, simple error, number or length field. Default 1 MiB,
    /// far above what Redis sends on one line (a Lua script's error text is the longest);
    /// a line without `\r\n` past this is refused rather than buffered forever.
    /// Exceeding it gives [`LineTooLong`](crate::ProtocolErrorKind::LineTooLong).
    pub max_line_len: usize,
    /// Most bytes of input one top-level reply may take, counted from its first byte
    /// whatever it is made of (sized or streamed strings and aggregates, headers, chunk
    /// framing). A reply is refused as soon as one of its parts would end past this many
    /// bytes: a bulk string from its header, a line once that many bytes have arrived
    /// without its end, so an endless streamed aggregate or string fails once it passes
    /// the cap rather than when it ends. Default 1 GiB, twice `proto-max-bulk-len`: room
    /// for the largest string Redis stores with its neighbours in one reply, while the
    /// server itself does not bound a reply (a normal client's `client-output-buffer-limit`
    /// is 0, unlimited). Keep it above [`max_bulk_len`](Limits::max_bulk_len), or the
    /// longest strings cannot arrive.
    /// Exceeding it gives [`ReplyTooLong`](crate::ProtocolErrorKind::ReplyTooLong).
    pub max_reply_bytes: usize,
    /// Most elements one top-level reply may hold, counted at every depth: the elements of
    /// every array, set and push, the keys and values of every map and attribute, and the
    /// value an attribute annotates (each becomes one [`Value`](crate::Value), 40 bytes on
    /// 64-bit targets). A declared aggregate is refused from its header when its elements
    /// would take the reply past the bound; a streamed one's are counted as they arrive.
    /// Default 2^24, as [`max_aggregate_len`](Limits::max_aggregate_len): the longest
    /// aggregate still fits, and the decoded values of one reply take at most 640 MiB
    /// beside its input.
    /// Exceeding it gives [`TooManyElements`](crate::ProtocolErrorKind::TooManyElements).
    pub max_reply_elements: usize,
    /// Whether the types only RESP3 has are accepted: `_ , # ! = ( % ~ | >`, streamed
    /// strings (`$?`) and aggregates (`*?`, `~?`, `%?`) with their `;` chunks and `.` end.
    /// Default `true`. A RESP2 peer never sends them, so a decoder for a RESP2 connection
    /// refuses them at once: `redis-conn`'s connection core sets this from the protocol
    /// the connection speaks, whatever it is given.
    /// A refused type byte gives [`InvalidTypeByte`](crate::ProtocolErrorKind::InvalidTypeByte)
    /// at its offset, a streamed length (`$?`, `*?`)
    /// [`InvalidInteger`](crate::ProtocolErrorKind::InvalidInteger) at the length's.
    pub resp3: bool,
}

impl Limits {
    /// The defaults described on each field.
    pub const DEFAULT: Limits = Limits {
        max_bulk_len: 512 * 1024 * 1024,
        max_aggregate_len: 1 << 24,
        max_depth: 128,
        max_line_len: 1024 * 1024,
        max_reply_bytes: 1024 * 1024 * 1024,
        max_reply_elements: 1 << 24,
        resp3: true,
    };

    /// These limits with RESP3's own types accepted or refused (see [`Limits::resp3`]).
    pub const fn with_resp3(self, resp3: bool) -> Limits {
        Limits { resp3, ..self }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}
