//! Commands on geospatial indexes (sorted sets whose scores are geohashes).
//!
//! Positions are `(longitude, latitude)`, longitude first, as Redis takes them.

use crate::{
    GeoAddOptions, GeoBy, GeoFrom, GeoSearchOptions, GeoSearchResult, GeoStore, GeoUnit, GeoWith,
    ToArgs,
};
use bytes::Bytes;

commands! {
    /// Commands on geospatial indexes. See <https://redis.io/commands/?group=geo>.
    pub trait GeoCommands, table GEO;

    /// Adds `(longitude, latitude, member)` items; returns how many members were new.
    /// See <https://redis.io/commands/geoadd/>.
    "GEOADD" [] fn geoadd<K: ToArgs, I: ToArgs>(key: K, items: I) -> i64
        => |c| { c.key(key).arg(items); }

    /// `GEOADD` with `NX`/`XX` and `CH`.
    /// See <https://redis.io/commands/geoadd/>.
    "GEOADD" [] fn geoadd_options<K: ToArgs, I: ToArgs>(key: K, options: GeoAddOptions, items: I) -> i64
        => |c| { c.key(key).arg(options).arg(items); }

    /// Returns the distance between two members in `unit`, or `None` if either is missing.
    /// See <https://redis.io/commands/geodist/>.
    "GEODIST" [READONLY | CACHEABLE] fn geodist<K: ToArgs, A: ToArgs, B: ToArgs>(key: K, member1: A, member2: B, unit: GeoUnit) -> Option<f64>
        => |c| { c.key(key).arg(member1).arg(member2).arg(unit); }

    /// Returns the 11-character geohash of each of `members`, `None` for those missing.
    /// See <https://redis.io/commands/geohash/>.
    "GEOHASH" [READONLY | CACHEABLE] fn geohash<K: ToArgs, M: ToArgs>(key: K, members: M) -> Vec<Option<String>>
        => |c| { c.key(key).arg(members); }

    /// Returns the `(longitude, latitude)` of each of `members`, `None` for those missing.
    /// See <https://redis.io/commands/geopos/>.
    "GEOPOS" [READONLY | CACHEABLE] fn geopos<K: ToArgs, M: ToArgs>(key: K, members: M) -> Vec<Option<(f64, f64)>>
        => |c| { c.key(key).arg(members); }

    /// Returns the members within the shape `by` around `from`.
    /// See <https://redis.io/commands/geosearch/>.
    "GEOSEARCH" [READONLY] fn geosearch<K: ToArgs>(key: K, from: GeoFrom, by: GeoBy, options: GeoSearchOptions) -> Vec<Bytes>
        => |c| { c.key(key).arg(from).arg(by); options.write_search(c); }

    /// As `geosearch`, each member with what `with` asks for.
    /// See <https://redis.io/commands/geosearch/>.
    "GEOSEARCH" [READONLY] fn geosearch_with<K: ToArgs>(key: K, from: GeoFrom, by: GeoBy, options: GeoSearchOptions, with: GeoWith) -> Vec<GeoSearchResult>
        => |c| { c.key(key).arg(from).arg(by); options.write_search(c); c.arg(with); }

    /// Stores the members of `src` that a search finds in `dst` as a geo set; returns how
    /// many.
    /// See <https://redis.io/commands/geosearchstore/>.
    "GEOSEARCHSTORE" [] fn geosearchstore<D: ToArgs, S: ToArgs>(dst: D, src: S, from: GeoFrom, by: GeoBy, options: GeoSearchOptions) -> i64
        => |c| { c.key(dst).key(src).arg(from).arg(by); options.write_search(c); }

    /// Stores the members of `src` that a search finds in `dst` with their distances as
    /// scores (`STOREDIST`); returns how many.
    /// See <https://redis.io/commands/geosearchstore/>.
    "GEOSEARCHSTORE" [] fn geosearchstore_storedist<D: ToArgs, S: ToArgs>(dst: D, src: S, from: GeoFrom, by: GeoBy, options: GeoSearchOptions) -> i64
        => |c| { c.key(dst).key(src).arg(from).arg(by); options.write_search(c); c.arg("STOREDIST"); }

    /// Returns the members within `radius` of a position (superseded by `GEOSEARCH`).
    /// See <https://redis.io/commands/georadius/>.
    "GEORADIUS" [] fn georadius<K: ToArgs>(key: K, longitude: f64, latitude: f64, radius: f64, unit: GeoUnit, options: GeoSearchOptions) -> Vec<Bytes>
        => |c| { c.key(key).arg(longitude).arg(latitude).arg(radius).arg(unit); options.write_radius(c); }

    /// As `georadius`, each member with what `with` asks for.
    /// See <https://redis.io/commands/georadius/>.
    "GEORADIUS" [] fn georadius_with<K: ToArgs>(key: K, longitude: f64, latitude: f64, radius: f64, unit: GeoUnit, with: GeoWith, options: GeoSearchOptions) -> Vec<GeoSearchResult>
        => |c| { c.key(key).arg(longitude).arg(latitude).arg(radius).arg(unit).arg(with); options.write_radius(c); }

    /// Stores the members within `radius` of a position (`STORE`/`STOREDIST`); returns
    /// how many.
    /// See <https://redis.io/commands/georadius/>.
    "GEORADIUS" [] fn georadius_store<K: ToArgs>(key: K, longitude: f64, latitude: f64, radius: f64, unit: GeoUnit, options: GeoSearchOptions, store: GeoStore) -> i64
        => |c| { c.key(key).arg(longitude).arg(latitude).arg(radius).arg(unit); options.write_radius(c); c.arg(store); }

    /// Read-only `georadius`, safe on replicas.
    /// See <https://redis.io/commands/georadius_ro/>.
    "GEORADIUS_RO" [READONLY] fn georadius_ro<K: ToArgs>(key: K, longitude: f64, latitude: f64, radius: f64, unit: GeoUnit, options: GeoSearchOptions) -> Vec<Bytes>
        => |c| { c.key(key).arg(longitude).arg(latitude).arg(radius).arg(unit); options.write_radius(c); }

    /// Read-only `georadius_with`.
    /// See <https://redis.io/commands/georadius_ro/>.
    "GEORADIUS_RO" [READONLY] fn georadius_ro_with<K: ToArgs>(key: K, longitude: f64, latitude: f64, radius: f64, unit: GeoUnit, with: GeoWith, options: GeoSearchOptions) -> Vec<GeoSearchResult>
        => |c| { c.key(key).arg(longitude).arg(latitude).arg(radius).arg(unit).arg(with); options.write_radius(c); }

    /// Returns the members within `radius` of `member` (superseded by `GEOSEARCH`).
    /// See <https://redis.io/commands/georadiusbymember/>.
    "GEORADIUSBYMEMBER" [] fn georadiusbymember<K: ToArgs, M: ToArgs>(key: K, member: M, radius: f64, unit: GeoUnit, options: GeoSearchOptions) -> Vec<Bytes>
        => |c| { c.key(key).arg(member).arg(radius).arg(unit); options.write_radius(c); }

    /// As `georadiusbymember`, each member with what `with`
    /// asks for.
    /// See <https://redis.io/commands/georadiusbymember/>.
    "GEORADIUSBYMEMBER" [] fn georadiusbymember_with<K: ToArgs, M: ToArgs>(key: K, member: M, radius: f64, unit: GeoUnit, with: GeoWith, options: GeoSearchOptions) -> Vec<GeoSearchResult>
        => |c| { c.key(key).arg(member).arg(radius).arg(unit).arg(with); options.write_radius(c); }

    /// Stores the members within `radius` of `member` (`STORE`/`STOREDIST`); returns how
    /// many.
    /// See <https://redis.io/commands/georadiusbymember/>.
    "GEORADIUSBYMEMBER" [] fn georadiusbymember_store<K: ToArgs, M: ToArgs>(key: K, member: M, radius: f64, unit: GeoUnit, options: GeoSearchOptions, store: GeoStore) -> i64
        => |c| { c.key(key).arg(member).arg(radius).arg(unit); options.write_radius(c); c.arg(store); }

    /// Read-only `georadiusbymember`, safe on replicas.
    /// See <https://redis.io/commands/georadiusbymember_ro/>.
    "GEORADIUSBYMEMBER_RO" [READONLY] fn georadiusbymember_ro<K: ToArgs, M: ToArgs>(key: K, member: M, radius: f64, unit: GeoUnit, options: GeoSearchOptions) -> Vec<Bytes>
        => |c| { c.key(key).arg(member).arg(radius).arg(unit); options.write_radius(c); }

    /// Read-only `georadiusbymember_with`.
    /// See <https://redis.io/commands/georadiusbymember_ro/>.
    "GEORADIUSBYMEMBER_RO" [READONLY] fn georadiusbymember_ro_with<K: ToArgs, M: ToArgs>(key: K, member: M, radius: f64, unit: GeoUnit, with: GeoWith, options: GeoSearchOptions) -> Vec<GeoSearchResult>
        => |c| { c.key(key).arg(member).arg(radius).arg(unit).arg(with); options.write_radius(c); }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_key_is_marked() {
        let t = georadius_store(
            "g",
            15.0,
            37.0,
            200.0,
            GeoUnit::Kilometers,
            GeoSearchOptions::default().asc(),
            GeoStore::distances("out"),
        );
        let words: Vec<_> = t.cmd.args().collect();
        assert_eq!(
            words,
            [
                &b"GEORADIUS"[..],
                b"g",
                b"15",
                b"37",
                b"200",
                b"km",
                b"ASC",
                b"STOREDIST",
                b"out"
            ]
        );
        assert_eq!(t.cmd.keys().collect::<Vec<_>>(), [&b"g"[..], b"out"]);
    }

    #[test]
    fn geosearch_argument_order() {
        let t = geosearch_with(
            "g",
            GeoFrom::LonLat(15.0, 37.0),
            GeoBy::Box(400.0, 400.0, GeoUnit::Kilometers),
            GeoSearchOptions::default().asc().count(1),
            GeoWith::default().dist(),
        );
        let words: Vec<_> = t.cmd.args().collect();
        assert_eq!(
            words,
            [
                &b"GEOSEARCH"[..],
                b"g",
                b"FROMLONLAT",
                b"15",
                b"37",
                b"BYBOX",
                b"400",
                b"400",
                b"km",
                b"ASC",
                b"COUNT",
                b"1",
                b"WITHDIST"
            ]
        );
    }
}
