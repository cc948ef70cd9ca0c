//! Lua scripts (EVAL, SCRIPT *) and functions (FCALL, FUNCTION *).
//!
//! Scripts and functions return whatever they choose, so their replies are [`Value`]s;
//! convert one with [`FromValue`](crate::FromValue). Keys are passed apart from other
//! arguments, as the server needs them for routing; the key count is computed.

use crate::types::{
    FlushMode, FunctionListOptions, LibraryInfo, RestorePolicy, ScriptDebugMode, ValueMap,
};
use crate::{Cmd, ToArgs};
use bytes::Bytes;
use resp_proto::Value;

/// Writes `numkeys`, the keys and the other arguments, as EVAL and FCALL take them.
fn keys_then_args<K: ToArgs, A: ToArgs>(c: &mut Cmd, keys: K, args: A) {
    // The count must precede the keys, so they are encoded once aside to count them.
    let mut scratch = Cmd::from_args(&[] as &[&str]);
    keys.write_args(&mut scratch);
    c.arg(scratch.argc()).key(keys).arg(args);
}

commands! {
    /// Scripting and function commands. See <https://redis.io/commands/?group=scripting>.
    pub trait ScriptingCommands, table SCRIPTING;

    /// Runs a Lua script with `keys` (`KEYS[i]`) and `args` (`ARGV[i]`).
    /// See <https://redis.io/commands/eval/>.
    "EVAL" [] fn eval<S: ToArgs, K: ToArgs, A: ToArgs>(script: S, keys: K, args: A) -> Value
        => |c| { c.arg(script); keys_then_args(c, keys, args); }

    /// Runs a read-only Lua script.
    /// See <https://redis.io/commands/eval_ro/>.
    "EVAL_RO" [READONLY] fn eval_ro<S: ToArgs, K: ToArgs, A: ToArgs>(script: S, keys: K, args: A) -> Value
        => |c| { c.arg(script); keys_then_args(c, keys, args); }

    /// Runs a cached Lua script by its SHA1; the server answers NOSCRIPT if it does not
    /// have it.
    /// See <https://redis.io/commands/evalsha/>.
    "EVALSHA" [] fn evalsha<S: ToArgs, K: ToArgs, A: ToArgs>(sha1: S, keys: K, args: A) -> Value
        => |c| { c.arg(sha1); keys_then_args(c, keys, args); }

    /// Runs a cached read-only Lua script by its SHA1.
    /// See <https://redis.io/commands/evalsha_ro/>.
    "EVALSHA_RO" [READONLY] fn evalsha_ro<S: ToArgs, K: ToArgs, A: ToArgs>(sha1: S, keys: K, args: A) -> Value
        => |c| { c.arg(sha1); keys_then_args(c, keys, args); }

    /// Sets the debug mode of the next EVAL on this connection (dedicated connections
    /// only: a debugging session takes the connection over).
    /// See <https://redis.io/commands/script-debug/>.
    "SCRIPT DEBUG" [] fn script_debug(mode: ScriptDebugMode) -> () => |c| { c.arg(mode); }

    /// Returns, for each SHA1, whether the script is cached.
    /// See <https://redis.io/commands/script-exists/>.
    "SCRIPT EXISTS" [ALL_PRIMARIES | MERGE_AND] fn script_exists<S: ToArgs>(sha1s: S) -> Vec<bool> => |c| { c.arg(sha1s); }

    /// Empties the script cache.
    /// See <https://redis.io/commands/script-flush/>.
    "SCRIPT FLUSH" [ALL_PRIMARIES] fn script_flush(mode: Option<FlushMode>) -> () => |c| { c.arg(mode); }

    /// Stops the running script if it has not written.
    /// See <https://redis.io/commands/script-kill/>.
    "SCRIPT KILL" [] fn script_kill() -> () => |_c| {}

    /// Caches a script; returns its SHA1.
    /// See <https://redis.io/commands/script-load/>.
    "SCRIPT LOAD" [ALL_PRIMARIES] fn script_load<S: ToArgs>(script: S) -> String => |c| { c.arg(script); }

    /// Returns SCRIPT's help text.
    /// See <https://redis.io/commands/script-help/>.
    "SCRIPT HELP" [] fn script_help() -> Vec<String> => |_c| {}

    /// Calls a function with `keys` and `args`.
    /// See <https://redis.io/commands/fcall/>.
    "FCALL" [] fn fcall<F: ToArgs, K: ToArgs, A: ToArgs>(function: F, keys: K, args: A) -> Value
        => |c| { c.arg(function); keys_then_args(c, keys, args); }

    /// Calls a read-only function.
    /// See <https://redis.io/commands/fcall_ro/>.
    "FCALL_RO" [READONLY] fn fcall_ro<F: ToArgs, K: ToArgs, A: ToArgs>(function: F, keys: K, args: A) -> Value
        => |c| { c.arg(function); keys_then_args(c, keys, args); }

    /// Deletes a library and its functions.
    /// See <https://redis.io/commands/function-delete/>.
    "FUNCTION DELETE" [ALL_PRIMARIES] fn function_delete<L: ToArgs>(library: L) -> () => |c| { c.arg(library); }

    /// Returns every library, serialized for FUNCTION RESTORE.
    /// See <https://redis.io/commands/function-dump/>.
    "FUNCTION DUMP" [] fn function_dump() -> Bytes => |_c| {}

    /// Deletes every library.
    /// See <https://redis.io/commands/function-flush/>.
    "FUNCTION FLUSH" [ALL_PRIMARIES] fn function_flush(mode: Option<FlushMode>) -> () => |c| { c.arg(mode); }

    /// Stops the running function if it has not written.
    /// See <https://redis.io/commands/function-kill/>.
    "FUNCTION KILL" [] fn function_kill() -> () => |_c| {}

    /// Returns the libraries and their functions.
    /// See <https://redis.io/commands/function-list/>.
    "FUNCTION LIST" [] fn function_list(options: FunctionListOptions) -> Vec<LibraryInfo> => |c| { c.arg(options); }

    /// Loads a library from its source (which names it, `#!lua name=mylib`); returns
    /// its name.
    /// See <https://redis.io/commands/function-load/>.
    "FUNCTION LOAD" [ALL_PRIMARIES] fn function_load<S: ToArgs>(code: S) -> String => |c| { c.arg(code); }

    /// Loads a library, replacing one of the same name.
    /// See <https://redis.io/commands/function-load/>.
    "FUNCTION LOAD" [ALL_PRIMARIES] fn function_load_replace<S: ToArgs>(code: S) -> String
        => |c| { c.arg("REPLACE").arg(code); }

    /// Restores libraries from FUNCTION DUMP's payload.
    /// See <https://redis.io/commands/function-restore/>.
    "FUNCTION RESTORE" [ALL_PRIMARIES] fn function_restore(payload: Bytes, policy: Option<RestorePolicy>) -> ()
        => |c| { c.arg(payload).arg(policy); }

    /// Returns the running function, if any, and the engines' statistics.
    /// See <https://redis.io/commands/function-stats/>.
    "FUNCTION STATS" [] fn function_stats() -> ValueMap => |_c| {}

    /// Returns FUNCTION's help text.
    /// See <https://redis.io/commands/function-help/>.
    "FUNCTION HELP" [] fn function_help() -> Vec<String> => |_c| {}
}
