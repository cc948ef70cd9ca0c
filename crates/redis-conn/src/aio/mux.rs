//! The multiplexed connection: many tasks share one connection; their requests are
//! written together and the replies matched to them in order, as the core owes them.
//!
//! Every decision is the sans-I/O [`Mux`](crate::mux::Mux)'s: which requests go in a
//! batch, when the transport must be looked at before one (the idle look), whose turn a
//! reply is, what a failure does to each caller, when to try connecting again. This
//! driver only moves bytes between the machine and the transport, reads the clock and
//! sleeps: one task per connection polls the requests channel, the transport's write and
//! read sides and one timer, and the machine tells it what each means.

use super::transport::{Opener, Transport};
use super::{now, Connection};
use crate::machine::ReplyTimeout;
use crate::mux::{Backoff, Mux, Outcome, Parts, Request, Step, Transmit, Waiter};
use crate::{ConnectionInfo, Error};
use bytes::Bytes;
use parking_lot::Mutex;
use resp_proto::Value;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, oneshot};

/// Attempts at sending one request whose earlier tries were refused unsent (the
/// connection failed, or its idle look found bytes nobody asked for, before the request's
/// write began).
const SEND_ATTEMPTS: usize = 3;

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
/// Before a connection that owes nothing carries a new request, its transport is looked
/// at without waiting ([`Transport::readiness`]: one system call for the built-in ones):
/// bytes found there were sent before the request and belong to nobody, so the connection
/// is dropped and the request sent on a new one instead of reading them as its reply.
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
    connecting: tokio::sync::Mutex<Backoff>,
    pushes: Option<mpsc::UnboundedSender<Value>>,
}

/// The way to the task of the live connection.
#[derive(Clone, Debug)]
struct Link {
    tx: mpsc::UnboundedSender<Request<Answer>>,
    alive: Arc<AtomicBool>,
    /// The connector that picked the server, and the connection's epoch.
    epoch: Option<(Arc<dyn super::Connector>, u64)>,
}

impl Link {
    /// Whether requests may go over it: its task runs and, where a connector picked its
    /// server, that choice still stands (a Sentinel failover ends it).
    fn usable(&self) -> bool {
        self.alive.load(Ordering::Acquire)
            && self.epoch.as_ref().map_or(true, |(c, e)| c.is_current(*e))
    }
}

/// A caller waiting for its request's outcome.
#[derive(Debug)]
struct Answer(oneshot::Sender<Outcome>);

impl Waiter for Answer {
    fn answer(self, outcome: Outcome) {
        // A caller that gave up is gone: what it was owed is dropped here.
        let _ = self.0.send(outcome);
    }

    fn is_gone(&self) -> bool {
        self.0.is_closed()
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
                connecting: tokio::sync::Mutex::new(Backoff::default()),
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
        self.send_parts(Parts::whole(bytes), replies, timeout).await
    }

    /// As [`Multiplexed::send`], the request given as a header and a body: a long body is
    /// written from its own buffer rather than copied into the batch, so a large value is
    /// held once (by the caller's `Bytes`, which the connection shares).
    ///
    /// Cancellation: cancel-safe, as [`Multiplexed::send`].
    ///
    /// # Errors
    /// As [`Multiplexed::send`].
    pub async fn send_parts(
        &self,
        parts: Parts,
        replies: usize,
        timeout: ReplyTimeout,
    ) -> Result<Vec<Value>, Error> {
        if replies == 0 {
            // The core would take it for a subscriber's request, and the connection every
            // caller shares would become a stream of pushes.
            return Err(Error::Unsupported(
                "a request on a shared connection must announce its replies",
            ));
        }
        let mut last = Error::Broken;
        for _ in 0..SEND_ATTEMPTS {
            let (tx, rx) = oneshot::channel();
            let request = Request {
                parts: parts.clone(),
                replies,
                timeout,
                waiter: Answer(tx),
            };
            // The common case sends under the lock, without cloning the link.
            let refused = match self.shared.link.lock().as_ref() {
                Some(link) if link.usable() => link.tx.send(request).err().map(|e| e.0),
                _ => Some(request),
            };
            if let Some(request) = refused {
                // Boxed: opening a connection takes far more state than sending, and
                // would otherwise make every request's future as large.
                let link = Box::pin(self.link()).await?;
                if link.tx.send(request).is_err() {
                    // Its task ended between the look and the send: nothing went out.
                    link.alive.store(false, Ordering::Release);
                    continue;
                }
            }
            match rx.await {
                Ok(Outcome::Replies(replies)) => return Ok(replies),
                Ok(Outcome::Failed(e) | Outcome::Refused(e)) => return Err(e),
                // Never written: it goes on the next connection.
                Ok(Outcome::Unsent(e)) => last = e,
                // Dropped in the channel by a task that ended: never written either.
                Err(_) => last = Error::Broken,
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
        self.request_parts(Parts::whole(packed), timeout).await
    }

    /// As [`Multiplexed::request`], the command given as a header and a body (see
    /// [`Multiplexed::send_parts`]).
    ///
    /// Cancellation: cancel-safe, as [`Multiplexed::send`].
    ///
    /// # Errors
    /// As [`Multiplexed::request`].
    pub async fn request_parts(&self, parts: Parts, timeout: ReplyTimeout) -> Result<Value, Error> {
        let mut replies = self.send_parts(parts, 1, timeout).await?;
        match replies.pop() {
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
            .is_some_and(|l| l.alive.load(Ordering::Acquire))
    }

    /// The live connection, opening one if there is none.
    async fn link(&self) -> Result<Link, Error> {
        if let Some(link) = self.live() {
            return Ok(link);
        }
        let mut backoff = self.shared.connecting.lock().await;
        // Another caller may have opened it while this one waited.
        if let Some(link) = self.live() {
            return Ok(link);
        }
        if let Err(wait) = backoff.check(now()) {
            return Err(Error::Connect {
                addr: self.info().addr.to_string(),
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
                if self.shared.link.lock().replace(link.clone()).is_some() {
                    // A connection that failed is replaced.
                    crate::observe::reconnect(self.info(), "multiplexed");
                }
                Ok(link)
            }
            Err(e) => {
                backoff.failed(now());
                Err(e)
            }
        }
    }

    fn live(&self) -> Option<Link> {
        let link = self.shared.link.lock();
        link.as_ref().filter(|l| l.usable()).cloned()
    }
}

/// Starts the task of an open connection.
fn spawn(conn: Connection, pushes: Option<mpsc::UnboundedSender<Value>>) -> Link {
    let epoch = conn.epoch();
    let (stream, core) = conn.into_parts();
    let (tx, rx) = mpsc::unbounded_channel();
    let alive = Arc::new(AtomicBool::new(true));
    tokio::spawn(Driver {
        mux: Mux::new(core),
        stream,
        requests: rx,
        pushes,
        alive: Arc::clone(&alive),
        timer: Box::pin(tokio::time::sleep_until(far())),
        armed: None,
        flush: false,
        yielded: false,
    });
    Link { tx, alive, epoch }
}

/// A deadline far enough away to mean "none", for the timer while it is not armed.
fn far() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(86_400 * 365)
}

/// The task of one connection: moves bytes between the machine and the transport.
struct Driver {
    mux: Mux<Answer>,
    stream: Box<dyn Transport>,
    requests: mpsc::UnboundedReceiver<Request<Answer>>,
    pushes: Option<mpsc::UnboundedSender<Value>>,
    alive: Arc<AtomicBool>,
    /// One timer for the life of the connection, moved only when the deadline moves.
    timer: Pin<Box<tokio::time::Sleep>>,
    armed: Option<Instant>,
    /// Bytes were written since the transport was last flushed (TLS buffers them).
    flush: bool,
    /// The task let the others run once since new requests came, so that the callers the
    /// last replies woke queue theirs and go out in the same write.
    yielded: bool,
}

impl Future for Driver {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            if this.mux.is_failed() {
                this.end();
                return Poll::Ready(());
            }
            let (open, new) = this.take_requests(cx);
            if !open {
                // Every handle is gone: nobody can be waiting.
                this.mux.fail(Error::Broken);
                continue;
            }
            if new && !this.yielded {
                // Let the tasks that are ready run first: those a burst of replies just
                // woke send their next requests, and they go out in this write instead
                // of one write each.
                this.yielded = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let now = now();
            this.write(cx, now);
            let read = this.read(cx);
            let deadline = loop {
                match this.mux.poll(now) {
                    Step::Push(v) => {
                        if let Some(tx) = &this.pushes {
                            let _ = tx.send(v);
                        }
                    }
                    Step::Wait(deadline) => break deadline,
                    Step::Failed => break None,
                }
            };
            if this.mux.is_failed() {
                continue;
            }
            if deadline != this.armed {
                this.armed = deadline;
                let at = deadline.map_or_else(far, tokio::time::Instant::from_std);
                this.timer.as_mut().reset(at);
            }
            if this.armed.is_some() && this.timer.as_mut().poll(cx).is_ready() {
                this.armed = None;
                this.mux.handle_timeout(super::now());
                continue;
            }
            // A read that took bytes may be followed by more; every other source has
            // registered this task's waker by now.
            if !read {
                return Poll::Pending;
            }
        }
    }
}

impl Driver {
    /// Moves new requests into the machine: whether the channel is still open (false once
    /// every handle is gone), and whether any came.
    fn take_requests(&mut self, cx: &mut Context<'_>) -> (bool, bool) {
        let mut new = false;
        loop {
            match self.requests.poll_recv(cx) {
                Poll::Ready(Some(request)) => {
                    new = true;
                    if let Err(request) = self.mux.submit(request) {
                        request.waiter.answer(Outcome::Unsent(Error::Broken));
                    }
                }
                Poll::Ready(None) => return (false, new),
                Poll::Pending => return (true, new),
            }
        }
    }

    /// Writes what the machine has until it has nothing or the transport would block.
    fn write(&mut self, cx: &mut Context<'_>, now: Instant) {
        self.yielded = false;
        loop {
            match self.mux.poll_transmit(now) {
                Transmit::Idle => break,
                // Now, with no await between the look and the batch's write.
                Transmit::Look => self.mux.handle_look(self.stream.readiness()),
                Transmit::Write(bytes) => match Pin::new(&mut self.stream).poll_write(cx, bytes) {
                    Poll::Ready(Ok(0)) => {
                        let e = std::io::Error::from(std::io::ErrorKind::WriteZero);
                        self.mux.fail(Error::Io(e));
                    }
                    Poll::Ready(Ok(n)) => {
                        self.mux.transmitted(n);
                        self.flush = true;
                    }
                    Poll::Ready(Err(e)) => self.mux.fail(Error::Io(e)),
                    Poll::Pending => break,
                },
            }
        }
        if self.flush && !self.mux.is_failed() {
            match Pin::new(&mut self.stream).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.flush = false,
                Poll::Ready(Err(e)) => self.mux.fail(Error::Io(e)),
                Poll::Pending => {}
            }
        }
    }

    /// Reads once into the machine; true when bytes came.
    fn read(&mut self, cx: &mut Context<'_>) -> bool {
        if self.mux.is_failed() {
            return false;
        }
        let mut buf = ReadBuf::new(self.mux.input_buffer());
        match Pin::new(&mut self.stream).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) => {
                let n = buf.filled().len();
                if n == 0 {
                    self.mux.handle_closed();
                    false
                } else {
                    self.mux.handle_input(n);
                    true
                }
            }
            Poll::Ready(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => true,
            Poll::Ready(Err(e)) => {
                self.mux.fail(Error::Io(e));
                false
            }
            Poll::Pending => false,
        }
    }

    /// The connection failed: no new request may come, and whatever is still in the
    /// channel is answered unsent.
    fn end(&mut self) {
        self.alive.store(false, Ordering::Release);
        self.requests.close();
        let failure = self.mux.failure().map_or(Error::Broken, Error::duplicate);
        while let Ok(r) = self.requests.try_recv() {
            r.waiter.answer(Outcome::Unsent(failure.duplicate()));
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // A runtime shut down with the task still running: no new request may come (the
        // machine's own drop answers those it holds).
        self.alive.store(false, Ordering::Release);
    }
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver").finish_non_exhaustive()
    }
}
