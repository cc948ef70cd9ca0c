//! The default decoder: incremental, resumable and zero-copy.
//!
//! Decoding runs in two passes over the frame at the front of the buffer.
//!
//! 1. The *scan* (`scan.rs`) validates the frame and finds where it ends, without
//!    building anything. It keeps its place between calls (the open aggregates, the position reached, where a line search
//!    stopped, the buffer length a pending payload needs), so bytes that arrived earlier
//!    are not looked at again: a reply arriving in many small reads costs time linear in
//!    its size.
//! 2. Once the whole frame is present it is split off the buffer and frozen, and the
//!    *build* walks the already validated bytes once more, making [`Value`]s whose payloads
//!    are [`Bytes`] views of that frozen frame: an array of N bulk strings allocates the
//!    array, not N strings.
//!
//! Both passes are loops over an explicit stack, so nesting costs heap (bounded by
//! [`Limits::max_depth`]), never call-stack depth. The checks and the error offsets are the
//! same as [`ReferenceDecoder`](crate::ReferenceDecoder)'s; tests hold the two together.

use crate::reference::{is_resp2_type, line_bound, parse_double};
use crate::scan::{err, int_crlf, is_big_number, parse_i64, Scanner};
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
    scanner: Scanner,
    /// Reused stack of aggregates being built, kept to avoid an allocation per call.
    building: Vec<Building>,
}

impl Decoder {
    /// A decoder with the default [`Limits`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder enforcing `limits`.
    pub fn with_limits(limits: Limits) -> Self {
        Decoder {
            scanner: Scanner::new(limits),
            building: Vec::new(),
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
        self.scanner.bytes_wanted()
    }
}

impl Decode for Decoder {
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Value>, ProtocolError> {
        if self.scanner.is_fresh() {
            // Back-to-back integer replies are common (INCR, pipelines): take them without
            // splitting the buffer.
            if let Some((n, used)) = quick_integer(buf, &self.scanner.limits) {
                buf.advance(used);
                return Ok(Some(Value::Integer(n)));
            }
        }
        // False when the buffer was cleared, cut or rewritten since the last call: what
        // was scanned is gone, so the scan starts over on what it holds now.
        let resumed = self.scanner.resume(buf);
        self.decode_frame(buf, resumed)
    }

    /// Forgets the frame in progress: the next call scans the buffer from its first byte.
    fn reset(&mut self) {
        self.scanner.reset();
    }
}

impl Decoder {
    /// Scans on (from where the last call stopped when `resumed`), then builds the frame.
    fn decode_frame(
        &mut self,
        buf: &mut BytesMut,
        resumed: bool,
    ) -> Result<Option<Value>, ProtocolError> {
        match self.scanner.scan_frame(buf) {
            Ok(None) => {
                self.scanner.remember(buf);
                Ok(None)
            }
            Ok(Some(len)) => {
                self.scanner.reset();
                let frame = buf.split_to(len).freeze();
                let mut stack = std::mem::take(&mut self.building);
                let built = build(&frame, &mut stack, &self.scanner.limits);
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
                self.scanner.reset();
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
        (values, d.scanner.scanned)
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
