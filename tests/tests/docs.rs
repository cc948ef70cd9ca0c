//! Every Rust code block of README.md and docs/*.md, compiled and run against real servers
//! (issue 29): a reader who copies a block gets a program that builds and works as the
//! text says.
//!
//! `tests/build.rs` turns each block into a module and a test here (`readme_1`,
//! `caching_1` …, named after the file and the block's place in it). The addresses the
//! blocks write (`redis://localhost:6379/0`, `redis://10.0.0.1:7000`,
//! `redis://:sentinel-pw@10.0.0.1:26379` …) are pointed by [`url`] at what the test
//! started for them: one server for the plain ones, a cluster for ports 7000 to 7099, a
//! Sentinel set for port 26379 (with the sentinels' and the data nodes' passwords the
//! block writes). The tests run one at a time, since the routes are shared.

use redis_tests::{SentinelSet, SentinelSetConfig, TestCluster, TestServer};
use std::fmt::Debug;
use std::sync::Mutex;

include!(concat!(env!("OUT_DIR"), "/doc_blocks.rs"));

/// Where each address written in the running block goes: `host:port` to `host:port`.
static ROUTES: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

/// One block at a time: [`ROUTES`] is the running block's.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The URL a block wrote, with its address replaced by the server started for it; user,
/// password, database and options as written. An address nothing was started for (the
/// ignored one of a Sentinel's data node settings) is left alone.
pub fn url(written: &'static str) -> &'static str {
    let Some(at) = address(written) else {
        return written;
    };
    let routes = ROUTES.lock().unwrap_or_else(|e| e.into_inner());
    match routes.iter().find(|(from, _)| *from == at.key) {
        Some((_, to)) => {
            let routed = format!("{}{}{}", &written[..at.start], to, &written[at.end..]);
            Box::leak(routed.into_boxed_str())
        }
        None => written,
    }
}

/// Runs one block, after starting what its addresses need.
pub fn run(label: &str, urls: &[&str], block: impl FnOnce()) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    eprintln!("running the block at {label}");
    let addresses: Vec<Address> = urls.iter().filter_map(|u| address(u)).collect();
    let mut routes = Vec::new();
    let mut keep = Vec::<Box<dyn Debug>>::new();

    let plain = distinct(&addresses, |a| a.kind() == Kind::Plain);
    if !plain.is_empty() {
        let server = TestServer::start();
        for key in plain {
            routes.push((key, format!("127.0.0.1:{}", server.port())));
        }
        keep.push(Box::new(server));
    }
    let cluster = distinct(&addresses, |a| a.kind() == Kind::Cluster);
    if !cluster.is_empty() {
        let nodes = TestCluster::start_with(0);
        let to: Vec<String> = nodes
            .urls()
            .iter()
            .filter_map(|u| address(u))
            .map(|a| a.key)
            .collect();
        for (i, key) in cluster.into_iter().enumerate() {
            routes.push((key, to[i % to.len()].clone()));
        }
        keep.push(Box::new(nodes));
    }
    let sentinels = distinct(&addresses, |a| a.kind() == Kind::Sentinel);
    if !sentinels.is_empty() {
        let password = |kind: Kind| {
            urls.iter()
                .filter_map(|u| Some((address(u)?, *u)))
                .find(|(a, _)| a.kind() == kind)
                .and_then(|(a, u)| password(&u[..a.start]))
        };
        let set = SentinelSet::start_with(SentinelSetConfig {
            sentinel_password: password(Kind::Sentinel),
            data_password: password(Kind::Ignored),
            ..SentinelSetConfig::default()
        });
        let to: Vec<String> = set
            .sentinel_urls()
            .iter()
            .filter_map(|u| address(u))
            .map(|a| a.key)
            .collect();
        for (i, key) in sentinels.into_iter().enumerate() {
            routes.push((key, to[i % to.len()].clone()));
        }
        keep.push(Box::new(set));
    }
    *ROUTES.lock().unwrap_or_else(|e| e.into_inner()) = routes;
    block();
    drop(keep);
}

/// What a block's `main` returned: nothing, or a `Result` that must be `Ok`.
pub trait Outcome {
    /// Panics on an error.
    fn check(self);
}

impl Outcome for () {
    fn check(self) {}
}

impl<E: Debug> Outcome for Result<(), E> {
    fn check(self) {
        if let Err(e) = self {
            panic!("the block failed: {e:?}");
        }
    }
}

/// Checks what a block returned.
pub fn done(outcome: impl Outcome) {
    outcome.check();
}

/// Where in a URL its `host:port` is, and that address with the default port filled in.
struct Address {
    start: usize,
    end: usize,
    key: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    Cluster,
    Sentinel,
    /// A Sentinel's data node settings, whose address is not used.
    Ignored,
}

impl Address {
    fn kind(&self) -> Kind {
        let (host, port) = self.key.rsplit_once(':').unwrap_or((&self.key, "6379"));
        match port.parse::<u16>() {
            _ if host == "ignored" => Kind::Ignored,
            Ok(26379) => Kind::Sentinel,
            Ok(7000..=7099) => Kind::Cluster,
            _ => Kind::Plain,
        }
    }
}

fn address(url: &str) -> Option<Address> {
    let after_scheme = url.find("://")? + 3;
    let rest = &url[after_scheme..];
    let authority_len = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_len];
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let host_port = &authority[host_start..];
    if host_port.is_empty() {
        return None;
    }
    let key = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:6379")
    };
    Some(Address {
        start: after_scheme + host_start,
        end: after_scheme + authority_len,
        key,
    })
}

/// The password in the `scheme://user:password@` part of a URL.
fn password(before_host: &str) -> Option<String> {
    let userinfo = before_host.split("://").nth(1)?.strip_suffix('@')?;
    let (_, password) = userinfo.split_once(':')?;
    Some(password.to_owned())
}

fn distinct(addresses: &[Address], keep: impl Fn(&Address) -> bool) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for a in addresses.iter().filter(|a| keep(a)) {
        if !keys.contains(&a.key) {
            keys.push(a.key.clone());
        }
    }
    keys
}
