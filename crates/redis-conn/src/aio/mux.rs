//! The multiplexed connection: many tasks share one connection; their requests are
//! written together and the replies matched to them in order, as the core owes them.
//!
//! Every decision is the sans-I/O [`Mux`](crate::mux::Mux)'s: which requests go in a
//! batch, when the transport must be looked at before one (the idle look), whose turn a
//! reply is, what a failure does to each caller, when to try connecting again. This
//! driver only moves bytes between the machine and the transport, reads the clock and
//! sleeps. Callers and the connection's one task share the machine under a lock: a caller
//! copies its request in and waits on a slot of its own; the task writes, reads, and
//! fills the slots with the answers the machine gives. In steady state a request costs no
//! allocation here: the slots, the buffers and the machine's queues are reused.

use super::transport::{Opener, Transport};
use super::{now, Connection};
use crate::machine::ReplyTimeout;
use crate::mux::{Backoff, Body, Mux, Outcome, Replies, Step, Transmit};
use crate::{ConnectionInfo, Error, Readiness};
use bytes::{Buf, Bytes, BytesMut};
use parking_lot::Mutex;
use resp_proto::Value;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;

/// Attempts at sending one request whose earlier tries were refused unsent (the
/// connection failed, or its idle look found bytes nobody asked for, before the request's
/// write began).
const SEND_ATTEMPTS: usize = 3;

/// Read buffer of the connection's task.
const READ_CHUNK: usize = 64 * 1024;

/// A connection shared by any number of tasks: cheap to clone, every clone uses the same
/// connection.
///
/// Concurrent requests are written together, in one write, and the replies matched to
/// their callers in order, so concurrency becomes pipelining with no code from the user.
/// The connection is opened on first use; after a failure, every waiting caller gets the
/// error (a copy of it), and the next call opens a new connection, with a backoff after
/// failed attempts (10 ms, doubling up to 1 s; a call in the backoff window fails at once
/// with [`Error::Connect`]).
///
/// Before every batch of requests, what the transport holds is read without waiting
/// ([`Transport::read_now`]: one system call for the built-in ones; or, for a transport
/// that cannot, looked at with [`Transport::readiness`] and read the usual way) and
/// judged: bytes sent before the batch that are not a reply still owed belong to nobody,
/// so the connection is dropped and the batch sent on a new one instead of reading them
/// as its replies.
///
/// Requests must leave the connection as they found it: commands that change connection
/// state (SELECT, WATCH, CLIENT SETNAME …) or block (BLPOP) belong on a dedicated
/// connection from a [`Pool`](super::Pool), which `redis_client::aio::Redis` chooses by
/// each command's declared flags. A complete MULTI … EXEC in one request is fine. Should
/// a request leave the state changed anyway, the connection is closed once its replies
/// are in and the next call opens a fresh one.
///
/// RESP3 pushes never reach a caller: they go to the channel given with
/// [`Multiplexed::with_pushes`], or are dropped.
///
/// Must be used inside a tokio runtime: each connection runs a task.
#[derive(Clone, Debug)]
pub struct Multiplexed {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    opener: Opener,
    link: Mutex<Option<Link>>,
    /// Held while opening a connection, so concurrent callers wait for one attempt.
    connecting: tokio::sync::Mutex<Connecting>,
    pushes: Option<mpsc::UnboundedSender<Value>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Every handle is gone: the connection's task closes it.
        if let Some(link) = self.link.get_mut().take() {
            link.conn.close();
        }
    }
}

/// The way to the live connection.
#[derive(Clone, Debug)]
struct Link {
    conn: Arc<Conn>,
    /// The connector that picked the server, and the connection's epoch.
    epoch: Option<(Arc<dyn super::Connector>, u64)>,
}

impl Link {
    /// Whether requests may go over it: its task runs and, where a connector picked its
    /// server, that choice still stands (a Sentinel failover ends it).
    fn usable(&self) -> bool {
        self.conn.alive.load(Ordering::Acquire)
            && self.epoch.as_ref().map_or(true, |(c, e)| c.is_current(*e))
    }
}

/// What the callers of one connection and its task share.
#[derive(Debug)]
struct Conn {
    state: Mutex<State>,
    alive: AtomicBool,
}

#[derive(Debug)]
struct State {
    mux: Mux<Slot>,
    slots: Slots,
    /// The task's waker while it waits: a caller that queues a request wakes it.
    task: Option<Waker>,
    /// Set by a caller that found no waker to wake: the task was running (or about to
    /// run after another caller's wake) and must look at the queue again before it parks,
    /// or the request would wait for the next unrelated event.
    unseen: bool,
    /// Every handle is gone: the task closes the connection.
    closing: bool,
}

impl Conn {
    fn close(&self) {
        let task = {
            let mut st = self.state.lock();
            st.closing = true;
            st.notify()
        };
        if let Some(task) = task {
            task.wake();
        }
    }
}

impl State {
    /// Tells the task there is news (a request queued, the last handle gone): its waker,
    /// to wake once the lock is let go, or, when it has none stored because it is
    /// running, a mark it looks at before it parks.
    fn notify(&mut self) -> Option<Waker> {
        let task = self.task.take();
        if task.is_none() {
            self.unseen = true;
        }
        task
    }
}

/// A caller's place for its answer: an index into the slots and the generation it was
/// given in, so a reused index is never taken for an old one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    index: u32,
    generation: u32,
}

/// The answer slots of one connection, reused: a request costs no allocation once as many
/// slots exist as requests are ever in flight at once.
#[derive(Debug, Default)]
struct Slots {
    entries: Vec<Entry>,
    free: Vec<u32>,
}

#[derive(Debug)]
struct Entry {
    generation: u32,
    state: SlotState,
}

#[derive(Debug)]
enum SlotState {
    Free,
    /// Its caller waits (with its waker once it has polled).
    Waiting(Option<Waker>),
    /// The answer, for its caller to take.
    Done(Outcome),
    /// Its caller gave up after the request was written: the answer is dropped.
    Abandoned,
}

impl Slots {
    /// A slot for a caller that waits with `waker`.
    fn insert(&mut self, waker: Waker) -> Slot {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.entries.push(Entry {
                    generation: 0,
                    state: SlotState::Free,
                });
                u32::try_from(self.entries.len() - 1).unwrap_or(u32::MAX)
            }
        };
        let entry = &mut self.entries[index as usize];
        entry.generation = entry.generation.wrapping_add(1);
        entry.state = SlotState::Waiting(Some(waker));
        Slot {
            index,
            generation: entry.generation,
        }
    }

    fn entry(&mut self, slot: Slot) -> Option<&mut Entry> {
        self.entries
            .get_mut(slot.index as usize)
            .filter(|e| e.generation == slot.generation)
    }

    fn release(&mut self, slot: Slot) {
        if let Some(e) = self.entry(slot) {
            e.state = SlotState::Free;
            self.free.push(slot.index);
        }
    }

    /// Stores `outcome` for its caller and gives the waker to wake; a caller that gave up
    /// has its answer dropped here.
    fn complete(&mut self, slot: Slot, outcome: Outcome) -> Option<Waker> {
        let e = self.entry(slot)?;
        match std::mem::replace(&mut e.state, SlotState::Free) {
            SlotState::Waiting(waker) => {
                e.state = SlotState::Done(outcome);
                waker
            }
            _ => {
                self.free.push(slot.index);
                None
            }
        }
    }

    fn poll(&mut self, slot: Slot, cx: &mut Context<'_>) -> Poll<Outcome> {
        let Some(e) = self.entry(slot) else {
            return Poll::Ready(Outcome::Failed(Error::Broken));
        };
        match &mut e.state {
            SlotState::Done(_) => {
                let SlotState::Done(outcome) = std::mem::replace(&mut e.state, SlotState::Free)
                else {
                    unreachable!("matched just above")
                };
                self.free.push(slot.index);
                Poll::Ready(outcome)
            }
            SlotState::Waiting(waker) => {
                if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
            SlotState::Free | SlotState::Abandoned => Poll::Ready(Outcome::Failed(Error::Broken)),
        }
    }

    /// The caller gave up after its request was written.
    fn abandon(&mut self, slot: Slot) {
        let Some(e) = self.entry(slot) else {
            return;
        };
        match e.state {
            SlotState::Done(_) => {
                e.state = SlotState::Free;
                self.free.push(slot.index);
            }
            _ => e.state = SlotState::Abandoned,
        }
    }
}

/// A caller's request and its wait for the answer. The first poll queues the request and
/// leaves the caller's waker in one go (one lock); dropped before the answer came, it
/// cancels the request if it was not written yet, and leaves its replies to be read and
/// dropped otherwise.
struct Answer<'a> {
    conn: &'a Conn,
    /// The request, until the first poll queues it.
    request: Option<Request<'a>>,
    slot: Option<Slot>,
    done: bool,
}

struct Request<'a> {
    head: &'a [u8],
    body: Body<'a>,
    replies: usize,
    timeout: ReplyTimeout,
}

impl Future for Answer<'_> {
    type Output = Outcome;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let this = self.get_mut();
        if let Some(r) = this.request.take() {
            let task = {
                let mut st = this.conn.state.lock();
                let slot = st.slots.insert(cx.waker().clone());
                match st.mux.submit(r.head, r.body, r.replies, r.timeout, slot) {
                    Ok(()) => {
                        this.slot = Some(slot);
                        st.notify()
                    }
                    Err(slot) => {
                        // The connection failed between the look and the submit: nothing
                        // went out; the caller tries a fresh one.
                        st.slots.release(slot);
                        drop(st);
                        this.conn.alive.store(false, Ordering::Release);
                        this.done = true;
                        return Poll::Ready(Outcome::Unsent(Error::Broken));
                    }
                }
            };
            if let Some(task) = task {
                task.wake();
            }
            return Poll::Pending;
        }
        let Some(slot) = this.slot else {
            return Poll::Ready(Outcome::Failed(Error::Broken));
        };
        let polled = this.conn.state.lock().slots.poll(slot, cx);
        if polled.is_ready() {
            this.done = true;
        }
        polled
    }
}

impl Drop for Answer<'_> {
    fn drop(&mut self) {
        let Some(slot) = self.slot.filter(|_| !self.done) else {
            return;
        };
        let mut st = self.conn.state.lock();
        if st.mux.cancel(&slot) {
            st.slots.release(slot);
        } else {
            st.slots.abandon(slot);
        }
    }
}

impl Multiplexed {
    /// A multiplexed connection to the server `info` describes, opened on first use.
    pub fn new(info: ConnectionInfo) -> Multiplexed {
        Self::build(Opener::new(info), None)
    }

    /// As [`Multiplexed::new`], sending every RESP3 push the server sends on it (client
    /// tracking invalidations, say) to `pushes`.
    pub fn with_pushes(info: ConnectionInfo, pushes: mpsc::UnboundedSender<Value>) -> Multiplexed {
        Self::build(Opener::new(info), Some(pushes))
    }

    /// As [`Multiplexed::new`], each connection's transport opened by `connector` (to the
    /// server it picks, or over a stream of its own), and replaced once `connector` says
    /// its epoch is over.
    pub fn with_connector(
        info: ConnectionInfo,
        connector: Arc<dyn super::Connector>,
    ) -> Multiplexed {
        Self::build(Opener::with_connector(info, connector), None)
    }

    fn build(opener: Opener, pushes: Option<mpsc::UnboundedSender<Value>>) -> Multiplexed {
        Multiplexed {
            shared: Arc::new(Shared {
                opener,
                link: Mutex::new(None),
                connecting: tokio::sync::Mutex::new(Connecting::default()),
                pushes,
            }),
        }
    }

    /// The settings connections are opened with.
    pub fn info(&self) -> &ConnectionInfo {
        self.shared.opener.info()
    }

    /// Opens the connection now if it is not open, instead of on first use.
    ///
    /// Cancellation: cancel-safe; a connection being opened is abandoned.
    ///
    /// # Errors
    /// As [`Connection::open`].
    pub async fn connect(&self) -> Result<(), Error> {
        self.link().await.map(drop)
    }

    /// Sends one request (`bytes`: `replies` encoded commands) and returns its replies,
    /// server errors as [`Value::Error`], each reply waited for as `timeout` says.
    ///
    /// Cancellation: cancel-safe. A caller that gives up before its request's write
    /// begins (while it waits behind other writes, or for the connection to open) sends
    /// nothing; one that gives up later leaves its replies to be read and dropped: they
    /// never reach it, nor anyone else.
    ///
    /// # Errors
    /// [`Error::Unsupported`] for a request the core refuses, or one announcing no
    /// replies (a subscriber's: use a dedicated connection); nothing is sent then;
    /// connection errors ([`Error::Io`], [`Error::Timeout`], [`Error::Protocol`],
    /// [`Error::OutOfStep`] …), given to every caller waiting when the connection failed;
    /// [`Error::Connect`] while it cannot be reopened.
    pub async fn send(
        &self,
        bytes: Bytes,
        replies: usize,
        timeout: ReplyTimeout,
    ) -> Result<Vec<Value>, Error> {
        let body = if bytes.len() >= crate::mux::SHARED_PART {
            Body::Shared(&bytes)
        } else {
            Body::Copied(&bytes)
        };
        self.send_parts(&[], body, replies, timeout)
            .await
            .map(Replies::into_vec)
    }

    /// As [`Multiplexed::send`], the request given as a header (copied) and a body:
    /// copied too, or written from its own buffer ([`Body::Shared`]), so that a large value
    /// is held once. The replies come as [`Replies`], one held without an allocation.
    ///
    /// Cancellation: cancel-safe, as [`Multiplexed::send`].
    ///
    /// # Errors
    /// As [`Multiplexed::send`].
    pub async fn send_parts(
        &self,
        head: &[u8],
        body: Body<'_>,
        replies: usize,
        timeout: ReplyTimeout,
    ) -> Result<Replies, Error> {
        if replies == 0 {
            // The core would take it for a subscriber's request, and the connection every
            // caller shares would become a stream of pushes.
            return Err(Error::Unsupported(
                "a request on a shared connection must announce its replies",
            ));
        }
        let mut last = Error::Broken;
        for _ in 0..SEND_ATTEMPTS {
            let link = match self.live() {
                Some(link) => link,
                // Boxed: opening a connection takes far more state than sending, and
                // would otherwise make every request's future as large.
                None => Box::pin(self.link()).await?,
            };
            let answer = Answer {
                conn: &link.conn,
                request: Some(Request {
                    head,
                    body,
                    replies,
                    timeout,
                }),
                slot: None,
                done: false,
            };
            match answer.await {
                Outcome::Replies(replies) => return Ok(replies),
                Outcome::Failed(e) | Outcome::Refused(e) => return Err(e),
                // Never written: it goes on the next connection.
                Outcome::Unsent(e) => last = e,
            }
        }
        Err(last)
    }

    /// Sends one encoded command and returns its reply; an error reply becomes
    /// [`Error::Server`].
    ///
    /// Cancellation: cancel-safe, as [`Multiplexed::send`].
    ///
    /// # Errors
    /// As [`Multiplexed::send`], plus [`Error::Server`].
    pub async fn request(&self, packed: Bytes, timeout: ReplyTimeout) -> Result<Value, Error> {
        let body = if packed.len() >= crate::mux::SHARED_PART {
            Body::Shared(&packed)
        } else {
            Body::Copied(&packed)
        };
        self.request_parts(&[], body, timeout).await
    }

    /// As [`Multiplexed::request`], the command given as a header and a body (see
    /// [`Multiplexed::send_parts`]).
    ///
    /// Cancellation: cancel-safe, as [`Multiplexed::send`].
    ///
    /// # Errors
    /// As [`Multiplexed::request`].
    pub async fn request_parts(
        &self,
        head: &[u8],
        body: Body<'_>,
        timeout: ReplyTimeout,
    ) -> Result<Value, Error> {
        let replies = self.send_parts(head, body, 1, timeout).await?;
        match replies.into_last() {
            Some(Value::Error(e)) => Err(Error::from_server_error(e)),
            Some(v) => Ok(v),
            None => Err(Error::OutOfStep("no reply for a request".into())),
        }
    }

    /// True when a connection is open and has not failed.
    pub fn is_connected(&self) -> bool {
        self.shared
            .link
            .lock()
            .as_ref()
            .is_some_and(|l| l.conn.alive.load(Ordering::Acquire))
    }

    /// The live connection, opening one if there is none.
    async fn link(&self) -> Result<Link, Error> {
        if let Some(link) = self.live() {
            return Ok(link);
        }
        let mut connecting = self.shared.connecting.lock().await;
        // Another caller may have opened it while this one waited.
        if let Some(link) = self.live() {
            return Ok(link);
        }
        let Connecting { backoff, last_addr } = &mut *connecting;
        if let Err(wait) = backoff.check(now()) {
            return Err(Error::Connect {
                addr: last_addr
                    .clone()
                    .unwrap_or_else(|| self.info().addr.to_string()),
                source: std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    format!(
                        "reconnecting after {} failed attempts: next attempt in {} ms",
                        backoff.failures(),
                        wait.as_millis()
                    ),
                ),
            });
        }
        match Connection::open_until(&self.shared.opener, None).await {
            Ok(conn) => {
                backoff.succeeded();
                let link = spawn(conn, self.shared.pushes.clone());
                let old = self.shared.link.lock().replace(link.clone());
                if let Some(old) = old {
                    // A connection that failed (or whose epoch ended) is replaced.
                    old.conn.close();
                    crate::observe::reconnect(self.info(), "multiplexed");
                }
                Ok(link)
            }
            Err(e) => {
                backoff.failed(now());
                if let Error::Connect { addr, .. } = &e {
                    *last_addr = Some(addr.clone());
                }
                Err(e)
            }
        }
    }

    fn live(&self) -> Option<Link> {
        let link = self.shared.link.lock();
        link.as_ref().filter(|l| l.usable()).cloned()
    }
}

/// The reconnect backoff, and where the last failed attempt went: with a connector the
/// settings' address may be a placeholder, so the backoff's refusal names that one.
#[derive(Debug, Default)]
struct Connecting {
    backoff: Backoff,
    last_addr: Option<String>,
}

/// Starts the task of an open connection.
fn spawn(conn: Connection, pushes: Option<mpsc::UnboundedSender<Value>>) -> Link {
    let epoch = conn.epoch();
    let (stream, core) = conn.into_parts();
    let shared = Arc::new(Conn {
        state: Mutex::new(State {
            mux: Mux::new(core),
            slots: Slots::default(),
            task: None,
            unseen: false,
            closing: false,
        }),
        alive: AtomicBool::new(true),
    });
    tokio::spawn(Driver {
        conn: Arc::clone(&shared),
        stream,
        pushes,
        timer: Box::pin(tokio::time::sleep_until(far())),
        armed: None,
        flush: false,
        yielded: false,
        writing: BytesMut::new(),
        writing_shared: None,
        read_buf: vec![0; READ_CHUNK],
        wake: Vec::new(),
    });
    Link {
        conn: shared,
        epoch,
    }
}

/// A deadline far enough away to mean "none", for the timer while it is not armed.
fn far() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(86_400 * 365)
}

/// The task of one connection: moves bytes between the machine and the transport, and
/// answers into the callers' slots.
struct Driver {
    conn: Arc<Conn>,
    stream: Box<dyn Transport>,
    pushes: Option<mpsc::UnboundedSender<Value>>,
    /// One timer for the life of the connection, moved only when the deadline moves.
    timer: Pin<Box<tokio::time::Sleep>>,
    armed: Option<Instant>,
    /// Bytes were written since the transport was last flushed (TLS buffers them).
    flush: bool,
    /// The task let the others run once since new requests came, so that the callers the
    /// last replies woke queue theirs and go out in the same write.
    yielded: bool,
    /// The bytes being written: a copy of the machine's next chunk, taken under the lock
    /// so the write itself happens outside it.
    writing: BytesMut,
    /// Or a large chunk, shared rather than copied.
    writing_shared: Option<Bytes>,
    read_buf: Vec<u8>,
    /// Callers to wake once the lock is let go (reused, so waking costs no allocation).
    wake: Vec<Waker>,
}

/// What one turn of the task did.
struct Turn {
    wrote: usize,
    read: Option<usize>,
    io_error: Option<Error>,
}

impl Future for Driver {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        // A handle of its own, so the lock's guard does not borrow the task.
        let conn = Arc::clone(&this.conn);
        loop {
            let now = now();
            // Under the lock: what to do, and the next bytes to write.
            {
                let mut st = conn.state.lock();
                if st.closing && !st.mux.is_failed() {
                    // Every handle is gone: nobody can be waiting.
                    st.mux.fail(Error::Broken);
                }
                if st.mux.is_failed() {
                    this.answer(&mut st);
                    conn.alive.store(false, Ordering::Release);
                    drop(st);
                    this.wake_callers();
                    return Poll::Ready(());
                }
                let idle = this.writing.is_empty() && this.writing_shared.is_none();
                if idle && st.mux.queued() > 0 && !this.yielded {
                    // Let the tasks that are ready run first: those a burst of replies
                    // just woke send their next requests, and they go out in this write
                    // instead of one write each.
                    this.yielded = true;
                    drop(st);
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                // What is queued now is seen here: news from before this point needs no
                // further turn.
                st.unseen = false;
                if idle {
                    this.take_chunk(&mut st, now);
                }
            }
            // Outside the lock: the system calls.
            let turn = this.io(cx);
            // Under the lock again: what the system calls did, and the answers.
            let (deadline, failed, wants_to_write, more_answers, news) = {
                let mut st = conn.state.lock();
                if turn.wrote > 0 {
                    st.mux.transmitted(turn.wrote);
                }
                match turn.read {
                    Some(0) => st.mux.handle_closed(),
                    Some(n) => st.mux.handle_bytes(&this.read_buf[..n]),
                    None => {}
                }
                if let Some(e) = turn.io_error {
                    st.mux.fail(e);
                }
                let deadline = loop {
                    match st.mux.poll(now) {
                        Step::Push(v) => {
                            if let Some(tx) = &this.pushes {
                                let _ = tx.send(v);
                            }
                        }
                        Step::Wait(deadline) => break deadline,
                        Step::Failed => break None,
                    }
                };
                let more_answers = this.answer_some(&mut st);
                let more = st.mux.wants_to_write()
                    || !this.writing.is_empty()
                    || this.writing_shared.is_some();
                // Another turn follows at once after bytes came in, a failure, or a write
                // that left more to write.
                // A caller queued a request, or the last handle went, while the system
                // calls ran and no waker was stored: it wakes nobody, so this turn sees to it.
                let news = std::mem::take(&mut st.unseen);
                let again = turn.read.is_some_and(|n| n > 0)
                    || st.mux.is_failed()
                    || (more && turn.wrote > 0)
                    || news;
                if !again {
                    // Nothing more to do now: a caller that queues a request wakes the
                    // task (the check and the waker are under one lock).
                    if !st.task.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                        st.task = Some(cx.waker().clone());
                    }
                }
                (
                    deadline,
                    st.mux.is_failed(),
                    st.mux.wants_to_write(),
                    more_answers,
                    news,
                )
            };
            this.wake_callers();
            if failed {
                continue;
            }
            if deadline != this.armed {
                this.armed = deadline;
                let at = deadline.map_or_else(far, tokio::time::Instant::from_std);
                this.timer.as_mut().reset(at);
            }
            if this.armed.is_some() && this.timer.as_mut().poll(cx).is_ready() {
                this.armed = None;
                conn.state.lock().mux.handle_timeout(super::now());
                continue;
            }
            if more_answers {
                // The callers just woken run first and what they send goes out before
                // the next group is handed out: the server has work while this side
                // finishes the rest.
                this.yielded = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let read_more = turn.read.is_some_and(|n| n > 0);
            let write_more = turn.wrote > 0
                && (!this.writing.is_empty() || this.writing_shared.is_some() || wants_to_write);
            if !read_more && !write_more && !news {
                return Poll::Pending;
            }
        }
    }
}

impl Driver {
    /// Takes the machine's next chunk to write (a copy, or a share of a large one),
    /// answering its looks on the way.
    fn take_chunk(&mut self, st: &mut State, now: Instant) {
        loop {
            match st.mux.poll_transmit(now) {
                Transmit::Idle => return,
                // Now, before the batch is recorded: nothing is awaited between the look
                // and the write. What the stream holds is read at once where it can be
                // (the machine judges it, then asks again), so the reactor need not have
                // reported it.
                Transmit::Look => match self.stream.read_now(&mut self.read_buf) {
                    Some(Ok(0)) => st.mux.handle_closed(),
                    Some(Ok(n)) => st.mux.handle_bytes(&self.read_buf[..n]),
                    Some(Err(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        st.mux.handle_look(Readiness::Quiet);
                    }
                    Some(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => {
                        st.mux.handle_look(Readiness::Unknown);
                    }
                    Some(Err(e)) => st.mux.fail(Error::Io(e)),
                    None => st.mux.handle_look(self.stream.readiness()),
                },
                Transmit::Write(bytes) => {
                    self.writing.extend_from_slice(bytes);
                    self.yielded = false;
                    return;
                }
                Transmit::WriteShared(bytes) => {
                    self.writing_shared = Some(bytes.clone());
                    self.yielded = false;
                    return;
                }
            }
        }
    }

    /// Writes what is in hand and reads once, without the lock.
    fn io(&mut self, cx: &mut Context<'_>) -> Turn {
        let mut turn = Turn {
            wrote: 0,
            read: None,
            io_error: None,
        };
        loop {
            let chunk: &[u8] = match &self.writing_shared {
                Some(b) => b,
                None => &self.writing,
            };
            if chunk.is_empty() {
                break;
            }
            match Pin::new(&mut self.stream).poll_write(cx, chunk) {
                Poll::Ready(Ok(0)) => {
                    turn.io_error = Some(Error::Io(std::io::ErrorKind::WriteZero.into()));
                    return turn;
                }
                Poll::Ready(Ok(n)) => {
                    turn.wrote += n;
                    self.flush = true;
                    match &mut self.writing_shared {
                        Some(b) => {
                            b.advance(n);
                            if b.is_empty() {
                                self.writing_shared = None;
                            }
                        }
                        None => {
                            self.writing.advance(n);
                            if self.writing.is_empty() {
                                self.writing.clear();
                            }
                        }
                    }
                }
                Poll::Ready(Err(e)) => {
                    turn.io_error = Some(Error::Io(e));
                    return turn;
                }
                Poll::Pending => break,
            }
        }
        if self.flush {
            match Pin::new(&mut self.stream).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.flush = false,
                Poll::Ready(Err(e)) => {
                    turn.io_error = Some(Error::Io(e));
                    return turn;
                }
                Poll::Pending => {}
            }
        }
        let mut buf = ReadBuf::new(&mut self.read_buf);
        match Pin::new(&mut self.stream).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) => turn.read = Some(buf.filled().len()),
            Poll::Ready(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Poll::Ready(Err(e)) => turn.io_error = Some(Error::Io(e)),
            Poll::Pending => {}
        }
        turn
    }

    /// Moves the machine's next group of answers ([`Mux::answer_group`]) into their
    /// slots, noting whom to wake; true when more are left for the next turn.
    fn answer_some(&mut self, st: &mut State) -> bool {
        for _ in 0..st.mux.answer_group() {
            let Some((slot, outcome)) = st.mux.next_answer() else {
                return false;
            };
            if let Some(w) = st.slots.complete(slot, outcome) {
                self.wake.push(w);
            }
        }
        true
    }

    /// Moves the machine's answers into their slots, noting whom to wake.
    fn answer(&mut self, st: &mut State) {
        while let Some((slot, outcome)) = st.mux.next_answer() {
            if let Some(w) = st.slots.complete(slot, outcome) {
                self.wake.push(w);
            }
        }
    }

    fn wake_callers(&mut self) {
        for w in self.wake.drain(..) {
            w.wake();
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // A runtime shut down with the task still running: every caller is told, and no
        // new request may come.
        self.conn.alive.store(false, Ordering::Release);
        let conn = Arc::clone(&self.conn);
        let mut st = conn.state.lock();
        if !st.mux.is_failed() {
            st.mux.fail(Error::Broken);
        }
        self.answer(&mut st);
        drop(st);
        self.wake_callers();
    }
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver").finish_non_exhaustive()
    }
}
