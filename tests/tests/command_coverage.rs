//! The declared command set against the running server's own list: every command and
//! subcommand the server knows is either declared or excluded with a reason, and the
//! declared read-only and blocking flags agree with the server's.

use redis_client::prelude::*;
use redis_client::redis_commands::{cmd, Flags};
use redis_client::Redis;
use redis_tests::TestServer;
use std::collections::{BTreeSet, HashMap};
use std::io::Write as _;

/// The server's commands, `CONFIG GET` style, with their flags (`readonly`, `blocking` …).
fn server_commands(r: &Redis) -> HashMap<String, Vec<String>> {
    let mut out = HashMap::new();
    for c in r.command().expect("COMMAND") {
        for s in &c.subcommands {
            out.insert(
                s.name.replace('|', " ").to_ascii_uppercase(),
                s.flags.clone(),
            );
        }
        if c.subcommands.is_empty() {
            out.insert(c.name.to_ascii_uppercase(), c.flags);
        }
    }
    out
}

#[test]
fn every_server_command_is_declared_or_excluded() {
    let server = TestServer::start();
    let r = Redis::open(&server.url()).unwrap();
    let on_server = server_commands(&r);
    let declared: BTreeSet<&str> = cmd::all().map(|i| i.name).collect();
    let excluded: BTreeSet<&str> = cmd::EXCLUDED.iter().map(|(n, _)| *n).collect();
    let implemented = on_server
        .keys()
        .filter(|n| declared.contains(n.as_str()))
        .count();
    let mut missing: Vec<&str> = on_server
        .keys()
        .map(String::as_str)
        .filter(|n| !declared.contains(n) && !excluded.contains(n))
        .collect();
    missing.sort_unstable();
    // Written to stderr directly, past the test harness's capture, so the suite's log
    // always shows the figure.
    let _ = writeln!(
        std::io::stderr(),
        "command coverage: implemented {implemented}, excluded {}, server {}",
        excluded.len(),
        on_server.len()
    );
    if !missing.is_empty() {
        println!("missing: {}", missing.join(", "));
    }
    for (name, _) in cmd::EXCLUDED {
        assert!(
            on_server.contains_key(*name),
            "{name} is excluded but the server does not know it"
        );
    }
    assert!(missing.is_empty(), "{} commands missing", missing.len());
}

/// READONLY exactly where the server says `readonly` (it decides what is safe to retry);
/// BLOCKING only where the server says `blocking` (it decides how long a reply may take).
#[test]
fn flags_match_the_server() {
    let server = TestServer::start();
    let r = Redis::open(&server.url()).unwrap();
    let on_server = server_commands(&r);
    let mut wrong = Vec::new();
    let mut checked = 0;
    for info in cmd::all() {
        // A command newer than the running server (WAITAOF on 7.0) has nothing to check.
        let Some(flags) = on_server.get(info.name) else {
            continue;
        };
        let has = |f: &str| flags.iter().any(|x| x == f);
        if has("readonly") != info.flags.contains(Flags::READONLY) {
            wrong.push(format!(
                "{} ({}): readonly, server says {flags:?}",
                info.name, info.method
            ));
        }
        // WAIT and WAITAOF hold their reply up to their timeout without the server's
        // `blocking` flag (which means "may block on a key"); the client must still wait.
        let waits = matches!(info.name, "WAIT" | "WAITAOF");
        if info.flags.contains(Flags::BLOCKING) && !has("blocking") && !waits {
            wrong.push(format!(
                "{} ({}): blocking, server says {flags:?}",
                info.name, info.method
            ));
        }
        checked += 1;
    }
    assert!(
        wrong.is_empty(),
        "flags differ from the server's: {wrong:#?}"
    );
    assert!(checked > 300, "only {checked} declarations checked");
}
