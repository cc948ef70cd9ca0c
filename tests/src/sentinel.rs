//! `SentinelSet`: a primary, a replica and three sentinels watching them, on free ports in
//! temporary directories, killed on drop.

use crate::{ServerConfig, TestServer};
use std::time::{Duration, Instant};

/// The service name the sentinels monitor.
pub const SERVICE: &str = "mymaster";

/// How long the set may take to form (replica synced, sentinels seeing each other).
const FORM_TIMEOUT: Duration = Duration::from_secs(30);

/// How a [`SentinelSet`] is configured.
#[derive(Clone, Debug)]
pub struct SentinelSetConfig {
    /// `requirepass` of the primary and the replica (and `masterauth` between them;
    /// `sentinel auth-pass` for the sentinels).
    pub data_password: Option<String>,
    /// `requirepass` of the sentinels (and `sentinel sentinel-pass` between them).
    pub sentinel_password: Option<String>,
    /// `down-after-milliseconds`: how long the primary must be silent to be down.
    pub down_after: Duration,
    /// `failover-timeout`.
    pub failover_timeout: Duration,
}

impl Default for SentinelSetConfig {
    fn default() -> Self {
        SentinelSetConfig {
            data_password: None,
            sentinel_password: None,
            down_after: Duration::from_millis(1000),
            failover_timeout: Duration::from_millis(3000),
        }
    }
}

/// One primary, one replica and three sentinels (quorum 2), ready when returned: the
/// replica is synced and every sentinel sees the replica and the two other sentinels.
#[derive(Debug)]
pub struct SentinelSet {
    /// The data nodes: the primary first at start; a failover swaps their roles, not
    /// their places here.
    pub nodes: Vec<TestServer>,
    /// The three sentinels.
    pub sentinels: Vec<TestServer>,
    config: SentinelSetConfig,
}

impl SentinelSet {
    /// Starts a set with the default configuration (no passwords).
    ///
    /// # Panics
    /// If a server does not start or the set does not form within 30 s.
    pub fn start() -> SentinelSet {
        Self::start_with(SentinelSetConfig::default())
    }

    /// Starts a set with `config`.
    ///
    /// # Panics
    /// As [`SentinelSet::start`].
    pub fn start_with(config: SentinelSetConfig) -> SentinelSet {
        let data = |extra: Option<String>| {
            let mut c = ServerConfig::default();
            if let Some(p) = &config.data_password {
                c = c.password(p).line(&format!("masterauth {p}"));
            }
            if let Some(line) = extra {
                c = c.line(&line);
            }
            c.start()
        };
        let primary = data(None);
        let replica = data(Some(format!("replicaof 127.0.0.1 {}", primary.port())));
        let mut set = SentinelSet {
            nodes: vec![primary, replica],
            sentinels: Vec::new(),
            config: config.clone(),
        };
        set.wait_synced(1);
        let port = set.nodes[0].port();
        for _ in 0..3 {
            let mut c = ServerConfig::default()
                .sentinel()
                .line(&format!("sentinel monitor {SERVICE} 127.0.0.1 {port} 2"))
                .line(&format!(
                    "sentinel down-after-milliseconds {SERVICE} {}",
                    config.down_after.as_millis()
                ))
                .line(&format!(
                    "sentinel failover-timeout {SERVICE} {}",
                    config.failover_timeout.as_millis()
                ))
                .line(&format!("sentinel parallel-syncs {SERVICE} 1"));
            if let Some(p) = &config.data_password {
                c = c.line(&format!("sentinel auth-pass {SERVICE} {p}"));
            }
            if let Some(p) = &config.sentinel_password {
                c = c.password(p).line(&format!("sentinel sentinel-pass {p}"));
            }
            set.sentinels.push(c.start());
        }
        set.wait_formed(port);
        set
    }

    /// The sentinels' URLs, with their password if they have one.
    pub fn sentinel_urls(&self) -> Vec<String> {
        let auth = match &self.config.sentinel_password {
            Some(p) => format!(":{p}@"),
            None => String::new(),
        };
        self.sentinels
            .iter()
            .map(|s| format!("redis://{auth}127.0.0.1:{}", s.port()))
            .collect()
    }

    /// The data node listening on `port`.
    ///
    /// # Panics
    /// If none does.
    pub fn node(&mut self, port: u16) -> &mut TestServer {
        self.nodes
            .iter_mut()
            .find(|n| n.port() == port)
            .expect("a data node on that port")
    }

    /// What a sentinel's `INFO sentinel` says about the service: (primary port, replicas
    /// known, sentinels known), `None` when it cannot be read (the sentinel is down).
    pub fn view(&self, sentinel: usize) -> Option<(u16, usize, usize)> {
        let s = &self.sentinels[sentinel];
        // A stopped sentinel refuses the connection; the check spares a panic message.
        std::net::TcpStream::connect(("127.0.0.1", s.port())).ok()?;
        let text = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            s.raw(&["INFO", "sentinel"])
        }))
        .ok()?;
        let line = text
            .lines()
            .find(|l| l.contains(&format!("name={SERVICE},")))?;
        let get = |key: &str| {
            line.split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
                .map(str::to_owned)
        };
        let port = get("address")?.rsplit(':').next()?.parse().ok()?;
        let replicas = get("slaves")?.parse().ok()?;
        let sentinels = get("sentinels")?.parse().ok()?;
        Some((port, replicas, sentinels))
    }

    /// The primary's port as the first sentinel that answers sees it.
    ///
    /// # Panics
    /// If no sentinel answers.
    pub fn primary_port(&self) -> u16 {
        (0..self.sentinels.len())
            .find_map(|i| self.view(i))
            .expect("a sentinel answers")
            .0
    }

    /// Asks the first sentinel for a failover (`SENTINEL FAILOVER`): the replica is
    /// promoted at once, with the old primary still up.
    ///
    /// # Panics
    /// If the sentinel refuses.
    pub fn force_failover(&self) {
        let reply = self.sentinels[0].raw(&["SENTINEL", "FAILOVER", SERVICE]);
        assert_eq!(reply, "+OK", "SENTINEL FAILOVER refused");
    }

    /// Waits until every running sentinel names a primary other than `old_port`, and
    /// returns the new one's port.
    ///
    /// # Panics
    /// If that does not happen within `timeout`.
    pub fn wait_for_new_primary(&self, old_port: u16, timeout: Duration) -> u16 {
        let deadline = Instant::now() + timeout;
        loop {
            let views: Vec<_> = (0..self.sentinels.len())
                .filter_map(|i| self.view(i))
                .collect();
            if !views.is_empty() && views.iter().all(|v| v.0 != old_port) {
                return views[0].0;
            }
            assert!(
                Instant::now() < deadline,
                "no failover away from {old_port} within {timeout:?}: {views:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the node on `port` reports itself a replica with its link up (the
    /// old primary, once the sentinels reconfigured it after a failover).
    ///
    /// # Panics
    /// If that does not happen within `timeout`.
    pub fn wait_replica_synced(&self, port: u16, timeout: Duration) {
        let node = self
            .nodes
            .iter()
            .find(|n| n.port() == port)
            .expect("a data node on that port");
        let deadline = Instant::now() + timeout;
        loop {
            let info = node.raw(&["INFO", "replication"]);
            if info.contains("role:slave") && info.contains("master_link_status:up") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{port} not a synced replica within {timeout:?}:\n{info}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until every sentinel has a client subscribed to a pattern (a Sentinel
    /// client listening to its events), so that a failover started now is heard.
    ///
    /// # Panics
    /// If that does not happen within `timeout`.
    pub fn wait_subscribed(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        for s in &self.sentinels {
            while !s.raw(&["CLIENT", "LIST"]).contains(" psub=1 ") {
                assert!(
                    Instant::now() < deadline,
                    "no subscriber on sentinel {}",
                    s.port()
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    fn wait_synced(&self, replica: usize) {
        let port = self.nodes[replica].port();
        self.wait_replica_synced(port, FORM_TIMEOUT);
    }

    fn wait_formed(&self, primary: u16) {
        let deadline = Instant::now() + FORM_TIMEOUT;
        loop {
            let views: Vec<_> = (0..self.sentinels.len()).map(|i| self.view(i)).collect();
            let want = Some((primary, 1, self.sentinels.len()));
            if views.iter().all(|v| *v == want) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the sentinels did not see each other and the replica: {views:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
