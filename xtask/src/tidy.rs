//! Repository rules a compiler does not check: every Rust file opens with a `//!` comment,
//! no test is marked ignored, and the protocol and command crates stay free of I/O.

use std::fs;
use std::path::{Path, PathBuf};

/// Checks the rules; returns every problem found.
pub fn check(root: &Path) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    for dir in ["crates", "tests", "benches", "xtask"] {
        for file in rust_files(&root.join(dir)) {
            let text = fs::read_to_string(&file).unwrap_or_default();
            let shown = file
                .strip_prefix(root)
                .unwrap_or(&file)
                .display()
                .to_string();
            if !text.trim_start().starts_with("//!") {
                problems.push(format!("{shown}: does not open with a //! comment"));
            }
            // Written split so this file does not trip its own check.
            if text.contains(concat!("#[", "ignore")) {
                problems.push(format!(
                    "{shown}: has an ignored test; assert the current behaviour instead"
                ));
            }
            // A crate's examples are programs that use it, and may do I/O (resp-proto's
            // proxy has sockets and threads); the crate itself may not.
            let example = shown.contains("/examples/");
            let sans_io = (shown.starts_with("crates/resp-proto/")
                || shown.starts_with("crates/redis-commands/")
                || shown == "crates/redis-conn/src/machine.rs")
                && !example;
            if sans_io {
                // Unit tests may read the clock to make instants; the code may not.
                let text = text.split("#[cfg(test)]").next().unwrap_or_default();
                for banned in [
                    "std::net",
                    "std::thread",
                    "Instant::now",
                    "SystemTime::now",
                    "Mutex",
                ] {
                    if text.contains(banned) {
                        problems.push(format!("{shown}: uses {banned}, but this code does no I/O"));
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn repository_is_tidy() {
        let root = super::super::workspace_root();
        if let Err(problems) = super::check(&root) {
            panic!("tidy problems:\n{}", problems.join("\n"));
        }
    }
}
