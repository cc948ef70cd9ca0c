//! The multiplexer: the decisions of one connection shared by many callers, as a sans-I/O
//! state machine beside the connection core.
//!
//! Callers' requests are queued ([`Mux::submit`], their bytes copied, a large value
//! shared); the machine gathers them into batches, records each with the core in the
//! order its bytes go out, hands out the bytes to write ([`Mux::poll_transmit`]), takes the
//! bytes read ([`Mux::input_buffer`], [`Mux::handle_input`]), and answers the caller at the
//! head of the list of those waiting with each reply the core produces ([`Mux::poll`],
//! [`Mux::next_answer`]). It reads no clock and touches no socket: a driver passes the time
//! in, moves the bytes and sleeps until the deadline [`Step::Wait`] gives. The tokio driver
//! is `aio::Multiplexed`.
//!
//! The look: before every batch, the machine asks the driver to look at the transport
//! without waiting ([`Transmit::Look`]; [`Transport::readiness`](crate::Transport::readiness)
//! on the blocking side), or to read what it holds now. Bytes there were sent before the
//! batch: on a connection that owes nothing they belong to nobody, and behind replies
//! still owed anything past those replies belongs to nobody either; without the look
//! they would be read as a reply to the batch. A driver's own notion of readiness (an
//! async reactor's last report) can lag behind the socket, so the look must be a fresh
//! one.

use crate::machine::{Core, Poll, ReplyTimeout};
use crate::{Error, Readiness};
use bytes::{Buf, Bytes, BytesMut};
use resp_proto::Value;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Most bytes gathered into one batch; what is queued beyond goes in the next one.
const MAX_BATCH: usize = 1 << 20;

/// The answers of the requests in flight are handed out in this many groups at least
/// ([`Mux::answer_group`]). Measured with 50 callers on one connection over loopback
/// (docs/benchmarks.md): one group halves the rate, four to ten give the most.
const ANSWER_GROUPS: usize = 8;

/// A request part at least this long is written from its own buffer, not copied into the
/// batch: a large value is held once.
pub const SHARED_PART: usize = 64 * 1024;

/// Wait before the first reconnect attempt after a failed one, doubled after each further
/// failure up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(10);

/// Longest wait between reconnect attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// How a request ended, as [`Mux::next_answer`] gives it for its waiter.
#[derive(Debug)]
pub enum Outcome {
    /// Its replies, in order; server errors as [`Value::Error`].
    Replies(Replies),
    /// The connection failed after the request's bytes began to go out: it may have run.
    Failed(Error),
    /// The connection failed (or a look found it unusable) before any byte of the request
    /// was written: it never reached the server and may be sent on another connection.
    Unsent(Error),
    /// The core refused the request (a SUBSCRIBE, a count of replies that does not match
    /// its commands): nothing of it was sent, and it would be refused anywhere.
    Refused(Error),
}

/// The replies to one request: one held inline (the common case costs no allocation), or
/// several.
#[derive(Debug)]
pub enum Replies {
    /// Nothing yet (only while replies are being gathered).
    None,
    /// One reply.
    One(Value),
    /// Several, in order.
    Many(Vec<Value>),
}

impl Replies {
    fn push(&mut self, v: Value, want: usize) {
        *self = match std::mem::replace(self, Replies::None) {
            Replies::None if want == 1 => Replies::One(v),
            Replies::None => {
                let mut all = Vec::with_capacity(want);
                all.push(v);
                Replies::Many(all)
            }
            Replies::One(first) => Replies::Many(vec![first, v]),
            Replies::Many(mut all) => {
                all.push(v);
                Replies::Many(all)
            }
        };
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        match self {
            Replies::None => 0,
            Replies::One(_) => 1,
            Replies::Many(all) => all.len(),
        }
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The replies as a vector.
    pub fn into_vec(self) -> Vec<Value> {
        match self {
            Replies::None => Vec::new(),
            Replies::One(v) => vec![v],
            Replies::Many(all) => all,
        }
    }

    /// The last reply, if any (the only one of a single command).
    pub fn into_last(self) -> Option<Value> {
        match self {
            Replies::None => None,
            Replies::One(v) => Some(v),
            Replies::Many(mut all) => all.pop(),
        }
    }
}

/// The body of a request as a caller gives it to [`Mux::submit`].
#[derive(Clone, Copy, Debug)]
pub enum Body<'a> {
    /// Copied into the machine's buffer when the request is queued.
    Copied(&'a [u8]),
    /// Written from its own buffer, which the machine shares: a large value (64 KiB or
    /// more, [`SHARED_PART`]) is then held once.
    Shared(&'a Bytes),
}

/// What the driver must write next, from [`Mux::poll_transmit`].
#[derive(Debug)]
pub enum Transmit<'a> {
    /// Nothing to write.
    Idle,
    /// Look at the transport without waiting and report what was found with
    /// [`Mux::handle_look`], then ask again.
    Look,
    /// Write these bytes (as many as the transport takes) and report how many went with
    /// [`Mux::transmitted`].
    Write(&'a [u8]),
    /// As `Write`, from a buffer the driver may keep a handle on while it writes (a large
    /// value), instead of copying it.
    WriteShared(&'a Bytes),
}

/// What [`Mux::poll`] has for the driver.
#[derive(Debug)]
pub enum Step {
    /// A RESP3 push (an invalidation, say): no caller's reply.
    Push(Value),
    /// Every reply read so far was handed out; read more, waking no later than this
    /// deadline (`None`: none) to call [`Mux::handle_timeout`].
    Wait(Option<Instant>),
    /// The connection failed: every caller was told; the driver closes the transport.
    Failed,
}

/// A request submitted and not yet written: its bytes in the machine's `pending` buffer
/// (and a shared body, if it has one).
#[derive(Debug)]
struct Queued<W> {
    copied: usize,
    shared: Option<Bytes>,
    replies: usize,
    timeout: ReplyTimeout,
    waiter: W,
}

/// A caller whose request was written, in the order the core owes the replies.
#[derive(Debug)]
struct Waiting<W> {
    waiter: W,
    want: usize,
    got: Replies,
}

/// Bytes to write: the batch buffer, and large parts written from their own buffers.
#[derive(Debug, Default)]
struct Outgoing {
    /// Small requests, copied together.
    batch: BytesMut,
    /// In write order: `Batch(n)` is the next `n` bytes of `batch`.
    chunks: VecDeque<Chunk>,
}

#[derive(Debug)]
enum Chunk {
    Batch(usize),
    Shared(Bytes),
}

impl Outgoing {
    fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    fn push_copied(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.batch.extend_from_slice(bytes);
        match self.chunks.back_mut() {
            Some(Chunk::Batch(n)) => *n += bytes.len(),
            _ => self.chunks.push_back(Chunk::Batch(bytes.len())),
        }
    }

    fn push_shared(&mut self, bytes: Bytes) {
        if !bytes.is_empty() {
            self.chunks.push_back(Chunk::Shared(bytes));
        }
    }

    fn front(&self) -> Option<Transmit<'_>> {
        match self.chunks.front()? {
            Chunk::Batch(n) => Some(Transmit::Write(&self.batch[..*n])),
            Chunk::Shared(b) => Some(Transmit::WriteShared(b)),
        }
    }

    fn advance(&mut self, mut n: usize) {
        while n > 0 {
            let Some(front) = self.chunks.front_mut() else {
                return;
            };
            let (left, taken) = match front {
                Chunk::Batch(len) => {
                    let k = n.min(*len);
                    self.batch.advance(k);
                    *len -= k;
                    (*len, k)
                }
                Chunk::Shared(b) => {
                    let k = n.min(b.len());
                    b.advance(k);
                    (b.len(), k)
                }
            };
            n -= taken;
            if left == 0 {
                self.chunks.pop_front();
            }
        }
        if self.chunks.is_empty() {
            // Nothing is left to write: the buffer's space is reused from its start, and a
            // large allocation is let go.
            if self.batch.capacity() > 2 * MAX_BATCH {
                self.batch = BytesMut::new();
            } else {
                self.batch.clear();
            }
        }
    }

    fn clear(&mut self) {
        self.chunks.clear();
        self.batch.clear();
    }
}

/// One connection shared by many callers, as a sans-I/O machine (see the [module
/// docs](self)); `W` names a caller (a slot of the driver's, a cell in a test).
///
/// The driver's loop, in any order that repeats until nothing changes:
/// - new requests: [`submit`](Mux::submit) (and [`cancel`](Mux::cancel) for a caller that
///   gave up);
/// - writing: [`poll_transmit`](Mux::poll_transmit) until [`Transmit::Idle`] or the
///   transport would block, answering [`Transmit::Look`] with
///   [`handle_look`](Mux::handle_look) and reporting writes with
///   [`transmitted`](Mux::transmitted);
/// - reading: into [`input_buffer`](Mux::input_buffer), then
///   [`handle_input`](Mux::handle_input) (or [`handle_closed`](Mux::handle_closed),
///   [`fail`](Mux::fail) on an I/O error);
/// - handing out: [`poll`](Mux::poll) until [`Step::Wait`] or [`Step::Failed`], then every
///   [`next_answer`](Mux::next_answer) to its caller;
/// - timers: at the deadline the last [`Step::Wait`] gave,
///   [`handle_timeout`](Mux::handle_timeout), then [`poll`](Mux::poll) again.
///
/// Every request submitted is answered once: with its replies, or, on a failure,
/// [`Outcome::Failed`] if its bytes began to go out and [`Outcome::Unsent`] if not.
#[derive(Debug)]
pub struct Mux<W> {
    core: Core,
    /// Submitted, not yet recorded with the core: nothing of them was written.
    queued: VecDeque<Queued<W>>,
    /// The copied bytes of the queued requests, in order.
    pending: BytesMut,
    /// Recorded with the core, in the order their replies are owed.
    waiting: VecDeque<Waiting<W>>,
    out: Outgoing,
    /// A look found the transport quiet: the next batch may go. Consumed by that batch.
    looked: bool,
    /// A look found bytes that may be owed replies or a RESP3 push: no batch goes until
    /// they are read and judged.
    unread_on_transport: bool,
    failure: Option<Error>,
    /// Answers for the driver to hand out.
    answers: VecDeque<(W, Outcome)>,
}

impl<W> Mux<W> {
    /// A machine over an open connection's core (its handshake done).
    pub fn new(core: Core) -> Mux<W> {
        Mux {
            core,
            queued: VecDeque::new(),
            pending: BytesMut::new(),
            waiting: VecDeque::new(),
            out: Outgoing::default(),
            looked: false,
            unread_on_transport: false,
            failure: None,
            answers: VecDeque::new(),
        }
    }

    /// Queues a request of `replies` commands (`head` then `body`, encoded) to be written
    /// with the next batch; copies what it keeps, except a [`Body::Shared`].
    ///
    /// # Errors
    /// The waiter back, nothing queued, when the connection has failed, or when the
    /// request announces no replies (the core would take it for a subscriber's and every
    /// caller's connection would become a stream of pushes).
    pub fn submit(
        &mut self,
        head: &[u8],
        body: Body<'_>,
        replies: usize,
        timeout: ReplyTimeout,
        waiter: W,
    ) -> Result<(), W> {
        if self.failure.is_some() || replies == 0 {
            return Err(waiter);
        }
        self.pending.extend_from_slice(head);
        let (copied, shared) = match body {
            Body::Copied(b) => {
                self.pending.extend_from_slice(b);
                (head.len() + b.len(), None)
            }
            Body::Shared(b) => (head.len(), Some(b.clone())),
        };
        self.queued.push_back(Queued {
            copied,
            shared,
            replies,
            timeout,
            waiter,
        });
        Ok(())
    }

    /// A caller gave up: if its request is not written yet, it is taken out and never
    /// sent (true); otherwise its replies will be read and answered as usual, for the
    /// driver to drop (false).
    pub fn cancel(&mut self, waiter: &W) -> bool
    where
        W: PartialEq,
    {
        let mut offset = 0;
        for (i, q) in self.queued.iter().enumerate() {
            if q.waiter == *waiter {
                let len = q.copied;
                // The bytes after it move down over its own.
                let tail = self.pending.split_off(offset);
                self.pending.extend_from_slice(&tail[len..]);
                self.queued.remove(i);
                return true;
            }
            offset += q.copied;
        }
        false
    }

    /// The bytes to write next, recording a new batch with the core when the last one is
    /// written. Each batch is preceded by a [`Transmit::Look`], and bytes read but not yet
    /// judged are judged first.
    pub fn poll_transmit(&mut self, now: Instant) -> Transmit<'_> {
        if self.failure.is_some() {
            return Transmit::Idle;
        }
        if self.out.is_empty() {
            if self.queued.is_empty() || self.unread_on_transport {
                return Transmit::Idle;
            }
            // Bytes read and not yet judged: the replies they finish are handed out,
            // pushes set aside, and an extra reply among them fails the connection, before
            // a request of the batch could be matched to it.
            if self.core.has_unread() {
                self.decode(now);
                if self.failure.is_some() {
                    return Transmit::Idle;
                }
            }
            if self.core.pending_replies() == 0 {
                if let Err(e) = self.core.judge_before_request() {
                    self.fail(e);
                    return Transmit::Idle;
                }
            }
            // Every batch, owing replies or not: an extra reply may arrive right behind
            // the last one owed, and must be read before the batch is recorded.
            if !self.looked {
                return Transmit::Look;
            }
            self.looked = false;
            self.take_batch(now);
        }
        self.out.front().unwrap_or(Transmit::Idle)
    }

    /// What the look [`Transmit::Look`] asked for found. Bytes waiting on a RESP2
    /// connection that owes nothing, or a closed transport, fail the connection before
    /// any queued request is matched to them; the queued requests are answered
    /// [`Outcome::Unsent`]. Bytes on a connection that owes replies, or on a RESP3
    /// connection (a push comes at any time), may be its own: no batch goes until the
    /// driver has read them ([`Mux::handle_input`]) and the core has judged them (replies
    /// and pushes are handed out, anything else fails the connection as above).
    ///
    /// A driver that can read without waiting reads instead of looking
    /// ([`Mux::handle_bytes`], then [`Mux::poll_transmit`] asks again until a look finds
    /// the transport quiet).
    pub fn handle_look(&mut self, readiness: Readiness) {
        match readiness {
            // A transport that cannot tell still gets the core's checks.
            Readiness::Quiet | Readiness::Unknown => self.looked = true,
            Readiness::Readable
                if self.core.pending_replies() > 0
                    || self.core.state().protocol == crate::Protocol::Resp3 =>
            {
                self.unread_on_transport = true;
            }
            Readiness::Readable => self.fail(Error::OutOfStep(
                "bytes nobody asked for arrived on an idle connection".into(),
            )),
            Readiness::Closed => self.fail(Error::closed()),
        }
    }

    /// `n` bytes of what [`Mux::poll_transmit`] gave were written.
    pub fn transmitted(&mut self, n: usize) {
        self.out.advance(n);
        if self.out.is_empty() {
            self.core.handle_written();
        }
    }

    /// Records queued requests with the core, in order, until the batch is full.
    fn take_batch(&mut self, now: Instant) {
        let mut size = 0;
        while size < MAX_BATCH {
            let Some(q) = self.queued.pop_front() else {
                break;
            };
            let copied = self.pending.split_to(q.copied);
            let shared = q.shared.as_deref().unwrap_or_default();
            // Recorded with the core and in the waiting list in one step, in the order the
            // bytes go out: the core's owed queue and the list agree.
            match self
                .core
                .queue(&[&copied, shared], q.replies, q.timeout, now)
            {
                Ok(()) => {
                    size += copied.len() + shared.len();
                    self.out.push_copied(&copied);
                    if let Some(b) = q.shared {
                        self.out.push_shared(b);
                    }
                    self.waiting.push_back(Waiting {
                        waiter: q.waiter,
                        want: q.replies,
                        got: Replies::None,
                    });
                }
                // Refused by the core (a SUBSCRIBE, a count that does not match): nothing
                // of it was recorded or sent.
                Err(e) => self.answers.push_back((q.waiter, Outcome::Refused(e))),
            }
        }
        if self.queued.is_empty() {
            // Its space is reused from the start for the next requests.
            self.pending.clear();
        }
    }

    /// Space to read into; pass the number of bytes read to [`Mux::handle_input`].
    pub fn input_buffer(&mut self) -> &mut [u8] {
        self.core.input_buffer()
    }

    /// `n` bytes were read into [`Mux::input_buffer`].
    pub fn handle_input(&mut self, n: usize) {
        self.core.handle_input(n);
        self.unread_on_transport = false;
    }

    /// Bytes that arrived by other means (the tokio driver's own buffer, a test).
    pub fn handle_bytes(&mut self, bytes: &[u8]) {
        self.core.handle_bytes(bytes);
        self.unread_on_transport = false;
    }

    /// The peer closed the stream: every caller is told.
    pub fn handle_closed(&mut self) {
        self.core.handle_closed();
        self.fail(Error::closed());
    }

    /// Gives every complete reply to its caller (see [`Mux::next_answer`]) and returns the
    /// next thing the driver must act on: a push, a wait for more bytes, or the failure.
    pub fn poll(&mut self, now: Instant) -> Step {
        if self.failure.is_some() {
            return Step::Failed;
        }
        let Some(deadline) = self.decode(now) else {
            return Step::Failed;
        };
        match self.core.poll_push() {
            Ok(Some(push)) => return Step::Push(push),
            Ok(None) => {}
            Err(e) => {
                self.fail(e);
                return Step::Failed;
            }
        }
        if self.core.pending_replies() == 0 && self.core.state() != self.core.configured() {
            // A request changed what every later caller would run in: no one may use this
            // connection again.
            self.fail(Error::Unsupported(
                "a command changed the state of a shared connection; it was closed",
            ));
            return Step::Failed;
        }
        Step::Wait(earliest(deadline, self.write_deadline()))
    }

    /// Hands every complete reply to its caller; the core's next deadline, or `None` once
    /// the connection failed (an extra reply, a protocol error, a reply past its time).
    fn decode(&mut self, now: Instant) -> Option<Option<Instant>> {
        loop {
            match self.core.poll_reply(now) {
                Ok(Poll::Reply(v)) => {
                    let Some(head) = self.waiting.front_mut() else {
                        self.fail(Error::OutOfStep("a reply with no caller waiting".into()));
                        return None;
                    };
                    head.got.push(v, head.want);
                    if head.got.len() == head.want {
                        if let Some(done) = self.waiting.pop_front() {
                            self.answers
                                .push_back((done.waiter, Outcome::Replies(done.got)));
                        }
                    }
                }
                Ok(Poll::NeedInput(d)) => return Some(d),
                Ok(Poll::Idle) => return Some(None),
                Err(e) => {
                    self.fail(e);
                    return None;
                }
            }
        }
    }

    /// The next answer for a caller: its waiter and how its request ended. Every request
    /// submitted gets one, once.
    pub fn next_answer(&mut self) -> Option<(W, Outcome)> {
        self.answers.pop_front()
    }

    fn write_deadline(&self) -> Option<Instant> {
        if self.out.is_empty() {
            None
        } else {
            self.core.write_deadline()
        }
    }

    /// The time is `now`: a write or reply past its deadline fails the connection with
    /// [`Error::Timeout`]. Replies complete by now are handed out by the next
    /// [`Mux::poll`].
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.failure.is_some() {
            return;
        }
        if self.write_deadline().is_some_and(|d| now >= d) {
            self.fail(Error::Timeout);
        }
        // A reply's deadline is judged by the core at the next poll.
    }

    /// Ends the connection with `e`: every caller waiting gets a copy
    /// ([`Outcome::Failed`]), every one whose request was not written yet
    /// [`Outcome::Unsent`]. Later failures keep the first error.
    pub fn fail(&mut self, e: Error) {
        self.core.mark_broken();
        let e = self.failure.get_or_insert(e);
        for w in self.waiting.drain(..) {
            self.answers
                .push_back((w.waiter, Outcome::Failed(e.duplicate())));
        }
        for q in self.queued.drain(..) {
            self.answers
                .push_back((q.waiter, Outcome::Unsent(e.duplicate())));
        }
        self.pending.clear();
        self.out.clear();
    }

    /// The error that ended the connection, if it failed.
    pub fn failure(&self) -> Option<&Error> {
        self.failure.as_ref()
    }

    /// True once the connection failed.
    pub fn is_failed(&self) -> bool {
        self.failure.is_some()
    }

    /// Callers whose request was written and whose replies are not all in.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// How many answers to hand out before the callers they wake have run and what they
    /// send next is written: a share of the requests in flight, so that the server works
    /// on the next requests while this side finishes the rest (a whole window handed out
    /// at once makes the two sides take turns, each idle while the other works).
    pub fn answer_group(&self) -> usize {
        ((self.waiting.len() + self.answers.len()) / ANSWER_GROUPS).max(1)
    }

    /// Requests submitted and not yet written.
    pub fn queued(&self) -> usize {
        self.queued.len()
    }

    /// True while [`Mux::poll_transmit`] has bytes to give: requests queued, or a batch
    /// not yet written whole.
    pub fn wants_to_write(&self) -> bool {
        self.failure.is_none() && !(self.queued.is_empty() && self.out.is_empty())
    }

    /// The connection core.
    pub fn core(&self) -> &Core {
        &self.core
    }
}

/// The pacing of reconnect attempts after failed ones: 10 ms after the first failure,
/// doubling up to 1 s; a success starts over.
#[derive(Clone, Debug, Default)]
pub struct Backoff {
    failures: u32,
    next_attempt: Option<Instant>,
}

impl Backoff {
    /// Whether an attempt may start at `now`; otherwise how long until one may.
    ///
    /// # Errors
    /// The wait left, when the last attempt failed too recently.
    pub fn check(&self, now: Instant) -> Result<(), Duration> {
        match self.next_attempt {
            Some(next) if now < next => Err(next - now),
            _ => Ok(()),
        }
    }

    /// An attempt failed at `now`.
    pub fn failed(&mut self, now: Instant) {
        self.failures += 1;
        let wait = FIRST_BACKOFF
            .saturating_mul(1 << (self.failures - 1).min(16))
            .min(MAX_BACKOFF);
        self.next_attempt = Some(now + wait);
    }

    /// An attempt succeeded: the next failure waits the shortest time again.
    pub fn succeeded(&mut self) {
        *self = Backoff::default();
    }

    /// Failed attempts in a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ConnectionInfo;
    use std::collections::HashMap;

    /// A machine whose callers are numbers, with the answers each got.
    struct Harness {
        mux: Mux<u32>,
        next: u32,
        answers: HashMap<u32, Outcome>,
    }

    impl Harness {
        fn new(now: Instant) -> Harness {
            Self::with(ConnectionInfo::tcp("127.0.0.1", 6379), now)
        }

        fn with(info: ConnectionInfo, now: Instant) -> Harness {
            Harness {
                mux: Mux::new(Core::new(&info, now)),
                next: 0,
                answers: HashMap::new(),
            }
        }

        fn submit(&mut self, args: &[&str]) -> u32 {
            let id = self.next;
            self.next += 1;
            let bytes = command(args);
            let r = self
                .mux
                .submit(&[], Body::Copied(&bytes), 1, ReplyTimeout::Default, id);
            assert!(r.is_ok());
            id
        }

        /// Writes everything the machine has, answering looks with `look`; returns the
        /// bytes.
        fn drain(&mut self, now: Instant, look: Readiness) -> Vec<u8> {
            let mut wire = Vec::new();
            loop {
                let n = match self.mux.poll_transmit(now) {
                    Transmit::Idle => break,
                    Transmit::Look => {
                        self.mux.handle_look(look);
                        continue;
                    }
                    Transmit::Write(bytes) => {
                        wire.extend_from_slice(bytes);
                        bytes.len()
                    }
                    Transmit::WriteShared(bytes) => {
                        wire.extend_from_slice(bytes);
                        bytes.len()
                    }
                };
                self.mux.transmitted(n);
            }
            self.collect();
            wire
        }

        fn poll(&mut self, now: Instant) -> Step {
            let step = self.mux.poll(now);
            self.collect();
            step
        }

        fn collect(&mut self) {
            while let Some((id, outcome)) = self.mux.next_answer() {
                assert!(self.answers.insert(id, outcome).is_none(), "answered twice");
            }
        }

        fn take(&mut self, id: u32) -> Option<Outcome> {
            self.answers.remove(&id)
        }

        fn replies(&mut self, id: u32) -> Vec<Value> {
            match self.take(id) {
                Some(Outcome::Replies(r)) => r.into_vec(),
                other => panic!("expected replies, got {other:?}"),
            }
        }
    }

    fn command(args: &[&str]) -> Bytes {
        let mut out = BytesMut::new();
        resp_proto::encode_command(&mut out, args);
        out.freeze()
    }

    fn bulk(s: &'static str) -> Value {
        Value::BulkString(Bytes::from_static(s.as_bytes()))
    }

    #[test]
    fn an_idle_connection_is_looked_at_before_it_carries_a_request() {
        let now = Instant::now();
        let mut h = Harness::new(now);
        let a = h.submit(&["GET", "a"]);
        assert!(matches!(h.mux.poll_transmit(now), Transmit::Look));
        // Asked again without an answer, it asks again: no batch goes unlooked.
        assert!(matches!(h.mux.poll_transmit(now), Transmit::Look));
        h.mux.handle_look(Readiness::Quiet);
        assert!(matches!(h.mux.poll_transmit(now), Transmit::Write(_)));
        h.mux.transmitted(command(&["GET", "a"]).len());
        // While a reply is owed, the next batch is looked before too.
        let b = h.submit(&["GET", "b"]);
        assert!(matches!(h.mux.poll_transmit(now), Transmit::Look));
        h.mux.handle_look(Readiness::Quiet);
        assert!(matches!(h.mux.poll_transmit(now), Transmit::Write(_)));
        h.mux.transmitted(command(&["GET", "b"]).len());
        h.mux.handle_bytes(b"$1\r\nA\r\n$1\r\nB\r\n");
        assert!(matches!(h.poll(now), Step::Wait(None)));
        assert_eq!(h.replies(a), vec![bulk("A")]);
        assert_eq!(h.replies(b), vec![bulk("B")]);
        // Idle again: the next request needs a fresh look.
        h.submit(&["GET", "c"]);
        assert!(matches!(h.mux.poll_transmit(now), Transmit::Look));
    }

    #[test]
    fn an_extra_reply_read_behind_an_owed_one_fails_the_connection_before_the_next_batch() {
        let now = Instant::now();
        let mut h = Harness::new(now);
        let a = h.submit(&["GET", "a"]);
        h.drain(now, Readiness::Quiet);
        // A's reply and an extra behind it arrive before B's request is written.
        let b = h.submit(&["GET", "b"]);
        assert!(matches!(h.mux.poll_transmit(now), Transmit::Look));
        // A driver that reads at once hands the bytes over instead of a look ...
        h.mux.handle_bytes(b"$1\r\nA\r\n+OK\r\n");
        // ... and they are judged before B is recorded: the core sees bytes behind the
        // last reply owed, so A fails, and B goes unsent, to be sent on another connection.
        assert!(matches!(h.mux.poll_transmit(now), Transmit::Idle));
        h.collect();
        assert!(matches!(
            h.take(a),
            Some(Outcome::Failed(Error::OutOfStep(_)))
        ));
        assert!(matches!(
            h.take(b),
            Some(Outcome::Unsent(Error::OutOfStep(_)))
        ));
    }

    #[test]
    fn bytes_a_look_finds_behind_owed_replies_are_read_before_the_next_batch() {
        let now = Instant::now();
        let mut h = Harness::new(now);
        let a = h.submit(&["GET", "a"]);
        h.drain(now, Readiness::Quiet);
        let b = h.submit(&["GET", "b"]);
        // A look that cannot read finds bytes: they may be A's reply, so nothing goes
        // until they are read.
        assert!(h.drain(now, Readiness::Readable).is_empty());
        assert!(!h.mux.is_failed());
        h.mux.handle_bytes(b"$1\r\nA\r\n");
        assert!(matches!(h.poll(now), Step::Wait(_)));
        assert_eq!(h.replies(a), vec![bulk("A")]);
        // Read and judged: B goes after a fresh look.
        assert_eq!(
            h.drain(now, Readiness::Quiet),
            command(&["GET", "b"]).to_vec()
        );
        h.mux.handle_bytes(b"$1\r\nB\r\n");
        h.poll(now);
        assert_eq!(h.replies(b), vec![bulk("B")]);
    }

    #[test]
    fn bytes_found_by_the_look_fail_the_connection_and_leave_requests_unsent() {
        let now = Instant::now();
        let mut h = Harness::new(now);
        let a = h.submit(&["GET", "a"]);
        let b = h.submit(&["GET", "b"]);
        assert!(h.drain(now, Readiness::Readable).is_empty());
        for id in [a, b] {
            assert!(matches!(
                h.take(id),
                Some(Outcome::Unsent(Error::OutOfStep(_)))
            ));
        }
        assert!(h.mux.is_failed());
        // A failed machine takes nothing more.
        let ping = command(&["PING"]);
        let refused = h
            .mux
            .submit(&[], Body::Copied(&ping), 1, ReplyTimeout::Default, 99);
        assert_eq!(refused, Err(99));
        // A closed transport likewise.
        let mut h = Harness::new(now);
        let c = h.submit(&["GET", "c"]);
        h.drain(now, Readiness::Closed);
        assert!(matches!(h.take(c), Some(Outcome::Unsent(Error::Io(_)))));
    }

    /// A machine over a connection that negotiated RESP3.
    fn resp3(now: Instant) -> Harness {
        let info = ConnectionInfo::tcp("127.0.0.1", 6379).with_protocol(crate::Protocol::Resp3);
        let mut core = Core::new(&info, now);
        core.handshake(&info, None);
        core.handle_bytes(b"%0\r\n+PONG\r\n");
        assert!(matches!(core.poll_reply(now), Ok(Poll::Idle)));
        Harness {
            mux: Mux::new(core),
            next: 0,
            answers: HashMap::new(),
        }
    }

    #[test]
    fn on_resp3_bytes_found_by_the_look_are_read_first_a_push_is_kept_and_anything_else_fails() {
        let now = Instant::now();
        let mut h = resp3(now);
        let a = h.submit(&["GET", "a"]);
        assert!(matches!(h.mux.poll_transmit(now), Transmit::Look));
        h.mux.handle_look(Readiness::Readable);
        // Nothing goes until the bytes are read: they may be a push.
        assert!(matches!(h.mux.poll_transmit(now), Transmit::Idle));
        assert!(!h.mux.is_failed());
        h.mux
            .handle_bytes(b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n");
        assert!(matches!(h.poll(now), Step::Push(Value::Push(_))));
        assert!(matches!(h.poll(now), Step::Wait(None)));
        // A new look, quiet this time, and the request goes.
        assert!(matches!(h.mux.poll_transmit(now), Transmit::Look));
        h.mux.handle_look(Readiness::Quiet);
        assert!(matches!(h.mux.poll_transmit(now), Transmit::Write(_)));
        h.mux.transmitted(command(&["GET", "a"]).len());
        h.mux.handle_bytes(b"$1\r\nA\r\n");
        h.poll(now);
        assert_eq!(h.replies(a), vec![bulk("A")]);

        // A stray reply instead: read, judged, and the queued request never sent.
        let mut h = resp3(now);
        let b = h.submit(&["GET", "b"]);
        assert!(matches!(h.mux.poll_transmit(now), Transmit::Look));
        h.mux.handle_look(Readiness::Readable);
        h.mux.handle_bytes(b"+OK\r\n");
        assert!(matches!(h.poll(now), Step::Failed));
        assert!(matches!(
            h.take(b),
            Some(Outcome::Unsent(Error::OutOfStep(_)))
        ));

        // Half a push read: the request may go (the core keeps the push apart from the
        // reply); half of anything else may not.
        let mut h = resp3(now);
        h.submit(&["GET", "c"]);
        h.mux.handle_look(Readiness::Readable);
        h.mux.handle_bytes(b">2\r\n$10\r\ninval");
        assert!(matches!(h.poll(now), Step::Wait(None)));
        assert!(matches!(h.mux.poll_transmit(now), Transmit::Look));
        h.mux.handle_look(Readiness::Quiet);
        assert!(matches!(h.mux.poll_transmit(now), Transmit::Write(_)));
        let mut h = resp3(now);
        let d = h.submit(&["GET", "d"]);
        h.mux.handle_look(Readiness::Readable);
        h.mux.handle_bytes(b"$5\r\nst");
        h.poll(now);
        assert!(matches!(h.mux.poll_transmit(now), Transmit::Idle));
        h.collect();
        assert!(matches!(
            h.take(d),
            Some(Outcome::Unsent(Error::OutOfStep(_)))
        ));
    }

    #[test]
    fn bytes_already_read_while_nothing_is_owed_fail_the_connection() {
        let now = Instant::now();
        let mut h = Harness::new(now);
        h.mux.handle_bytes(b"+OK\r\n");
        assert!(matches!(h.poll(now), Step::Failed));
        assert!(matches!(h.mux.failure(), Some(Error::OutOfStep(_))));
    }

    #[test]
    fn replies_split_anywhere_reach_their_callers_in_order() {
        let now = Instant::now();
        let mut h = Harness::new(now);
        let ids: Vec<u32> = (0..5)
            .map(|i| h.submit(&["ECHO", &format!("v{i}")]))
            .collect();
        let wire = h.drain(now, Readiness::Quiet);
        let mut expected = BytesMut::new();
        for i in 0..5 {
            expected.extend_from_slice(&command(&["ECHO", &format!("v{i}")]));
        }
        // One batch, in submission order.
        assert_eq!(wire, expected.to_vec());
        let answers = b"$2\r\nv0\r\n$2\r\nv1\r\n$2\r\nv2\r\n$2\r\nv3\r\n$2\r\nv4\r\n";
        for byte in answers.chunks(3) {
            h.mux.handle_bytes(byte);
            assert!(matches!(h.poll(now), Step::Wait(_)));
        }
        for (i, id) in ids.into_iter().enumerate() {
            let want = Value::BulkString(Bytes::from(format!("v{i}")));
            assert_eq!(h.replies(id), vec![want]);
        }
    }

    #[test]
    fn a_request_cancelled_before_its_write_is_not_sent_and_one_cancelled_after_loses_only_its_reply(
    ) {
        let now = Instant::now();
        let mut h = Harness::new(now);
        let early = h.submit(&["GET", "early"]);
        let late = h.submit(&["GET", "late"]);
        assert!(h.mux.cancel(&early));
        let wire = h.drain(now, Readiness::Quiet);
        assert_eq!(wire, command(&["GET", "late"]).to_vec());
        assert!(h.take(early).is_none(), "never sent, never answered");
        let next = h.submit(&["GET", "next"]);
        h.drain(now, Readiness::Quiet);
        // Already written: cancelling cannot take it back; its reply is still read.
        assert!(!h.mux.cancel(&late));
        h.mux.handle_bytes(b"$4\r\nlate\r\n$4\r\nnext\r\n");
        assert!(matches!(h.poll(now), Step::Wait(None)));
        assert_eq!(h.replies(late), vec![bulk("late")]);
        assert_eq!(h.replies(next), vec![bulk("next")]);
        // One in the middle of those queued leaves the others' bytes whole.
        let a = h.submit(&["ECHO", "a"]);
        let b = h.submit(&["ECHO", "bb"]);
        let c = h.submit(&["ECHO", "ccc"]);
        assert!(h.mux.cancel(&b));
        let wire = h.drain(now, Readiness::Quiet);
        assert_eq!(
            wire,
            [command(&["ECHO", "a"]), command(&["ECHO", "ccc"])].concat()
        );
        h.mux.handle_bytes(b"$1\r\na\r\n$3\r\nccc\r\n");
        h.poll(now);
        assert_eq!(h.replies(a), vec![bulk("a")]);
        assert_eq!(h.replies(c), vec![bulk("ccc")]);
    }

    #[test]
    fn a_failure_tells_written_callers_failed_and_queued_ones_unsent() {
        let now = Instant::now();
        let mut h = Harness::new(now);
        let written = h.submit(&["INCR", "n"]);
        h.drain(now, Readiness::Quiet);
        let queued = h.submit(&["INCR", "n"]);
        h.mux.handle_closed();
        h.collect();
        assert!(matches!(
            h.take(written),
            Some(Outcome::Failed(Error::Io(_)))
        ));
        assert!(matches!(
            h.take(queued),
            Some(Outcome::Unsent(Error::Io(_)))
        ));
    }

    #[test]
    fn answers_are_handed_out_in_groups_of_a_share_of_those_in_flight() {
        let now = Instant::now();
        let mut h = Harness::new(now);
        assert_eq!(h.mux.answer_group(), 1, "nothing in flight: one at a time");
        for i in 0..40 {
            h.submit(&["GET", &i.to_string()]);
        }
        h.drain(now, Readiness::Quiet);
        assert_eq!(h.mux.answer_group(), 40 / ANSWER_GROUPS);
        // The replies all came: the group is judged on those in flight, answered or not.
        h.mux.handle_bytes(&b"$-1\r\n".repeat(40));
        assert!(matches!(h.mux.poll(now), Step::Wait(None)));
        assert_eq!(h.mux.answer_group(), 40 / ANSWER_GROUPS);
        for _ in 0..40 - 3 {
            assert!(h.mux.next_answer().is_some());
        }
        assert_eq!(h.mux.answer_group(), 1, "few left: one at a time");
    }

    #[test]
    fn a_reply_past_its_deadline_fails_every_caller() {
        let now = Instant::now();
        let info = ConnectionInfo::tcp("127.0.0.1", 6379)
            .with_read_timeout(Some(Duration::from_millis(100)));
        let mut h = Harness::with(info, now);
        let a = h.submit(&["GET", "a"]);
        h.drain(now, Readiness::Quiet);
        let Step::Wait(Some(deadline)) = h.poll(now) else {
            panic!("a reply owed has a deadline")
        };
        assert_eq!(deadline, now + Duration::from_millis(100));
        // Half a reply does not extend it.
        h.mux.handle_bytes(b"$5\r\nhe");
        assert!(
            matches!(h.poll(now + Duration::from_millis(50)), Step::Wait(Some(d)) if d == deadline)
        );
        h.mux.handle_timeout(deadline);
        assert!(matches!(h.poll(deadline), Step::Failed));
        assert!(matches!(h.take(a), Some(Outcome::Failed(Error::Timeout))));
    }

    #[test]
    fn a_large_body_is_written_from_its_own_buffer() {
        let now = Instant::now();
        let mut h = Harness::new(now);
        let mut body = BytesMut::new();
        resp_proto::write_bulk(&mut body, b"SET");
        resp_proto::write_bulk(&mut body, b"k");
        resp_proto::write_bulk(&mut body, &vec![b'x'; SHARED_PART]);
        let body = body.freeze();
        let r = h
            .mux
            .submit(b"*3\r\n", Body::Shared(&body), 1, ReplyTimeout::Default, 7);
        assert!(r.is_ok());
        let mut writes = Vec::new();
        loop {
            let (ptr, len) = match h.mux.poll_transmit(now) {
                Transmit::Idle => break,
                Transmit::Look => {
                    h.mux.handle_look(Readiness::Quiet);
                    continue;
                }
                Transmit::Write(bytes) => (bytes.as_ptr(), bytes.len()),
                Transmit::WriteShared(bytes) => (bytes.as_ptr(), bytes.len()),
            };
            // A transport that takes a little at a time.
            let n = len.min(40_000);
            writes.push((ptr, n));
            h.mux.transmitted(n);
        }
        // The header was copied into the batch; the body went from the caller's buffer.
        assert_eq!(writes[0].1, 4);
        assert_eq!(writes[1].0, body.as_ptr());
        let total: usize = writes.iter().map(|w| w.1).sum();
        assert_eq!(total, 4 + body.len());
        assert_eq!(h.mux.core().write_deadline(), None, "written whole");
    }

    #[test]
    fn a_request_announcing_no_replies_or_refused_by_the_core_is_never_sent() {
        let now = Instant::now();
        let mut h = Harness::new(now);
        let get = command(&["GET", "a"]);
        let none = h
            .mux
            .submit(&[], Body::Copied(&get), 0, ReplyTimeout::Default, 50);
        assert_eq!(none, Err(50));
        let subscribe = h.submit(&["SUBSCRIBE", "c"]);
        assert!(h.drain(now, Readiness::Quiet).is_empty());
        assert!(matches!(
            h.take(subscribe),
            Some(Outcome::Refused(Error::Unsupported(_)))
        ));
        assert!(!h.mux.is_failed());
    }

    #[test]
    fn a_command_that_changes_the_shared_state_closes_the_connection_once_answered() {
        let now = Instant::now();
        let mut h = Harness::new(now);
        let select = h.submit(&["SELECT", "2"]);
        h.drain(now, Readiness::Quiet);
        h.mux.handle_bytes(b"+OK\r\n");
        assert!(matches!(h.poll(now), Step::Failed));
        // Its own reply was handed out first.
        let ok = Value::SimpleString(Bytes::from_static(b"OK"));
        assert_eq!(h.replies(select), vec![ok]);
    }

    #[test]
    fn one_reply_is_held_inline_and_several_in_order() {
        let mut one = Replies::None;
        one.push(bulk("a"), 1);
        assert!(matches!(one, Replies::One(_)));
        let mut many = Replies::None;
        for v in ["a", "b", "c"] {
            many.push(bulk(v), 3);
        }
        assert_eq!(many.into_vec(), vec![bulk("a"), bulk("b"), bulk("c")]);
    }

    #[test]
    fn reconnects_back_off_doubling_to_a_second() {
        let t0 = Instant::now();
        let mut b = Backoff::default();
        assert!(b.check(t0).is_ok());
        b.failed(t0);
        assert_eq!(b.check(t0), Err(FIRST_BACKOFF));
        assert!(b.check(t0 + FIRST_BACKOFF).is_ok());
        b.failed(t0);
        assert_eq!(b.check(t0), Err(FIRST_BACKOFF * 2));
        for _ in 0..20 {
            b.failed(t0);
        }
        assert_eq!(b.check(t0), Err(MAX_BACKOFF));
        b.succeeded();
        assert!(b.check(t0).is_ok());
    }
}
