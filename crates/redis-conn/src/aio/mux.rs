//! The multiplexed connection: many tasks share one connection; their requests are
//! written together and the replies matched to them in order, as the core owes them.
//!
//! Two tasks drive the core of each live connection. The writer takes whatever requests
//! are queued, records each with the core (`Core::queue`) and with the list of waiting
//! callers, in one step under the lock, then writes them all in one write. The reader
//! feeds what arrives to the core and hands each reply the core gives
//! (`Core::poll_reply`) to the caller at the head of the list: the core decides what is
//! a reply, a push, out of step or late; the driver only knows whose turn it is.

use super::conn::closed;
use super::stream::{AsyncStream, Opener};
use super::{copy_error, until, Connection};
use crate::machine::{Core, Poll, ReplyTimeout};
use crate::{ConnectionInfo, Error};
use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use resp_proto::Value;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot, Notify};

/// Most bytes gathered into one write; what is queued beyond goes in the next one.
const MAX_BATCH: usize = 1 << 20;

/// Read buffer of the reader task.
const READ_CHUNK: usize = 64 * 1024;

/// Wait before the first reconnect attempt after a failed one, doubled after each further
/// failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(10);

/// Longest wait between reconnect attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Replies to one request: all of them, or the error that ended the connection.
type Answer = Result<Vec<Value>, Error>;

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
/// Must be used inside a tokio runtime: each connection runs a reader and a writer task.
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

#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
    next_attempt: Option<Instant>,
}

/// The way to the tasks of the live connection.
#[derive(Clone, Debug)]
struct Link {
    tx: mpsc::UnboundedSender<Request>,
    driver: Arc<Driver>,
    /// The connector that picked the server, and the connection's epoch.
    epoch: Option<(Arc<dyn super::Connector>, u64)>,
}

impl Link {
    /// Whether requests may go over it: its tasks run and, where a connector picked its
    /// server, that choice still stands (a Sentinel failover ends it).
    fn usable(&self) -> bool {
        self.driver.alive.load(Ordering::Acquire)
            && self.epoch.as_ref().map_or(true, |(c, e)| c.is_current(*e))
    }
}

/// One caller's request.
#[derive(Debug)]
struct Request {
    bytes: Bytes,
    replies: usize,
    timeout: ReplyTimeout,
    answer: oneshot::Sender<Answer>,
}

/// A caller waiting for replies, in the order the core owes them.
#[derive(Debug)]
struct Waiting {
    answer: oneshot::Sender<Answer>,
    want: usize,
    got: Vec<Value>,
}

/// What the reader and writer tasks of one connection share.
#[derive(Debug)]
struct Driver {
    state: Mutex<DriverState>,
    alive: AtomicBool,
    /// The writer queued requests, or the connection failed: the reader looks again.
    wake_reader: Notify,
    /// The connection failed: the writer stops.
    wake_writer: Notify,
    pushes: Option<mpsc::UnboundedSender<Value>>,
}

#[derive(Debug)]
struct DriverState {
    core: Core,
    waiting: VecDeque<Waiting>,
    failure: Option<Error>,
    /// The reader waits with no deadline (nothing was owed at its last step): requests
    /// the writer queues must wake it to start their reply deadline. A reader that has a
    /// deadline steps again when a reply arrives or the deadline passes, and sees them then.
    reader_idle: bool,
}

impl Multiplexed {
    /// A multiplexed connection to the server `info` describes, opened on first use.
    pub fn new(info: ConnectionInfo) -> Multiplexed {
        Self::build(info, None)
    }

    /// As [`Multiplexed::new`], sending every RESP3 push the server sends on it (client
    /// tracking invalidations, say) to `pushes`.
    pub fn with_pushes(info: ConnectionInfo, pushes: mpsc::UnboundedSender<Value>) -> Multiplexed {
        Self::build(info, Some(pushes))
    }

    /// As [`Multiplexed::new`], each connection going to the server `connector` picks
    /// when it is opened, and replaced once `connector` says its epoch is over.
    pub fn with_connector(
        info: ConnectionInfo,
        connector: Arc<dyn super::Connector>,
    ) -> Multiplexed {
        Self::build_with(Opener::with_connector(info, connector), None)
    }

    fn build(info: ConnectionInfo, pushes: Option<mpsc::UnboundedSender<Value>>) -> Multiplexed {
        Self::build_with(Opener::new(info), pushes)
    }

    fn build_with(opener: Opener, pushes: Option<mpsc::UnboundedSender<Value>>) -> Multiplexed {
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
        if replies == 0 {
            // The core would take it for a subscriber's request, and the connection every
            // caller shares would become a stream of pushes.
            return Err(Error::Unsupported(
                "a request on a shared connection must announce its replies",
            ));
        }
        let (answer, rx) = oneshot::channel();
        let mut request = Request {
            bytes,
            replies,
            timeout,
            answer,
        };
        // A connection that failed between the look and the send refuses the request
        // unsent: try once more on a fresh one.
        for _ in 0..2 {
            // The common case sends under the lock, without cloning the link.
            let sent = match self.shared.link.lock().as_ref() {
                Some(link) if link.usable() => Ok(link.tx.send(request)),
                _ => Err(request),
            };
            let result = match sent {
                Ok(sent) => sent,
                // Boxed: opening a connection takes far more state than sending, and
                // would otherwise make every request's future as large.
                Err(request) => Box::pin(self.link()).await?.tx.send(request),
            };
            match result {
                Ok(()) => return rx.await.unwrap_or(Err(Error::Broken)),
                Err(mpsc::error::SendError(back)) => {
                    if let Some(link) = self.shared.link.lock().as_ref() {
                        link.driver.alive.store(false, Ordering::Release);
                    }
                    request = back;
                }
            }
        }
        Err(Error::Broken)
    }

    /// Sends one encoded command and returns its reply; an error reply becomes
    /// [`Error::Server`].
    ///
    /// Cancellation: cancel-safe, as [`Multiplexed::send`].
    ///
    /// # Errors
    /// As [`Multiplexed::send`], plus [`Error::Server`].
    pub async fn request(&self, packed: Bytes, timeout: ReplyTimeout) -> Result<Value, Error> {
        let mut replies = self.send(packed, 1, timeout).await?;
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
            .is_some_and(|l| l.driver.alive.load(Ordering::Acquire))
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
        if let Some(next) = backoff.next_attempt {
            let now = Instant::now();
            if now < next {
                return Err(Error::Connect {
                    addr: self.info().addr.to_string(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::ConnectionRefused,
                        format!(
                            "reconnecting after {} failed attempts: next attempt in {} ms",
                            backoff.failures,
                            (next - now).as_millis()
                        ),
                    ),
                });
            }
        }
        match Connection::open_until(&self.shared.opener, None).await {
            Ok(conn) => {
                *backoff = Backoff::default();
                let link = spawn(conn, self.shared.pushes.clone());
                if self.shared.link.lock().replace(link.clone()).is_some() {
                    // A connection that failed is replaced.
                    crate::observe::reconnect(self.info(), "multiplexed");
                }
                Ok(link)
            }
            Err(e) => {
                backoff.failures += 1;
                let wait = FIRST_BACKOFF
                    .saturating_mul(1 << (backoff.failures - 1).min(16))
                    .min(MAX_BACKOFF);
                backoff.next_attempt = Some(Instant::now() + wait);
                Err(e)
            }
        }
    }

    fn live(&self) -> Option<Link> {
        let link = self.shared.link.lock();
        link.as_ref().filter(|l| l.usable()).cloned()
    }
}

/// Starts the reader and writer tasks of an open connection.
fn spawn(conn: Connection, pushes: Option<mpsc::UnboundedSender<Value>>) -> Link {
    let epoch = conn.epoch();
    let (stream, core) = conn.into_parts();
    let (rd, wr) = tokio::io::split(stream);
    let (tx, rx) = mpsc::unbounded_channel();
    let driver = Arc::new(Driver {
        state: Mutex::new(DriverState {
            core,
            waiting: VecDeque::new(),
            failure: None,
            reader_idle: true,
        }),
        alive: AtomicBool::new(true),
        wake_reader: Notify::new(),
        wake_writer: Notify::new(),
        pushes,
    });
    tokio::spawn(write_loop(rx, wr, Arc::clone(&driver)));
    tokio::spawn(read_loop(rd, Arc::clone(&driver)));
    Link { tx, driver, epoch }
}

async fn write_loop(
    mut rx: mpsc::UnboundedReceiver<Request>,
    mut wr: WriteHalf<Box<dyn AsyncStream>>,
    driver: Arc<Driver>,
) {
    let mut buf = BytesMut::new();
    let mut batch = Vec::new();
    loop {
        let first = tokio::select! {
            r = rx.recv() => r,
            () = driver.wake_writer.notified() => break,
        };
        let Some(first) = first else {
            // Every handle is gone: close the stream; the server closes its side and the
            // reader ends.
            let _ = wr.shutdown().await;
            driver.fail(Error::Broken);
            break;
        };
        // Let the tasks that are ready run first: those a burst of replies just woke send
        // their next requests, and they go out in this write instead of one write each.
        tokio::task::yield_now().await;
        let mut size = first.bytes.len();
        batch.push(first);
        while size < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => {
                    size += r.bytes.len();
                    batch.push(r);
                }
                Err(_) => break,
            }
        }
        buf.clear();
        let (deadline, reader_idle) = {
            let mut st = driver.state.lock();
            if st.failure.is_some() {
                for r in batch.drain(..) {
                    let _ = r.answer.send(Err(st.failure_copy()));
                }
                break;
            }
            let now = Instant::now();
            for r in batch.drain(..) {
                // A caller that already gave up is not sent at all.
                if r.answer.is_closed() {
                    continue;
                }
                // Recorded with the core and in the waiting list in one step, in the
                // order the bytes go out: the core's owed queue and this list agree.
                match st.core.queue(&[&r.bytes], r.replies, r.timeout, now) {
                    Ok(()) => {
                        buf.extend_from_slice(&r.bytes);
                        st.waiting.push_back(Waiting {
                            answer: r.answer,
                            want: r.replies,
                            got: Vec::with_capacity(r.replies),
                        });
                    }
                    Err(e) => {
                        let _ = r.answer.send(Err(e));
                    }
                }
            }
            // Only a batch that queued something gives the reader a deadline to start.
            let wake = !buf.is_empty() && std::mem::take(&mut st.reader_idle);
            (st.core.write_deadline(), wake)
        };
        if reader_idle {
            // The reader starts the reply deadline now.
            driver.wake_reader.notify_one();
        }
        if buf.is_empty() {
            continue;
        }
        match until(deadline, wr.write_all(&buf)).await {
            Ok(Ok(())) => driver.state.lock().core.handle_written(),
            Ok(Err(e)) => {
                driver.fail(Error::Io(e));
                break;
            }
            Err(()) => {
                driver.fail(Error::Timeout);
                break;
            }
        }
        if buf.capacity() > MAX_BATCH * 2 {
            buf = BytesMut::new();
        }
    }
    // Whatever is still queued is answered, so no caller waits for a dead connection.
    rx.close();
    while let Ok(r) = rx.try_recv() {
        let e = driver.state.lock().failure_copy();
        let _ = r.answer.send(Err(e));
    }
}

async fn read_loop(mut rd: ReadHalf<Box<dyn AsyncStream>>, driver: Arc<Driver>) {
    let mut buf = vec![0u8; READ_CHUNK];
    // One timer for the life of the reader, moved only when the deadline moves.
    let far = || tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);
    let sleep = tokio::time::sleep_until(far());
    tokio::pin!(sleep);
    let mut armed = None;
    loop {
        let Some(deadline) = driver.step() else {
            return;
        };
        if deadline != armed {
            armed = deadline;
            sleep
                .as_mut()
                .reset(deadline.map_or_else(far, tokio::time::Instant::from_std));
        }
        tokio::select! {
            r = rd.read(&mut buf) => match r {
                Ok(0) => {
                    driver.state.lock().core.handle_closed();
                    driver.fail(closed());
                    return;
                }
                Ok(n) => driver.state.lock().core.handle_bytes(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    driver.fail(Error::Io(e));
                    return;
                }
            },
            // The core judges the deadline at the next step.
            () = sleep.as_mut(), if armed.is_some() => armed = None,
            () = driver.wake_reader.notified() => {}
        }
    }
}

impl Driver {
    /// Hands out every reply and push the core has; returns the deadline of the next
    /// read (`None` inside: none), or `None` once the connection failed.
    ///
    /// Callers are woken while the lock is held: waking them after letting it go measured
    /// slower on the async benchmark (50 tasks, 2 cores).
    fn step(&self) -> Option<Option<Instant>> {
        let mut st = self.state.lock();
        if st.failure.is_some() {
            return None;
        }
        let now = Instant::now();
        let deadline = loop {
            match st.core.poll_reply(now) {
                Ok(Poll::Reply(v)) => {
                    let Some(head) = st.waiting.front_mut() else {
                        drop(st);
                        self.fail(Error::OutOfStep("a reply with no caller waiting".into()));
                        return None;
                    };
                    head.got.push(v);
                    if head.got.len() == head.want {
                        if let Some(done) = st.waiting.pop_front() {
                            // A caller that gave up is gone: its replies are dropped here.
                            let _ = done.answer.send(Ok(done.got));
                        }
                    }
                }
                Ok(Poll::NeedInput(d)) => break d,
                Ok(Poll::Idle) => break None,
                Err(e) => {
                    drop(st);
                    self.fail(e);
                    return None;
                }
            }
        };
        loop {
            match st.core.poll_push() {
                Ok(Some(push)) => {
                    if let Some(tx) = &self.pushes {
                        let _ = tx.send(push);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    drop(st);
                    self.fail(e);
                    return None;
                }
            }
        }
        if st.core.pending_replies() == 0 && st.core.state() != st.core.configured() {
            // A request changed what every later caller would run in: no one may use
            // this connection again.
            drop(st);
            self.fail(Error::Unsupported(
                "a command changed the state of a shared connection; it was closed",
            ));
            return None;
        }
        st.reader_idle = deadline.is_none();
        Some(deadline)
    }

    /// Ends the connection: every waiting caller gets a copy of `e`, the next call opens
    /// a new connection.
    fn fail(&self, e: Error) {
        self.alive.store(false, Ordering::Release);
        let waiting = {
            let mut st = self.state.lock();
            st.core.mark_broken();
            if st.failure.is_none() {
                st.failure = Some(e);
            }
            std::mem::take(&mut st.waiting)
        };
        let st = self.state.lock();
        for w in waiting {
            let _ = w.answer.send(Err(st.failure_copy()));
        }
        drop(st);
        self.wake_reader.notify_one();
        self.wake_writer.notify_one();
    }
}

impl DriverState {
    fn failure_copy(&self) -> Error {
        self.failure.as_ref().map_or(Error::Broken, copy_error)
    }
}
