//! Replies and options of scripting and function commands: FUNCTION LIST's libraries,
//! FUNCTION RESTORE's policy, SCRIPT DEBUG's mode.

use crate::types::server::value_map;
use crate::{Cmd, FromValue, FromValueError, ToArgs};
use resp_proto::Value;

/// A function of a library, as FUNCTION LIST describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionInfo {
    /// Its name.
    pub name: String,
    /// Its description, if the library gave one.
    pub description: Option<String>,
    /// Its flags (`no-writes`, `allow-oom` …).
    pub flags: Vec<String>,
}

impl FromValue for FunctionInfo {
    fn from_value(v: Value) -> Result<Self, FromValueError> {
        let mut m = value_map(v)?;
        let mut take = |k: &str| m.remove(k).unwrap_or(Value::Nil);
        Ok(FunctionInfo {
            name: String::from_value(take("name"))?,
            description: Option::from_value(take("description"))?,
            flags: Vec::from_value(take("flags"))?,
        })
    }
}

/// A library, as FUNCTION LIST describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LibraryInfo {
    /// Its name.
    pub name: String,
    /// Its engine (`LUA`).
    pub engine: String,
    /// Its functions.
    pub functions: Vec<FunctionInfo>,
    /// Its source, when listed `WITHCODE`.
    pub code: Option<String>,
}

impl FromValue for LibraryInfo {
    fn from_value(v: Value) -> Result<Self, FromValueError> {
        let mut m = value_map(v)?;
        let mut take = |k: &str| m.remove(k).unwrap_or(Value::Nil);
        Ok(LibraryInfo {
            name: String::from_value(take("library_name"))?,
            engine: String::from_value(take("engine"))?,
            functions: Vec::from_value(take("functions"))?,
            code: Option::from_value(take("library_code"))?,
        })
    }
}

/// Options of FUNCTION LIST.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use = "options do nothing until passed to a command"]
pub struct FunctionListOptions {
    pattern: Option<String>,
    with_code: bool,
}

impl FunctionListOptions {
    /// Every library, without code.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only libraries whose name matches this glob pattern (`LIBRARYNAME`).
    pub fn library_name(mut self, pattern: &str) -> Self {
        self.pattern = Some(pattern.to_owned());
        self
    }

    /// Include each library's source (`WITHCODE`).
    pub fn with_code(mut self) -> Self {
        self.with_code = true;
        self
    }
}

impl ToArgs for FunctionListOptions {
    fn write_args(&self, cmd: &mut Cmd) {
        if let Some(p) = &self.pattern {
            cmd.arg("LIBRARYNAME").arg(p);
        }
        if self.with_code {
            cmd.arg("WITHCODE");
        }
    }
}

/// What FUNCTION RESTORE does with the libraries already loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RestorePolicy {
    /// Delete them first (`FLUSH`).
    Flush,
    /// Add to them; fail on a name clash (`APPEND`, the default).
    Append,
    /// Add to them, replacing clashing ones (`REPLACE`).
    Replace,
}

impl ToArgs for RestorePolicy {
    fn write_args(&self, cmd: &mut Cmd) {
        cmd.arg(match self {
            RestorePolicy::Flush => "FLUSH",
            RestorePolicy::Append => "APPEND",
            RestorePolicy::Replace => "REPLACE",
        });
    }
}

/// The mode of SCRIPT DEBUG.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScriptDebugMode {
    /// Asynchronous debugging of the next EVAL (`YES`); needs a dedicated connection.
    Yes,
    /// Synchronous, blocking debugging (`SYNC`); needs a dedicated connection.
    Sync,
    /// Debugging off (`NO`).
    No,
}

impl ToArgs for ScriptDebugMode {
    fn write_args(&self, cmd: &mut Cmd) {
        cmd.arg(match self {
            ScriptDebugMode::Yes => "YES",
            ScriptDebugMode::Sync => "SYNC",
            ScriptDebugMode::No => "NO",
        });
    }
}
