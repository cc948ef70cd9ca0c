//! Loading 100,000 keys with pipelines: commands go out in batches of 10,000, one write
//! and one round trip per batch instead of one per key.
//!
//! `REDIS_URL=redis://localhost:6379/0 cargo run --example bulk_load`

use redis_client::prelude::*;
use redis_client::Redis;
use std::time::Instant;

fn main() -> Result<(), redis_client::Error> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://localhost:6379/0".into());
    let r = Redis::open(&url)?;
    let started = Instant::now();

    // No MULTI/EXEC: a bulk load needs batching, not atomicity.
    let mut pipe = r.pipeline();
    pipe.transaction(false);
    for i in 0..100_000 {
        pipe.set(format!("user:{i}:score"), i);
        if pipe.len() == 10_000 {
            pipe.execute()?;
        }
    }
    pipe.execute()?;

    let last = r.reply_as::<i64>().get("user:99999:score")?;
    println!(
        "loaded 100000 keys in {} ms; user:99999:score = {last}",
        started.elapsed().as_millis()
    );
    Ok(())
}
