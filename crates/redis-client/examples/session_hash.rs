//! A web session in a hash: fields set at login, one field updated, the whole session
//! read back, and an idle timeout of 30 minutes.
//!
//! `REDIS_URL=redis://localhost:6379/0 cargo run --example session_hash`

use redis_client::prelude::*;
use redis_client::Redis;
use std::time::Duration;

fn main() -> Result<(), redis_client::Error> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://localhost:6379/0".into());
    let r = Redis::open(&url)?.text();
    let key = "session:8f2c";
    r.del(key)?;

    r.hset_multiple(
        key,
        [("user", "ada"), ("theme", "dark"), ("cart_items", "0")],
    )?;
    r.expire(key, Duration::from_secs(30 * 60))?;
    r.hincrby(key, "cart_items", 2)?;

    let session = r.hgetall(key)?; // HashMap<String, String>
    println!(
        "user {} has {} items in the cart",
        session["user"], session["cart_items"]
    );
    if let Some(theme) = r.hget(key, "theme")? {
        println!("theme: {theme}");
    }
    if let Some(left) = r.ttl(key)?.expires_in() {
        println!("expires in {} seconds", left.as_secs());
    }
    Ok(())
}
