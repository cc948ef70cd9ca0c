//! The test harness: real `redis-server` processes on free ports and Unix sockets, each in
//! its own temporary directory, killed when the handle drops (also when a test panics).
//!
//! ```no_run
//! let server = redis_tests::TestServer::start();
//! println!("{}", server.url());
//! ```
//!
//! Faults come from real causes: [`TestServer::stop`] and [`TestServer::restart`], and a
//! loopback [`FaultProxy`] that cuts, stalls or delays the stream. [`FakeServer`] sends
//! scripted bytes, only for replies a real server cannot be made to send.
//!
//! Nothing here stands in for Redis: every command test talks to a real server.

mod cluster;
mod fake;
mod proxy;
mod sentinel;
mod server;
mod tls;

pub use cluster::{assert_gap_before, TestCluster, NODE_TIMEOUT_MS};
pub use fake::{FakeConn, FakeServer};
pub use proxy::FaultProxy;
pub use sentinel::{SentinelSet, SentinelSetConfig, SERVICE as SENTINEL_SERVICE};
pub use server::{run_prefix, ServerConfig, TestServer, RUN_VAR, TMP_PREFIX};
pub use tls::TestCerts;
