//! A primary with a replica, watched by sentinels: the client asks the sentinels where the
//! primary is, writes there, reads from a replica, and follows a failover by itself.
//!
//! `REDIS_SENTINEL_URLS=redis://127.0.0.1:26379,redis://127.0.0.1:26380 REDIS_SERVICE=mymaster cargo run --example sentinel`

use redis_client::prelude::*;
use redis_client::Sentinel;
use std::time::Duration;

fn main() -> Result<(), redis_client::Error> {
    let sentinels: Vec<String> = std::env::var("REDIS_SENTINEL_URLS")
        .unwrap_or_else(|_| "redis://127.0.0.1:26379".into())
        .split(',')
        .map(str::to_owned)
        .collect();
    let service = std::env::var("REDIS_SERVICE").unwrap_or_else(|_| "mymaster".into());
    let sentinel = Sentinel::builder(&sentinels, &service)?.build();
    println!("primary of {service}: {}", sentinel.discover_primary()?);

    // An ordinary client: clone it to share its pool; after a failover its next
    // connections go to the new primary.
    let primary = sentinel.primary().text();
    primary.set("greeting", "hello")?;
    // WAIT until the replica has the write, so the read below sees it.
    let acked = primary.wait(1, Duration::from_secs(1))?;
    println!("replicas that have the write: {acked}");

    // Reads from a replica: may lag behind the primary.
    let replicas = sentinel.replicas().text();
    let mut value = replicas.get("greeting")?;
    for _ in 0..50 {
        if value.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        value = replicas.get("greeting")?;
    }
    println!("read from a replica -> {value:?}");
    Ok(())
}
