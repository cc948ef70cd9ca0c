//! The reference decoder: short and plainly correct, not fast.
//!
//! It re-parses from the start of the buffer on every call and copies payloads. It exists
//! as a yardstick: the fast decoder is tested against it.

use crate::{Decode, Limits, ProtocolError, ProtocolErrorKind as K, ServerError, Value};
use bytes::{Buf, Bytes, BytesMut};

/// The reference decoder: it re-parses from the start of the buffer on every call and
/// copies payloads. The fast [`Decoder`](crate::Decoder) is tested against it.
#[derive(Clone, Debug, Default)]
pub struct ReferenceDecoder {
    limits: Limits,
}

impl ReferenceDecoder {
    /// A decoder with the default [`Limits`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder enforcing `limits`.
    pub fn with_limits(limits: Limits) -> Self {
        ReferenceDecoder { limits }
    }
}

impl Decode for ReferenceDecoder {
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Value>, ProtocolError> {
        let mut p = Parser {
            buf,
            pos: 0,
            limits: &self.limits,
            elements: 0,
        };
        match p.value(0)? {
            Some(Item::Value(v)) => {
                let used = p.pos;
                buf.advance(used);
                Ok(Some(v))
            }
            Some(Item::End) => Err(ProtocolError::new(K::UnexpectedEnd, 0)),
            None => Ok(None),
        }
    }
}

/// A parsed item: a value, or the `.` that ends a streamed aggregate.
enum Item {
    Value(Value),
    End,
}

struct Parser<'a> {
    buf: &'a [u8],
    pos: usize,
    limits: &'a Limits,
    /// Elements of the reply so far, at every depth: declared ones from their header,
    /// streamed ones as they arrive.
    elements: u64,
}

type Step<T> = Result<Option<T>, ProtocolError>;

impl Parser<'_> {
    fn err<T>(&self, kind: K, at: usize) -> Result<T, ProtocolError> {
        Err(ProtocolError::new(kind, at))
    }

    /// The next line without its CRLF.
    fn line(&mut self) -> Step<&[u8]> {
        let start = self.pos;
        let rest = &self.buf[start..];
        let max = self.limits.max_line_len;
        let cap = self.limits.max_reply_bytes;
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            // The line may still end well within both bounds: `max_line_len` bytes, then
            // `\r` and `\n`, ending at the cap at most. Every byte here is this reply's.
            if let Some(kind) = open_line_bound(start, self.buf.len(), max, cap) {
                return self.err(kind, start);
            }
            return Ok(None);
        };
        let nl = start + nl;
        if let Some(kind) = line_bound(start, nl, max, cap) {
            return self.err(kind, start);
        }
        if nl == start || self.buf[nl - 1] != b'\r' {
            return self.err(K::ExpectedCrlf, nl);
        }
        self.pos = nl + 1;
        Ok(Some(&self.buf[start..nl - 1]))
    }

    /// Refuses a payload of `len` bytes plus CRLF from `self.pos` if it would take the
    /// reply past [`Limits::max_reply_bytes`]; `len_at` is its length field.
    fn payload_fits(&self, len: u64, len_at: usize) -> Result<(), ProtocolError> {
        let cap = self.limits.max_reply_bytes;
        if self.pos as u64 + len + 2 > cap as u64 {
            return self.err(K::ReplyTooLong { limit: cap }, len_at);
        }
        Ok(())
    }

    fn int_line(&mut self) -> Step<i64> {
        let at = self.pos;
        let Some(line) = self.line()? else {
            return Ok(None);
        };
        match std::str::from_utf8(line)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
        {
            Some(n) if !line.starts_with(b"+") => Ok(Some(n)),
            _ => self.err(K::InvalidInteger, at),
        }
    }

    /// Counts `n` more elements of the reply, refused at `at` past
    /// [`Limits::max_reply_elements`].
    fn count_elements(&mut self, n: u64, at: usize) -> Result<(), ProtocolError> {
        let limit = self.limits.max_reply_elements;
        self.elements += n;
        if self.elements > limit as u64 {
            return self.err(K::TooManyElements { limit }, at);
        }
        Ok(())
    }

    /// `len` payload bytes followed by CRLF.
    fn payload(&mut self, len: usize) -> Step<Bytes> {
        let start = self.pos;
        if self.buf.len() - start < len + 2 {
            return Ok(None);
        }
        if &self.buf[start + len..start + len + 2] != b"\r\n" {
            return self.err(K::ExpectedCrlf, start + len);
        }
        self.pos = start + len + 2;
        Ok(Some(Bytes::copy_from_slice(&self.buf[start..start + len])))
    }

    fn value(&mut self, depth: usize) -> Step<Item> {
        let at = self.pos;
        let Some(&marker) = self.buf.get(at) else {
            return Ok(None);
        };
        if !self.limits.resp3 && !is_resp2_type(marker) {
            return self.err(K::InvalidTypeByte(marker), at);
        }
        self.pos += 1;
        let v = match marker {
            b'+' => self
                .line()?
                .map(|l| Value::SimpleString(Bytes::copy_from_slice(l))),
            b'-' => self
                .line()?
                .map(|l| Value::Error(ServerError::new(Bytes::copy_from_slice(l)))),
            b':' => self.int_line()?.map(Value::Integer),
            b'_' => match self.line()? {
                None => None,
                Some([]) => Some(Value::Nil),
                Some(_) => return self.err(K::ExpectedCrlf, at + 1),
            },
            b'#' => match self.line()? {
                None => None,
                Some(b"t") => Some(Value::Boolean(true)),
                Some(b"f") => Some(Value::Boolean(false)),
                Some(_) => return self.err(K::InvalidBoolean, at + 1),
            },
            b',' => match self.line()? {
                None => None,
                Some(l) => Some(Value::Double(
                    parse_double(l).ok_or(ProtocolError::new(K::InvalidDouble, at + 1))?,
                )),
            },
            b'(' => match self.line()? {
                None => None,
                Some(l) => {
                    let digits = l.strip_prefix(b"-").or(l.strip_prefix(b"+")).unwrap_or(l);
                    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                        return self.err(K::InvalidBigNumber, at + 1);
                    }
                    Some(Value::BigNumber(Bytes::copy_from_slice(l)))
                }
            },
            b'$' | b'!' | b'=' => return self.blob(marker),
            b'*' | b'~' | b'>' | b'%' | b'|' => return self.aggregate(marker, at, depth),
            b'.' => match self.line()? {
                None => None,
                Some([]) => return Ok(Some(Item::End)),
                Some(_) => return self.err(K::ExpectedCrlf, at + 1),
            },
            other => return self.err(K::InvalidTypeByte(other), at),
        };
        Ok(v.map(Item::Value))
    }

    fn blob(&mut self, marker: u8) -> Step<Item> {
        let len_at = self.pos;
        if self.buf.get(len_at) == Some(&b'?') {
            // RESP2 has no streamed strings: `?` is no digit.
            if !self.limits.resp3 {
                return self.err(K::InvalidInteger, len_at);
            }
            if marker != b'$' {
                return self.err(K::InvalidLength(-1), len_at);
            }
            return self.streamed_string();
        }
        let Some(len) = self.int_line()? else {
            return Ok(None);
        };
        if len == -1 && marker == b'$' {
            return Ok(Some(Item::Value(Value::Nil)));
        }
        if len < 0 {
            return self.err(K::InvalidLength(len), len_at);
        }
        if len as u64 > self.limits.max_bulk_len as u64 {
            return self.err(
                K::BulkTooLong {
                    len: len as u64,
                    limit: self.limits.max_bulk_len,
                },
                len_at,
            );
        }
        self.payload_fits(len as u64, len_at)?;
        let payload_at = self.pos;
        let Some(data) = self.payload(len as usize)? else {
            return Ok(None);
        };
        let v = match marker {
            b'$' => Value::BulkString(data),
            b'!' => Value::Error(ServerError::new(data)),
            _ => {
                if data.len() < 4 || data[3] != b':' {
                    return self.err(K::InvalidVerbatim, payload_at);
                }
                Value::Verbatim {
                    format: [data[0], data[1], data[2]],
                    text: data.slice(4..),
                }
            }
        };
        Ok(Some(Item::Value(v)))
    }

    fn streamed_string(&mut self) -> Step<Item> {
        // `$?\r\n` then `;len\r\n<data>\r\n` chunks, ended by `;0\r\n`.
        let len_at = self.pos;
        match self.line()? {
            None => return Ok(None),
            Some(b"?") => {}
            Some(_) => return self.err(K::InvalidInteger, len_at),
        }
        let mut out = Vec::new();
        loop {
            let at = self.pos;
            match self.buf.get(at) {
                None => return Ok(None),
                Some(b';') => self.pos += 1,
                Some(_) => return self.err(K::InvalidStreamChunk, at),
            }
            let Some(len) = self.int_line()? else {
                return Ok(None);
            };
            if len < 0 {
                return self.err(K::InvalidLength(len), at + 1);
            }
            if len == 0 {
                return Ok(Some(Item::Value(Value::BulkString(out.into()))));
            }
            if out.len() as u64 + len as u64 > self.limits.max_bulk_len as u64 {
                return self.err(
                    K::BulkTooLong {
                        len: out.len() as u64 + len as u64,
                        limit: self.limits.max_bulk_len,
                    },
                    at + 1,
                );
            }
            self.payload_fits(len as u64, at + 1)?;
            let Some(chunk) = self.payload(len as usize)? else {
                return Ok(None);
            };
            out.extend_from_slice(&chunk);
        }
    }

    fn aggregate(&mut self, marker: u8, at: usize, depth: usize) -> Step<Item> {
        if depth >= self.limits.max_depth {
            return self.err(
                K::TooDeep {
                    limit: self.limits.max_depth,
                },
                at,
            );
        }
        let len_at = self.pos;
        let streamed = self.buf.get(len_at) == Some(&b'?');
        let declared = if streamed {
            // RESP2 has no streamed aggregates: `?` is no digit.
            if !self.limits.resp3 {
                return self.err(K::InvalidInteger, len_at);
            }
            if !matches!(marker, b'*' | b'~' | b'%') {
                return self.err(K::InvalidLength(-1), len_at);
            }
            match self.line()? {
                None => return Ok(None),
                Some(b"?") => None,
                Some(_) => return self.err(K::InvalidInteger, len_at),
            }
        } else {
            let Some(len) = self.int_line()? else {
                return Ok(None);
            };
            if len == -1 && marker == b'*' {
                return Ok(Some(Item::Value(Value::Nil)));
            }
            if len < 0 {
                return self.err(K::InvalidLength(len), len_at);
            }
            if len as u64 > self.limits.max_aggregate_len as u64 {
                return self.err(
                    K::AggregateTooLong {
                        len: len as u64,
                        limit: self.limits.max_aggregate_len,
                    },
                    len_at,
                );
            }
            Some(len as usize)
        };
        let pairs = matches!(marker, b'%' | b'|');
        let per_entry = if pairs { 2 } else { 1 };
        if let Some(n) = declared {
            // An attribute's annotated value is one more element.
            let n = n as u64 * per_entry as u64 + u64::from(marker == b'|');
            self.count_elements(n, len_at)?;
        }
        let mut items = Vec::new();
        loop {
            if let Some(n) = declared {
                if items.len() == n * per_entry {
                    break;
                }
            }
            let item_at = self.pos;
            match self.value(depth + 1)? {
                None => return Ok(None),
                Some(Item::Value(v)) => items.push(v),
                Some(Item::End) if declared.is_none() && items.len() % per_entry == 0 => break,
                Some(Item::End) => return self.err(K::UnexpectedEnd, item_at),
            }
            if declared.is_none() {
                if items.len() / per_entry > self.limits.max_aggregate_len {
                    let limit = self.limits.max_aggregate_len;
                    return self.err(
                        K::AggregateTooLong {
                            len: (items.len() / per_entry) as u64,
                            limit,
                        },
                        item_at,
                    );
                }
                self.count_elements(1, item_at)?;
            }
        }
        let v = if pairs {
            let mut it = items.into_iter();
            let mut kv = Vec::new();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                kv.push((k, v));
            }
            if marker == b'|' {
                // An attribute annotates the value that follows it. That value counts as
                // nested in the attribute, so a chain of attributes is bounded by the depth.
                match self.value(depth + 1)? {
                    None => return Ok(None),
                    Some(Item::Value(value)) => Value::Attribute {
                        attributes: kv,
                        value: Box::new(value),
                    },
                    Some(Item::End) => return self.err(K::UnexpectedEnd, self.pos),
                }
            } else {
                Value::Map(kv)
            }
        } else {
            match marker {
                b'*' => Value::Array(items),
                b'~' => Value::Set(items),
                _ => Value::Push(items),
            }
        };
        Ok(Some(Item::Value(v)))
    }
}

/// Whether `marker` starts a value in RESP2 too: simple strings, errors, integers, bulk
/// strings and arrays. Every other type byte is RESP3's own.
pub(crate) fn is_resp2_type(marker: u8) -> bool {
    matches!(marker, b'+' | b'-' | b':' | b'$' | b'*')
}

/// Which bound, if any, a line starting at `start` breaks once the buffer holds `len`
/// bytes and still no `\n` of it: [`LineTooLong`](K::LineTooLong) from `start + max + 2`
/// bytes, [`ReplyTooLong`](K::ReplyTooLong) from `cap + 1`. When both are passed, the one
/// passed first wins (a tie goes to the line), as if the bytes had arrived one at a time:
/// the answer then does not depend on how the input was split into reads.
pub(crate) fn open_line_bound(start: usize, len: usize, max: usize, cap: usize) -> Option<K> {
    let line_fires = start.saturating_add(max).saturating_add(2);
    let cap_fires = cap.saturating_add(1);
    let line = len >= line_fires;
    let reply = len >= cap_fires;
    if line && (!reply || line_fires <= cap_fires) {
        Some(K::LineTooLong { limit: max })
    } else if reply {
        Some(K::ReplyTooLong { limit: cap })
    } else {
        None
    }
}

/// The same for a line whose `\n` is at `nl`: the bounds the bytes before it passed, or
/// else the cap if the whole line ends past it. Both decoders use these two, so they agree
/// error for error.
pub(crate) fn line_bound(start: usize, nl: usize, max: usize, cap: usize) -> Option<K> {
    open_line_bound(start, nl, max, cap)
        .or_else(|| (nl >= cap).then_some(K::ReplyTooLong { limit: cap }))
}

/// Parses a RESP3 double: a decimal or exponent form, `inf`, `-inf` or `nan`.
pub(crate) fn parse_double(line: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(line).ok()?;
    match s {
        "inf" | "+inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        "nan" | "-nan" => Some(f64::NAN),
        // Rust's parser also takes "infinity" and "NaN" spellings RESP does not have.
        _ if s
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E')) =>
        {
            s.parse().ok()
        }
        _ => None,
    }
}
