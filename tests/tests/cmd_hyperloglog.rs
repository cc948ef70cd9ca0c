//! HyperLogLog commands against a real server, over RESP2 and RESP3.

mod common;

use common::for_each_protocol;
use redis_client::prelude::*;
use redis_tests::TestServer;

#[test]
fn add_count_merge() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        assert!(r.pfadd("h1", ["a", "b", "c"]).unwrap());
        assert!(!r.pfadd("h1", "a").unwrap());
        assert!(r.pfadd("h2", ["c", "d"]).unwrap());
        assert_eq!(r.pfcount("h1").unwrap(), 3);
        assert_eq!(r.pfcount(["h1", "h2"]).unwrap(), 4);
        assert!(r.pfmerge("all", ["h1", "h2"]).unwrap());
        assert_eq!(r.pfcount("all").unwrap(), 4);
        assert_eq!(r.pfcount("missing").unwrap(), 0);
    });
}
