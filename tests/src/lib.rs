//! The test harness: real `redis-server` processes on free ports and Unix sockets, each in
//! its own temporary directory, killed when the handle drops (also when a test panics).
//!
//! ```no_run
//! let server = redis_tests::TestServer::start();
//! println!("{}", server.url());
//! ```
//!
//! Nothing here stands in for Redis: every test talks to a real server.

mod server;

pub use server::{ServerConfig, TestServer, TMP_PREFIX};
