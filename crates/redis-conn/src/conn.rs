//! One blocking connection: a transport driven by the connection core.
//!
//! Everything that decides whether the stream is in step lives in the core
//! ([`Core`](crate::Core)); this driver only moves bytes and reads the clock.

use crate::machine::{Core, Poll, ReplyTimeout, Verdict};
use crate::transport::Readiness;
use crate::{ConnState, ConnectionInfo, Connector, DefaultConnector, Error, Protocol, Transport};
use bytes::BytesMut;
use resp_proto::{ErrorCode, ServerError, Value};
use std::io;
use std::time::{Duration, Instant};

/// Requests up to this size are copied into one buffer and written at once; larger ones
/// are written part by part instead of being copied.
const COPY_PARTS_UP_TO: usize = 64 * 1024;

/// A write buffer grown beyond this by a large request is not kept.
const MAX_RETAINED_WRITE: usize = 1 << 20;

/// A socket timeout within this of the one already set is left as it is: re-setting it
/// costs a system call per read, and the difference is below what timers resolve anyway.
const TIMEOUT_SLACK: Duration = Duration::from_millis(1);

/// A zero-timeout poll that finds bytes waiting reads them with at most this wait (a TLS
/// record may arrive in pieces).
const POLL_READ: Duration = Duration::from_millis(50);

/// Most reads before a request on a held connection (each takes what has arrived).
const MAX_READS_BEFORE_REQUEST: usize = 1024;

/// Most looks before a request that find bytes but read none.
const MAX_IDLE_TRIES: usize = 4;

/// A single connection to a server.
///
/// Requests are written whole; replies are read in order. The connection core decides
/// what the bytes mean: any I/O error, timeout, protocol error or out-of-step reply marks
/// the connection broken, and a broken connection refuses all further use
/// ([`Error::Broken`]): the stream may hold a late reply that belongs to nobody.
///
/// Each reply has one deadline (the read timeout, or a blocking command's own wait) and
/// each request one write deadline, however the bytes trickle; [`Connection::set_call_deadline`]
/// caps both for a whole call.
///
/// # A dedicated connection
///
/// A `Connection` opened with [`Connection::open`] belongs to its owner alone, which is
/// what state that must not leak to other callers needs: [`Connection::select`] to switch
/// databases, `CLIENT TRACKING` and the like. A pooled connection whose state a command
/// changed is restored (`RESET` and the handshake again) or closed when it goes back.
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
    core: Core,
    write_buf: BytesMut,
    read_timeout: Option<Duration>,
    /// The timeout currently set on the transport, to skip redundant syscalls.
    applied_read_timeout: Option<Option<Duration>>,
    /// The same for the write timeout.
    applied_write_timeout: Option<Option<Duration>>,
    created: Instant,
    /// The transport was found quiet since the last request (a pool's checkout look): the
    /// next request needs no look of its own.
    looked: bool,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("state", self.core.state())
            .field("pending", &self.core.pending_replies())
            .field("broken", &self.core.is_broken())
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
        Self::open_until(connector, None)
    }

    /// As [`Connection::open_with`], giving up at `deadline` if that comes before the
    /// connect timeout ends.
    ///
    /// # Errors
    /// As [`Connection::open`].
    pub fn open_until(
        connector: &dyn Connector,
        deadline: Option<Instant>,
    ) -> Result<Connection, Error> {
        let info = connector.info();
        // One deadline bounds connecting and the handshake, so a peer that accepts and then
        // says nothing (or trickles its answer) cannot hang the caller.
        let start = crate::clock::now();
        let deadline = earliest(info.connect_timeout.map(|t| start + t), deadline);
        let transport = connector.connect(deadline)?;
        let mut conn = Connection::from_transport(transport, info);
        let out = conn.core.handshake(info, deadline);
        if !out.is_empty() {
            conn.write_request(&[&out])?;
            conn.read_internal()?;
        }
        conn.set_call_deadline(deadline);
        connector.verify(&mut conn)?;
        conn.set_call_deadline(None);
        Ok(conn)
    }

    /// Wraps an already connected transport without any handshake.
    pub fn from_transport(transport: Box<dyn Transport>, info: &ConnectionInfo) -> Connection {
        let now = crate::clock::now();
        Connection {
            transport,
            core: Core::new(info, now),
            write_buf: BytesMut::new(),
            read_timeout: info.read_timeout,
            applied_read_timeout: None,
            applied_write_timeout: None,
            created: now,
            looked: false,
        }
    }

    /// Writes already encoded request bytes, given in parts, in one write where possible,
    /// and records that `replies` replies are now owed (0 for a subscriber, whose commands
    /// are answered by pushes).
    ///
    /// # Errors
    /// [`Error::Broken`] if the connection failed before; [`Error::Unsupported`] for a
    /// request the core refuses (nothing is sent); [`Error::Io`] or [`Error::Timeout`] if
    /// the write fails or does not finish within the write timeout (the connection is
    /// then broken).
    pub fn send(&mut self, parts: &[&[u8]], replies: usize) -> Result<(), Error> {
        self.send_with(parts, replies, ReplyTimeout::Default)
    }

    /// As [`Connection::send`], with each reply's wait given (blocking commands wait
    /// longer than the read timeout).
    ///
    /// # Errors
    /// As [`Connection::send`].
    pub fn send_with(
        &mut self,
        parts: &[&[u8]],
        replies: usize,
        timeout: ReplyTimeout,
    ) -> Result<(), Error> {
        self.judge_before_request()?;
        self.core
            .queue(parts, replies, timeout, crate::clock::now())?;
        self.write_request(parts)
    }

    /// Before a request on a connection that owes nothing, held across requests by its
    /// caller (WATCH, then GET, then EXEC), the transport is looked at: bytes there were
    /// sent before the request, so on RESP2 they fail the connection instead of being read
    /// as its reply; on RESP3 they are read and judged (pushes are set aside). Not needed
    /// right after a checkout's look, nor on a subscriber's connection (its messages come
    /// at any time).
    fn judge_before_request(&mut self) -> Result<(), Error> {
        if !self
            .core
            .wants_look_before_request(std::mem::take(&mut self.looked))
        {
            return Ok(());
        }
        let resp3 = self.core.state().protocol == Protocol::Resp3;
        // Bounded: pushes arriving without end, or bytes that cannot be read yet, must
        // not hold the request back.
        let (mut reads, mut idle_tries) = (0, 0);
        while reads < MAX_READS_BEFORE_REQUEST && idle_tries < MAX_IDLE_TRIES {
            reads += 1;
            self.core.judge_before_request()?;
            match self.transport.readiness() {
                Readiness::Quiet | Readiness::Unknown => return Ok(()),
                Readiness::Closed => return Err(self.broken(Error::closed())),
                Readiness::Readable if resp3 => {
                    let before = self.core.unread_len();
                    let now = crate::clock::now();
                    self.fill(Some(now + POLL_READ), now)?;
                    if self.core.unread_len() == before {
                        idle_tries += 1;
                    }
                }
                Readiness::Readable => {
                    return Err(self.broken(Error::OutOfStep(
                        "bytes nobody asked for arrived before a request was written".into(),
                    )))
                }
            }
        }
        // Still unread after every try: it cannot be judged, so the connection goes.
        Err(self.broken(Error::OutOfStep(
            "bytes arrived before a request was written that could not be read".into(),
        )))
    }

    /// Marks the connection broken and returns `e`.
    fn broken(&mut self, e: Error) -> Error {
        self.core.mark_broken();
        e
    }

    fn write_request(&mut self, parts: &[&[u8]]) -> Result<(), Error> {
        let deadline = self.core.write_deadline();
        match self.write_parts(parts, deadline) {
            Ok(()) => {
                self.core.handle_written();
                Ok(())
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    fn write_parts(&mut self, parts: &[&[u8]], deadline: Option<Instant>) -> io::Result<()> {
        if let [single] = parts {
            return self.write_all_until(single, deadline);
        }
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if total > COPY_PARTS_UP_TO {
            // Copying a large request (a big SET) would hold it twice; a write per part
            // costs little next to its size.
            for p in parts {
                self.write_all_until(p, deadline)?;
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
        let r = self.write_all_until(&buf, deadline);
        self.keep_write_buf(buf);
        r
    }

    /// Writes all of `buf` by `deadline`: each system call gets the time left, so a peer
    /// that reads slowly cannot stretch the write past it.
    fn write_all_until(&mut self, mut buf: &[u8], deadline: Option<Instant>) -> io::Result<()> {
        while !buf.is_empty() {
            let timeout = match deadline {
                None => None,
                Some(_) => time_left(deadline, crate::clock::now())?,
            };
            if needs_update(self.applied_write_timeout, timeout) {
                self.transport.set_write_timeout(timeout)?;
                self.applied_write_timeout = Some(timeout);
            }
            match self.transport.write(buf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => buf = &buf[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
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
    /// [`Error::Io`], [`Error::Timeout`], [`Error::Protocol`], [`Error::OutOfStep`] (the
    /// connection is then broken) or [`Error::Broken`].
    pub fn read_reply(&mut self) -> Result<Value, Error> {
        self.read_reply_timeout(ReplyTimeout::Default)
    }

    /// Reads the next reply, waiting as long as `timeout` says (from when waiting for this
    /// reply starts; bytes trickling in do not extend it).
    ///
    /// # Errors
    /// As [`Connection::read_reply`].
    pub fn read_reply_timeout(&mut self, timeout: ReplyTimeout) -> Result<Value, Error> {
        self.core.expect_within(timeout);
        // A reply already buffered (the rest of a pipeline's) needs no clock read.
        if let Some(v) = self.core.poll_buffered()? {
            return Ok(v);
        }
        loop {
            let now = crate::clock::now();
            match self.core.poll_reply(now)? {
                Poll::Reply(v) => return Ok(v),
                Poll::Idle => return Err(Error::Unsupported("no reply is owed")),
                Poll::NeedInput(deadline) => self.fill(deadline, now)?,
            }
        }
    }

    /// Reads the replies the core owes itself (handshake, restore).
    fn read_internal(&mut self) -> Result<(), Error> {
        loop {
            let now = crate::clock::now();
            match self.core.poll_reply(now)? {
                Poll::Idle => return Ok(()),
                Poll::NeedInput(deadline) => self.fill(deadline, now)?,
                // The caller owed nothing before an internal request was queued.
                Poll::Reply(_) => {
                    return Err(self.fail_with(Error::OutOfStep(
                        "a reply arrived that nobody asked for".into(),
                    )))
                }
            }
        }
    }

    /// Reads once into the core's buffer, waiting no later than `deadline` (`now` is the
    /// time the caller last read). A wait that ends with nothing read returns `Ok`: the
    /// core judges the deadline.
    fn fill(&mut self, deadline: Option<Instant>, now: Instant) -> Result<(), Error> {
        let timeout = match time_left(deadline, now) {
            Ok(t) => t,
            // The core reports the timeout on its next poll.
            Err(_) => return Ok(()),
        };
        if needs_update(self.applied_read_timeout, timeout) {
            if let Err(e) = self.transport.set_read_timeout(timeout) {
                return Err(self.fail(e));
            }
            self.applied_read_timeout = Some(timeout);
        }
        let buf = self.core.input_buffer();
        match self.transport.read(buf) {
            Ok(0) => {
                self.core.handle_closed();
                Err(Error::closed())
            }
            Ok(n) => {
                self.core.handle_input(n);
                Ok(())
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted
                        | io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(self.fail(e)),
        }
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
        self.core.mark_broken();
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

    /// Switches this connection to database `db` (`SELECT`). On a pooled connection the
    /// pool puts the configured database back (or closes it) when it is returned.
    ///
    /// # Errors
    /// As [`Connection::request`].
    pub fn select(&mut self, db: i64) -> Result<(), Error> {
        let mut out = BytesMut::new();
        resp_proto::write_array_len(&mut out, 2);
        resp_proto::write_bulk(&mut out, b"SELECT");
        resp_proto::write_bulk_i64(&mut out, db);
        self.request(&out)?;
        Ok(())
    }

    /// Sends `PING` and waits at most `timeout` (`None`: forever) for the answer: a
    /// cheap check that the server is there and the connection in step.
    ///
    /// # Errors
    /// As [`Connection::request`].
    pub fn ping(&mut self, timeout: Option<Duration>) -> Result<(), Error> {
        self.send_with(
            &[b"*1\r\n$4\r\nPING\r\n"],
            1,
            ReplyTimeout::Exactly(timeout),
        )?;
        match self.read_reply()? {
            Value::Error(e) => Err(server_error(e, false)),
            _ => Ok(()),
        }
    }

    /// Looks, without blocking, whether this idle connection must not carry a request:
    /// it owes replies, holds unread bytes, or its transport has bytes waiting or was
    /// closed by the server.
    pub fn is_stale(&mut self) -> bool {
        matches!(self.look(), Readiness::Readable | Readiness::Closed)
    }

    /// Whether the connector that opened this connection has since retired it (see
    /// [`Transport::retired`]); `None` for one that is never retired.
    pub fn retired(&self) -> Option<bool> {
        self.transport.retired()
    }

    /// What a non-blocking look finds: [`Readiness::Readable`] when replies are owed or
    /// bytes are buffered unread, else what the transport says (see
    /// [`Transport::readiness`]).
    pub fn look(&mut self) -> Readiness {
        if self.core.pending_replies() > 0 || self.core.has_unread() {
            return Readiness::Readable;
        }
        let r = self.transport.readiness();
        self.looked = matches!(r, Readiness::Quiet | Readiness::Unknown);
        r
    }

    /// What to do with this connection now that its user is done with it (see
    /// [`Verdict`]); a pool asks before taking it back.
    pub fn verdict(&self) -> Verdict {
        self.core.verdict()
    }

    /// Puts the connection back into its configured state with `RESET` and the handshake
    /// of `info`, within `timeout` (`None`: no bound).
    ///
    /// # Errors
    /// Any failure; the connection is then broken and must be closed.
    pub fn restore(
        &mut self,
        info: &ConnectionInfo,
        timeout: Option<Duration>,
    ) -> Result<(), Error> {
        let deadline = timeout.map(|t| crate::clock::now() + t);
        let out = self.core.restore_request(info, deadline);
        self.write_request(&[&out])?;
        self.read_internal()?;
        if self.core.verdict() == Verdict::Reuse {
            Ok(())
        } else {
            Err(self.fail_with(Error::Unsupported(
                "RESET did not restore the configured state",
            )))
        }
    }

    /// Bounds every wait (writes, replies) by `deadline` until set to `None`: one budget
    /// for a whole call.
    pub fn set_call_deadline(&mut self, deadline: Option<Instant>) {
        self.core.set_call_deadline(deadline);
    }

    /// The deadline [`Connection::set_call_deadline`] set, if any.
    pub fn call_deadline(&self) -> Option<Instant> {
        self.core.call_deadline()
    }

    /// True after any failure that leaves the stream out of step, or after `QUIT`.
    pub fn is_broken(&self) -> bool {
        self.core.is_broken()
    }

    /// Marks the connection unusable, e.g. when a caller gives up on a reply it is owed.
    pub fn mark_broken(&mut self) {
        self.core.mark_broken();
    }

    /// Replies owed by the server for requests already sent.
    pub fn pending_replies(&self) -> usize {
        self.core.pending_replies()
    }

    /// The protocol the server speaks on this connection.
    pub fn protocol(&self) -> Protocol {
        self.core.state().protocol
    }

    /// The database currently selected.
    pub fn db(&self) -> i64 {
        self.core.state().db
    }

    /// The connection state as the commands sent so far left it.
    pub fn state(&self) -> &ConnState {
        self.core.state()
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
        self.core.last_used()
    }

    /// The client id its handshake redirected `CLIENT TRACKING` invalidations to, if any.
    pub fn tracking_redirect(&self) -> Option<i64> {
        self.core.tracking_redirect()
    }

    /// Its `CLIENT TRACKING` registration while it lasts (see
    /// [`TrackingRegistration`](crate::TrackingRegistration)).
    pub fn tracking_registration(&self) -> Option<&std::sync::Arc<crate::TrackingRegistration>> {
        self.core.tracking_registration()
    }

    /// A RESP3 push that arrived among replies and was set aside, if any, without reading
    /// the transport (e.g. `tracking-redir-broken` on a tracking connection).
    ///
    /// # Errors
    /// As [`Core::poll_push`].
    pub fn queued_push(&mut self) -> Result<Option<Value>, Error> {
        if self.core.pending_replies() > 0 {
            return Ok(None);
        }
        self.core.poll_push()
    }
}

/// Reading values nobody asked for: pub/sub messages and other pushes.
impl Connection {
    /// Waits up to `timeout` (`None`: forever) for the next value the server sends on its
    /// own, such as a pub/sub message.
    ///
    /// Unlike [`Connection::read_reply`], silence is not a failure here: when the time
    /// runs out it returns `Ok(None)` and the connection stays usable, since no caller is
    /// owed a reply. `Some(Duration::ZERO)` polls: it returns a value already buffered or
    /// already arrived, without blocking. Bytes of a partly received value are kept for
    /// the next call.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Protocol`] or [`Error::OutOfStep`] (the connection is then
    /// broken), or [`Error::Broken`].
    pub fn read_push(&mut self, timeout: Option<Duration>) -> Result<Option<Value>, Error> {
        let start = crate::clock::now();
        let mut deadline = timeout.map(|t| start + t);
        let mut extended = false;
        loop {
            if let Some(v) = self.core.poll_push()? {
                return Ok(Some(v));
            }
            if !extended && deadline.is_some_and(|d| crate::clock::now() >= d) {
                // Out of time: still take what has already arrived, once, without
                // blocking on a quiet socket.
                extended = true;
                match self.transport.readiness() {
                    Readiness::Readable | Readiness::Closed => {
                        deadline = Some(crate::clock::now() + POLL_READ);
                    }
                    Readiness::Quiet | Readiness::Unknown => return Ok(None),
                }
            }
            let now = crate::clock::now();
            if time_left(deadline, now).is_err() {
                return Ok(None);
            }
            self.fill(deadline, now)?;
        }
    }
}

/// The earlier of two optional deadlines.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Time left from `now` until `deadline` as a socket timeout: `Ok(None)` without a
/// deadline, an error once it passed (sockets refuse a zero timeout).
fn time_left(deadline: Option<Instant>, now: Instant) -> io::Result<Option<Duration>> {
    match deadline {
        None => Ok(None),
        Some(d) => match d.checked_duration_since(now) {
            Some(left) if !left.is_zero() => Ok(Some(left)),
            _ => Err(io::ErrorKind::TimedOut.into()),
        },
    }
}

/// Whether a socket timeout of `want` must be set, given the one set before.
fn needs_update(applied: Option<Option<Duration>>, want: Option<Duration>) -> bool {
    match (applied, want) {
        (Some(Some(have)), Some(want)) => {
            // Shorter than set: must lower it; longer: a read returning early is harmless
            // (the caller reads again), but not by much.
            want < have.saturating_sub(TIMEOUT_SLACK) || want > have + TIMEOUT_SLACK
        }
        (Some(None), None) => false,
        _ => true,
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
