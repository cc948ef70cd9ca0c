//! The strict client as a shared handle: thread safety, pools shared between clients,
//! and blocking commands under a read timeout.

use redis_client::compat::{LegacyPipeline, LegacyRedis};
use redis_client::prelude::*;
use redis_client::{
    Cmd, ConnectionInfo, ConnectionPool, Pipeline, PoolOptions, Redis, StrictRedis, Typed,
};
use redis_tests::TestServer;
use std::time::{Duration, Instant};

fn send_sync_clone<T: Send + Sync + Clone>() {}
fn send<T: Send>() {}

#[test]
fn thread_safety_is_pinned_at_compile_time() {
    send_sync_clone::<Redis>();
    send_sync_clone::<StrictRedis>();
    send_sync_clone::<LegacyRedis>();
    send_sync_clone::<ConnectionPool>();
    send::<Pipeline>();
    send::<LegacyPipeline>();
}

#[test]
fn one_client_shared_by_sixteen_threads() {
    const THREADS: usize = 16;
    const EACH: usize = 100;
    let server = TestServer::start();
    let r = Redis::open(&server.url()).unwrap();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let r = &r;
            s.spawn(move || {
                for i in 0..EACH {
                    let key = format!("t{t}:{i}");
                    assert!(r.set(&key, i).unwrap());
                    // Each thread reads back its own values, never another's reply.
                    assert_eq!(
                        r.get(&key).unwrap().as_deref(),
                        Some(i.to_string().as_bytes())
                    );
                    r.incr("total").unwrap();
                }
            });
        }
    });
    assert_eq!(r.get("total").unwrap().as_deref(), Some(&b"1600"[..]));
    assert!(r.pool().options().max_size <= 16);
}

#[test]
fn clones_and_from_pool_share_connections() {
    let server = TestServer::start();
    let info = ConnectionInfo::tcp("127.0.0.1", server.port());
    let pool = ConnectionPool::with_options(info, PoolOptions::default().with_max_size(1));
    let a = Redis::from_pool(pool.clone());
    let b = Redis::from_pool(pool);
    let c = a.clone();
    let id = a.execute_command(("CLIENT", "ID")).unwrap();
    assert_eq!(b.execute_command(("CLIENT", "ID")).unwrap(), id);
    assert_eq!(c.execute_command(("CLIENT", "ID")).unwrap(), id);
    a.set("k", "v").unwrap();
    assert_eq!(b.get("k").unwrap().as_deref(), Some(&b"v"[..]));
}

fn blpop(key: &str, timeout_secs: u32) -> Typed<Option<(bytes::Bytes, bytes::Bytes)>> {
    let mut cmd = Cmd::new("BLPOP");
    cmd.key(key)
        .arg(timeout_secs)
        .block_for(std::time::Duration::from_secs(u64::from(timeout_secs)));
    Typed::new(cmd)
}

#[test]
fn blocking_command_waits_past_the_read_timeout() {
    let server = TestServer::start();
    let info = ConnectionInfo::tcp("127.0.0.1", server.port())
        .with_read_timeout(Some(Duration::from_millis(500)));
    let r = Redis::from_info(info);
    let started = Instant::now();
    assert_eq!(r.run(blpop("queue", 2)).unwrap(), None);
    assert!(started.elapsed() >= Duration::from_millis(1900));

    // A value pushed while it waits arrives.
    let pusher = Redis::open(&server.url()).unwrap();
    let popped = std::thread::scope(|s| {
        let waiter = s.spawn(|| r.run(blpop("queue", 2)));
        std::thread::sleep(Duration::from_millis(700));
        pusher.execute_command(("LPUSH", "queue", "job")).unwrap();
        waiter.join().unwrap()
    });
    let (key, value) = popped.unwrap().unwrap();
    assert_eq!((&key[..], &value[..]), (&b"queue"[..], &b"job"[..]));
    // A non-blocking command on the same client still honours the read timeout.
    assert_eq!(r.incr("n").unwrap(), 1);
}
