//! Bounds that keep a hostile peer from exhausting memory or the stack.

/// Decoding limits. A declared length over a limit is refused before anything is allocated.
///
/// ```
/// use resp_proto::Limits;
/// let strict = Limits { max_bulk_len: 1 << 20, ..Limits::default() };
/// assert_eq!(strict.max_depth, Limits::default().max_depth);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest bulk string, blob error or verbatim string, in bytes. Default 512 MiB, the
    /// largest string value Redis stores (`proto-max-bulk-len`).
    pub max_bulk_len: usize,
    /// Most elements declared by one aggregate (a map counts its pairs). Default 2^32 - 1,
    /// above any reply Redis can produce. Memory is reserved only as element bytes arrive,
    /// so a large declaration alone costs nothing.
    pub max_aggregate_len: usize,
    /// Deepest nesting of aggregates. Default 128: Redis replies nest a handful of levels
    /// (Lua scripts can return deeper tables, but not usefully beyond this).
    pub max_depth: usize,
    /// Longest line of a simple string, simple error, number or length field. Default 1 MiB,
    /// far above what Redis sends on one line (a Lua script's error text is the longest);
    /// a line without `\r\n` past this is refused rather than buffered forever.
    pub max_line_len: usize,
}

impl Limits {
    /// The defaults described on each field.
    pub const DEFAULT: Limits = Limits {
        max_bulk_len: 512 * 1024 * 1024,
        max_aggregate_len: u32::MAX as usize,
        max_depth: 128,
        max_line_len: 1024 * 1024,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}
