//! Options and reply types of the geo commands: units, search centres and shapes, result
//! order and count, the `WITH*` flags, and the search result struct.

use crate::{Cmd, FromValue, FromValueError, ToArgs};
use bytes::Bytes;
use resp_proto::Value;

/// A distance unit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GeoUnit {
    /// Metres (`m`, the server's default).
    #[default]
    Meters,
    /// Kilometres (`km`).
    Kilometers,
    /// Miles (`mi`).
    Miles,
    /// Feet (`ft`).
    Feet,
}

impl ToArgs for GeoUnit {
    fn write_args(&self, cmd: &mut Cmd) {
        cmd.arg(match self {
            GeoUnit::Meters => "m",
            GeoUnit::Kilometers => "km",
            GeoUnit::Miles => "mi",
            GeoUnit::Feet => "ft",
        });
    }
}

/// Condition flags of `GEOADD` (`NX`/`XX`, `CH`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[must_use = "options do nothing until passed to a command"]
pub struct GeoAddOptions {
    condition: Option<&'static str>,
    ch: bool,
}

impl GeoAddOptions {
    /// Only add new members (`NX`).
    pub fn nx(mut self) -> Self {
        self.condition = Some("NX");
        self
    }

    /// Only update existing members (`XX`).
    pub fn xx(mut self) -> Self {
        self.condition = Some("XX");
        self
    }

    /// Count changed members too, not only added ones (`CH`).
    pub fn ch(mut self) -> Self {
        self.ch = true;
        self
    }
}

impl ToArgs for GeoAddOptions {
    fn write_args(&self, cmd: &mut Cmd) {
        cmd.arg(self.condition);
        if self.ch {
            cmd.arg("CH");
        }
    }
}

/// The centre of a `GEOSEARCH`: a member of the set or a position.
#[derive(Clone, Debug, PartialEq)]
pub enum GeoFrom {
    /// The position of this member (`FROMMEMBER`).
    Member(Bytes),
    /// This longitude and latitude (`FROMLONLAT`).
    LonLat(f64, f64),
}

impl GeoFrom {
    /// `FROMMEMBER member`.
    pub fn member(member: impl AsRef<[u8]>) -> Self {
        GeoFrom::Member(Bytes::copy_from_slice(member.as_ref()))
    }
}

impl ToArgs for GeoFrom {
    fn write_args(&self, cmd: &mut Cmd) {
        match self {
            GeoFrom::Member(m) => cmd.arg("FROMMEMBER").arg(m),
            GeoFrom::LonLat(lon, lat) => cmd.arg("FROMLONLAT").arg(*lon).arg(*lat),
        };
    }
}

/// The shape of a `GEOSEARCH`: a circle or an axis-aligned box around the centre.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GeoBy {
    /// Within this radius (`BYRADIUS`).
    Radius(f64, GeoUnit),
    /// Within a box this wide and high (`BYBOX`).
    Box(f64, f64, GeoUnit),
}

impl ToArgs for GeoBy {
    fn write_args(&self, cmd: &mut Cmd) {
        match *self {
            GeoBy::Radius(r, unit) => cmd.arg("BYRADIUS").arg(r).arg(unit),
            GeoBy::Box(w, h, unit) => cmd.arg("BYBOX").arg(w).arg(h).arg(unit),
        };
    }
}

/// Order and count of geo search results (`ASC`/`DESC`, `COUNT n [ANY]`).
///
/// ```
/// # use redis_commands as redis_client;
/// use redis_client::GeoSearchOptions;
/// let nearest_3 = GeoSearchOptions::default().asc().count(3);
/// # let _ = nearest_3;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[must_use = "options do nothing until passed to a command"]
pub struct GeoSearchOptions {
    order: Option<&'static str>,
    count: Option<u64>,
    any: bool,
}

impl GeoSearchOptions {
    /// Nearest first (`ASC`).
    pub fn asc(mut self) -> Self {
        self.order = Some("ASC");
        self
    }

    /// Farthest first (`DESC`).
    pub fn desc(mut self) -> Self {
        self.order = Some("DESC");
        self
    }

    /// At most `n` results (`COUNT`).
    pub fn count(mut self, n: u64) -> Self {
        self.count = Some(n);
        self
    }

    /// At most `n` results, returned as soon as that many are found rather than the
    /// nearest ones (`COUNT n ANY`).
    pub fn count_any(mut self, n: u64) -> Self {
        self.count = Some(n);
        self.any = true;
        self
    }

    /// `[ASC|DESC] [COUNT n [ANY]]`, the `GEOSEARCH` order.
    pub(crate) fn write_search(&self, cmd: &mut Cmd) {
        cmd.arg(self.order);
        self.write_count(cmd);
    }

    /// `[COUNT n [ANY]] [ASC|DESC]`, the `GEORADIUS` order.
    pub(crate) fn write_radius(&self, cmd: &mut Cmd) {
        self.write_count(cmd);
        cmd.arg(self.order);
    }

    fn write_count(&self, cmd: &mut Cmd) {
        if let Some(n) = self.count {
            cmd.arg("COUNT").arg(n);
            if self.any {
                cmd.arg("ANY");
            }
        }
    }
}

/// What each geo search result carries besides the member (`WITHCOORD`, `WITHDIST`,
/// `WITHHASH`).
///
/// ```
/// # use redis_commands as redis_client;
/// use redis_client::GeoWith;
/// let with = GeoWith::default().dist().coord();
/// # let _ = with;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GeoWith {
    coord: bool,
    dist: bool,
    hash: bool,
}

impl GeoWith {
    /// The member's position (`WITHCOORD`).
    pub fn coord(mut self) -> Self {
        self.coord = true;
        self
    }

    /// The distance from the centre, in the search's unit (`WITHDIST`).
    pub fn dist(mut self) -> Self {
        self.dist = true;
        self
    }

    /// The raw 52-bit geohash (`WITHHASH`).
    pub fn hash(mut self) -> Self {
        self.hash = true;
        self
    }
}

impl ToArgs for GeoWith {
    fn write_args(&self, cmd: &mut Cmd) {
        if self.coord {
            cmd.arg("WITHCOORD");
        }
        if self.dist {
            cmd.arg("WITHDIST");
        }
        if self.hash {
            cmd.arg("WITHHASH");
        }
    }
}

/// Where `GEORADIUS`/`GEORADIUSBYMEMBER` store their results instead of returning them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GeoStore {
    /// Store the members with their geohashes, as a geo set (`STORE key`).
    Members(Bytes),
    /// Store the members with their distances as scores (`STOREDIST key`).
    Distances(Bytes),
}

impl GeoStore {
    /// `STORE key`.
    pub fn members(key: impl AsRef<[u8]>) -> Self {
        GeoStore::Members(Bytes::copy_from_slice(key.as_ref()))
    }

    /// `STOREDIST key`.
    pub fn distances(key: impl AsRef<[u8]>) -> Self {
        GeoStore::Distances(Bytes::copy_from_slice(key.as_ref()))
    }
}

impl ToArgs for GeoStore {
    fn write_args(&self, cmd: &mut Cmd) {
        match self {
            GeoStore::Members(k) => cmd.arg("STORE").key(k),
            GeoStore::Distances(k) => cmd.arg("STOREDIST").key(k),
        };
    }
}

/// One result of a geo search with `WITH*` flags; each field is set when its flag was
/// asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct GeoSearchResult {
    /// The member.
    pub member: Bytes,
    /// Distance from the centre in the search's unit (`WITHDIST`).
    pub dist: Option<f64>,
    /// The raw geohash (`WITHHASH`).
    pub hash: Option<u64>,
    /// Longitude and latitude (`WITHCOORD`).
    pub coord: Option<(f64, f64)>,
}

/// The server sends `[member, dist?, hash?, [lon, lat]?]`, each present only when asked
/// for; they are told apart by type (distance a string or double, hash an integer,
/// position an array), so no request options are needed. A bare member (no flags) is
/// accepted too.
impl FromValue for GeoSearchResult {
    fn from_value(v: Value) -> Result<Self, FromValueError> {
        let items = match v.without_attributes() {
            Value::Array(items) => items,
            member @ (Value::BulkString(_) | Value::SimpleString(_)) => vec![member],
            other => return Err(FromValueError::mismatch("geo search result", &other)),
        };
        let mut items = items.into_iter();
        let member = Bytes::from_value(items.next().unwrap_or(Value::Nil))?;
        let mut out = GeoSearchResult {
            member,
            dist: None,
            hash: None,
            coord: None,
        };
        for item in items {
            match item {
                Value::Integer(n) => {
                    out.hash = Some(
                        u64::try_from(n)
                            .map_err(|_| FromValueError::mismatch("geohash", &Value::Integer(n)))?,
                    )
                }
                v @ Value::Array(_) => out.coord = Some(FromValue::from_value(v)?),
                v => out.dist = Some(f64::from_value(v)?),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn search_result_fields_by_type() {
        let v = Value::Array(vec![
            bulk("Palermo"),
            Value::Double(190.44),
            Value::Integer(3479099956230698),
            Value::Array(vec![bulk("13.36"), bulk("38.11")]),
        ]);
        let r = GeoSearchResult::from_value(v).unwrap();
        assert_eq!(r.dist, Some(190.44));
        assert_eq!(r.hash, Some(3479099956230698));
        assert_eq!(r.coord, Some((13.36, 38.11)));
        let bare = GeoSearchResult::from_value(bulk("x")).unwrap();
        assert_eq!((bare.dist, bare.coord), (None, None));
    }

    #[test]
    fn options_encode_in_each_command_order() {
        let o = GeoSearchOptions::default().desc().count_any(2);
        let mut search = Cmd::from_args("X");
        o.write_search(&mut search);
        let mut radius = Cmd::from_args("X");
        o.write_radius(&mut radius);
        let words = |c: &Cmd| c.args().skip(1).map(<[u8]>::to_vec).collect::<Vec<_>>();
        assert_eq!(words(&search), [&b"DESC"[..], b"COUNT", b"2", b"ANY"]);
        assert_eq!(words(&radius), [&b"COUNT"[..], b"2", b"ANY", b"DESC"]);
    }
}
