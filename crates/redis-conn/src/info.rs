//! Where a server is and how to talk to it: [`ConnectionInfo`], built in code or from a URL.

use crate::TlsOptions;
use resp_proto::{DecoderKind, Limits};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
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

/// The protocol version spoken after the handshake.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// RESP2, what every server speaks without being asked. The default.
    #[default]
    Resp2,
    /// RESP3, negotiated with `HELLO 3` (Redis 6 and newer).
    Resp3,
}

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
    /// Bound on waiting for a reply; `None` waits forever. Default `None`.
    pub read_timeout: Option<Duration>,
    /// Bound on writing a request; `None` waits forever. Default `None`.
    pub write_timeout: Option<Duration>,
    /// TCP keepalive idle time; `None` leaves the OS default. Default `None`.
    pub keepalive: Option<Duration>,
    /// Protocol version. Default RESP2.
    pub protocol: Protocol,
    /// Which reply decoder to use. Default the fast one.
    pub decoder: DecoderKind,
    /// Decoding limits. Default [`Limits::DEFAULT`].
    pub limits: Limits,
    /// TLS settings; `None` for a plain connection. Set by `rediss://` URLs. Needs the
    /// `tls` feature.
    pub tls: Option<TlsOptions>,
}

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
            read_timeout: None,
            write_timeout: None,
            keepalive: None,
            protocol: Protocol::Resp2,
            decoder: DecoderKind::Fast,
            limits: Limits::DEFAULT,
            tls: None,
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
            .finish()
    }
}

/// A URL in `redis://` form with the password, if any, shown as `***`.
impl fmt::Display for ConnectionInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth = match (&self.username, &self.password) {
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
                write!(f, "unix://{auth}{}", p.display())?;
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
}

mod url {
    use super::*;

    pub(super) fn parse(url: &str) -> Result<ConnectionInfo, UrlError> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| UrlError::Scheme(url.to_owned()))?;
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

    fn parse_tcp(rest: &str) -> Result<ConnectionInfo, UrlError> {
        let rest = rest.split('#').next().unwrap_or("");
        let (before_query, query) = match rest.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match before_query.find('/') {
            Some(i) => (&before_query[..i], &before_query[i + 1..]),
            None => (before_query, ""),
        };
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let (host, port) = split_host_port(hostport)?;
        let mut info = ConnectionInfo::tcp(host, port);
        if let Some(ui) = userinfo {
            apply_userinfo(&mut info, ui)?;
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
        let (before_query, query) = match rest.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (rest, None),
        };
        // unix://[user:pass@]/path: credentials may precede the absolute path.
        let (userinfo, path) = match before_query.find('/') {
            Some(i) if i > 0 && before_query[..i].ends_with('@') => {
                (Some(&before_query[..i - 1]), &before_query[i..])
            }
            _ => (None, before_query),
        };
        if path.is_empty() {
            return Err(UrlError::MissingPath);
        }
        let path = decode(path, "path")?;
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
        let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
            let end = rest
                .find(']')
                .ok_or_else(|| UrlError::Host(hostport.to_owned()))?;
            let host = &rest[..end];
            let after = &rest[end + 1..];
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(UrlError::Host(hostport.to_owned())),
            };
            (host, port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Ok(("localhost".to_owned(), parse_port(port)?));
        }
        if host.contains(['/', '@', ' ']) || (!hostport.starts_with('[') && host.contains(':')) {
            return Err(UrlError::Host(host.to_owned()));
        }
        Ok((host.to_owned(), parse_port(port)?))
    }

    fn parse_port(port: Option<&str>) -> Result<u16, UrlError> {
        match port {
            None | Some("") => Ok(6379),
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(UrlError::Port(p.to_owned())),
            },
        }
    }

    fn parse_db(s: &str) -> Result<i64, UrlError> {
        match s.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(n),
            _ => Err(UrlError::Db(s.to_owned())),
        }
    }

    fn apply_userinfo(info: &mut ConnectionInfo, ui: &str) -> Result<(), UrlError> {
        let (user, pass) = match ui.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (ui, None),
        };
        if !user.is_empty() {
            info.username = Some(decode(user, "username")?);
        }
        if let Some(p) = pass {
            info.password = Some(decode(p, "password")?);
        } else if !user.is_empty() {
            // `redis://secret@host` is commonly meant as a password alone, as in the
            // reference client's from_url.
            info.password = info.username.take();
        }
        Ok(())
    }

    fn apply_query(info: &mut ConnectionInfo, query: &str) -> Result<(), UrlError> {
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let key = decode(k, "query key")?;
            let value = decode(v, "query value")?;
            let bad = |reason| UrlError::Option {
                key: key.clone(),
                reason,
            };
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
                "connect_timeout" => {
                    info.connect_timeout = seconds(&value).ok_or_else(|| bad("expected seconds"))?
                }
                "timeout" => {
                    let t = seconds(&value).ok_or_else(|| bad("expected seconds"))?;
                    info.read_timeout = t;
                    info.write_timeout = t;
                }
                "read_timeout" => {
                    info.read_timeout = seconds(&value).ok_or_else(|| bad("expected seconds"))?
                }
                "write_timeout" => {
                    info.write_timeout = seconds(&value).ok_or_else(|| bad("expected seconds"))?
                }
                "keepalive" => {
                    info.keepalive = seconds(&value).ok_or_else(|| bad("expected seconds"))?
                }
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

    /// Seconds as a duration; 0 means "none".
    fn seconds(s: &str) -> Option<Option<Duration>> {
        let x: f64 = s.parse().ok()?;
        if !(0.0..=1e9).contains(&x) {
            return None;
        }
        Some((x > 0.0).then(|| Duration::from_secs_f64(x)))
    }

    fn decode(s: &str, part: &'static str) -> Result<String, UrlError> {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let hex = bytes.get(i + 1..i + 3).ok_or(UrlError::Encoding { part })?;
                let hex = std::str::from_utf8(hex).map_err(|_| UrlError::Encoding { part })?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| UrlError::Encoding { part })?);
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).map_err(|_| UrlError::Encoding { part })
    }
}
