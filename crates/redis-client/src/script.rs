//! Lua scripts as objects: [`Script`] keeps the source and its SHA1, runs with EVALSHA,
//! and loads the script when the server answers NOSCRIPT.

use crate::client::convert;
use crate::{Error, Redis, Result};
use bytes::Bytes;
use redis_commands::{Cmd, FromValue, ToArgs};
use resp_proto::ErrorCode;
use sha1::{Digest, Sha1};
use std::fmt;

/// A Lua script registered with a client (redis-py 2.7.6's `register_script`).
///
/// ```no_run
/// use redis_client::{prelude::*, Redis};
/// let r = Redis::open("redis://localhost")?;
/// let multiply = r.register_script(
///     "local value = redis.call('GET', KEYS[1])\n\
///      value = tonumber(value)\n\
///      return value * ARGV[1]",
/// );
/// r.set("foo", 2)?;
/// let ten: i64 = multiply.key("foo").arg(5).invoke()?;
/// assert_eq!(ten, 10);
/// # Ok::<(), redis_client::Error>(())
/// ```
///
/// The SHA1 is computed locally, so a script costs no round trip until it runs; the
/// first run on a server that lacks it costs one extra (NOSCRIPT, SCRIPT LOAD, EVALSHA).
#[derive(Clone)]
#[must_use = "a script runs only when a call of it is invoked"]
pub struct Script {
    source: Bytes,
    sha: String,
    client: Option<Redis>,
}

impl fmt::Debug for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Script")
            .field("sha", &self.sha)
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// A [`Script`] bound to this client (it can still run on any other).
    pub fn register_script(&self, source: impl Into<Bytes>) -> Script {
        let mut s = Script::new(source);
        s.client = Some(self.clone());
        s
    }
}

impl Script {
    /// A script not bound to any client; run it with [`ScriptCall::invoke_on`].
    pub fn new(source: impl Into<Bytes>) -> Script {
        let source = source.into();
        let sha = hex(&Sha1::digest(&source));
        Script {
            source,
            sha,
            client: None,
        }
    }

    /// The script's SHA1, in lowercase hex, as EVALSHA and SCRIPT EXISTS name it.
    pub fn sha(&self) -> &str {
        &self.sha
    }

    /// The Lua source.
    pub fn source(&self) -> &Bytes {
        &self.source
    }

    /// Starts a call with key `k` (`KEYS[1]`, then `KEYS[2]` …).
    pub fn key<K: ToArgs>(&self, k: K) -> ScriptCall<'_> {
        self.call().key(k)
    }

    /// Starts a call with argument `a` (`ARGV[1]` …).
    pub fn arg<A: ToArgs>(&self, a: A) -> ScriptCall<'_> {
        self.call().arg(a)
    }

    /// Starts a call with no keys or arguments yet.
    pub fn call(&self) -> ScriptCall<'_> {
        ScriptCall {
            script: self,
            keys: Cmd::new("KEYS"),
            args: Cmd::new("ARGV"),
        }
    }

    /// The EVALSHA command for these keys and arguments.
    pub(crate) fn evalsha(&self, keys: &Cmd, args: &Cmd) -> Cmd {
        let keys: Vec<&[u8]> = keys.args().skip(1).collect();
        let mut cmd = Cmd::new("EVALSHA");
        cmd.arg(self.sha.as_str()).arg(keys.len()).key(keys);
        cmd.arg(args.args().skip(1).collect::<Vec<_>>());
        cmd
    }

    /// The SCRIPT LOAD command for this script.
    pub fn load_cmd(&self) -> Cmd {
        let mut cmd = Cmd::new("SCRIPT LOAD");
        cmd.arg(&self.source);
        cmd
    }
}

/// Keys and arguments of one script run, built up by [`Script::key`] and
/// [`Script::arg`].
#[derive(Debug)]
#[must_use = "a script call runs nothing until `invoke` or `invoke_on`"]
pub struct ScriptCall<'s> {
    script: &'s Script,
    // Each holds a placeholder name argument so the builders can be reused.
    keys: Cmd,
    args: Cmd,
}

impl ScriptCall<'_> {
    /// Adds key(s).
    pub fn key<K: ToArgs>(mut self, k: K) -> Self {
        self.keys.arg(k);
        self
    }

    /// Adds argument(s).
    pub fn arg<A: ToArgs>(mut self, a: A) -> Self {
        self.args.arg(a);
        self
    }

    /// Runs on the client the script was registered with.
    ///
    /// # Errors
    /// [`Error::Server`] with the script's error; connection errors. Calling this on a
    /// script made with [`Script::new`] is [`Error::Script`].
    pub fn invoke<T: FromValue>(self) -> Result<T> {
        let client = self.script.client.clone().ok_or_else(|| {
            Error::Script("this script is bound to no client: use invoke_on".to_owned())
        })?;
        self.invoke_on(&client)
    }

    /// Runs on `client`, which may be connected to any server: EVALSHA, and on NOSCRIPT,
    /// SCRIPT LOAD and EVALSHA once more.
    ///
    /// # Errors
    /// As [`ScriptCall::invoke`].
    pub fn invoke_on<T: FromValue>(self, client: &Redis) -> Result<T> {
        let cmd = self.script.evalsha(&self.keys, &self.args);
        let reply = match client.request(&cmd) {
            Err(Error::Server(e)) if e.code() == ErrorCode::NOSCRIPT => {
                client.request(&self.script.load_cmd())?;
                client.request(&cmd)?
            }
            other => other?,
        };
        convert(&cmd, reply)
    }

    /// The script this call runs.
    pub fn script(&self) -> &Script {
        self.script
    }

    /// The EVALSHA command this call sends, for queueing where [`ScriptCall::invoke_on`]
    /// does not apply.
    pub fn to_cmd(&self) -> Cmd {
        self.script.evalsha(&self.keys, &self.args)
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_matches_redis() {
        // Redis's own SHA1 of "return 1" (SCRIPT LOAD answers this).
        assert_eq!(
            Script::new("return 1").sha(),
            "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"
        );
    }

    #[test]
    fn evalsha_wire_bytes() {
        let s = Script::new("return 1");
        let cmd = s.key("k1").key("k2").arg(5).to_cmd();
        let args: Vec<&[u8]> = cmd.args().collect();
        assert_eq!(
            args,
            vec![
                &b"EVALSHA"[..],
                b"e0e1f9fabfc9d4800c877a703b823ac0578ff8db",
                b"2",
                b"k1",
                b"k2",
                b"5"
            ]
        );
        assert_eq!(cmd.keys().collect::<Vec<_>>(), vec![&b"k1"[..], b"k2"]);
    }
}
