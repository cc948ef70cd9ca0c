//! A read-through cache with a time to live: the first read misses and stores the value
//! for 60 seconds, the next one hits.
//!
//! `REDIS_URL=redis://localhost:6379/0 cargo run --example cache_ttl`

use redis_client::prelude::*;
use redis_client::Redis;
use std::time::Duration;

fn main() -> Result<(), redis_client::Error> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://localhost:6379/0".into());
    // Text mode: replies come back as String, like redis-py's decode_responses=True.
    let r = Redis::open(&url)?.text();
    r.del("cache:user:42")?;

    for _ in 0..2 {
        match r.get("cache:user:42")? {
            Some(profile) => println!("cache hit: {profile}"),
            None => {
                // Stands in for a slow database query.
                let profile = "name=Ada;lang=en".to_owned();
                r.setex("cache:user:42", Duration::from_secs(60), &profile)?;
                if let Some(left) = r.ttl("cache:user:42")?.expires_in() {
                    println!("cache miss: stored for {} seconds", left.as_secs());
                }
            }
        }
    }
    Ok(())
}
