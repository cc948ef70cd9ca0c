//! A stray reply that reaches an idle async connection while the runtime is too busy to
//! notice it is caught before the next request could be matched to it: the connection
//! looks at its socket (a system call, not the reactor's last report) before carrying a
//! request after owing nothing, on the multiplexed connection and at every pool checkout,
//! on current-thread and multi-thread runtimes; and one that arrives right behind a reply
//! still owed, before the next request was written, is read and caught before that request
//! goes out.

use redis_client::aio::Redis;
use redis_client::{ConnectionInfo, Value};
use redis_tests::{FakeConn, FakeServer};
use std::io::Write;
use std::net::TcpStream;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Rounds per test: each sends a stray reply while idle and checks the next request.
const ROUNDS: usize = 15;

/// How long the runtime is kept busy after the stray bytes were sent, so they have
/// arrived in the client's socket but the reactor has not been asked about them.
const BUSY: Duration = Duration::from_millis(30);

/// A fake server whose replies name their request (ECHO gives its argument, GET its key,
/// BLPOP `[key, key]`), and which keeps a handle on the socket that last answered one of
/// those, so the test can write a stray `+OK` to it while the client is idle.
fn naming_server() -> (FakeServer, Arc<Mutex<Option<TcpStream>>>) {
    let last = Arc::new(Mutex::new(None));
    let slot = Arc::clone(&last);
    let fake = FakeServer::start(move |mut c: FakeConn| {
        while let Some(args) = c.read_request() {
            let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
            let bulk = |b: &[u8]| {
                let mut out = format!("${}\r\n", b.len()).into_bytes();
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
                out
            };
            let reply = match name.as_str() {
                "ECHO" | "GET" => bulk(&args[1]),
                "BLPOP" => [b"*2\r\n".to_vec(), bulk(&args[1]), bulk(&args[1])].concat(),
                "RESET" => b"+RESET\r\n".to_vec(),
                _ => b"+OK\r\n".to_vec(),
            };
            // Kept before the reply goes out, so the test, which takes it once the reply
            // is in, always finds it.
            if matches!(name.as_str(), "ECHO" | "GET" | "BLPOP") {
                *slot.lock().unwrap() = Some(c.writer());
            }
            c.write(&reply);
        }
    });
    (fake, last)
}

fn client(fake: &FakeServer) -> Redis {
    Redis::from_info(ConnectionInfo::tcp("127.0.0.1", fake.port()))
}

/// Writes a stray reply on the connection that answered last, then keeps the calling
/// thread busy (on a current-thread runtime: the whole runtime) while it arrives.
fn stray_then_busy(last: &Mutex<Option<TcpStream>>) {
    let mut socket = last.lock().unwrap().take().expect("a connection answered");
    socket.write_all(b"+OK\r\n").unwrap();
    std::thread::sleep(BUSY);
}

/// Keeps `workers` runtime workers busy (blocked, not yielding) for a while, so none of
/// them asks the reactor meanwhile; returns once each has started.
fn keep_workers_busy(workers: usize) -> Vec<tokio::task::JoinHandle<()>> {
    let (started_tx, started) = mpsc::channel();
    let hogs = (0..workers)
        .map(|_| {
            let started_tx = started_tx.clone();
            tokio::spawn(async move {
                started_tx.send(()).unwrap();
                std::thread::sleep(BUSY * 3);
            })
        })
        .collect();
    for _ in 0..workers {
        started.recv().unwrap();
    }
    hogs
}

/// What the test checks each round: the reply to the request sent right after the stray
/// bytes is that request's own.
#[derive(Debug, Default)]
struct Tally {
    wrong: Vec<String>,
}

impl Tally {
    fn check(&mut self, round: usize, want: &str, got: Result<Value, redis_client::Error>) {
        let ok = match &got {
            Ok(Value::BulkString(b)) => b[..] == *want.as_bytes(),
            Ok(Value::Array(items)) => {
                matches!(items.first(), Some(Value::BulkString(b)) if b[..] == *want.as_bytes())
            }
            _ => false,
        };
        if !ok {
            self.wrong
                .push(format!("round {round}: wanted {want}, got {got:?}"));
        }
    }
}

/// Shared connection: request, stray while idle and busy, request again.
async fn multiplexed_rounds(busy_workers: usize) {
    let (fake, last) = naming_server();
    let r = client(&fake);
    let mut tally = Tally::default();
    for round in 0..ROUNDS {
        let first = format!("first-{round}");
        let got = r.execute_command(("ECHO", first.as_str())).await;
        tally.check(round, &first, got);
        let hogs = keep_workers_busy(busy_workers);
        stray_then_busy(&last);
        let second = format!("second-{round}");
        let got = r.execute_command(("ECHO", second.as_str())).await;
        tally.check(round, &second, got);
        for h in hogs {
            h.await.unwrap();
        }
    }
    assert!(tally.wrong.is_empty(), "{:#?}", tally.wrong);
    // Each stray was found: the connection was replaced every round.
    assert_eq!(fake.accepted(), ROUNDS + 1);
}

#[tokio::test(flavor = "current_thread")]
async fn a_stray_reply_on_an_idle_shared_connection_never_reaches_a_caller_current_thread() {
    multiplexed_rounds(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stray_reply_on_an_idle_shared_connection_never_reaches_a_caller_multi_thread() {
    multiplexed_rounds(2).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_stray_reply_on_an_idle_pooled_connection_is_found_at_checkout() {
    let (fake, last) = naming_server();
    let r = client(&fake);
    let mut tally = Tally::default();
    for round in 0..ROUNDS {
        // A blocking command goes over a pooled connection.
        let first = format!("list-a-{round}");
        let got = r.execute_command(("BLPOP", first.as_str(), 1)).await;
        tally.check(round, &first, got);
        stray_then_busy(&last);
        let second = format!("list-b-{round}");
        let got = r.execute_command(("BLPOP", second.as_str(), 1)).await;
        tally.check(round, &second, got);

        // WATCH then GET on a pooled connection, as a transaction begins.
        let key = format!("watched-{round}");
        let mut watched = r.pipeline().watch(key.as_str()).await.unwrap();
        let got = watched.execute_command(("GET", key.as_str())).await;
        tally.check(round, &key, got);
        drop(watched);
        stray_then_busy(&last);
        let key = format!("watched-again-{round}");
        let mut watched = r.pipeline().watch(key.as_str()).await.unwrap();
        let got = watched.execute_command(("GET", key.as_str())).await;
        tally.check(round, &key, got);
    }
    assert!(tally.wrong.is_empty(), "{:#?}", tally.wrong);
}

/// A fake server like [`naming_server`], except that the reply to `ECHO held-…` is not
/// written: the socket and the reply go to the test, which writes them itself.
fn holding_server() -> (
    FakeServer,
    tokio::sync::mpsc::UnboundedReceiver<(TcpStream, Vec<u8>)>,
) {
    let (held_tx, held) = tokio::sync::mpsc::unbounded_channel();
    let fake = FakeServer::start(move |mut c: FakeConn| {
        while let Some(args) = c.read_request() {
            let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
            let reply = match name.as_str() {
                "ECHO" => {
                    let mut out = format!("${}\r\n", args[1].len()).into_bytes();
                    out.extend_from_slice(&args[1]);
                    out.extend_from_slice(b"\r\n");
                    out
                }
                "RESET" => b"+RESET\r\n".to_vec(),
                _ => b"+OK\r\n".to_vec(),
            };
            if args.get(1).is_some_and(|a| a.starts_with(b"held-")) {
                let _ = held_tx.send((c.writer(), reply));
            } else {
                c.write(&reply);
            }
        }
    });
    (fake, held)
}

/// Shared connection: a request whose reply is held; then, while the runtime is busy,
/// that reply and a stray one right behind it arrive in one write; then another request.
/// The stray came before the second request existed, so it must not be its reply: the
/// look before the batch reads what the socket holds and finds it.
async fn stray_behind_an_owed_reply_rounds(busy_workers: usize) {
    let (fake, mut held) = holding_server();
    let r = client(&fake);
    let mut tally = Tally::default();
    for round in 0..ROUNDS {
        let first = format!("held-{round}");
        let owed = {
            let r = r.clone();
            let first = first.clone();
            tokio::spawn(async move { r.execute_command(("ECHO", first.as_str())).await })
        };
        let (mut socket, reply) = held.recv().await.expect("the held request arrived");
        let hogs = keep_workers_busy(busy_workers);
        socket
            .write_all(&[&reply[..], b"+OK\r\n"].concat())
            .unwrap();
        std::thread::sleep(BUSY);
        let second = format!("second-{round}");
        let got = r.execute_command(("ECHO", second.as_str())).await;
        tally.check(round, &second, got);
        // The owed request gets its own reply, or an error (the connection was out of
        // step), never another's.
        let got = owed.await.unwrap();
        if got.is_ok() {
            tally.check(round, &first, got);
        }
        for h in hogs {
            h.await.unwrap();
        }
    }
    assert!(tally.wrong.is_empty(), "{:#?}", tally.wrong);
    // Each stray was found: the connection was replaced every round.
    assert_eq!(fake.accepted(), ROUNDS + 1);
}

#[tokio::test(flavor = "current_thread")]
async fn a_stray_reply_behind_an_owed_one_never_reaches_the_next_caller_current_thread() {
    stray_behind_an_owed_reply_rounds(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stray_reply_behind_an_owed_one_never_reaches_the_next_caller_multi_thread() {
    stray_behind_an_owed_reply_rounds(2).await;
}

/// A pooled connection held across requests (WATCH, GET, then more): a stray reply that
/// arrives between two of them, while the runtime is busy, is found before the next
/// request is written; that request fails (its connection is out of step) and never
/// receives the stray as its reply.
#[tokio::test(flavor = "current_thread")]
async fn a_stray_reply_between_requests_on_a_held_pooled_connection_is_found_before_the_next() {
    let (fake, last) = naming_server();
    let r = client(&fake);
    let mut wrong = Vec::new();
    for round in 0..ROUNDS {
        let key = format!("held-{round}");
        let mut watched = r.pipeline().watch(key.as_str()).await.unwrap();
        let got = watched.execute_command(("GET", key.as_str())).await;
        let mut tally = Tally::default();
        tally.check(round, &key, got);
        wrong.extend(tally.wrong);
        stray_then_busy(&last);
        let next = format!("held-next-{round}");
        match watched.execute_command(("GET", next.as_str())).await {
            Err(redis_client::Error::OutOfStep(_)) => {}
            got => {
                let mut tally = Tally::default();
                tally.check(round, &next, got);
                wrong.extend(tally.wrong);
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
