//! Walking 10,000 keys with SCAN, which never blocks the server the way KEYS does: each
//! call returns one page and a cursor for the next.
//!
//! `REDIS_URL=redis://localhost:6379/0 cargo run --example scan_keys`

use redis_client::prelude::*;
use redis_client::{Redis, ScanOptions};

fn main() -> Result<(), redis_client::Error> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://localhost:6379/0".into());
    let r = Redis::open(&url)?.text();

    let items: Vec<(String, usize)> = (0..10_000).map(|i| (format!("product:{i}"), i)).collect();
    r.mset(&items)?;

    let mut found = 0;
    let mut highest = 0;
    for key in r.scan_iter(ScanOptions::new().pattern("product:*").count(1000)) {
        let key = key?; // String
        found += 1;
        if let Some(n) = key.strip_prefix("product:").and_then(|n| n.parse().ok()) {
            highest = highest.max(n);
        }
    }
    println!("found {found} keys, highest id {highest}");
    Ok(())
}
