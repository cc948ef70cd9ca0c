//! Where a server is and how to talk to it: [`ConnectionInfo`], built in code or from a URL.

use crate::observe::{Metrics, Observe};
use crate::TlsOptions;
use resp_proto::{DecoderKind, Limits};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

/// The server's address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Addr {
    /// A host name or IP address and a port.
    Tcp {
        /// Host name, IPv4 or IPv6 address (without brackets).
        host: String,
        /// TCP port.
        port: u16,
    },
    /// A Unix domain socket path.
    Unix(PathBuf),
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Addr::Tcp { host, port } => write!(f, "{host}:{port}"),
            Addr::Unix(path) => write!(f, "{}", path.display()),
        }
    }
}

/// The protocol version spoken after the handshake: resp-proto's, the one its encoder
/// writes for, so a program using both names one type.
pub use resp_proto::Protocol;

/// Everything needed to open and set up a connection.
///
/// Build one in code or parse a URL:
///
/// ```
/// use redis_conn::{Addr, ConnectionInfo};
/// let info: ConnectionInfo = "redis://:s3cret@localhost:6380/2".parse()?;
/// assert_eq!(info.addr, Addr::Tcp { host: "localhost".into(), port: 6380 });
/// assert_eq!(info.db, 2);
/// assert!(!format!("{info:?}").contains("s3cret"));
/// # Ok::<(), redis_conn::UrlError>(())
/// ```
///
/// Accepted URL forms:
/// - `redis://[[username]:password@]host[:port][/db][?options]`, IPv6 hosts in brackets;
/// - `unix:///path/to/redis.sock[?db=N&password=…&username=…]`, also `redis+unix://`;
/// - `rediss://…`: TLS (with the `tls` feature; refused with an error naming it otherwise).
///
/// Query options: `db`, `username`, `password`, `client_name`, `protocol` (`2`/`3`,
/// `resp2`/`resp3`), `connect_timeout`, `timeout` (read and write), `read_timeout`,
/// `write_timeout` (seconds, fractions allowed), `keepalive` (seconds, 0 for off),
/// `decoder` (`fast`/`reference`); for TLS: `ca_file`, `server_name`, `cert_file` and
/// `key_file` (a client certificate).
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// Where the server is.
    pub addr: Addr,
    /// Database selected after connecting. Default 0 (no SELECT is sent).
    pub db: i64,
    /// ACL username; `None` authenticates as the default user.
    pub username: Option<String>,
    /// Password; `None` sends no AUTH. Never shown by `Debug`.
    pub password: Option<String>,
    /// Name set with `CLIENT SETNAME` after connecting.
    pub client_name: Option<String>,
    /// Bound on connecting and the whole handshake. Default 5 s.
    pub connect_timeout: Option<Duration>,
    /// Bound on waiting for one reply, from when waiting for it starts to its last byte
    /// (bytes trickling in do not extend it); `None` waits forever. Default 10 s, so a
    /// server that stops answering cannot hang a caller that set nothing. Blocking
    /// commands (BLPOP, XREAD BLOCK …) wait their own timeout plus a margin instead.
    pub read_timeout: Option<Duration>,
    /// Bound on writing one request, all of it; `None` waits forever. Default 10 s.
    pub write_timeout: Option<Duration>,
    /// TCP keepalive: probes start after the connection has been idle this long, so a
    /// peer that vanished (a dead host, a dropped NAT mapping) is noticed. `None` leaves
    /// the OS default (usually off). Default `None`.
    pub keepalive: Option<Duration>,
    /// Protocol version. Default RESP2.
    pub protocol: Protocol,
    /// Which reply decoder to use. Default the fast one.
    pub decoder: DecoderKind,
    /// Decoding limits. Default [`Limits::DEFAULT`]. Their `resp3` is not taken from here:
    /// the connection core sets it from the protocol the connection speaks.
    pub limits: Limits,
    /// TLS settings; `None` for a plain connection. Set by `rediss://` URLs. Needs the
    /// `tls` feature.
    pub tls: Option<TlsOptions>,
    /// Observability: the metrics sink and whether spans record the command text
    /// (see [`Observe`]). Default: no sink, no text.
    pub observe: Observe,
    /// `CLIENT TRACKING` set up by every handshake, for client-side caching; `None` (the
    /// default) leaves tracking off. Set by the caching client, not by URLs.
    pub tracking: Option<crate::Tracking>,
    /// Send `READONLY` after connecting, so a cluster replica serves reads of the slots its
    /// primary owns. Default `false`; set by the cluster client for replica connections.
    pub readonly: bool,
}

/// The default read and write timeout: far above any healthy reply (Redis answers in
/// microseconds; a slow command in seconds), short enough that a silent server surfaces
/// as an error rather than a hang.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

impl ConnectionInfo {
    /// Settings for a TCP server at `host:port`, everything else default.
    pub fn tcp(host: impl Into<String>, port: u16) -> Self {
        Self::with_addr(Addr::Tcp {
            host: host.into(),
            port,
        })
    }

    /// Settings for a server listening on the Unix socket at `path`.
    pub fn unix(path: impl Into<PathBuf>) -> Self {
        Self::with_addr(Addr::Unix(path.into()))
    }

    fn with_addr(addr: Addr) -> Self {
        ConnectionInfo {
            addr,
            db: 0,
            username: None,
            password: None,
            client_name: None,
            connect_timeout: Some(Duration::from_secs(5)),
            read_timeout: Some(DEFAULT_TIMEOUT),
            write_timeout: Some(DEFAULT_TIMEOUT),
            keepalive: None,
            protocol: Protocol::Resp2,
            decoder: DecoderKind::Fast,
            limits: Limits::DEFAULT,
            readonly: false,
            tls: None,
            observe: Observe::default(),
            tracking: None,
        }
    }

    /// Parses a `redis://`, `unix://` or `redis+unix://` URL. See the type's docs.
    ///
    /// # Errors
    /// [`UrlError`] naming the part that is wrong.
    pub fn from_url(url: &str) -> Result<Self, UrlError> {
        url::parse(url)
    }

    /// Sets the database number.
    pub fn with_db(mut self, db: i64) -> Self {
        self.db = db;
        self
    }

    /// Sets the password, and the username for an ACL user (`None` for the default user).
    pub fn with_auth(mut self, username: Option<&str>, password: &str) -> Self {
        self.username = username.map(str::to_owned);
        self.password = Some(password.to_owned());
        self
    }

    /// Sets the client name sent with `CLIENT SETNAME`.
    pub fn with_client_name(mut self, name: impl Into<String>) -> Self {
        self.client_name = Some(name.into());
        self
    }

    /// Sets the protocol version.
    pub fn with_protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// Sets the connect (and handshake) timeout.
    pub fn with_connect_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets both the read and the write timeout.
    pub fn with_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.read_timeout = timeout;
        self.write_timeout = timeout;
        self
    }

    /// Sets the read timeout alone.
    pub fn with_read_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// Sets the write timeout alone.
    pub fn with_write_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// Sets the TCP keepalive idle time (see [`ConnectionInfo::keepalive`]).
    pub fn with_keepalive(mut self, idle: Option<Duration>) -> Self {
        self.keepalive = idle;
        self
    }

    /// Sets the decoder.
    pub fn with_decoder(mut self, decoder: DecoderKind) -> Self {
        self.decoder = decoder;
        self
    }

    /// Connects with TLS (needs the `tls` feature).
    pub fn with_tls(mut self, tls: TlsOptions) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Sets the decoding limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sends this client's measurements to `metrics` (see [`Metrics`]).
    pub fn with_metrics(mut self, metrics: Arc<dyn Metrics>) -> Self {
        self.observe = self.observe.with_metrics(metrics);
        self
    }

    /// Records the command text in spans, each argument cut after `max_arg_len` bytes and
    /// credentials always redacted; `None` (the default) records no argument (see
    /// [`Observe::with_query_text`]).
    pub fn with_query_text(mut self, max_arg_len: Option<usize>) -> Self {
        self.observe = self.observe.with_query_text(max_arg_len);
        self
    }
}

impl FromStr for ConnectionInfo {
    type Err = UrlError;
    fn from_str(s: &str) -> Result<Self, UrlError> {
        Self::from_url(s)
    }
}

/// Shows every field but the password, which appears as `"***"` when set.
impl fmt::Debug for ConnectionInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionInfo")
            .field("addr", &self.addr)
            .field("db", &self.db)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("client_name", &self.client_name)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("write_timeout", &self.write_timeout)
            .field("keepalive", &self.keepalive)
            .field("protocol", &self.protocol)
            .field("decoder", &self.decoder)
            .field("limits", &self.limits)
            .field("tls", &self.tls)
            .field("observe", &self.observe)
            .field("tracking", &self.tracking)
            .field("readonly", &self.readonly)
            .finish()
    }
}

/// A URL in `redis://` form with the password, if any, shown as `***`.
impl fmt::Display for ConnectionInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let user = self.username.as_deref().map(url::encode);
        let auth = match (user, &self.password) {
            (Some(u), Some(_)) => format!("{u}:***@"),
            (None, Some(_)) => ":***@".to_owned(),
            (Some(u), None) => format!("{u}@"),
            (None, None) => String::new(),
        };
        match &self.addr {
            Addr::Tcp { .. } => {
                let scheme = if self.tls.is_some() {
                    "rediss"
                } else {
                    "redis"
                };
                write!(f, "{scheme}://{auth}{}/{}", self.addr, self.db)
            }
            Addr::Unix(p) => {
                let path = p.to_string_lossy();
                write!(f, "unix://{auth}{}", url::encode_path(&path))?;
                if self.db != 0 {
                    write!(f, "?db={}", self.db)?;
                }
                Ok(())
            }
        }
    }
}

/// A URL that could not be understood, naming the part that is wrong.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum UrlError {
    /// The URL does not start with `scheme://`. The text is not repeated, since it may
    /// hold a password.
    #[error("invalid URL: missing scheme (expected redis://, unix:// or redis+unix://)")]
    MissingScheme,
    /// The scheme is not one of `redis`, `unix`, `redis+unix` (or `rediss`, not yet).
    #[error("unsupported URL scheme {0:?} (expected redis://, unix:// or redis+unix://)")]
    Scheme(String),
    /// `rediss://` asks for TLS, which needs the `tls` feature.
    #[error("rediss:// (TLS) needs the `tls` feature of redis-conn (or redis-client)")]
    TlsUnsupported,
    /// The host part is missing or malformed.
    #[error("invalid host in URL: {0:?}")]
    Host(String),
    /// The port is not a number in 1..=65535.
    #[error("invalid port in URL: {0:?}")]
    Port(String),
    /// The database is not a non-negative integer.
    #[error("invalid database in URL: {0:?}")]
    Db(String),
    /// A percent-escape is malformed or decodes to invalid UTF-8.
    #[error("invalid percent-encoding in URL {part}")]
    Encoding {
        /// Which part of the URL (user, password, path, a query key).
        part: &'static str,
    },
    /// A query option is unknown or has an invalid value.
    #[error("invalid URL option {key:?}: {reason}")]
    Option {
        /// The option's name.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A Unix socket URL has no path.
    #[error("unix socket URL has no path")]
    MissingPath,
    /// A Unix socket path is not absolute.
    #[error("unix socket path in URL must be absolute: {0:?}")]
    RelativePath(String),
    /// The host could not be told apart from the credentials, because they hold an
    /// unencoded `/`, `?` or `#`. The text is not repeated, since it may hold a password.
    #[error(
        "invalid credentials in URL: percent-encode '/', '?', '#' and '@' in user and password"
    )]
    Credentials,
}

mod url {
    use super::*;

    pub(super) fn parse(url: &str) -> Result<ConnectionInfo, UrlError> {
        let (scheme, rest) = url.split_once("://").ok_or(UrlError::MissingScheme)?;
        // A scheme is letters, digits, `+`, `-`, `.`; anything else means the text before
        // `://` was not a scheme (and may hold credentials, so it is not echoed).
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        {
            return Err(UrlError::MissingScheme);
        }
        match scheme.to_ascii_lowercase().as_str() {
            "redis" => parse_tcp(rest),
            "unix" | "redis+unix" => parse_unix(rest),
            "rediss" if cfg!(feature = "tls") => {
                let mut info = parse_tcp(rest)?;
                info.tls.get_or_insert_with(TlsOptions::default);
                Ok(info)
            }
            "rediss" => Err(UrlError::TlsUnsupported),
            other => Err(UrlError::Scheme(other.to_owned())),
        }
    }

    /// Splits `rest` (after `://`) into the part before the query and the query, dropping
    /// any fragment.
    fn split_query(rest: &str) -> (&str, Option<&str>) {
        let rest = rest.split_once('#').map_or(rest, |(a, _)| a);
        match rest.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (rest, None),
        }
    }

    fn parse_tcp(rest: &str) -> Result<ConnectionInfo, UrlError> {
        let (before_query, query) = split_query(rest);
        // The authority ends at the first `/` (RFC 3986); credentials must not hold one
        // unencoded.
        let (authority, path) = match before_query.find('/') {
            Some(i) => (&before_query[..i], &before_query[i + 1..]),
            None => (before_query, ""),
        };
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let (host, port) = match split_host_port(hostport) {
            Ok(hp) => hp,
            // An `@` later in the URL means the credentials held a `/`, `?` or `#` and the
            // "host" is really a piece of them: do not echo it.
            Err(_) if userinfo.is_none() && rest.contains('@') => {
                return Err(UrlError::Credentials)
            }
            Err(e) => return Err(e),
        };
        let mut info = ConnectionInfo::tcp(host, port);
        if let Some(ui) = userinfo {
            apply_userinfo(&mut info, ui)?;
        }
        if path.contains('@') {
            return Err(UrlError::Credentials);
        }
        let path = path.trim_end_matches('/');
        if !path.is_empty() {
            info.db = parse_db(path)?;
        }
        if let Some(q) = query {
            apply_query(&mut info, q)?;
        }
        Ok(info)
    }

    fn parse_unix(rest: &str) -> Result<ConnectionInfo, UrlError> {
        let (before_query, query) = split_query(rest);
        // unix://[user:pass@]/path: credentials may precede the absolute path.
        let (userinfo, path) = match before_query.find("@/") {
            Some(i) if !before_query[..i].contains('/') => {
                (Some(&before_query[..i]), &before_query[i + 1..])
            }
            _ => (None, before_query),
        };
        if path.is_empty() {
            return Err(UrlError::MissingPath);
        }
        let path = decode(path, "path")?;
        if !path.starts_with('/') {
            return Err(UrlError::RelativePath(path));
        }
        let mut info = ConnectionInfo::unix(path);
        if let Some(ui) = userinfo {
            apply_userinfo(&mut info, ui)?;
        }
        if let Some(q) = query {
            apply_query(&mut info, q)?;
        }
        Ok(info)
    }

    fn split_host_port(hostport: &str) -> Result<(String, u16), UrlError> {
        if let Some(rest) = hostport.strip_prefix('[') {
            let end = rest
                .find(']')
                .ok_or_else(|| UrlError::Host(hostport.to_owned()))?;
            let host = &rest[..end];
            let port = match &rest[end + 1..] {
                "" => None,
                after => Some(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| UrlError::Host(hostport.to_owned()))?,
                ),
            };
            // An IPv6 literal, possibly with a zone (`fe80::1%25eth0`).
            let valid = host.contains(':')
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'.' | b'%'));
            if !valid {
                return Err(UrlError::Host(host.to_owned()));
            }
            let host = decode(host, "host")?;
            return Ok((host, parse_port(port)?));
        }
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        };
        if host.is_empty() {
            return Ok(("localhost".to_owned(), parse_port(port)?));
        }
        // A host name or IPv4 address: letters, digits, `-`, `.`, `_`. An IPv6 address
        // must be in brackets.
        let valid = host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if !valid {
            return Err(UrlError::Host(host.to_owned()));
        }
        Ok((host.to_owned(), parse_port(port)?))
    }

    fn parse_port(port: Option<&str>) -> Result<u16, UrlError> {
        match port {
            None | Some("") => Ok(6379),
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
                _ => Err(UrlError::Port(p.to_owned())),
            },
        }
    }

    fn parse_db(s: &str) -> Result<i64, UrlError> {
        match s.parse::<i64>() {
            Ok(n) if n >= 0 && s.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
            _ => Err(UrlError::Db(s.to_owned())),
        }
    }

    fn apply_userinfo(info: &mut ConnectionInfo, ui: &str) -> Result<(), UrlError> {
        let (user, pass) = match ui.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (ui, None),
        };
        let user = decode(user, "username")?;
        match pass {
            Some(p) => {
                if !user.is_empty() {
                    info.username = Some(user);
                }
                info.password = Some(decode(p, "password")?);
            }
            // `redis://secret@host` is commonly meant as a password alone, as in the
            // reference client's from_url.
            None if !user.is_empty() => info.password = Some(user),
            None => {}
        }
        Ok(())
    }

    fn apply_query(info: &mut ConnectionInfo, query: &str) -> Result<(), UrlError> {
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let key = decode(k, "query key")?;
            let bad = |reason| UrlError::Option {
                key: key.clone(),
                reason,
            };
            let value = decode(v, "query value")?;
            let secs = |v: &str| seconds(v).ok_or_else(|| bad("expected seconds"));
            match key.as_str() {
                "db" => info.db = parse_db(&value)?,
                "username" | "user" => info.username = Some(value),
                "password" => info.password = Some(value),
                "client_name" | "name" => info.client_name = Some(value),
                "protocol" => {
                    info.protocol = match value.to_ascii_lowercase().as_str() {
                        "2" | "resp2" => Protocol::Resp2,
                        "3" | "resp3" => Protocol::Resp3,
                        _ => return Err(bad("expected 2 or 3")),
                    }
                }
                "connect_timeout" => info.connect_timeout = secs(&value)?,
                "timeout" | "socket_timeout" => {
                    let t = secs(&value)?;
                    info.read_timeout = t;
                    info.write_timeout = t;
                }
                "read_timeout" => info.read_timeout = secs(&value)?,
                "write_timeout" => info.write_timeout = secs(&value)?,
                "keepalive" => info.keepalive = secs(&value)?,
                "decoder" => {
                    info.decoder = match value.as_str() {
                        "fast" => DecoderKind::Fast,
                        "reference" => DecoderKind::Reference,
                        _ => return Err(bad("expected fast or reference")),
                    }
                }
                "ca_file" => tls_of(info).ca_file = Some(value.into()),
                "server_name" => tls_of(info).server_name = Some(value),
                "cert_file" => {
                    tls_of(info)
                        .client_cert
                        .get_or_insert_with(Default::default)
                        .0 = value.into()
                }
                "key_file" => {
                    tls_of(info)
                        .client_cert
                        .get_or_insert_with(Default::default)
                        .1 = value.into()
                }
                _ => return Err(bad("unknown option")),
            }
        }
        Ok(())
    }

    /// The TLS settings, created on first use: a TLS option in a `redis://` URL asks for TLS.
    fn tls_of(info: &mut ConnectionInfo) -> &mut TlsOptions {
        info.tls.get_or_insert_with(TlsOptions::default)
    }

    /// Seconds as a duration; 0 means "none". Bounded so that adding the duration to
    /// `Instant::now()` cannot overflow.
    fn seconds(s: &str) -> Option<Option<Duration>> {
        let x: f64 = s.parse().ok()?;
        if !(0.0..=1e9).contains(&x) {
            return None;
        }
        Some((x > 0.0).then(|| Duration::from_secs_f64(x)))
    }

    /// Percent-decodes `s`; `part` names the URL part in the error.
    pub(super) fn decode(s: &str, part: &'static str) -> Result<String, UrlError> {
        if !s.contains('%') {
            return Ok(s.to_owned());
        }
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let hex = bytes.get(i + 1..i + 3).ok_or(UrlError::Encoding { part })?;
                let digit = |b: u8| (b as char).to_digit(16).ok_or(UrlError::Encoding { part });
                out.push((digit(hex[0])? * 16 + digit(hex[1])?) as u8);
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).map_err(|_| UrlError::Encoding { part })
    }

    /// Percent-encodes everything but RFC 3986 unreserved characters.
    pub(super) fn encode(s: &str) -> String {
        encode_except(s, |b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
        })
    }

    /// Percent-encodes what would end or corrupt a path: `%`, `?`, `#`, `@`, space and
    /// control or non-ASCII bytes.
    pub(super) fn encode_path(s: &str) -> String {
        encode_except(s, |b| {
            b.is_ascii_graphic() && !matches!(b, b'%' | b'?' | b'#' | b'@')
        })
    }

    fn encode_except(s: &str, keep: impl Fn(u8) -> bool) -> String {
        let mut out = String::with_capacity(s.len());
        for b in s.bytes() {
            if keep(b) {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `url` and compares the fields that differ from the defaults with `expected`,
    /// written as `Debug` output of the parsed value's interesting fields.
    fn check(url: &str, expected: &str) {
        let info = ConnectionInfo::from_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        let got = format!(
            "{} db={} user={:?} pass={:?} name={:?} proto={:?} ct={:?} rt={:?} wt={:?} ka={:?} dec={:?}",
            info.addr,
            info.db,
            info.username,
            info.password,
            info.client_name,
            info.protocol,
            info.connect_timeout,
            info.read_timeout,
            info.write_timeout,
            info.keepalive,
            info.decoder,
        );
        assert_eq!(got, expected, "parsing {url}");
    }

    fn check_err(url: &str, expected: UrlError) {
        match ConnectionInfo::from_url(url) {
            Ok(info) => panic!("{url} parsed as {info:?}"),
            Err(e) => assert_eq!(e, expected, "parsing {url}"),
        }
    }

    const D: &str = "ct=Some(5s) rt=Some(10s) wt=Some(10s) ka=None dec=Fast";

    #[test]
    fn rediss_needs_the_tls_feature() {
        let parsed = ConnectionInfo::from_url("rediss://:pw@host:6380/2?ca_file=/etc/ca.pem");
        if cfg!(feature = "tls") {
            let info = parsed.unwrap();
            assert_eq!(
                info.tls.unwrap().ca_file.unwrap(),
                std::path::Path::new("/etc/ca.pem")
            );
            assert_eq!((info.db, info.password.as_deref()), (2, Some("pw")));
        } else {
            assert_eq!(parsed.unwrap_err(), UrlError::TlsUnsupported);
        }
        // A TLS option in a redis:// URL asks for TLS too.
        let info = ConnectionInfo::from_url("redis://host?server_name=example.com").unwrap();
        assert_eq!(
            info.tls.unwrap().server_name.as_deref(),
            Some("example.com")
        );
    }

    #[test]
    fn good_urls() {
        let cases: &[(&str, String)] = &[
            ("redis://localhost", format!("localhost:6379 db=0 user=None pass=None name=None proto=Resp2 {D}")),
            ("redis://", format!("localhost:6379 db=0 user=None pass=None name=None proto=Resp2 {D}")),
            ("REDIS://Example.com:7000/3", format!("Example.com:7000 db=3 user=None pass=None name=None proto=Resp2 {D}")),
            ("redis://127.0.0.1:6380/0/", format!("127.0.0.1:6380 db=0 user=None pass=None name=None proto=Resp2 {D}")),
            ("redis://[::1]:6379", format!("[::1]:6379 db=0 user=None pass=None name=None proto=Resp2 {D}")),
            ("redis://[::1]", format!("[::1]:6379 db=0 user=None pass=None name=None proto=Resp2 {D}")),
            ("redis://[fe80::1%25eth0]:1", format!("[fe80::1%eth0]:1 db=0 user=None pass=None name=None proto=Resp2 {D}")),
            ("redis://:s3cret@host", format!("host:6379 db=0 user=None pass=Some(\"s3cret\") name=None proto=Resp2 {D}")),
            ("redis://s3cret@host", format!("host:6379 db=0 user=None pass=Some(\"s3cret\") name=None proto=Resp2 {D}")),
            ("redis://alice:pw@host:1/2", format!("host:1 db=2 user=Some(\"alice\") pass=Some(\"pw\") name=None proto=Resp2 {D}")),
            ("redis://al%40ice:p%2Fw%3A%40%25@host", format!("host:6379 db=0 user=Some(\"al@ice\") pass=Some(\"p/w:@%\") name=None proto=Resp2 {D}")),
            ("redis://:p@ss@host", format!("host:6379 db=0 user=None pass=Some(\"p@ss\") name=None proto=Resp2 {D}")),
            ("redis://:%C3%A9t%C3%A9@host", format!("host:6379 db=0 user=None pass=Some(\"été\") name=None proto=Resp2 {D}")),
            ("redis://host?db=5&client_name=my%20app&protocol=3", format!("host:6379 db=5 user=None pass=None name=Some(\"my app\") proto=Resp3 {D}")),
            ("redis://host/1?db=4", format!("host:6379 db=4 user=None pass=None name=None proto=Resp2 {D}")),
            ("redis://host?username=bob&password=x%26y", format!("host:6379 db=0 user=Some(\"bob\") pass=Some(\"x&y\") name=None proto=Resp2 {D}")),
            ("redis://host?protocol=resp2&decoder=reference", "host:6379 db=0 user=None pass=None name=None proto=Resp2 ct=Some(5s) rt=Some(10s) wt=Some(10s) ka=None dec=Reference".to_owned()),
            ("redis://host?connect_timeout=0.5&timeout=2&keepalive=60", "host:6379 db=0 user=None pass=None name=None proto=Resp2 ct=Some(500ms) rt=Some(2s) wt=Some(2s) ka=Some(60s) dec=Fast".to_owned()),
            ("redis://host?connect_timeout=0&read_timeout=1.5&write_timeout=3", "host:6379 db=0 user=None pass=None name=None proto=Resp2 ct=None rt=Some(1.5s) wt=Some(3s) ka=None dec=Fast".to_owned()),
            ("redis://host/2#fragment", format!("host:6379 db=2 user=None pass=None name=None proto=Resp2 {D}")),
            ("unix:///tmp/redis.sock", format!("/tmp/redis.sock db=0 user=None pass=None name=None proto=Resp2 {D}")),
            ("redis+unix:///tmp/redis.sock?db=3&password=s%3Bcret", format!("/tmp/redis.sock db=3 user=None pass=Some(\"s;cret\") name=None proto=Resp2 {D}")),
            ("unix://bob:pw@/var/run/redis%20x.sock", format!("/var/run/redis x.sock db=0 user=Some(\"bob\") pass=Some(\"pw\") name=None proto=Resp2 {D}")),
            ("unix://:pw@/a.sock#x", format!("/a.sock db=0 user=None pass=Some(\"pw\") name=None proto=Resp2 {D}")),
        ];
        for (url, expected) in cases {
            check(url, expected);
        }
    }

    #[test]
    fn bad_urls_name_the_bad_part() {
        use UrlError as E;
        let option = |key: &str, reason| E::Option {
            key: key.to_owned(),
            reason,
        };
        let cases: Vec<(&str, UrlError)> = vec![
            ("localhost:6379", E::MissingScheme),
            ("user:s3cret@host", E::MissingScheme),
            ("://host", E::MissingScheme),
            ("http://host", E::Scheme("http".into())),
            ("redis://host:0", E::Port("0".into())),
            ("redis://host:65536", E::Port("65536".into())),
            ("redis://host:+80", E::Port("+80".into())),
            ("redis://host:port", E::Port("port".into())),
            ("redis://ho st", E::Host("ho st".into())),
            ("redis://::1", E::Host(":".into())),
            ("redis://[::1", E::Host("[::1".into())),
            ("redis://[::1]x", E::Host("[::1]x".into())),
            ("redis://[nothex]", E::Host("nothex".into())),
            ("redis://host/x", E::Db("x".into())),
            ("redis://host/-1", E::Db("-1".into())),
            ("redis://host/+1", E::Db("+1".into())),
            ("redis://host/1/2", E::Db("1/2".into())),
            ("redis://host?db=x", E::Db("x".into())),
            ("redis://:pw%zz@host", E::Encoding { part: "password" }),
            ("redis://us%e9r:pw@host", E::Encoding { part: "username" }),
            ("redis://:pw%4@host", E::Encoding { part: "password" }),
            (
                "redis://host?timeout=soon",
                option("timeout", "expected seconds"),
            ),
            (
                "redis://host?timeout=-1",
                option("timeout", "expected seconds"),
            ),
            (
                "redis://host?timeout=1e300",
                option("timeout", "expected seconds"),
            ),
            (
                "redis://host?protocol=4",
                option("protocol", "expected 2 or 3"),
            ),
            (
                "redis://host?decoder=slow",
                option("decoder", "expected fast or reference"),
            ),
            ("redis://host?color=red", option("color", "unknown option")),
            ("redis://:pa/ss@host", E::Credentials),
            ("redis://:12/ss@host", E::Credentials),
            ("redis://:pa#ss@host", E::Credentials),
            ("unix://", E::MissingPath),
            ("unix://?db=1", E::MissingPath),
            (
                "unix://relative.sock",
                E::RelativePath("relative.sock".into()),
            ),
            ("unix:///tmp/r.sock?db=no", E::Db("no".into())),
        ];
        for (url, expected) in cases {
            check_err(url, expected);
        }
    }

    #[test]
    fn password_never_shown() {
        let urls = [
            "redis://alice:s3cret@host:6379/1",
            "redis://:s3cret@host",
            "unix:///tmp/r.sock?password=s3cret",
            "unix://:s3cret@/tmp/r.sock",
        ];
        for url in urls {
            let info = ConnectionInfo::from_url(url).unwrap();
            assert_eq!(info.password.as_deref(), Some("s3cret"));
            let debug = format!("{info:?}");
            let display = info.to_string();
            assert!(!debug.contains("s3cret"), "{debug}");
            assert!(debug.contains("\"***\""), "{debug}");
            assert!(!display.contains("s3cret"), "{display}");
            assert!(display.contains("***"), "{display}");
        }
        // Errors of URLs holding a password never repeat it.
        let bad = [
            "s3cret@host",
            "alice:s3cret@host:1",
            "http://:s3cret@host",
            "redis://:s3cret@host:99999",
            "redis://:s3cret@ho st",
            "redis://:s3cret@host/x",
            "redis://:s3/cret@host",
            "redis://:s3#cret@host",
            "redis://:s3cret%zz@host",
        ];
        for url in bad {
            let e = ConnectionInfo::from_url(url).unwrap_err();
            for shown in [e.to_string(), format!("{e:?}")] {
                assert!(
                    !shown.contains("s3cret") && !shown.contains("cret"),
                    "{url}: {shown}"
                );
            }
        }
    }

    #[test]
    fn display_parses_back() {
        let infos = [
            ConnectionInfo::tcp("::1", 7000).with_db(3),
            ConnectionInfo::tcp("h", 1).with_auth(Some("a b@c"), "pw"),
            ConnectionInfo::unix("/tmp/a b?#.sock").with_db(2),
        ];
        for info in infos {
            let shown = info.to_string();
            let back = ConnectionInfo::from_url(&shown).unwrap();
            assert_eq!(back.addr, info.addr, "{shown}");
            assert_eq!(back.db, info.db, "{shown}");
            assert_eq!(back.username, info.username, "{shown}");
        }
    }

    #[test]
    fn builders() {
        let info = ConnectionInfo::unix("/s")
            .with_db(1)
            .with_auth(None, "pw")
            .with_client_name("n")
            .with_protocol(Protocol::Resp3)
            .with_connect_timeout(None)
            .with_timeout(Some(Duration::from_secs(1)))
            .with_write_timeout(Some(Duration::from_secs(2)))
            .with_keepalive(Some(Duration::from_secs(30)))
            .with_decoder(DecoderKind::Reference);
        assert_eq!(info.addr, Addr::Unix("/s".into()));
        assert_eq!(
            (info.db, info.username, info.password.as_deref()),
            (1, None, Some("pw"))
        );
        assert_eq!(info.client_name.as_deref(), Some("n"));
        assert_eq!(info.protocol, Protocol::Resp3);
        assert_eq!(info.connect_timeout, None);
        assert_eq!(info.read_timeout, Some(Duration::from_secs(1)));
        assert_eq!(info.write_timeout, Some(Duration::from_secs(2)));
        assert_eq!(info.keepalive, Some(Duration::from_secs(30)));
        assert_eq!(info.decoder, DecoderKind::Reference);
    }
}
