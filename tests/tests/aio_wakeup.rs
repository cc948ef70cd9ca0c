//! A request queued on a multiplexed connection while its task is busy in a system call,
//! with no waker stored for the caller to wake, still goes out: the task looks again
//! before it parks. The interleaving is forced, not hoped for: the transport holds the
//! task inside its read while the test queues the request from another thread.

use redis_client::redis_conn::aio::{BoxFuture, Connector, Dialer, Multiplexed, Opened};
use redis_client::redis_conn::Error as ConnError;
use redis_client::{ConnectionInfo, ReplyTimeout, Value};
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The server's side of the one connection: what the client wrote, what it may read, and
/// a trap that stops the client's task in its next read of an empty stream.
#[derive(Default)]
struct Wire {
    state: Mutex<WireState>,
    changed: Condvar,
}

#[derive(Default)]
struct WireState {
    written: Vec<u8>,
    /// Reads that found nothing since the last write.
    empty_reads: usize,
    incoming: VecDeque<u8>,
    read_waker: Option<Waker>,
    /// Armed: the next read that finds nothing says so on the first channel, then holds
    /// the task until the second one speaks.
    trap: Option<(mpsc::Sender<()>, mpsc::Receiver<()>)>,
}

impl Wire {
    /// Bytes for the client to read, without waking its task: it finds them at its next
    /// read.
    fn send_quietly(&self, bytes: &[u8]) {
        self.state.lock().unwrap().incoming.extend(bytes);
    }

    /// Bytes for the client to read, its task woken for them.
    fn send(&self, bytes: &[u8]) {
        let waker = {
            let mut st = self.state.lock().unwrap();
            st.incoming.extend(bytes);
            st.read_waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Waits until the client has written `needle`; false if it has not within `limit`.
    fn wait_written(&self, needle: &[u8], limit: Duration) -> bool {
        self.wait_for(limit, |st| {
            st.written.windows(needle.len()).any(|w| w == needle)
        })
    }

    /// Waits until the client has written `needle` and then found nothing to read: its
    /// task is done with the request and waits.
    fn wait_written_and_read(&self, needle: &[u8], limit: Duration) -> bool {
        self.wait_for(limit, |st| {
            st.empty_reads > 0 && st.written.windows(needle.len()).any(|w| w == needle)
        })
    }

    fn wait_for(&self, limit: Duration, done: impl Fn(&WireState) -> bool) -> bool {
        let end = Instant::now() + limit;
        let mut st = self.state.lock().unwrap();
        loop {
            if done(&st) {
                return true;
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            st = self.changed.wait_timeout(st, left).unwrap().0;
        }
    }
}

struct Stream(Arc<Wire>);

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let wire = &self.0;
        let mut st = wire.state.lock().unwrap();
        if st.incoming.is_empty() {
            if let Some((stopped, go)) = st.trap.take() {
                drop(st);
                stopped.send(()).unwrap();
                go.recv().unwrap();
                st = wire.state.lock().unwrap();
            }
        }
        if st.incoming.is_empty() {
            st.empty_reads += 1;
            st.read_waker = Some(cx.waker().clone());
            wire.changed.notify_all();
            return Poll::Pending;
        }
        let n = buf.remaining().min(st.incoming.len());
        let bytes: Vec<u8> = st.incoming.drain(..n).collect();
        buf.put_slice(&bytes);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut st = self.0.state.lock().unwrap();
        st.written.extend_from_slice(buf);
        st.empty_reads = 0;
        self.0.changed.notify_all();
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl redis_client::redis_conn::aio::Transport for Stream {}

#[derive(Debug)]
struct OneWire(Arc<Wire>);

impl std::fmt::Debug for Wire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Wire")
    }
}

impl Connector for OneWire {
    fn connect<'a>(
        &'a self,
        _dialer: &'a Dialer,
        _deadline: Option<std::time::Instant>,
    ) -> BoxFuture<'a, Result<Opened, ConnError>> {
        let transport = Box::new(Stream(Arc::clone(&self.0)));
        Box::pin(async move {
            Ok(Opened {
                transport,
                epoch: 0,
            })
        })
    }
}

fn echo(arg: &str) -> bytes::Bytes {
    format!("*2\r\n$4\r\nECHO\r\n${}\r\n{arg}\r\n", arg.len())
        .into_bytes()
        .into()
}

fn bulk(arg: &str) -> Vec<u8> {
    format!("${}\r\n{arg}\r\n", arg.len()).into_bytes()
}

struct Noop;

impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

type Call = Pin<Box<dyn Future<Output = Result<Vec<Value>, ConnError>> + Send>>;

fn call(mux: &Multiplexed, arg: &str) -> Call {
    let mux = mux.clone();
    let request = echo(arg);
    // Long enough that no timer wakes the task while the request waits.
    Box::pin(async move {
        mux.send(
            request,
            1,
            ReplyTimeout::Exactly(Some(Duration::from_secs(60))),
        )
        .await
    })
}

#[test]
fn a_request_queued_while_the_task_reads_with_no_waker_stored_goes_out() {
    // One worker, so the trapped read holds the only thread that runs tasks, and this
    // thread queues the request meanwhile.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let wire = Arc::new(Wire::default());
    let mux = Multiplexed::with_connector(
        ConnectionInfo::tcp("127.0.0.1", 1),
        Arc::new(OneWire(Arc::clone(&wire))),
    );

    // A new connection is checked with a PING before it carries anything.
    let first = rt.spawn(call(&mux, "first"));
    assert!(wire.wait_written(b"*1\r\n$4\r\nPING\r\n", Duration::from_secs(5)));
    wire.send(b"+PONG\r\n");

    // A first request, left unanswered: the connection owes a reply and its task, once
    // it has found nothing to read after writing it, parks.
    assert!(wire.wait_written_and_read(&echo("first"), Duration::from_secs(5)));

    // Its reply waits in the stream unannounced, and the next empty read is trapped.
    wire.send_quietly(&bulk("first"));
    let (stopped_tx, stopped) = mpsc::channel();
    let (go, go_rx) = mpsc::channel();
    wire.state.lock().unwrap().trap = Some((stopped_tx, go_rx));

    // A second request takes the parked task's waker and wakes it. The task writes it,
    // reads the first reply (so it turns again without storing a waker), and is caught
    // in the read after.
    let second = rt.spawn(call(&mux, "second"));
    stopped
        .recv_timeout(Duration::from_secs(5))
        .expect("the task reads the empty stream");
    assert!(wire.wait_written(&echo("second"), Duration::ZERO));

    // Queued now, from outside the runtime: there is no waker to take.
    let mut third = call(&mux, "third");
    {
        let _entered = rt.enter();
        let waker = Waker::from(Arc::new(Noop));
        assert!(third
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
    }
    go.send(()).unwrap();
    let third = rt.spawn(third);

    // The task looks at the queue again before it parks, and writes the request.
    assert!(
        wire.wait_written(&echo("third"), Duration::from_secs(5)),
        "a request queued while the task read was left unwritten"
    );

    // And every caller gets its own reply.
    wire.send(&[bulk("second"), bulk("third")].concat());
    for (task, arg) in [(first, "first"), (second, "second"), (third, "third")] {
        let replies = rt.block_on(task).unwrap().unwrap();
        assert_eq!(
            replies,
            vec![Value::BulkString(bytes::Bytes::copy_from_slice(
                arg.as_bytes()
            ))]
        );
    }
}
