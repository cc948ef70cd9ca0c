//! The simulated network: in-memory connections between the client's transports and the
//! model server, with every choice drawn from the run's seed: how many bytes each read
//! and write moves, how full a pipe may get (a slow reader), where a connection is cut,
//! and a reactor that reports bytes later than they arrive in the socket.
//!
//! The client side is an [`aio::Transport`](redis_client::redis_conn::aio::Transport):
//! `poll_read` sees only the bytes the "reactor" has reported (`visible`), while
//! `readiness`, the look the client makes before an idle connection carries a request,
//! sees everything in the socket, as a `MSG_PEEK` system call does.
//!
//! The run is single-threaded, yet a real runtime has other threads: a caller there can
//! queue its request at any moment, while a connection's task is inside a system call.
//! [`SideCalls`] stands in for them: a call handed to it is started (polled once) from
//! inside one of the client's reads or writes, chosen by the seed.

use crate::rng::Rng;
use parking_lot::Mutex;
use redis_client::redis_conn::aio::now;
use redis_client::redis_conn::aio::{BoxFuture, Connector, Dialer, Opened, Transport};
use redis_client::redis_conn::Readiness;
use redis_client::ConnError;
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// One direction of a connection.
#[derive(Debug, Default)]
struct Pipe {
    buf: VecDeque<u8>,
    /// Bytes at the front of `buf` the reading side has been told about.
    visible: usize,
    /// The writing side shut down: end of stream once `buf` is drained.
    closed: bool,
    /// Most bytes buffered; writes beyond wait for the reader.
    capacity: usize,
    reader: Option<Waker>,
    writer: Option<Waker>,
    /// Bytes ever written.
    total: usize,
}

impl Pipe {
    fn new(capacity: usize) -> Pipe {
        Pipe {
            capacity,
            ..Pipe::default()
        }
    }

    fn wake_reader(&mut self) {
        if let Some(w) = self.reader.take() {
            w.wake();
        }
    }

    fn wake_writer(&mut self) {
        if let Some(w) = self.writer.take() {
            w.wake();
        }
    }
}

/// Where a connection will be cut, if it will.
#[derive(Clone, Copy, Debug)]
pub struct Cut {
    /// The direction: `true` for server to client.
    pub down: bool,
    /// After this many bytes in that direction.
    pub after: usize,
}

/// One connection between a client transport and the model server.
#[derive(Debug)]
pub struct Link {
    /// Its number, in the order connections were opened.
    pub id: u64,
    up: Pipe,
    down: Pipe,
    /// Cut: both sides fail from now on.
    reset: bool,
    cut: Option<Cut>,
    /// Reported bytes of `down` stay hidden from the client's reads until then.
    hidden_until: Option<Instant>,
    /// Most bytes one client read takes (byte splits).
    max_read: usize,
    /// Most bytes one client write gives (partial writes).
    max_write: usize,
    /// The client's transport can read without waiting, past the reactor
    /// ([`Transport::read_now`]); otherwise the client only looks.
    reads_now: bool,
    rng: Rng,
    /// The model is in the middle of a request (bytes of it buffered, or executing it).
    pub server_busy: bool,
    /// The client dropped its transport.
    pub client_gone: bool,
}

/// A shared handle on a [`Link`].
pub type LinkRef = Arc<Mutex<Link>>;

impl Link {
    fn new(id: u64, rng: &mut Rng, faults: &Faults) -> Link {
        let mut own = rng.fork();
        let capacity = if own.chance(faults.slow_reader) {
            own.between(1, 64) as usize
        } else {
            1 << 20
        };
        let cut = own.chance(faults.cut).then(|| Cut {
            down: own.chance(50),
            after: own.below(400) as usize,
        });
        let max_read = if own.chance(50) {
            own.between(1, 16) as usize
        } else {
            usize::MAX
        };
        let max_write = if own.chance(30) {
            own.between(1, 16) as usize
        } else {
            usize::MAX
        };
        let reads_now = own.chance(75);
        Link {
            id,
            reads_now,
            up: Pipe::new(capacity),
            down: Pipe::new(usize::MAX),
            reset: false,
            cut,
            hidden_until: None,
            max_read,
            max_write,
            rng: own,
            server_busy: false,
            client_gone: false,
        }
    }

    /// Fails both sides at once, as a reset connection does.
    pub fn reset(&mut self) {
        self.reset = true;
        self.up.wake_reader();
        self.up.wake_writer();
        self.down.wake_reader();
        self.down.wake_writer();
    }

    /// True once the connection was reset, or both sides have closed.
    pub fn is_dead(&self) -> bool {
        self.reset || self.client_gone
    }

    /// Nothing is in flight either way, the server is between requests, and the client
    /// has read every byte sent to it: an extra reply now reaches a connection that owes
    /// nothing, which the client must notice before it carries a new request.
    pub fn is_idle(&self) -> bool {
        self.is_caught_up() && self.down.buf.is_empty()
    }

    /// The server has answered every request the client wrote, and is between requests:
    /// an extra reply now comes behind every reply owed for what was written, which the
    /// client must catch before it writes another request, whether it has read those
    /// replies yet or not.
    pub fn is_caught_up(&self) -> bool {
        !self.is_dead() && !self.server_busy && self.up.buf.is_empty()
    }

    /// The bytes the client wrote, for the server; `None` at the end of the stream.
    pub fn server_read(&mut self, cx: &mut Context<'_>) -> Poll<Option<Vec<u8>>> {
        if self.reset {
            return Poll::Ready(None);
        }
        if !self.up.buf.is_empty() {
            let n = self.up.buf.len().min(self.rng.between(1, 256) as usize);
            let bytes: Vec<u8> = self.up.buf.drain(..n).collect();
            self.up.visible = self.up.buf.len();
            self.up.wake_writer();
            return Poll::Ready(Some(bytes));
        }
        if self.up.closed {
            return Poll::Ready(None);
        }
        self.up.reader = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Sends `bytes` to the client, visible to its reads at once unless a reactor lag is
    /// in force. Returns false once the connection is cut (the bytes past the cut are
    /// lost).
    pub fn server_write(&mut self, bytes: &[u8], now: Instant) -> bool {
        if self.reset {
            return false;
        }
        let mut bytes = bytes;
        let mut cut_now = false;
        if let Some(cut) = self.cut.filter(|c| c.down) {
            let left = cut.after.saturating_sub(self.down.total);
            if bytes.len() >= left {
                bytes = &bytes[..left];
                cut_now = true;
            }
        }
        self.down.buf.extend(bytes);
        self.down.total += bytes.len();
        if self.hidden_until.map_or(true, |t| now >= t) {
            self.hidden_until = None;
            self.down.visible = self.down.buf.len();
            self.down.wake_reader();
        }
        if cut_now {
            self.reset();
            return false;
        }
        true
    }

    /// Keeps what the server sends from now until `until` from the client's reads (its
    /// socket has the bytes; its reactor has not said so).
    pub fn hide_until(&mut self, until: Instant) {
        self.hidden_until = Some(self.hidden_until.map_or(until, |t| t.max(until)));
    }

    /// The reactor catches up: every byte in the socket is reported.
    pub fn reveal(&mut self, now: Instant) {
        if self.hidden_until.is_some_and(|t| now >= t) {
            self.hidden_until = None;
            self.down.visible = self.down.buf.len();
            self.down.wake_reader();
        }
    }

    /// A read by the client: only what the reactor has reported, split as the seed says;
    /// `Ok(0)` at the end of the stream.
    pub fn client_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        if self.reset {
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        if self.down.visible > 0 {
            let split = self.max_read;
            let mut n = self.down.visible.min(buf.len());
            if split < usize::MAX {
                n = n.min(self.rng.between(1, split as u64) as usize);
            }
            for (slot, byte) in buf.iter_mut().zip(self.down.buf.drain(..n)) {
                *slot = byte;
            }
            self.down.visible -= n;
            return Poll::Ready(Ok(n));
        }
        if self.down.closed && self.down.buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        self.down.reader = Some(cx.waker().clone());
        Poll::Pending
    }

    /// A read by the client past the reactor: whatever the socket holds, reported or
    /// not, split as the seed says; `None` where this link's transport cannot.
    pub fn client_read_now(&mut self, buf: &mut [u8]) -> Option<io::Result<usize>> {
        if !self.reads_now {
            return None;
        }
        if self.reset {
            return Some(Err(io::ErrorKind::ConnectionReset.into()));
        }
        if self.down.buf.is_empty() {
            return Some(if self.down.closed {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            });
        }
        let mut n = self.down.buf.len().min(buf.len());
        if self.max_read < usize::MAX {
            n = n.min(self.rng.between(1, self.max_read as u64) as usize);
        }
        for (slot, byte) in buf.iter_mut().zip(self.down.buf.drain(..n)) {
            *slot = byte;
        }
        self.down.visible = self.down.visible.saturating_sub(n);
        Some(Ok(n))
    }

    /// A write by the client: as much as the pipe has room for and the seed allows; the
    /// connection is cut once its cut point is reached.
    pub fn client_write(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        if self.reset || self.up.closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let room = self.up.capacity.saturating_sub(self.up.buf.len());
        if room == 0 {
            self.up.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let split = self.max_write;
        let mut n = data.len().min(room);
        if split < usize::MAX {
            n = n.min(self.rng.between(1, split as u64) as usize);
        }
        let mut cut_now = false;
        if let Some(cut) = self.cut.filter(|c| !c.down) {
            let left = cut.after.saturating_sub(self.up.total);
            if n >= left {
                n = left;
                cut_now = true;
            }
        }
        self.up.buf.extend(&data[..n]);
        self.up.total += n;
        self.up.visible = self.up.buf.len();
        self.up.wake_reader();
        if cut_now {
            self.reset();
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
            }
        }
        Poll::Ready(Ok(n))
    }

    /// What a `MSG_PEEK` system call would see: every byte in the socket, reported to the
    /// reactor or not.
    pub fn client_readiness(&self) -> Readiness {
        if self.reset {
            Readiness::Closed
        } else if !self.down.buf.is_empty() {
            Readiness::Readable
        } else if self.down.closed {
            Readiness::Closed
        } else {
            Readiness::Quiet
        }
    }

    /// The client closes its side.
    pub fn client_shutdown(&mut self) {
        self.up.closed = true;
        self.up.wake_reader();
    }

    /// The client dropped its transport.
    pub fn client_drop(&mut self) {
        self.client_gone = true;
        self.client_shutdown();
    }

    /// The server closes its side: the client reads the end of the stream once it has
    /// read what was sent.
    pub fn server_close(&mut self) {
        self.down.closed = true;
        self.down.wake_reader();
        self.up.closed = true;
        self.up.wake_writer();
    }
}

/// How often each fault happens, in percent.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// A connection is cut at some byte.
    pub cut: u64,
    /// A connection's client-to-server pipe is tiny (writes wait for the server to read).
    pub slow_reader: u64,
}

/// A call handed to [`SideCalls`]: it checks its own reply when it ends.
pub type SideCall = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Calls started from inside the client's system calls, as a caller on another thread
/// would queue its request while a connection's task reads or writes with its lock let
/// go. A call not started soon enough is taken back by its caller and run as usual.
pub struct SideCalls {
    state: Mutex<SideState>,
}

struct SideState {
    /// Tokens watched for in what the client writes, and when each was first seen.
    watched: Vec<(Vec<u8>, Option<Instant>)>,
    rng: Rng,
    /// The chance, in percent, that one system call starts the oldest call waiting.
    percent: u64,
    waiting: VecDeque<(u64, SideCall)>,
    next: u64,
    started: u64,
}

impl std::fmt::Debug for SideCalls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SideCalls").finish_non_exhaustive()
    }
}

/// The waker of a side call's first poll: the task it is spawned as polls it again, and
/// that poll leaves its own waker wherever the call waits.
struct Nobody;

impl Wake for Nobody {
    fn wake(self: Arc<Self>) {}
}

impl SideCalls {
    /// Side calls started by one system call in `percent` (0: never), choices from `rng`.
    pub fn new(rng: Rng, percent: u64) -> SideCalls {
        SideCalls {
            state: Mutex::new(SideState {
                watched: Vec::new(),
                rng,
                percent,
                waiting: VecDeque::new(),
                next: 0,
                started: 0,
            }),
        }
    }

    /// Hands `call` over, to be started from inside a system call; its number, for
    /// [`SideCalls::take_back`].
    pub fn hand(&self, call: SideCall) -> u64 {
        let mut st = self.state.lock();
        let id = st.next;
        st.next += 1;
        st.waiting.push_back((id, call));
        id
    }

    /// The call numbered `id` if no system call has started it yet.
    pub fn take_back(&self, id: u64) -> Option<SideCall> {
        let mut st = self.state.lock();
        let at = st.waiting.iter().position(|(i, _)| *i == id)?;
        st.waiting.remove(at).map(|(_, call)| call)
    }

    /// Calls started from inside a system call so far.
    pub fn started(&self) -> u64 {
        self.state.lock().started
    }

    /// Watches for `token` in what the client writes, on any connection.
    pub fn watch(&self, token: &[u8]) {
        self.state.lock().watched.push((token.to_vec(), None));
    }

    /// When `token` was first written, and stops watching for it.
    pub fn written(&self, token: &[u8]) -> Option<Instant> {
        let mut st = self.state.lock();
        let at = st.watched.iter().position(|(t, _)| t == token)?;
        st.watched.swap_remove(at).1
    }

    /// The client wrote `data` on a connection whose last bytes written before are
    /// `tail` (a token may be split between writes), at `now`.
    fn saw_written(&self, tail: &mut Vec<u8>, data: &[u8], now: Instant) {
        const KEEP: usize = 64;
        let mut st = self.state.lock();
        if st.watched.is_empty() {
            tail.clear();
            return;
        }
        tail.extend_from_slice(data);
        for (token, seen) in &mut st.watched {
            if seen.is_none() && tail.windows(token.len()).any(|w| w == token.as_slice()) {
                *seen = Some(now);
            }
        }
        let cut = tail.len().saturating_sub(KEEP);
        tail.drain(..cut);
    }

    /// Called from inside a system call of the client: maybe starts the oldest call
    /// waiting, its first poll here and now, and the rest as a task of its own.
    fn maybe_start(&self) {
        let call = {
            let mut st = self.state.lock();
            if st.waiting.is_empty() {
                return;
            }
            let percent = st.percent;
            if !st.rng.chance(percent) {
                return;
            }
            st.started += 1;
            st.waiting.pop_front()
        };
        let Some((_, mut call)) = call else { return };
        let waker = Waker::from(Arc::new(Nobody));
        if call
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
        {
            tokio::spawn(call);
        }
    }
}

/// What serves a new connection: given its link and the address the client asked for.
type Accept = dyn Fn(LinkRef, &str) + Send + Sync;

/// The simulated network's connector: each connection the client opens is a new
/// [`Link`], served by a task the `accept` callback starts.
pub struct SimConnector {
    state: Mutex<NetState>,
    accept: Box<Accept>,
    side: Arc<SideCalls>,
}

impl std::fmt::Debug for SimConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConnector").finish_non_exhaustive()
    }
}

struct NetState {
    rng: Rng,
    faults: Faults,
    links: Vec<LinkRef>,
    /// Connections to these addresses are refused (a server down).
    refused: Vec<String>,
}

impl SimConnector {
    /// A network whose connections `accept` serves (given the link and the address the
    /// client asked for).
    pub fn new(
        rng: Rng,
        faults: Faults,
        accept: impl Fn(LinkRef, &str) + Send + Sync + 'static,
    ) -> Arc<SimConnector> {
        Self::with_side_calls(rng, faults, SideCalls::new(Rng::new(0), 0), accept)
    }

    /// As [`SimConnector::new`], the client's system calls starting `side` calls.
    pub fn with_side_calls(
        rng: Rng,
        faults: Faults,
        side: SideCalls,
        accept: impl Fn(LinkRef, &str) + Send + Sync + 'static,
    ) -> Arc<SimConnector> {
        Arc::new(SimConnector {
            state: Mutex::new(NetState {
                rng,
                faults,
                links: Vec::new(),
                refused: Vec::new(),
            }),
            accept: Box::new(accept),
            side: Arc::new(side),
        })
    }

    /// The calls the client's system calls start.
    pub fn side_calls(&self) -> &Arc<SideCalls> {
        &self.side
    }

    /// Every connection opened so far.
    pub fn links(&self) -> Vec<LinkRef> {
        self.state.lock().links.clone()
    }

    /// Refuses new connections to `addr` until [`SimConnector::accept_again`].
    pub fn refuse(&self, addr: &str) {
        self.state.lock().refused.push(addr.to_owned());
    }

    /// Accepts connections to `addr` again.
    pub fn accept_again(&self, addr: &str) {
        self.state.lock().refused.retain(|a| a != addr);
    }
}

impl SimConnector {
    /// Opens a connection to `addr` and has it served; refused while `addr` is.
    ///
    /// # Errors
    /// [`ConnError::Connect`] for a refused address.
    pub fn open_link(&self, addr: &str) -> Result<LinkRef, ConnError> {
        let link = {
            let mut st = self.state.lock();
            if st.refused.iter().any(|a| a == addr) {
                return Err(ConnError::Connect {
                    addr: addr.to_owned(),
                    source: io::Error::from(io::ErrorKind::ConnectionRefused),
                });
            }
            let id = st.links.len() as u64;
            let faults = st.faults.clone();
            let link = Arc::new(Mutex::new(Link::new(id, &mut st.rng, &faults)));
            st.links.push(Arc::clone(&link));
            link
        };
        (self.accept)(Arc::clone(&link), addr);
        Ok(link)
    }
}

impl Connector for SimConnector {
    fn connect<'a>(
        &'a self,
        dialer: &'a Dialer,
        _deadline: Option<Instant>,
    ) -> BoxFuture<'a, Result<Opened, ConnError>> {
        let opened = self.open_link(&dialer.info().addr.to_string());
        Box::pin(async move {
            Ok(Opened {
                transport: Box::new(SimStream {
                    link: opened?,
                    side: Arc::clone(&self.side),
                    tail: Vec::new(),
                }),
                epoch: 0,
            })
        })
    }
}

/// The client's end of a [`Link`].
#[derive(Debug)]
pub struct SimStream {
    link: LinkRef,
    side: Arc<SideCalls>,
    /// The last bytes written, for [`SideCalls::watch`].
    tail: Vec<u8>,
}

impl AsyncRead for SimStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let read = self.link.lock().client_read(cx, buf.initialize_unfilled());
        // The link's lock let go: a side call may queue a request now.
        self.side.maybe_start();
        let n = match read {
            Poll::Ready(Ok(n)) => n,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        };
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for SimStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let wrote = this.link.lock().client_write(cx, data);
        if let Poll::Ready(Ok(n)) = wrote {
            this.side.saw_written(&mut this.tail, &data[..n], now());
        }
        this.side.maybe_start();
        wrote
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.link.lock().client_shutdown();
        Poll::Ready(Ok(()))
    }
}

impl Transport for SimStream {
    fn readiness(&mut self) -> Readiness {
        self.link.lock().client_readiness()
    }

    // No side call starts here: the client reads now with its connection's lock held.
    fn read_now(&mut self, buf: &mut [u8]) -> Option<io::Result<usize>> {
        self.link.lock().client_read_now(buf)
    }
}

impl Drop for SimStream {
    fn drop(&mut self) {
        self.link.lock().client_drop();
    }
}

/// Reads from the client side until the server closes, for the model's tasks.
pub async fn read(link: &LinkRef) -> Option<Vec<u8>> {
    std::future::poll_fn(|cx| link.lock().server_read(cx)).await
}

/// A lag of the reactor: what the server sends on `link` in the next `lag` stays hidden
/// from the client's reads, then is revealed.
pub fn lag(link: &LinkRef, lag: Duration) {
    let until = redis_client::redis_conn::aio::now() + lag;
    link.lock().hide_until(until);
    let link = Arc::clone(link);
    tokio::spawn(async move {
        tokio::time::sleep(lag).await;
        link.lock().reveal(redis_client::redis_conn::aio::now());
    });
}
