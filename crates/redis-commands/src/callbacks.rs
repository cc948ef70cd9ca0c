//! Response callbacks: redis-py 2.7.6's `RESPONSE_CALLBACKS` and
//! `set_response_callback`, as a table from command name to a function on the reply.
//!
//! Typed command methods convert replies through [`FromValue`]: that
//! conversion *is* their default callback. The table here serves two other purposes:
//! - the dynamic path (`execute_command`, pipeline results as values) applies the default
//!   callback of the command it recognises, so `HGETALL` gives a map over RESP2 as over
//!   RESP3 and `SET` gives a boolean;
//! - a per-client override replaces the default for a command on every path, typed
//!   methods included (the override's output is then converted to the method's type).
//!
//! A callback sees the [`Cmd`] it answers, so options such as `WITHSCORES` reach it.

use crate::{ClientInfo, ClusterInfo, Cmd, FromValue, FromValueError, Info, InfoValue};
use crate::{ServerTime, SlowlogEntry};
use bytes::Bytes;
use resp_proto::Value;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// A function from a command's raw reply to the value callers see.
pub type ResponseCallback = Arc<dyn Fn(Value, &Cmd) -> Result<Value, FromValueError> + Send + Sync>;

/// A table of response callbacks keyed by upper-case command name (`"HGETALL"`, or
/// `"CONFIG GET"` for a subcommand).
#[derive(Clone, Default)]
pub struct Callbacks {
    map: HashMap<String, ResponseCallback, BuildHasherDefault<Fnv>>,
}

impl fmt::Debug for Callbacks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<_> = self.map.keys().collect();
        names.sort();
        f.debug_struct("Callbacks")
            .field("commands", &names)
            .finish()
    }
}

impl Callbacks {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the callback for `command` (case-insensitive), replacing any previous one.
    pub fn set<F>(&mut self, command: &str, callback: F)
    where
        F: Fn(Value, &Cmd) -> Result<Value, FromValueError> + Send + Sync + 'static,
    {
        self.map
            .insert(command.to_ascii_uppercase(), Arc::new(callback));
    }

    /// True when no callback is set (the common case, checked before any lookup).
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The callback for `cmd`, looked up by its declared name, then by its first argument
    /// together with its second (a subcommand), then by its first argument alone.
    pub fn get(&self, cmd: &Cmd) -> Option<&ResponseCallback> {
        if self.map.is_empty() {
            return None;
        }
        if !cmd.name().is_empty() {
            // A declared command's name already holds its subcommand ("CONFIG GET"), so
            // nothing else can match: no need to look at (and allocate for) the arguments.
            // One built by hand (`Cmd::new("config get")`) may be in any case.
            let name = cmd.name();
            if name.bytes().any(|b| b.is_ascii_lowercase()) {
                return self.map.get(&name.to_ascii_uppercase());
            }
            return self.map.get(name);
        }
        let mut args = cmd.args();
        let first = String::from_utf8_lossy(args.next()?).to_ascii_uppercase();
        if let Some(second) = args.next() {
            let both = format!(
                "{first} {}",
                String::from_utf8_lossy(second).to_ascii_uppercase()
            );
            if let Some(cb) = self.map.get(&both) {
                return Some(cb);
            }
        }
        self.map.get(&first)
    }

    /// Applies the callback for `cmd` to `v`, or returns `v` unchanged if there is none.
    ///
    /// # Errors
    /// Whatever the callback returns.
    pub fn apply(&self, cmd: &Cmd, v: Value) -> Result<Value, FromValueError> {
        match self.get(cmd) {
            Some(cb) => cb(v, cmd),
            None => Ok(v),
        }
    }

    /// The default callbacks of the dynamic path (see the [module docs](self)).
    pub fn defaults() -> &'static Callbacks {
        static DEFAULTS: std::sync::OnceLock<Callbacks> = std::sync::OnceLock::new();
        DEFAULTS.get_or_init(default_table)
    }
}

/// FNV-1a: the keys are short command names chosen by this crate or the caller, so a
/// fast non-keyed hash is enough (a lookup happens per reply on the dynamic path).
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// With the `WITHSCORES` option, the reply is member/score pairs: a RESP2 flat array with
/// scores as strings, or RESP3 pairs with doubles. Both become an array of
/// `[member, double]` pairs; without the option the reply is left as it is.
fn with_scores(v: Value, cmd: &Cmd) -> Result<Value, FromValueError> {
    if !has_withscores_option(cmd) {
        return Ok(v);
    }
    let pairs = crate::pairs("member/score pairs", v)?;
    let pairs = pairs
        .into_iter()
        .map(|(member, score)| {
            Ok(Value::Array(vec![
                member,
                Value::Double(f64::from_value(score)?),
            ]))
        })
        .collect::<Result<Vec<_>, FromValueError>>()?;
    Ok(Value::Array(pairs))
}

/// A float sent as a bulk string (RESP2) becomes a double, as RESP3 sends it; nil stays
/// nil (ZSCORE of a missing member). The reference's `float` and `float_or_none`.
fn to_double(v: Value, _: &Cmd) -> Result<Value, FromValueError> {
    match v {
        Value::BulkString(_) | Value::SimpleString(_) | Value::Integer(_) => {
            f64::from_value(v).map(Value::Double)
        }
        other => Ok(other),
    }
}

/// True when `WITHSCORES` is among `cmd`'s options, that is past its positional arguments
/// (keys, numkeys, bounds, count), so a key or bound that happens to be named `withscores`
/// (`ZRANGE withscores 0 -1`) is not taken for the option. The positions come from the
/// arguments themselves, since commands from the dynamic path record no key positions.
fn has_withscores_option(cmd: &Cmd) -> bool {
    let mut args = cmd.args();
    let Some(name) = args.next() else {
        return false;
    };
    let positional = if name.eq_ignore_ascii_case(b"ZRANDMEMBER") {
        // ZRANDMEMBER key count WITHSCORES
        2
    } else if [&b"ZUNION"[..], b"ZINTER", b"ZDIFF"]
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n))
    {
        // Z… numkeys key [key …] options
        let Some(numkeys) = args.next() else {
            return false;
        };
        match std::str::from_utf8(numkeys)
            .ok()
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) => n,
            None => return false,
        }
    } else {
        // ZRANGE, ZRANGEBYSCORE, ZREVRANGE, ZREVRANGEBYSCORE: key start stop options
        3
    };
    args.skip(positional)
        .any(|a| a.eq_ignore_ascii_case(b"WITHSCORES"))
}

/// `OK` becomes `true`, nil becomes `false` (SET with NX/XX that did not write).
fn ok_to_bool(v: Value, _: &Cmd) -> Result<Value, FromValueError> {
    Ok(match v {
        Value::SimpleString(_) => Value::Boolean(true),
        Value::Nil => Value::Boolean(false),
        other => other,
    })
}

/// A RESP2 flat array of pairs becomes a map, as RESP3 sends it.
fn pairs_to_map(v: Value, _: &Cmd) -> Result<Value, FromValueError> {
    match v {
        Value::Array(_) => Ok(Value::Map(crate::pairs("map", v)?)),
        other => Ok(other),
    }
}

/// INFO's text becomes a map of sections, each a map of typed values.
fn info_to_map(v: Value, _: &Cmd) -> Result<Value, FromValueError> {
    fn to_value(v: InfoValue) -> Value {
        match v {
            InfoValue::Int(n) => Value::Integer(n),
            InfoValue::Float(x) => Value::Double(x),
            InfoValue::Fields(f) => Value::Map(
                f.into_iter()
                    .map(|(k, v)| (Value::BulkString(k.into()), to_value(v)))
                    .collect(),
            ),
            // Unknown variants (the enum is non-exhaustive) keep their text form.
            InfoValue::Text(s) => Value::BulkString(s.into()),
        }
    }
    let info = Info::from_value(v)?;
    Ok(Value::Map(
        info.sections
            .into_iter()
            .map(|(name, values)| {
                (
                    Value::BulkString(name.into()),
                    to_value(InfoValue::Fields(values)),
                )
            })
            .collect(),
    ))
}

fn client_to_map(c: ClientInfo) -> Value {
    Value::Map(
        c.fields
            .into_iter()
            .map(|(k, v)| (Value::BulkString(k.into()), Value::BulkString(v.into())))
            .collect(),
    )
}

/// CLIENT LIST's lines become a list of maps.
fn client_list(v: Value, _: &Cmd) -> Result<Value, FromValueError> {
    Ok(Value::Array(
        Vec::<ClientInfo>::from_value(v)?
            .into_iter()
            .map(client_to_map)
            .collect(),
    ))
}

/// CLIENT INFO's line becomes a map.
fn client_info(v: Value, _: &Cmd) -> Result<Value, FromValueError> {
    Ok(client_to_map(ClientInfo::from_value(v)?))
}

/// TIME's two numeric strings become integers.
fn time(v: Value, _: &Cmd) -> Result<Value, FromValueError> {
    let t = ServerTime::from_value(v)?;
    Ok(Value::Array(vec![
        Value::Integer(i64::try_from(t.secs).unwrap_or(i64::MAX)),
        Value::Integer(i64::try_from(t.micros).unwrap_or(i64::MAX)),
    ]))
}

/// Each SLOWLOG GET entry becomes a map with redis-py 2.7.6's names.
fn slowlog_get(v: Value, _: &Cmd) -> Result<Value, FromValueError> {
    let entries = Vec::<SlowlogEntry>::from_value(v)?;
    let text = |s: &str| Value::BulkString(Bytes::copy_from_slice(s.as_bytes()));
    Ok(Value::Array(
        entries
            .into_iter()
            .map(|e| {
                Value::Map(vec![
                    (text("id"), Value::Integer(e.id)),
                    (text("start_time"), Value::Integer(e.timestamp)),
                    (text("duration"), Value::Integer(e.duration_micros)),
                    (
                        text("command"),
                        Value::Array(e.args.into_iter().map(Value::BulkString).collect()),
                    ),
                    (text("client_addr"), text(&e.client_addr)),
                    (text("client_name"), text(&e.client_name)),
                ])
            })
            .collect(),
    ))
}

/// CLUSTER INFO's lines become a map.
fn cluster_info(v: Value, _: &Cmd) -> Result<Value, FromValueError> {
    Ok(Value::Map(
        ClusterInfo::from_value(v)?
            .fields
            .into_iter()
            .map(|(k, v)| (Value::BulkString(k.into()), Value::BulkString(v.into())))
            .collect(),
    ))
}

/// SCRIPT EXISTS's integers become booleans.
fn script_exists(v: Value, _: &Cmd) -> Result<Value, FromValueError> {
    Ok(Value::Array(
        Vec::<bool>::from_value(v)?
            .into_iter()
            .map(Value::Boolean)
            .collect(),
    ))
}

fn default_table() -> Callbacks {
    let mut t = Callbacks::new();
    for name in [
        "SET",
        "MSET",
        "RENAME",
        "FLUSHDB",
        "FLUSHALL",
        "SELECT",
        "SETEX",
        "PSETEX",
        "LSET",
        "LTRIM",
        "HMSET",
        "CONFIG SET",
        "CONFIG RESETSTAT",
        "CONFIG REWRITE",
        "CLIENT SETNAME",
        "SLOWLOG RESET",
        "SAVE",
        "SWAPDB",
        "SCRIPT FLUSH",
        "SCRIPT KILL",
        "ACL SETUSER",
        "REPLICAOF",
        "SLAVEOF",
    ] {
        t.set(name, ok_to_bool);
    }
    for name in [
        "HGETALL",
        "CONFIG GET",
        "MEMORY STATS",
        "ACL GETUSER",
        "FUNCTION STATS",
        "COMMAND DOCS",
        "CLIENT TRACKINGINFO",
        "PUBSUB NUMSUB",
        "PUBSUB SHARDNUMSUB",
    ] {
        t.set(name, pairs_to_map);
    }
    t.set("INFO", info_to_map);
    t.set("CLIENT LIST", client_list);
    t.set("CLIENT INFO", client_info);
    t.set("TIME", time);
    t.set("SLOWLOG GET", slowlog_get);
    t.set("CLUSTER INFO", cluster_info);
    t.set("SCRIPT EXISTS", script_exists);
    for name in ["ZINCRBY", "ZSCORE", "INCRBYFLOAT", "HINCRBYFLOAT"] {
        t.set(name, to_double);
    }
    for name in [
        "ZRANGE",
        "ZRANGEBYSCORE",
        "ZREVRANGE",
        "ZREVRANGEBYSCORE",
        "ZUNION",
        "ZINTER",
        "ZDIFF",
        "ZRANDMEMBER",
    ] {
        t.set(name, with_scores);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(args: &[&str], v: Value) -> Value {
        let cmd = Cmd::from_args(args);
        Callbacks::defaults().apply(&cmd, v).unwrap()
    }

    #[test]
    fn withscores_reaches_the_callback() {
        let bulk = |s: &str| Value::BulkString(Bytes::copy_from_slice(s.as_bytes()));
        let resp2 = Value::Array(vec![bulk("a"), bulk("1.5"), bulk("b"), bulk("2")]);
        let resp3 = Value::Array(vec![
            Value::Array(vec![bulk("a"), Value::Double(1.5)]),
            Value::Array(vec![bulk("b"), Value::Double(2.0)]),
        ]);
        let args = ["zrange", "z", "0", "-1", "withscores"];
        assert_eq!(apply(&args, resp2), apply(&args, resp3.clone()));
        assert_eq!(apply(&args, resp3.clone()), resp3);
        // Without the option the members are left alone.
        let plain = Value::Array(vec![bulk("a"), bulk("b")]);
        assert_eq!(apply(&["zrange", "z", "0", "-1"], plain.clone()), plain);
    }

    #[test]
    fn withscores_counts_only_as_an_option() {
        let bulk = |s: &str| Value::BulkString(Bytes::copy_from_slice(s.as_bytes()));
        let plain = Value::Array(vec![bulk("a"), bulk("b")]);
        for args in [
            &["ZRANGE", "withscores", "0", "-1"][..],
            &[
                "zrangebyscore",
                "WithScores",
                "-inf",
                "+inf",
                "LIMIT",
                "0",
                "5",
            ],
            &["ZRANDMEMBER", "withscores", "2"],
            &["ZUNION", "2", "withscores", "other"],
            &["ZDIFF", "1", "WITHSCORES"],
            &["ZINTER", "x", "WITHSCORES"],
        ] {
            assert_eq!(apply(args, plain.clone()), plain, "{args:?}");
        }
        let pairs = Value::Array(vec![Value::Array(vec![bulk("a"), Value::Double(1.0)])]);
        let flat = Value::Array(vec![bulk("a"), bulk("1")]);
        for args in [
            &["ZRANGE", "withscores", "0", "-1", "WITHSCORES"][..],
            &["ZRANDMEMBER", "withscores", "2", "withscores"],
            &[
                "ZUNION",
                "2",
                "withscores",
                "b",
                "WEIGHTS",
                "1",
                "2",
                "WITHSCORES",
            ],
            &[
                "ZREVRANGEBYSCORE",
                "k",
                "+inf",
                "-inf",
                "WITHSCORES",
                "LIMIT",
                "0",
                "1",
            ],
        ] {
            assert_eq!(apply(args, flat.clone()), pairs, "{args:?}");
        }
    }

    #[test]
    fn info_becomes_sections() {
        let v = apply(
            &["info"],
            Value::BulkString("# Clients\r\nconnected_clients:2\r\n".into()),
        );
        let Value::Map(sections) = v else {
            panic!("not a map: {v:?}")
        };
        assert_eq!(sections[0].0, Value::BulkString("clients".into()));
        assert_eq!(
            sections[0].1,
            Value::Map(vec![(
                Value::BulkString("connected_clients".into()),
                Value::Integer(2)
            )])
        );
    }

    #[test]
    fn subcommand_callbacks_apply() {
        let v = apply(
            &["time"],
            Value::Array(vec![
                Value::BulkString("10".into()),
                Value::BulkString("5".into()),
            ]),
        );
        assert_eq!(v, Value::Array(vec![Value::Integer(10), Value::Integer(5)]));
        let v = apply(
            &["script", "exists", "x"],
            Value::Array(vec![Value::Integer(1)]),
        );
        assert_eq!(v, Value::Array(vec![Value::Boolean(true)]));
        let v = apply(
            &["Config", "set", "a", "b"],
            Value::SimpleString("OK".into()),
        );
        assert_eq!(v, Value::Boolean(true));
    }

    #[test]
    fn a_command_named_by_hand_finds_its_callback_in_any_case() {
        let ok = || Value::SimpleString("OK".into());
        for name in ["CONFIG SET", "config set", "Config Set"] {
            let mut cmd = Cmd::new(name);
            cmd.arg("a").arg("b");
            assert_eq!(
                Callbacks::defaults().apply(&cmd, ok()).unwrap(),
                Value::Boolean(true),
                "{name}"
            );
        }
    }
}
