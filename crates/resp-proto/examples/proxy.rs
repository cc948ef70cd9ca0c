//! A Redis proxy built on `resp-proto` alone, with std threads: it speaks RESP3 to the
//! server and serves clients of either protocol.
//!
//! ```text
//! cargo run -p resp-proto --example proxy -- [LISTEN] [SERVER]
//! ```
//!
//! `LISTEN` defaults to `127.0.0.1:6380` (port 0 picks a free one) and `SERVER` to
//! `127.0.0.1:6379`. The first line it prints is `listening on <address>`.
//!
//! What it shows:
//! - frames forwarded as the bytes received, without building values: every request, and
//!   every reply to a client that speaks RESP3 like the server ([`FrameSplitter`]);
//! - replies re-encoded for a client that speaks RESP2 ([`encode_value_as_resp2`]): each
//!   RESP3 type as Redis writes it for RESP2, the null of the shape the command calls for
//!   (`$-1` or `*-1`), and the few replies Redis nests differently in RESP2 (ZRANGE
//!   WITHSCORES and its kin, XREAD), so a RESP2 client gets the bytes Redis itself would
//!   send it;
//! - the protocol switch: a client's `HELLO 2` or `HELLO 3` goes on as `HELLO 3` (its
//!   other options kept) and its answer comes back in the version the client asked for;
//!   after `RESET`, which takes the server back to RESP2, the proxy says `HELLO 3` again
//!   and drops the answer.
//!
//! What it leaves out, as a sketch: a server that refuses `HELLO 3` before
//! authentication (the proxy says it first; a client authenticating with `HELLO … AUTH`
//! works, since that is sent on as `HELLO 3 … AUTH`), inline commands (clients send RESP
//! arrays), `CLIENT REPLY OFF|SKIP` (replies are matched to requests in order), and
//! pushes other than pub/sub to a RESP2 client (passed on as arrays).

use bytes::{Buf, Bytes, BytesMut};
use resp_proto::{
    encode_command, encode_value, encode_value_as_resp2, Decode, Decoder, FrameSplitter, Protocol,
    ProtocolError, Resp2Null, ServerError, Value,
};
use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:6380".to_owned());
    let server = args.next().unwrap_or_else(|| "127.0.0.1:6379".to_owned());
    let listener = TcpListener::bind(&listen)?;
    println!("listening on {}", listener.local_addr()?);
    io::stdout().flush()?;
    for client in listener.incoming() {
        let client = match client {
            Ok(c) => c,
            Err(e) => {
                eprintln!("accept: {e}");
                continue;
            }
        };
        let server = server.clone();
        thread::spawn(move || {
            if let Err(e) = serve(client, &server) {
                eprintln!("connection closed: {e}");
            }
        });
    }
    Ok(())
}

/// What a request needs to be known by when its reply comes back.
#[derive(Clone, Debug)]
struct Request {
    /// The command's first word, in upper case.
    name: String,
    /// The other words.
    args: Vec<Bytes>,
    /// For EXEC, the commands queued since MULTI, whose replies its array holds.
    queued: Vec<Request>,
}

impl Request {
    fn has_arg(&self, word: &str) -> bool {
        self.args
            .iter()
            .any(|a| a.eq_ignore_ascii_case(word.as_bytes()))
    }
}

/// A reply the server owes, in the order the requests went.
enum Owed {
    /// The client's request: the reply goes back to it.
    Client(Request),
    /// The proxy's own `HELLO 3` after a `RESET`: the reply is dropped.
    Proxy,
}

/// The replies owed, shared by the thread that sends requests and the one that reads
/// replies: an entry is added before its request is written, so it is there when its
/// reply arrives.
type Owing = Arc<Mutex<VecDeque<Owed>>>;

fn serve(client: TcpStream, server_addr: &str) -> io::Result<()> {
    client.set_nodelay(true)?;
    let mut server = TcpStream::connect(server_addr)?;
    server.set_nodelay(true)?;
    if let Err(e) = hello3(&mut server) {
        let mut refusal = BytesMut::new();
        encode_value(
            &mut refusal,
            &Value::Error(ServerError::new(format!(
                "ERR proxy: the server refused HELLO 3: {e}"
            ))),
        );
        (&client).write_all(&refusal)?;
        return Err(e);
    }
    let owing = Owing::default();
    let requests = {
        let (client, server, owing) = (client.try_clone()?, server.try_clone()?, owing.clone());
        thread::spawn(move || {
            let sent = send_requests(&client, &server, &owing);
            // Either side gone: end the other direction too.
            client.shutdown(Shutdown::Both).ok();
            server.shutdown(Shutdown::Both).ok();
            sent
        })
    };
    let replied = send_replies(&server, &client, &owing);
    client.shutdown(Shutdown::Both).ok();
    server.shutdown(Shutdown::Both).ok();
    let sent = requests.join().unwrap_or(Ok(()));
    replied.and(sent)
}

/// Says `HELLO 3` on a new server connection and reads its answer.
fn hello3(server: &mut TcpStream) -> io::Result<()> {
    let mut out = BytesMut::new();
    encode_command(&mut out, &["HELLO", "3"]);
    server.write_all(&out)?;
    let mut splitter = FrameSplitter::new();
    let mut buf = BytesMut::new();
    loop {
        if let Some(frame) = splitter.split(&mut buf).map_err(invalid)? {
            return match decode(&frame)? {
                Value::Map(_) => Ok(()),
                Value::Error(e) => Err(io::Error::other(e.to_string())),
                other => Err(io::Error::other(format!("HELLO 3 answered {other:?}"))),
            };
        }
        if read_into(server, &mut buf, splitter.bytes_wanted())? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// Client to server: every request goes on as the bytes received, but HELLO, whose
/// version becomes 3, and RESET, followed by the proxy's own HELLO 3.
fn send_requests(mut client: &TcpStream, mut server: &TcpStream, owing: &Owing) -> io::Result<()> {
    let mut splitter = FrameSplitter::new();
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut out = VecDeque::new();
    // The commands queued since MULTI, if one is open.
    let mut multi: Option<Vec<Request>> = None;
    loop {
        if read_into(&mut client, &mut buf, splitter.bytes_wanted())? == 0 {
            return Ok(());
        }
        while let Some(frame) = splitter.split(&mut buf).map_err(invalid)? {
            let mut request = parse_request(&frame)?;
            let mut owed = vec![];
            let mut frame = Some(frame);
            match request.name.as_str() {
                "EXEC" => request.queued = multi.take().unwrap_or_default(),
                "DISCARD" => multi = None,
                "MULTI" => {
                    // A MULTI inside MULTI is refused, not queued.
                    multi.get_or_insert_with(Vec::new);
                }
                "RESET" => {
                    multi = None;
                    // RESET takes the server back to RESP2: say HELLO 3 again after it.
                    out.push_back(frame.take().expect("not sent yet"));
                    let mut hello = BytesMut::new();
                    encode_command(&mut hello, &["HELLO", "3"]);
                    frame = Some(hello.freeze());
                    owed.push(Owed::Client(request.clone()));
                    owed.push(Owed::Proxy);
                }
                "HELLO" if multi.is_none() => {
                    if let Some(b"2" | b"3") = request.args.first().map(|v| &v[..]) {
                        // The server keeps speaking RESP3; the reply is given back in the
                        // version asked for.
                        let mut words: Vec<&[u8]> = vec![b"HELLO", b"3"];
                        words.extend(request.args[1..].iter().map(|a| &a[..]));
                        let mut hello = BytesMut::new();
                        encode_command(&mut hello, &words);
                        frame = Some(hello.freeze());
                    }
                }
                _ => {
                    if let Some(queued) = &mut multi {
                        queued.push(request.clone());
                    }
                }
            }
            // RESP3 confirms each (un)subscription with a push, not a reply.
            let pushes_only = multi.is_none()
                && match request.name.as_str() {
                    "SUBSCRIBE" | "PSUBSCRIBE" | "SSUBSCRIBE" => !request.args.is_empty(),
                    "UNSUBSCRIBE" | "PUNSUBSCRIBE" | "SUNSUBSCRIBE" => true,
                    _ => false,
                };
            if owed.is_empty() && !pushes_only {
                owed.push(Owed::Client(request));
            }
            owing
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend(owed);
            out.extend(frame);
        }
        write_frames(&mut server, &mut out)?;
    }
}

/// What the reply side knows of the client.
struct ClientState {
    protocol: Protocol,
    /// Channels and patterns, and shard channels, it is subscribed to (the counts of the
    /// last confirmations).
    subscribed: (i64, i64),
}

/// Server to client: to a RESP3 client every frame goes on as the bytes received; to a
/// RESP2 client each is re-encoded, shaped by the request it answers.
fn send_replies(mut server: &TcpStream, mut client: &TcpStream, owing: &Owing) -> io::Result<()> {
    let mut splitter = FrameSplitter::new();
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut out = VecDeque::new();
    let mut state = ClientState {
        protocol: Protocol::Resp2,
        subscribed: (0, 0),
    };
    loop {
        if read_into(&mut server, &mut buf, splitter.bytes_wanted())? == 0 {
            return Ok(());
        }
        while let Some(frame) = splitter.split(&mut buf).map_err(invalid)? {
            if frame.first() == Some(&b'>') {
                // A push owes nobody: pub/sub messages and confirmations, invalidations.
                let push = decode(&frame)?;
                count_subscriptions(&push, &mut state);
                out.push_back(match state.protocol {
                    Protocol::Resp3 => frame,
                    Protocol::Resp2 => resp2(&push, None),
                });
                continue;
            }
            let owed = owing
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop_front();
            let request = match owed {
                Some(Owed::Proxy) => continue,
                Some(Owed::Client(request)) => Some(request),
                // Nothing asked for this one (MONITOR's feed): passed on as it is.
                None => None,
            };
            out.push_back(reply_for_client(frame, request.as_ref(), &mut state)?);
        }
        write_frames(&mut client, &mut out)?;
    }
}

/// The bytes the client is given for `frame`, the server's reply to `request`.
fn reply_for_client(
    frame: Bytes,
    request: Option<&Request>,
    state: &mut ClientState,
) -> io::Result<Bytes> {
    let failed = matches!(frame.first(), Some(b'-' | b'!'));
    let name = request.map_or("", |r| r.name.as_str());
    if name == "HELLO" && !failed {
        let asked = request.and_then(|r| r.args.first());
        match asked.map(|v| &v[..]) {
            Some(b"2") => state.protocol = Protocol::Resp2,
            Some(b"3") => state.protocol = Protocol::Resp3,
            _ => {}
        }
        // The server answered for RESP3; the client is told of its own protocol.
        if state.protocol == Protocol::Resp2 {
            let mut hello = decode(&frame)?;
            if let Value::Map(fields) = &mut hello {
                for (k, v) in fields {
                    if k.as_bytes().is_some_and(|k| &k[..] == b"proto") {
                        *v = Value::Integer(2);
                    }
                }
            }
            return Ok(resp2(&hello, request));
        }
    }
    if name == "RESET" && !failed {
        state.protocol = Protocol::Resp2;
        state.subscribed = (0, 0);
    }
    if state.protocol == Protocol::Resp3 {
        return Ok(frame);
    }
    let mut reply = decode(&frame)?;
    if name == "PING" && state.subscribed != (0, 0) && !failed {
        // A subscribed RESP2 client is answered `["pong", message]` (RESP3 answers PING as
        // it does unsubscribed).
        let message = match reply {
            Value::BulkString(m) => m,
            _ => Bytes::new(),
        };
        reply = Value::Array(vec![
            Value::BulkString("pong".into()),
            Value::BulkString(message),
        ]);
    }
    Ok(resp2(&reply, request))
}

/// `reply` as a RESP2 client of `request` reads it from Redis.
fn resp2(reply: &Value, request: Option<&Request>) -> Bytes {
    let reply = match request {
        Some(r) => reshape(r, reply.clone()),
        None => reply.clone(),
    };
    let mut out = BytesMut::new();
    encode_value_as_resp2(&mut out, &reply, |at| match request {
        Some(r) => null_shape(r, at),
        None => Resp2Null::Bulk,
    });
    out.freeze()
}

/// The replies Redis nests differently in RESP2, given their RESP2 nesting.
fn reshape(request: &Request, reply: Value) -> Value {
    match request.name.as_str() {
        "EXEC" => match reply {
            Value::Array(replies) => Value::Array(
                replies
                    .into_iter()
                    .enumerate()
                    .map(|(i, r)| match request.queued.get(i) {
                        Some(queued) => reshape(queued, r),
                        None => r,
                    })
                    .collect(),
            ),
            other => other,
        },
        // A map of streams in RESP3, an array of [stream, entries] pairs in RESP2.
        "XREAD" | "XREADGROUP" => match reply {
            Value::Map(streams) => Value::Array(
                streams
                    .into_iter()
                    .map(|(name, entries)| Value::Array(vec![name, entries]))
                    .collect(),
            ),
            other => other,
        },
        // [member, score] pairs in RESP3, one flat array in RESP2.
        "ZRANGE" | "ZRANGEBYSCORE" | "ZREVRANGE" | "ZREVRANGEBYSCORE" | "ZRANDMEMBER"
        | "ZINTER" | "ZUNION" | "ZDIFF"
            if request.has_arg("WITHSCORES") =>
        {
            flatten_pairs(reply)
        }
        "HRANDFIELD" if request.has_arg("WITHVALUES") => flatten_pairs(reply),
        "ZPOPMIN" | "ZPOPMAX" if request.args.len() > 1 => flatten_pairs(reply),
        _ => reply,
    }
}

fn flatten_pairs(reply: Value) -> Value {
    match reply {
        Value::Array(pairs)
            if pairs
                .iter()
                .all(|p| matches!(p, Value::Array(kv) if kv.len() == 2)) =>
        {
            Value::Array(
                pairs
                    .into_iter()
                    .flat_map(|p| match p {
                        Value::Array(kv) => kv,
                        other => vec![other],
                    })
                    .collect(),
            )
        }
        other => other,
    }
}

/// Which null Redis 7 sends a RESP2 client at position `at` of its reply to `request`
/// (see `Resp2Null`'s docs): `*-1` where a list of things is missing, `$-1` elsewhere.
fn null_shape(request: &Request, at: &[usize]) -> Resp2Null {
    match (request.name.as_str(), at) {
        ("EXEC", []) => Resp2Null::Array,
        ("EXEC", [i, rest @ ..]) => request
            .queued
            .get(*i)
            .map_or(Resp2Null::Bulk, |q| null_shape(q, rest)),
        (
            "BLPOP" | "BRPOP" | "BRPOPLPUSH" | "BLMOVE" | "BLMPOP" | "BZPOPMIN" | "BZPOPMAX"
            | "BZMPOP" | "LMPOP" | "ZMPOP" | "XREAD" | "XREADGROUP",
            [],
        ) => Resp2Null::Array,
        ("LPOP" | "RPOP", []) if request.args.len() > 1 => Resp2Null::Array,
        ("GEOPOS", [_]) => Resp2Null::Array,
        // The consumers of an empty group's summary.
        ("XPENDING", [3]) => Resp2Null::Array,
        // The fields of a pending entry deleted from the stream.
        ("XREAD" | "XREADGROUP", [_, 1, _, 1]) => Resp2Null::Array,
        _ => Resp2Null::Bulk,
    }
}

/// Keeps the counts of the client's subscriptions from the server's confirmations.
fn count_subscriptions(push: &Value, state: &mut ClientState) {
    let Value::Push(items) = push else { return };
    let (Some(kind), Some(Value::Integer(n))) =
        (items.first().and_then(Value::as_bytes), items.get(2))
    else {
        return;
    };
    match &kind[..] {
        b"subscribe" | b"unsubscribe" | b"psubscribe" | b"punsubscribe" => state.subscribed.0 = *n,
        b"ssubscribe" | b"sunsubscribe" => state.subscribed.1 = *n,
        _ => {}
    }
}

/// A client's request: an array of bulk strings.
fn parse_request(frame: &[u8]) -> io::Result<Request> {
    let words = match decode(frame)? {
        Value::Array(words) if !words.is_empty() => words,
        other => return Err(io::Error::other(format!("not a command: {other:?}"))),
    };
    let mut words = words.into_iter().map(|w| match w {
        Value::BulkString(b) => Ok(b),
        other => Err(io::Error::other(format!("not a command word: {other:?}"))),
    });
    let name = words.next().expect("not empty")?;
    Ok(Request {
        name: String::from_utf8_lossy(&name).to_ascii_uppercase(),
        args: words.collect::<io::Result<_>>()?,
        queued: Vec::new(),
    })
}

/// The value of one whole frame.
fn decode(frame: &[u8]) -> io::Result<Value> {
    let mut buf = BytesMut::from(frame);
    match Decoder::new().decode(&mut buf).map_err(invalid)? {
        Some(v) => Ok(v),
        None => Err(io::Error::other("a split frame is complete")),
    }
}

fn invalid(e: ProtocolError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Reads what has arrived into `buf`, with room for a payload still coming when the
/// splitter knows its length (so a large bulk string is read, not regrown, in place).
fn read_into(
    stream: &mut impl Read,
    buf: &mut BytesMut,
    wanted: Option<usize>,
) -> io::Result<usize> {
    let len = buf.len();
    let room = wanted
        .map_or(0, |w| w.saturating_sub(len))
        .clamp(16 * 1024, 1 << 20);
    buf.resize(len + room, 0);
    let read = loop {
        match stream.read(&mut buf[len..]) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => break other,
        }
    };
    buf.truncate(len + *read.as_ref().unwrap_or(&0));
    read
}

/// Writes `frames` as they are, several per system call, without joining them.
fn write_frames(stream: &mut impl Write, frames: &mut VecDeque<Bytes>) -> io::Result<()> {
    while !frames.is_empty() {
        let slices: Vec<IoSlice<'_>> = frames.iter().take(64).map(|f| IoSlice::new(f)).collect();
        let mut written = match stream.write_vectored(&slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        while written > 0 {
            let Some(front) = frames.front_mut() else {
                break;
            };
            if written >= front.len() {
                written -= front.len();
                frames.pop_front();
            } else {
                front.advance(written);
                written = 0;
            }
        }
    }
    stream.flush()
}
