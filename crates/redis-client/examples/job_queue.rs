//! A job queue in a list: a producer LPUSHes jobs, three workers BRPOP them until they
//! receive a stop job.
//!
//! `REDIS_URL=redis://localhost:6379/0 cargo run --example job_queue`

use redis_client::prelude::*;
use redis_client::Redis;
use std::thread;
use std::time::Duration;

fn main() -> Result<(), redis_client::Error> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://localhost:6379/0".into());
    let r = Redis::open(&url)?.text();
    r.del(["jobs", "jobs:done"])?;

    thread::scope(|s| {
        for worker in 1..=3 {
            let r = &r;
            s.spawn(move || loop {
                // Waits up to 5 seconds for a job; None means the queue stayed empty.
                match r
                    .brpop("jobs", Duration::from_secs(5))
                    .expect("BRPOP failed")
                {
                    Some((_queue, job)) if job == "stop" => break,
                    Some((_queue, job)) => {
                        println!("worker {worker} did {job}");
                        r.incr("jobs:done").expect("INCR failed");
                    }
                    None => break,
                }
            });
        }
        for n in 1..=12 {
            r.lpush("jobs", format!("resize image {n}"))
                .expect("LPUSH failed");
        }
        // One stop per worker, queued after every job.
        r.lpush("jobs", ["stop", "stop", "stop"])
            .expect("LPUSH failed");
    });

    println!("jobs done: {}", r.reply_as::<i64>().get("jobs:done")?);
    Ok(())
}
