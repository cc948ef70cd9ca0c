//! The default decoder: incremental, resumable and zero-copy.
//!
//! Decoding runs in two passes over the frame at the front of the buffer.
//!
//! 1. The *scan* validates the frame and finds where it ends, without building anything.
//!    It keeps its place between calls (the open aggregates, the position reached, where a
//!    line search stopped, the buffer length a pending payload needs), so bytes that
//!    arrived earlier are not looked at again: a reply arriving in many small reads costs
//!    time linear in its size.
//! 2. Once the whole frame is present it is split off the buffer and frozen, and the
//!    *build* walks the already validated bytes once more, making [`Value`]s whose payloads
//!    are [`Bytes`] views of that frozen frame: an array of N bulk strings allocates the
//!    array, not N strings.
//!
//! Both passes are loops over an explicit stack, so nesting costs heap (bounded by
//! [`Limits::max_depth`]), never call-stack depth. The checks and the error offsets are the
//! same as [`ReferenceDecoder`](crate::ReferenceDecoder)'s; tests hold the two together.

use crate::reference::parse_double;
use crate::{Decode, Limits, ProtocolError, ProtocolErrorKind as K, ServerError, Value};
use bytes::{Buf, Bytes, BytesMut};

/// The default decoder: incremental over a [`BytesMut`] read buffer, zero-copy for payloads.
///
/// Cost: each byte of input is scanned once while the frame is incomplete, plus once more
/// when the complete frame is built. One allocation per aggregate (its `Vec`, reserved no
/// larger than the bytes at hand can fill) and one per streamed string (the chunks are
/// joined); bulk strings, simple strings, errors, big numbers and verbatim strings are
/// views into the frame, which is split off the buffer without copying.
///
/// The decoder keeps scan state between calls that return `Ok(None)`, so it expects the
/// same buffer with bytes only appended. If the buffer shrank it starts the frame over.
#[derive(Clone, Debug, Default)]
pub struct Decoder {
    limits: Limits,
    scan: Scan,
    /// Reused stack of aggregates being built, kept to avoid an allocation per call.
    building: Vec<Building>,
    /// Bytes examined by the scan, to prove in tests that nothing is rescanned.
    #[cfg(test)]
    scanned: usize,
}

impl Decoder {
    /// A decoder with the default [`Limits`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder enforcing `limits`.
    pub fn with_limits(limits: Limits) -> Self {
        Decoder {
            limits,
            ..Self::default()
        }
    }
}

impl Decoder {
    /// The buffer length at which the payload the decoder is waiting for will be complete,
    /// when the last call returned `Ok(None)` in the middle of a bulk string; `None`
    /// otherwise.
    ///
    /// A reader can reserve this much once, so a large reply is copied into the buffer a
    /// single time instead of being moved on every doubling. Cost: O(1).
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use resp_proto::{Decode, Decoder};
    ///
    /// let mut decoder = Decoder::new();
    /// let mut buf = BytesMut::from(&b"$10000\r\nabc"[..]);
    /// assert_eq!(decoder.decode(&mut buf)?, None);
    /// assert_eq!(decoder.bytes_wanted(), Some(8 + 10_000 + 2));
    /// # Ok::<(), resp_proto::ProtocolError>(())
    /// ```
    pub fn bytes_wanted(&self) -> Option<usize> {
        (self.scan.need > 0).then_some(self.scan.need)
    }
}

impl Decode for Decoder {
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Value>, ProtocolError> {
        if self.scan.is_fresh() {
            // Back-to-back integer replies are common (INCR, pipelines): take them without
            // splitting the buffer.
            if let Some((n, used)) = quick_integer(buf, &self.limits) {
                buf.advance(used);
                return Ok(Some(Value::Integer(n)));
            }
        } else if buf.len() < self.scan.pos {
            self.scan.reset();
        }
        match self.scan_frame(buf) {
            Ok(None) => Ok(None),
            Ok(Some(len)) => {
                self.scan.reset();
                let frame = buf.split_to(len).freeze();
                let mut stack = std::mem::take(&mut self.building);
                let built = build(&frame, &mut stack);
                stack.clear();
                self.building = stack;
                built.map(Some)
            }
            Err(e) => {
                self.scan.reset();
                Err(e)
            }
        }
    }
}

/// Where the scan of a frame stands between calls.
#[derive(Clone, Debug, Default)]
struct Scan {
    /// Offset of the next item to scan, from the start of the frame (= of the buffer).
    pos: usize,
    /// Where to resume looking for the end of the line that starts near `pos`.
    line_from: usize,
    /// The buffer length the pending payload needs before scanning is worth resuming.
    need: usize,
    /// Inside a streamed string (`$?`): where it started and the bytes of its chunks so far.
    stream: Option<(usize, u64)>,
    /// The aggregates opened and not yet complete, outermost first.
    open: Vec<Open>,
}

impl Scan {
    fn is_fresh(&self) -> bool {
        self.pos == 0 && self.line_from == 0 && self.need == 0
    }

    fn reset(&mut self) {
        self.pos = 0;
        self.line_from = 0;
        self.need = 0;
        self.stream = None;
        self.open.clear();
    }

    fn advance_to(&mut self, pos: usize) {
        self.pos = pos;
        self.line_from = 0;
    }
}

/// An aggregate whose elements are still being scanned.
#[derive(Clone, Copy, Debug)]
struct Open {
    /// Offset of its type byte.
    start: usize,
    /// Values it still expects; `u64::MAX` while streamed (it ends at `.`).
    left: u64,
    /// Values seen so far.
    seen: u64,
    /// 2 for maps and attributes (values come in pairs), 1 otherwise.
    per_entry: u8,
    streamed: bool,
    attribute: bool,
}

type Step<T> = Result<Option<T>, ProtocolError>;

impl Decoder {
    /// Validates the frame at the front of `buf`; its length once complete.
    fn scan_frame(&mut self, buf: &[u8]) -> Step<usize> {
        if buf.len() < self.scan.need {
            return Ok(None);
        }
        self.scan.need = 0;
        loop {
            // Scan one item; `done` is the offset where a completed element started.
            let done = if let Some((start, total)) = self.scan.stream {
                match self.stream_chunk(buf, start, total)? {
                    None => return Ok(None),
                    Some(None) => continue,
                    Some(Some(start)) => start,
                }
            } else {
                match self.item(buf)? {
                    None => return Ok(None),
                    Some(None) => continue,
                    Some(Some(start)) => start,
                }
            };
            // An element is complete: count it in its aggregate, closing those it fills.
            let mut elem_start = done;
            loop {
                let Some(top) = self.scan.open.last_mut() else {
                    return Ok(Some(self.scan.pos));
                };
                top.seen += 1;
                if top.streamed {
                    let entries = top.seen / u64::from(top.per_entry);
                    if entries > self.limits.max_aggregate_len as u64 {
                        return Err(ProtocolError::new(
                            K::AggregateTooLong {
                                len: entries,
                                limit: self.limits.max_aggregate_len,
                            },
                            elem_start,
                        ));
                    }
                    break;
                }
                top.left -= 1;
                if top.left > 0 {
                    break;
                }
                elem_start = top.start;
                self.scan.open.pop();
            }
        }
    }

    /// Scans the item at `scan.pos`. `Some(Some(start))`: an element starting at `start`
    /// is complete. `Some(None)`: progress without a complete element (an aggregate or a
    /// streamed string opened). `None`: more bytes needed.
    fn item(&mut self, buf: &[u8]) -> Step<Option<usize>> {
        let at = self.scan.pos;
        let Some(&marker) = buf.get(at) else {
            return Ok(None);
        };
        let end = match marker {
            b'+' | b'-' => match self.line(buf, at + 1)? {
                None => return Ok(None),
                Some((_, end)) => end,
            },
            b':' => match self.int_line(buf, at + 1)? {
                None => return Ok(None),
                Some((_, end)) => end,
            },
            b'_' => match self.line(buf, at + 1)? {
                None => return Ok(None),
                Some((cr, end)) if cr == at + 1 => end,
                Some(_) => return err(K::ExpectedCrlf, at + 1),
            },
            b'#' => match self.line(buf, at + 1)? {
                None => return Ok(None),
                Some((cr, end)) => match &buf[at + 1..cr] {
                    b"t" | b"f" => end,
                    _ => return err(K::InvalidBoolean, at + 1),
                },
            },
            b',' => match self.line(buf, at + 1)? {
                None => return Ok(None),
                Some((cr, end)) => match parse_double(&buf[at + 1..cr]) {
                    Some(_) => end,
                    None => return err(K::InvalidDouble, at + 1),
                },
            },
            b'(' => match self.line(buf, at + 1)? {
                None => return Ok(None),
                Some((cr, end)) => {
                    if !is_big_number(&buf[at + 1..cr]) {
                        return err(K::InvalidBigNumber, at + 1);
                    }
                    end
                }
            },
            b'$' | b'!' | b'=' => return self.blob(buf, marker, at),
            b'*' | b'~' | b'>' | b'%' | b'|' => return self.aggregate(buf, marker, at),
            b'.' => return self.end_marker(buf, at),
            other => return err(K::InvalidTypeByte(other), at),
        };
        self.scan.advance_to(end);
        Ok(Some(Some(at)))
    }

    fn blob(&mut self, buf: &[u8], marker: u8, at: usize) -> Step<Option<usize>> {
        let len_at = at + 1;
        if buf.get(len_at) == Some(&b'?') {
            if marker != b'$' {
                return err(K::InvalidLength(-1), len_at);
            }
            match self.line(buf, len_at)? {
                None => return Ok(None),
                Some((cr, end)) if cr == len_at + 1 => {
                    // The streamed string's chunks follow; it completes at its `;0`.
                    self.scan.advance_to(end);
                    self.scan.stream = Some((at, 0));
                    return Ok(Some(None));
                }
                Some(_) => return err(K::InvalidInteger, len_at),
            }
        }
        let Some((len, start)) = self.int_line(buf, len_at)? else {
            return Ok(None);
        };
        if len == -1 && marker == b'$' {
            self.scan.advance_to(start);
            return Ok(Some(Some(at)));
        }
        if len < 0 {
            return err(K::InvalidLength(len), len_at);
        }
        if len as u64 > self.limits.max_bulk_len as u64 {
            return err(
                K::BulkTooLong {
                    len: len as u64,
                    limit: self.limits.max_bulk_len,
                },
                len_at,
            );
        }
        let len = len as usize;
        let end = start + len + 2;
        if buf.len() < end {
            // Wait for the whole payload without looking at it: the header is re-read (a
            // few bytes) once the buffer is long enough.
            self.scan.need = end;
            return Ok(None);
        }
        if &buf[start + len..end] != b"\r\n" {
            return err(K::ExpectedCrlf, start + len);
        }
        if marker == b'=' && (len < 4 || buf[start + 3] != b':') {
            return err(K::InvalidVerbatim, start);
        }
        self.scan.advance_to(end);
        Ok(Some(Some(at)))
    }

    /// One `;len\r\n<data>\r\n` chunk of the streamed string that started at `opened` and
    /// has `total` bytes so far.
    fn stream_chunk(&mut self, buf: &[u8], opened: usize, total: u64) -> Step<Option<usize>> {
        let at = self.scan.pos;
        match buf.get(at) {
            None => return Ok(None),
            Some(b';') => {}
            Some(_) => return err(K::InvalidStreamChunk, at),
        }
        let Some((len, start)) = self.int_line(buf, at + 1)? else {
            return Ok(None);
        };
        if len < 0 {
            return err(K::InvalidLength(len), at + 1);
        }
        if len == 0 {
            // `;0` ends the string.
            self.scan.advance_to(start);
            self.scan.stream = None;
            return Ok(Some(Some(opened)));
        }
        let total = total + len as u64;
        if total > self.limits.max_bulk_len as u64 {
            return err(
                K::BulkTooLong {
                    len: total,
                    limit: self.limits.max_bulk_len,
                },
                at + 1,
            );
        }
        let len = len as usize;
        let end = start + len + 2;
        if buf.len() < end {
            self.scan.need = end;
            return Ok(None);
        }
        if &buf[start + len..end] != b"\r\n" {
            return err(K::ExpectedCrlf, start + len);
        }
        self.scan.advance_to(end);
        self.scan.stream = Some((opened, total));
        Ok(Some(None))
    }

    fn aggregate(&mut self, buf: &[u8], marker: u8, at: usize) -> Step<Option<usize>> {
        // Every open aggregate is one level; an attribute's annotated value counts as
        // nested in it, so a chain of attributes is bounded too.
        if self.scan.open.len() >= self.limits.max_depth {
            return err(
                K::TooDeep {
                    limit: self.limits.max_depth,
                },
                at,
            );
        }
        let len_at = at + 1;
        let per_entry = if matches!(marker, b'%' | b'|') { 2 } else { 1 };
        let attribute = marker == b'|';
        if buf.get(len_at) == Some(&b'?') {
            // RESP3 streams arrays, sets and maps only.
            if !matches!(marker, b'*' | b'~' | b'%') {
                return err(K::InvalidLength(-1), len_at);
            }
            return match self.line(buf, len_at)? {
                None => Ok(None),
                Some((cr, end)) if cr == len_at + 1 => {
                    self.scan.advance_to(end);
                    self.scan.open.push(Open {
                        start: at,
                        left: u64::MAX,
                        seen: 0,
                        per_entry,
                        streamed: true,
                        attribute,
                    });
                    Ok(Some(None))
                }
                Some(_) => err(K::InvalidInteger, len_at),
            };
        }
        let Some((len, end)) = self.int_line(buf, len_at)? else {
            return Ok(None);
        };
        if len == -1 && marker == b'*' {
            self.scan.advance_to(end);
            return Ok(Some(Some(at)));
        }
        if len < 0 {
            return err(K::InvalidLength(len), len_at);
        }
        if len as u64 > self.limits.max_aggregate_len as u64 {
            return err(
                K::AggregateTooLong {
                    len: len as u64,
                    limit: self.limits.max_aggregate_len,
                },
                len_at,
            );
        }
        self.scan.advance_to(end);
        // An attribute is followed by the value it annotates.
        let left = len as u64 * u64::from(per_entry) + u64::from(attribute);
        if left == 0 {
            return Ok(Some(Some(at)));
        }
        self.scan.open.push(Open {
            start: at,
            left,
            seen: 0,
            per_entry,
            streamed: false,
            attribute,
        });
        Ok(Some(None))
    }

    /// `.`: the end of a streamed aggregate.
    fn end_marker(&mut self, buf: &[u8], at: usize) -> Step<Option<usize>> {
        let end = match self.line(buf, at + 1)? {
            None => return Ok(None),
            Some((cr, end)) if cr == at + 1 => end,
            Some(_) => return err(K::ExpectedCrlf, at + 1),
        };
        let Some(top) = self.scan.open.last() else {
            return err(K::UnexpectedEnd, 0);
        };
        if top.streamed && top.seen % u64::from(top.per_entry) == 0 {
            let start = top.start;
            self.scan.open.pop();
            self.scan.advance_to(end);
            return Ok(Some(Some(start)));
        }
        if top.attribute && top.left == 1 {
            // Where the annotated value should have been.
            return err(K::UnexpectedEnd, end);
        }
        err(K::UnexpectedEnd, at)
    }

    /// The line starting at `start`: the offset of its `\r` and the offset after its `\n`.
    fn line(&mut self, buf: &[u8], start: usize) -> Step<(usize, usize)> {
        let from = self.scan.line_from.max(start);
        let rest = buf.get(from..).unwrap_or_default();
        #[cfg(test)]
        {
            self.scanned += rest.len();
        }
        let max = self.limits.max_line_len;
        let Some(i) = memchr::memchr(b'\n', rest) else {
            // The line may still end well: `max` bytes, then `\r` and `\n`.
            if buf.len() - start > max.saturating_add(1) {
                return err(K::LineTooLong { limit: max }, start);
            }
            self.scan.line_from = buf.len();
            return Ok(None);
        };
        #[cfg(test)]
        {
            // Only the bytes up to the newline were looked at.
            self.scanned -= rest.len() - i - 1;
        }
        let nl = from + i;
        if nl - start > max.saturating_add(1) {
            return err(K::LineTooLong { limit: max }, start);
        }
        if nl == start || buf[nl - 1] != b'\r' {
            return err(K::ExpectedCrlf, nl);
        }
        Ok(Some((nl - 1, nl + 1)))
    }

    /// A decimal line starting at `start`: its value and the offset after its `\n`.
    #[inline]
    fn int_line(&mut self, buf: &[u8], start: usize) -> Step<(i64, usize)> {
        if let Some((n, end)) = int_crlf(buf, start) {
            if end - start - 2 <= self.limits.max_line_len {
                #[cfg(test)]
                {
                    self.scanned += end - start;
                }
                return Ok(Some((n, end)));
            }
        }
        let Some((cr, end)) = self.line(buf, start)? else {
            return Ok(None);
        };
        match parse_i64(&buf[start..cr]) {
            Some(n) => Ok(Some((n, end))),
            None => err(K::InvalidInteger, start),
        }
    }
}

fn err<T>(kind: K, at: usize) -> Result<T, ProtocolError> {
    Err(ProtocolError::new(kind, at))
}

/// A whole `:<n>\r\n` at the front of `buf`, in its common short form.
#[inline]
fn quick_integer(buf: &[u8], limits: &Limits) -> Option<(i64, usize)> {
    if buf.first() != Some(&b':') {
        return None;
    }
    let (n, end) = int_crlf(buf, 1)?;
    (end - 3 <= limits.max_line_len).then_some((n, end))
}

/// Parses `-?<1 to 18 digits>\r\n` at `at`: the value and the offset after `\n`.
///
/// Only the common form; anything else (longer, malformed, incomplete) returns `None` and
/// goes through the general line reader, which gives the exact error.
#[inline(always)]
fn int_crlf(buf: &[u8], at: usize) -> Option<(i64, usize)> {
    let s = buf.get(at..)?;
    let neg = s.first() == Some(&b'-');
    let digits = &s[usize::from(neg)..];
    // Eighteen digits never overflow an i64, so no check is needed inside the loop.
    let limit = digits.len().min(18);
    let mut n: i64 = 0;
    let mut i = 0;
    while i < limit {
        let d = digits[i].wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        n = n * 10 + i64::from(d);
        i += 1;
    }
    if i == 0 || digits.get(i..i + 2) != Some(b"\r\n") {
        return None;
    }
    Some((if neg { -n } else { n }, at + usize::from(neg) + i + 2))
}

/// A decimal `i64` as Rust's parser reads it, except that RESP has no leading `+`.
fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.first() == Some(&b'+') {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

fn is_big_number(l: &[u8]) -> bool {
    let digits = match l.first() {
        Some(b'-' | b'+') => &l[1..],
        _ => l,
    };
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

/// An aggregate being built.
#[derive(Clone, Debug)]
struct Building {
    marker: u8,
    /// Values still expected; `u64::MAX` while streamed.
    left: u64,
    items: Vec<Value>,
    pairs: Vec<(Value, Value)>,
    /// A map key waiting for its value; for an attribute, finally the annotated value.
    key: Option<Value>,
}

impl Building {
    /// An aggregate of `n` entries (`None`: streamed) with `room` bytes of frame left.
    fn new(marker: u8, n: Option<u64>, room: usize) -> Self {
        let pairs = matches!(marker, b'%' | b'|');
        // Every value takes at least three bytes (`_\r\n`), a pair six: never reserve
        // more than the frame can fill, whatever was declared.
        let cap = n.map_or(0, |n| {
            n.min(room as u64 / if pairs { 6 } else { 3 }) as usize
        });
        let left = match n {
            None => u64::MAX,
            Some(n) if pairs => 2 * n + u64::from(marker == b'|'),
            Some(n) => n,
        };
        let (items, pairs) = if pairs {
            (Vec::new(), Vec::with_capacity(cap))
        } else {
            (Vec::with_capacity(cap), Vec::new())
        };
        Building {
            marker,
            left,
            items,
            pairs,
            key: None,
        }
    }

    /// Adds a value; true when that completes the aggregate.
    #[inline]
    fn add(&mut self, v: Value) -> bool {
        match self.marker {
            b'%' | b'|' => {
                if self.marker == b'|' && self.left == 1 {
                    self.key = Some(v);
                } else {
                    match self.key.take() {
                        None => self.key = Some(v),
                        Some(k) => self.pairs.push((k, v)),
                    }
                }
            }
            _ => self.items.push(v),
        }
        self.left -= 1;
        self.left == 0
    }

    fn finish(self) -> Value {
        match self.marker {
            b'*' => Value::Array(self.items),
            b'~' => Value::Set(self.items),
            b'>' => Value::Push(self.items),
            b'%' => Value::Map(self.pairs),
            _ => Value::Attribute {
                attributes: self.pairs,
                value: Box::new(self.key.unwrap_or(Value::Nil)),
            },
        }
    }
}

/// Builds the value of a complete `frame` that the scan has validated.
///
/// The scan's checks are not repeated; an inconsistency (which would be a bug in the scan)
/// gives an error rather than a panic.
fn build(frame: &Bytes, stack: &mut Vec<Building>) -> Result<Value, ProtocolError> {
    let b: &[u8] = frame;
    let broken = |at: usize| ProtocolError::new(K::ExpectedCrlf, at);
    let mut pos = 0;
    loop {
        if let Some(top) = stack.last_mut() {
            // The hot case, arrays of bulk strings (MGET, LRANGE, SMEMBERS …): take them in
            // a tight loop. The last element goes the general way, which closes the array.
            if matches!(top.marker, b'*' | b'~' | b'>') {
                while top.left > 1 && b.get(pos) == Some(&b'$') {
                    let Some((len, start)) = int_crlf(b, pos + 1) else {
                        break;
                    };
                    // A null (`$-1`) or out-of-frame length goes the general way.
                    let Some(end) = usize::try_from(len).ok().and_then(|l| start.checked_add(l))
                    else {
                        break;
                    };
                    if end.saturating_add(2) > b.len() {
                        break;
                    }
                    top.items.push(Value::BulkString(frame.slice(start..end)));
                    top.left -= 1;
                    pos = end + 2;
                }
            } else if top.marker == b'%' && top.key.is_none() {
                // The same for maps of bulk strings (HGETALL, CONFIG GET over RESP3).
                while top.left > 2 {
                    let Some((k, after_k)) = sized_bulk(b, pos) else {
                        break;
                    };
                    let Some((v, after_v)) = sized_bulk(b, after_k) else {
                        break;
                    };
                    top.pairs.push((
                        Value::BulkString(frame.slice(k)),
                        Value::BulkString(frame.slice(v)),
                    ));
                    top.left -= 2;
                    pos = after_v;
                }
            }
        }
        let at = pos;
        let marker = *b.get(at).ok_or_else(|| broken(at))?;
        let mut v = match marker {
            b'$' | b'!' | b'=' => {
                if b.get(at + 1) == Some(&b'?') {
                    let (s, end) = joined_chunks(b, at + 4).ok_or_else(|| broken(at))?;
                    pos = end;
                    Value::BulkString(s)
                } else {
                    let (len, start) = trusted_int(b, at + 1).ok_or_else(|| broken(at))?;
                    if len < 0 {
                        pos = start;
                        Value::Nil
                    } else {
                        let end = start + len as usize;
                        if end + 2 > b.len() {
                            return Err(broken(start));
                        }
                        pos = end + 2;
                        let data = frame.slice(start..end);
                        match marker {
                            b'$' => Value::BulkString(data),
                            b'!' => Value::Error(ServerError::new(data)),
                            _ => match *data {
                                [f0, f1, f2, b':', ..] => Value::Verbatim {
                                    format: [f0, f1, f2],
                                    text: data.slice(4..),
                                },
                                _ => return Err(broken(start)),
                            },
                        }
                    }
                }
            }
            b':' => {
                let (n, end) = trusted_int(b, at + 1).ok_or_else(|| broken(at))?;
                pos = end;
                Value::Integer(n)
            }
            b'+' | b'-' | b'(' => {
                let cr = line_end(b, at + 1).ok_or_else(|| broken(at))?;
                pos = cr + 2;
                let text = frame.slice(at + 1..cr);
                match marker {
                    b'+' => Value::SimpleString(text),
                    b'-' => Value::Error(ServerError::new(text)),
                    _ => Value::BigNumber(text),
                }
            }
            b'_' => {
                pos = at + 3;
                Value::Nil
            }
            b'#' => {
                pos = at + 4;
                Value::Boolean(b.get(at + 1) == Some(&b't'))
            }
            b',' => {
                let cr = line_end(b, at + 1).ok_or_else(|| broken(at))?;
                pos = cr + 2;
                parse_double(&b[at + 1..cr])
                    .map(Value::Double)
                    .ok_or_else(|| broken(at))?
            }
            b'*' | b'~' | b'>' | b'%' | b'|' => {
                let n = if b.get(at + 1) == Some(&b'?') {
                    pos = at + 4;
                    None
                } else {
                    let (n, end) = trusted_int(b, at + 1).ok_or_else(|| broken(at))?;
                    pos = end;
                    if n < 0 {
                        // Only `*-1` passes the scan.
                        Some(u64::MAX)
                    } else {
                        Some(n as u64)
                    }
                };
                match n {
                    Some(u64::MAX) => Value::Nil,
                    Some(0) if marker != b'|' => Building::new(marker, Some(0), 0).finish(),
                    n => {
                        stack.push(Building::new(marker, n, b.len() - pos));
                        continue;
                    }
                }
            }
            b'.' => {
                pos = at + 3;
                stack.pop().ok_or_else(|| broken(at))?.finish()
            }
            _ => return Err(broken(at)),
        };
        // Hand the value to the aggregate it belongs to, closing those it completes.
        loop {
            let Some(top) = stack.last_mut() else {
                return Ok(v);
            };
            if !top.add(v) {
                break;
            }
            // `last_mut` just returned it, so the stack is not empty.
            v = stack.pop().map_or(Value::Nil, Building::finish);
        }
    }
}

/// A validated `$<len>\r\n<data>\r\n` at `at`: the data's range and the offset after it.
#[inline(always)]
fn sized_bulk(b: &[u8], at: usize) -> Option<(std::ops::Range<usize>, usize)> {
    if b.get(at) != Some(&b'$') {
        return None;
    }
    let (len, start) = int_crlf(b, at + 1)?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    (end.checked_add(2)? <= b.len()).then_some((start..end, end + 2))
}

/// The offset of the `\r` of the (validated) line starting at `start`.
#[inline]
fn line_end(b: &[u8], start: usize) -> Option<usize> {
    let nl = start + memchr::memchr(b'\n', b.get(start..)?)?;
    nl.checked_sub(1)
}

/// A validated decimal line at `start`: its value and the offset after `\n`.
#[inline]
fn trusted_int(b: &[u8], start: usize) -> Option<(i64, usize)> {
    if let Some(r) = int_crlf(b, start) {
        return Some(r);
    }
    let cr = line_end(b, start)?;
    Some((parse_i64(b.get(start..cr)?)?, cr + 2))
}

/// The chunks of a validated streamed string starting at `start` (after `$?\r\n`), joined,
/// and the offset after its final `;0\r\n`.
fn joined_chunks(b: &[u8], start: usize) -> Option<(Bytes, usize)> {
    // Measure first so the joined string is allocated once.
    let mut total = 0usize;
    let mut pos = start;
    loop {
        let (len, data) = trusted_int(b, pos + 1)?;
        if len <= 0 {
            break;
        }
        total += len as usize;
        pos = data + len as usize + 2;
    }
    let mut out = Vec::with_capacity(total);
    let mut pos = start;
    loop {
        let (len, data) = trusted_int(b, pos + 1)?;
        if len <= 0 {
            return Some((out.into(), data));
        }
        out.extend_from_slice(b.get(data..data + len as usize)?);
        pos = data + len as usize + 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in `piece`-byte reads; returns the values and the bytes the scan
    /// examined.
    fn feed(input: &[u8], piece: usize) -> (Vec<Value>, usize) {
        let mut d = Decoder::new();
        let mut buf = BytesMut::with_capacity(input.len());
        let mut values = Vec::new();
        for chunk in input.chunks(piece) {
            buf.extend_from_slice(chunk);
            while let Some(v) = d.decode(&mut buf).expect("valid") {
                values.push(v);
            }
        }
        assert!(buf.is_empty());
        (values, d.scanned)
    }

    #[test]
    fn a_64_mib_bulk_in_4_kib_reads_is_scanned_once() {
        let len = 64 << 20;
        let mut input = format!("${len}\r\n").into_bytes();
        input.resize(input.len() + len, b'x');
        input.extend_from_slice(b"\r\n");
        let (values, scanned) = feed(&input, 4096);
        assert_eq!(values.len(), 1);
        assert_eq!(values[0].as_bytes().map(|b| b.len()), Some(len));
        // The payload is never looked at; only the header, re-read once it is complete.
        assert!(scanned < 64, "{scanned} bytes scanned");
    }

    #[test]
    fn large_aggregates_and_lines_in_small_reads_scan_linearly() {
        let mut input = Vec::new();
        // 100,000 elements, streamed strings among them, and one long simple string.
        input.extend_from_slice(b"*?\r\n");
        for i in 0..100_000 {
            match i % 3 {
                0 => input.extend_from_slice(b"$5\r\nhello\r\n"),
                1 => input.extend_from_slice(format!(":{i}\r\n").as_bytes()),
                _ => input.extend_from_slice(b"$?\r\n;2\r\nab\r\n;1\r\nc\r\n;0\r\n"),
            }
        }
        input.extend_from_slice(b".\r\n+");
        input.resize(input.len() + 1_000_000, b'y');
        input.extend_from_slice(b"\r\n");
        for piece in [1, 7, 4096] {
            let (values, scanned) = feed(&input, piece);
            assert_eq!(values.len(), 2);
            assert!(
                scanned <= 2 * input.len(),
                "{scanned} bytes scanned for {} of input in {piece}-byte reads",
                input.len()
            );
        }
    }

    #[test]
    fn fast_integer_parsing_matches_rust() {
        for s in [
            "0",
            "-0",
            "7",
            "-7",
            "123456789012345678",
            "-123456789012345678",
        ] {
            let line = format!("{s}\r\n");
            assert_eq!(
                int_crlf(line.as_bytes(), 0),
                Some((s.parse().unwrap(), line.len()))
            );
        }
        // Longer or malformed forms are left to the general path.
        for s in [
            "1234567890123456789\r\n",
            "-\r\n",
            "\r\n",
            "1x\r\n",
            "12\n",
            "12",
        ] {
            assert_eq!(int_crlf(s.as_bytes(), 0), None, "{s:?}");
        }
    }

    #[test]
    fn a_shrunken_buffer_restarts_the_frame() {
        let mut d = Decoder::new();
        let mut buf = BytesMut::from(&b"*2\r\n:1\r\n"[..]);
        assert_eq!(d.decode(&mut buf), Ok(None));
        buf.clear();
        buf.extend_from_slice(b":5\r\n");
        assert_eq!(d.decode(&mut buf), Ok(Some(Value::Integer(5))));
    }

    #[test]
    fn size_of_scan_state() {
        // The decoder is embedded in every connection: keep it small.
        assert!(std::mem::size_of::<Decoder>() <= 160);
    }
}
