//! Hostile and broken servers: absurd declared lengths, nesting past the limit, garbage
//! type bytes, non-numeric lengths, replies that never end. Each gives a typed error
//! within bounded time and memory, and the connection is closed, not reused.
//!
//! The replies come from a scripted fake server, since a real Redis cannot be made to
//! send them. A counting global allocator measures the client's peak allocation.

#![allow(unsafe_code)] // The counting allocator below; test-only.

use redis_client::prelude::*;
use redis_client::{ConnectionInfo, Error, Redis, RetryPolicy};
use redis_tests::{FakeConn, FakeServer};
use resp_proto::ProtocolErrorKind;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the counters are
// plain atomics and never affect what is allocated.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        // SAFETY: same layout the caller gave us, as GlobalAlloc::alloc requires.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Peak measurements need the whole process to themselves.
static SERIAL: Mutex<()> = Mutex::new(());

const READ_TIMEOUT: Duration = Duration::from_millis(500);

/// Answers the first request of each connection with `reply`, then holds the connection
/// open (so only the client can end it); later connections get `+OK`.
fn fake_replying(reply: &'static [u8]) -> FakeServer {
    let first = std::sync::atomic::AtomicBool::new(true);
    FakeServer::start(move |mut c: FakeConn| {
        if c.read_request().is_none() {
            return;
        }
        if first.swap(false, Ordering::SeqCst) {
            c.write(reply);
            c.hold(Duration::from_secs(10));
        } else {
            c.write(b"$2\r\nok\r\n");
            while c.read_request().is_some() {
                c.write(b"$2\r\nok\r\n");
            }
        }
    })
}

/// A client that surfaces the first failure: these tests look at the error itself (the
/// default policy would retry a read-only GET on a fresh connection).
fn client(fake: &FakeServer) -> Redis {
    Redis::from_info(ConnectionInfo::tcp("127.0.0.1", fake.port()).with_timeout(Some(READ_TIMEOUT)))
        .with_retry_policy(RetryPolicy::none())
}

/// Runs GET against a fake server that answers with `reply`, and returns the error, the
/// time it took and the client's peak extra allocation during the call.
fn attempt(reply: &'static [u8]) -> (Error, Duration, usize, Redis, FakeServer) {
    let fake = fake_replying(reply);
    let r = client(&fake);
    let base = CURRENT.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let start = Instant::now();
    let err = r.get("k").expect_err("a hostile reply must not succeed");
    let took = start.elapsed();
    let peak = PEAK.load(Ordering::SeqCst).saturating_sub(base);
    (err, took, peak, r, fake)
}

fn protocol_kind(e: &Error) -> &ProtocolErrorKind {
    match e {
        Error::Protocol(p) => p.kind(),
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

/// The read timeout tripped, within a bounded time after it was due.
fn assert_timed_out(err: &Error, took: Duration) {
    assert!(matches!(err, Error::Timeout), "{err:?}");
    assert!(
        took >= READ_TIMEOUT && took < READ_TIMEOUT * 4,
        "took {took:?}"
    );
}

/// After a failure the broken connection is dropped: the next command opens a new one.
fn assert_not_reused(r: &Redis, fake: &FakeServer) {
    assert_eq!(fake.accepted(), 1);
    assert_eq!(r.get("k").unwrap().as_deref(), Some(&b"ok"[..]));
    assert_eq!(
        fake.accepted(),
        2,
        "the broken connection must not be reused"
    );
}

const MIB: usize = 1 << 20;

#[test]
fn bulk_length_over_the_limit() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (err, took, peak, r, fake) = attempt(b"$99999999999\r\n");
    assert!(
        matches!(protocol_kind(&err), ProtocolErrorKind::BulkTooLong { .. }),
        "{err:?}"
    );
    assert!(took < READ_TIMEOUT, "refused at once, took {took:?}");
    assert!(peak < MIB, "peak allocation {peak}");
    assert_not_reused(&r, &fake);
}

#[test]
fn array_length_over_the_limit() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (err, _, peak, r, fake) = attempt(b"*99999999999\r\n");
    assert!(
        matches!(
            protocol_kind(&err),
            ProtocolErrorKind::AggregateTooLong { .. }
        ),
        "{err:?}"
    );
    assert!(peak < MIB, "peak allocation {peak}");
    assert_not_reused(&r, &fake);
}

#[test]
fn huge_declared_array_is_not_preallocated() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Within the limit, but the elements never come: the client must wait (and time out),
    // not reserve room for sixteen million values.
    let (err, took, peak, r, fake) = attempt(b"*16000000\r\n:1\r\n:2\r\n");
    assert_timed_out(&err, took);
    assert!(peak < MIB, "peak allocation {peak}");
    assert_not_reused(&r, &fake);
}

#[test]
fn nesting_deeper_than_the_limit() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    static DEEP: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let deep: &'static [u8] = DEEP.get_or_init(|| b"*1\r\n".repeat(100_000));
    let (err, _, peak, r, fake) = attempt(deep);
    assert!(
        matches!(protocol_kind(&err), ProtocolErrorKind::TooDeep { .. }),
        "{err:?}"
    );
    assert!(peak < 8 * MIB, "peak allocation {peak}");
    assert_not_reused(&r, &fake);
}

#[test]
fn garbage_type_byte() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (err, _, _, r, fake) = attempt(b"?what\r\n");
    assert!(
        matches!(
            protocol_kind(&err),
            ProtocolErrorKind::InvalidTypeByte(b'?')
        ),
        "{err:?}"
    );
    assert_not_reused(&r, &fake);
}

#[test]
fn non_numeric_length() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (err, _, _, r, fake) = attempt(b"$12a\r\nhello world!\r\n");
    assert!(
        matches!(protocol_kind(&err), ProtocolErrorKind::InvalidInteger),
        "{err:?}"
    );
    assert_not_reused(&r, &fake);
}

#[test]
fn negative_length() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (err, _, _, r, fake) = attempt(b"$-7\r\n");
    assert!(
        matches!(protocol_kind(&err), ProtocolErrorKind::InvalidLength(-7)),
        "{err:?}"
    );
    assert_not_reused(&r, &fake);
}

#[test]
fn reply_that_never_ends() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (err, took, peak, r, fake) = attempt(b"$100\r\nonly ten b");
    assert_timed_out(&err, took);
    assert!(peak < MIB, "peak allocation {peak}");
    assert_not_reused(&r, &fake);
}

#[test]
fn endless_line_is_refused_with_bounded_memory() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // A status line that never ends, streamed as fast as the client reads.
    let fake = FakeServer::start(|mut c: FakeConn| {
        if c.read_request().is_some() {
            c.write(b"+");
            c.write_repeated(b'a', 64 * MIB);
        }
    });
    let r = client(&fake);
    let base = CURRENT.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let err = r.get("k").unwrap_err();
    let peak = PEAK.load(Ordering::SeqCst).saturating_sub(base);
    assert!(
        matches!(protocol_kind(&err), ProtocolErrorKind::LineTooLong { .. }),
        "{err:?}"
    );
    assert!(peak < 8 * MIB, "peak allocation {peak}");
}

#[test]
fn declared_large_bulk_reserves_a_bounded_amount() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // 500 MB declared, within the 512 MiB limit, then silence: the client may prepare
    // for part of it, not all.
    let (err, _, peak, r, fake) = attempt(b"$500000000\r\nfirst bytes");
    assert!(matches!(err, Error::Timeout), "{err:?}");
    assert!(peak < 48 * MIB, "peak allocation {peak}");
    assert_not_reused(&r, &fake);
}

#[test]
fn a_10_mb_value_is_read_with_one_buffer() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = redis_tests::TestServer::start();
    let r = Redis::open(&server.url()).unwrap();
    let value = vec![b'v'; 10 * MIB];
    r.set("big", &value[..]).unwrap();
    drop(value);
    let base = CURRENT.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let got = r.get("big").unwrap().unwrap();
    let peak = PEAK.load(Ordering::SeqCst).saturating_sub(base);
    assert_eq!(got.len(), 10 * MIB);
    // The reply lands in one buffer sized for it; the returned Bytes is a view of it.
    assert!(
        peak < 10 * MIB + 2 * MIB,
        "peak allocation {peak} for a 10 MiB value"
    );
}

#[test]
fn every_hostile_reply_is_bounded_under_the_default_retry_policy() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // GET is read-only, so the default policy may retry it; neither a timeout nor bad
    // bytes are retried, so no wait is multiplied.
    for reply in [
        &b"$100\r\nonly ten b"[..],
        b"*16000000\r\n:1\r\n",
        b"$99999999999\r\n",
        b"?what\r\n",
        b"$500000000\r\nfirst bytes",
    ] {
        let fake = fake_replying(reply);
        let r = Redis::from_info(
            ConnectionInfo::tcp("127.0.0.1", fake.port()).with_timeout(Some(READ_TIMEOUT)),
        );
        let start = Instant::now();
        let err = r.get("k").expect_err("a hostile reply must not succeed");
        let took = start.elapsed();
        assert!(
            took < READ_TIMEOUT * 2,
            "{:?}: took {took:?} ({err})",
            String::from_utf8_lossy(reply)
        );
        assert_eq!(fake.accepted(), 1, "not retried: {err}");
    }
}

#[test]
fn a_reply_trickled_a_byte_at_a_time_is_bounded_by_one_deadline() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let fake = FakeServer::start(|mut c: FakeConn| {
        if c.read_request().is_some() {
            c.write(b"$100\r\n");
            for _ in 0..100 {
                std::thread::sleep(Duration::from_millis(100));
                c.write(b"x");
            }
        }
    });
    let (err, took) = {
        let r = client(&fake);
        let start = Instant::now();
        (r.get("k").unwrap_err(), start.elapsed())
    };
    // Every read gets a byte well within the timeout; only the reply's one deadline ends it.
    assert_timed_out(&err, took);
}

#[test]
fn a_small_value_never_pins_the_buffer_of_a_large_reply() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = redis_tests::TestServer::start();
    let setup = Redis::open(&server.url()).unwrap();
    setup.set("big", vec![b'v'; 16 * MIB]).unwrap();
    for i in 0..10 {
        setup.set(format!("small{i}"), "8 bytes!").unwrap();
    }
    drop(setup);
    let base = CURRENT.load(Ordering::SeqCst);
    let smalls = {
        let r = Redis::open(&server.url()).unwrap();
        let big = r.get("big").unwrap().unwrap();
        assert_eq!(big.len(), 16 * MIB);
        drop(big);
        let smalls: Vec<_> = (0..10)
            .map(|i| r.get(format!("small{i}")).unwrap().unwrap())
            .collect();
        // The idle connection does not keep the large buffer either.
        let held = CURRENT.load(Ordering::SeqCst).saturating_sub(base);
        assert!(held < 2 * MIB, "{held} bytes held by an idle client");
        smalls
    };
    let held = CURRENT.load(Ordering::SeqCst).saturating_sub(base);
    assert!(held < MIB, "{held} bytes held by ten 8-byte values");
    assert!(smalls.iter().all(|v| &v[..] == b"8 bytes!"));
}

#[test]
fn an_endless_streamed_reply_is_refused_with_bounded_memory() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // RESP3 streamed aggregate and streamed string that never end, as fast as the client
    // reads; the client's reply bound is set to 1 MiB.
    for (header, element) in [
        (&b"*?\r\n"[..], &b":1\r\n"[..]),
        (b"$?\r\n", b";1\r\nx\r\n"),
    ] {
        let limits = resp_proto::Limits {
            max_reply_bytes: MIB,
            ..resp_proto::Limits::default()
        };
        let (_fake, r) = endless_resp3(header, element, limits);
        let base = CURRENT.load(Ordering::SeqCst);
        PEAK.store(base, Ordering::SeqCst);
        let start = Instant::now();
        let err = r.get("k").unwrap_err();
        let peak = PEAK.load(Ordering::SeqCst).saturating_sub(base);
        assert!(
            matches!(protocol_kind(&err), ProtocolErrorKind::ReplyTooLong { .. }),
            "{err:?}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
        assert!(peak < 16 * MIB, "peak allocation {peak}");
    }
}

#[test]
fn a_resp2_connection_refuses_every_frame_only_resp3_has_at_once() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // What a RESP2 server never sends, each answered to a GET on a connection whose
    // handshake sent no HELLO: a protocol error at the first byte RESP2 lacks, without
    // waiting for the rest (which never comes) or for the read timeout.
    for reply in [
        &b"_"[..],
        b",1.5",
        b"#t",
        b"!5\r\nerror",
        b"=7\r\ntxt:a",
        b"(123",
        b"%1\r\n",
        b"~1\r\n",
        b"|1\r\n",
        b">2\r\n",
        b"*1\r\n_",
    ] {
        let (err, took, _, r, fake) = attempt(reply);
        let byte = reply[if reply[0] == b'*' { 4 } else { 0 }];
        assert_eq!(
            protocol_kind(&err),
            &ProtocolErrorKind::InvalidTypeByte(byte),
            "{:?}",
            String::from_utf8_lossy(reply)
        );
        assert!(took < READ_TIMEOUT, "refused at once, took {took:?}");
        assert_not_reused(&r, &fake);
    }
    // Streamed strings and aggregates: refused at the `?`.
    for reply in [&b"$?"[..], b"*?", b"*2\r\n:1\r\n*?"] {
        let (err, took, _, r, fake) = attempt(reply);
        assert_eq!(protocol_kind(&err), &ProtocolErrorKind::InvalidInteger);
        assert!(took < READ_TIMEOUT, "refused at once, took {took:?}");
        assert_not_reused(&r, &fake);
    }
}

#[test]
fn a_connection_that_negotiates_resp3_takes_resp3_frames() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // The same replies to a client whose handshake sent HELLO 3: values, as RESP3 says.
    let fake = FakeServer::start(|mut c: FakeConn| {
        let mut replies = [
            &b"_\r\n"[..],
            b"#t\r\n",
            b"%1\r\n+a\r\n:1\r\n",
            b"$?\r\n;2\r\nab\r\n;0\r\n",
            b"*?\r\n,1.5\r\n.\r\n",
        ]
        .into_iter();
        while c.read_request_resp3().is_some() {
            match replies.next() {
                Some(reply) => c.write(reply),
                None => return,
            }
        }
    });
    let r = Redis::from_info(
        ConnectionInfo::tcp("127.0.0.1", fake.port())
            .with_protocol(redis_client::Protocol::Resp3)
            .with_timeout(Some(READ_TIMEOUT)),
    )
    .with_retry_policy(RetryPolicy::none());
    use redis_client::Value;
    let got: Vec<Value> = (0..5)
        .map(|_| r.execute_command(("GET", "k")).unwrap())
        .collect();
    assert_eq!(
        got,
        [
            Value::Nil,
            Value::Boolean(true),
            Value::Map(vec![(Value::SimpleString("a".into()), Value::Integer(1))]),
            Value::BulkString("ab".into()),
            Value::Array(vec![Value::Double(1.5)]),
        ]
    );
    assert_eq!(fake.accepted(), 1, "one connection throughout");
}

/// A RESP3 fake server (it answers `HELLO 3`) that answers the first command with
/// `header`, then `element` over and over until the client goes away, and a client with
/// `limits` speaking RESP3 to it.
fn endless_resp3(
    header: &'static [u8],
    element: &'static [u8],
    limits: resp_proto::Limits,
) -> (FakeServer, Redis) {
    let fake = FakeServer::start(move |mut c: FakeConn| {
        if c.read_request_resp3().is_none() {
            return;
        }
        c.write(header);
        let chunk = element.repeat((64 * 1024) / element.len());
        while c.write_all(&chunk) {}
    });
    let r = Redis::from_info(
        ConnectionInfo::tcp("127.0.0.1", fake.port())
            .with_protocol(redis_client::Protocol::Resp3)
            .with_timeout(Some(Duration::from_secs(10)))
            .with_limits(limits),
    )
    .with_retry_policy(RetryPolicy::none());
    (fake, r)
}

#[test]
fn aggregates_nested_past_the_default_element_bound_are_refused_from_their_headers() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Each within the aggregate limit, together more than one reply may hold: refused at
    // the second header, before any element arrives (the client would otherwise wait).
    let (err, took, peak, r, fake) = attempt(b"*16777216\r\n*16777216\r\n");
    assert_eq!(
        protocol_kind(&err),
        &ProtocolErrorKind::TooManyElements { limit: 1 << 24 },
        "{err:?}"
    );
    assert!(took < READ_TIMEOUT, "refused at once, took {took:?}");
    assert!(peak < MIB, "peak allocation {peak}");
    assert_not_reused(&r, &fake);
}

#[test]
fn an_endless_stream_of_nested_aggregates_is_refused_at_the_default_element_bound() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // A streamed array whose elements are arrays of three: four decoded values per 16
    // bytes of input. With the default limits the reply is refused once it holds 2^24
    // elements (64 MiB of input), not at 1 GiB of input, which would decode into 2.5 GiB
    // of values had it ended there.
    let (_fake, r) = endless_resp3(
        b"*?\r\n",
        b"*3\r\n:1\r\n:2\r\n:3\r\n",
        resp_proto::Limits::default(),
    );
    let base = CURRENT.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let start = Instant::now();
    let err = r.get("k").unwrap_err();
    let peak = PEAK.load(Ordering::SeqCst).saturating_sub(base);
    assert_eq!(
        protocol_kind(&err),
        &ProtocolErrorKind::TooManyElements { limit: 1 << 24 },
        "{err:?}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    // The input buffer, grown as the bytes came (64 MiB of them, in an allocation that
    // doubles): under 200 MiB measured, where 256 MiB of input (the aggregate's own
    // limit) would take three times that.
    assert!(peak < 320 * MIB, "peak allocation {} MiB", peak / MIB);
}

/// Answers every SCAN-family command with a page of no items and the cursor after the
/// one it was given in the cycle 7 → 9 → 11 → 7 …, so a walk would never end.
fn scan_going_round() -> FakeServer {
    FakeServer::start(|mut c: FakeConn| {
        while let Some(args) = c.read_request() {
            // SCAN cursor …, or HSCAN key cursor …
            let at = if args[0].eq_ignore_ascii_case(b"SCAN") {
                1
            } else {
                2
            };
            let cursor: u64 = std::str::from_utf8(&args[at]).unwrap().parse().unwrap();
            let next = match cursor {
                7 => 9,
                9 => 11,
                _ => 7,
            };
            let next = next.to_string();
            c.write(format!("*2\r\n${}\r\n{next}\r\n*0\r\n", next.len()).as_bytes());
        }
    })
}

#[test]
fn a_scan_whose_cursors_go_round_ends_with_an_error() {
    let fake = scan_going_round();
    let r = client(&fake);
    let mut walk = r.scan_iter(Default::default());
    match walk.next() {
        Some(Err(Error::Reply { command, source })) => {
            assert_eq!(command, "SCAN");
            assert!(source.to_string().contains("again"), "{source}");
        }
        other => panic!("{other:?}"),
    }
    assert!(walk.next().is_none(), "the walk is over");
    let mut fields = r.hscan_iter("h", Default::default());
    assert!(matches!(fields.next(), Some(Err(Error::Reply { .. }))));

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let r = redis_client::aio::Redis::from_info(ConnectionInfo::tcp("127.0.0.1", fake.port()));
    rt.block_on(async {
        use redis_client::futures_core::Stream;
        let mut walk = std::pin::pin!(r.scan_stream(Default::default()));
        let first = std::future::poll_fn(|cx| walk.as_mut().poll_next(cx)).await;
        assert!(matches!(first, Some(Err(Error::Reply { .. }))), "{first:?}");
        let then = std::future::poll_fn(|cx| walk.as_mut().poll_next(cx)).await;
        assert!(then.is_none(), "the walk is over");
    });
}
