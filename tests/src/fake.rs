//! A scripted fake server, only for what a real Redis cannot be made to send: malformed
//! bytes, absurd declared lengths, replies that never end.
//!
//! Each accepted connection runs the script; the script reads requests and writes
//! whatever bytes it wants.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// One client connection as the script sees it.
#[derive(Debug)]
pub struct FakeConn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl FakeConn {
    /// Reads one request (a RESP array of bulk strings) and returns its arguments; `None`
    /// when the client closed the connection or sent something else.
    ///
    /// A bare `PING` (the one that closes every handshake) is answered `+PONG` here and
    /// skipped, so scripts see the requests that matter to them; a script that wants to
    /// answer the handshake itself uses [`FakeConn::read_any_request`].
    pub fn read_request(&mut self) -> Option<Vec<Vec<u8>>> {
        loop {
            let args = self.read_any_request()?;
            if args.len() == 1 && args[0].eq_ignore_ascii_case(b"PING") {
                self.write(b"+PONG\r\n");
                continue;
            }
            return Some(args);
        }
    }

    /// As [`FakeConn::read_request`], answering a `HELLO` too (with an empty map, as a
    /// RESP3 server does), so a client speaking RESP3 gets through its handshake.
    pub fn read_request_resp3(&mut self) -> Option<Vec<Vec<u8>>> {
        loop {
            let args = self.read_request()?;
            if args
                .first()
                .is_some_and(|a| a.eq_ignore_ascii_case(b"HELLO"))
            {
                self.write(b"%0\r\n");
                continue;
            }
            return Some(args);
        }
    }

    /// Reads one request, whatever it is, `PING` included.
    pub fn read_any_request(&mut self) -> Option<Vec<Vec<u8>>> {
        let n: usize = self.line()?.strip_prefix('*')?.parse().ok()?;
        let mut args = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            let len: usize = self.line()?.strip_prefix('$')?.parse().ok()?;
            let mut buf = vec![0; len + 2];
            self.reader.read_exact(&mut buf).ok()?;
            buf.truncate(len);
            args.push(buf);
        }
        Some(args)
    }

    fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim_end().to_owned()),
        }
    }

    /// Writes raw bytes; errors (the client went away) are ignored.
    pub fn write(&mut self, bytes: &[u8]) {
        let _ = self.writer.write_all(bytes);
        let _ = self.writer.flush();
    }

    /// Reads and drops `n` bytes without holding them (a request too large to keep);
    /// false if the client went away first.
    pub fn discard(&mut self, mut n: usize) -> bool {
        let mut sink = [0u8; 16 * 1024];
        while n > 0 {
            let k = n.min(sink.len());
            if self.reader.read_exact(&mut sink[..k]).is_err() {
                return false;
            }
            n -= k;
        }
        true
    }

    /// A second handle on the connection's socket, for a test that writes to the client at
    /// moments of its own choosing (a stray reply while the client is idle).
    ///
    /// # Panics
    /// If the socket cannot be duplicated.
    pub fn writer(&self) -> TcpStream {
        self.writer
            .try_clone()
            .expect("duplicate the fake connection's socket")
    }

    /// Writes raw bytes; false once the client went away.
    pub fn write_all(&mut self, bytes: &[u8]) -> bool {
        self.writer.write_all(bytes).is_ok()
    }

    /// Writes `total` bytes of `fill` in chunks, stopping early if the client goes away.
    /// Returns how many were written.
    pub fn write_repeated(&mut self, fill: u8, total: usize) -> usize {
        let chunk = [fill; 16 * 1024];
        let mut written = 0;
        while written < total {
            let n = chunk.len().min(total - written);
            if self.writer.write_all(&chunk[..n]).is_err() {
                break;
            }
            written += n;
        }
        written
    }

    /// Keeps the connection open without writing until the client closes it or `max`
    /// passes.
    pub fn hold(&mut self, max: Duration) {
        let _ = self.reader.get_ref().set_read_timeout(Some(max));
        let mut sink = [0u8; 1024];
        while let Ok(n) = self.reader.read(&mut sink) {
            if n == 0 {
                break;
            }
        }
    }
}

/// A fake server on a loopback port running `script` for every connection.
pub struct FakeServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    acceptor: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FakeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl FakeServer {
    /// Starts the fake server.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub fn start<F>(script: F) -> FakeServer
    where
        F: Fn(FakeConn) + Send + Sync + 'static,
    {
        Self::start_with(script, true)
    }

    /// A fake server that closes every connection as soon as it accepts it, in its
    /// accepting thread: no thread is started per connection, so the close does not wait
    /// for one to be scheduled on a busy machine.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub fn closing() -> FakeServer {
        Self::start_with(|c: FakeConn| drop(c), false)
    }

    fn start_with<F>(script: F, thread_per_connection: bool) -> FakeServer
    where
        F: Fn(FakeConn) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake server");
        let addr = listener.local_addr().expect("fake addr");
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (s, a) = (Arc::clone(&stop), Arc::clone(&accepted));
        let script = Arc::new(script);
        let acceptor = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                a.fetch_add(1, Ordering::SeqCst);
                // As a real server does: each write goes out at once, not held back until
                // the client acknowledges the last one.
                let _ = conn.set_nodelay(true);
                let Ok(writer) = conn.try_clone() else {
                    continue;
                };
                let conn = FakeConn {
                    reader: BufReader::new(conn),
                    writer,
                };
                if thread_per_connection {
                    let script = Arc::clone(&script);
                    std::thread::spawn(move || script(conn));
                } else {
                    script(conn);
                }
            }
        });
        FakeServer {
            addr,
            stop,
            accepted,
            acceptor: Some(acceptor),
        }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// A `redis://` URL for it.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.addr.port())
    }

    /// How many connections it has accepted.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }
}
