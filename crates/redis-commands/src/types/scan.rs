//! SCAN options and the cursor state machine behind the lazy SCAN iterators: it says
//! which command to send next and takes each reply, doing no I/O itself.

use crate::cmd::scan as scan_cmds;
use crate::{Cmd, FromValue, FromValueError, ToArgs, Typed};
use bytes::Bytes;

/// MATCH, COUNT and TYPE of SCAN, SSCAN, HSCAN and ZSCAN.
///
/// ```
/// # use redis_commands as redis_client;
/// use redis_client::ScanOptions;
/// let opts = ScanOptions::new().pattern("user:*").count(100).key_type("hash");
/// # let _ = opts;
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use = "options do nothing until passed to a command"]
pub struct ScanOptions {
    pattern: Option<Bytes>,
    count: Option<u64>,
    key_type: Option<String>,
}

impl ScanOptions {
    /// No filter, the server's page size.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only elements matching this glob pattern (`MATCH`).
    pub fn pattern(mut self, pattern: impl Into<Bytes>) -> Self {
        self.pattern = Some(pattern.into());
        self
    }

    /// A hint of how many elements to look at per call (`COUNT`).
    pub fn count(mut self, count: u64) -> Self {
        self.count = Some(count);
        self
    }

    /// Only keys of this type (`TYPE`, SCAN only: `string`, `hash`, `zset` …).
    pub fn key_type(mut self, key_type: &str) -> Self {
        self.key_type = Some(key_type.to_owned());
        self
    }
}

impl ToArgs for ScanOptions {
    fn write_args(&self, cmd: &mut Cmd) {
        if let Some(p) = &self.pattern {
            cmd.arg("MATCH").arg(p);
        }
        if let Some(c) = self.count {
            cmd.arg("COUNT").arg(c);
        }
        if let Some(t) = &self.key_type {
            cmd.arg("TYPE").arg(t);
        }
    }
}

/// Finds a cursor walk that goes round in circles: a server handing back a cursor it
/// already gave in the same walk. Redis never does (its cursors only move forward), but a
/// broken or hostile server would keep an iterator asking forever.
///
/// Brent's cycle detection: constant memory, and any loop is found within about twice
/// the number of pages up to its end.
///
/// ```
/// # use redis_commands as redis_client;
/// use redis_client::CursorLoop;
/// let mut seen = CursorLoop::default();
/// assert!(!seen.repeats(12) && !seen.repeats(4) && !seen.repeats(7));
/// assert!((0..8).any(|_| seen.repeats(4) || seen.repeats(7)));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct CursorLoop {
    /// A cursor seen earlier, compared with each new one.
    saved: u64,
    /// Cursors received since `saved` was taken, and how many before it is taken again.
    steps: u64,
    power: u64,
}

impl CursorLoop {
    /// Records `cursor`, the next one a server answered; true when it closes a loop.
    /// Cursor 0 ends a walk and is never a loop.
    pub fn repeats(&mut self, cursor: u64) -> bool {
        if cursor != 0 && self.power > 0 && cursor == self.saved {
            return true;
        }
        self.steps += 1;
        if self.steps >= self.power.max(1) {
            self.saved = cursor;
            self.power = self.power.max(1) * 2;
            self.steps = 0;
        }
        false
    }
}

/// Items a SCAN-family command yields, and how to ask for the next page of them.
pub trait ScanItem: FromValue + Sized {
    /// The command fetching the page at `cursor`.
    fn page(key: Option<&Bytes>, cursor: u64, options: &ScanOptions) -> Typed<(u64, Vec<Self>)>;
}

/// The state of a cursor walk: which page to fetch next, and whether the walk is over.
///
/// ```
/// use bytes::Bytes;
/// # use redis_commands as redis_client;
/// use redis_client::{ScanOptions, ScanState};
/// let mut state = ScanState::<Bytes>::scan(ScanOptions::new());
/// let first = state.next_command().expect("a walk starts with a page");
/// assert_eq!(first.cmd.args().nth(1), Some(&b"0"[..]));
/// // The server answered cursor 0: the walk is complete.
/// let items = state.handle_reply((0, vec![Bytes::from("k")])).unwrap();
/// assert_eq!(items.len(), 1);
/// assert!(state.next_command().is_none());
/// ```
///
/// A server that hands back a cursor it already gave in the same walk (Redis itself never
/// does) would keep the walk going forever: [`handle_reply`](ScanState::handle_reply)
/// finds the loop and ends the walk with an error instead.
#[derive(Clone, Debug)]
pub struct ScanState<T> {
    key: Option<Bytes>,
    options: ScanOptions,
    cursor: u64,
    done: bool,
    seen: CursorLoop,
    _items: std::marker::PhantomData<fn() -> T>,
}

impl<T: ScanItem> ScanState<T> {
    fn start(key: Option<Bytes>, options: ScanOptions) -> Self {
        ScanState {
            key,
            options,
            cursor: 0,
            done: false,
            seen: CursorLoop::default(),
            _items: std::marker::PhantomData,
        }
    }

    /// The command for the next page, or `None` once the server returned cursor 0.
    pub fn next_command(&self) -> Option<Typed<(u64, Vec<T>)>> {
        (!self.done).then(|| T::page(self.key.as_ref(), self.cursor, &self.options))
    }

    /// Takes the reply to the last command: advances the cursor and returns the page.
    ///
    /// # Errors
    /// [`FromValueError::Type`] when the cursor is one the server already gave in this
    /// walk: the walk would never end, so it ends here.
    pub fn handle_reply(&mut self, reply: (u64, Vec<T>)) -> Result<Vec<T>, FromValueError> {
        if self.seen.repeats(reply.0) {
            self.done = true;
            return Err(FromValueError::Type {
                expected: "a SCAN cursor not given before in the same walk",
                actual: format!("cursor {} again", reply.0),
            });
        }
        self.cursor = reply.0;
        self.done = reply.0 == 0;
        Ok(reply.1)
    }

    /// Ends the walk early (after an error, say).
    pub fn finish(&mut self) {
        self.done = true;
    }

    /// The same walk with its items read as `U`, another form of the same pages
    /// (`String` for `Bytes`, text mode's items).
    pub fn items_as<U: ScanItem>(self) -> ScanState<U> {
        ScanState {
            key: self.key,
            options: self.options,
            cursor: self.cursor,
            done: self.done,
            seen: self.seen,
            _items: std::marker::PhantomData,
        }
    }

    /// True once the walk is complete.
    pub fn is_done(&self) -> bool {
        self.done
    }
}

impl ScanState<Bytes> {
    /// A walk over the keys of the database (SCAN).
    pub fn scan(options: ScanOptions) -> Self {
        Self::start(None, options)
    }

    /// A walk over the members of the set at `key` (SSCAN).
    pub fn sscan(key: impl Into<Bytes>, options: ScanOptions) -> Self {
        let mut s = Self::start(Some(key.into()), options);
        s.options.key_type = None;
        s
    }
}

impl ScanState<(Bytes, Bytes)> {
    /// A walk over the fields and values of the hash at `key` (HSCAN).
    pub fn hscan(key: impl Into<Bytes>, options: ScanOptions) -> Self {
        let mut s = Self::start(Some(key.into()), options);
        s.options.key_type = None;
        s
    }
}

impl ScanState<(Bytes, f64)> {
    /// A walk over the members and scores of the sorted set at `key` (ZSCAN).
    pub fn zscan(key: impl Into<Bytes>, options: ScanOptions) -> Self {
        let mut s = Self::start(Some(key.into()), options);
        s.options.key_type = None;
        s
    }
}

/// Keys of SCAN, or members of SSCAN: which one depends on whether a key is given.
impl ScanItem for Bytes {
    fn page(key: Option<&Bytes>, cursor: u64, options: &ScanOptions) -> Typed<(u64, Vec<Self>)> {
        match key {
            Some(k) => scan_cmds::sscan(k, cursor, options.clone()),
            None => scan_cmds::scan(cursor, options.clone()),
        }
    }
}

/// Text mode's items: the same pages as the byte forms, read as UTF-8.
impl ScanItem for String {
    fn page(key: Option<&Bytes>, cursor: u64, options: &ScanOptions) -> Typed<(u64, Vec<Self>)> {
        Typed::new(Bytes::page(key, cursor, options).cmd)
    }
}

impl ScanItem for (String, String) {
    fn page(key: Option<&Bytes>, cursor: u64, options: &ScanOptions) -> Typed<(u64, Vec<Self>)> {
        Typed::new(<(Bytes, Bytes)>::page(key, cursor, options).cmd)
    }
}

impl ScanItem for (String, f64) {
    fn page(key: Option<&Bytes>, cursor: u64, options: &ScanOptions) -> Typed<(u64, Vec<Self>)> {
        Typed::new(<(Bytes, f64)>::page(key, cursor, options).cmd)
    }
}

impl ScanItem for (Bytes, Bytes) {
    fn page(key: Option<&Bytes>, cursor: u64, options: &ScanOptions) -> Typed<(u64, Vec<Self>)> {
        scan_cmds::hscan(key.cloned().unwrap_or_default(), cursor, options.clone())
    }
}

impl ScanItem for (Bytes, f64) {
    fn page(key: Option<&Bytes>, cursor: u64, options: &ScanOptions) -> Typed<(u64, Vec<Self>)> {
        scan_cmds::zscan(key.cloned().unwrap_or_default(), cursor, options.clone())
    }
}
