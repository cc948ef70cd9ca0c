//! The reference client's "Getting Started" and "More Detail" examples on the async
//! client: the same steps as `getting_started.rs`, each an `.await`.
//!
//! Run it with `REDIS_URL=redis://localhost:6379/0 cargo run --features tokio --example
//! async_getting_started` (add `REDIS_SOCKET=/path/to/redis.sock` for the Unix socket step).

use redis_client::aio::Redis;
use redis_client::prelude::*;
use redis_client::{ConnectionInfo, Error, MessageKind};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://localhost:6379/0".into());
    println!("connecting to {url}");

    // r = redis.StrictRedis(host='localhost', port=6379, db=0): one client for every task.
    let r = Redis::open(&url)?;
    let t = r.text();

    // r.set('foo', 'bar'); r.get('foo')
    println!("SET foo bar -> {}", r.set("foo", "bar").await?);
    println!("GET foo -> {:?}", t.get("foo").await?);

    // Clones share one multiplexed connection: concurrent commands go out together.
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let r = r.clone();
            tokio::spawn(async move { r.incr(format!("counter:{}", i % 2)).await })
        })
        .collect();
    for task in tasks {
        task.await.expect("the task ran")?;
    }
    let even = r.reply_as::<i64>().get("counter:0").await?;
    println!("ten tasks on one client: counter:0 = {even}");

    // r = redis.Redis(unix_socket_path='/tmp/redis.sock')
    match std::env::var_os("REDIS_SOCKET") {
        Some(path) => {
            let unix = Redis::from_info(ConnectionInfo::unix(path)).text();
            println!("unix socket: PING -> {:?}", unix.ping().await?);
        }
        None => println!("unix socket: skipped (set REDIS_SOCKET to the server's socket path)"),
    }

    // pipe = r.pipeline(); pipe.set('foo', 'bar'); pipe.get('bing'); pipe.execute()
    r.set("bing", "baz").await?;
    let mut pipe = t.pipeline();
    pipe.set("foo", "bar").get("bing");
    let (stored, bing): (bool, Option<String>) = pipe.query().await?;
    println!("pipeline SET foo bar, GET bing -> [{stored}, {bing:?}]");

    // pipe.set('foo', 'bar').sadd('faz', 'baz').incr('auto_number').execute()
    r.set("auto_number", 5).await?;
    r.del("faz").await?;
    let mut pipe = r.pipeline();
    pipe.set("foo", "bar")
        .sadd("faz", "baz")
        .incr("auto_number");
    let (set, added, number): (bool, i64, i64) = pipe.query().await?;
    println!("chained SET, SADD, INCR -> [{set}, {added}, {number}]");

    // pipe = r.pipeline(transaction=False)
    let mut pipe = r.pipeline();
    pipe.transaction(false);
    pipe.incr("auto_number").incr("auto_number");
    let (seven, eight): (i64, i64) = pipe.query().await?;
    println!("pipeline without MULTI/EXEC, INCR twice -> [{seven}, {eight}]");

    // r.transaction(client_side_incr, 'OUR-SEQUENCE-KEY'): WATCH, read, MULTI, EXEC,
    // retried when the key changes in between.
    r.set("OUR-SEQUENCE-KEY", 10).await?;
    r.transaction("OUR-SEQUENCE-KEY", |mut w| async move {
        let current = w.reply_as::<i64>().get("OUR-SEQUENCE-KEY").await?;
        let mut pipe = w.multi();
        pipe.set("OUR-SEQUENCE-KEY", current + 1);
        Ok(pipe)
    })
    .await?;
    let now = r.reply_as::<i64>().get("OUR-SEQUENCE-KEY").await?;
    println!("transaction(client_side_incr) -> OUR-SEQUENCE-KEY = {now}");

    // multiply = r.register_script(lua); multiply(keys=['foo'], args=[5])
    let multiply = r.register_script(
        "local value = redis.call('GET', KEYS[1])\n\
         value = tonumber(value)\n\
         return value * ARGV[1]",
    );
    r.set("foo", 2).await?;
    let ten: i64 = r.invoke_script(multiply.key("foo").arg(5)).await?;
    println!("multiply(keys=['foo'], args=[5]) with foo=2 -> {ten}");

    // p = r.pubsub(); p.subscribe('news'); r.publish('news', ...); p.get_message()
    let mut p = r.pubsub();
    p.ignore_subscribe_messages(true);
    p.subscribe("news").await?;
    // PUBLISH answers how many subscribers received the message: wait for ours.
    while r.publish("news", "hello subscribers").await? == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    if let Some(message) = p.get_message(None).await? {
        if message.kind == MessageKind::Message {
            println!(
                "pubsub: {:?} on {}: {}",
                message.kind,
                message.channel_str()?,
                message.payload_str()?
            );
        }
    }
    Ok(())
}
