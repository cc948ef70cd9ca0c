//! CLUSTER commands: their errors on a standalone server, and their results on throwaway
//! cluster-enabled servers, over RESP2 and RESP3.

mod common;

use bytes::Bytes;
use common::for_each_protocol;
use redis_client::prelude::*;
use redis_client::redis_commands::{ClusterFailoverMode, ResetMode, SetSlot};
use redis_client::{ConnectionInfo, FromValue, Protocol, Redis};
use redis_tests::{ServerConfig, TestServer};
use std::time::{Duration, Instant};

fn cluster_node() -> TestServer {
    ServerConfig::default()
        .line("cluster-enabled yes")
        .line("cluster-require-full-coverage no")
        .start()
}

fn client(server: &TestServer, protocol: Protocol) -> Redis {
    Redis::from_info(ConnectionInfo::tcp("127.0.0.1", server.port()).with_protocol(protocol))
}

#[test]
fn standalone_server_refuses_cluster_commands() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        let mut c = r.dedicated_connection().unwrap();
        for err in [
            r.cluster_keyslot("foo").unwrap_err(),
            r.cluster_info().unwrap_err(),
            r.cluster_myid().unwrap_err(),
            c.readonly().unwrap_err(),
            c.readwrite().unwrap_err(),
            r.asking().unwrap_err(),
            r.cluster_help().unwrap_err(),
        ] {
            assert!(
                err.to_string().contains("cluster support disabled"),
                "{err}"
            );
        }
    });
}

#[test]
fn slots_keys_and_introspection() {
    for protocol in [Protocol::Resp2, Protocol::Resp3] {
        let node = cluster_node();
        let r = client(&node, protocol);
        let me = r.cluster_myid().unwrap();
        assert_eq!(me.len(), 40);
        assert_eq!(r.cluster_keyslot("foo").unwrap(), 12182);
        assert_eq!(
            r.cluster_keyslot("{user1}.a").unwrap(),
            r.cluster_keyslot("user1").unwrap()
        );
        r.cluster_set_config_epoch(5).unwrap();
        r.cluster_addslots(&[0, 1, 2]).unwrap();
        r.cluster_addslotsrange(&[(100, 199), (12182, 12182)])
            .unwrap();
        let info = r.cluster_info().unwrap();
        assert_eq!(info.get_int("cluster_slots_assigned"), Some(104));
        assert_eq!(info.get_int("cluster_my_epoch"), Some(5));
        let deadline = Instant::now() + Duration::from_secs(10);
        while r.cluster_info().unwrap().get("cluster_state") != Some("ok") {
            assert!(Instant::now() < deadline, "cluster state never ok");
            std::thread::sleep(Duration::from_millis(50));
        }
        r.set("foo", "bar").unwrap();
        assert_eq!(r.cluster_countkeysinslot(12182).unwrap(), 1);
        assert_eq!(
            r.cluster_getkeysinslot(12182, 10).unwrap(),
            vec![Bytes::from("foo")]
        );
        let slots = r.cluster_slots().unwrap();
        let range = slots.iter().find(|s| s.start == 100).unwrap();
        assert_eq!(range.end, 199);
        assert_eq!(range.nodes[0].port, node.port());
        assert_eq!(range.nodes[0].id, me);
        let shards = r.cluster_shards().unwrap();
        assert_eq!(shards.len(), 1);
        assert!(shards[0].contains_key("slots"));
        assert!(r.cluster_nodes().unwrap().contains(&me));
        assert!(r.cluster_links().unwrap().is_empty());
        assert_eq!(r.cluster_count_failure_reports(&me).unwrap(), 0);
        assert!(r.cluster_replicas(&me).unwrap().is_empty());
        assert!(r.cluster_slaves(&me).unwrap().is_empty());
        let bumped = r.cluster_bumpepoch().unwrap();
        assert!(
            bumped.starts_with("BUMPED ") || bumped.starts_with("STILL "),
            "{bumped}"
        );
        r.cluster_setslot(12182, SetSlot::Node(me.clone())).unwrap();
        r.cluster_setslot(12182, SetSlot::Stable).unwrap();
        r.cluster_delslots(&[0]).unwrap();
        r.cluster_delslotsrange(&[(100, 199)]).unwrap();
        assert_eq!(
            r.cluster_info().unwrap().get_int("cluster_slots_assigned"),
            Some(3)
        );
        r.cluster_saveconfig().unwrap();
        assert!(std::fs::read_to_string(node.dir().join("nodes.conf"))
            .unwrap()
            .contains(&me));
        assert!(!r.cluster_help().unwrap().is_empty());
        r.asking().unwrap();
        let mut c = r.dedicated_connection().unwrap();
        c.readonly().unwrap();
        c.readwrite().unwrap();

        let err = r.cluster_flushslots().unwrap_err();
        assert!(err.to_string().contains("DB must be empty"), "{err}");
        r.flushall(None).unwrap();
        r.cluster_flushslots().unwrap();
        assert_eq!(
            r.cluster_info().unwrap().get_int("cluster_slots_assigned"),
            Some(0)
        );
        let err = r.cluster_replicate(&me).unwrap_err();
        assert!(err.to_string().contains("myself"), "{err}");
        let err = r.cluster_forget(&me).unwrap_err();
        assert!(err.to_string().contains("forget myself"), "{err}");
        let err = r.cluster_failover(None).unwrap_err();
        assert!(err.to_string().contains("replica"), "{err}");
        let err = r
            .cluster_failover(Some(ClusterFailoverMode::Force))
            .unwrap_err();
        assert!(err.to_string().contains("replica"), "{err}");
        let err = r
            .cluster_failover(Some(ClusterFailoverMode::Takeover))
            .unwrap_err();
        assert!(err.to_string().contains("replica"), "{err}");
        r.cluster_reset(Some(ResetMode::Hard)).unwrap();
        assert_ne!(r.cluster_myid().unwrap(), me);
        r.cluster_reset(Some(ResetMode::Soft)).unwrap();
        r.cluster_reset(None).unwrap();
    }
}

#[test]
fn meet_links_two_nodes() {
    for protocol in [Protocol::Resp2, Protocol::Resp3] {
        let a = cluster_node();
        let b = cluster_node();
        let ra = client(&a, protocol);
        let rb = client(&b, protocol);
        let b_id = rb.cluster_myid().unwrap();
        ra.cluster_meet("127.0.0.1", b.port()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while ra.cluster_links().unwrap().is_empty() || !ra.cluster_nodes().unwrap().contains(&b_id)
        {
            assert!(Instant::now() < deadline, "nodes never met");
            std::thread::sleep(Duration::from_millis(50));
        }
        let link = &ra.cluster_links().unwrap()[0];
        assert!(String::from_value(link["node"].clone()).unwrap().len() == 40);
        ra.cluster_forget(&b_id).unwrap();
        assert!(!ra.cluster_nodes().unwrap().contains(&b_id));
    }
}
