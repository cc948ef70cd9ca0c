//! Frames without values: where the next complete frame ends, for forwarding its bytes.

use crate::scan::Scanner;
use crate::{Limits, ProtocolError};
use bytes::{Bytes, BytesMut};

/// Splits complete RESP2 and RESP3 frames off a read buffer as the bytes received, without
/// building [`Value`](crate::Value)s: what a proxy forwards byte for byte, or a traffic
/// analyser counts.
///
/// A frame is one whole top-level value: a reply, a command (an array of bulk strings), a
/// push, or an attribute together with the value it annotates. Every type is framed,
/// streamed strings and aggregates (`$?`, `*?`, `~?`, `%?`) included, under the same
/// [`Limits`] as the decoders. For every input, however it is split into reads, the
/// splitter finds the same frame ends as [`Decoder`](crate::Decoder) and
/// [`ReferenceDecoder`](crate::ReferenceDecoder), and the same [`ProtocolError`] (kind and
/// offset) where the input is malformed or over a limit: the test suite and the fuzz
/// target hold the three together.
///
/// Cost: the splitter shares the fast decoder's scan, which keeps its place between calls,
/// so a frame arriving in many small reads is scanned once, in time linear in its size;
/// payloads are not looked at (only their closing CRLF). When a frame completes on a call
/// after the one it started in, its framing (headers and lines, not payloads) is checked
/// once more from its first byte, as the decoder's build does, so a buffer changed between
/// calls never yields a frame made of bytes no longer there. No allocation besides the
/// stack of open aggregates, kept between calls; [`split`](FrameSplitter::split) hands the
/// frame out without copying.
///
/// # Changing the buffer between calls
/// The contract of [`Decode`](crate::Decode#changing-the-buffer-between-calls) holds here
/// too: after the buffer was cleared, cut or replaced, the next call gives what a new
/// splitter gives for the bytes then in it, and [`reset`](FrameSplitter::reset) makes it
/// start over from the first byte.
///
/// # Examples
/// A proxy loop reads into one buffer and forwards each complete frame as it arrived:
///
/// ```
/// use bytes::BytesMut;
/// use resp_proto::FrameSplitter;
///
/// let mut splitter = FrameSplitter::new();
/// let mut buf = BytesMut::new();
/// let mut forwarded = Vec::new();
/// // Three replies arriving in reads that cut them anywhere.
/// for read in [&b"+OK\r\n*2\r\n$3\r\nfo"[..], b"o\r\n_\r", b"\n%?\r\n+k\r\n:1\r\n.\r\n"] {
///     buf.extend_from_slice(read);
///     while let Some(frame) = splitter.split(&mut buf)? {
///         forwarded.push(frame); // `Bytes`: write it to the other side as it is
///     }
/// }
/// assert_eq!(forwarded[0], &b"+OK\r\n"[..]);
/// assert_eq!(forwarded[1], &b"*2\r\n$3\r\nfoo\r\n_\r\n"[..]);
/// assert_eq!(forwarded[2], &b"%?\r\n+k\r\n:1\r\n.\r\n"[..]);
/// assert!(buf.is_empty());
/// # Ok::<(), resp_proto::ProtocolError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct FrameSplitter {
    scanner: Scanner,
}

impl FrameSplitter {
    /// A splitter with the default [`Limits`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A splitter enforcing `limits`, as a decoder with the same limits would.
    pub fn with_limits(limits: Limits) -> Self {
        FrameSplitter {
            scanner: Scanner::new(limits),
        }
    }

    /// The limits it enforces.
    pub fn limits(&self) -> &Limits {
        &self.scanner.limits
    }

    /// Splits the next complete frame off the front of `buf`, as the bytes received.
    ///
    /// Returns `Ok(None)` while `buf` does not yet hold a complete frame (append more bytes
    /// and call again; the scan goes on from where it stopped). The frame is split off
    /// without copying ([`BytesMut::split_to`], then frozen); the bytes after it stay in
    /// `buf`.
    ///
    /// # Errors
    /// [`ProtocolError`] when the bytes are not valid RESP or break a [`Limits`] bound,
    /// with the offset from the start of the frame, as the decoders give it. The stream is
    /// then out of step; `buf` is left as it was.
    pub fn split(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, ProtocolError> {
        Ok(self.frame_len(buf)?.map(|len| buf.split_to(len).freeze()))
    }

    /// The length of the complete frame at the front of `buf`, without consuming it; for a
    /// caller that reads from a plain slice, or looks at a frame before taking it.
    ///
    /// After `Ok(Some(len))` the splitter starts its next scan from byte 0: the caller
    /// removes those `len` bytes before calling again (or the same frame is found again).
    /// After `Ok(None)` it keeps its place, expecting `buf` to hold the same bytes and more.
    ///
    /// ```
    /// use resp_proto::FrameSplitter;
    ///
    /// let mut splitter = FrameSplitter::new();
    /// assert_eq!(splitter.frame_len(b"$5\r\nhel")?, None);
    /// assert_eq!(splitter.bytes_wanted(), Some(11));
    /// assert_eq!(splitter.frame_len(b"$5\r\nhello\r\n:1\r\n")?, Some(11));
    /// # Ok::<(), resp_proto::ProtocolError>(())
    /// ```
    ///
    /// # Errors
    /// As [`split`](FrameSplitter::split).
    pub fn frame_len(&mut self, buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
        let resumed = self.scanner.resume(buf);
        let found = self.scanner.scan_frame(buf);
        if let Ok(None) = found {
            self.scanner.remember(buf);
            return Ok(None);
        }
        self.scanner.reset();
        if resumed {
            // Part of the scan was done on an earlier call, on bytes the caller may have
            // rewritten in a way the fingerprint did not catch: confirm the end (or the
            // error) on the bytes as they are now. Headers and lines only, payloads are
            // skipped, so this costs no more than the scan of a frame read whole.
            return self.frame_len(buf);
        }
        found
    }

    /// The buffer length at which the payload the splitter is waiting for will be
    /// complete, when the last call returned `Ok(None)` in the middle of a bulk string;
    /// `None` otherwise. As [`Decoder::bytes_wanted`](crate::Decoder::bytes_wanted), a
    /// reader can reserve this much once. Cost: O(1).
    pub fn bytes_wanted(&self) -> Option<usize> {
        self.scanner.bytes_wanted()
    }

    /// Forgets the frame in progress, so the next call scans `buf` from its first byte as
    /// a new splitter would. Cost: O(1).
    pub fn reset(&mut self) {
        self.scanner.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_64_mib_bulk_in_4_kib_reads_is_framed_without_reading_the_payload() {
        let len = 64 << 20;
        let mut input = format!("${len}\r\n").into_bytes();
        input.resize(input.len() + len, b'x');
        input.extend_from_slice(b"\r\n+OK\r\n");
        let mut s = FrameSplitter::new();
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for chunk in input.chunks(4096) {
            buf.extend_from_slice(chunk);
            while let Some(f) = s.split(&mut buf).unwrap() {
                frames.push(f.len());
            }
        }
        assert_eq!(frames, [input.len() - 5, 5]);
        // The header, read once while waiting, once more when the payload is complete,
        // and once to confirm; then the `+OK` line.
        assert!(
            s.scanner.scanned < 64,
            "{} bytes scanned",
            s.scanner.scanned
        );
    }

    #[test]
    fn many_small_elements_in_one_byte_reads_scan_linearly() {
        let mut input = b"*?\r\n".to_vec();
        for i in 0..20_000 {
            input.extend_from_slice(format!(":{i}\r\n$?\r\n;1\r\na\r\n;0\r\n").as_bytes());
        }
        input.extend_from_slice(b".\r\n");
        let mut s = FrameSplitter::new();
        let mut buf = BytesMut::new();
        let mut got = None;
        for &b in &input {
            buf.extend_from_slice(&[b]);
            if let Some(f) = s.split(&mut buf).unwrap() {
                got = Some(f);
            }
        }
        assert_eq!(got.as_deref(), Some(&input[..]));
        // Once as it arrives, once to confirm the frame that took many calls.
        assert!(
            s.scanner.scanned <= 2 * input.len(),
            "{} bytes scanned for {}",
            s.scanner.scanned,
            input.len()
        );
    }
}
