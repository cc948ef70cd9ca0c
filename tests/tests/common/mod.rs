//! Helpers shared by the end-to-end tests.

#![allow(dead_code)] // Each test file uses a different subset.

use redis_client::{ConnectionInfo, Protocol, Redis};
use redis_tests::TestServer;

/// One client per protocol version on `server`: command tests run over both, since RESP2
/// and RESP3 replies of the same command must convert to the same Rust value.
pub fn both_protocols(server: &TestServer) -> [(Protocol, Redis); 2] {
    [Protocol::Resp2, Protocol::Resp3].map(|p| {
        let info = ConnectionInfo::tcp("127.0.0.1", server.port()).with_protocol(p);
        (p, Redis::from_info(info))
    })
}

/// Runs `check` once per protocol, each on a freshly flushed database, naming the protocol
/// in any failure.
pub fn for_each_protocol(server: &TestServer, check: impl Fn(&Redis)) {
    for (protocol, r) in both_protocols(server) {
        r.execute_command("FLUSHALL").expect("flushall");
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&r)));
        if let Err(e) = result {
            eprintln!("failed over {protocol:?}");
            std::panic::resume_unwind(e);
        }
    }
}
