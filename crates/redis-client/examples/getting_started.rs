//! The reference client's "Getting Started" and "More Detail" examples, in Rust.
//!
//! Run it against a throwaway server with `cargo xtask demo`, or against your own with
//! `REDIS_URL=redis://localhost:6379/0 cargo run --example getting_started` (add
//! `REDIS_SOCKET=/path/to/redis.sock` for the Unix socket step).

use redis_client::prelude::*;
use redis_client::{ConnectionInfo, ConnectionPool, Error, Redis, Value};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://localhost:6379/0".to_owned());
    println!("connecting to {url}");

    // r = redis.StrictRedis(host='localhost', port=6379, db=0)
    let r = Redis::open(&url)?;

    // r.set('foo', 'bar')
    let stored = r.set("foo", "bar")?;
    println!("SET foo bar -> {stored}");

    // r.get('foo')
    let value = r.get("foo")?;
    println!("GET foo -> {:?}", text(value.as_deref()));

    connection_pool(&url)?;
    unix_socket()?;
    pipelines(&r)?;
    watch_loop(&r)?;
    transaction_helper(&r)?;
    lua_scripting(&r)?;
    publish_subscribe(&r)?;
    Ok(())
}

/// pool = redis.ConnectionPool(host='localhost', port=6379, db=0)
/// r = redis.Redis(connection_pool=pool)
fn connection_pool(url: &str) -> Result<(), Error> {
    let info: ConnectionInfo = url.parse()?;
    let pool = ConnectionPool::new(info);
    let a = Redis::from_pool(pool.clone());
    let b = Redis::from_pool(pool);
    a.set("pooled", "shared")?;
    let seen = b.get("pooled")?;
    println!(
        "two clients on one pool: SET by one, GET by the other -> {:?}",
        text(seen.as_deref())
    );
    Ok(())
}

/// r = redis.Redis(unix_socket_path='/tmp/redis.sock')
fn unix_socket() -> Result<(), Error> {
    let Some(path) = std::env::var_os("REDIS_SOCKET") else {
        println!("unix socket: skipped (set REDIS_SOCKET to the server's socket path)");
        return Ok(());
    };
    let r = Redis::from_info(ConnectionInfo::unix(path.clone()));
    let pong = r.ping()?;
    println!(
        "unix socket {}: PING -> {:?}",
        path.to_string_lossy(),
        text(Some(&pong))
    );
    Ok(())
}

fn pipelines(r: &Redis) -> Result<(), Error> {
    // r.set('bing', 'baz')
    r.set("bing", "baz")?;
    // pipe = r.pipeline()
    let mut pipe = r.pipeline();
    // pipe.set('foo', 'bar'); pipe.get('bing')
    pipe.set("foo", "bar");
    pipe.get("bing");
    // pipe.execute()
    let results = pipe.execute()?;
    println!("pipeline SET foo bar, GET bing -> {}", show(&results));

    // pipe.set('foo', 'bar').sadd('faz', 'baz').incr('auto_number').execute()
    r.set("auto_number", 5)?;
    r.del("faz")?;
    let (set, added, number): (bool, bool, i64) = pipe
        .set("foo", "bar")
        .sadd("faz", "baz")
        .incr("auto_number")
        .query()?;
    println!("chained SET, SADD, INCR -> [{set}, {added}, {number}]");

    // pipe = r.pipeline(transaction=False)
    let mut pipe = r.pipeline().transaction(false);
    let results = pipe.incr("auto_number").incr("auto_number").execute()?;
    println!(
        "pipeline without MULTI/EXEC, INCR twice -> {}",
        show(&results)
    );
    Ok(())
}

/// The client-side INCR with WATCH, retried on a watch error.
fn watch_loop(r: &Redis) -> Result<(), Error> {
    r.set("OUR-SEQUENCE-KEY", 10)?;
    let mut attempts = 0;
    // with r.pipeline() as pipe: the pipeline resets when it goes out of scope.
    let mut pipe = r.pipeline();
    let results = loop {
        attempts += 1;
        // pipe.watch('OUR-SEQUENCE-KEY'): immediate mode from here on.
        let mut watched = pipe.watch("OUR-SEQUENCE-KEY")?;
        let current = number(watched.get("OUR-SEQUENCE-KEY")?.as_deref());
        if attempts == 1 {
            // Someone else (here the client itself, on another pooled connection) changes
            // the key after we read it, so the first EXEC is refused, as the reference's
            // loop expects may happen.
            r.incr("OUR-SEQUENCE-KEY")?;
        }
        // pipe.multi(): back to buffering.
        let tx = watched.multi();
        tx.set("OUR-SEQUENCE-KEY", current + 1);
        match tx.execute() {
            Ok(results) => break results,
            Err(Error::Watch) => {
                println!("WATCH loop: the key changed under us, retrying");
                continue;
            }
            Err(e) => return Err(e),
        }
    };
    let now = number(r.get("OUR-SEQUENCE-KEY")?.as_deref());
    println!(
        "WATCH loop: {} after {attempts} attempts -> OUR-SEQUENCE-KEY = {now}",
        show(&results)
    );
    Ok(())
}

/// r.transaction(client_side_incr, 'OUR-SEQUENCE-KEY')
fn transaction_helper(r: &Redis) -> Result<(), Error> {
    let results = r.transaction("OUR-SEQUENCE-KEY", |mut pipe| {
        let current = number(pipe.get("OUR-SEQUENCE-KEY")?.as_deref());
        pipe.multi().set("OUR-SEQUENCE-KEY", current + 1);
        Ok(())
    })?;
    let now = number(r.get("OUR-SEQUENCE-KEY")?.as_deref());
    println!(
        "transaction(client_side_incr) -> {}, OUR-SEQUENCE-KEY = {now}",
        show(&results)
    );
    Ok(())
}

/// multiply = r.register_script(lua); multiply(keys=['foo'], args=[5]), also on another
/// client and inside a pipeline.
fn lua_scripting(r: &Redis) -> Result<(), Error> {
    let multiply = r.register_script(
        "local value = redis.call('GET', KEYS[1])\n\
         value = tonumber(value)\n\
         return value * ARGV[1]",
    );
    r.set("foo", 2)?;
    let ten: i64 = multiply.key("foo").arg(5).invoke()?;
    println!("multiply(keys=['foo'], args=[5]) with foo=2 -> {ten}");

    // Any other client works too (the reference used a second server here).
    let r2 = Redis::from_pool(r.pool().clone());
    r2.set("foo", 3)?;
    let fifteen: i64 = multiply.key("foo").arg(5).invoke_on(&r2)?;
    println!("multiply(..., client=r2) with foo=3 -> {fifteen}");

    let mut pipe = r.pipeline();
    pipe.set("foo", 5).invoke_script(multiply.key("foo").arg(5));
    println!("pipeline SET foo 5, multiply -> {}", show(&pipe.execute()?));
    Ok(())
}

/// p = r.pubsub(); p.subscribe('news'); r.publish('news', ...); p.listen()
fn publish_subscribe(r: &Redis) -> Result<(), Error> {
    let mut p = r.pubsub();
    p.ignore_subscribe_messages(true);
    p.subscribe("news")?;
    // Publish until the subscription is registered: PUBLISH reports its receivers.
    while r.execute_command(("PUBLISH", "news", "hello subscribers"))? == Value::Integer(0) {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    if let Some(message) = p.listen().next() {
        let message = message?;
        println!(
            "pubsub: {:?} on {:?}: {:?}",
            message.kind,
            String::from_utf8_lossy(&message.channel),
            String::from_utf8_lossy(&message.payload)
        );
    }
    Ok(())
}

fn text(b: Option<&[u8]>) -> Option<String> {
    b.map(|b| String::from_utf8_lossy(b).into_owned())
}

fn number(b: Option<&[u8]>) -> i64 {
    b.and_then(|b| std::str::from_utf8(b).ok()?.parse().ok())
        .unwrap_or(0)
}

/// Results the way the reference prints them: `[True, 'baz']` becomes `[true, "baz"]`.
fn show(values: &[Value]) -> String {
    let items: Vec<String> = values
        .iter()
        .map(|v| match v {
            Value::Boolean(b) => b.to_string(),
            Value::Integer(n) => n.to_string(),
            Value::BulkString(b) | Value::SimpleString(b) => {
                format!("{:?}", String::from_utf8_lossy(b))
            }
            Value::Nil => "nil".to_owned(),
            other => format!("{other:?}"),
        })
        .collect();
    format!("[{}]", items.join(", "))
}
