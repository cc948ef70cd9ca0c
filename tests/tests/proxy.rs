//! resp-proto's example proxy (`crates/resp-proto/examples/proxy.rs`) between real clients
//! and a real redis-server. The proxy speaks RESP3 to the server; a client of either
//! protocol must get through it the very bytes the server sends it directly (RESP3
//! frames forwarded as they came, RESP2 replies re-encoded from RESP3, nulls of both
//! shapes included), and redis-client must read every type of reply through it, over
//! RESP2 and RESP3.

use bytes::{Bytes, BytesMut};
use redis_client::prelude::*;
use redis_client::redis_commands::ZRange;
use redis_client::{ConnectionInfo, MessageKind, Protocol, Redis, Value};
use redis_tests::{ServerConfig, TestServer};
use resp_proto::{encode_command, FrameSplitter};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The example proxy, running in front of a server, killed on drop.
struct Proxy {
    child: Child,
    port: u16,
}

impl Proxy {
    fn start(server: &TestServer) -> Proxy {
        let mut child = Command::new(env!("CARGO_BIN_EXE_example-resp-proxy"))
            .args(["127.0.0.1:0", &server.addr()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the proxy");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut line)
            .expect("the proxy's first line");
        let port = line
            .trim()
            .strip_prefix("listening on 127.0.0.1:")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the proxy said {line:?}"));
        Proxy { child, port }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn client(&self, protocol: Protocol) -> Redis {
        Redis::from_info(ConnectionInfo::tcp("127.0.0.1", self.port).with_protocol(protocol))
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// A client that sends commands and reads reply frames as raw bytes.
struct Raw {
    stream: TcpStream,
    buf: BytesMut,
    splitter: FrameSplitter,
}

impl Raw {
    fn connect(addr: &str) -> Raw {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Raw {
            stream,
            buf: BytesMut::new(),
            splitter: FrameSplitter::new(),
        }
    }

    fn send(&mut self, words: &[&str]) {
        let mut out = BytesMut::new();
        encode_command(&mut out, words);
        self.stream.write_all(&out).expect("write");
    }

    /// The next frame the peer sends, as bytes.
    fn frame(&mut self) -> Bytes {
        loop {
            if let Some(frame) = self.splitter.split(&mut self.buf).expect("valid RESP") {
                return frame;
            }
            let mut chunk = [0; 4096];
            let n = self.stream.read(&mut chunk).expect("read");
            assert!(n > 0, "closed with {:?} unread", self.buf);
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn call(&mut self, words: &[&str]) -> Bytes {
        self.send(words);
        self.frame()
    }
}

/// Commands whose replies cover every type and both RESP2 nulls, with the same answers on
/// every run once the database is flushed. Each reply is compared byte for byte.
const SCRIPT: &[&[&str]] = &[
    &["FLUSHALL"],
    &["SET", "k", "v"],
    &["GET", "k"],
    &["GET", "missing"],
    &["INCR", "n"],
    &["INCR", "k"],
    &["LPUSH", "k", "x"],
    &["RPUSH", "l", "a", "b", "c"],
    &["LRANGE", "l", "0", "-1"],
    &["LPOP", "nolist", "2"],
    &["BLPOP", "nolist", "0.01"],
    &["HSET", "h", "f", "1", "g", "2"],
    &["HGETALL", "h"],
    &["HMGET", "h", "f", "nofield"],
    &["CONFIG", "GET", "maxmemory"],
    &["SADD", "s", "a"],
    &["SMEMBERS", "s"],
    &["ZADD", "z", "1.5", "a", "2", "b", "-0.25", "c"],
    &["ZSCORE", "z", "a"],
    &["ZSCORE", "z", "nomember"],
    &["ZMSCORE", "z", "a", "nomember"],
    &["ZINCRBY", "z", "1", "a"],
    &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
    &["ZRANGEBYSCORE", "z", "-inf", "+inf", "WITHSCORES"],
    &["ZUNION", "1", "z", "WITHSCORES"],
    &["ZPOPMIN", "z", "1"],
    &["ZMPOP", "1", "z", "MAX"],
    &["BZPOPMIN", "z", "0.01"],
    &["BZPOPMIN", "nozset", "0.01"],
    &["GEOADD", "g", "13.5", "38.25", "p"],
    &["GEOPOS", "g", "nomember"],
    &["XADD", "st", "1-1", "f", "v"],
    &["XREAD", "STREAMS", "st", "0"],
    &["XREAD", "STREAMS", "nostream", "0"],
    &["XGROUP", "CREATE", "st", "grp", "0"],
    &["XREADGROUP", "GROUP", "grp", "c", "STREAMS", "st", ">"],
    &["XDEL", "st", "1-1"],
    &["XREADGROUP", "GROUP", "grp", "c", "STREAMS", "st", "0"],
    &["XGROUP", "CREATE", "st", "empty", "$"],
    &["XPENDING", "st", "empty"],
    &["ZADD", "z", "3", "d", "4.5", "e"],
    &["MULTI"],
    &["GET", "missing"],
    &["BLPOP", "nolist", "0"],
    &["GEOPOS", "g", "nomember"],
    &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
    &["EXEC"],
    &["EVAL", "redis.setresp(3); return true", "0"],
    &["EVAL", "redis.setresp(3); return false", "0"],
    &["EVAL", "redis.setresp(3); return {map={a=1}}", "0"],
    &["EVAL", "redis.setresp(3); return {set={a=true}}", "0"],
    &["EVAL", "redis.setresp(3); return {double=1.5}", "0"],
    &[
        "EVAL",
        "redis.setresp(3); return {big_number='123456789012345678901234567890'}",
        "0",
    ],
    &["EVAL", "return {err='ERR two\\r\\nlines'}", "0"],
    &["DEBUG", "PROTOCOL", "attrib"],
    &["DEBUG", "PROTOCOL", "verbatim"],
    &["DEBUG", "PROTOCOL", "bignum"],
    &["DEBUG", "PROTOCOL", "map"],
    &["INFO", "keyspace"],
    &["CLIENT", "TRACKINGINFO"],
    &["PING"],
    &["PING", "hello"],
];

/// Runs `script` on `raw` and returns each command with its reply.
fn run(raw: &mut Raw, script: &[&[&str]]) -> Vec<(String, Bytes)> {
    script
        .iter()
        .map(|words| (words.join(" "), raw.call(words)))
        .collect()
}

fn assert_same(direct: &[(String, Bytes)], proxied: &[(String, Bytes)], protocol: &str) {
    assert_eq!(direct.len(), proxied.len());
    for ((command, want), (_, got)) in direct.iter().zip(proxied) {
        assert_eq!(got, want, "{protocol} {command}");
    }
}

fn debug_server() -> TestServer {
    ServerConfig::default()
        .line("enable-debug-command yes")
        .start()
}

/// A RESP2 client gets through the proxy, which speaks RESP3 to the server, the bytes the
/// server sends it directly: maps as flat arrays, sets as arrays, doubles and big numbers
/// as bulk strings, booleans as integers, attributes left out, `$-1` and `*-1` where the
/// server puts them (alone, in arrays, inside EXEC), ZRANGE WITHSCORES flat, XREAD's map
/// as pairs.
#[test]
fn a_resp2_client_gets_the_bytes_redis_sends_it() {
    let server = debug_server();
    let proxy = Proxy::start(&server);
    let direct = run(&mut Raw::connect(&server.addr()), SCRIPT);
    let mut raw = Raw::connect(&proxy.addr());
    let proxied = run(&mut raw, SCRIPT);
    assert_same(&direct, &proxied, "RESP2");
    // Some of what the comparison covers, said outright.
    let reply = |command: &str| {
        let (_, r) = direct.iter().find(|(c, _)| c == command).expect(command);
        r.clone()
    };
    assert_eq!(reply("BLPOP nolist 0.01"), "*-1\r\n");
    assert_eq!(reply("GET missing"), "$-1\r\n");
    assert_eq!(
        reply("XPENDING st empty"),
        "*4\r\n:0\r\n$-1\r\n$-1\r\n*-1\r\n"
    );
    assert_eq!(
        reply("EXEC"),
        "*4\r\n$-1\r\n*-1\r\n*1\r\n*-1\r\n*4\r\n$1\r\nd\r\n$1\r\n3\r\n$1\r\ne\r\n$3\r\n4.5\r\n"
    );
    // The server connection behind the proxy speaks RESP3: the client's replies were
    // re-encoded, not forwarded.
    let info = raw.call(&["CLIENT", "INFO"]);
    let info = String::from_utf8_lossy(&info);
    assert!(info.starts_with('$') && info.contains(" resp=3"), "{info}");
}

/// A RESP3 client gets through the proxy the bytes the server sends it, forwarded as
/// they came; after RESET it is a RESP2 client again, and gets RESP2 from the proxy
/// (which said HELLO 3 to the server again, and kept the answer to itself).
#[test]
fn a_resp3_client_gets_the_frames_redis_sends_it_and_reset_makes_it_resp2() {
    let server = debug_server();
    let proxy = Proxy::start(&server);
    let mut through = Raw::connect(&proxy.addr());
    let mut direct = Raw::connect(&server.addr());
    for raw in [&mut through, &mut direct] {
        let hello = raw.call(&["HELLO", "3"]);
        assert!(hello.starts_with(b"%7\r\n"), "{hello:?}");
        assert!(
            hello.windows(13).any(|w| w == b"proto\r\n:3\r\n$2"),
            "{hello:?}"
        );
    }
    let mut script = SCRIPT.to_vec();
    script.extend([&["RESET"][..], &["GET", "missing"], &["HGETALL", "h"]]);
    script.extend(SCRIPT);
    assert_same(
        &run(&mut direct, &script),
        &run(&mut through, &script),
        "RESP3",
    );
    // Behind the proxy the server was told HELLO 3 again after the RESET.
    let info = through.call(&["CLIENT", "INFO"]);
    let info = String::from_utf8_lossy(&info);
    assert!(info.starts_with('$') && info.contains(" resp=3"), "{info}");
}

/// HELLO 2 and HELLO 3 switch the client's protocol back and forth; the answer to HELLO
/// is given in the version asked for, with that version in its `proto` field.
#[test]
fn hello_switches_the_clients_protocol() {
    let server = TestServer::start();
    let proxy = Proxy::start(&server);
    let mut raw = Raw::connect(&proxy.addr());
    raw.call(&["HSET", "h", "f", "1"]);
    let hello = raw.call(&["HELLO", "3"]);
    assert!(hello.starts_with(b"%7\r\n"), "{hello:?}");
    assert_eq!(raw.call(&["HGETALL", "h"]), "%1\r\n$1\r\nf\r\n$1\r\n1\r\n");
    let hello = raw.call(&["HELLO", "2"]);
    assert!(hello.starts_with(b"*14\r\n"), "{hello:?}");
    assert!(
        hello.windows(10).any(|w| w == b"proto\r\n:2\r"),
        "{hello:?}"
    );
    assert_eq!(raw.call(&["HGETALL", "h"]), "*2\r\n$1\r\nf\r\n$1\r\n1\r\n");
    assert_eq!(raw.call(&["GET", "missing"]), "$-1\r\n");
    let hello = raw.call(&["HELLO", "3"]);
    assert!(hello.starts_with(b"%7\r\n"), "{hello:?}");
    assert_eq!(raw.call(&["GET", "missing"]), "_\r\n");
    // A version the server does not know: its error, and nothing changes.
    let refused = raw.call(&["HELLO", "4"]);
    assert!(refused.starts_with(b"-NOPROTO"), "{refused:?}");
    assert_eq!(raw.call(&["GET", "missing"]), "_\r\n");
}

/// Pub/sub over RESP2 through the proxy: the server's pushes become the arrays a RESP2
/// subscriber reads, PING in subscribed mode is answered `["pong", message]`, as the
/// server answers a RESP2 subscriber directly.
#[test]
fn a_resp2_subscriber_gets_arrays() {
    let server = TestServer::start();
    let proxy = Proxy::start(&server);
    let mut publisher = Raw::connect(&server.addr());
    let mut transcripts = Vec::new();
    for addr in [server.addr(), proxy.addr()] {
        let mut sub = Raw::connect(&addr);
        let mut got = vec![sub.call(&["SUBSCRIBE", "ch", "other"]), sub.frame()];
        got.push(sub.call(&["PSUBSCRIBE", "c*"]));
        got.push(sub.call(&["PING"]));
        got.push(sub.call(&["PING", "hi"]));
        assert_eq!(publisher.call(&["PUBLISH", "ch", "hello"]), ":2\r\n");
        got.extend([sub.frame(), sub.frame()]);
        got.push(sub.call(&["UNSUBSCRIBE"]));
        got.push(sub.frame());
        got.push(sub.call(&["PUNSUBSCRIBE"]));
        got.push(sub.call(&["PING"]));
        transcripts.push(got);
    }
    assert_eq!(transcripts[1], transcripts[0]);
    assert_eq!(transcripts[0][3], "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    assert_eq!(transcripts[0][10], "+PONG\r\n");
}

/// redis-client, through the proxy, over RESP2 and RESP3: every type of reply converts to
/// the same Rust values as from the server directly.
#[test]
fn redis_client_reads_every_type_through_the_proxy() {
    let server = TestServer::start();
    let proxy = Proxy::start(&server);
    for protocol in [Protocol::Resp2, Protocol::Resp3] {
        let r = proxy.client(protocol);
        let b = |s: &str| Bytes::copy_from_slice(s.as_bytes());
        r.execute_command("FLUSHALL").unwrap();
        // Strings, nils of both shapes, integers, errors.
        assert!(r.set("k", "v").unwrap());
        assert_eq!(r.get("k").unwrap(), Some(b("v")));
        assert_eq!(r.get("missing").unwrap(), None);
        assert_eq!(r.blpop("nolist", Duration::from_millis(10)).unwrap(), None);
        assert_eq!(r.incr("n").unwrap(), 1);
        let err = r.incr("k").unwrap_err();
        assert!(err.to_string().contains("not an integer"), "{err}");
        // Arrays, maps, sets, doubles.
        r.rpush("l", ["a", "b"]).unwrap();
        assert_eq!(r.lrange("l", 0, -1).unwrap(), [b("a"), b("b")]);
        r.hset("h", "f", "1").unwrap();
        assert_eq!(r.hgetall("h").unwrap(), HashMap::from([(b("f"), b("1"))]));
        assert_eq!(
            r.config_get("maxmemory").unwrap(),
            HashMap::from([("maxmemory".to_owned(), "0".to_owned())])
        );
        r.sadd("s", ["x", "y"]).unwrap();
        assert_eq!(r.smembers("s").unwrap(), HashSet::from([b("x"), b("y")]));
        r.zadd("z", [(1.5, "a"), (0.1, "b")]).unwrap();
        assert_eq!(r.zscore("z", "a").unwrap(), Some(1.5));
        assert_eq!(r.zscore("z", "b").unwrap(), Some(0.1));
        assert_eq!(r.zscore("z", "nomember").unwrap(), None);
        assert_eq!(
            r.zrange_withscores("z", ZRange::by_index(0, -1)).unwrap(),
            [(b("b"), 0.1), (b("a"), 1.5)]
        );
        r.geoadd("g", [(13.361389, 38.115556, "p")]).unwrap();
        let pos = r.geopos("g", ["p", "nomember"]).unwrap();
        assert!(matches!(pos[..], [Some((lon, _)), None] if (lon - 13.361389).abs() < 1e-5));
        // Booleans: a RESP3 client is sent one, a RESP2 client the integer Redis sends.
        let truth = r
            .execute_command(("EVAL", "redis.setresp(3); return true", 0))
            .unwrap();
        let expected = match protocol {
            Protocol::Resp2 => Value::Integer(1),
            Protocol::Resp3 => Value::Boolean(true),
        };
        assert_eq!(truth, expected);
        // A transaction holding a nil of each shape.
        let mut pipe = r.pipeline();
        pipe.get("missing")
            .blpop("nolist", Duration::from_millis(10))
            .incr("n");
        let results = pipe.execute().unwrap();
        assert_eq!(
            results,
            [Value::Nil, Value::Nil, Value::Integer(2)],
            "{protocol:?}"
        );
        // Pushes: pub/sub messages and a PING in subscribed mode.
        let mut sub = r.pubsub();
        sub.subscribe("news").unwrap();
        assert_eq!(r.publish("news", "hello").unwrap(), 1);
        let m = next_message(&mut sub);
        assert_eq!(
            (m.kind, &m.payload[..]),
            (MessageKind::Message, &b"hello"[..])
        );
        sub.ping("still there").unwrap();
        let m = next_message(&mut sub);
        assert_eq!(
            (m.kind, &m.payload[..]),
            (MessageKind::Pong, &b"still there"[..])
        );
        // The server side of the proxy speaks RESP3 whatever the client speaks.
        let info = r.client_info().unwrap();
        assert_eq!(info.get("resp"), Some("3"), "{protocol:?}: {info:?}");
    }
}

/// The next message that is not a subscription confirmation, within 5 s.
fn next_message(sub: &mut redis_client::PubSub) -> redis_client::Message {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(m) = sub.get_message(Some(Duration::from_millis(200))).unwrap() {
            if !matches!(m.kind, MessageKind::Subscribe) {
                return m;
            }
        }
        assert!(Instant::now() < deadline, "no message within 5 s");
    }
}
