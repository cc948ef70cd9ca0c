//! One counter incremented from eight threads sharing one client: INCR is atomic, so no
//! increment is lost.
//!
//! `REDIS_URL=redis://localhost:6379/0 cargo run --example counter_threads`

use redis_client::prelude::*;
use redis_client::Redis;
use std::thread;

fn main() -> Result<(), redis_client::Error> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://localhost:6379/0".into());
    let r = Redis::open(&url)?;
    r.del("page:hits")?;

    // A client is shared between threads; its connection pool hands each one a connection.
    thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..500 {
                    r.incr("page:hits").expect("INCR failed");
                }
            });
        }
    });

    // The stored value is a string; reply_as reads it as a number.
    let hits = r.reply_as::<i64>().get("page:hits")?;
    println!("page:hits = {hits}");
    Ok(())
}
