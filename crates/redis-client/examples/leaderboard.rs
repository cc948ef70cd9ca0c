//! A game leaderboard in a sorted set: scores added and increased, the top three read
//! with their scores, and one player's rank.
//!
//! `REDIS_URL=redis://localhost:6379/0 cargo run --example leaderboard`

use redis_client::prelude::*;
use redis_client::Redis;

fn main() -> Result<(), redis_client::Error> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://localhost:6379/0".into());
    let r = Redis::open(&url)?.text();
    r.del("leaderboard")?;

    // Points are whole numbers: scores take any number, integers included.
    r.zadd(
        "leaderboard",
        [(120, "ada"), (95, "grace"), (80, "linus"), (60, "ken")],
    )?;
    // Ken has a good round.
    let ken = r.zincrby("leaderboard", 70, "ken")?;
    println!("ken now has {ken}");

    for (place, (player, score)) in r
        .zrevrange_withscores("leaderboard", 0, 2)?
        .iter()
        .enumerate()
    {
        println!("{}. {player} {score}", place + 1);
    }
    if let Some(rank) = r.zrevrank("leaderboard", "linus")? {
        println!("linus is number {}", rank + 1);
    }
    Ok(())
}
