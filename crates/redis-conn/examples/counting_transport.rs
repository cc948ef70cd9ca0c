//! A user-defined transport: TCP wrapped to count the bytes sent and received, plugged
//! into a pool through a custom [`Connector`] (the reference client's `connection_class`).
//!
//! Run it against a server:
//! `cargo run -p redis-conn --example counting_transport -- redis://127.0.0.1:6379/0`

use redis_conn::{
    ConnectionInfo, ConnectionPool, Connector, DefaultConnector, Error, PoolOptions, Readiness,
    Transport,
};
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What every transport opened by one [`CountingConnector`] has moved.
#[derive(Debug, Default)]
pub struct Counters {
    /// Bytes read from the server.
    pub bytes_in: AtomicU64,
    /// Bytes written to the server.
    pub bytes_out: AtomicU64,
    /// Transports opened.
    pub opened: AtomicU64,
}

impl Counters {
    /// `(bytes_in, bytes_out, opened)` now.
    pub fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.bytes_in.load(Ordering::Relaxed),
            self.bytes_out.load(Ordering::Relaxed),
            self.opened.load(Ordering::Relaxed),
        )
    }
}

/// Any transport, counting what passes through it.
pub struct CountingTransport {
    inner: Box<dyn Transport>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for CountingTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountingTransport")
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl Read for CountingTransport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counters
            .bytes_in
            .fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl Write for CountingTransport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.counters
            .bytes_out
            .fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Transport for CountingTransport {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.inner.set_read_timeout(timeout)
    }

    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.inner.set_write_timeout(timeout)
    }

    /// Forwarded, so the pool's look at an idle connection sees through the wrapper (a
    /// peek reads nothing, so nothing is counted).
    fn readiness(&mut self) -> Readiness {
        self.inner.readiness()
    }
}

/// Opens the built-in TCP or Unix transport and wraps it in a [`CountingTransport`]. It
/// carries its own settings: the connection info and the shared counters.
#[derive(Debug)]
pub struct CountingConnector {
    inner: DefaultConnector,
    counters: Arc<Counters>,
}

impl CountingConnector {
    /// A connector for `info` with fresh counters.
    pub fn new(info: ConnectionInfo) -> Self {
        CountingConnector {
            inner: DefaultConnector::new(info),
            counters: Arc::default(),
        }
    }

    /// The counters, shared with every transport this connector opens.
    pub fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }
}

impl Connector for CountingConnector {
    fn info(&self) -> &ConnectionInfo {
        self.inner.info()
    }

    fn connect(&self, deadline: Option<Instant>) -> Result<Box<dyn Transport>, Error> {
        let inner = self.inner.connect(deadline)?;
        self.counters.opened.fetch_add(1, Ordering::Relaxed);
        Ok(Box::new(CountingTransport {
            inner,
            counters: self.counters(),
        }))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "redis://127.0.0.1:6379/0".to_owned());
    let connector = CountingConnector::new(url.parse()?);
    let counters = connector.counters();
    let pool = ConnectionPool::with_connector(connector, PoolOptions::default().with_max_size(4));

    let mut conn = pool.get()?;
    conn.command(&["SET", "counting-transport:greeting", "hello"])?;
    let reply = conn.command(&["GET", "counting-transport:greeting"])?;
    drop(conn);

    let (bytes_in, bytes_out, opened) = counters.snapshot();
    println!("reply: {reply:?}");
    println!("{opened} connection(s), {bytes_out} bytes sent, {bytes_in} bytes received");
    Ok(())
}
