//! One async connection: a tokio stream driven by the connection core, with the same
//! handshake, deadlines and verdict as the blocking [`Connection`](crate::Connection).

use super::transport::{Opener, Transport};
use super::until;
use crate::machine::{Core, Poll, ReplyTimeout, Verdict};
use crate::{ConnState, ConnectionInfo, Error, Protocol, Readiness};
use bytes::BytesMut;
use resp_proto::Value;
use std::io;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Most reads before a request on a held connection (each takes what the stream holds).
const MAX_READS_BEFORE_REQUEST: usize = 1024;

/// Most looks before a request that find bytes but read none.
const MAX_IDLE_TRIES: usize = 4;

/// How long a read before a request waits for bytes a look found (the reactor may not
/// have reported them yet).
const BRIEF_READ: Duration = Duration::from_millis(50);

/// A single async connection to a server, owned by one task at a time.
///
/// The async counterpart of the blocking [`Connection`](crate::Connection): requests are
/// written whole, replies read in order, and the connection core decides what the bytes
/// mean. Any I/O error, timeout, protocol error or out-of-step reply marks it broken, and
/// a broken connection refuses all further use ([`Error::Broken`]).
///
/// # Cancellation
/// [`read_reply`](Connection::read_reply) and [`read_push`](Connection::read_push) are
/// cancel-safe: dropping their future loses nothing, and the next call returns the same
/// reply. Every other async method is not: dropping its future part way (a half-written
/// request, a reply owed to a caller who left) breaks the connection, so the next call
/// fails with [`Error::Broken`] instead of reading someone else's reply, and a pool
/// closes it.
///
/// ```no_run
/// # async fn demo() -> Result<(), redis_conn::Error> {
/// use redis_conn::{aio::Connection, ConnectionInfo};
/// let mut conn = Connection::open(&ConnectionInfo::tcp("127.0.0.1", 6379)).await?;
/// conn.command(&["SET", "greeting", "hello"]).await?;
/// # Ok(()) }
/// ```
pub struct Connection {
    stream: Box<dyn Transport>,
    core: Core,
    write_buf: BytesMut,
    read_timeout: Option<Duration>,
    /// A call that can leave the stream out of step is under way: set when it starts,
    /// cleared when it ends. Still set at the next call means its future was dropped.
    in_call: bool,
    /// The stream was found quiet since the last request (a pool's checkout look): the
    /// next request needs no look of its own.
    looked: bool,
    created: Instant,
    /// The connector that picked the server, and the epoch the connection belongs to.
    epoch: Option<(std::sync::Arc<dyn super::Connector>, u64)>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("aio::Connection")
            .field("state", self.core.state())
            .field("pending", &self.core.pending_replies())
            .field("broken", &self.core.is_broken())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Connects to the server described by `info` and performs the handshake, all within
    /// one deadline (`info.connect_timeout`).
    ///
    /// Cancellation: dropping the future abandons the connection being opened.
    ///
    /// # Errors
    /// [`Error::Connect`] if the server cannot be reached, [`Error::Tls`] if TLS cannot be
    /// set up, [`Error::Auth`] if it refuses the credentials, [`Error::Timeout`] if
    /// connecting and the handshake together take longer than `info.connect_timeout`.
    pub async fn open(info: &ConnectionInfo) -> Result<Connection, Error> {
        Self::open_until(&Opener::new(info.clone()), None).await
    }

    /// As [`Connection::open`], with streams from `opener` and giving up at `deadline` if
    /// that comes before the connect timeout ends.
    pub(crate) async fn open_until(
        opener: &Opener,
        deadline: Option<Instant>,
    ) -> Result<Connection, Error> {
        let info = opener.info();
        // One deadline bounds connecting and the handshake, so a peer that accepts and then
        // says nothing (or trickles its answer) cannot hang the caller.
        let start = super::now();
        let deadline = earliest(info.connect_timeout.map(|t| start + t), deadline);
        let (stream, epoch) = opener.open(deadline).await?;
        let mut conn = Connection {
            stream,
            core: Core::new(info, start),
            write_buf: BytesMut::new(),
            read_timeout: info.read_timeout,
            in_call: false,
            looked: false,
            created: start,
            epoch: None,
        };
        let out = conn.core.handshake(info, deadline);
        if !out.is_empty() {
            conn.write_request(&[&out]).await?;
            conn.read_internal().await?;
        }
        if let Some((c, _)) = &epoch {
            conn.core.set_call_deadline(deadline);
            c.verify(&mut conn).await?;
            conn.core.set_call_deadline(None);
        }
        conn.epoch = epoch;
        Ok(conn)
    }

    /// Marks the start of a call that is not cancel-safe; breaks the connection if the
    /// previous one never ended (its future was dropped).
    fn begin(&mut self) {
        if self.in_call {
            self.core.mark_broken();
        }
        self.in_call = true;
    }

    fn end<T>(&mut self, r: Result<T, Error>) -> Result<T, Error> {
        self.in_call = false;
        r
    }

    /// Writes already encoded request bytes, given in parts, and records that `replies`
    /// replies are owed, each to arrive within `timeout` (0 replies for a subscriber,
    /// whose commands are answered by pushes).
    ///
    /// Cancellation: not cancel-safe; dropping the future breaks the connection.
    ///
    /// # Errors
    /// As the blocking [`Connection::send`](crate::Connection::send).
    pub async fn send(
        &mut self,
        parts: &[&[u8]],
        replies: usize,
        timeout: ReplyTimeout,
    ) -> Result<(), Error> {
        self.begin();
        let r = self.send_inner(parts, replies, timeout).await;
        self.end(r)
    }

    async fn send_inner(
        &mut self,
        parts: &[&[u8]],
        replies: usize,
        timeout: ReplyTimeout,
    ) -> Result<(), Error> {
        self.judge_before_request().await?;
        self.core.queue(parts, replies, timeout, super::now())?;
        self.write_request(parts).await
    }

    /// Before a request on a connection that owes nothing, held across requests by its
    /// caller (WATCH, then GET, then EXEC), what the stream holds is read past the
    /// reactor and judged, as the multiplexed connection does before each batch: a reply
    /// nobody asked for fails the connection instead of being read as this request's. Not
    /// needed right after a checkout's look, nor on a subscriber's connection (its
    /// messages come at any time).
    async fn judge_before_request(&mut self) -> Result<(), Error> {
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
            let buf = self.core.input_buffer();
            match self.stream.read_now(buf) {
                Some(Ok(0)) => {
                    self.core.handle_closed();
                    return Err(closed());
                }
                Some(Ok(n)) => self.core.handle_input(n),
                Some(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Some(Err(e)) => return Err(self.fail(Error::Io(e))),
                // A transport that cannot read now only looks; on RESP3 bytes there may be
                // a push, read the usual way (briefly) and judged.
                None => match self.stream.readiness() {
                    Readiness::Quiet | Readiness::Unknown => return Ok(()),
                    Readiness::Readable if resp3 => {
                        let before = self.core.unread_len();
                        self.fill(Some(super::now() + BRIEF_READ)).await?;
                        if self.core.unread_len() == before {
                            idle_tries += 1;
                        }
                    }
                    Readiness::Readable => {
                        return Err(self.fail(Error::OutOfStep(
                            "bytes nobody asked for arrived before a request was written".into(),
                        )))
                    }
                    Readiness::Closed => return Err(self.fail(closed())),
                },
            }
        }
        // Still unread after every try: it cannot be judged, so the connection goes.
        Err(self.fail(Error::OutOfStep(
            "bytes arrived before a request was written that could not be read".into(),
        )))
    }

    async fn write_request(&mut self, parts: &[&[u8]]) -> Result<(), Error> {
        let deadline = self.core.write_deadline();
        let write = async {
            if let [single] = parts {
                return self.stream.write_all(single).await;
            }
            // One write for the whole request: separate writes would cost a syscall and,
            // with TCP_NODELAY, a packet each.
            let mut buf = std::mem::take(&mut self.write_buf);
            buf.clear();
            for p in parts {
                buf.extend_from_slice(p);
            }
            let r = self.stream.write_all(&buf).await;
            self.write_buf = buf;
            r
        };
        match until(deadline, write).await {
            Ok(Ok(())) => {
                self.core.handle_written();
                Ok(())
            }
            Ok(Err(e)) => Err(self.fail(Error::Io(e))),
            Err(()) => Err(self.fail(Error::Timeout)),
        }
    }

    /// Reads the next reply, waiting as long as `timeout` says (from when waiting for it
    /// starts; bytes trickling in do not extend it). Server error replies are returned as
    /// [`Value::Error`].
    ///
    /// Cancellation: cancel-safe; the reply stays owed and the next call returns it.
    ///
    /// # Errors
    /// As the blocking [`Connection::read_reply`](crate::Connection::read_reply).
    pub async fn read_reply(&mut self, timeout: ReplyTimeout) -> Result<Value, Error> {
        self.check_no_dropped_call();
        self.read_reply_inner(timeout).await
    }

    /// A call that is not cancel-safe had its future dropped part way (a request half
    /// written): the stream is out of step, so the connection is broken before a read
    /// waits on it.
    fn check_no_dropped_call(&mut self) {
        if self.in_call {
            self.core.mark_broken();
        }
    }

    async fn read_reply_inner(&mut self, timeout: ReplyTimeout) -> Result<Value, Error> {
        self.core.expect_within(timeout);
        loop {
            match self.core.poll_reply(super::now())? {
                Poll::Reply(v) => return Ok(v),
                Poll::Idle => return Err(Error::Unsupported("no reply is owed")),
                Poll::NeedInput(deadline) => self.fill(deadline).await?,
            }
        }
    }

    /// Reads the replies the core owes itself (handshake, restore).
    async fn read_internal(&mut self) -> Result<(), Error> {
        loop {
            match self.core.poll_reply(super::now())? {
                Poll::Idle => return Ok(()),
                Poll::NeedInput(deadline) => self.fill(deadline).await?,
                // The caller owed nothing before an internal request was queued.
                Poll::Reply(_) => {
                    return Err(self.fail(Error::OutOfStep(
                        "a reply arrived that nobody asked for".into(),
                    )))
                }
            }
        }
    }

    /// Reads once into the core's buffer, waiting no later than `deadline`. A wait that
    /// ends with nothing read returns `Ok`: the core judges the deadline.
    async fn fill(&mut self, deadline: Option<Instant>) -> Result<(), Error> {
        let buf = self.core.input_buffer();
        match until(deadline, self.stream.read(buf)).await {
            Err(()) => Ok(()),
            Ok(Ok(0)) => {
                self.core.handle_closed();
                Err(closed())
            }
            Ok(Ok(n)) => {
                self.core.handle_input(n);
                Ok(())
            }
            Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            Ok(Err(e)) => Err(self.fail(Error::Io(e))),
        }
    }

    fn fail(&mut self, e: Error) -> Error {
        self.core.mark_broken();
        e
    }

    /// Sends one encoded command and reads its reply; an error reply becomes
    /// [`Error::Server`].
    ///
    /// Cancellation: not cancel-safe; dropping the future breaks the connection.
    ///
    /// # Errors
    /// As [`Connection::send`] and [`Connection::read_reply`], plus [`Error::Server`].
    pub async fn request(&mut self, packed: &[u8], timeout: ReplyTimeout) -> Result<Value, Error> {
        self.begin();
        let r = self.request_inner(&[packed], timeout).await;
        self.end(r)
    }

    async fn request_inner(
        &mut self,
        parts: &[&[u8]],
        timeout: ReplyTimeout,
    ) -> Result<Value, Error> {
        self.send_inner(parts, 1, timeout).await?;
        match self.read_reply_inner(ReplyTimeout::Default).await? {
            Value::Error(e) => Err(Error::from_server_error(e)),
            v => Ok(v),
        }
    }

    /// Sends a command given as arguments and reads its reply; an error reply becomes
    /// [`Error::Server`].
    ///
    /// Cancellation: not cancel-safe; dropping the future breaks the connection.
    ///
    /// # Errors
    /// As [`Connection::request`].
    pub async fn command<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Value, Error> {
        let mut out = BytesMut::new();
        resp_proto::encode_command(&mut out, args);
        self.request(&out, ReplyTimeout::Default).await
    }

    /// Sends `PING` and waits at most `timeout` (`None`: forever) for the answer.
    ///
    /// Cancellation: not cancel-safe; dropping the future breaks the connection.
    ///
    /// # Errors
    /// As [`Connection::request`].
    pub async fn ping(&mut self, timeout: Option<Duration>) -> Result<(), Error> {
        self.request(b"*1\r\n$4\r\nPING\r\n", ReplyTimeout::Exactly(timeout))
            .await
            .map(drop)
    }

    /// Puts the connection back into its configured state with `RESET` and the handshake
    /// of `info`, within `timeout` (`None`: no bound).
    ///
    /// Cancellation: not cancel-safe; dropping the future breaks the connection.
    ///
    /// # Errors
    /// Any failure; the connection is then broken and must be closed.
    pub async fn restore(
        &mut self,
        info: &ConnectionInfo,
        timeout: Option<Duration>,
    ) -> Result<(), Error> {
        self.begin();
        let deadline = timeout.map(|t| super::now() + t);
        let out = self.core.restore_request(info, deadline);
        let r = async {
            self.write_request(&[&out]).await?;
            self.read_internal().await?;
            if self.core.verdict() == Verdict::Reuse {
                Ok(())
            } else {
                Err(self.fail(Error::Unsupported(
                    "RESET did not restore the configured state",
                )))
            }
        }
        .await;
        self.end(r)
    }

    /// Waits up to `timeout` (`None`: forever) for the next value the server sends on its
    /// own (a pub/sub message, a RESP3 push). Silence is not a failure: when the time runs
    /// out it returns `Ok(None)` and the connection stays usable.
    ///
    /// Cancellation: cancel-safe; bytes of a partly received value are kept.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Protocol`] or [`Error::OutOfStep`] (the connection is then
    /// broken), or [`Error::Broken`].
    pub async fn read_push(&mut self, timeout: Option<Duration>) -> Result<Option<Value>, Error> {
        self.check_no_dropped_call();
        let deadline = timeout.map(|t| super::now() + t);
        loop {
            if let Some(v) = self.core.poll_push()? {
                return Ok(Some(v));
            }
            if deadline.is_some_and(|d| super::now() >= d) {
                return Ok(None);
            }
            self.fill(deadline).await?;
        }
    }

    /// Looks, without waiting, whether this idle connection must not carry a request: it
    /// owes replies, holds unread bytes, or its stream has bytes waiting or was closed (or
    /// the [`Connector`](super::Connector) that picked its server says its epoch is over).
    pub fn is_stale(&mut self) -> bool {
        if self.in_call || self.core.pending_replies() > 0 || self.core.has_unread() {
            return true;
        }
        if !self.is_current() {
            return true;
        }
        let stale = matches!(self.readiness(), Readiness::Readable | Readiness::Closed);
        self.looked = !stale;
        stale
    }

    /// The transport's look at what it holds now ([`Transport::readiness`]): a system
    /// call for the built-in ones, not the reactor's last report, which can lag behind
    /// while the runtime is busy. Anything but quiet marks the connection broken.
    fn readiness(&mut self) -> Readiness {
        let r = self.stream.readiness();
        if matches!(r, Readiness::Readable | Readiness::Closed) {
            self.core.mark_broken();
        }
        r
    }

    /// What to do with this connection now that its user is done with it (see
    /// [`Verdict`]); a call whose future was dropped part way makes it `Close`.
    pub fn verdict(&self) -> Verdict {
        if self.in_call {
            Verdict::Close
        } else {
            self.core.verdict()
        }
    }

    /// Bounds every wait (writes, replies) by `deadline` until set to `None`.
    pub fn set_call_deadline(&mut self, deadline: Option<Instant>) {
        self.core.set_call_deadline(deadline);
    }

    /// True after any failure that leaves the stream out of step, or after `QUIT`.
    pub fn is_broken(&self) -> bool {
        self.core.is_broken()
    }

    /// Marks the connection unusable.
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

    /// Whether the connector that picked this connection's server has since said its
    /// epoch is over (a Sentinel client's primary after a failover); `None` for a
    /// connection opened without a connector, which is never retired.
    pub fn retired(&self) -> Option<bool> {
        self.epoch.as_ref().map(|(c, e)| !c.is_current(*e))
    }

    /// False once the [`Connector`](super::Connector) that picked this connection's server
    /// says its epoch is over (a Sentinel failover): the connection must not carry another
    /// request. Always true for a connection opened without a connector.
    pub fn is_current(&self) -> bool {
        self.epoch.as_ref().map_or(true, |(c, e)| c.is_current(*e))
    }

    /// The connector and epoch, for a driver that takes the connection apart.
    pub(crate) fn epoch(&self) -> Option<(std::sync::Arc<dyn super::Connector>, u64)> {
        self.epoch.clone()
    }

    /// The stream and the core, for the multiplexed driver, which splits the stream
    /// between a reader and a writer task.
    pub(crate) fn into_parts(self) -> (Box<dyn Transport>, Core) {
        (self.stream, self.core)
    }
}

fn closed() -> Error {
    Error::closed()
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
