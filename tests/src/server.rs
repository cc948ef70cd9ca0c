//! `TestServer`: one redis-server process owned by a test.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Every temporary directory made by the harness starts with this, so leftovers can be
/// found (`cargo xtask test` checks that no server outlives the suite).
pub const TMP_PREFIX: &str = "redis-client-test-";

/// The environment variable that names one run of the suite (`cargo xtask test` sets it):
/// every server's directory carries the name, so a run finds its own leftovers and not
/// the servers of another run going on beside it (another checkout, another session).
pub const RUN_VAR: &str = "REDIS_CLIENT_TEST_RUN";

/// How the directories of the run named `run` begin.
pub fn run_prefix(run: &str) -> String {
    format!("{TMP_PREFIX}{run}-")
}

/// How long a server may take to answer its first PING.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How a [`TestServer`] is configured.
#[derive(Clone, Debug, Default)]
pub struct ServerConfig {
    /// Also listen on a Unix socket in the server's directory.
    pub unix_socket: bool,
    /// `requirepass` for the default user.
    pub password: Option<String>,
    /// ACL users as `(name, password)`, each allowed every command and key.
    pub acl_users: Vec<(String, String)>,
    /// Extra `redis.conf` lines, e.g. `"timeout 1"`.
    pub extra: Vec<String>,
    /// Also listen for TLS on a second port; `Some(true)` requires client certificates.
    pub tls: Option<bool>,
    /// Run as a sentinel (`--sentinel`); its `sentinel …` lines go in [`ServerConfig::extra`].
    pub sentinel: bool,
}

impl ServerConfig {
    /// Adds a Unix socket.
    pub fn unix_socket(mut self) -> Self {
        self.unix_socket = true;
        self
    }

    /// Sets `requirepass`.
    pub fn password(mut self, password: &str) -> Self {
        self.password = Some(password.to_owned());
        self
    }

    /// Adds an ACL user with full permissions.
    pub fn acl_user(mut self, name: &str, password: &str) -> Self {
        self.acl_users.push((name.to_owned(), password.to_owned()));
        self
    }

    /// Adds a TLS port with certificates made for this server ([`TestServer::certs`]);
    /// `require_client_cert` sets `tls-auth-clients`.
    pub fn tls(mut self, require_client_cert: bool) -> Self {
        self.tls = Some(require_client_cert);
        self
    }

    /// Runs the server as a sentinel.
    pub fn sentinel(mut self) -> Self {
        self.sentinel = true;
        self
    }

    /// Adds a `redis.conf` line.
    pub fn line(mut self, line: &str) -> Self {
        self.extra.push(line.to_owned());
        self
    }

    /// Starts a server with this configuration.
    ///
    /// # Panics
    /// If redis-server cannot be started or does not answer in time; the message holds its
    /// log.
    pub fn start(self) -> TestServer {
        TestServer::start_with(self)
    }
}

/// A running redis-server owned by a test, killed on drop.
#[derive(Debug)]
pub struct TestServer {
    config: ServerConfig,
    dir: PathBuf,
    port: u16,
    tls: Option<(u16, crate::TestCerts)>,
    child: Option<Child>,
}

impl TestServer {
    /// Starts a server with the default configuration (TCP only, persistence off).
    ///
    /// # Panics
    /// As [`ServerConfig::start`].
    pub fn start() -> TestServer {
        Self::start_with(ServerConfig::default())
    }

    /// Starts a server with `config`.
    ///
    /// # Panics
    /// As [`ServerConfig::start`].
    pub fn start_with(config: ServerConfig) -> TestServer {
        let dir = make_temp_dir();
        let certs = config.tls.map(|_| crate::TestCerts::generate(&dir));
        let mut last_log = String::new();
        // A free port can be taken by another process between probing and binding, so a
        // start that fails on the port is retried on a new one.
        for _ in 0..10 {
            let port = free_port();
            let tls = certs.clone().map(|c| (free_port(), c));
            let mut server = TestServer {
                config: config.clone(),
                dir: dir.clone(),
                port,
                tls,
                child: None,
            };
            match server.spawn() {
                Ok(()) => return server,
                Err(log) => {
                    last_log = log;
                    // The next attempt reuses the directory: keep this handle's drop from
                    // deleting it (spawn already stopped the process).
                    server.dir = PathBuf::new();
                }
            }
        }
        let _ = fs::remove_dir_all(&dir);
        panic!("redis-server did not start; last log:\n{last_log}");
    }

    fn spawn(&mut self) -> Result<(), String> {
        self.spawn_until(false)
    }

    /// Starts the process and waits until it answers; with `loading_is_up`, a `LOADING`
    /// answer counts as up.
    fn spawn_until(&mut self, loading_is_up: bool) -> Result<(), String> {
        let conf = self.dir.join("redis.conf");
        fs::write(&conf, self.config_text()).map_err(|e| e.to_string())?;
        let log = self.log_path();
        let _ = fs::remove_file(&log);
        let mut cmd = Command::new("redis-server");
        cmd.arg(&conf);
        if self.config.sentinel {
            cmd.arg("--sentinel");
        }
        let child = cmd
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!("cannot run redis-server: {e} (install the redis-server package)")
            })?;
        self.child = Some(child);
        match self.wait_ready(loading_is_up) {
            Ok(()) => Ok(()),
            Err(why) => {
                self.kill();
                Err(format!(
                    "{why}\n{}",
                    fs::read_to_string(&log).unwrap_or_default()
                ))
            }
        }
    }

    fn config_text(&self) -> String {
        let mut c = format!(
            "port {}\nbind 127.0.0.1\ndir {}\nlogfile {}\nsave \"\"\nappendonly no\ndaemonize no\n",
            self.port,
            self.dir.display(),
            self.log_path().display()
        );
        if self.config.unix_socket {
            c += &format!(
                "unixsocket {}\nunixsocketperm 700\n",
                self.socket_path().display()
            );
        }
        if let Some(p) = &self.config.password {
            c += &format!("requirepass {p}\n");
        }
        if let (Some((port, certs)), Some(require)) = (&self.tls, self.config.tls) {
            c += &format!(
                "tls-port {port}\ntls-cert-file {}\ntls-key-file {}\ntls-ca-cert-file {}\ntls-auth-clients {}\n",
                certs.server_cert.display(),
                certs.server_key.display(),
                certs.ca.display(),
                if require { "yes" } else { "no" }
            );
        }
        for (user, pass) in &self.config.acl_users {
            c += &format!("user {user} on >{pass} ~* &* +@all\n");
        }
        for line in &self.config.extra {
            c += line;
            c.push('\n');
        }
        c
    }

    fn wait_ready(&mut self, loading_is_up: bool) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("redis-server exited with {status}"));
                }
            }
            if let Some(reply) = ping(self.port) {
                // Any answer but LOADING means the server is serving (NOAUTH included).
                if loading_is_up || !reply.starts_with("-LOADING") {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err("redis-server did not answer PING within 20 s".to_owned());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host:port`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A `redis://` URL for database 0, without credentials.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// The TLS port, for a server started with [`ServerConfig::tls`].
    ///
    /// # Panics
    /// If the server has no TLS port.
    pub fn tls_port(&self) -> u16 {
        self.tls.as_ref().expect("server started without tls").0
    }

    /// The certificates of a server started with [`ServerConfig::tls`].
    ///
    /// # Panics
    /// If the server has no TLS port.
    pub fn certs(&self) -> &crate::TestCerts {
        &self.tls.as_ref().expect("server started without tls").1
    }

    /// The Unix socket path (meaningful when the config asked for one).
    pub fn socket_path(&self) -> PathBuf {
        self.dir.join("redis.sock")
    }

    /// A `unix://` URL for the socket.
    pub fn unix_url(&self) -> String {
        format!("unix://{}", self.socket_path().display())
    }

    /// The server's temporary directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server's log.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("redis.log")
    }

    /// The server version as `(major, minor, patch)`, for tests that need a feature.
    pub fn version(&self) -> (u32, u32, u32) {
        server_version()
    }

    /// Kills the process (SIGKILL: no goodbye to clients) and waits for it to exit.
    pub fn stop(&mut self) {
        self.kill();
    }

    /// Starts the server again on the same port and directory after [`TestServer::stop`].
    ///
    /// # Panics
    /// If it does not come back; the message holds its log.
    pub fn restart(&mut self) {
        self.kill();
        // The old listening socket may linger briefly; retry the bind for a while.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(log) if Instant::now() > deadline => {
                    panic!("redis-server did not restart:\n{log}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Restarts the server and returns as soon as it answers, possibly still `LOADING` its
    /// dataset (for tests of what clients see meanwhile).
    ///
    /// # Panics
    /// If it does not come back; the message holds its log.
    pub fn restart_without_waiting_for_load(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.spawn_until(true) {
                Ok(()) => return,
                Err(log) if Instant::now() > deadline => {
                    panic!("redis-server did not restart:\n{log}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills (`CLIENT KILL ID`) every client connection with `CLIENT TRACKING` on (flag
    /// `t` in `CLIENT LIST`); returns how many.
    pub fn kill_tracking_clients(&self) -> usize {
        let list = self.raw(&["CLIENT", "LIST"]);
        let mut killed = 0;
        for line in list.lines() {
            let field = |name: &str| {
                line.split(' ')
                    .find_map(|f| f.strip_prefix(name))
                    .unwrap_or_default()
                    .to_owned()
            };
            if field("flags=").contains('t') {
                self.raw(&["CLIENT", "KILL", "ID", &field("id=")]);
                killed += 1;
            }
        }
        killed
    }

    /// Runs a command with a plain inline request and returns the raw reply text (one
    /// line, or a bulk string's payload). For test set-up that should not depend on the
    /// client under test.
    ///
    /// # Panics
    /// If the server cannot be reached.
    pub fn raw(&self, args: &[&str]) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to test server");
        // Generous: DEBUG POPULATE of millions of keys is slow on a loaded machine.
        s.set_read_timeout(Some(Duration::from_secs(60)))
            .expect("set timeout");
        let mut req = String::new();
        if let Some(p) = &self.config.password {
            req += &encode(&["AUTH", p]);
        }
        req += &encode(args);
        s.write_all(req.as_bytes()).expect("write");
        let mut r = BufReader::new(s);
        if self.config.password.is_some() {
            read_reply(&mut r);
        }
        read_reply(&mut r)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
        if !self.dir.as_os_str().is_empty() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

fn encode(args: &[&str]) -> String {
    let mut s = format!("*{}\r\n", args.len());
    for a in args {
        s += &format!("${}\r\n{a}\r\n", a.len());
    }
    s
}

fn read_reply(r: &mut impl BufRead) -> String {
    let mut line = String::new();
    r.read_line(&mut line).expect("read reply");
    let line = line.trim_end().to_owned();
    if let Some(len) = line.strip_prefix('$') {
        let Ok(len) = len.parse::<usize>() else {
            return line;
        };
        let mut buf = vec![0; len + 2];
        r.read_exact(&mut buf).expect("read bulk");
        buf.truncate(len);
        return String::from_utf8_lossy(&buf).into_owned();
    }
    line
}

fn ping(port: u16) -> Option<String> {
    let mut s =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
            .ok()?;
    s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    s.write_all(b"PING\r\n").ok()?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).ok()?;
    Some(line)
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

fn make_temp_dir() -> PathBuf {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let run = std::env::var(RUN_VAR).unwrap_or_else(|_| "0".to_owned());
    let dir = std::env::temp_dir().join(format!("{}{}-{n}", run_prefix(&run), std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// The installed redis-server's version.
fn server_version() -> (u32, u32, u32) {
    let out = Command::new("redis-server")
        .arg("--version")
        .output()
        .expect("run redis-server --version");
    let text = String::from_utf8_lossy(&out.stdout);
    let v = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix("v="))
        .unwrap_or("0.0.0");
    let mut it = v.split('.').map(|p| p.parse().unwrap_or(0));
    (
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
    )
}
