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

use crate::reference::{is_resp2_type, line_bound, open_line_bound, parse_double};
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
/// same buffer with bytes only appended. It checks that on every call that resumes (the
/// buffer is no shorter than last time, and a fingerprint of the bytes its state relies on
/// is unchanged, O(nesting depth)) and starts the frame over when it is not; it builds a
/// value only after checking every item again. See [`Decode`]'s contract for a buffer
/// changed between calls, and [`Decode::reset`].
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
        let resumed = if self.scan.is_fresh() {
            // Back-to-back integer replies are common (INCR, pipelines): take them without
            // splitting the buffer.
            if let Some((n, used)) = quick_integer(buf, &self.limits) {
                buf.advance(used);
                return Ok(Some(Value::Integer(n)));
            }
            false
        } else if buf.len() < self.scan.seen || self.fingerprint(buf) != self.scan.sig {
            // The buffer was cleared, cut or rewritten since the last call: what was
            // scanned is gone, so start over on what it holds now.
            self.scan.reset();
            false
        } else {
            true
        };
        self.decode_frame(buf, resumed)
    }

    /// Forgets the frame in progress: the next call scans the buffer from its first byte.
    fn reset(&mut self) {
        self.scan.reset();
    }
}

impl Decoder {
    /// Scans on (from where the last call stopped when `resumed`), then builds the frame.
    fn decode_frame(
        &mut self,
        buf: &mut BytesMut,
        resumed: bool,
    ) -> Result<Option<Value>, ProtocolError> {
        match self.scan_frame(buf) {
            Ok(None) => {
                self.remember(buf);
                Ok(None)
            }
            Ok(Some(len)) => {
                self.scan.reset();
                let frame = buf.split_to(len).freeze();
                let mut stack = std::mem::take(&mut self.building);
                let built = build(&frame, &mut stack, &self.limits);
                stack.clear();
                self.building = stack;
                match built {
                    Some(v) => Ok(Some(v)),
                    None => {
                        // The bytes are not what an earlier call scanned: the caller
                        // rewrote them in a way the fingerprint did not catch. Put them
                        // back (copied, on this rare path only) and decode them afresh.
                        // On a frame scanned whole in this call it would be a bug in the
                        // scan or the build: an error then, never a panic (the
                        // differential tests would show it as a disagreement).
                        let mut whole = BytesMut::with_capacity(frame.len() + buf.len());
                        whole.extend_from_slice(&frame);
                        whole.extend_from_slice(buf);
                        *buf = whole;
                        if resumed {
                            self.decode_frame(buf, false)
                        } else {
                            err(K::ExpectedCrlf, 0)
                        }
                    }
                }
            }
            Err(e) => {
                self.scan.reset();
                if resumed {
                    // An error found on a resumed scan may come from a rewrite the
                    // fingerprint did not catch: confirm it on the bytes as they are (an
                    // error ends the stream, so the rescan costs nothing that matters).
                    return self.decode_frame(buf, false);
                }
                Err(e)
            }
        }
    }

    /// Records what the next call checks before it resumes the scan: the buffer length and
    /// a fingerprint of the bytes the saved state leans on most.
    fn remember(&mut self, buf: &[u8]) {
        if !self.scan.is_fresh() {
            self.scan.seen = buf.len();
            self.scan.sig = self.fingerprint(buf);
        }
    }

    /// A hash of the bytes, among the first `scan.seen` of `buf`, that the saved scan
    /// state relies on or that a rewrite is most likely to touch: the frame's start, each
    /// open aggregate's header (its type byte and declared length), the streamed string's
    /// header, the bytes around the resume point (the CRLF that ended the last complete
    /// item, the header of a payload being waited for), and the last bytes seen.
    ///
    /// Cost: O(depth) (16 to 48 bytes per window, hashed eight at a time), whatever the
    /// frame's size, so checking it on every resumed call keeps decoding linear.
    fn fingerprint(&self, buf: &[u8]) -> u64 {
        let seen = &buf[..self.scan.seen.min(buf.len())];
        let pos = self.scan.pos;
        let mut h = Fingerprint::new();
        h.window(seen, 0, 16);
        h.window(seen, pos.saturating_sub(16), pos.saturating_add(32));
        h.window(seen, seen.len().saturating_sub(16), seen.len());
        if let Some((start, _)) = self.scan.stream {
            h.window(seen, start, start.saturating_add(4));
        }
        for open in &self.scan.open {
            h.window(seen, open.start, open.start.saturating_add(24));
        }
        h.0
    }
}

/// A multiply-rotate hash over a few short windows, eight bytes at a time; only compared
/// with itself, in the same process.
struct Fingerprint(u64);

impl Fingerprint {
    fn new() -> Self {
        Fingerprint(0)
    }

    #[inline]
    fn mix(&mut self, x: u64) {
        // The 64-bit golden-ratio constant (Fibonacci hashing) spreads each word over the
        // high bits; the rotation brings them back down for the next word.
        self.0 = (self.0 ^ x)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(23);
    }

    /// Hashes `b[from..to]`, clipped to `b`, and where the window starts.
    #[inline]
    fn window(&mut self, b: &[u8], from: usize, to: usize) {
        let to = to.min(b.len());
        let from = from.min(to);
        self.mix(from as u64);
        let mut rest = &b[from..to];
        while let Some((word, tail)) = rest.split_first_chunk::<8>() {
            self.mix(u64::from_le_bytes(*word));
            rest = tail;
        }
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            // The length in the top byte, so trailing zeros are not the same as fewer bytes.
            self.mix(u64::from_le_bytes(last) ^ ((rest.len() as u64) << 56));
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
    /// Elements of the frame so far, at every depth: declared ones from their header,
    /// streamed ones as they complete.
    elements: u64,
    /// The buffer length when the last call returned `Ok(None)`: a shorter buffer was cut.
    seen: usize,
    /// [`Decoder::fingerprint`] when the last call returned `Ok(None)`.
    sig: u64,
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
        self.elements = 0;
        self.seen = 0;
        self.sig = 0;
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
                    self.scan.elements += 1;
                    let limit = self.limits.max_reply_elements;
                    if self.scan.elements > limit as u64 {
                        return err(K::TooManyElements { limit }, elem_start);
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
        if !self.limits.resp3 && !is_resp2_type(marker) {
            return err(K::InvalidTypeByte(marker), at);
        }
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
            // RESP2 has no streamed strings: `?` is no digit.
            if !self.limits.resp3 {
                return err(K::InvalidInteger, len_at);
            }
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
        self.payload_fits(start, len as u64, len_at)?;
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
        self.payload_fits(start, len as u64, at + 1)?;
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
            // RESP2 has no streamed aggregates: `?` is no digit.
            if !self.limits.resp3 {
                return err(K::InvalidInteger, len_at);
            }
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
        // An attribute is followed by the value it annotates.
        let left = len as u64 * u64::from(per_entry) + u64::from(attribute);
        let limit = self.limits.max_reply_elements;
        if self.scan.elements + left > limit as u64 {
            return err(K::TooManyElements { limit }, len_at);
        }
        self.scan.elements += left;
        self.scan.advance_to(end);
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

    /// Refuses a payload of `len` bytes plus CRLF from `start` if it would take the reply
    /// past [`Limits::max_reply_bytes`]: refused from its header, before it arrives.
    /// `len_at` is its length field.
    #[inline]
    fn payload_fits(&self, start: usize, len: u64, len_at: usize) -> Result<(), ProtocolError> {
        let cap = self.limits.max_reply_bytes;
        if start as u64 + len + 2 > cap as u64 {
            return err(K::ReplyTooLong { limit: cap }, len_at);
        }
        Ok(())
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
        let cap = self.limits.max_reply_bytes;
        let Some(i) = memchr::memchr(b'\n', rest) else {
            // The line may still end well within both bounds: `max` bytes, then `\r` and
            // `\n`, ending at the cap at most. Every byte here is this reply's.
            if let Some(kind) = open_line_bound(start, buf.len(), max, cap) {
                return err(kind, start);
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
        if let Some(kind) = line_bound(start, nl, max, cap) {
            return err(kind, start);
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
            // Within both bounds; otherwise the general reader says which one broke.
            if end - start - 2 <= self.limits.max_line_len && end <= self.limits.max_reply_bytes {
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
    (end - 3 <= limits.max_line_len && end <= limits.max_reply_bytes).then_some((n, end))
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
    /// Streamed (`*?`, `~?`, `%?`): it ends at `.`, and `left` is not used.
    streamed: bool,
    /// Values still expected by a sized aggregate.
    left: u64,
    /// Values added so far, to hold a streamed aggregate to its limit.
    count: u64,
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
            None => 0,
            // At most 2 * i64::MAX + 1, which fits.
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
            streamed: n.is_none(),
            left,
            count: 0,
            items,
            pairs,
            key: None,
        }
    }

    fn per_entry(&self) -> u64 {
        if matches!(self.marker, b'%' | b'|') {
            2
        } else {
            1
        }
    }

    /// Adds a value; true when that completes a sized aggregate.
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
        self.count += 1;
        if self.streamed {
            return false;
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

/// Builds the value of `frame`, which the scan found complete and exactly `frame.len()`
/// bytes long, checking every rule the scan checks as it goes. `None` if one fails or the
/// value does not end exactly at the end of the frame.
///
/// The checks are repeated because the scan may have done part of its work in an earlier
/// call, on bytes the caller has since rewritten (see [`Decode`]'s contract): a value comes
/// out only if a fresh scan of the same bytes would give it. They cost a few comparisons
/// per item, next to the work of building it.
fn build(frame: &Bytes, stack: &mut Vec<Building>, limits: &Limits) -> Option<Value> {
    let b: &[u8] = frame;
    if b.len() > limits.max_reply_bytes {
        return None;
    }
    let max_entries = limits.max_aggregate_len as u64;
    let max_elements = limits.max_reply_elements as u64;
    // Elements of the reply so far, counted as the scan counts them.
    let mut elements: u64 = 0;
    // In a frame no longer than the bulk limit no string can pass it, and the lengths the
    // hot loops read (at most 19 characters, see `int_crlf`) pass no line limit of 19 or
    // more: with the usual limits the loops check only the bytes.
    let unbounded = b.len() <= limits.max_bulk_len && limits.max_line_len >= 19;
    let mut pos = 0;
    loop {
        if let Some(top) = stack.last_mut() {
            // The hot case, arrays of bulk strings (MGET, LRANGE, SMEMBERS …): take them in
            // a tight loop. The last element of a sized array goes the general way, which
            // closes the array; a streamed one may take elements up to its limit.
            if matches!(top.marker, b'*' | b'~' | b'>') {
                let room = if top.streamed {
                    max_entries
                        .saturating_sub(top.count)
                        .min(max_elements.saturating_sub(elements))
                } else {
                    top.left - 1
                };
                let mut taken = 0;
                while taken < room {
                    // A null (`$-1`) or anything unusual goes the general way.
                    let Some((data, next)) = sized_bulk(b, pos, limits, unbounded) else {
                        break;
                    };
                    top.items.push(Value::BulkString(frame.slice(data)));
                    taken += 1;
                    pos = next;
                }
                // Counted once after the loop, which then touches only the `Vec`.
                top.count += taken;
                if top.streamed {
                    elements += taken;
                } else {
                    top.left -= taken;
                }
            } else if top.marker == b'%' && top.key.is_none() {
                // The same for maps of bulk strings (HGETALL, CONFIG GET over RESP3).
                let room = if top.streamed {
                    max_entries
                        .saturating_sub(top.count / 2)
                        .min(max_elements.saturating_sub(elements) / 2)
                } else {
                    (top.left - 1) / 2
                };
                let mut taken = 0;
                while taken < room {
                    let Some((k, after_k)) = sized_bulk(b, pos, limits, unbounded) else {
                        break;
                    };
                    let Some((v, after_v)) = sized_bulk(b, after_k, limits, unbounded) else {
                        break;
                    };
                    top.pairs.push((
                        Value::BulkString(frame.slice(k)),
                        Value::BulkString(frame.slice(v)),
                    ));
                    taken += 1;
                    pos = after_v;
                }
                top.count += 2 * taken;
                if top.streamed {
                    elements += 2 * taken;
                } else {
                    top.left -= 2 * taken;
                }
            }
        }
        let at = pos;
        let marker = *b.get(at)?;
        // What the scan refuses on a RESP2 connection: RESP3's types and streams.
        let streamed = matches!(marker, b'$' | b'*') && b.get(at + 1) == Some(&b'?');
        if !limits.resp3 && (!is_resp2_type(marker) || streamed) {
            return None;
        }
        let mut v = match marker {
            b'$' | b'!' | b'=' => {
                if b.get(at + 1) == Some(&b'?') {
                    let (cr, end) = line_checked(b, at + 1, limits)?;
                    if marker != b'$' || cr != at + 2 {
                        return None;
                    }
                    let (s, end) = joined_chunks(b, end, limits)?;
                    pos = end;
                    Value::BulkString(s)
                } else {
                    let (len, start) = int_checked(b, at + 1, limits)?;
                    if len == -1 && marker == b'$' {
                        pos = start;
                        Value::Nil
                    } else {
                        let len = usize::try_from(len).ok()?;
                        if len > limits.max_bulk_len {
                            return None;
                        }
                        let end = start.checked_add(len)?;
                        if !crlf_at(b, end) {
                            return None;
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
                                _ => return None,
                            },
                        }
                    }
                }
            }
            b':' => {
                let (n, end) = int_checked(b, at + 1, limits)?;
                pos = end;
                Value::Integer(n)
            }
            b'+' | b'-' | b'(' => {
                let (cr, end) = line_checked(b, at + 1, limits)?;
                pos = end;
                let text = frame.slice(at + 1..cr);
                match marker {
                    b'+' => Value::SimpleString(text),
                    b'-' => Value::Error(ServerError::new(text)),
                    _ if is_big_number(&text) => Value::BigNumber(text),
                    _ => return None,
                }
            }
            b'_' => {
                let (cr, end) = line_checked(b, at + 1, limits)?;
                if cr != at + 1 {
                    return None;
                }
                pos = end;
                Value::Nil
            }
            b'#' => {
                let (cr, end) = line_checked(b, at + 1, limits)?;
                pos = end;
                match &b[at + 1..cr] {
                    b"t" => Value::Boolean(true),
                    b"f" => Value::Boolean(false),
                    _ => return None,
                }
            }
            b',' => {
                let (cr, end) = line_checked(b, at + 1, limits)?;
                pos = end;
                Value::Double(parse_double(&b[at + 1..cr])?)
            }
            b'*' | b'~' | b'>' | b'%' | b'|' => {
                if stack.len() >= limits.max_depth {
                    return None;
                }
                let n = if b.get(at + 1) == Some(&b'?') {
                    let (cr, end) = line_checked(b, at + 1, limits)?;
                    if !matches!(marker, b'*' | b'~' | b'%') || cr != at + 2 {
                        return None;
                    }
                    pos = end;
                    None
                } else {
                    let (n, end) = int_checked(b, at + 1, limits)?;
                    pos = end;
                    if n == -1 && marker == b'*' {
                        Some(u64::MAX)
                    } else if n < 0 || n as u64 > max_entries {
                        return None;
                    } else {
                        Some(n as u64)
                    }
                };
                match n {
                    Some(u64::MAX) => Value::Nil,
                    Some(0) if marker != b'|' => Building::new(marker, Some(0), 0).finish(),
                    n => {
                        let building = Building::new(marker, n, b.len() - pos);
                        // A sized aggregate's elements count from its header, as in the scan.
                        if !building.streamed {
                            elements += building.left;
                            if elements > max_elements {
                                return None;
                            }
                        }
                        stack.push(building);
                        continue;
                    }
                }
            }
            b'.' => {
                let (cr, end) = line_checked(b, at + 1, limits)?;
                let top = stack.last()?;
                if cr != at + 1 || !top.streamed || top.count % top.per_entry() != 0 {
                    return None;
                }
                pos = end;
                stack.pop()?.finish()
            }
            _ => return None,
        };
        // Hand the value to the aggregate it belongs to, closing those it completes.
        loop {
            let Some(top) = stack.last_mut() else {
                return (pos == b.len()).then_some(v);
            };
            if top.add(v) {
                v = stack.pop()?.finish();
                continue;
            }
            if top.streamed {
                elements += 1;
                if top.count / top.per_entry() > max_entries || elements > max_elements {
                    return None;
                }
            }
            break;
        }
    }
}

/// A valid `$<len>\r\n<data>\r\n` at `at`, its length in the short form [`int_crlf`]
/// reads: the data's range and the offset after it. `unbounded` says the limits cannot be
/// broken in this frame (see [`build`]); otherwise they are checked here.
#[inline(always)]
fn sized_bulk(
    b: &[u8],
    at: usize,
    limits: &Limits,
    unbounded: bool,
) -> Option<(std::ops::Range<usize>, usize)> {
    if b.get(at) != Some(&b'$') {
        return None;
    }
    let (len, start) = int_crlf(b, at + 1)?;
    let len = usize::try_from(len).ok()?;
    // The length line is `start - at - 3` bytes long without its CRLF.
    if !unbounded && (start - at - 3 > limits.max_line_len || len > limits.max_bulk_len) {
        return None;
    }
    let end = start.checked_add(len)?;
    crlf_at(b, end).then_some((start..end, end + 2))
}

/// Whether `b` holds `\r\n` at `at`: two byte compares, no `memcmp` call.
#[inline(always)]
fn crlf_at(b: &[u8], at: usize) -> bool {
    matches!(b.get(at..).and_then(<[u8]>::first_chunk), Some(b"\r\n"))
}

/// A complete line at `start` that the scan would accept: the offset of its `\r` and the
/// offset after its `\n`.
#[inline]
fn line_checked(b: &[u8], start: usize, limits: &Limits) -> Option<(usize, usize)> {
    let nl = start + memchr::memchr(b'\n', b.get(start..)?)?;
    let bound = line_bound(start, nl, limits.max_line_len, limits.max_reply_bytes);
    if bound.is_some() || nl == start || b[nl - 1] != b'\r' {
        return None;
    }
    Some((nl - 1, nl + 1))
}

/// A decimal line at `start` that the scan would accept: its value and the offset after
/// its `\n`.
#[inline]
fn int_checked(b: &[u8], start: usize, limits: &Limits) -> Option<(i64, usize)> {
    if let Some((n, end)) = int_crlf(b, start) {
        if end - start - 2 <= limits.max_line_len {
            return Some((n, end));
        }
    }
    let (cr, end) = line_checked(b, start, limits)?;
    Some((parse_i64(&b[start..cr])?, end))
}

/// The chunks of a streamed string starting at `start` (after `$?\r\n`), checked and
/// joined, and the offset after its final `;0\r\n`.
fn joined_chunks(b: &[u8], start: usize, limits: &Limits) -> Option<(Bytes, usize)> {
    // Check and measure first, so the joined string is allocated once.
    let mut total = 0usize;
    let mut pos = start;
    let end = loop {
        if b.get(pos) != Some(&b';') {
            return None;
        }
        let (len, data) = int_checked(b, pos + 1, limits)?;
        let len = usize::try_from(len).ok()?;
        if len == 0 {
            break data;
        }
        total = total.checked_add(len)?;
        if total > limits.max_bulk_len {
            return None;
        }
        let after = data.checked_add(len)?;
        if !crlf_at(b, after) {
            return None;
        }
        pos = after + 2;
    };
    let mut out = Vec::with_capacity(total);
    let mut pos = start;
    while pos < end {
        let (len, data) = int_checked(b, pos + 1, limits)?;
        let len = usize::try_from(len).ok()?;
        out.extend_from_slice(b.get(data..data + len)?);
        pos = data + len + 2;
        if len == 0 {
            break;
        }
    }
    Some((out.into(), end))
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
        // The decoder is embedded in every connection: keep it small (its limits and the
        // scan's place, about two dozen words).
        assert!(std::mem::size_of::<Decoder>() <= 192);
    }
}
