//! Making sure redis-server and redis-cli (Redis 7.0 or newer) are installed, and finding
//! servers the tests left behind.

use std::process::Command;

/// Debian packages that provide what the tests and the demo need: the server, its
/// command-line tools, and openssl for the certificates of the TLS tests.
const PACKAGES: [&str; 3] = ["redis-server", "redis-tools", "openssl"];

/// Checks for redis-server and redis-cli; installs them with apt-get when missing and
/// possible, or explains exactly what to install.
pub fn ensure() -> Result<(), String> {
    if let Some(missing) = problem() {
        println!(
            "==> {missing}; installing {} with apt-get",
            PACKAGES.join(" ")
        );
        install().map_err(|why| {
            format!(
                "{missing}, and installing it failed ({why}).\n\
                 Install Redis 7.0 or newer yourself, e.g. on Debian/Ubuntu:\n    \
                 sudo apt-get install redis-server redis-tools openssl\n\
                 so that `redis-server`, `redis-cli` and `openssl` are on PATH."
            )
        })?;
        if let Some(still) = problem() {
            return Err(format!(
                "{still} even after installing {}",
                PACKAGES.join(" ")
            ));
        }
    }
    Ok(())
}

/// What is missing or too old, if anything.
fn problem() -> Option<String> {
    let version = match Command::new("redis-server").arg("--version").output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        _ => return Some("redis-server is not installed".to_owned()),
    };
    let v = version
        .split_whitespace()
        .find_map(|w| w.strip_prefix("v="))
        .unwrap_or("0");
    let major: u32 = v
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major < 7 {
        return Some(format!("redis-server {v} is older than 7.0"));
    }
    for (tool, arg) in [("redis-cli", "--version"), ("openssl", "version")] {
        match Command::new(tool).arg(arg).output() {
            Ok(out) if out.status.success() => {}
            _ => return Some(format!("{tool} is not installed")),
        }
    }
    None
}

fn install() -> Result<(), String> {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false);
    let (program, prefix): (&str, &[&str]) = if root {
        ("apt-get", &[])
    } else {
        ("sudo", &["-n", "apt-get"])
    };
    if Command::new("apt-get").arg("--version").output().is_err() {
        return Err("apt-get is not available".to_owned());
    }
    // The package would start a system-wide server on port 6379; the tests start their
    // own, so keep the package from starting one where the policy hook is free to use.
    let policy = std::path::Path::new("/usr/sbin/policy-rc.d");
    let own_policy =
        root && !policy.exists() && std::fs::write(policy, "#!/bin/sh\nexit 101\n").is_ok();
    if own_policy {
        let _ = Command::new("chmod")
            .args(["+x", "/usr/sbin/policy-rc.d"])
            .status();
    }
    let run = |args: &[&str]| -> Result<(), String> {
        let status = Command::new(program)
            .args(prefix)
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map_err(|e| e.to_string())?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("apt-get {} exited with {status}", args.join(" ")))
        }
    };
    let result = run(&["update", "-qq"]).and_then(|()| {
        let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
        args.extend(PACKAGES);
        run(&args)
    });
    if own_policy {
        let _ = std::fs::remove_file(policy);
    }
    result
}

/// PIDs of redis-server processes running in a directory of the test run named `run`.
pub fn leftover_servers(run: &str) -> Vec<u32> {
    let prefix = redis_tests::run_prefix(run);
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            // The name it was started by: Debian's redis-server is a link to
            // redis-check-rdb, which is what `/proc/PID/exe` names.
            let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
            matches!(name.trim_end(), "redis-server" | "redis-sentinel")
                && cwd.to_string_lossy().contains(&prefix)
        })
        .collect()
}

/// Kills the given processes.
pub fn kill(pids: &[u32]) {
    for pid in pids {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
}

#[cfg(test)]
mod tests {
    use super::leftover_servers;
    use std::time::{Duration, Instant};

    /// A run counts as its leftovers the servers in its own directories only: not those of
    /// another run going on beside it.
    #[test]
    fn the_leftovers_of_a_run_are_its_own_servers() {
        let run = format!("xtask-unit-{}", std::process::id());
        let dir = std::env::temp_dir().join(format!("{}0-0", redis_tests::run_prefix(&run)));
        std::fs::create_dir_all(&dir).unwrap();
        // Killed however the test ends.
        struct Server(std::process::Child);
        impl Drop for Server {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        let server = std::process::Command::new("redis-server")
            // A Unix socket only: a server with nowhere to listen exits.
            .args([
                "--port",
                "0",
                "--unixsocket",
                "s",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .current_dir(&dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map(Server)
            .expect("redis-server runs");
        let pid = server.0.id();
        let start = Instant::now();
        while !leftover_servers(&run).contains(&pid) {
            assert!(start.elapsed() < Duration::from_secs(5), "not found");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!leftover_servers(&format!("{run}-other")).contains(&pid));
        assert!(!leftover_servers("x0").contains(&pid));
        drop(server);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
