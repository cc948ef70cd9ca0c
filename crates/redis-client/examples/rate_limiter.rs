//! A fixed-window rate limiter in Lua: at most 5 requests per user per 10 seconds,
//! counted and checked atomically on the server.
//!
//! `REDIS_URL=redis://localhost:6379/0 cargo run --example rate_limiter`

use redis_client::prelude::*;
use redis_client::Redis;

const LIMITER: &str = r"
local count = redis.call('INCR', KEYS[1])
if count == 1 then
    redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return count <= tonumber(ARGV[2])
";

fn main() -> Result<(), redis_client::Error> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://localhost:6379/0".into());
    let r = Redis::open(&url)?;
    r.del("rate:alice")?;
    let allow = r.register_script(LIMITER);

    for request in 1..=7 {
        // Lua's true arrives as 1 and false as nil: a bool either way.
        if allow.key("rate:alice").arg(10).arg(5).invoke()? {
            println!("request {request}: allowed");
        } else {
            println!("request {request}: rejected");
        }
    }
    Ok(())
}
