//! A loopback TCP proxy that injects faults between a client and a real server: cut the
//! stream after N bytes, stall it (every connection, or one), delay it, send a chunk of
//! replies twice, or drop every connection.
//!
//! It only ever listens on and connects to 127.0.0.1.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often pumps look at the fault settings while idle.
const TICK: Duration = Duration::from_millis(20);

/// A fault-injecting proxy in front of a server on this machine.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Shared {
    stop: AtomicBool,
    stalled: AtomicBool,
    delay_ms: AtomicU64,
    /// Bytes the server may still send towards clients before the proxy cuts every
    /// connection; `u64::MAX` when no cut is armed.
    cut_budget: AtomicU64,
    /// Bumped by `drop_connections`; a pump whose generation is older closes.
    generation: AtomicU64,
    conns: Mutex<Vec<TcpStream>>,
    /// Bytes forwarded from server to clients, in total.
    forwarded: AtomicU64,
    /// The next chunk from the server is sent twice: replies nobody asked for.
    duplicate: AtomicBool,
    /// Each connection's port on the proxy's side towards the server (what the server
    /// sees as the client's address) and its own stall switch.
    upstream: Mutex<Vec<(u16, Arc<AtomicBool>)>>,
}

impl FaultProxy {
    /// Starts a proxy forwarding to `127.0.0.1:target_port`.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub fn start(target_port: u16) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy port");
        let addr = listener.local_addr().expect("proxy addr");
        let shared = Arc::new(Shared {
            cut_budget: AtomicU64::new(u64::MAX),
            ..Shared::default()
        });
        let s = Arc::clone(&shared);
        let acceptor = std::thread::spawn(move || accept_loop(listener, target_port, s));
        FaultProxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// A `redis://` URL that goes through the proxy.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.addr.port())
    }

    /// After `n` more bytes from the server, close every connection (a reply cut short).
    pub fn cut_after(&self, n: u64) {
        self.shared.cut_budget.store(n, Ordering::SeqCst);
    }

    /// Disarms [`cut_after`](FaultProxy::cut_after).
    pub fn no_cut(&self) {
        self.shared.cut_budget.store(u64::MAX, Ordering::SeqCst);
    }

    /// Holds back everything in both directions until [`resume`](FaultProxy::resume).
    pub fn stall(&self) {
        self.shared.stalled.store(true, Ordering::SeqCst);
    }

    /// Ends a stall.
    pub fn resume(&self) {
        self.shared.stalled.store(false, Ordering::SeqCst);
    }

    /// Holds back everything in both directions on the one connection the server sees
    /// coming from `port` (the port of its `addr` in `CLIENT LIST`), leaving it open: a
    /// connection gone silent without closing. The others flow on. False when no
    /// connection has that port.
    pub fn stall_connection_from(&self, port: u16) -> bool {
        let upstream = self.shared.upstream.lock().expect("proxy lock");
        match upstream.iter().find(|(p, _)| *p == port) {
            Some((_, stalled)) => {
                stalled.store(true, Ordering::SeqCst);
                true
            }
            None => false,
        }
    }

    /// Waits `d` before forwarding each chunk.
    pub fn delay(&self, d: Duration) {
        self.shared
            .delay_ms
            .store(d.as_millis() as u64, Ordering::SeqCst);
    }

    /// Closes every open connection at once (new ones are still accepted).
    pub fn drop_connections(&self) {
        self.shared.generation.fetch_add(1, Ordering::SeqCst);
        for c in self.shared.conns.lock().expect("proxy lock").drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    /// Sends the next chunk of server bytes twice in one write, as an out-of-step server
    /// would: the client sees replies (or parts of them) that no request of its own asked
    /// for, together with its own.
    pub fn duplicate_next(&self) {
        self.shared.duplicate.store(true, Ordering::SeqCst);
    }

    /// Disarms [`duplicate_next`](FaultProxy::duplicate_next).
    pub fn no_duplicate(&self) {
        self.shared.duplicate.store(false, Ordering::SeqCst);
    }

    /// Bytes forwarded from the server so far.
    pub fn forwarded(&self) -> u64 {
        self.shared.forwarded.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.drop_connections();
        // Wake the acceptor so it sees the stop flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }
}

fn accept_loop(listener: TcpListener, target_port: u16, shared: Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        let Ok(server) = TcpStream::connect(("127.0.0.1", target_port)) else {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let generation = shared.generation.load(Ordering::SeqCst);
        {
            let mut conns = shared.conns.lock().expect("proxy lock");
            for s in [&client, &server] {
                if let Ok(c) = s.try_clone() {
                    conns.push(c);
                }
            }
        }
        let (c2, s2) = match (client.try_clone(), server.try_clone()) {
            (Ok(c), Ok(s)) => (c, s),
            _ => continue,
        };
        let own_stall = Arc::new(AtomicBool::new(false));
        if let Ok(local) = server.local_addr() {
            shared
                .upstream
                .lock()
                .expect("proxy lock")
                .push((local.port(), Arc::clone(&own_stall)));
        }
        let up = Arc::clone(&shared);
        let up_stall = Arc::clone(&own_stall);
        std::thread::spawn(move || pump(client, server, up, up_stall, generation, false));
        let down = Arc::clone(&shared);
        std::thread::spawn(move || pump(s2, c2, down, own_stall, generation, true));
    }
}

/// Copies `from` to `to` until either side closes or a fault says stop.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    shared: Arc<Shared>,
    own_stall: Arc<AtomicBool>,
    generation: u64,
    towards_client: bool,
) {
    let _ = from.set_read_timeout(Some(TICK));
    let mut buf = [0u8; 16 * 1024];
    loop {
        if shared.stop.load(Ordering::SeqCst)
            || shared.generation.load(Ordering::SeqCst) != generation
        {
            break;
        }
        if shared.stalled.load(Ordering::SeqCst) || own_stall.load(Ordering::SeqCst) {
            std::thread::sleep(TICK);
            continue;
        }
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => break,
        };
        let delay = shared.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            std::thread::sleep(Duration::from_millis(delay));
        }
        let mut chunk = &buf[..n];
        let mut cut = false;
        if towards_client {
            let budget = shared.cut_budget.load(Ordering::SeqCst);
            if budget != u64::MAX {
                let allowed = budget.min(n as u64);
                shared.cut_budget.store(budget - allowed, Ordering::SeqCst);
                if allowed < n as u64 || budget - allowed == 0 {
                    chunk = &chunk[..allowed as usize];
                    cut = true;
                }
            }
            shared
                .forwarded
                .fetch_add(chunk.len() as u64, Ordering::SeqCst);
        }
        // A duplicate goes out in the same write as the original: an extra reply that
        // arrives later, after the client moved on, could not be told from a reply to its
        // next request by any client.
        let twice;
        if towards_client && shared.duplicate.swap(false, Ordering::SeqCst) {
            twice = [chunk, chunk].concat();
            chunk = &twice;
        }
        if to.write_all(chunk).is_err() {
            break;
        }
        if cut {
            shared.cut_budget.store(u64::MAX, Ordering::SeqCst);
            let _ = to.shutdown(Shutdown::Both);
            let _ = from.shutdown(Shutdown::Both);
            return;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
