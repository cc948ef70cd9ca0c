//! One connection: a transport, a reused read buffer, a decoder, and its health.

use crate::transport::remaining;
use crate::{ConnectionInfo, Connector, DefaultConnector, Error, Protocol, Transport};
use bytes::BytesMut;
use resp_proto::{AnyDecoder, Decode, ErrorCode, ServerError, Value};
use std::io::{self, Write};
use std::time::{Duration, Instant};

/// Requests up to this size are copied into one buffer and written at once; larger ones
/// are written part by part instead of being copied.
const COPY_PARTS_UP_TO: usize = 64 * 1024;

/// Read buffer size; it grows as large replies need.
const READ_CHUNK: usize = 16 * 1024;

/// Most room reserved for a declared but not yet received reply beyond what has arrived
/// (past that the buffer grows as bytes come), so a peer declaring a huge length and then
/// sending nothing costs little.
const AHEAD_OF_DATA: usize = 32 * 1024 * 1024;

/// Below this much initialized spare space, the read buffer is refilled before a read, so
/// each read can take a useful amount.
const MIN_SPARE: usize = 4 * 1024;

/// A read buffer grown beyond this by a large reply is not kept once the reply is consumed.
const MAX_RETAINED: usize = 1 << 20;

/// A write buffer grown beyond this by a large request is not kept.
const MAX_RETAINED_WRITE: usize = 1 << 20;

/// How long to wait for the next reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyTimeout {
    /// The connection's configured read timeout.
    Default,
    /// A specific bound; `None` waits forever (blocking commands with timeout 0).
    Exactly(Option<Duration>),
}

/// A single connection to a server.
///
/// Requests are written whole; replies are read in order. Any I/O error, timeout or
/// protocol error marks the connection broken, and a broken connection refuses all further
/// use ([`Error::Broken`]): the stream may hold a late reply that belongs to nobody.
///
/// # A dedicated connection
///
/// A `Connection` opened with [`Connection::open`] belongs to its owner alone, which is
/// what state that must not leak to other callers needs: [`Connection::select`] to switch
/// databases, and later `MONITOR`, subscriptions or `CLIENT TRACKING`. A pooled client
/// never sends `SELECT`; the database is part of [`ConnectionInfo`]. A connection taken
/// from a pool can be kept for good with
/// [`PooledConnection::detach`](crate::PooledConnection::detach).
///
/// ```no_run
/// use redis_conn::{Connection, ConnectionInfo};
/// let mut conn = Connection::open(&ConnectionInfo::tcp("127.0.0.1", 6379))?;
/// conn.select(2)?;
/// conn.command(&["SET", "only-in-2", "yes"])?;
/// assert_eq!(conn.db(), 2);
/// # Ok::<(), redis_conn::Error>(())
/// ```
pub struct Connection {
    transport: Box<dyn Transport>,
    /// Bytes read and not yet decoded.
    read_buf: BytesMut,
    /// Initialized bytes directly after `read_buf` in the same allocation, which reads
    /// fill; taking them back into `read_buf` is O(1). Zeroed once when the buffer is
    /// refilled, not at every read.
    spare: BytesMut,
    write_buf: BytesMut,
    decoder: AnyDecoder,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    /// The timeout currently set on the transport, to skip redundant syscalls.
    applied_read_timeout: Option<Option<Duration>>,
    /// The same for the write timeout.
    applied_write_timeout: Option<Option<Duration>>,
    protocol: Protocol,
    db: i64,
    pending: usize,
    broken: bool,
    created: Instant,
    last_used: Instant,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("protocol", &self.protocol)
            .field("db", &self.db)
            .field("pending", &self.pending)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Connects to the server described by `info` and performs the handshake.
    ///
    /// # Errors
    /// [`Error::Connect`] if the server cannot be reached, [`Error::Auth`] if it refuses the
    /// credentials, [`Error::Timeout`] if connecting and the handshake together take longer
    /// than `info.connect_timeout`.
    pub fn open(info: &ConnectionInfo) -> Result<Connection, Error> {
        Self::open_with(&DefaultConnector::new(info.clone()))
    }

    /// Opens a transport with `connector` and performs the handshake its settings describe.
    ///
    /// # Errors
    /// As [`Connection::open`].
    pub fn open_with(connector: &dyn Connector) -> Result<Connection, Error> {
        let info = connector.info();
        // One deadline bounds connecting and the handshake, so a peer that accepts and then
        // says nothing cannot hang the caller.
        let deadline = info.connect_timeout.map(|t| Instant::now() + t);
        let transport = connector.connect(deadline)?;
        let mut conn = Connection::from_transport(transport, info);
        conn.handshake(info, deadline)?;
        Ok(conn)
    }

    /// Wraps an already connected transport without any handshake.
    pub fn from_transport(transport: Box<dyn Transport>, info: &ConnectionInfo) -> Connection {
        let now = Instant::now();
        Connection {
            transport,
            read_buf: BytesMut::new(),
            spare: BytesMut::new(),
            write_buf: BytesMut::new(),
            decoder: AnyDecoder::new(info.decoder, info.limits),
            read_timeout: info.read_timeout,
            write_timeout: info.write_timeout,
            applied_read_timeout: None,
            applied_write_timeout: None,
            protocol: Protocol::Resp2,
            db: 0,
            pending: 0,
            broken: false,
            created: now,
            last_used: now,
        }
    }

    fn handshake(&mut self, info: &ConnectionInfo, deadline: Option<Instant>) -> Result<(), Error> {
        let mut out = BytesMut::new();
        let mut expected = 0;
        let password = info.password.as_deref();
        let user = info.username.as_deref();
        match info.protocol {
            Protocol::Resp3 => {
                let mut args: Vec<&[u8]> = vec![b"HELLO", b"3"];
                if let Some(pass) = password {
                    args.extend([
                        b"AUTH".as_slice(),
                        user.unwrap_or("default").as_bytes(),
                        pass.as_bytes(),
                    ]);
                }
                if let Some(name) = info.client_name.as_deref() {
                    args.extend([b"SETNAME".as_slice(), name.as_bytes()]);
                }
                resp_proto::encode_command(&mut out, &args);
                expected += 1;
            }
            Protocol::Resp2 => {
                if let Some(pass) = password {
                    match user {
                        Some(u) => resp_proto::encode_command(
                            &mut out,
                            &[b"AUTH".as_slice(), u.as_bytes(), pass.as_bytes()],
                        ),
                        None => resp_proto::encode_command(
                            &mut out,
                            &[b"AUTH".as_slice(), pass.as_bytes()],
                        ),
                    }
                    expected += 1;
                }
                if let Some(name) = info.client_name.as_deref() {
                    resp_proto::encode_command(
                        &mut out,
                        &[b"CLIENT".as_slice(), b"SETNAME", name.as_bytes()],
                    );
                    expected += 1;
                }
            }
        }
        if info.db != 0 {
            resp_proto::write_array_len(&mut out, 2);
            resp_proto::write_bulk(&mut out, b"SELECT");
            resp_proto::write_bulk_i64(&mut out, info.db);
            expected += 1;
        }
        if expected == 0 {
            return Ok(());
        }
        let handshake_timeout = match remaining(deadline) {
            None => None,
            Some(Some(left)) => Some(left),
            Some(None) => return Err(Error::Timeout),
        };
        self.write_timeout_scoped(handshake_timeout, |c| c.send(&[&out], expected))?;
        // Read every reply before judging any, so the stream stays in step.
        let mut first_error = None;
        for i in 0..expected {
            let timeout = match remaining(deadline) {
                None => None,
                Some(Some(left)) => Some(left),
                Some(None) => {
                    self.broken = true;
                    return Err(Error::Timeout);
                }
            };
            let reply = self.read_reply_timeout(ReplyTimeout::Exactly(timeout))?;
            if let Value::Error(e) = reply {
                // With a password, the first reply answers AUTH (or HELLO, which carries
                // it); a server without requirepass refuses AUTH with a message about the
                // password.
                let auth_step = i == 0 && password.is_some() && e.message().contains("password");
                first_error.get_or_insert(server_error(e, auth_step));
            }
        }
        if let Some(e) = first_error {
            self.broken = true;
            return Err(e);
        }
        self.protocol = info.protocol;
        self.db = info.db;
        Ok(())
    }

    fn write_timeout_scoped<T>(
        &mut self,
        timeout: Option<Duration>,
        f: impl FnOnce(&mut Self) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let saved = self.write_timeout;
        self.write_timeout = timeout;
        let r = f(self);
        self.write_timeout = saved;
        r
    }

    /// Writes already encoded request bytes, given in parts, in one write where possible,
    /// and records that `replies` replies are now owed.
    ///
    /// # Errors
    /// [`Error::Broken`] if the connection failed before; [`Error::Io`] or
    /// [`Error::Timeout`] if the write fails (the connection is then broken).
    pub fn send(&mut self, parts: &[&[u8]], replies: usize) -> Result<(), Error> {
        if self.broken {
            return Err(Error::Broken);
        }
        self.pending += replies;
        self.last_used = Instant::now();
        let result = self.write_parts(parts);
        result.map_err(|e| self.fail(e))
    }

    fn write_parts(&mut self, parts: &[&[u8]]) -> io::Result<()> {
        if self.applied_write_timeout != Some(self.write_timeout) {
            self.transport.set_write_timeout(self.write_timeout)?;
            self.applied_write_timeout = Some(self.write_timeout);
        }
        if let [single] = parts {
            return self.transport.write_all(single);
        }
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if total > COPY_PARTS_UP_TO {
            // Copying a large request (a big SET) would hold it twice; a write per part
            // costs little next to its size.
            for p in parts {
                self.transport.write_all(p)?;
            }
            return Ok(());
        }
        // One write for the whole request: separate writes would cost a syscall and,
        // with TCP_NODELAY, a packet each.
        let mut buf = std::mem::take(&mut self.write_buf);
        buf.clear();
        for p in parts {
            buf.extend_from_slice(p);
        }
        let r = self.transport.write_all(&buf);
        self.keep_write_buf(buf);
        r
    }

    /// Keeps `buf` for the next request unless a large one grew it.
    fn keep_write_buf(&mut self, mut buf: BytesMut) {
        if buf.capacity() <= MAX_RETAINED_WRITE {
            buf.clear();
            self.write_buf = buf;
        }
    }

    /// Reads the next reply, waiting up to the configured read timeout.
    ///
    /// Server error replies are returned as [`Value::Error`], not as `Err`: inside a pipeline
    /// they are per-command results.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Timeout`], [`Error::Protocol`] (the connection is then
    /// broken) or [`Error::Broken`].
    pub fn read_reply(&mut self) -> Result<Value, Error> {
        self.read_reply_timeout(ReplyTimeout::Default)
    }

    /// Reads the next reply, waiting as long as `timeout` says.
    ///
    /// # Errors
    /// As [`Connection::read_reply`].
    pub fn read_reply_timeout(&mut self, timeout: ReplyTimeout) -> Result<Value, Error> {
        if self.broken {
            return Err(Error::Broken);
        }
        let timeout = match timeout {
            ReplyTimeout::Default => self.read_timeout,
            ReplyTimeout::Exactly(t) => t,
        };
        loop {
            match self.decoder.decode(&mut self.read_buf) {
                Ok(Some(v)) => {
                    // RESP3 push messages (e.g. invalidations) are not replies to requests.
                    if matches!(v, Value::Push(_))
                        && self.pending > 0
                        && self.protocol == Protocol::Resp3
                    {
                        continue;
                    }
                    self.pending = self.pending.saturating_sub(1);
                    return Ok(v);
                }
                Ok(None) => {}
                Err(e) => return Err(self.fail_with(Error::Protocol(e))),
            }
            if let Err(e) = self.fill(timeout) {
                return Err(self.fail(e));
            }
        }
    }

    fn fill(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        if timeout == Some(Duration::ZERO) {
            // Sockets refuse a zero timeout; a caller asking for none has run out of time.
            return Err(io::ErrorKind::TimedOut.into());
        }
        if self.applied_read_timeout != Some(timeout) {
            self.transport.set_read_timeout(timeout)?;
            self.applied_read_timeout = Some(timeout);
        }
        if self.spare.len() < MIN_SPARE {
            self.refill_spare();
        }
        let n = loop {
            match self.transport.read(&mut self.spare) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => break r?,
            }
        };
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ));
        }
        // `spare` starts where `read_buf` ends, so this moves no bytes.
        let filled = self.spare.split_to(n);
        self.read_buf.unsplit(filled);
        Ok(())
    }

    /// Makes at least `READ_CHUNK` (or, for a large partial reply, as much as is already
    /// buffered, so growth is geometric) initialized bytes available after `read_buf`.
    ///
    /// Safe code cannot read into uninitialized memory, so new space is zeroed, but only
    /// here, once per buffer's worth of reads. The allocation is reused when no decoded
    /// reply still points into it.
    fn refill_spare(&mut self) {
        let data = self.read_buf.len();
        // When the decoder knows how long the pending reply is, make room for all of it at
        // once (one allocation, payload copied once), up to a bound: a peer declaring a
        // huge length then sending nothing must not make us reserve it all up front.
        let want = match self.decoder.bytes_wanted() {
            Some(total) => total
                .saturating_sub(data)
                .clamp(READ_CHUNK, data.max(AHEAD_OF_DATA)),
            None => READ_CHUNK.max(data),
        };
        let mut buf = std::mem::take(&mut self.read_buf);
        buf.unsplit(std::mem::take(&mut self.spare));
        if buf.capacity() > MAX_RETAINED && data + want <= MAX_RETAINED {
            // A large reply grew the buffer; do not keep (and re-zero) all of it.
            let mut fresh = BytesMut::with_capacity(data + want);
            fresh.extend_from_slice(&buf[..data]);
            buf = fresh;
        } else {
            buf.truncate(data);
            // Moves the unread bytes to the front of the allocation when it is no longer
            // shared, or allocates anew.
            buf.reserve(want);
        }
        let capacity = buf.capacity();
        buf.resize(capacity, 0);
        self.spare = buf.split_off(data);
        self.read_buf = buf;
    }

    /// Marks the connection broken and classifies `e`.
    fn fail(&mut self, e: io::Error) -> Error {
        let err = match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::Timeout,
            _ => Error::Io(e),
        };
        self.fail_with(err)
    }

    fn fail_with(&mut self, e: Error) -> Error {
        self.broken = true;
        e
    }

    /// Sends one encoded command and reads its reply; an error reply becomes
    /// [`Error::Server`].
    ///
    /// # Errors
    /// As [`Connection::send`] and [`Connection::read_reply`], plus [`Error::Server`].
    pub fn request(&mut self, packed: &[u8]) -> Result<Value, Error> {
        self.send(&[packed], 1)?;
        match self.read_reply()? {
            Value::Error(e) => Err(server_error(e, false)),
            v => Ok(v),
        }
    }

    /// Sends a command given as arguments and reads its reply; an error reply becomes
    /// [`Error::Server`].
    ///
    /// ```no_run
    /// # use redis_conn::{Connection, ConnectionInfo};
    /// let mut conn = Connection::open(&ConnectionInfo::tcp("127.0.0.1", 6379))?;
    /// let pong = conn.command(&["PING"])?;
    /// # Ok::<(), redis_conn::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Connection::request`].
    pub fn command<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Value, Error> {
        // Encoded into the reused write buffer: no allocation per command.
        let mut out = std::mem::take(&mut self.write_buf);
        out.clear();
        resp_proto::encode_command(&mut out, args);
        let r = self.request(&out);
        self.keep_write_buf(out);
        r
    }

    /// Switches this connection to database `db` (`SELECT`). Only a dedicated connection
    /// should do this: a pooled one would carry the choice to its next user.
    ///
    /// # Errors
    /// As [`Connection::request`].
    pub fn select(&mut self, db: i64) -> Result<(), Error> {
        let mut out = BytesMut::new();
        resp_proto::write_array_len(&mut out, 2);
        resp_proto::write_bulk(&mut out, b"SELECT");
        resp_proto::write_bulk_i64(&mut out, db);
        self.request(&out)?;
        self.db = db;
        Ok(())
    }

    /// Sends `PING` and waits at most `timeout` (`None`: forever) for the answer: a
    /// cheap check that the server is there and the connection in step.
    ///
    /// # Errors
    /// As [`Connection::request`].
    pub fn ping(&mut self, timeout: Option<Duration>) -> Result<(), Error> {
        self.send(&[b"*1\r\n$4\r\nPING\r\n"], 1)?;
        match self.read_reply_timeout(ReplyTimeout::Exactly(timeout))? {
            Value::Error(e) => Err(server_error(e, false)),
            _ => Ok(()),
        }
    }

    /// Looks, without blocking, whether the server closed this idle connection or sent it
    /// something unasked; such a connection must not carry a request.
    pub fn is_stale(&mut self) -> bool {
        self.pending > 0 || !self.read_buf.is_empty() || self.transport.is_stale()
    }

    /// True after any failure that leaves the stream out of step.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Marks the connection unusable, e.g. when a caller gives up on a reply it is owed.
    pub fn mark_broken(&mut self) {
        self.broken = true;
    }

    /// Replies owed by the server for requests already sent.
    pub fn pending_replies(&self) -> usize {
        self.pending
    }

    /// The protocol negotiated in the handshake.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The database currently selected.
    pub fn db(&self) -> i64 {
        self.db
    }

    /// The configured read timeout.
    pub fn read_timeout(&self) -> Option<Duration> {
        self.read_timeout
    }

    /// When the connection was opened.
    pub fn created_at(&self) -> Instant {
        self.created
    }

    /// When a request was last sent on it.
    pub fn last_used(&self) -> Instant {
        self.last_used
    }
}

/// The read timeout of a zero-timeout [`Connection::read_push`]: the smallest a socket
/// accepts (std rounds anything shorter up to it).
const POLL_READ_TIMEOUT: Duration = Duration::from_micros(1);

/// Reading values nobody asked for: pub/sub messages and other pushes.
impl Connection {
    /// Waits up to `timeout` (`None`: forever) for the next value the server sends on its
    /// own, such as a pub/sub message.
    ///
    /// Unlike [`Connection::read_reply`], silence is not a failure here: when the time
    /// runs out it returns `Ok(None)` and the connection stays usable, since no caller is
    /// owed a reply. Bytes of a partly received value are kept for the next call.
    ///
    /// `Some(Duration::ZERO)` polls: it returns a value already buffered or readable now,
    /// and `Ok(None)` otherwise.
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Protocol`] (the connection is then broken), or
    /// [`Error::Broken`].
    pub fn read_push(&mut self, timeout: Option<Duration>) -> Result<Option<Value>, Error> {
        if self.broken {
            return Err(Error::Broken);
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        let poll = timeout == Some(Duration::ZERO);
        let mut polled = false;
        loop {
            match self.decoder.decode(&mut self.read_buf) {
                Ok(Some(v)) => return Ok(Some(v)),
                Ok(None) => {}
                Err(e) => return Err(self.fail_with(Error::Protocol(e))),
            }
            let wait = if poll {
                // A zero timeout polls: one read of whatever is readable now. Sockets
                // refuse a zero timeout and `Transport` has no non-blocking read, so the
                // read gets the smallest timeout a socket takes (the kernel rounds it up
                // to one scheduler tick at most when nothing is readable).
                if polled {
                    return Ok(None);
                }
                polled = true;
                Some(POLL_READ_TIMEOUT)
            } else {
                match remaining(deadline) {
                    None => None,
                    Some(Some(left)) => Some(left),
                    Some(None) => return Ok(None),
                }
            };
            match self.fill(wait) {
                Ok(()) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None)
                }
                Err(e) => return Err(self.fail(e)),
            }
        }
    }
}

/// True for the codes and messages servers use to refuse credentials: `WRONGPASS` (Redis 6
/// and newer), `NOAUTH` (a password is required and none was given), and `ERR invalid
/// password` (before Redis 6).
fn is_auth_error(e: &ServerError) -> bool {
    let code = e.code();
    code == ErrorCode::WRONGPASS
        || code == ErrorCode::NOAUTH
        || (code == ErrorCode::ERR && e.message().contains("invalid password"))
}

/// An error reply as a typed error: [`Error::Auth`] for refused credentials (or for any
/// error answering the authentication step itself), [`Error::Server`] otherwise.
pub(crate) fn server_error(e: ServerError, auth_step: bool) -> Error {
    if auth_step || is_auth_error(&e) {
        Error::Auth(e)
    } else {
        Error::Server(e)
    }
}
