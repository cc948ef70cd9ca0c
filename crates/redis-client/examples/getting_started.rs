//! The reference client's "Getting Started", in Rust.
//!
//! Run it against a throwaway server with `cargo xtask demo`, or against your own with
//! `REDIS_URL=redis://localhost:6379/0 cargo run --example getting_started`.

use redis_client::prelude::*;
use redis_client::Redis;

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
    let shown = value.as_deref().map(String::from_utf8_lossy);
    println!("GET foo -> {shown:?}");
    Ok(())
}
