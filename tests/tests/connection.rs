//! `Redis::get_connection` and `Redis::dedicated_connection`: commands on one connection,
//! SELECT without leaking a database into the pool.

use redis_client::prelude::*;
use redis_client::{ConnectionInfo, ConnectionPool, PoolOptions, Redis};
use redis_tests::TestServer;

#[test]
fn dedicated_connection_selects_freely() {
    let server = TestServer::start();
    let r = Redis::open(&server.url()).unwrap();
    let mut conn = r.dedicated_connection().unwrap();
    assert!(!conn.is_pooled());
    conn.select(5).unwrap();
    assert!(conn.set("only-in-5", 1).unwrap());
    assert_eq!(conn.dbsize().unwrap(), 1);
    assert_eq!(
        r.dbsize().unwrap(),
        0,
        "the client's own database is untouched"
    );
}

#[test]
fn selected_pooled_connection_is_not_returned() {
    let server = TestServer::start();
    let pool = ConnectionPool::with_options(
        ConnectionInfo::tcp("127.0.0.1", server.port()),
        PoolOptions::default().with_max_size(1),
    );
    let r = Redis::from_pool(pool);
    {
        let mut conn = r.get_connection().unwrap();
        assert!(conn.is_pooled());
        conn.select(3).unwrap();
        conn.set("in-3", 1).unwrap();
    }
    // The only connection of the pool was switched to db 3; the next user must still see
    // db 0.
    assert_eq!(r.dbsize().unwrap(), 0);
    assert_eq!(r.exists("in-3").unwrap(), 0);
}

#[test]
fn pooled_connection_runs_commands_and_goes_back() {
    let server = TestServer::start();
    let pool = ConnectionPool::with_options(
        ConnectionInfo::tcp("127.0.0.1", server.port()),
        PoolOptions::default().with_max_size(1),
    );
    let r = Redis::from_pool(pool);
    let id_before = {
        let mut conn = r.get_connection().unwrap();
        assert_eq!(conn.incr("n").unwrap(), 1);
        conn.execute_command(("CLIENT", "ID")).unwrap()
    };
    let mut conn = r.get_connection().unwrap();
    assert_eq!(
        conn.execute_command(("CLIENT", "ID")).unwrap(),
        id_before,
        "the same connection came back"
    );
}
