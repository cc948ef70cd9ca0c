//! A chat on pub/sub: one listener subscribed to the pattern `chat:*` hears what is
//! published on every room.
//!
//! `REDIS_URL=redis://localhost:6379/0 cargo run --example pubsub_chat`

use redis_client::prelude::*;
use redis_client::Redis;
use std::time::Duration;

fn main() -> Result<(), redis_client::Error> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://localhost:6379/0".into());
    let r = Redis::open(&url)?;

    let mut p = r.pubsub();
    // Only messages, not the subscription confirmations.
    p.ignore_subscribe_messages(true);
    p.psubscribe("chat:*")?;

    // PUBLISH answers how many subscribers received the message: wait for ours.
    while r.publish("chat:lobby", "ada: hello everyone")? == 0 {
        std::thread::sleep(Duration::from_millis(10));
    }
    r.publish("chat:rust", "grace: anyone tried the text mode?")?;
    r.publish("chat:lobby", "linus: bye")?;

    for message in p.listen().take(3) {
        let message = message?;
        println!("[{}] {}", message.channel_str()?, message.payload_str()?);
    }
    Ok(())
}
