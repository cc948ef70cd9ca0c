//! Response callbacks: the reference client's `RESPONSE_CALLBACKS` and
//! `set_response_callback`, as a table from command name to a function on the reply.
//!
//! Typed command methods convert replies through [`FromValue`](crate::FromValue): that
//! conversion *is* their default callback. The table here serves two other purposes:
//! - the dynamic path (`execute_command`, pipeline results as values) applies the default
//!   callback of the command it recognises, so `HGETALL` gives a map over RESP2 as over
//!   RESP3 and `SET` gives a boolean;
//! - a per-client override replaces the default for a command on every path, typed
//!   methods included (the override's output is then converted to the method's type).
//!
//! A callback sees the [`Cmd`] it answers, so options such as `WITHSCORES` reach it.

use crate::{Cmd, FromValueError};
use resp_proto::Value;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// A function from a command's raw reply to the value callers see.
pub type ResponseCallback = Arc<dyn Fn(Value, &Cmd) -> Result<Value, FromValueError> + Send + Sync>;

/// A table of response callbacks keyed by upper-case command name (`"HGETALL"`, or
/// `"CONFIG GET"` for a subcommand).
#[derive(Clone, Default)]
pub struct Callbacks {
    map: HashMap<String, ResponseCallback>,
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
            if let Some(cb) = self.map.get(cmd.name()) {
                return Some(cb);
            }
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

fn default_table() -> Callbacks {
    let mut t = Callbacks::new();
    for name in [
        "SET", "MSET", "RENAME", "FLUSHDB", "FLUSHALL", "SELECT", "SETEX", "PSETEX", "LSET",
        "LTRIM", "HMSET",
    ] {
        t.set(name, ok_to_bool);
    }
    for name in ["HGETALL", "CONFIG GET"] {
        t.set(name, pairs_to_map);
    }
    t
}
