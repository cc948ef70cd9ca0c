//! The scan shared by the fast decoder and the frame splitter: it validates the frame at
//! the front of a buffer and finds where it ends, without building anything, keeping its
//! place between calls.
//!
//! It keeps the open aggregates, the position reached, where a line search stopped and the
//! buffer length a pending payload needs, so bytes that arrived earlier are not looked at
//! again: a reply arriving in many small reads costs time linear in its size. Its checks
//! and error offsets are [`ReferenceDecoder`](crate::ReferenceDecoder)'s; tests hold them
//! together.

use crate::reference::{is_resp2_type, line_bound, open_line_bound, parse_double};
use crate::{Limits, ProtocolError, ProtocolErrorKind as K};

/// The scan of one frame at a time, resumable across calls on a buffer that grows.
#[derive(Clone, Debug, Default)]
pub(crate) struct Scanner {
    pub(crate) limits: Limits,
    scan: Scan,
    /// Bytes examined, to prove in tests that nothing is rescanned.
    #[cfg(test)]
    pub(crate) scanned: usize,
}

impl Scanner {
    /// A scanner enforcing `limits`.
    pub(crate) fn new(limits: Limits) -> Self {
        Scanner {
            limits,
            ..Self::default()
        }
    }

    /// True when no frame is in progress.
    pub(crate) fn is_fresh(&self) -> bool {
        self.scan.is_fresh()
    }

    /// Forgets the frame in progress.
    pub(crate) fn reset(&mut self) {
        self.scan.reset();
    }

    /// See [`Decoder::bytes_wanted`](crate::Decoder::bytes_wanted).
    pub(crate) fn bytes_wanted(&self) -> Option<usize> {
        (self.scan.need > 0).then_some(self.scan.need)
    }

    /// Whether the next scan may go on from the saved place: a frame is in progress, `buf`
    /// is no shorter than at the last call and the bytes the place relies on are unchanged.
    /// Otherwise the place is forgotten (the buffer was cleared, cut or rewritten since,
    /// so what was scanned is gone) and the next scan starts from the first byte.
    pub(crate) fn resume(&mut self, buf: &[u8]) -> bool {
        if self.scan.is_fresh() {
            return false;
        }
        if buf.len() < self.scan.seen || self.fingerprint(buf) != self.scan.sig {
            self.scan.reset();
            return false;
        }
        true
    }

    /// Records what the next call checks before it resumes the scan: the buffer length and
    /// a fingerprint of the bytes the saved state leans on most.
    pub(crate) fn remember(&mut self, buf: &[u8]) {
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
    /// [`Scanner::fingerprint`] when the last call returned `Ok(None)`.
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

impl Scanner {
    /// Validates the frame at the front of `buf`; its length once complete.
    pub(crate) fn scan_frame(&mut self, buf: &[u8]) -> Step<usize> {
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

pub(crate) fn err<T>(kind: K, at: usize) -> Result<T, ProtocolError> {
    Err(ProtocolError::new(kind, at))
}

/// Parses `-?<1 to 18 digits>\r\n` at `at`: the value and the offset after `\n`.
///
/// Only the common form; anything else (longer, malformed, incomplete) returns `None` and
/// goes through the general line reader, which gives the exact error.
#[inline(always)]
pub(crate) fn int_crlf(buf: &[u8], at: usize) -> Option<(i64, usize)> {
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
pub(crate) fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.first() == Some(&b'+') {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

pub(crate) fn is_big_number(l: &[u8]) -> bool {
    let digits = match l.first() {
        Some(b'-' | b'+') => &l[1..],
        _ => l,
    };
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}
