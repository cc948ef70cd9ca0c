//! The multiplexer: the decisions of one connection shared by many callers, as a sans-I/O
//! state machine beside the connection core.
//!
//! Callers' requests are queued ([`Mux::submit`]); the machine gathers them into batches,
//! records each with the core in the order its bytes go out, hands out the bytes to write
//! ([`Mux::poll_transmit`]), takes the bytes read ([`Mux::input_buffer`],
//! [`Mux::handle_input`]), and gives each reply the core produces to the caller at the
//! head of the list of those waiting ([`Mux::poll`]). It reads no clock and touches no
//! socket: a driver passes the time in, moves the bytes and sleeps until the deadline
//! [`Step::Wait`] gives. The tokio driver is `aio::Multiplexed`.
//!
//! The idle look: before a connection that owes nothing carries a new request, the
//! machine asks the driver to look at the transport without waiting
//! ([`Transmit::Look`]; [`Transport::readiness`](crate::Transport::readiness) on the
//! blocking side). Bytes found there were sent before the request and belong to nobody;
//! without the look they would be read as its reply. A driver's own notion of
//! readiness (an async reactor's last report) can lag behind the socket, so the look
//! must be a fresh one.

use crate::machine::{Core, Poll, ReplyTimeout};
use crate::{Error, Readiness};
use bytes::{Buf, Bytes, BytesMut};
use resp_proto::Value;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Most bytes gathered into one batch; what is queued beyond goes in the next one.
const MAX_BATCH: usize = 1 << 20;

/// A request part at least this long is written from its own buffer, not copied into the
/// batch: a large value is held once.
pub const SHARED_PART: usize = 64 * 1024;

/// Wait before the first reconnect attempt after a failed one, doubled after each further
/// failure up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(10);

/// Longest wait between reconnect attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// How a request ended, given to its [`Waiter`].
#[derive(Debug)]
pub enum Outcome {
    /// Its replies, in order; server errors as [`Value::Error`].
    Replies(Vec<Value>),
    /// The connection failed after the request's bytes began to go out: it may have run.
    Failed(Error),
    /// The connection failed (or a look found it unusable) before any byte of the request
    /// was written: it never reached the server and may be sent on another connection.
    Unsent(Error),
    /// The core refused the request (a SUBSCRIBE, a count of replies that does not match
    /// its commands): nothing of it was sent, and it would be refused anywhere.
    Refused(Error),
}

/// Whoever waits for a request's replies: a channel's sending half in a driver, a cell in
/// a test.
pub trait Waiter {
    /// The request ended; called once.
    fn answer(self, outcome: Outcome);

    /// True once nobody will read the answer: a request whose caller has gone before its
    /// write begins is not sent at all. The default: never gone.
    fn is_gone(&self) -> bool {
        false
    }
}

/// One caller's request: `replies` commands, encoded, in `parts` (written in order).
#[derive(Debug)]
pub struct Request<W> {
    /// The encoded commands; a long part is written without being copied.
    pub parts: Parts,
    /// How many replies the commands owe (at least 1).
    pub replies: usize,
    /// How long each reply may take.
    pub timeout: ReplyTimeout,
    /// Who gets the outcome.
    pub waiter: W,
}

/// The bytes of a request: a short header and a body, either of which may be empty.
#[derive(Clone, Debug, Default)]
pub struct Parts {
    /// Written first (a command's array header).
    pub head: Bytes,
    /// Written second (a command's arguments, or a whole encoded request).
    pub body: Bytes,
}

impl Parts {
    /// A request already encoded whole.
    pub fn whole(bytes: Bytes) -> Parts {
        Parts {
            head: Bytes::new(),
            body: bytes,
        }
    }

    fn len(&self) -> usize {
        self.head.len() + self.body.len()
    }
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

/// A caller whose request was written, in the order the core owes the replies.
#[derive(Debug)]
struct Waiting<W> {
    waiter: W,
    want: usize,
    got: Vec<Value>,
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

    fn push(&mut self, bytes: &Bytes) {
        if bytes.is_empty() {
            return;
        }
        if bytes.len() >= SHARED_PART {
            self.chunks.push_back(Chunk::Shared(bytes.clone()));
            return;
        }
        self.batch.extend_from_slice(bytes);
        match self.chunks.back_mut() {
            Some(Chunk::Batch(n)) => *n += bytes.len(),
            _ => self.chunks.push_back(Chunk::Batch(bytes.len())),
        }
    }

    fn front(&self) -> Option<&[u8]> {
        match self.chunks.front()? {
            Chunk::Batch(n) => Some(&self.batch[..*n]),
            Chunk::Shared(b) => Some(b),
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
/// docs](self)).
///
/// The driver's loop, in any order that repeats until nothing changes:
/// - new requests: [`submit`](Mux::submit);
/// - writing: [`poll_transmit`](Mux::poll_transmit) until [`Transmit::Idle`] or the
///   transport would block, answering [`Transmit::Look`] with
///   [`handle_look`](Mux::handle_look) and reporting writes with
///   [`transmitted`](Mux::transmitted);
/// - reading: into [`input_buffer`](Mux::input_buffer), then
///   [`handle_input`](Mux::handle_input) (or [`handle_closed`](Mux::handle_closed),
///   [`fail`](Mux::fail) on an I/O error);
/// - handing out: [`poll`](Mux::poll) until [`Step::Wait`] or [`Step::Failed`];
/// - timers: at the deadline the last [`Step::Wait`] gave,
///   [`handle_timeout`](Mux::handle_timeout), then [`poll`](Mux::poll) again.
///
/// Every failure answers every caller once: those whose bytes began to go out with
/// [`Outcome::Failed`], those not yet written with [`Outcome::Unsent`].
#[derive(Debug)]
pub struct Mux<W: Waiter> {
    core: Core,
    /// Submitted, not yet recorded with the core: nothing of them was written.
    queued: VecDeque<Request<W>>,
    /// Recorded with the core, in the order their replies are owed.
    waiting: VecDeque<Waiting<W>>,
    out: Outgoing,
    /// A look since the core last owed nothing found the transport quiet: the next batch
    /// may go. Consumed by that batch.
    looked: bool,
    failure: Option<Error>,
}

impl<W: Waiter> Mux<W> {
    /// A machine over an open connection's core (its handshake done).
    pub fn new(core: Core) -> Mux<W> {
        Mux {
            core,
            queued: VecDeque::new(),
            waiting: VecDeque::new(),
            out: Outgoing::default(),
            looked: false,
            failure: None,
        }
    }

    /// Queues a request to be written with the next batch.
    ///
    /// # Errors
    /// The request back, unsent, when the connection has failed, or when it announces no
    /// replies (the core would take it for a subscriber's and every caller's connection
    /// would become a stream of pushes).
    pub fn submit(&mut self, request: Request<W>) -> Result<(), Request<W>> {
        if self.failure.is_some() || request.replies == 0 {
            return Err(request);
        }
        self.queued.push_back(request);
        Ok(())
    }

    /// The bytes to write next, recording a new batch with the core when the last one is
    /// written. A connection that owes nothing first asks for a [`Transmit::Look`].
    pub fn poll_transmit(&mut self, now: Instant) -> Transmit<'_> {
        if self.failure.is_some() {
            return Transmit::Idle;
        }
        if self.out.is_empty() {
            // Callers that left before their write began are not sent.
            while self.queued.front().is_some_and(|r| r.waiter.is_gone()) {
                self.queued.pop_front();
            }
            if self.queued.is_empty() {
                return Transmit::Idle;
            }
            if self.core.pending_replies() == 0 && !self.looked {
                return Transmit::Look;
            }
            self.looked = false;
            self.take_batch(now);
        }
        match self.out.front() {
            Some(bytes) => Transmit::Write(bytes),
            None => Transmit::Idle,
        }
    }

    /// What the look [`Transmit::Look`] asked for found. Bytes waiting, or a closed
    /// transport, fail the connection before any queued request is matched to them; the
    /// queued requests are answered [`Outcome::Unsent`].
    pub fn handle_look(&mut self, readiness: Readiness) {
        match readiness {
            // A transport that cannot tell still gets the core's checks.
            Readiness::Quiet | Readiness::Unknown => self.looked = true,
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
            let Some(r) = self.queued.pop_front() else {
                break;
            };
            if r.waiter.is_gone() {
                continue;
            }
            let parts: [&[u8]; 2] = [&r.parts.head, &r.parts.body];
            // Recorded with the core and in the waiting list in one step, in the order the
            // bytes go out: the core's owed queue and the list agree.
            match self.core.queue(&parts, r.replies, r.timeout, now) {
                Ok(()) => {
                    size += r.parts.len();
                    self.out.push(&r.parts.head);
                    self.out.push(&r.parts.body);
                    self.waiting.push_back(Waiting {
                        waiter: r.waiter,
                        want: r.replies,
                        got: Vec::with_capacity(r.replies),
                    });
                }
                // Refused by the core (a SUBSCRIBE, a count that does not match): nothing
                // of it was recorded or sent.
                Err(e) => r.waiter.answer(Outcome::Refused(e)),
            }
        }
    }

    /// Space to read into; pass the number of bytes read to [`Mux::handle_input`].
    pub fn input_buffer(&mut self) -> &mut [u8] {
        self.core.input_buffer()
    }

    /// `n` bytes were read into [`Mux::input_buffer`].
    pub fn handle_input(&mut self, n: usize) {
        self.core.handle_input(n);
    }

    /// Bytes that arrived by other means (a test, a simulation).
    pub fn handle_bytes(&mut self, bytes: &[u8]) {
        self.core.handle_bytes(bytes);
    }

    /// The peer closed the stream: every caller is told.
    pub fn handle_closed(&mut self) {
        self.core.handle_closed();
        self.fail(Error::closed());
    }

    /// Hands every complete reply to its caller and returns the next thing the driver
    /// must act on: a push, a wait for more bytes, or the failure.
    pub fn poll(&mut self, now: Instant) -> Step {
        if self.failure.is_some() {
            return Step::Failed;
        }
        let deadline = loop {
            match self.core.poll_reply(now) {
                Ok(Poll::Reply(v)) => {
                    let Some(head) = self.waiting.front_mut() else {
                        self.fail(Error::OutOfStep("a reply with no caller waiting".into()));
                        return Step::Failed;
                    };
                    head.got.push(v);
                    if head.got.len() == head.want {
                        if let Some(done) = self.waiting.pop_front() {
                            // A caller that gave up is gone: its replies are dropped here.
                            done.waiter.answer(Outcome::Replies(done.got));
                        }
                    }
                }
                Ok(Poll::NeedInput(d)) => break d,
                Ok(Poll::Idle) => break None,
                Err(e) => {
                    self.fail(e);
                    return Step::Failed;
                }
            }
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
            w.waiter.answer(Outcome::Failed(e.duplicate()));
        }
        for r in self.queued.drain(..) {
            r.waiter.answer(Outcome::Unsent(e.duplicate()));
        }
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

    /// Requests submitted and not yet written.
    pub fn queued(&self) -> usize {
        self.queued.len()
    }

    /// The connection core.
    pub fn core(&self) -> &Core {
        &self.core
    }
}

impl<W: Waiter> Drop for Mux<W> {
    fn drop(&mut self) {
        // Every caller gets an answer, even from a machine dropped while it worked (a
        // runtime shut down under it).
        if self.failure.is_none() {
            self.fail(Error::Broken);
        }
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
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;

    /// A caller as a test sees it: the outcome once given, and whether it left.
    #[derive(Clone, Default)]
    struct Slot {
        outcome: Rc<RefCell<Option<Outcome>>>,
        gone: Rc<Cell<bool>>,
    }

    impl Waiter for Slot {
        fn answer(self, outcome: Outcome) {
            let old = self.outcome.borrow_mut().replace(outcome);
            assert!(old.is_none(), "answered twice");
        }
        fn is_gone(&self) -> bool {
            self.gone.get()
        }
    }

    impl Slot {
        fn take(&self) -> Option<Outcome> {
            self.outcome.borrow_mut().take()
        }
    }

    fn machine(now: Instant) -> Mux<Slot> {
        Mux::new(Core::new(&ConnectionInfo::tcp("127.0.0.1", 6379), now))
    }

    fn command(args: &[&str]) -> Bytes {
        let mut out = BytesMut::new();
        resp_proto::encode_command(&mut out, args);
        out.freeze()
    }

    fn submit(mux: &mut Mux<Slot>, args: &[&str]) -> Slot {
        let slot = Slot::default();
        let request = Request {
            parts: Parts::whole(command(args)),
            replies: 1,
            timeout: ReplyTimeout::Default,
            waiter: slot.clone(),
        };
        assert!(mux.submit(request).is_ok());
        slot
    }

    /// Writes everything the machine has, answering looks with `look`; returns the bytes.
    fn drain(mux: &mut Mux<Slot>, now: Instant, look: Readiness) -> Vec<u8> {
        let mut wire = Vec::new();
        loop {
            match mux.poll_transmit(now) {
                Transmit::Idle => return wire,
                Transmit::Look => mux.handle_look(look),
                Transmit::Write(bytes) => {
                    let n = bytes.len();
                    wire.extend_from_slice(bytes);
                    mux.transmitted(n);
                }
            }
        }
    }

    fn replies(slot: &Slot) -> Vec<Value> {
        match slot.take() {
            Some(Outcome::Replies(v)) => v,
            other => panic!("expected replies, got {other:?}"),
        }
    }

    #[test]
    fn an_idle_connection_is_looked_at_before_it_carries_a_request() {
        let now = Instant::now();
        let mut mux = machine(now);
        let a = submit(&mut mux, &["GET", "a"]);
        assert!(matches!(mux.poll_transmit(now), Transmit::Look));
        // Asked again without an answer, it asks again: no batch goes unlooked.
        assert!(matches!(mux.poll_transmit(now), Transmit::Look));
        mux.handle_look(Readiness::Quiet);
        assert!(matches!(mux.poll_transmit(now), Transmit::Write(_)));
        mux.transmitted(command(&["GET", "a"]).len());
        // While a reply is owed, more requests go without a look.
        let b = submit(&mut mux, &["GET", "b"]);
        assert!(matches!(mux.poll_transmit(now), Transmit::Write(_)));
        mux.transmitted(command(&["GET", "b"]).len());
        mux.handle_bytes(b"$1\r\nA\r\n$1\r\nB\r\n");
        assert!(matches!(mux.poll(now), Step::Wait(None)));
        assert_eq!(
            replies(&a),
            vec![Value::BulkString(Bytes::from_static(b"A"))]
        );
        assert_eq!(
            replies(&b),
            vec![Value::BulkString(Bytes::from_static(b"B"))]
        );
        // Idle again: the next request needs a fresh look.
        submit(&mut mux, &["GET", "c"]);
        assert!(matches!(mux.poll_transmit(now), Transmit::Look));
    }

    #[test]
    fn bytes_found_by_the_look_fail_the_connection_and_leave_requests_unsent() {
        let now = Instant::now();
        let mut mux = machine(now);
        let a = submit(&mut mux, &["GET", "a"]);
        let b = submit(&mut mux, &["GET", "b"]);
        assert!(drain(&mut mux, now, Readiness::Readable).is_empty());
        for slot in [&a, &b] {
            assert!(matches!(
                slot.take(),
                Some(Outcome::Unsent(Error::OutOfStep(_)))
            ));
        }
        assert!(mux.is_failed());
        // A failed machine takes nothing more.
        let refused = Request {
            parts: Parts::whole(command(&["PING"])),
            replies: 1,
            timeout: ReplyTimeout::Default,
            waiter: Slot::default(),
        };
        assert!(mux.submit(refused).is_err());
        // A closed transport likewise.
        let mut mux = machine(now);
        let c = submit(&mut mux, &["GET", "c"]);
        drain(&mut mux, now, Readiness::Closed);
        assert!(matches!(c.take(), Some(Outcome::Unsent(Error::Io(_)))));
    }

    #[test]
    fn bytes_already_read_while_nothing_is_owed_fail_the_connection() {
        let now = Instant::now();
        let mut mux = machine(now);
        mux.handle_bytes(b"+OK\r\n");
        assert!(matches!(mux.poll(now), Step::Failed));
        assert!(matches!(mux.failure(), Some(Error::OutOfStep(_))));
    }

    #[test]
    fn replies_split_anywhere_reach_their_callers_in_order() {
        let now = Instant::now();
        let mut mux = machine(now);
        let slots: Vec<Slot> = (0..5)
            .map(|i| submit(&mut mux, &["ECHO", &format!("v{i}")]))
            .collect();
        let wire = drain(&mut mux, now, Readiness::Quiet);
        let mut expected = BytesMut::new();
        for i in 0..5 {
            expected.extend_from_slice(&command(&["ECHO", &format!("v{i}")]));
        }
        // One batch, in submission order.
        assert_eq!(wire, expected.to_vec());
        let answers = b"$2\r\nv0\r\n$2\r\nv1\r\n$2\r\nv2\r\n$2\r\nv3\r\n$2\r\nv4\r\n";
        for byte in answers.chunks(3) {
            mux.handle_bytes(byte);
            assert!(matches!(mux.poll(now), Step::Wait(_)));
        }
        for (i, slot) in slots.iter().enumerate() {
            let want = Value::BulkString(Bytes::from(format!("v{i}")));
            assert_eq!(replies(slot), vec![want]);
        }
    }

    #[test]
    fn a_caller_gone_before_its_write_is_not_sent_and_one_gone_after_loses_only_its_reply() {
        let now = Instant::now();
        let mut mux = machine(now);
        let early = submit(&mut mux, &["GET", "early"]);
        early.gone.set(true);
        let late = submit(&mut mux, &["GET", "late"]);
        let wire = drain(&mut mux, now, Readiness::Quiet);
        assert_eq!(wire, command(&["GET", "late"]).to_vec());
        assert!(early.take().is_none(), "never sent, never answered");
        let next = submit(&mut mux, &["GET", "next"]);
        drain(&mut mux, now, Readiness::Quiet);
        late.gone.set(true);
        mux.handle_bytes(b"$4\r\nlate\r\n$4\r\nnext\r\n");
        assert!(matches!(mux.poll(now), Step::Wait(None)));
        // The caller that left is still answered (its channel drops the reply); the next
        // caller gets its own.
        assert_eq!(
            replies(&next),
            vec![Value::BulkString(Bytes::from_static(b"next"))]
        );
    }

    #[test]
    fn a_failure_tells_written_callers_failed_and_queued_ones_unsent() {
        let now = Instant::now();
        let mut mux = machine(now);
        let written = submit(&mut mux, &["INCR", "n"]);
        drain(&mut mux, now, Readiness::Quiet);
        let queued = submit(&mut mux, &["INCR", "n"]);
        mux.handle_closed();
        assert!(matches!(
            written.take(),
            Some(Outcome::Failed(Error::Io(_)))
        ));
        assert!(matches!(queued.take(), Some(Outcome::Unsent(Error::Io(_)))));
    }

    #[test]
    fn a_reply_past_its_deadline_fails_every_caller() {
        let now = Instant::now();
        let info = ConnectionInfo::tcp("127.0.0.1", 6379)
            .with_read_timeout(Some(Duration::from_millis(100)));
        let mut mux = Mux::new(Core::new(&info, now));
        let a = Slot::default();
        let request = Request {
            parts: Parts::whole(command(&["GET", "a"])),
            replies: 1,
            timeout: ReplyTimeout::Default,
            waiter: a.clone(),
        };
        assert!(mux.submit(request).is_ok());
        drain(&mut mux, now, Readiness::Quiet);
        let Step::Wait(Some(deadline)) = mux.poll(now) else {
            panic!("a reply owed has a deadline")
        };
        assert_eq!(deadline, now + Duration::from_millis(100));
        // Half a reply does not extend it.
        mux.handle_bytes(b"$5\r\nhe");
        assert!(
            matches!(mux.poll(now + Duration::from_millis(50)), Step::Wait(Some(d)) if d == deadline)
        );
        mux.handle_timeout(deadline);
        assert!(matches!(mux.poll(deadline), Step::Failed));
        assert!(matches!(a.take(), Some(Outcome::Failed(Error::Timeout))));
    }

    #[test]
    fn a_large_part_is_written_from_its_own_buffer() {
        let now = Instant::now();
        let mut mux = machine(now);
        let mut body = BytesMut::new();
        resp_proto::write_bulk(&mut body, b"SET");
        resp_proto::write_bulk(&mut body, b"k");
        resp_proto::write_bulk(&mut body, &vec![b'x'; SHARED_PART]);
        let body = body.freeze();
        let request = Request {
            parts: Parts {
                head: Bytes::from_static(b"*3\r\n"),
                body: body.clone(),
            },
            replies: 1,
            timeout: ReplyTimeout::Default,
            waiter: Slot::default(),
        };
        assert!(mux.submit(request).is_ok());
        let mut writes = Vec::new();
        loop {
            match mux.poll_transmit(now) {
                Transmit::Idle => break,
                Transmit::Look => mux.handle_look(Readiness::Quiet),
                Transmit::Write(bytes) => {
                    // A transport that takes a little at a time.
                    let n = bytes.len().min(40_000);
                    writes.push((bytes.as_ptr(), n));
                    mux.transmitted(n);
                }
            }
        }
        // The header was copied into the batch; the body went from the caller's buffer.
        assert_eq!(writes[0].1, 4);
        assert_eq!(writes[1].0, body.as_ptr());
        let total: usize = writes.iter().map(|w| w.1).sum();
        assert_eq!(total, 4 + body.len());
        assert_eq!(mux.core().write_deadline(), None, "written whole");
    }

    #[test]
    fn a_request_announcing_no_replies_or_refused_by_the_core_is_never_sent() {
        let now = Instant::now();
        let mut mux = machine(now);
        let none = Request {
            parts: Parts::whole(command(&["GET", "a"])),
            replies: 0,
            timeout: ReplyTimeout::Default,
            waiter: Slot::default(),
        };
        assert!(mux.submit(none).is_err());
        let subscribe = submit(&mut mux, &["SUBSCRIBE", "c"]);
        assert!(drain(&mut mux, now, Readiness::Quiet).is_empty());
        assert!(matches!(
            subscribe.take(),
            Some(Outcome::Refused(Error::Unsupported(_)))
        ));
        assert!(!mux.is_failed());
    }

    #[test]
    fn a_command_that_changes_the_shared_state_closes_the_connection_once_answered() {
        let now = Instant::now();
        let mut mux = machine(now);
        let select = submit(&mut mux, &["SELECT", "2"]);
        drain(&mut mux, now, Readiness::Quiet);
        mux.handle_bytes(b"+OK\r\n");
        assert!(matches!(mux.poll(now), Step::Failed));
        // Its own reply was handed out first.
        assert_eq!(
            replies(&select),
            vec![Value::SimpleString(Bytes::from_static(b"OK"))]
        );
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
