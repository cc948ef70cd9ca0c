//! Geo commands against a real server, over RESP2 and RESP3.

mod common;

use bytes::Bytes;
use common::for_each_protocol;
use redis_client::prelude::*;
use redis_client::redis_commands::{
    GeoAddOptions, GeoBy, GeoFrom, GeoSearchOptions, GeoStore, GeoUnit, GeoWith, ZRange,
};
use redis_client::Redis;
use redis_tests::TestServer;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn close(a: f64, b: f64, eps: f64) -> bool {
    (a - b).abs() < eps
}

/// The example set of the Redis documentation: Palermo and Catania.
fn seed(r: &Redis) {
    assert_eq!(
        r.geoadd(
            "sicily",
            [
                (13.361389, 38.115556, "Palermo"),
                (15.087269, 37.502669, "Catania")
            ]
        )
        .unwrap(),
        2
    );
}

#[test]
fn add_dist_hash_pos() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        seed(r);
        assert_eq!(
            r.geoadd_options(
                "sicily",
                GeoAddOptions::default().nx(),
                [(0.0, 0.0, "Palermo"), (12.758489, 38.788135, "edge1")]
            )
            .unwrap(),
            1
        );
        assert_eq!(
            r.geoadd_options(
                "sicily",
                GeoAddOptions::default().xx().ch(),
                [(12.0, 38.0, "edge1"), (1.0, 1.0, "never")]
            )
            .unwrap(),
            1
        );
        let km = r
            .geodist("sicily", "Palermo", "Catania", GeoUnit::Kilometers)
            .unwrap()
            .unwrap();
        assert!(close(km, 166.2742, 0.001), "{km}");
        let m = r
            .geodist("sicily", "Palermo", "Catania", GeoUnit::Meters)
            .unwrap()
            .unwrap();
        assert!(close(m, 166274.1516, 0.01), "{m}");
        assert_eq!(
            r.geodist("sicily", "Palermo", "Atlantis", GeoUnit::Miles)
                .unwrap(),
            None
        );
        assert_eq!(
            r.geohash("sicily", ["Palermo", "Atlantis"]).unwrap(),
            [Some("sqc8b49rny0".to_owned()), None]
        );
        let pos = r.geopos("sicily", ["Palermo", "Atlantis"]).unwrap();
        let (lon, lat) = pos[0].unwrap();
        assert!(close(lon, 13.361389, 1e-5) && close(lat, 38.115556, 1e-5));
        assert_eq!(pos[1], None);
    });
}

#[test]
fn geosearch_forms() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        seed(r);
        let around = GeoFrom::LonLat(15.0, 37.0);
        let by_200km = GeoBy::Radius(200.0, GeoUnit::Kilometers);
        assert_eq!(
            r.geosearch(
                "sicily",
                around.clone(),
                by_200km,
                GeoSearchOptions::default().asc()
            )
            .unwrap(),
            [b("Catania"), b("Palermo")]
        );
        assert_eq!(
            r.geosearch(
                "sicily",
                GeoFrom::member("Palermo"),
                GeoBy::Box(400.0, 400.0, GeoUnit::Kilometers),
                GeoSearchOptions::default().desc().count(1)
            )
            .unwrap(),
            [b("Catania")]
        );
        assert_eq!(
            r.geosearch(
                "sicily",
                around.clone(),
                by_200km,
                GeoSearchOptions::default().count_any(1)
            )
            .unwrap()
            .len(),
            1
        );
        let all = GeoWith::default().coord().dist().hash();
        let found = r
            .geosearch_with(
                "sicily",
                around.clone(),
                by_200km,
                GeoSearchOptions::default().asc(),
                all,
            )
            .unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].member, b("Catania"));
        assert!(close(found[0].dist.unwrap(), 56.4413, 0.001));
        assert_eq!(found[0].hash, Some(3479447370796909));
        let (lon, lat) = found[0].coord.unwrap();
        assert!(close(lon, 15.087269, 1e-5) && close(lat, 37.502669, 1e-5));
        let dist_only = r
            .geosearch_with(
                "sicily",
                around,
                by_200km,
                GeoSearchOptions::default().desc(),
                GeoWith::default().dist(),
            )
            .unwrap();
        assert_eq!(dist_only[0].member, b("Palermo"));
        assert!(close(dist_only[0].dist.unwrap(), 190.4424, 0.001));
        assert_eq!((dist_only[0].hash, dist_only[0].coord), (None, None));
    });
}

#[test]
fn geosearchstore_forms() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        seed(r);
        let from = GeoFrom::LonLat(15.0, 37.0);
        let by = GeoBy::Radius(100.0, GeoUnit::Kilometers);
        assert_eq!(
            r.geosearchstore(
                "near",
                "sicily",
                from.clone(),
                by,
                GeoSearchOptions::default()
            )
            .unwrap(),
            1
        );
        assert_eq!(
            r.geopos("near", ["Catania"]).unwrap()[0].map(|(lon, _)| close(lon, 15.087269, 1e-5)),
            Some(true)
        );
        assert_eq!(
            r.geosearchstore_storedist("dists", "sicily", from, by, GeoSearchOptions::default())
                .unwrap(),
            1
        );
        let scored = r
            .zrange_withscores("dists", ZRange::by_index(0, -1))
            .unwrap();
        assert_eq!(scored[0].0, b("Catania"));
        assert!(close(scored[0].1, 56.4413, 0.001), "{scored:?}");
    });
}

#[test]
fn legacy_georadius_forms() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        seed(r);
        let km = GeoUnit::Kilometers;
        let asc = GeoSearchOptions::default().asc();
        assert_eq!(
            r.georadius("sicily", 15.0, 37.0, 200.0, km, asc).unwrap(),
            [b("Catania"), b("Palermo")]
        );
        assert_eq!(
            r.georadius_ro("sicily", 15.0, 37.0, 100.0, km, asc)
                .unwrap(),
            [b("Catania")]
        );
        let with = r
            .georadius_with(
                "sicily",
                15.0,
                37.0,
                200.0,
                km,
                GeoWith::default().dist(),
                asc.count(1),
            )
            .unwrap();
        assert_eq!(with.len(), 1);
        assert!(close(with[0].dist.unwrap(), 56.4413, 0.001));
        let with = r
            .georadius_ro_with(
                "sicily",
                15.0,
                37.0,
                200.0,
                km,
                GeoWith::default().hash(),
                asc,
            )
            .unwrap();
        assert_eq!(with[1].hash, Some(3479099956230698));
        assert_eq!(
            r.georadius_store(
                "sicily",
                15.0,
                37.0,
                200.0,
                km,
                asc,
                GeoStore::members("stored")
            )
            .unwrap(),
            2
        );
        assert_eq!(r.zcard("stored").unwrap(), 2);

        assert_eq!(
            r.georadiusbymember("sicily", "Palermo", 200.0, km, asc)
                .unwrap(),
            [b("Palermo"), b("Catania")]
        );
        assert_eq!(
            r.georadiusbymember_ro("sicily", "Palermo", 10.0, km, asc)
                .unwrap(),
            [b("Palermo")]
        );
        let with = r
            .georadiusbymember_with(
                "sicily",
                "Palermo",
                200.0,
                km,
                GeoWith::default().coord(),
                asc,
            )
            .unwrap();
        assert!(close(with[1].coord.unwrap().0, 15.087269, 1e-5));
        let with = r
            .georadiusbymember_ro_with(
                "sicily",
                "Catania",
                200.0,
                km,
                GeoWith::default().dist(),
                GeoSearchOptions::default().desc(),
            )
            .unwrap();
        assert_eq!(with[0].member, b("Palermo"));
        assert!(close(with[0].dist.unwrap(), 166.2742, 0.001));
        assert_eq!(
            r.georadiusbymember_store(
                "sicily",
                "Palermo",
                200.0,
                km,
                asc,
                GeoStore::distances("d")
            )
            .unwrap(),
            2
        );
        assert_eq!(r.zscore("d", "Palermo").unwrap(), Some(0.0));
    });
}
