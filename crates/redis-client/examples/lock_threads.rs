//! A lock shared by four threads: each reads a balance, computes and writes it back while
//! holding the lock, so no update is lost even though GET and SET are separate commands.
//!
//! `REDIS_URL=redis://localhost:6379/0 cargo run --example lock_threads`

use redis_client::prelude::*;
use redis_client::Redis;
use std::thread;
use std::time::Duration;

fn main() -> Result<(), redis_client::Error> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://localhost:6379/0".into());
    let r = Redis::open(&url)?;
    r.set("account:balance", 0)?;

    thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| -> Result<(), redis_client::Error> {
                    for _ in 0..25 {
                        // The lease frees the lock should this thread die while holding it.
                        let guard = r
                            .lock("lock:account")
                            .lease(Duration::from_secs(5))
                            .acquire()?;
                        let balance = r.reply_as::<i64>().get("account:balance")?;
                        r.set("account:balance", balance + 10)?;
                        guard.release()?;
                    }
                    Ok(())
                })
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|w| w.join().expect("worker panicked"))
    })?;

    println!("balance = {}", r.reply_as::<i64>().get("account:balance")?);
    Ok(())
}
