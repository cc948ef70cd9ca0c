//! The connection core: a sans-I/O state machine that decides whether a byte stream is in
//! step and safe to reuse.
//!
//! It owns the handshake, the queue of replies owed, the connection state that commands
//! change, where pushes go, the deadline of the reply or write in progress, the read
//! buffer and its limits, and the verdict when a connection is handed back. It never
//! touches a socket and never reads the clock: the driver passes `now` in and does the
//! I/O the core asks for. The blocking [`Connection`](crate::Connection) is one driver;
//! an async one drives the same core.

use crate::observe::Sink;
use crate::tracking::TrackingRegistration;
use crate::{ConnectionInfo, Error, Protocol};
use bytes::{Bytes, BytesMut};
use resp_proto::{AnyDecoder, Decode, DecoderKind, Limits, Value};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Read buffer size; it grows as large replies need.
const READ_CHUNK: usize = 16 * 1024;

/// Most room reserved for a declared but not yet received reply beyond what has arrived
/// (past that the buffer grows as bytes come), so a peer declaring a huge length and then
/// sending nothing costs little.
const AHEAD_OF_DATA: usize = 32 * 1024 * 1024;

/// Below this much spare space, the read buffer is refilled before a read, so each read
/// can take a useful amount.
const MIN_SPARE: usize = 4 * 1024;

/// An allocation grown beyond this by a large reply is let go once the reply is consumed,
/// and small values decoded from it are copied out, so they do not pin it.
const MAX_RETAINED: usize = 1 << 20;

/// Pushes kept for [`Core::poll_push`] on a command connection before the oldest are
/// dropped: a command connection that nobody drains must not grow without bound.
const MAX_QUEUED_PUSHES: usize = 1024;

/// How long to wait for a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyTimeout {
    /// The connection's configured read timeout.
    Default,
    /// A specific bound; `None` waits forever (blocking commands with timeout 0).
    Exactly(Option<Duration>),
}

/// The connection state that commands change, as far as it matters to the next user of
/// the connection. Compared against the configured state when a connection is handed
/// back.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnState {
    /// The protocol the server speaks on this connection (`HELLO`, `RESET`).
    pub protocol: Protocol,
    /// The selected database (`SELECT`, `RESET`).
    pub db: i64,
    /// Inside `MULTI`, before `EXEC` or `DISCARD`.
    pub multi: bool,
    /// Keys are `WATCH`ed.
    pub watching: bool,
    /// In pub/sub mode (`SUBSCRIBE`, `PSUBSCRIBE`, `SSUBSCRIBE`).
    pub subscribed: bool,
    /// In `MONITOR` mode.
    pub monitor: bool,
    /// `CLIENT REPLY` is not `ON`.
    pub replies_off: bool,
    /// `CLIENT TRACKING` is on.
    pub tracking: bool,
    /// `READONLY` (cluster replicas) is on.
    pub readonly: bool,
    /// Something else a command changed that the configuration does not say: the user
    /// (`AUTH`, `HELLO … AUTH`), the name (`CLIENT SETNAME`), `CLIENT NO-EVICT`, a state
    /// change queued inside `MULTI`, a request the core could not read.
    pub tainted: bool,
}

impl ConnState {
    fn fresh(protocol: Protocol, db: i64) -> ConnState {
        ConnState {
            protocol,
            db,
            multi: false,
            watching: false,
            subscribed: false,
            monitor: false,
            replies_off: false,
            tracking: false,
            readonly: false,
            tainted: false,
        }
    }
}

/// What to do with a connection being handed back, from [`Core::verdict`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// In step, quiet, and in the configured state: another caller may use it.
    Reuse,
    /// In step and quiet, but a command changed its state: send
    /// [`Core::restore_request`] (`RESET` and the handshake again) and reuse it if that
    /// succeeds.
    Restore,
    /// Owes replies, holds unread bytes, failed, or was closed: it must be closed.
    Close,
}

/// What [`Core::poll_reply`] has for the caller.
#[derive(Debug)]
pub enum Poll {
    /// The next owed reply (server errors included, as [`Value::Error`]).
    Reply(Value),
    /// More bytes are needed: read into [`Core::input_buffer`] and wait no later than
    /// this deadline (`None`: no deadline).
    NeedInput(Option<Instant>),
    /// Nothing is owed to the caller (internal replies, such as the handshake's, are all
    /// read).
    Idle,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Opened; handshake replies may be owed.
    Open,
    /// Failed or closed: the stream may hold bytes that belong to nobody.
    Broken,
    /// `QUIT` was answered: the server closes the connection.
    Quit,
}

/// Who a reply belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    /// A caller reads it.
    Caller,
    /// A handshake or restore step the core reads itself; `auth` marks the step whose
    /// error means refused credentials, `expect` the answer it must get.
    Internal { auth: bool, expect: Expect },
}

/// The answer a handshake or restore step must get, unless it is an error: anything else
/// means the stream is out of step (bytes that were there before the request, say).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// `+OK` (AUTH, CLIENT SETNAME, SELECT).
    Ok,
    /// A map or array (HELLO).
    Hello,
    /// `+PONG`, the handshake's last step.
    Pong,
    /// `+RESET`.
    Reset,
}

impl Expect {
    fn accepts(self, v: &Value) -> bool {
        let simple = |text: &str| matches!(v, Value::SimpleString(s) if s[..] == *text.as_bytes());
        match self {
            Expect::Ok => simple("OK"),
            Expect::Pong => simple("PONG"),
            Expect::Reset => simple("RESET"),
            Expect::Hello => matches!(v, Value::Map(_) | Value::Array(_)),
        }
    }
}

/// When an owed reply must have arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wait {
    /// This long after waiting for it starts (`None`: forever).
    For(Option<Duration>),
    /// By this instant (`None`: never), for the handshake's one deadline.
    Until(Option<Instant>),
}

/// What a command does to the connection when it succeeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Effect {
    None,
    Select(i64),
    Multi,
    Exec,
    Discard,
    Watch,
    Unwatch,
    Reset,
    Quit,
    ReplyOn,
    Tracking(bool),
    ReadOnly(bool),
    /// `HELLO`: the protocol it asks for, if it names one; with options (AUTH, SETNAME)
    /// it also changes who the connection is.
    Hello {
        protocol: Option<Protocol>,
        taint: bool,
    },
    Taint,
    /// The last step of a restore: the configured state is back.
    Configured,
}

/// One reply owed by the server.
#[derive(Clone, Copy, Debug)]
struct Owed {
    owner: Owner,
    effect: Effect,
    wait: Wait,
    /// `CLIENT REPLY OFF|SKIP` means the server sends nothing for this command.
    silent: bool,
}

/// How a request's command reads, from its first words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// An ordinary command, or one with an effect.
    Plain(Effect),
    /// `SUBSCRIBE` and the like: answered by pushes, never by a reply.
    Subscribe,
    /// `MONITOR`: the connection becomes an event stream.
    Monitor,
    /// `CLIENT REPLY OFF` / `SKIP`.
    ReplyOff { skip: bool },
}

/// The connection core: see the [crate docs](crate) and docs/ARCHITECTURE.md.
///
/// Method families, as in quinn-proto: `&self` getters; `queue`/`handle_*` for input
/// (requests from the caller, bytes and end of stream from the transport); `poll_*` for
/// output the driver must act on. A driver queues a request, writes its bytes before
/// [`Core::write_deadline`], then calls [`Core::poll_reply`] until it gives a reply,
/// reading into [`Core::input_buffer`] and passing the count to [`Core::handle_input`]
/// whenever it asks for input.
#[derive(Debug)]
pub struct Core {
    decoder: AnyDecoder,
    /// Which decoder, and the limits it enforces: `limits.resp3` follows the protocol
    /// (see [`Core::sync_decoder`]), the rest is the configuration's.
    decoder_kind: DecoderKind,
    limits: Limits,
    /// A `HELLO` was queued and not every reply since is read: its answer (and what
    /// follows) may be RESP3 whatever the protocol now.
    hello_pending: bool,
    /// Bytes read and not yet decoded.
    read_buf: BytesMut,
    /// Initialized bytes directly after `read_buf` in the same allocation, which reads
    /// fill; taking them back into `read_buf` is O(1). Zeroed once when the buffer is
    /// refilled, not at every read.
    spare: BytesMut,
    /// Size of the allocation `read_buf` and `spare` live in.
    allocation: usize,
    owed: VecDeque<Owed>,
    phase: Phase,
    state: ConnState,
    /// The state a pool expects of a connection it hands out.
    configured: ConnState,
    /// Commands still to be answered silently after `CLIENT REPLY SKIP`.
    skip_next: bool,
    /// A `MULTI` is queued and its `EXEC` or `DISCARD` is not: commands queued now take
    /// effect at `EXEC`, if at all. Judged when queueing, since a pipeline sends MULTI and
    /// what follows before any reply is back.
    multi_queued: bool,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    /// Deadline of the reply being read, set when waiting for it starts (`Some(None)`:
    /// waiting without a bound).
    reply_deadline: Option<Option<Instant>>,
    /// Deadline of the request being written.
    write_deadline: Option<Instant>,
    /// Bound on everything until cleared: a whole call, retries included.
    call_deadline: Option<Instant>,
    /// Pushes received on a RESP3 command connection, for [`Core::poll_push`].
    pushes: VecDeque<Value>,
    /// Pushes dropped because nobody took them.
    pushes_dropped: u64,
    /// The handshake's first error, reported once every handshake reply is read.
    handshake_error: Option<Error>,
    last_used: Instant,
    /// Where the bytes in and out are counted, if anywhere.
    metrics: Option<Sink>,
    /// The registration the handshake's `CLIENT TRACKING … REDIRECT` made, if it had one,
    /// until it ends.
    tracking: Option<Arc<TrackingRegistration>>,
}

/// A connection's end ends its tracking registration: the server forgets what the
/// connection read.
impl Drop for Core {
    fn drop(&mut self) {
        self.set_tracking(None);
    }
}

impl Core {
    /// A core for a connection opened with `info`, before any handshake: RESP2, database 0.
    pub fn new(info: &ConnectionInfo, now: Instant) -> Core {
        let state = ConnState::fresh(Protocol::Resp2, 0);
        // A new connection speaks RESP2 until a HELLO 3 is queued.
        let limits = info.limits.with_resp3(false);
        Core {
            decoder: AnyDecoder::new(info.decoder, limits),
            decoder_kind: info.decoder,
            limits,
            hello_pending: false,
            read_buf: BytesMut::new(),
            spare: BytesMut::new(),
            allocation: 0,
            owed: VecDeque::new(),
            phase: Phase::Open,
            configured: state.clone(),
            state,
            skip_next: false,
            multi_queued: false,
            read_timeout: info.read_timeout,
            write_timeout: info.write_timeout,
            reply_deadline: None,
            write_deadline: None,
            call_deadline: None,
            pushes: VecDeque::new(),
            pushes_dropped: 0,
            handshake_error: None,
            last_used: now,
            metrics: Sink::of(&info.observe),
            tracking: None,
        }
    }

    /// The handshake `info` asks for (HELLO or AUTH, CLIENT SETNAME, SELECT), to be
    /// written and answered by `deadline`; empty when none is needed. Its replies are
    /// read by [`Core::poll_reply`], which reports the first error once all are in.
    /// The configured state becomes what the handshake sets up.
    pub fn handshake(&mut self, info: &ConnectionInfo, deadline: Option<Instant>) -> BytesMut {
        let mut out = BytesMut::new();
        let (steps, tracking) = encode_handshake(info, &mut out);
        self.state.tracking = tracking.is_some();
        self.set_tracking(tracking);
        for (i, expect) in steps.into_iter().enumerate() {
            self.owed.push_back(Owed {
                owner: Owner::Internal {
                    auth: i == 0 && info.password.is_some(),
                    expect,
                },
                effect: Effect::None,
                wait: Wait::Until(deadline),
                silent: false,
            });
        }
        self.write_deadline = deadline;
        self.state.protocol = info.protocol;
        self.state.db = info.db;
        self.state.readonly = info.readonly;
        self.configured = self.state.clone();
        self.sync_decoder();
        self.count_out(out.len());
        out
    }

    /// Records a request about to be written: `parts` concatenated hold `replies`
    /// commands (RESP arrays), whose replies must arrive within `timeout` each.
    ///
    /// The core reads each command's first words to learn its effect on the connection
    /// (database, MULTI, WATCH, RESET, QUIT, CLIENT REPLY …). A request announcing no
    /// replies is a subscriber's: its commands are answered by pushes.
    ///
    /// # Errors
    /// [`Error::Broken`] after a failure; [`Error::Unsupported`] for a command that would
    /// turn a command connection into an event stream (SUBSCRIBE, MONITOR with replies
    /// announced) or a count that does not match the request; nothing is recorded then.
    pub fn queue(
        &mut self,
        parts: &[&[u8]],
        replies: usize,
        timeout: ReplyTimeout,
        now: Instant,
    ) -> Result<(), Error> {
        if self.phase != Phase::Open {
            return Err(Error::Broken);
        }
        let wait = Wait::For(match timeout {
            ReplyTimeout::Default => self.read_timeout,
            ReplyTimeout::Exactly(t) => t,
        });
        let start = self.owed.len();
        let result = self.queue_commands(parts, replies, wait);
        if let Err(e) = result {
            self.owed.truncate(start);
            return Err(e);
        }
        self.last_used = now;
        self.write_deadline = self.cap(self.write_timeout.map(|t| now + t));
        self.sync_decoder();
        if self.metrics.is_some() {
            self.count_out(parts.iter().map(|p| p.len()).sum());
        }
        Ok(())
    }

    /// Counts request bytes for the metrics sink, if one is installed.
    fn count_out(&self, n: usize) {
        if let Some(m) = &self.metrics {
            m.bytes_out(n as u64);
        }
    }

    fn queue_commands(&mut self, parts: &[&[u8]], replies: usize, wait: Wait) -> Result<(), Error> {
        let start = self.owed.len();
        let mut reader = Requests::new(parts);
        let mut count = 0;
        let subscriber = replies == 0;
        loop {
            let kind = match reader.next() {
                Ok(Some(kind)) => kind,
                Ok(None) => break,
                Err(()) => {
                    // Not a request the core can read (an inline command, say): trust the
                    // caller's count and treat the connection as changed.
                    self.owed.truncate(start);
                    for _ in 0..replies {
                        self.push_owed(Effect::Taint, wait);
                    }
                    return Ok(());
                }
            };
            count += 1;
            match kind {
                Kind::Subscribe | Kind::Monitor if !subscriber => {
                    return Err(Error::Unsupported(
                        "SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE and MONITOR turn a connection into \
                         a stream of pushes: use a PubSub, not a command connection",
                    ));
                }
                Kind::Subscribe => self.state.subscribed = true,
                Kind::Monitor => self.state.monitor = true,
                _ if subscriber => {
                    // A subscriber reads the answers to PING and the like as pushes.
                    if !self.state.subscribed && !self.state.monitor {
                        self.state.tainted = true;
                    }
                }
                Kind::ReplyOff { skip } => {
                    self.push_owed_silent(Effect::None, wait);
                    if skip {
                        self.skip_next = true;
                    } else {
                        self.state.replies_off = true;
                    }
                }
                Kind::Plain(effect) => {
                    // Even inside MULTI: its answer may come in RESP3 (at EXEC).
                    if let Effect::Hello { .. } = effect {
                        self.hello_pending = true;
                    }
                    let effect = match effect {
                        Effect::Multi => {
                            self.multi_queued = true;
                            effect
                        }
                        Effect::Exec | Effect::Discard | Effect::Reset => {
                            self.multi_queued = false;
                            effect
                        }
                        // Inside MULTI a command's effect happens at EXEC, if at all: the
                        // state is no longer known exactly.
                        Effect::None => effect,
                        _ if self.multi_queued => Effect::Taint,
                        _ => effect,
                    };
                    if matches!(
                        effect,
                        Effect::Reset
                            | Effect::Tracking(_)
                            | Effect::Taint
                            | Effect::Hello { taint: true, .. }
                    ) {
                        // The server may stop reporting changes to the keys read so far
                        // where the registration said: ended before the command is sent.
                        self.set_tracking(None);
                    }
                    if self.skip_next {
                        self.skip_next = false;
                        self.push_owed_silent(effect, wait);
                    } else if self.state.replies_off && effect != Effect::ReplyOn {
                        self.push_owed_silent(effect, wait);
                    } else {
                        self.push_owed(effect, wait);
                    }
                }
            }
        }
        if subscriber || count == replies {
            Ok(())
        } else {
            Err(Error::Unsupported(
                "the request holds a different number of commands than replies announced",
            ))
        }
    }

    fn push_owed(&mut self, effect: Effect, wait: Wait) {
        self.owed.push_back(Owed {
            owner: Owner::Caller,
            effect,
            wait,
            silent: false,
        });
    }

    fn push_owed_silent(&mut self, effect: Effect, wait: Wait) {
        self.owed.push_back(Owed {
            owner: Owner::Caller,
            effect,
            wait,
            silent: true,
        });
    }

    /// Sets how long the next reply may take, unless waiting for it has already started:
    /// for a caller that learns the wait only when it reads (a blocking command).
    /// `ReplyTimeout::Default` leaves the wait given when the request was queued.
    pub fn expect_within(&mut self, timeout: ReplyTimeout) {
        if let (ReplyTimeout::Exactly(t), None) = (timeout, self.reply_deadline) {
            if let Some(head) = self.owed.front_mut() {
                if head.owner == Owner::Caller {
                    head.wait = Wait::For(t);
                }
            }
        }
    }

    /// The request has been written whole: the write deadline no longer applies.
    pub fn handle_written(&mut self) {
        self.write_deadline = None;
    }

    /// When writing the queued request must be done (`None`: no bound).
    pub fn write_deadline(&self) -> Option<Instant> {
        self.write_deadline
    }

    /// Bounds every later wait by `deadline` (a whole call's budget), until set to `None`.
    pub fn set_call_deadline(&mut self, deadline: Option<Instant>) {
        self.call_deadline = deadline;
    }

    /// The deadline [`Core::set_call_deadline`] set, if any.
    pub fn call_deadline(&self) -> Option<Instant> {
        self.call_deadline
    }

    fn cap(&self, deadline: Option<Instant>) -> Option<Instant> {
        match (deadline, self.call_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Space to read into: at least a few KiB, more when a large reply is arriving.
    /// Pass the number of bytes read to [`Core::handle_input`].
    pub fn input_buffer(&mut self) -> &mut [u8] {
        if self.spare.len() < MIN_SPARE {
            self.refill_spare();
        }
        &mut self.spare
    }

    /// `n` bytes were read into [`Core::input_buffer`].
    pub fn handle_input(&mut self, n: usize) {
        let n = n.min(self.spare.len());
        if let Some(m) = &self.metrics {
            m.bytes_in(n as u64);
        }
        // `spare` starts where `read_buf` ends, so this moves no bytes.
        let filled = self.spare.split_to(n);
        self.read_buf.unsplit(filled);
    }

    /// Bytes that arrived by other means (an async driver's read buffer, a test).
    ///
    /// They are copied into [`Core::input_buffer`], so the read buffer grows by whole
    /// chunks: extending it directly would, while decoded replies still point into it,
    /// allocate a new buffer just the size of every read.
    pub fn handle_bytes(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let spare = self.input_buffer();
            let n = bytes.len().min(spare.len());
            spare[..n].copy_from_slice(&bytes[..n]);
            self.handle_input(n);
            bytes = &bytes[n..];
        }
    }

    /// The peer closed the stream or the transport failed: nothing more will come.
    pub fn handle_closed(&mut self) {
        self.phase = Phase::Broken;
    }

    /// Marks the connection unusable, e.g. when a caller gives up on a reply it is owed.
    pub fn mark_broken(&mut self) {
        self.phase = Phase::Broken;
    }

    /// The next reply owed to the caller, a request for input, or [`Poll::Idle`].
    ///
    /// Handshake and restore replies are read here too, without being handed out.
    ///
    /// # Errors
    /// [`Error::Timeout`] when `now` is past the reply's deadline; [`Error::Protocol`] for
    /// bytes that are not RESP; [`Error::OutOfStep`] for a reply nobody is owed or bytes
    /// left after the last one; the handshake's error once its replies are read;
    /// [`Error::Broken`] after any failure. Every error but the handshake's server errors
    /// leaves the connection broken.
    pub fn poll_reply(&mut self, now: Instant) -> Result<Poll, Error> {
        self.poll(Some(now))
    }

    /// The next reply owed to the caller if it is already complete in the buffer, without
    /// needing the time: `Ok(None)` when it is not (or nothing is owed); then call
    /// [`Core::poll_reply`]. Lets a driver hand out a pipeline's buffered replies without a
    /// clock read each.
    ///
    /// # Errors
    /// As [`Core::poll_reply`], but never [`Error::Timeout`].
    pub fn poll_buffered(&mut self) -> Result<Option<Value>, Error> {
        match self.poll(None)? {
            Poll::Reply(v) => Ok(Some(v)),
            Poll::NeedInput(_) | Poll::Idle => Ok(None),
        }
    }

    fn poll(&mut self, now: Option<Instant>) -> Result<Poll, Error> {
        if self.phase == Phase::Broken {
            return Err(Error::Broken);
        }
        loop {
            let Some(head) = self.owed.front().copied() else {
                if let Some(e) = self.handshake_error.take() {
                    self.phase = Phase::Broken;
                    return Err(e);
                }
                return Ok(Poll::Idle);
            };
            if head.silent {
                self.owed.pop_front();
                self.apply(head.effect, true);
                return Ok(Poll::Reply(Value::Nil));
            }
            let value = match self.decode() {
                Ok(Some(v)) => v,
                Ok(None) => {
                    // Without the time, waiting cannot start: the caller asks again with it.
                    let Some(now) = now else {
                        return Ok(Poll::NeedInput(None));
                    };
                    let deadline = *self.reply_deadline.get_or_insert_with(|| match head.wait {
                        Wait::For(t) => t.map(|t| now + t),
                        Wait::Until(d) => d,
                    });
                    let deadline = self.cap(deadline);
                    if deadline.is_some_and(|d| now >= d) {
                        self.phase = Phase::Broken;
                        return Err(Error::Timeout);
                    }
                    return Ok(Poll::NeedInput(deadline));
                }
                Err(e) => return Err(self.fail(e)),
            };
            if let Value::Push(_) = value {
                if self.state.protocol == Protocol::Resp3 {
                    // A RESP3 push (an invalidation, a message) is never a reply.
                    self.keep_push(value);
                    continue;
                }
                return Err(self.fail(Error::OutOfStep("push frame on a RESP2 connection".into())));
            }
            self.owed.pop_front();
            self.reply_deadline = None;
            let ok = !matches!(value, Value::Error(_));
            self.apply(head.effect, ok);
            if self.owed.is_empty() {
                self.hello_pending = false;
            }
            self.sync_decoder();
            if self.owed.is_empty() && !self.quiet_after_reply() {
                return Err(self.fail(Error::OutOfStep(
                    "bytes nobody asked for followed the last reply".into(),
                )));
            }
            match head.owner {
                Owner::Caller => return Ok(Poll::Reply(value)),
                Owner::Internal { auth, expect } => match value {
                    // A user whose ACL does not allow PING still answers it in step: the
                    // closing PING checks the stream, not the user's rights.
                    Value::Error(e)
                        if expect == Expect::Pong && e.code() == resp_proto::ErrorCode::NOPERM => {}
                    Value::Error(e) => {
                        let auth = auth && e.message().contains("password");
                        self.handshake_error
                            .get_or_insert(crate::conn::server_error(e, auth));
                    }
                    v if !expect.accepts(&v) => {
                        return Err(self.fail(Error::OutOfStep(format!(
                            "a {} answered a handshake step that expects {expect:?}",
                            v.kind_name()
                        ))));
                    }
                    _ => {}
                },
            }
        }
    }

    /// The next value the server sent on its own (a pub/sub message, a RESP3 push), or
    /// `Ok(None)` when none is complete yet: read more and call again.
    ///
    /// On a subscriber connection (requests announced no replies) every frame is a push;
    /// on a command connection only RESP3 push frames are.
    ///
    /// # Errors
    /// [`Error::Protocol`] for bytes that are not RESP, [`Error::OutOfStep`] for a reply
    /// nobody is owed, [`Error::Broken`] after any failure.
    pub fn poll_push(&mut self) -> Result<Option<Value>, Error> {
        if let Some(v) = self.pushes.pop_front() {
            return Ok(Some(v));
        }
        if self.phase == Phase::Broken {
            return Err(Error::Broken);
        }
        if !self.owed.is_empty() {
            // Replies are owed first; a push among them is kept by `poll_reply`.
            return Ok(None);
        }
        match self.decode() {
            Ok(Some(Value::Push(_))) if self.state.protocol == Protocol::Resp2 => {
                Err(self.fail(Error::OutOfStep("push frame on a RESP2 connection".into())))
            }
            Ok(Some(v @ Value::Push(_))) => Ok(Some(v)),
            Ok(Some(v)) if self.state.subscribed || self.state.monitor => Ok(Some(v)),
            Ok(Some(_)) => Err(self.fail(Error::OutOfStep(
                "a reply arrived that nobody asked for".into(),
            ))),
            Ok(None) => Ok(None),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// With nothing owed, takes every complete frame buffered: RESP3 pushes are kept for
    /// [`Core::poll_push`], anything else fails the connection ([`Error::OutOfStep`]). A
    /// frame's start may stay buffered. Lets a driver judge what it read before it records
    /// a new request, so that a reply nobody asked for, even behind a push, is never taken
    /// for that request's.
    ///
    /// # Errors
    /// [`Error::OutOfStep`], [`Error::Protocol`], [`Error::Broken`]; the connection is
    /// then broken.
    pub fn set_pushes_aside(&mut self) -> Result<(), Error> {
        if self.phase == Phase::Broken {
            return Err(Error::Broken);
        }
        while self.owed.is_empty() && !self.read_buf.is_empty() {
            match self.decode() {
                Ok(Some(v @ Value::Push(_))) if self.state.protocol == Protocol::Resp3 => {
                    self.keep_push(v);
                }
                Ok(Some(_)) => {
                    return Err(self.fail(Error::OutOfStep(
                        "a reply arrived that nobody asked for".into(),
                    )))
                }
                Ok(None) => break,
                Err(e) => return Err(self.fail(e)),
            }
        }
        Ok(())
    }

    /// Whether a request about to be queued must first look at the transport: the
    /// connection owes nothing (bytes there would be taken for the request's reply), is
    /// no subscriber's or monitor's (whose messages come at any time), and no look found
    /// it quiet since the last request (`looked`: a pool's checkout look).
    pub fn wants_look_before_request(&self, looked: bool) -> bool {
        !looked && self.owed.is_empty() && !self.state.subscribed && !self.state.monitor
    }

    /// Before a request, with nothing owed: what is buffered is judged
    /// ([`Core::set_pushes_aside`]), and a frame's start may stay only if it is a push's.
    ///
    /// # Errors
    /// [`Error::OutOfStep`] for bytes nobody asked for; the connection is then broken.
    pub fn judge_before_request(&mut self) -> Result<(), Error> {
        self.set_pushes_aside()?;
        if !self.unread_is_push() {
            return Err(self.fail(Error::OutOfStep(
                "bytes nobody asked for arrived before a request was written".into(),
            )));
        }
        Ok(())
    }

    /// Pushes dropped because more than 1024 were waiting on a command connection.
    pub fn pushes_dropped(&self) -> u64 {
        self.pushes_dropped
    }

    fn keep_push(&mut self, v: Value) {
        if self.pushes.len() == MAX_QUEUED_PUSHES {
            self.pushes.pop_front();
            self.pushes_dropped += 1;
        }
        self.pushes.push_back(v);
    }

    /// True when nothing but (the start of) RESP3 pushes is buffered after the last reply.
    fn quiet_after_reply(&mut self) -> bool {
        if self.read_buf.is_empty() || self.state.subscribed || self.state.monitor {
            return true;
        }
        self.state.protocol == Protocol::Resp3 && self.read_buf[0] == b'>'
    }

    fn decode(&mut self) -> Result<Option<Value>, Error> {
        let v = self.decoder.decode(&mut self.read_buf)?;
        Ok(v.map(|v| self.release(v)))
    }

    /// Lets go of a large allocation once nothing more is buffered in it, and copies a
    /// small value out of one, so a few bytes never keep megabytes alive.
    fn release(&mut self, v: Value) -> Value {
        if self.allocation <= MAX_RETAINED {
            return v;
        }
        let v = if weight(&v) < self.allocation / 64 {
            detach(v)
        } else {
            v
        };
        if self.read_buf.is_empty() {
            self.read_buf = BytesMut::new();
            self.spare = BytesMut::new();
            self.allocation = 0;
        }
        v
    }

    fn fail(&mut self, e: impl Into<Error>) -> Error {
        self.phase = Phase::Broken;
        e.into()
    }

    fn apply(&mut self, effect: Effect, ok: bool) {
        let s = &mut self.state;
        match effect {
            // EXEC ends the transaction and every WATCH even when it fails.
            Effect::Exec => {
                s.multi = false;
                s.watching = false;
            }
            _ if !ok => {}
            Effect::None => {}
            Effect::Select(db) => s.db = db,
            Effect::Multi => s.multi = true,
            Effect::Discard => {
                s.multi = false;
                s.watching = false;
            }
            Effect::Watch => s.watching = true,
            Effect::Unwatch => s.watching = false,
            Effect::Reset => {
                // RESET: RESP2, database 0, default user, no name, every mode off.
                *s = ConnState::fresh(Protocol::Resp2, 0);
            }
            Effect::Configured => *s = self.configured.clone(),
            Effect::Quit => self.phase = Phase::Quit,
            Effect::ReplyOn => s.replies_off = false,
            Effect::Tracking(on) => {
                s.tracking = on;
                // Its options are not read: on a connection configured to track, a
                // CLIENT TRACKING ON of the caller's may have changed the redirect.
                if on && self.configured.tracking {
                    s.tainted = true;
                }
            }
            Effect::ReadOnly(on) => s.readonly = on,
            Effect::Hello { protocol, taint } => {
                if let Some(p) = protocol {
                    s.protocol = p;
                }
                s.tainted |= taint;
            }
            Effect::Taint => s.tainted = true,
        }
    }

    /// What to do with the connection now that its user is done with it.
    pub fn verdict(&self) -> Verdict {
        let in_step = self.phase == Phase::Open
            && self.owed.is_empty()
            && self.read_buf.is_empty()
            && self.pushes.is_empty()
            && !self.skip_next;
        if !in_step {
            Verdict::Close
        } else if self.state == self.configured {
            Verdict::Reuse
        } else if self.state.replies_off || self.state.monitor {
            // Its replies cannot be matched to a RESET; start afresh.
            Verdict::Close
        } else {
            Verdict::Restore
        }
    }

    /// `RESET` followed by the handshake of `info`, queued as internal steps: write the
    /// bytes before `deadline`, then call [`Core::poll_reply`] until [`Poll::Idle`].
    pub fn restore_request(
        &mut self,
        info: &ConnectionInfo,
        deadline: Option<Instant>,
    ) -> BytesMut {
        let mut out = BytesMut::new();
        resp_proto::encode_command(&mut out, &["RESET"]);
        // RESET ends a MULTI in progress and any CLIENT REPLY SKIP.
        self.multi_queued = false;
        self.skip_next = false;
        self.owed.push_back(Owed {
            owner: Owner::Internal {
                auth: false,
                expect: Expect::Reset,
            },
            effect: Effect::Reset,
            wait: Wait::Until(deadline),
            silent: false,
        });
        let (steps, tracking) = encode_handshake(info, &mut out);
        // RESET answers in RESP2; the handshake's HELLO 3 then answers in RESP3.
        if info.protocol == Protocol::Resp3 {
            self.hello_pending = true;
            self.sync_decoder();
        }
        // The redirect target may have changed since the connection was opened: the
        // configured state is what this handshake sets up. The RESET ends what the
        // server remembered for the old registration.
        self.configured.tracking = tracking.is_some();
        self.set_tracking(tracking);
        let last = steps.len();
        for (i, expect) in steps.into_iter().enumerate() {
            self.owed.push_back(Owed {
                owner: Owner::Internal {
                    auth: i == 0 && info.password.is_some(),
                    expect,
                },
                // The handshake puts back what RESET took away.
                effect: if i + 1 == last {
                    Effect::Configured
                } else {
                    Effect::None
                },
                wait: Wait::Until(deadline),
                silent: false,
            });
        }
        self.write_deadline = deadline;
        self.count_out(out.len());
        out
    }

    /// True after any failure that leaves the stream out of step, or after `QUIT`.
    pub fn is_broken(&self) -> bool {
        self.phase != Phase::Open
    }

    /// Replies owed for requests already sent.
    pub fn pending_replies(&self) -> usize {
        self.owed.len()
    }

    /// True when bytes are buffered that no reply has consumed yet.
    pub fn has_unread(&self) -> bool {
        !self.read_buf.is_empty()
    }

    /// How many bytes are buffered unread.
    pub fn unread_len(&self) -> usize {
        self.read_buf.len()
    }

    /// True when what is buffered beyond the replies owed can only be (the start of) RESP3
    /// pushes, which come at any time and are never a reply: nothing, or a push frame's
    /// first byte on a RESP3 connection.
    pub fn unread_is_push(&self) -> bool {
        self.read_buf.is_empty()
            || (self.state.protocol == Protocol::Resp3 && self.read_buf[0] == b'>')
    }

    /// The connection state as the commands sent so far left it.
    pub fn state(&self) -> &ConnState {
        &self.state
    }

    /// The state the handshake set up, which a pooled connection must be in.
    pub fn configured(&self) -> &ConnState {
        &self.configured
    }

    /// When a request was last queued.
    pub fn last_used(&self) -> Instant {
        self.last_used
    }

    /// The client id that invalidation messages for this connection's reads go to, as
    /// its handshake (or last restore) set up with `CLIENT TRACKING … REDIRECT`; `None`
    /// once that registration has ended.
    pub fn tracking_redirect(&self) -> Option<i64> {
        self.tracking.as_ref().map(|t| t.redirect())
    }

    /// The `CLIENT TRACKING` registration its handshake (or last restore) made, while it
    /// lasts: it ends when the connection closes, is reset, or its tracking is changed.
    pub fn tracking_registration(&self) -> Option<&Arc<TrackingRegistration>> {
        self.tracking.as_ref()
    }

    /// Replaces the tracking registration, ending the old one.
    fn set_tracking(&mut self, tracking: Option<Arc<TrackingRegistration>>) {
        if let Some(old) = std::mem::replace(&mut self.tracking, tracking) {
            old.end();
        }
    }

    /// Has the decoder accept RESP3's own types only while the connection speaks RESP3 or
    /// a HELLO's answer may still come: a RESP2 server never sends them, so on a RESP2
    /// connection they are a protocol error at their first byte. Called between replies,
    /// where a new decoder loses nothing (the next reply is scanned from its start).
    fn sync_decoder(&mut self) {
        let resp3 = self.state.protocol == Protocol::Resp3 || self.hello_pending;
        if resp3 != self.limits.resp3 {
            self.limits.resp3 = resp3;
            self.decoder = AnyDecoder::new(self.decoder_kind, self.limits);
        }
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
        self.allocation = capacity;
        self.spare = buf.split_off(data);
        self.read_buf = buf;
    }
}

/// Writes the handshake `info` asks for into `out`; returns the answer each step must get,
/// and the registration its `CLIENT TRACKING` step makes, if it has one.
///
/// It always ends with `PING`: a connection that answers `PONG` to it, after everything
/// else, is in step, so bytes a peer sent before any request (a greeting, a stray reply)
/// shift the answers and are found here instead of being read as a caller's reply.
fn encode_handshake(
    info: &ConnectionInfo,
    out: &mut BytesMut,
) -> (Vec<Expect>, Option<Arc<TrackingRegistration>>) {
    let mut steps = Vec::with_capacity(4);
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
            resp_proto::encode_command(out, &args);
            steps.push(Expect::Hello);
        }
        Protocol::Resp2 => {
            if let Some(pass) = password {
                match user {
                    Some(u) => resp_proto::encode_command(
                        out,
                        &[b"AUTH".as_slice(), u.as_bytes(), pass.as_bytes()],
                    ),
                    None => resp_proto::encode_command(out, &[b"AUTH".as_slice(), pass.as_bytes()]),
                }
                steps.push(Expect::Ok);
            }
            if let Some(name) = info.client_name.as_deref() {
                resp_proto::encode_command(
                    out,
                    &[b"CLIENT".as_slice(), b"SETNAME", name.as_bytes()],
                );
                steps.push(Expect::Ok);
            }
        }
    }
    if info.db != 0 {
        resp_proto::write_array_len(out, 2);
        resp_proto::write_bulk(out, b"SELECT");
        resp_proto::write_bulk_i64(out, info.db);
        steps.push(Expect::Ok);
    }
    // Part of the configured state, so a restore (whose RESET turns tracking off) turns
    // it on again, redirected to the current target.
    let tracking = info.tracking.as_ref().and_then(|t| t.encode(out));
    if tracking.is_some() {
        steps.push(Expect::Ok);
    }
    if info.readonly {
        resp_proto::encode_command(out, &["READONLY"]);
        steps.push(Expect::Ok);
    }
    resp_proto::encode_command(out, &["PING"]);
    steps.push(Expect::Pong);
    (steps, tracking)
}

/// Payload bytes a value holds.
fn weight(v: &Value) -> usize {
    match v {
        Value::SimpleString(b) | Value::BulkString(b) | Value::BigNumber(b) => b.len(),
        Value::Verbatim { text, .. } => text.len(),
        Value::Error(e) => e.as_bytes().len(),
        Value::Array(items) | Value::Set(items) | Value::Push(items) => {
            items.iter().map(weight).sum()
        }
        Value::Map(pairs) => pairs.iter().map(|(k, v)| weight(k) + weight(v)).sum(),
        Value::Attribute { attributes, value } => {
            attributes
                .iter()
                .map(|(k, v)| weight(k) + weight(v))
                .sum::<usize>()
                + weight(value)
        }
        Value::Nil | Value::Integer(_) | Value::Double(_) | Value::Boolean(_) => 0,
    }
}

/// `v` with its payloads copied into allocations of their own.
fn detach(v: Value) -> Value {
    let copy = |b: Bytes| Bytes::copy_from_slice(&b);
    match v {
        Value::SimpleString(b) => Value::SimpleString(copy(b)),
        Value::BulkString(b) => Value::BulkString(copy(b)),
        Value::BigNumber(b) => Value::BigNumber(copy(b)),
        Value::Verbatim { format, text } => Value::Verbatim {
            format,
            text: copy(text),
        },
        Value::Error(e) => Value::Error(resp_proto::ServerError::new(copy(e.as_bytes().clone()))),
        Value::Array(items) => Value::Array(items.into_iter().map(detach).collect()),
        Value::Set(items) => Value::Set(items.into_iter().map(detach).collect()),
        Value::Push(items) => Value::Push(items.into_iter().map(detach).collect()),
        Value::Map(pairs) => Value::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (detach(k), detach(v)))
                .collect(),
        ),
        Value::Attribute { attributes, value } => Value::Attribute {
            attributes: attributes
                .into_iter()
                .map(|(k, v)| (detach(k), detach(v)))
                .collect(),
            value: Box::new(detach(*value)),
        },
        other => other,
    }
}

/// Reads the commands of a request (RESP arrays of bulk strings, possibly split across
/// parts) and classifies each by its first words, skipping payloads by their length.
///
/// Lines and words that lie within one part (the usual case: the client writes each
/// command's header and body whole) are read from the slice directly; only what straddles
/// two parts goes byte by byte.
struct Requests<'a> {
    /// The unread bytes of the current part.
    cur: &'a [u8],
    /// The parts after it.
    rest: std::slice::Iter<'a, &'a [u8]>,
}

/// Longest first word kept for classification; longer ones are no state command.
const WORD: usize = 16;

/// One of a command's first words, as far as classifying it needs.
#[derive(Clone, Copy)]
enum Word<'a> {
    /// Within one part.
    Borrowed(&'a [u8]),
    /// Straddling parts: copied.
    Copied([u8; WORD], usize),
    /// Longer than any word the core looks for.
    Long,
}

impl Word<'_> {
    fn get(&self) -> Option<&[u8]> {
        match self {
            Word::Borrowed(w) => Some(w),
            Word::Copied(buf, len) => Some(&buf[..*len]),
            Word::Long => None,
        }
    }
}

/// A length line `<prefix><digits>\r\n` at the start of `cur`: the number and the line's
/// length, or `None` when it is not whole in `cur` (or not a length line at all).
#[inline(always)]
fn length_line(cur: &[u8], prefix: u8) -> Option<(usize, usize)> {
    let digit = |d: u8| d.wrapping_sub(b'0') < 10;
    let value = |d: u8| usize::from(d - b'0');
    // One and two digits cover almost every argument; the loop takes the rest.
    match *cur {
        [p, d0, b'\r', b'\n', ..] if p == prefix && digit(d0) => Some((value(d0), 4)),
        [p, d0, d1, b'\r', b'\n', ..] if p == prefix && digit(d0) && digit(d1) => {
            Some((value(d0) * 10 + value(d1), 5))
        }
        [p, ..] if p == prefix => {
            let mut n = 0usize;
            let mut i = 1;
            // At most 18 digits: no overflow, and far beyond any real length.
            while i < cur.len() && i <= 18 && digit(cur[i]) {
                n = n * 10 + value(cur[i]);
                i += 1;
            }
            match cur.get(i..i + 2) {
                Some(b"\r\n") if i > 1 => Some((n, i + 2)),
                _ => None,
            }
        }
        _ => None,
    }
}

impl<'a> Requests<'a> {
    fn new(parts: &'a [&'a [u8]]) -> Self {
        let mut rest = parts.iter();
        let cur = rest.next().copied().unwrap_or_default();
        Requests { cur, rest }
    }

    /// Moves past empty parts; false at the end of the request.
    fn at_end(&mut self) -> bool {
        while self.cur.is_empty() {
            match self.rest.next() {
                Some(p) => self.cur = p,
                None => return true,
            }
        }
        false
    }

    fn byte(&mut self) -> Result<u8, ()> {
        if self.at_end() {
            return Err(());
        }
        let b = self.cur[0];
        self.cur = &self.cur[1..];
        Ok(b)
    }

    /// A line `<prefix><digits>\r\n`; returns the number.
    #[inline]
    fn header(&mut self, prefix: u8) -> Result<usize, ()> {
        if let Some((n, used)) = length_line(self.cur, prefix) {
            self.cur = &self.cur[used..];
            return Ok(n);
        }
        self.header_split(prefix)
    }

    /// [`Requests::header`] for a line split across parts.
    fn header_split(&mut self, prefix: u8) -> Result<usize, ()> {
        if self.byte()? != prefix {
            return Err(());
        }
        let mut n: usize = 0;
        let mut digits = 0;
        loop {
            match self.byte()? {
                d @ b'0'..=b'9' if digits < 18 => {
                    n = n * 10 + usize::from(d - b'0');
                    digits += 1;
                }
                b'\r' if digits > 0 => break,
                _ => return Err(()),
            }
        }
        if self.byte()? != b'\n' {
            return Err(());
        }
        Ok(n)
    }

    /// Skips one bulk-string argument.
    #[inline]
    fn skip_arg(&mut self) -> Result<(), ()> {
        let len = self.header(b'$')?;
        if let Some(b"\r\n") = self.cur.get(len..len + 2) {
            self.cur = &self.cur[len + 2..];
            return Ok(());
        }
        // The payload runs into later parts (a large value written part by part).
        let mut n = len;
        while n > 0 {
            if self.at_end() {
                return Err(());
            }
            let take = n.min(self.cur.len());
            self.cur = &self.cur[take..];
            n -= take;
        }
        if self.byte()? != b'\r' || self.byte()? != b'\n' {
            return Err(());
        }
        Ok(())
    }

    /// Reads one bulk-string argument as a [`Word`].
    fn word(&mut self) -> Result<Word<'a>, ()> {
        let len = self.header(b'$')?;
        let cur = self.cur;
        if let Some(b"\r\n") = cur.get(len..len + 2) {
            self.cur = &cur[len + 2..];
            return Ok(if len <= WORD {
                Word::Borrowed(&cur[..len])
            } else {
                Word::Long
            });
        }
        let mut buf = [0u8; WORD];
        for i in 0..len {
            let b = self.byte()?;
            if let Some(slot) = buf.get_mut(i) {
                *slot = b;
            }
        }
        if self.byte()? != b'\r' || self.byte()? != b'\n' {
            return Err(());
        }
        Ok(if len <= WORD {
            Word::Copied(buf, len)
        } else {
            Word::Long
        })
    }

    /// The next command's kind, `None` at the end, `Err` for bytes that are not a request.
    fn next(&mut self) -> Result<Option<Kind>, ()> {
        if self.at_end() {
            return Ok(None);
        }
        let argc = self.header(b'*')?;
        if argc == 0 {
            return Ok(Some(Kind::Plain(Effect::None)));
        }
        let first = self.word()?;
        let mut read = 1;
        let kind = match first.get() {
            Some(w0) if may_change_state(w0) => {
                let w1 = if argc > 1 { self.word()? } else { Word::Long };
                let w2 = if argc > 2 { self.word()? } else { Word::Long };
                read = argc.min(3);
                classify(argc, Some(w0), w1.get(), w2.get())
            }
            _ => Kind::Plain(Effect::None),
        };
        for _ in read..argc {
            self.skip_arg()?;
        }
        Ok(Some(kind))
    }
}

/// A first look at a command's name: only names of the lengths and initials of the
/// commands [`classify`] knows can change connection state, so the common commands (GET,
/// SET, HSET …) are ruled out without a comparison.
fn may_change_state(name: &[u8]) -> bool {
    let initial = match name.first() {
        Some(b) => b.to_ascii_uppercase(),
        None => return false,
    };
    matches!(
        (name.len(), initial),
        (4, b'E' | b'Q' | b'A')
            | (5, b'M' | b'W' | b'R' | b'H')
            | (6, b'S' | b'C')
            | (7, b'M' | b'D' | b'U')
            | (8, b'R')
            | (9, b'S' | b'R')
            | (10, b'P' | b'S')
            | (11, b'U')
            | (12, b'P' | b'S')
    )
}

/// What a command does to the connection, from its first three words (`None` for a word
/// that is missing or too long to matter).
fn classify(argc: usize, w0: Option<&[u8]>, w1: Option<&[u8]>, w2: Option<&[u8]>) -> Kind {
    let is =
        |w: Option<&[u8]>, name: &str| w.is_some_and(|w| w.eq_ignore_ascii_case(name.as_bytes()));
    let Some(first) = w0 else {
        return Kind::Plain(Effect::None);
    };
    if !may_change_state(first) {
        return Kind::Plain(Effect::None);
    }
    let plain = Kind::Plain;
    if is(w0, "SELECT") {
        let db = w1
            .and_then(|w| std::str::from_utf8(w).ok())
            .and_then(|s| s.parse().ok());
        return plain(db.map_or(Effect::Taint, Effect::Select));
    }
    if [
        "SUBSCRIBE",
        "PSUBSCRIBE",
        "SSUBSCRIBE",
        "UNSUBSCRIBE",
        "PUNSUBSCRIBE",
        "SUNSUBSCRIBE",
    ]
    .iter()
    .any(|n| is(w0, n))
    {
        return Kind::Subscribe;
    }
    if is(w0, "MONITOR") {
        return Kind::Monitor;
    }
    if is(w0, "MULTI") {
        return plain(Effect::Multi);
    }
    if is(w0, "EXEC") {
        return plain(Effect::Exec);
    }
    if is(w0, "DISCARD") {
        return plain(Effect::Discard);
    }
    if is(w0, "WATCH") {
        return plain(Effect::Watch);
    }
    if is(w0, "UNWATCH") {
        return plain(Effect::Unwatch);
    }
    if is(w0, "RESET") {
        return plain(Effect::Reset);
    }
    if is(w0, "QUIT") {
        return plain(Effect::Quit);
    }
    if is(w0, "READONLY") {
        return plain(Effect::ReadOnly(true));
    }
    if is(w0, "READWRITE") {
        return plain(Effect::ReadOnly(false));
    }
    if is(w0, "AUTH") {
        return plain(Effect::Taint);
    }
    if is(w0, "HELLO") {
        let protocol = match w1 {
            Some(b"2") => Some(Protocol::Resp2),
            Some(b"3") => Some(Protocol::Resp3),
            _ => None,
        };
        // AUTH or SETNAME among its options change who the connection is.
        return plain(Effect::Hello {
            protocol,
            taint: argc > 2,
        });
    }
    if is(w0, "CLIENT") {
        if is(w1, "REPLY") {
            if is(w2, "ON") {
                return plain(Effect::ReplyOn);
            }
            if is(w2, "OFF") {
                return Kind::ReplyOff { skip: false };
            }
            if is(w2, "SKIP") {
                return Kind::ReplyOff { skip: true };
            }
            return plain(Effect::Taint);
        }
        if is(w1, "TRACKING") {
            return plain(Effect::Tracking(is(w2, "ON")));
        }
        if ["SETNAME", "NO-EVICT", "NO-TOUCH", "SETINFO"]
            .iter()
            .any(|n| is(w1, n))
        {
            return plain(Effect::Taint);
        }
    }
    plain(Effect::None)
}

/// Whether the core treats the command whose first words are `words` as changing the
/// connection's state (or as turning it into a stream of pushes), for checking the
/// command table's `CONNECTION_STATE` flags against it.
pub fn changes_connection_state(words: &[&str]) -> bool {
    let w = |i: usize| words.get(i).map(|s| s.as_bytes());
    classify(words.len(), w(0), w(1), w(2)) != Kind::Plain(Effect::None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> ConnectionInfo {
        ConnectionInfo::tcp("127.0.0.1", 6379)
    }

    fn cmd(args: &[&str]) -> Vec<u8> {
        let mut out = BytesMut::new();
        resp_proto::encode_command(&mut out, args);
        out.to_vec()
    }

    /// Queues one command, feeds `reply`, returns what the caller gets.
    fn run(core: &mut Core, args: &[&str], reply: &[u8]) -> Result<Value, Error> {
        let now = Instant::now();
        core.queue(&[&cmd(args)], 1, ReplyTimeout::Default, now)?;
        core.handle_written();
        core.handle_bytes(reply);
        match core.poll_reply(now)? {
            Poll::Reply(v) => Ok(v),
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    #[test]
    fn a_plain_command_leaves_the_connection_reusable() {
        let mut core = Core::new(&info(), Instant::now());
        assert_eq!(
            run(&mut core, &["GET", "k"], b"$1\r\nv\r\n").unwrap(),
            Value::BulkString("v".into())
        );
        assert_eq!(core.verdict(), Verdict::Reuse);
    }

    #[test]
    fn state_commands_make_the_verdict_restore() {
        for (args, reply) in [
            (&["SELECT", "5"][..], &b"+OK\r\n"[..]),
            (&["MULTI"], b"+OK\r\n"),
            (&["WATCH", "k"], b"+OK\r\n"),
            (&["client", "tracking", "on"], b"+OK\r\n"),
            (&["READONLY"], b"+OK\r\n"),
            (&["CLIENT", "SETNAME", "x"], b"+OK\r\n"),
            (&["AUTH", "pw"], b"+OK\r\n"),
            (&["HELLO", "3"], b"%0\r\n"),
        ] {
            let mut core = Core::new(&info(), Instant::now());
            run(&mut core, args, reply).unwrap();
            assert_eq!(core.verdict(), Verdict::Restore, "{args:?}");
        }
    }

    #[test]
    fn a_refused_state_command_changes_nothing() {
        let mut core = Core::new(&info(), Instant::now());
        run(
            &mut core,
            &["SELECT", "99"],
            b"-ERR DB index is out of range\r\n",
        )
        .unwrap();
        assert_eq!(core.state().db, 0);
        assert_eq!(core.verdict(), Verdict::Reuse);
    }

    #[test]
    fn select_back_to_the_configured_db_is_reusable() {
        let mut core = Core::new(&info(), Instant::now());
        run(&mut core, &["SELECT", "5"], b"+OK\r\n").unwrap();
        run(&mut core, &["SELECT", "0"], b"+OK\r\n").unwrap();
        assert_eq!(core.verdict(), Verdict::Reuse);
    }

    #[test]
    fn exec_and_discard_end_multi_and_watch() {
        let mut core = Core::new(&info(), Instant::now());
        run(&mut core, &["WATCH", "k"], b"+OK\r\n").unwrap();
        run(&mut core, &["MULTI"], b"+OK\r\n").unwrap();
        run(&mut core, &["SET", "k", "v"], b"+QUEUED\r\n").unwrap();
        run(&mut core, &["EXEC"], b"*-1\r\n").unwrap();
        assert_eq!(core.verdict(), Verdict::Reuse);
        run(&mut core, &["MULTI"], b"+OK\r\n").unwrap();
        run(&mut core, &["SELECT", "3"], b"+QUEUED\r\n").unwrap();
        run(&mut core, &["DISCARD"], b"+OK\r\n").unwrap();
        assert_eq!(
            core.verdict(),
            Verdict::Restore,
            "a state change inside MULTI taints"
        );
    }

    #[test]
    fn reset_and_quit() {
        let mut core = Core::new(&info().with_db(3), Instant::now());
        let hs = core.handshake(&info().with_db(3), None);
        assert_eq!(
            &hs[..],
            &[cmd(&["SELECT", "3"]), cmd(&["PING"])].concat()[..]
        );
        core.handle_bytes(b"+OK\r\n+PONG\r\n");
        assert!(matches!(
            core.poll_reply(Instant::now()).unwrap(),
            Poll::Idle
        ));
        assert_eq!(core.verdict(), Verdict::Reuse);
        run(&mut core, &["RESET"], b"+RESET\r\n").unwrap();
        assert_eq!(core.state().db, 0);
        assert_eq!(core.verdict(), Verdict::Restore);
        let out = core.restore_request(&info().with_db(3), None);
        assert_eq!(
            &out[..],
            &[cmd(&["RESET"]), cmd(&["SELECT", "3"]), cmd(&["PING"])].concat()[..]
        );
        core.handle_bytes(b"+RESET\r\n+OK\r\n+PONG\r\n");
        assert!(matches!(
            core.poll_reply(Instant::now()).unwrap(),
            Poll::Idle
        ));
        assert_eq!(core.verdict(), Verdict::Reuse);
        run(&mut core, &["QUIT"], b"+OK\r\n").unwrap();
        assert_eq!(core.verdict(), Verdict::Close);
        assert!(core.is_broken());
    }

    #[test]
    fn subscribe_and_monitor_are_refused_on_a_command_connection() {
        let mut core = Core::new(&info(), Instant::now());
        for args in [
            &["SUBSCRIBE", "ch"][..],
            &["psubscribe", "p*"],
            &["MONITOR"],
        ] {
            let e = core.queue(&[&cmd(args)], 1, ReplyTimeout::Default, Instant::now());
            assert!(matches!(e, Err(Error::Unsupported(_))), "{args:?}");
        }
        assert_eq!(core.pending_replies(), 0);
        assert_eq!(core.verdict(), Verdict::Reuse);
        // A subscriber announces no replies and reads pushes.
        core.queue(
            &[&cmd(&["SUBSCRIBE", "ch"])],
            0,
            ReplyTimeout::Default,
            Instant::now(),
        )
        .unwrap();
        core.handle_bytes(b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n");
        assert!(matches!(core.poll_push(), Ok(Some(Value::Array(_)))));
        assert_eq!(core.verdict(), Verdict::Restore);
        // RESP2 has no push frames: one is refused even for a subscriber.
        core.handle_bytes(b">1\r\n$1\r\nx\r\n");
        assert!(matches!(core.poll_push(), Err(Error::Protocol(_))));
    }

    #[test]
    fn client_reply_off_and_skip_owe_nothing() {
        let mut core = Core::new(&info(), Instant::now());
        assert_eq!(
            run(&mut core, &["CLIENT", "REPLY", "OFF"], b"").unwrap(),
            Value::Nil
        );
        assert_eq!(run(&mut core, &["SET", "k", "v"], b"").unwrap(), Value::Nil);
        assert_eq!(
            core.verdict(),
            Verdict::Close,
            "replies off cannot be restored"
        );
        assert_eq!(
            run(&mut core, &["CLIENT", "REPLY", "ON"], b"+OK\r\n").unwrap(),
            Value::SimpleString("OK".into())
        );
        assert_eq!(core.verdict(), Verdict::Reuse);
        assert_eq!(
            run(&mut core, &["CLIENT", "REPLY", "SKIP"], b"").unwrap(),
            Value::Nil
        );
        assert_eq!(run(&mut core, &["SET", "k", "v"], b"").unwrap(), Value::Nil);
        assert_eq!(
            run(&mut core, &["GET", "k"], b"$1\r\nv\r\n").unwrap(),
            Value::BulkString("v".into())
        );
    }

    #[test]
    fn an_unsolicited_reply_breaks_the_connection() {
        let mut core = Core::new(&info(), Instant::now());
        // Two replies arrive for one GET: the second is nobody's.
        let e = run(&mut core, &["GET", "a"], b"$2\r\nv0\r\n$2\r\nv1\r\n").unwrap_err();
        assert!(matches!(e, Error::OutOfStep(_)), "{e:?}");
        assert_eq!(core.verdict(), Verdict::Close);
        // A reply arriving while nothing is owed.
        let mut core = Core::new(&info(), Instant::now());
        core.handle_bytes(b"+OK\r\n");
        assert_eq!(core.verdict(), Verdict::Close);
        assert!(matches!(core.poll_push(), Err(Error::OutOfStep(_))));
    }

    /// The protocol error a RESP2 connection gives for a frame only RESP3 has.
    fn refused_as_resp3(e: &Error, byte: u8) -> bool {
        matches!(e, Error::Protocol(p) if *p.kind() == resp_proto::ProtocolErrorKind::InvalidTypeByte(byte))
    }

    #[test]
    fn resp2_push_frames_are_refused_and_resp3_pushes_are_set_aside() {
        let mut core = Core::new(&info(), Instant::now());
        let e = run(
            &mut core,
            &["GET", "a"],
            b">2\r\n$3\r\nfoo\r\n$3\r\nbar\r\n",
        )
        .unwrap_err();
        assert!(refused_as_resp3(&e, b'>'), "{e:?}");
        let i3 = info().with_protocol(Protocol::Resp3);
        let mut core = Core::new(&i3, Instant::now());
        core.handshake(&i3, None);
        core.handle_bytes(b"%0\r\n+PONG\r\n");
        assert!(matches!(
            core.poll_reply(Instant::now()).unwrap(),
            Poll::Idle
        ));
        let v = run(
            &mut core,
            &["GET", "a"],
            b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\na\r\n$1\r\nv\r\n",
        )
        .unwrap();
        assert_eq!(v, Value::BulkString("v".into()));
        assert!(matches!(core.poll_push(), Ok(Some(Value::Push(_)))));
        assert_eq!(core.verdict(), Verdict::Reuse);
    }

    #[test]
    fn pushes_read_with_nothing_owed_are_set_aside_and_a_reply_behind_them_is_refused() {
        let i3 = info().with_protocol(Protocol::Resp3);
        let mut core = Core::new(&i3, Instant::now());
        core.handshake(&i3, None);
        core.handle_bytes(b"%0\r\n+PONG\r\n");
        assert!(matches!(
            core.poll_reply(Instant::now()).unwrap(),
            Poll::Idle
        ));
        // A push, then the start of another: kept, the start left for later.
        core.handle_bytes(b">2\r\n$7\r\nmessage\r\n$1\r\na\r\n>2\r\n$7");
        core.set_pushes_aside().unwrap();
        assert!(core.unread_is_push());
        assert!(matches!(core.poll_push(), Ok(Some(Value::Push(_)))));
        // The rest of it, and a reply nobody asked for behind it.
        core.handle_bytes(b"\r\nmessage\r\n$1\r\nb\r\n+OK\r\n");
        assert!(matches!(core.set_pushes_aside(), Err(Error::OutOfStep(_))));
        assert!(matches!(core.poll_push(), Ok(Some(Value::Push(_)))));
        assert!(matches!(core.poll_push(), Err(Error::Broken)));
    }

    #[test]
    fn a_resp2_connection_refuses_resp3_frames_until_a_hello_3_is_answered() {
        // A HELLO-less handshake (AUTH, SELECT, PING), answered in RESP2.
        let i2 = info().with_auth(None, "pw").with_db(2);
        for (reply, byte) in [
            (&b"%1\r\n+a\r\n:1\r\n"[..], b'%'),
            (b"_\r\n", b'_'),
            (b"*2\r\n:1\r\n#t\r\n", b'#'),
            (b"$?\r\n", b'$'),
        ] {
            let mut core = Core::new(&i2, Instant::now());
            core.handshake(&i2, None);
            core.handle_bytes(b"+OK\r\n+OK\r\n+PONG\r\n");
            assert!(matches!(core.poll_reply(Instant::now()), Ok(Poll::Idle)));
            let e = run(&mut core, &["GET", "a"], reply).unwrap_err();
            if byte == b'$' {
                // A streamed string: refused at its `?`, before the line ends.
                assert!(
                    matches!(&e, Error::Protocol(p) if *p.kind() == resp_proto::ProtocolErrorKind::InvalidInteger),
                    "{e:?}"
                );
            } else {
                assert!(refused_as_resp3(&e, byte), "{e:?}");
            }
            assert!(core.is_broken());
        }
        let mut core = Core::new(&info(), Instant::now());
        // A raw HELLO 3 answers with a map, and from then on the connection is RESP3 ...
        let v = run(&mut core, &["HELLO", "3"], b"%1\r\n+proto\r\n:3\r\n").unwrap();
        assert!(matches!(v, Value::Map(_)));
        assert_eq!(core.state().protocol, Protocol::Resp3);
        assert_eq!(run(&mut core, &["GET", "a"], b"_\r\n").unwrap(), Value::Nil);
        // ... until RESET, whose answer and what follows are RESP2 again.
        run(&mut core, &["RESET"], b"+RESET\r\n").unwrap();
        let e = run(&mut core, &["GET", "a"], b"_\r\n").unwrap_err();
        assert!(refused_as_resp3(&e, b'_'), "{e:?}");
        // A HELLO 3 refused by the server leaves it RESP2.
        let mut core = Core::new(&info(), Instant::now());
        run(&mut core, &["HELLO", "3"], b"-NOPROTO sorry\r\n").unwrap();
        let e = run(&mut core, &["GET", "a"], b",1.5\r\n").unwrap_err();
        assert!(refused_as_resp3(&e, b','), "{e:?}");
        // HELLO 3 with options: RESP3 too, and the connection is no longer the configured one.
        let mut core = Core::new(&info(), Instant::now());
        run(&mut core, &["HELLO", "3", "SETNAME", "x"], b"%0\r\n").unwrap();
        assert_eq!(
            run(&mut core, &["GET", "a"], b"#t\r\n").unwrap(),
            Value::Boolean(true)
        );
        assert!(core.state().tainted);
        // A RESP3 connection restored: RESET (answered in RESP2), then HELLO 3 again.
        let i3 = info().with_protocol(Protocol::Resp3);
        let mut core = Core::new(&i3, Instant::now());
        core.handshake(&i3, None);
        core.handle_bytes(b"%0\r\n+PONG\r\n");
        assert!(matches!(core.poll_reply(Instant::now()), Ok(Poll::Idle)));
        run(&mut core, &["SELECT", "1"], b"+OK\r\n").unwrap();
        assert_eq!(core.verdict(), Verdict::Restore);
        core.restore_request(&i3, None);
        core.handle_bytes(b"+RESET\r\n%0\r\n+PONG\r\n");
        assert!(matches!(core.poll_reply(Instant::now()), Ok(Poll::Idle)));
        assert_eq!(core.verdict(), Verdict::Reuse);
        assert_eq!(run(&mut core, &["GET", "a"], b"_\r\n").unwrap(), Value::Nil);
    }

    #[test]
    fn one_deadline_per_reply_however_the_bytes_trickle() {
        let t0 = Instant::now();
        let mut core = Core::new(&info().with_read_timeout(Some(Duration::from_secs(2))), t0);
        core.queue(&[&cmd(&["GET", "k"])], 1, ReplyTimeout::Default, t0)
            .unwrap();
        core.handle_written();
        let reply = b"$100\r\n";
        let mut now = t0;
        let mut got = None;
        for (i, b) in reply.iter().chain([b'x'; 100].iter()).enumerate() {
            match core.poll_reply(now) {
                Ok(Poll::NeedInput(deadline)) => {
                    assert_eq!(deadline, Some(t0 + Duration::from_secs(2)), "byte {i}");
                }
                Err(e) => {
                    got = Some(e);
                    break;
                }
                Ok(other) => panic!("{other:?}"),
            }
            core.handle_bytes(&[*b]);
            now += Duration::from_millis(500);
        }
        assert!(matches!(got, Some(Error::Timeout)), "{got:?}");
        assert!(core.is_broken());
    }

    #[test]
    fn the_call_deadline_caps_every_wait() {
        let t0 = Instant::now();
        let mut core = Core::new(&info().with_timeout(Some(Duration::from_secs(10))), t0);
        core.set_call_deadline(Some(t0 + Duration::from_secs(1)));
        core.queue(&[&cmd(&["GET", "k"])], 1, ReplyTimeout::Exactly(None), t0)
            .unwrap();
        assert_eq!(core.write_deadline(), Some(t0 + Duration::from_secs(1)));
        core.handle_written();
        assert!(matches!(
            core.poll_reply(t0).unwrap(),
            Poll::NeedInput(Some(d)) if d == t0 + Duration::from_secs(1)
        ));
    }

    #[test]
    fn the_handshake_reports_its_first_error_after_reading_every_reply() {
        let i = info().with_auth(None, "secret").with_db(2);
        let mut core = Core::new(&i, Instant::now());
        core.handshake(&i, None);
        core.handle_bytes(
            b"-WRONGPASS invalid username-password pair\r\n-NOAUTH x\r\n-NOAUTH x\r\n",
        );
        let e = core.poll_reply(Instant::now()).unwrap_err();
        assert!(matches!(e, Error::Auth(_)), "{e:?}");
        assert!(core.is_broken());
    }

    #[test]
    fn bytes_sent_before_the_handshake_shift_its_answers_and_are_caught() {
        let i = info().with_db(1);
        let mut core = Core::new(&i, Instant::now());
        core.handshake(&i, None);
        // A greeting nobody asked for, then the real answers.
        core.handle_bytes(b"+OK\r\n+OK\r\n+PONG\r\n");
        let e = core.poll_reply(Instant::now()).unwrap_err();
        assert!(matches!(e, Error::OutOfStep(_)), "{e:?}");
        let mut core = Core::new(&info(), Instant::now());
        core.handshake(&info(), None);
        core.handle_bytes(b"$5\r\nhello\r\n+PONG\r\n");
        assert!(matches!(
            core.poll_reply(Instant::now()),
            Err(Error::OutOfStep(_))
        ));
    }

    #[test]
    fn a_user_not_allowed_to_ping_still_connects() {
        let mut core = Core::new(&info(), Instant::now());
        core.handshake(&info(), None);
        core.handle_bytes(b"-NOPERM this user has no permissions to run the 'ping' command\r\n");
        assert!(matches!(
            core.poll_reply(Instant::now()).unwrap(),
            Poll::Idle
        ));
        assert_eq!(core.verdict(), Verdict::Reuse);
    }

    #[test]
    fn pipelines_are_read_command_by_command_across_parts() {
        let mut core = Core::new(&info(), Instant::now());
        let a = cmd(&["SET", "k", "v"]);
        let b = cmd(&["SELECT", "4"]);
        let joined = [a.clone(), b.clone()].concat();
        // Split in the middle of a length line and of a payload.
        let (x, y) = joined.split_at(a.len() + 5);
        core.queue(&[x, y], 2, ReplyTimeout::Default, Instant::now())
            .unwrap();
        core.handle_bytes(b"+OK\r\n+OK\r\n");
        for _ in 0..2 {
            assert!(matches!(
                core.poll_reply(Instant::now()).unwrap(),
                Poll::Reply(_)
            ));
        }
        assert_eq!(core.state().db, 4);
        let e = core.queue(&[&joined], 3, ReplyTimeout::Default, Instant::now());
        assert!(matches!(e, Err(Error::Unsupported(_))), "count mismatch");
        assert_eq!(core.pending_replies(), 0);
    }

    #[test]
    fn a_request_split_at_any_byte_reads_the_same() {
        let long = "v".repeat(300);
        let request = [
            cmd(&["SET", "k", &long]),
            cmd(&["CLIENT", "TRACKING", "on"]),
            cmd(&["select", "12"]),
            cmd(&["GET", "k"]),
        ]
        .concat();
        let whole: Vec<Kind> = {
            let parts = [&request[..]];
            let mut r = Requests::new(&parts);
            std::iter::from_fn(|| r.next().unwrap()).collect()
        };
        assert_eq!(
            whole,
            [
                Kind::Plain(Effect::None),
                Kind::Plain(Effect::Tracking(true)),
                Kind::Plain(Effect::Select(12)),
                Kind::Plain(Effect::None),
            ]
        );
        for i in 0..=request.len() {
            for j in i..=request.len() {
                let parts = [&request[..i], &request[i..j], &request[j..]];
                let mut r = Requests::new(&parts);
                let got: Vec<Kind> = std::iter::from_fn(|| r.next().unwrap()).collect();
                assert_eq!(got, whole, "split at {i} and {j}");
            }
        }
    }

    #[test]
    fn an_unreadable_request_taints() {
        let mut core = Core::new(&info(), Instant::now());
        core.queue(&[b"PING\r\n"], 1, ReplyTimeout::Default, Instant::now())
            .unwrap();
        core.handle_bytes(b"+PONG\r\n");
        assert!(matches!(
            core.poll_reply(Instant::now()).unwrap(),
            Poll::Reply(_)
        ));
        assert_eq!(core.verdict(), Verdict::Restore);
    }

    #[test]
    fn a_small_value_never_pins_a_large_buffer() {
        let mut core = Core::new(&info(), Instant::now());
        let big = vec![b'x'; 4 << 20];
        let mut reply = format!("${}\r\n", big.len()).into_bytes();
        reply.extend_from_slice(&big);
        reply.extend_from_slice(b"\r\n");
        core.queue(
            &[&cmd(&["GET", "big"])],
            1,
            ReplyTimeout::Default,
            Instant::now(),
        )
        .unwrap();
        let mut fed = 0;
        let value = loop {
            match core.poll_reply(Instant::now()).unwrap() {
                Poll::Reply(v) => break v,
                Poll::NeedInput(_) => {
                    let room = core.input_buffer();
                    let n = room.len().min(reply.len() - fed);
                    room[..n].copy_from_slice(&reply[fed..fed + n]);
                    core.handle_input(n);
                    fed += n;
                }
                Poll::Idle => unreachable!(),
            }
        };
        assert_eq!(value.as_bytes().map(|b| b.len()), Some(big.len()));
        assert_eq!(core.allocation, 0, "the large allocation is let go");
        core.queue(
            &[&cmd(&["GET", "small"])],
            1,
            ReplyTimeout::Default,
            Instant::now(),
        )
        .unwrap();
        let room = core.input_buffer();
        assert!(room.len() <= MAX_RETAINED, "a fresh small buffer");
    }

    #[test]
    fn the_classifier_knows_the_state_commands() {
        for words in [
            &["SELECT", "1"][..],
            &["MULTI"],
            &["EXEC"],
            &["DISCARD"],
            &["WATCH", "k"],
            &["UNWATCH"],
            &["RESET"],
            &["QUIT"],
            &["CLIENT", "REPLY", "OFF"],
            &["CLIENT", "TRACKING", "ON"],
            &["CLIENT", "SETNAME", "n"],
            &["READONLY"],
            &["READWRITE"],
            &["HELLO", "3"],
            &["AUTH", "p"],
            &["SUBSCRIBE", "c"],
            &["MONITOR"],
        ] {
            assert!(changes_connection_state(words), "{words:?}");
        }
        for words in [
            &["GET", "k"][..],
            &["SET", "k", "v"],
            &["CLIENT", "ID"],
            &["SCRIPT", "LOAD", "x"],
        ] {
            assert!(!changes_connection_state(words), "{words:?}");
        }
    }

    #[test]
    fn tracking_is_configured_state_and_restored_with_the_current_redirect() {
        let tracking = crate::Tracking::new(crate::TrackingMode::Default);
        tracking.set_redirect(Some(7));
        let mut info = info();
        info.tracking = Some(tracking.clone());
        let mut core = Core::new(&info, Instant::now());
        let hs = core.handshake(&info, None);
        assert_eq!(
            &hs[..],
            &[
                cmd(&["CLIENT", "TRACKING", "ON", "REDIRECT", "7"]),
                cmd(&["PING"])
            ]
            .concat()[..]
        );
        core.handle_bytes(b"+OK\r\n+PONG\r\n");
        assert!(matches!(
            core.poll_reply(Instant::now()).unwrap(),
            Poll::Idle
        ));
        assert!(core.state().tracking);
        assert_eq!(core.tracking_redirect(), Some(7));
        assert_eq!(core.verdict(), Verdict::Reuse);
        let ended = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
        let seen = ended.clone();
        tracking.on_end(move |serial| seen.lock().push(serial));
        let first = core.tracking_registration().unwrap().clone();
        // RESET turns tracking off: the connection is not the configured one any more,
        // and what the server remembered for it is gone from the moment it is sent.
        run(&mut core, &["RESET"], b"+RESET\r\n").unwrap();
        assert!(first.is_ended());
        assert_eq!(core.tracking_redirect(), None);
        assert_eq!(*ended.lock(), vec![first.serial()]);
        assert!(!core.state().tracking);
        assert_eq!(core.verdict(), Verdict::Restore);
        // The invalidation connection was replaced meanwhile: the restore redirects anew.
        tracking.set_redirect(Some(9));
        let out = core.restore_request(&info, None);
        assert_eq!(
            &out[..],
            &[
                cmd(&["RESET"]),
                cmd(&["CLIENT", "TRACKING", "ON", "REDIRECT", "9"]),
                cmd(&["PING"])
            ]
            .concat()[..]
        );
        core.handle_bytes(b"+RESET\r\n+OK\r\n+PONG\r\n");
        assert!(matches!(
            core.poll_reply(Instant::now()).unwrap(),
            Poll::Idle
        ));
        assert!(core.state().tracking);
        assert_eq!(core.tracking_redirect(), Some(9));
        assert_eq!(core.verdict(), Verdict::Reuse);
        let second = core.tracking_registration().unwrap().clone();
        assert_ne!(first.serial(), second.serial());
        // A caller's own CLIENT TRACKING ON may name another target: restored too, and
        // the registration ends.
        run(
            &mut core,
            &["CLIENT", "TRACKING", "ON", "REDIRECT", "5"],
            b"+OK\r\n",
        )
        .unwrap();
        assert!(second.is_ended());
        assert_eq!(core.verdict(), Verdict::Restore);
        // Without a target (the invalidation connection is down) tracking stays off.
        tracking.set_redirect(None);
        let out = core.restore_request(&info, None);
        assert_eq!(&out[..], &[cmd(&["RESET"]), cmd(&["PING"])].concat()[..]);
        core.handle_bytes(b"+RESET\r\n+PONG\r\n");
        assert!(matches!(
            core.poll_reply(Instant::now()).unwrap(),
            Poll::Idle
        ));
        assert_eq!(core.tracking_redirect(), None);
        assert!(!core.state().tracking);
        assert_eq!(core.verdict(), Verdict::Reuse);
        // A closed connection's registration ends with it.
        tracking.set_redirect(Some(11));
        let mut core = Core::new(&info, Instant::now());
        core.handshake(&info, None);
        let third = core.tracking_registration().unwrap().clone();
        drop(core);
        assert!(third.is_ended());
        assert_eq!(
            *ended.lock(),
            vec![first.serial(), second.serial(), third.serial()]
        );
    }
}
