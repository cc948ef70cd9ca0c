//! The reference client's "Getting Started" and "More Detail" examples, in Rust.
//!
//! Run it against a throwaway server with `cargo xtask demo`, or against your own with
//! `REDIS_URL=redis://localhost:6379/0 cargo run --example getting_started` (add
//! `REDIS_SOCKET=/path/to/redis.sock` for the Unix socket step).

use redis_client::prelude::*;
use redis_client::{ConnectionInfo, ConnectionPool, Error, Redis};
use std::time::Duration;

fn main() -> Result<(), Error> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://localhost:6379/0".into());
    println!("connecting to {url}");

    // r = redis.StrictRedis(host='localhost', port=6379, db=0)
    let r = Redis::open(&url)?;
    // The same client in text mode: replies as String (redis-py's decode_responses=True).
    let t = r.text();

    // r.set('foo', 'bar'); r.get('foo')
    println!("SET foo bar -> {}", r.set("foo", "bar")?);
    println!("GET foo -> {:?}", t.get("foo")?);

    // pool = redis.ConnectionPool(host='localhost', port=6379, db=0)
    // r = redis.Redis(connection_pool=pool)
    let pool = ConnectionPool::new(url.parse::<ConnectionInfo>()?);
    let a = Redis::from_pool(pool.clone());
    let b = Redis::from_pool(pool).text();
    a.set("pooled", "shared")?;
    println!(
        "two clients on one pool: SET by one, GET by the other -> {:?}",
        b.get("pooled")?
    );

    // r = redis.Redis(unix_socket_path='/tmp/redis.sock')
    match std::env::var_os("REDIS_SOCKET") {
        Some(path) => {
            let unix = Redis::from_info(ConnectionInfo::unix(path)).text();
            println!("unix socket: PING -> {:?}", unix.ping()?);
        }
        None => println!("unix socket: skipped (set REDIS_SOCKET to the server's socket path)"),
    }

    // r.set('bing', 'baz'); pipe = r.pipeline(); pipe.set('foo', 'bar'); pipe.get('bing')
    // pipe.execute()
    r.set("bing", "baz")?;
    let (stored, bing) = t.typed_pipeline().set("foo", "bar").get("bing").execute()?;
    println!("pipeline SET foo bar, GET bing -> [{stored}, {bing:?}]");

    // pipe.set('foo', 'bar').sadd('faz', 'baz').incr('auto_number').execute()
    // SADD answers how many members it added: redis-py 2.7.6 gives 1 too (its page
    // shows True, which equals 1 in Python).
    r.set("auto_number", 5)?;
    r.del("faz")?;
    let (set, added, number) = r
        .typed_pipeline()
        .set("foo", "bar")
        .sadd("faz", "baz")
        .incr("auto_number")
        .execute()?;
    println!("chained SET, SADD, INCR -> [{set}, {added}, {number}]");

    // pipe = r.pipeline(transaction=False): buffered, without MULTI/EXEC.
    let (seven, eight) = r
        .typed_pipeline()
        .transaction(false)
        .incr("auto_number")
        .incr("auto_number")
        .execute()?;
    println!("pipeline without MULTI/EXEC, INCR twice -> [{seven}, {eight}]");

    // The client-side INCR with WATCH, retried on a WatchError.
    r.set("OUR-SEQUENCE-KEY", 10)?;
    let mut attempts = 0;
    loop {
        attempts += 1;
        // pipe.watch('OUR-SEQUENCE-KEY'): immediate mode from here on; the pipeline (and
        // its WATCH) is reset when it goes out of scope, as `with r.pipeline() as pipe:`.
        let mut watched = r.pipeline().watch("OUR-SEQUENCE-KEY")?;
        // current_value = pipe.get('OUR-SEQUENCE-KEY'), read as a number.
        let current = watched.reply_as::<i64>().get("OUR-SEQUENCE-KEY")?;
        if attempts == 1 {
            // Another client changes the key after we read it, so this EXEC is refused,
            // as the reference's loop expects may happen.
            a.incr("OUR-SEQUENCE-KEY")?;
        }
        // pipe.multi(); pipe.set('OUR-SEQUENCE-KEY', next_value); pipe.execute()
        let mut tx = watched.multi();
        tx.set("OUR-SEQUENCE-KEY", current + 1);
        match tx.execute() {
            Ok(_) => break,
            Err(Error::Watch) => println!("WATCH loop: the key changed under us, retrying"),
            Err(e) => return Err(e),
        }
    }
    let now = r.reply_as::<i64>().get("OUR-SEQUENCE-KEY")?;
    println!("WATCH loop: done after {attempts} attempts -> OUR-SEQUENCE-KEY = {now}");

    // r.transaction(client_side_incr, 'OUR-SEQUENCE-KEY')
    r.transaction("OUR-SEQUENCE-KEY", |mut pipe| {
        let current = pipe.reply_as::<i64>().get("OUR-SEQUENCE-KEY")?;
        let mut tx = pipe.multi();
        tx.set("OUR-SEQUENCE-KEY", current + 1);
        Ok(tx)
    })?;
    let now = r.reply_as::<i64>().get("OUR-SEQUENCE-KEY")?;
    println!("transaction(client_side_incr) -> OUR-SEQUENCE-KEY = {now}");

    // multiply = r.register_script(lua); multiply(keys=['foo'], args=[5])
    let multiply = r.register_script(
        "local value = redis.call('GET', KEYS[1])\n\
         value = tonumber(value)\n\
         return value * ARGV[1]",
    );
    r.set("foo", 2)?;
    let ten = multiply.key("foo").arg(5).invoke::<i64>()?;
    println!("multiply(keys=['foo'], args=[5]) with foo=2 -> {ten}");
    // multiply(keys=['foo'], args=[5], client=r2): any other client works too.
    b.set("foo", 3)?;
    let fifteen = multiply.key("foo").arg(5).invoke_on::<i64>(&b)?;
    println!("multiply(..., client=r2) with foo=3 -> {fifteen}");
    // pipe.set('foo', 5); multiply(keys=['foo'], args=[5], client=pipe); pipe.execute()
    let (stored, product) = r
        .typed_pipeline()
        .set("foo", 5)
        .invoke_script::<i64>(multiply.key("foo").arg(5))
        .execute()?;
    println!("pipeline SET foo 5, multiply -> [{stored}, {product}]");

    // p = r.pubsub(); p.subscribe('news'); r.publish('news', ...); p.listen()
    let mut p = r.pubsub();
    p.ignore_subscribe_messages(true);
    p.subscribe("news")?;
    // PUBLISH answers how many subscribers received the message: wait for ours.
    while r.publish("news", "hello subscribers")? == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    if let Some(message) = p.listen().next() {
        let message = message?;
        println!(
            "pubsub: {:?} on {}: {}",
            message.kind,
            message.channel_str()?,
            message.payload_str()?
        );
    }
    Ok(())
}
