//! TLS (`rediss://`) over rustls: server verification against a CA file or the system's
//! roots, server name check, optional client certificate (mutual TLS).
//!
//! Compiled with the `tls` feature; without it, asking for TLS is refused with an error
//! that names the feature.

use std::path::PathBuf;

/// TLS settings of a connection.
///
/// ```
/// use redis_conn::TlsOptions;
/// let tls = TlsOptions::default().with_ca_file("/etc/redis/ca.crt");
/// assert!(tls.client_cert.is_none());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsOptions {
    /// PEM file of the certificate authorities to trust. `None` trusts the system's roots
    /// (the bundle at `SSL_CERT_FILE`, or the distribution's usual path).
    pub ca_file: Option<PathBuf>,
    /// The name the server's certificate must carry. `None` uses the host being connected
    /// to (a DNS name or an IP address).
    pub server_name: Option<String>,
    /// PEM files of a client certificate chain and its private key, for servers that
    /// require clients to authenticate (`tls-auth-clients yes`).
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

impl TlsOptions {
    /// Trusts the authorities in the PEM file at `path` instead of the system's roots.
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Checks the server's certificate against `name` instead of the host.
    pub fn with_server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Presents the certificate chain in `cert` with the private key in `key`.
    pub fn with_client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_cert = Some((cert.into(), key.into()));
        self
    }
}

#[cfg(feature = "tls")]
pub(crate) use imp::{config, connect, server_name, Config};

#[cfg(feature = "tls")]
mod imp {
    use super::TlsOptions;
    use crate::transport::Readiness;
    use crate::Transport;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
    use std::io;
    use std::net::TcpStream;
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    /// Where Debian, Fedora, Alpine and macOS keep the system's CA bundle.
    const SYSTEM_BUNDLES: [&str; 4] = [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/cert.pem",
        "/usr/local/etc/openssl/cert.pem",
    ];

    /// A client configuration built once per connector and shared by its connections.
    pub(crate) type Config = Arc<ClientConfig>;

    fn invalid(msg: String) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidInput, msg)
    }

    /// Builds the rustls configuration `opts` describes.
    pub(crate) fn config(opts: &TlsOptions) -> io::Result<Config> {
        let mut roots = RootCertStore::empty();
        let ca_path = match &opts.ca_file {
            Some(p) => p.clone(),
            None => std::env::var_os("SSL_CERT_FILE")
                .map(Into::into)
                .or_else(|| {
                    SYSTEM_BUNDLES
                        .iter()
                        .map(Path::new)
                        .find(|p| p.exists())
                        .map(Path::to_path_buf)
                })
                .ok_or_else(|| invalid("no CA file given and no system CA bundle found".into()))?,
        };
        let certs = CertificateDer::pem_file_iter(&ca_path)
            .map_err(|e| invalid(format!("cannot read CA file {}: {e}", ca_path.display())))?;
        for cert in certs {
            let cert = cert
                .map_err(|e| invalid(format!("bad certificate in {}: {e}", ca_path.display())))?;
            // A bundle may hold certificates rustls cannot use; skipping them is what every
            // TLS client does with system bundles.
            let _ = roots.add(cert);
        }
        if roots.is_empty() {
            return Err(invalid(format!(
                "no usable CA certificate in {}",
                ca_path.display()
            )));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(format!("tls setup: {e}")))?
            .with_root_certificates(roots);
        let config = match &opts.client_cert {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| {
                        invalid(format!(
                            "cannot read client certificate {}: {e}",
                            cert.display()
                        ))
                    })?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                    invalid(format!("cannot read client key {}: {e}", key.display()))
                })?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| invalid(format!("client certificate refused: {e}")))?
            }
        };
        Ok(Arc::new(config))
    }

    /// The name the server's certificate must carry: the configured one, else the host.
    pub(crate) fn server_name(opts: &TlsOptions, host: &str) -> io::Result<ServerName<'static>> {
        let name_text = opts.server_name.as_deref().unwrap_or(host);
        ServerName::try_from(name_text.to_owned())
            .map_err(|e| invalid(format!("invalid TLS server name {name_text:?}: {e}")))
    }

    /// Wraps a connected socket in TLS and completes the handshake within `timeout`.
    pub(crate) fn connect(
        config: &Config,
        opts: &TlsOptions,
        host: &str,
        mut tcp: TcpStream,
        timeout: Option<Duration>,
    ) -> io::Result<Box<dyn Transport>> {
        let name = server_name(opts, host)?;
        let mut conn = ClientConnection::new(Arc::clone(config), name)
            .map_err(|e| invalid(format!("tls setup: {e}")))?;
        tcp.set_read_timeout(timeout)?;
        tcp.set_write_timeout(timeout)?;
        // Drive the handshake now, so certificate problems surface at connect time
        // rather than on the first command.
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp).map_err(|e| match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => e,
                _ => io::Error::new(e.kind(), format!("tls handshake failed: {e}")),
            })?;
        }
        Ok(Box::new(Tls(StreamOwned::new(conn, tcp))))
    }

    /// A TLS stream as a [`Transport`]: timeouts apply to the socket underneath.
    struct Tls(StreamOwned<ClientConnection, TcpStream>);

    impl io::Read for Tls {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.0.read(buf)
        }
    }

    impl io::Write for Tls {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            self.0.flush()
        }
    }

    impl Transport for Tls {
        fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
            self.0.sock.set_read_timeout(timeout)
        }
        fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
            self.0.sock.set_write_timeout(timeout)
        }

        /// Plaintext already decrypted counts as readable; TLS records on the socket are
        /// taken in without blocking and decrypted, since a record that carries no data (a
        /// session ticket, a key update) leaves the stream quiet, while a close_notify
        /// closes it.
        fn readiness(&mut self) -> Readiness {
            let state = |conn: &mut ClientConnection| match conn.process_new_packets() {
                Err(_) => Readiness::Closed,
                Ok(io) if io.plaintext_bytes_to_read() > 0 => Readiness::Readable,
                Ok(io) if io.peer_has_closed() => Readiness::Closed,
                Ok(_) => Readiness::Quiet,
            };
            let StreamOwned { conn, sock } = &mut self.0;
            match state(conn) {
                Readiness::Quiet => {}
                other => return other,
            }
            match crate::transport::peek_tcp(sock) {
                Readiness::Readable => {}
                other => return other,
            }
            if sock.set_nonblocking(true).is_err() {
                return Readiness::Closed;
            }
            let mut result = Readiness::Quiet;
            loop {
                match conn.read_tls(sock) {
                    Ok(0) => {
                        result = Readiness::Closed;
                        break;
                    }
                    Ok(_) => {
                        result = state(conn);
                        if result != Readiness::Quiet {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        result = Readiness::Closed;
                        break;
                    }
                }
            }
            if sock.set_nonblocking(false).is_err() {
                return Readiness::Closed;
            }
            result
        }
    }
}
