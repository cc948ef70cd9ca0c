//! Replies and options of server, connection and pub/sub commands: INFO, CLIENT LIST,
//! TIME, SLOWLOG, ROLE, COMMAND, LATENCY, and the option enums they take.

use crate::{pairs, Cmd, FromValue, FromValueError, ToArgs};
use bytes::Bytes;
use resp_proto::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// The text of a bulk, simple or verbatim string reply (lossy for non-UTF-8 bytes, which
/// server-generated text does not contain).
pub(crate) fn reply_text(expected: &'static str, v: Value) -> Result<String, FromValueError> {
    match v.without_attributes() {
        Value::BulkString(b) | Value::SimpleString(b) | Value::Verbatim { text: b, .. } => {
            Ok(String::from_utf8_lossy(&b).into_owned())
        }
        other => Err(FromValueError::mismatch(expected, &other)),
    }
}

/// The elements of an array or set reply.
pub(crate) fn reply_items(expected: &'static str, v: Value) -> Result<Vec<Value>, FromValueError> {
    match v.without_attributes() {
        Value::Array(items) | Value::Set(items) => Ok(items),
        other => Err(FromValueError::mismatch(expected, &other)),
    }
}

/// Whether FLUSHDB, FLUSHALL, SCRIPT FLUSH and FUNCTION FLUSH free memory in the
/// background or before replying.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FlushMode {
    /// `ASYNC`: reply at once, free in the background.
    Async,
    /// `SYNC`: free before replying.
    Sync,
}

impl ToArgs for FlushMode {
    fn write_args(&self, cmd: &mut Cmd) {
        cmd.arg(match self {
            FlushMode::Async => "ASYNC",
            FlushMode::Sync => "SYNC",
        });
    }
}

/// The flush mode of SCRIPT FLUSH (the same words as FLUSHALL's).
pub type ScriptFlushMode = FlushMode;

/// An on/off switch (CLIENT NO-EVICT, CLIENT TRACKING, CLIENT CACHING).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Toggle {
    /// Turn it on.
    On,
    /// Turn it off.
    Off,
}

impl ToArgs for Toggle {
    fn write_args(&self, cmd: &mut Cmd) {
        cmd.arg(match self {
            Toggle::On => "ON",
            Toggle::Off => "OFF",
        });
    }
}

/// A value of INFO: numbers typed, `k=v,…` lists (keyspace, commandstats) as fields.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum InfoValue {
    /// An integer (`connected_clients:1`).
    Int(i64),
    /// A decimal (`mem_fragmentation_ratio:1.5`).
    Float(f64),
    /// Anything else (`redis_version:7.0.15`, `used_memory_human:1.02M`).
    Text(String),
    /// A `k=v,k=v` list (`db0:keys=1,expires=0,avg_ttl=0`).
    Fields(BTreeMap<String, InfoValue>),
}

impl InfoValue {
    /// Parses one value as redis-py 2.7.6 does: a `k=v,…` list becomes fields, a
    /// number becomes a number, anything else stays text.
    pub fn parse(text: &str) -> InfoValue {
        if text.contains(',') || text.contains('=') {
            let mut fields = BTreeMap::new();
            for item in text.split(',') {
                match item.rsplit_once('=') {
                    Some((k, v)) => {
                        fields.insert(k.to_owned(), InfoValue::parse(v));
                    }
                    None => return InfoValue::Text(text.to_owned()),
                }
            }
            return InfoValue::Fields(fields);
        }
        let numeric = text
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_digit() || b == b'-');
        if numeric {
            if let Ok(n) = text.parse() {
                return InfoValue::Int(n);
            }
            if let Ok(x) = text.parse() {
                return InfoValue::Float(x);
            }
        }
        InfoValue::Text(text.to_owned())
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            InfoValue::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// The number, integer or decimal.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            InfoValue::Int(n) => Some(*n as f64),
            InfoValue::Float(x) => Some(*x),
            _ => None,
        }
    }

    /// The text, if this is text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            InfoValue::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The fields, if this is a `k=v,…` list.
    pub fn fields(&self) -> Option<&BTreeMap<String, InfoValue>> {
        match self {
            InfoValue::Fields(f) => Some(f),
            _ => None,
        }
    }
}

/// The reply of INFO: sections (lower-case names: `server`, `clients`, `keyspace` …) of
/// typed values.
///
/// ```
/// # use redis_commands as redis_client;
/// use redis_client::Info;
/// let info = Info::parse("# Server\r\nredis_version:7.0.15\r\nuptime_in_seconds:12\r\n\r\n# Keyspace\r\ndb0:keys=2,expires=0\r\n");
/// assert_eq!(info.get("uptime_in_seconds").and_then(|v| v.as_int()), Some(12));
/// assert_eq!(info.section("keyspace").unwrap()["db0"].fields().unwrap()["keys"].as_int(), Some(2));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Info {
    /// Section name (lower case) to its values.
    pub sections: BTreeMap<String, BTreeMap<String, InfoValue>>,
}

impl Info {
    /// Parses INFO's text.
    pub fn parse(text: &str) -> Info {
        let mut info = Info::default();
        let mut section = String::new();
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            if let Some(name) = line.strip_prefix('#') {
                section = name.trim().to_ascii_lowercase();
                info.sections.entry(section.clone()).or_default();
            } else if let Some((k, v)) = line.split_once(':') {
                info.sections
                    .entry(section.clone())
                    .or_default()
                    .insert(k.to_owned(), InfoValue::parse(v));
            }
        }
        info
    }

    /// The values of one section (case-insensitive name).
    pub fn section(&self, name: &str) -> Option<&BTreeMap<String, InfoValue>> {
        self.sections.get(&name.to_ascii_lowercase())
    }

    /// A value by name, from whichever section holds it.
    pub fn get(&self, key: &str) -> Option<&InfoValue> {
        self.sections.values().find_map(|s| s.get(key))
    }
}

impl FromValue for Info {
    fn from_value(v: Value) -> Result<Self, FromValueError> {
        Ok(Info::parse(&reply_text("INFO text", v)?))
    }
}

/// One client of CLIENT LIST or CLIENT INFO: its `name=value` fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// Every field as the server wrote it (`id`, `addr`, `name`, `db`, `cmd`, `flags` …).
    pub fields: BTreeMap<String, String>,
}

impl ClientInfo {
    /// Parses one line of CLIENT LIST.
    pub fn parse(line: &str) -> ClientInfo {
        let fields = line
            .split_ascii_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        ClientInfo { fields }
    }

    /// A field by name.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(String::as_str)
    }

    /// The client's id.
    pub fn id(&self) -> Option<u64> {
        self.get("id")?.parse().ok()
    }

    /// The client's address (`ip:port`).
    pub fn addr(&self) -> Option<&str> {
        self.get("addr")
    }

    /// The client's name (empty when none was set).
    pub fn name(&self) -> Option<&str> {
        self.get("name")
    }

    /// The selected database.
    pub fn db(&self) -> Option<i64> {
        self.get("db")?.parse().ok()
    }
}

impl FromValue for ClientInfo {
    fn from_value(v: Value) -> Result<Self, FromValueError> {
        Ok(ClientInfo::parse(reply_text("client info", v)?.trim()))
    }

    /// CLIENT LIST: one client per line of a text reply.
    fn vec_from_value(v: Value) -> Result<Vec<Self>, FromValueError> {
        Ok(reply_text("client list", v)?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(ClientInfo::parse)
            .collect())
    }
}

/// The reply of TIME: the server's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServerTime {
    /// Seconds since the Unix epoch.
    pub secs: u64,
    /// Microseconds into that second.
    pub micros: u64,
}

impl ServerTime {
    /// The time since the Unix epoch.
    pub fn since_epoch(&self) -> Duration {
        Duration::from_secs(self.secs) + Duration::from_micros(self.micros)
    }
}

impl FromValue for ServerTime {
    fn from_value(v: Value) -> Result<Self, FromValueError> {
        let (secs, micros) = <(u64, u64)>::from_value(v)?;
        Ok(ServerTime { secs, micros })
    }
}

/// One entry of SLOWLOG GET.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlowlogEntry {
    /// Its unique, increasing id.
    pub id: i64,
    /// When the command ran, in Unix seconds.
    pub timestamp: i64,
    /// How long it ran, in microseconds.
    pub duration_micros: i64,
    /// The command and its arguments (possibly shortened by the server).
    pub args: Vec<Bytes>,
    /// The client's address (`ip:port`).
    pub client_addr: String,
    /// The client's name (empty when none was set).
    pub client_name: String,
}

impl FromValue for SlowlogEntry {
    fn from_value(v: Value) -> Result<Self, FromValueError> {
        let mut it = reply_items("slowlog entry", v)?.into_iter();
        let mut next = || it.next().unwrap_or(Value::Nil);
        Ok(SlowlogEntry {
            id: i64::from_value(next())?,
            timestamp: i64::from_value(next())?,
            duration_micros: i64::from_value(next())?,
            args: Vec::from_value(next())?,
            client_addr: Option::<String>::from_value(next())?.unwrap_or_default(),
            client_name: Option::<String>::from_value(next())?.unwrap_or_default(),
        })
    }
}

/// A replica as a primary's ROLE lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaInfo {
    /// Its IP address.
    pub ip: String,
    /// Its port.
    pub port: u16,
    /// The replication offset it acknowledged.
    pub offset: i64,
}

/// The reply of ROLE.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Role {
    /// A primary, with its replication offset and its replicas.
    Master {
        /// The primary's replication offset.
        offset: i64,
        /// The connected replicas.
        replicas: Vec<ReplicaInfo>,
    },
    /// A replica of `host:port`.
    Replica {
        /// The primary's host.
        host: String,
        /// The primary's port.
        port: u16,
        /// `connect`, `connecting`, `sync` or `connected`.
        state: String,
        /// The data received so far, as a replication offset (-1 before the first sync).
        offset: i64,
    },
    /// A Sentinel, with the primaries it monitors.
    Sentinel {
        /// The monitored primaries' names.
        masters: Vec<String>,
    },
}

impl FromValue for Role {
    fn from_value(v: Value) -> Result<Self, FromValueError> {
        let items = reply_items("role", v)?;
        let mut it = items.into_iter();
        let kind = String::from_value(it.next().unwrap_or(Value::Nil))?;
        let mut next = || it.next().unwrap_or(Value::Nil);
        match kind.as_str() {
            "master" => {
                let offset = i64::from_value(next())?;
                let replicas = Vec::<(String, u16, i64)>::from_value(next())?
                    .into_iter()
                    .map(|(ip, port, offset)| ReplicaInfo { ip, port, offset })
                    .collect();
                Ok(Role::Master { offset, replicas })
            }
            "slave" | "replica" => Ok(Role::Replica {
                host: String::from_value(next())?,
                port: u16::from_value(next())?,
                state: String::from_value(next())?,
                offset: i64::from_value(next())?,
            }),
            "sentinel" => Ok(Role::Sentinel {
                masters: Vec::from_value(next())?,
            }),
            _ => Err(FromValueError::Type {
                expected: "role",
                actual: format!("role {kind:?}"),
            }),
        }
    }
}

/// One command as COMMAND and COMMAND INFO describe it.
#[derive(Clone, Debug, PartialEq)]
pub struct CommandDetails {
    /// Lower-case name; `container|sub` for a subcommand.
    pub name: String,
    /// Number of arguments, name included; negative means "at least".
    pub arity: i64,
    /// Flags (`readonly`, `write`, `blocking` …).
    pub flags: Vec<String>,
    /// Position of the first key (0 when none).
    pub first_key: i64,
    /// Position of the last key (negative counts from the end).
    pub last_key: i64,
    /// Step between keys.
    pub step: i64,
    /// ACL categories (`@read` …).
    pub acl_categories: Vec<String>,
    /// Hints for clients (`request_policy:all_nodes` …).
    pub tips: Vec<String>,
    /// Key specifications, as sent.
    pub key_specs: Value,
    /// Its subcommands.
    pub subcommands: Vec<CommandDetails>,
}

impl CommandDetails {
    /// True if the server marks it `readonly`.
    pub fn is_readonly(&self) -> bool {
        self.flags.iter().any(|f| f == "readonly")
    }
}

impl FromValue for CommandDetails {
    fn from_value(v: Value) -> Result<Self, FromValueError> {
        let mut it = reply_items("command details", v)?.into_iter();
        let mut next = || it.next().unwrap_or(Value::Nil);
        Ok(CommandDetails {
            name: String::from_value(next())?,
            arity: i64::from_value(next())?,
            flags: Vec::from_value(next())?,
            first_key: i64::from_value(next())?,
            last_key: i64::from_value(next())?,
            step: i64::from_value(next())?,
            acl_categories: Vec::from_value(next())?,
            tips: Vec::from_value(next())?,
            key_specs: next(),
            subcommands: Vec::from_value(next())?,
        })
    }
}

/// Which commands COMMAND LIST returns.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandListFilter {
    /// Commands of a module (`FILTERBY MODULE name`).
    Module(String),
    /// Commands of an ACL category (`FILTERBY ACLCAT cat`).
    AclCat(String),
    /// Commands whose name matches a glob pattern (`FILTERBY PATTERN p`).
    Pattern(String),
}

impl ToArgs for CommandListFilter {
    fn write_args(&self, cmd: &mut Cmd) {
        cmd.arg("FILTERBY");
        match self {
            CommandListFilter::Module(m) => cmd.arg("MODULE").arg(m),
            CommandListFilter::AclCat(c) => cmd.arg("ACLCAT").arg(c),
            CommandListFilter::Pattern(p) => cmd.arg("PATTERN").arg(p),
        };
    }
}

/// One event of LATENCY LATEST.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LatencyEvent {
    /// The event's name (`command`, `fast-command`, `expire-cycle` …).
    pub name: String,
    /// When its latest spike happened, in Unix seconds.
    pub timestamp: i64,
    /// The latest spike, in milliseconds.
    pub latest_ms: i64,
    /// The largest spike, in milliseconds.
    pub max_ms: i64,
}

impl FromValue for LatencyEvent {
    fn from_value(v: Value) -> Result<Self, FromValueError> {
        let (name, timestamp, latest_ms, max_ms) = FromValue::from_value(v)?;
        Ok(LatencyEvent {
            name,
            timestamp,
            latest_ms,
            max_ms,
        })
    }
}

/// Kinds of client, for CLIENT LIST TYPE and CLIENT KILL TYPE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClientType {
    /// Ordinary clients.
    Normal,
    /// The primary this server replicates.
    Master,
    /// Replicas of this server.
    Replica,
    /// Clients in pub/sub mode.
    PubSub,
}

impl ToArgs for ClientType {
    fn write_args(&self, cmd: &mut Cmd) {
        cmd.arg(match self {
            ClientType::Normal => "normal",
            ClientType::Master => "master",
            ClientType::Replica => "replica",
            ClientType::PubSub => "pubsub",
        });
    }
}

/// Which clients CLIENT KILL disconnects; filters combine with AND.
///
/// ```
/// # use redis_commands as redis_client;
/// use redis_client::{ClientKillFilter, ClientType};
/// let filter = ClientKillFilter::new().client_type(ClientType::Normal).skip_me(false);
/// # let _ = filter;
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use = "options do nothing until passed to a command"]
pub struct ClientKillFilter {
    id: Option<u64>,
    client_type: Option<ClientType>,
    user: Option<String>,
    addr: Option<String>,
    laddr: Option<String>,
    skip_me: Option<bool>,
    max_age: Option<u64>,
}

impl ClientKillFilter {
    /// No filter yet (the server requires at least one).
    pub fn new() -> Self {
        Self::default()
    }

    /// The client with this id (`ID`).
    pub fn id(mut self, id: u64) -> Self {
        self.id = Some(id);
        self
    }

    /// Clients of this kind (`TYPE`).
    pub fn client_type(mut self, t: ClientType) -> Self {
        self.client_type = Some(t);
        self
    }

    /// Clients authenticated as `user` (`USER`).
    pub fn user(mut self, user: &str) -> Self {
        self.user = Some(user.to_owned());
        self
    }

    /// The client at `ip:port` (`ADDR`).
    pub fn addr(mut self, addr: &str) -> Self {
        self.addr = Some(addr.to_owned());
        self
    }

    /// Clients connected to this local `ip:port` (`LADDR`).
    pub fn laddr(mut self, laddr: &str) -> Self {
        self.laddr = Some(laddr.to_owned());
        self
    }

    /// Whether the calling client is spared (`SKIPME`, the server's default is yes).
    pub fn skip_me(mut self, skip: bool) -> Self {
        self.skip_me = Some(skip);
        self
    }

    /// Clients connected for longer than `age` (`MAXAGE`, sent in whole seconds, rounded
    /// up; Redis 7.4).
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = Some(crate::time::secs(age));
        self
    }
}

impl ToArgs for ClientKillFilter {
    fn write_args(&self, cmd: &mut Cmd) {
        if let Some(id) = self.id {
            cmd.arg("ID").arg(id);
        }
        if let Some(t) = self.client_type {
            cmd.arg("TYPE").arg(t);
        }
        if let Some(u) = &self.user {
            cmd.arg("USER").arg(u);
        }
        if let Some(a) = &self.addr {
            cmd.arg("ADDR").arg(a);
        }
        if let Some(a) = &self.laddr {
            cmd.arg("LADDR").arg(a);
        }
        if let Some(s) = self.skip_me {
            cmd.arg("SKIPME").arg(if s { "yes" } else { "no" });
        }
        if let Some(m) = self.max_age {
            cmd.arg("MAXAGE").arg(m);
        }
    }
}

/// What CLIENT PAUSE holds back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PauseMode {
    /// Every command (`ALL`).
    All,
    /// Only writes (`WRITE`).
    Write,
}

impl ToArgs for PauseMode {
    fn write_args(&self, cmd: &mut Cmd) {
        cmd.arg(match self {
            PauseMode::All => "ALL",
            PauseMode::Write => "WRITE",
        });
    }
}

/// How CLIENT UNBLOCK ends a blocked call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnblockMode {
    /// As if its timeout had passed (`TIMEOUT`).
    Timeout,
    /// With an `UNBLOCKED` error (`ERROR`).
    Error,
}

impl ToArgs for UnblockMode {
    fn write_args(&self, cmd: &mut Cmd) {
        cmd.arg(match self {
            UnblockMode::Timeout => "TIMEOUT",
            UnblockMode::Error => "ERROR",
        });
    }
}

/// What CLIENT REPLY asks of the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReplyMode {
    /// Reply to every command (`ON`).
    On,
    /// Reply to nothing (`OFF`).
    Off,
    /// Skip the reply to the next command (`SKIP`).
    Skip,
}

impl ToArgs for ReplyMode {
    fn write_args(&self, cmd: &mut Cmd) {
        cmd.arg(match self {
            ReplyMode::On => "ON",
            ReplyMode::Off => "OFF",
            ReplyMode::Skip => "SKIP",
        });
    }
}

/// Options of CLIENT TRACKING ON.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use = "options do nothing until passed to a command"]
pub struct TrackingOptions {
    redirect: Option<u64>,
    prefixes: Vec<Bytes>,
    bcast: bool,
    optin: bool,
    optout: bool,
    noloop: bool,
}

impl TrackingOptions {
    /// No options: track the keys this connection reads.
    pub fn new() -> Self {
        Self::default()
    }

    /// Send invalidations to the client with this id (`REDIRECT`).
    pub fn redirect(mut self, client_id: u64) -> Self {
        self.redirect = Some(client_id);
        self
    }

    /// Track keys starting with `prefix` (`PREFIX`, with broadcasting).
    pub fn prefix(mut self, prefix: impl Into<Bytes>) -> Self {
        self.prefixes.push(prefix.into());
        self
    }

    /// Broadcasting mode (`BCAST`).
    pub fn bcast(mut self) -> Self {
        self.bcast = true;
        self
    }

    /// Track only after CLIENT CACHING YES (`OPTIN`).
    pub fn optin(mut self) -> Self {
        self.optin = true;
        self
    }

    /// Track except after CLIENT CACHING NO (`OPTOUT`).
    pub fn optout(mut self) -> Self {
        self.optout = true;
        self
    }

    /// No invalidations for this connection's own writes (`NOLOOP`).
    pub fn noloop(mut self) -> Self {
        self.noloop = true;
        self
    }
}

impl ToArgs for TrackingOptions {
    fn write_args(&self, cmd: &mut Cmd) {
        if let Some(id) = self.redirect {
            cmd.arg("REDIRECT").arg(id);
        }
        for p in &self.prefixes {
            cmd.arg("PREFIX").arg(p);
        }
        for (on, word) in [
            (self.bcast, "BCAST"),
            (self.optin, "OPTIN"),
            (self.optout, "OPTOUT"),
            (self.noloop, "NOLOOP"),
        ] {
            if on {
                cmd.arg(word);
            }
        }
    }
}

/// Options of SHUTDOWN.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[must_use = "options do nothing until passed to a command"]
pub struct ShutdownOptions {
    save: Option<bool>,
    now: bool,
    force: bool,
    abort: bool,
}

impl ShutdownOptions {
    /// The server's defaults (save if save points are configured).
    pub fn new() -> Self {
        Self::default()
    }

    /// Do not save (`NOSAVE`).
    pub fn nosave(mut self) -> Self {
        self.save = Some(false);
        self
    }

    /// Save even without save points (`SAVE`).
    pub fn save(mut self) -> Self {
        self.save = Some(true);
        self
    }

    /// Do not wait for lagging replicas (`NOW`).
    pub fn now(mut self) -> Self {
        self.now = true;
        self
    }

    /// Ignore errors that would stop the shutdown (`FORCE`).
    pub fn force(mut self) -> Self {
        self.force = true;
        self
    }

    /// Cancel a shutdown in progress (`ABORT`).
    pub fn abort(mut self) -> Self {
        self.abort = true;
        self
    }
}

impl ToArgs for ShutdownOptions {
    fn write_args(&self, cmd: &mut Cmd) {
        match self.save {
            Some(true) => {
                cmd.arg("SAVE");
            }
            Some(false) => {
                cmd.arg("NOSAVE");
            }
            None => {}
        }
        for (on, word) in [
            (self.now, "NOW"),
            (self.force, "FORCE"),
            (self.abort, "ABORT"),
        ] {
            if on {
                cmd.arg(word);
            }
        }
    }
}

/// Options of FAILOVER.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use = "options do nothing until passed to a command"]
pub struct FailoverOptions {
    to: Option<(String, u16, bool)>,
    abort: bool,
    timeout_ms: Option<u64>,
}

impl FailoverOptions {
    /// Fail over to any replica.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fail over to the replica at `host:port` (`TO`).
    pub fn to(mut self, host: &str, port: u16) -> Self {
        self.to = Some((host.to_owned(), port, false));
        self
    }

    /// With [`to`](Self::to): do not wait for the replica to catch up (`FORCE`).
    pub fn force(mut self) -> Self {
        if let Some(to) = &mut self.to {
            to.2 = true;
        }
        self
    }

    /// Cancel a failover in progress (`ABORT`).
    pub fn abort(mut self) -> Self {
        self.abort = true;
        self
    }

    /// Give up after this long (`TIMEOUT`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout_ms = Some(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
        self
    }
}

impl ToArgs for FailoverOptions {
    fn write_args(&self, cmd: &mut Cmd) {
        if let Some((host, port, force)) = &self.to {
            cmd.arg("TO").arg(host).arg(*port);
            if *force {
                cmd.arg("FORCE");
            }
        }
        if self.abort {
            cmd.arg("ABORT");
        }
        if let Some(ms) = self.timeout_ms {
            cmd.arg("TIMEOUT").arg(ms);
        }
    }
}

/// A map reply whose keys are text and whose values are left as sent (MEMORY STATS, ACL
/// GETUSER, FUNCTION STATS …): RESP2 flat arrays and RESP3 maps alike.
pub type ValueMap = std::collections::HashMap<String, Value>;

/// Converts a RESP2 flat array or RESP3 map into a [`ValueMap`] (kept for callers that
/// hold a raw `Value`).
///
/// # Errors
/// When the reply is not map-shaped.
pub fn value_map(v: Value) -> Result<ValueMap, FromValueError> {
    pairs("map", v)?
        .into_iter()
        .map(|(k, v)| Ok((String::from_value(k)?, v)))
        .collect()
}

/// What `DEBUG OBJECT` says about a key, parsed as redis-py 2.7.6's callback does: the
/// reply's `key:value` words (the leading word, `Value`, under `type`), numbers as
/// numbers.
///
/// The fields are not specified and differ between versions and encodings; the common
/// ones have accessors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DebugObject {
    /// Every field, in the order the server sent them.
    pub fields: Vec<(String, DebugValue)>,
}

/// One field of a [`DebugObject`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DebugValue {
    /// A field that is a decimal integer (`refcount`, `serializedlength`, `lru` …).
    Int(i64),
    /// Any other field (`encoding`, the address after `at` …).
    Text(String),
}

impl DebugObject {
    /// The field named `name`.
    pub fn get(&self, name: &str) -> Option<&DebugValue> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// The integer field named `name`.
    pub fn int(&self, name: &str) -> Option<i64> {
        match self.get(name)? {
            DebugValue::Int(n) => Some(*n),
            DebugValue::Text(_) => None,
        }
    }

    /// The field named `name` as text (integers formatted back).
    pub fn text(&self, name: &str) -> Option<String> {
        match self.get(name)? {
            DebugValue::Int(n) => Some(n.to_string()),
            DebugValue::Text(t) => Some(t.clone()),
        }
    }

    /// The value's encoding (`embstr`, `int`, `listpack`, `quicklist` …).
    pub fn encoding(&self) -> Option<String> {
        self.text("encoding")
    }

    /// The value's reference count.
    pub fn refcount(&self) -> Option<i64> {
        self.int("refcount")
    }

    /// The length of the value as `DUMP` would serialize it.
    pub fn serialized_length(&self) -> Option<i64> {
        self.int("serializedlength")
    }

    /// Seconds since the value was last accessed.
    pub fn lru_seconds_idle(&self) -> Option<i64> {
        self.int("lru_seconds_idle")
    }
}

impl FromValue for DebugObject {
    fn from_value(v: Value) -> Result<Self, FromValueError> {
        let text = String::from_value(v)?;
        let mut fields = Vec::new();
        // The first word (`Value`) carries no name; redis-py files it under `type`.
        for (i, word) in text.split_ascii_whitespace().enumerate() {
            let (name, value) = match word.split_once(':') {
                Some((k, v)) => (k, v),
                None if i == 0 => ("type", word),
                None => (word, ""),
            };
            let value = match value.parse::<i64>() {
                Ok(n) => DebugValue::Int(n),
                Err(_) => DebugValue::Text(value.to_owned()),
            };
            fields.push((name.to_owned(), value));
        }
        Ok(DebugObject { fields })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_object_fields() {
        use super::{DebugObject, DebugValue};
        use crate::FromValue;
        let reply = resp_proto::Value::SimpleString(
            "Value at:0x7f3b refcount:1 encoding:embstr serializedlength:4 lru:123 \
             lru_seconds_idle:5"
                .into(),
        );
        let d = DebugObject::from_value(reply).unwrap();
        assert_eq!(d.text("type").as_deref(), Some("Value"));
        assert_eq!(d.text("at").as_deref(), Some("0x7f3b"));
        assert_eq!(d.get("refcount"), Some(&DebugValue::Int(1)));
        assert_eq!(d.encoding().as_deref(), Some("embstr"));
        assert_eq!(d.serialized_length(), Some(4));
        assert_eq!(d.int("lru"), Some(123));
        assert_eq!(d.lru_seconds_idle(), Some(5));
        assert_eq!(d.fields.len(), 7);
    }

    use super::*;

    #[test]
    fn info_values_are_typed() {
        assert_eq!(InfoValue::parse("12"), InfoValue::Int(12));
        assert_eq!(InfoValue::parse("1.5"), InfoValue::Float(1.5));
        assert_eq!(InfoValue::parse("7.0.15"), InfoValue::Text("7.0.15".into()));
        assert_eq!(InfoValue::parse("nan"), InfoValue::Text("nan".into()));
        let f = InfoValue::parse("calls=3,usec=10,usec_per_call=3.33");
        let f = f.fields().unwrap();
        assert_eq!(f["calls"], InfoValue::Int(3));
        assert_eq!(f["usec_per_call"], InfoValue::Float(3.33));
    }

    #[test]
    fn client_list_lines() {
        let v = Value::BulkString(Bytes::from_static(
            b"id=3 addr=127.0.0.1:5 name= db=0\nid=4 addr=127.0.0.1:6 name=x db=2\n",
        ));
        let list = Vec::<ClientInfo>::from_value(v).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].id(), Some(4));
        assert_eq!(list[1].name(), Some("x"));
        assert_eq!(list[0].name(), Some(""));
        assert_eq!(list[1].db(), Some(2));
    }

    #[test]
    fn kill_filter_args() {
        let mut c = Cmd::new("CLIENT KILL");
        c.arg(ClientKillFilter::new().id(7).skip_me(false));
        let args: Vec<_> = c.args().collect();
        assert_eq!(
            args,
            vec![&b"CLIENT"[..], b"KILL", b"ID", b"7", b"SKIPME", b"no"]
        );
    }
}
