//! Server administration commands: INFO, CONFIG, ACL, SLOWLOG, MEMORY, LATENCY, COMMAND,
//! persistence, replication and shutdown.

use crate::time::millis;
use crate::types::{
    CommandDetails, CommandListFilter, DebugObject, FailoverOptions, FlushMode, Info, LatencyEvent,
    Role, ServerTime, ShutdownOptions, SlowlogEntry, ValueMap,
};
use crate::ToArgs;
use bytes::Bytes;
use std::collections::HashMap;
use std::time::Duration;

commands! {
    /// Server administration commands.
    /// See <https://redis.io/commands/?group=server>.
    pub trait ServerCommands, table SERVER;

    /// Checks the connection; returns the server's `PONG`.
    /// See <https://redis.io/commands/ping/>.
    "PING" [ALL_NODES] fn ping() -> Bytes => |_c| {}

    /// Low-level facts about the value at `key` (encoding, reference count, serialized
    /// length, idle time), parsed into fields as redis-py 2.7.6 does. The server refuses
    /// it unless its `enable-debug-command` setting allows it (Redis 7 defaults to `no`).
    /// See <https://redis.io/commands/debug/>.
    "DEBUG OBJECT" [ADMIN] fn debug_object<K: ToArgs>(key: K) -> DebugObject => |c| { c.key(key); }

    /// Deletes every key of the current database, freeing memory as `mode` says (`None`:
    /// the server's default, `lazyfree-lazy-user-flush`).
    /// See <https://redis.io/commands/flushdb/>.
    "FLUSHDB" [ADMIN | ALL_PRIMARIES] fn flushdb(mode: Option<FlushMode>) -> () => |c| { c.arg(mode); }

    /// Deletes every key of every database, freeing memory as `mode` says (`None`: the
    /// server's default).
    /// See <https://redis.io/commands/flushall/>.
    "FLUSHALL" [ADMIN | ALL_PRIMARIES] fn flushall(mode: Option<FlushMode>) -> () => |c| { c.arg(mode); }

    /// Returns the number of keys in the current database.
    /// See <https://redis.io/commands/dbsize/>.
    "DBSIZE" [READONLY | ALL_PRIMARIES | MERGE_SUM] fn dbsize() -> i64 => |_c| {}

    /// Returns the default sections of the server's information, numbers typed.
    /// See <https://redis.io/commands/info/>.
    "INFO" [] fn info() -> Info => |_c| {}

    /// Returns the given sections (`"server"`, `["clients", "memory"]`, `"all"` …).
    /// See <https://redis.io/commands/info/>.
    "INFO" [] fn info_section<S: ToArgs>(sections: S) -> Info => |c| { c.arg(sections); }

    /// Returns the configuration parameters matching `patterns`, by name.
    /// See <https://redis.io/commands/config-get/>.
    "CONFIG GET" [ADMIN] fn config_get<P: ToArgs>(patterns: P) -> HashMap<String, String>
        => |c| { c.arg(patterns); }

    /// Sets a configuration parameter.
    /// See <https://redis.io/commands/config-set/>.
    "CONFIG SET" [ADMIN | ALL_NODES] fn config_set<P: ToArgs, V: ToArgs>(parameter: P, value: V) -> ()
        => |c| { c.arg(parameter).arg(value); }

    /// Resets the statistics INFO reports.
    /// See <https://redis.io/commands/config-resetstat/>.
    "CONFIG RESETSTAT" [ADMIN | ALL_NODES] fn config_resetstat() -> () => |_c| {}

    /// Rewrites the configuration file with the running configuration.
    /// See <https://redis.io/commands/config-rewrite/>.
    "CONFIG REWRITE" [ADMIN] fn config_rewrite() -> () => |_c| {}

    /// Returns CONFIG's help text, one line per element.
    /// See <https://redis.io/commands/config-help/>.
    "CONFIG HELP" [] fn config_help() -> Vec<String> => |_c| {}

    /// Returns the ACL categories.
    /// See <https://redis.io/commands/acl-cat/>.
    "ACL CAT" [ADMIN] fn acl_cat() -> Vec<String> => |_c| {}

    /// Returns the commands of an ACL category.
    /// See <https://redis.io/commands/acl-cat/>.
    "ACL CAT" [ADMIN] fn acl_cat_commands<C: ToArgs>(category: C) -> Vec<String> => |c| { c.arg(category); }

    /// Deletes ACL users; returns how many existed.
    /// See <https://redis.io/commands/acl-deluser/>.
    "ACL DELUSER" [ADMIN] fn acl_deluser<U: ToArgs>(users: U) -> i64 => |c| { c.arg(users); }

    /// Checks whether `user` may run the command `args`; returns `OK` or the reason it
    /// may not.
    /// See <https://redis.io/commands/acl-dryrun/>.
    "ACL DRYRUN" [ADMIN] fn acl_dryrun<U: ToArgs, A: ToArgs>(user: U, args: A) -> String
        => |c| { c.arg(user).arg(args); }

    /// Returns a random password of 256 bits, or of `bits` bits, as hex.
    /// See <https://redis.io/commands/acl-genpass/>.
    "ACL GENPASS" [ADMIN] fn acl_genpass(bits: Option<u32>) -> String => |c| { c.arg(bits); }

    /// Returns an ACL user's rules (`flags`, `passwords`, `commands`, `keys` …), or
    /// `None` for an unknown user.
    /// See <https://redis.io/commands/acl-getuser/>.
    "ACL GETUSER" [ADMIN] fn acl_getuser<U: ToArgs>(user: U) -> Option<ValueMap> => |c| { c.arg(user); }

    /// Returns the ACL rules of every user, one line each.
    /// See <https://redis.io/commands/acl-list/>.
    "ACL LIST" [ADMIN] fn acl_list() -> Vec<String> => |_c| {}

    /// Reloads the ACL file.
    /// See <https://redis.io/commands/acl-load/>.
    "ACL LOAD" [ADMIN] fn acl_load() -> () => |_c| {}

    /// Returns recent ACL denials, newest first, at most `count` of them.
    /// See <https://redis.io/commands/acl-log/>.
    "ACL LOG" [ADMIN] fn acl_log(count: Option<u64>) -> Vec<ValueMap> => |c| { c.arg(count); }

    /// Clears the ACL log.
    /// See <https://redis.io/commands/acl-log/>.
    "ACL LOG" [ADMIN] fn acl_log_reset() -> () => |c| { c.arg("RESET"); }

    /// Saves the ACL users to the ACL file.
    /// See <https://redis.io/commands/acl-save/>.
    "ACL SAVE" [ADMIN] fn acl_save() -> () => |_c| {}

    /// Creates or changes an ACL user with `rules` (`"on"`, `">password"`, `"~key*"`,
    /// `"+@read"` …).
    /// See <https://redis.io/commands/acl-setuser/>.
    "ACL SETUSER" [ADMIN] fn acl_setuser<U: ToArgs, R: ToArgs>(user: U, rules: R) -> ()
        => |c| { c.arg(user).arg(rules); }

    /// Returns the ACL user names.
    /// See <https://redis.io/commands/acl-users/>.
    "ACL USERS" [ADMIN] fn acl_users() -> Vec<String> => |_c| {}

    /// Returns the user this connection is authenticated as.
    /// See <https://redis.io/commands/acl-whoami/>.
    "ACL WHOAMI" [] fn acl_whoami() -> String => |_c| {}

    /// Returns ACL's help text.
    /// See <https://redis.io/commands/acl-help/>.
    "ACL HELP" [] fn acl_help() -> Vec<String> => |_c| {}

    /// Returns the slow log's newest entries (the server's default number, or `count`;
    /// -1 for all).
    /// See <https://redis.io/commands/slowlog-get/>.
    "SLOWLOG GET" [ADMIN] fn slowlog_get(count: Option<i64>) -> Vec<SlowlogEntry> => |c| { c.arg(count); }

    /// Returns the number of entries in the slow log.
    /// See <https://redis.io/commands/slowlog-len/>.
    "SLOWLOG LEN" [ADMIN] fn slowlog_len() -> i64 => |_c| {}

    /// Empties the slow log.
    /// See <https://redis.io/commands/slowlog-reset/>.
    "SLOWLOG RESET" [ADMIN] fn slowlog_reset() -> () => |_c| {}

    /// Returns SLOWLOG's help text.
    /// See <https://redis.io/commands/slowlog-help/>.
    "SLOWLOG HELP" [] fn slowlog_help() -> Vec<String> => |_c| {}

    /// Returns the server's advice on its memory use.
    /// See <https://redis.io/commands/memory-doctor/>.
    "MEMORY DOCTOR" [] fn memory_doctor() -> String => |_c| {}

    /// Returns the allocator's statistics, as text.
    /// See <https://redis.io/commands/memory-malloc-stats/>.
    "MEMORY MALLOC-STATS" [] fn memory_malloc_stats() -> String => |_c| {}

    /// Asks the allocator to release dirty pages.
    /// See <https://redis.io/commands/memory-purge/>.
    "MEMORY PURGE" [] fn memory_purge() -> () => |_c| {}

    /// Returns memory statistics by name.
    /// See <https://redis.io/commands/memory-stats/>.
    "MEMORY STATS" [] fn memory_stats() -> ValueMap => |_c| {}

    /// Returns the bytes `key` and its value take, or `None` if it does not exist; nested
    /// values are sampled (`samples`, 0 for all).
    /// See <https://redis.io/commands/memory-usage/>.
    "MEMORY USAGE" [READONLY] fn memory_usage<K: ToArgs>(key: K, samples: Option<u64>) -> Option<i64>
        => |c| { c.key(key); if let Some(n) = samples { c.arg("SAMPLES").arg(n); } }

    /// Returns MEMORY's help text.
    /// See <https://redis.io/commands/memory-help/>.
    "MEMORY HELP" [] fn memory_help() -> Vec<String> => |_c| {}

    /// Returns the server's analysis of its latency spikes.
    /// See <https://redis.io/commands/latency-doctor/>.
    "LATENCY DOCTOR" [ADMIN] fn latency_doctor() -> String => |_c| {}

    /// Returns an ASCII graph of an event's latency spikes.
    /// See <https://redis.io/commands/latency-graph/>.
    "LATENCY GRAPH" [ADMIN] fn latency_graph<E: ToArgs>(event: E) -> String => |c| { c.arg(event); }

    /// Returns latency histograms per command (all, or those named).
    /// See <https://redis.io/commands/latency-histogram/>.
    "LATENCY HISTOGRAM" [ADMIN] fn latency_histogram(commands: &[&str]) -> ValueMap => |c| { c.arg(commands); }

    /// Returns an event's spikes as `(unix_seconds, milliseconds)`.
    /// See <https://redis.io/commands/latency-history/>.
    "LATENCY HISTORY" [ADMIN] fn latency_history<E: ToArgs>(event: E) -> Vec<(i64, i64)> => |c| { c.arg(event); }

    /// Returns the latest spike of every event.
    /// See <https://redis.io/commands/latency-latest/>.
    "LATENCY LATEST" [ADMIN] fn latency_latest() -> Vec<LatencyEvent> => |_c| {}

    /// Clears the spikes of the events named (all when empty); returns how many were
    /// cleared.
    /// See <https://redis.io/commands/latency-reset/>.
    "LATENCY RESET" [ADMIN] fn latency_reset(events: &[&str]) -> i64 => |c| { c.arg(events); }

    /// Returns LATENCY's help text.
    /// See <https://redis.io/commands/latency-help/>.
    "LATENCY HELP" [] fn latency_help() -> Vec<String> => |_c| {}

    /// Returns every command the server knows, with its facts.
    /// See <https://redis.io/commands/command/>.
    "COMMAND" [] fn command() -> Vec<CommandDetails> => |_c| {}

    /// Returns how many commands the server knows.
    /// See <https://redis.io/commands/command-count/>.
    "COMMAND COUNT" [] fn command_count() -> i64 => |_c| {}

    /// Returns the documentation of the commands named (all when empty), by name.
    /// See <https://redis.io/commands/command-docs/>.
    "COMMAND DOCS" [] fn command_docs(names: &[&str]) -> ValueMap => |c| { c.arg(names); }

    /// Returns the keys of the command `args`.
    /// See <https://redis.io/commands/command-getkeys/>.
    "COMMAND GETKEYS" [] fn command_getkeys<A: ToArgs>(args: A) -> Vec<Bytes> => |c| { c.arg(args); }

    /// Returns the keys of the command `args`, each with its access flags.
    /// See <https://redis.io/commands/command-getkeysandflags/>.
    "COMMAND GETKEYSANDFLAGS" [] fn command_getkeysandflags<A: ToArgs>(args: A) -> Vec<(Bytes, Vec<String>)>
        => |c| { c.arg(args); }

    /// Returns the facts of the commands named (`None` for unknown names).
    /// See <https://redis.io/commands/command-info/>.
    "COMMAND INFO" [] fn command_info(names: &[&str]) -> Vec<Option<CommandDetails>> => |c| { c.arg(names); }

    /// Returns the names of the server's commands, all or filtered.
    /// See <https://redis.io/commands/command-list/>.
    "COMMAND LIST" [] fn command_list(filter: Option<CommandListFilter>) -> Vec<String> => |c| { c.arg(filter); }

    /// Returns COMMAND's help text.
    /// See <https://redis.io/commands/command-help/>.
    "COMMAND HELP" [] fn command_help() -> Vec<String> => |_c| {}

    /// Returns the server's clock.
    /// See <https://redis.io/commands/time/>.
    "TIME" [] fn time() -> ServerTime => |_c| {}

    /// Returns when the last successful save happened, in Unix seconds.
    /// See <https://redis.io/commands/lastsave/>.
    "LASTSAVE" [] fn lastsave() -> i64 => |_c| {}

    /// Saves the dataset to disk, blocking the server until done.
    /// See <https://redis.io/commands/save/>.
    "SAVE" [ADMIN] fn save() -> () => |_c| {}

    /// Starts saving the dataset in the background; returns the server's status text.
    /// See <https://redis.io/commands/bgsave/>.
    "BGSAVE" [ADMIN] fn bgsave() -> String => |_c| {}

    /// Saves in the background as soon as no AOF rewrite is running (`SCHEDULE`).
    /// See <https://redis.io/commands/bgsave/>.
    "BGSAVE" [ADMIN] fn bgsave_schedule() -> String => |c| { c.arg("SCHEDULE"); }

    /// Starts rewriting the append-only file in the background; returns the status text.
    /// See <https://redis.io/commands/bgrewriteaof/>.
    "BGREWRITEAOF" [ADMIN] fn bgrewriteaof() -> String => |_c| {}

    /// Stops the server. On success the server closes the connection, so the call ends
    /// with a connection error; an `Ok` never comes back.
    /// See <https://redis.io/commands/shutdown/>.
    "SHUTDOWN" [ADMIN] fn shutdown(options: ShutdownOptions) -> () => |c| { c.arg(options); }

    /// Makes the server a replica of `host:port`.
    /// See <https://redis.io/commands/replicaof/>.
    "REPLICAOF" [ADMIN] fn replicaof<H: ToArgs>(host: H, port: u16) -> () => |c| { c.arg(host).arg(port); }

    /// Makes a replica a primary again (`NO ONE`).
    /// See <https://redis.io/commands/replicaof/>.
    "REPLICAOF" [ADMIN] fn replicaof_no_one() -> () => |c| { c.arg("NO").arg("ONE"); }

    /// The old name of REPLICAOF.
    /// See <https://redis.io/commands/slaveof/>.
    "SLAVEOF" [ADMIN] fn slaveof<H: ToArgs>(host: H, port: u16) -> () => |c| { c.arg(host).arg(port); }

    /// The old name of REPLICAOF NO ONE.
    /// See <https://redis.io/commands/slaveof/>.
    "SLAVEOF" [ADMIN] fn slaveof_no_one() -> () => |c| { c.arg("NO").arg("ONE"); }

    /// Returns the server's replication role.
    /// See <https://redis.io/commands/role/>.
    "ROLE" [] fn role() -> Role => |_c| {}

    /// Swaps two databases' contents.
    /// See <https://redis.io/commands/swapdb/>.
    "SWAPDB" [] fn swapdb(index1: i64, index2: i64) -> () => |c| { c.arg(index1).arg(index2); }

    /// Hands the primary role to a replica.
    /// See <https://redis.io/commands/failover/>.
    "FAILOVER" [ADMIN] fn failover(options: FailoverOptions) -> () => |c| { c.arg(options); }

    /// Returns the server's version and a piece of generative art.
    /// See <https://redis.io/commands/lolwut/>.
    "LOLWUT" [READONLY] fn lolwut(version: Option<u32>) -> String
        => |c| { if let Some(v) = version { c.arg("VERSION").arg(v); } }

    /// Returns the loaded modules, each as a map (`name`, `ver` …).
    /// See <https://redis.io/commands/module-list/>.
    "MODULE LIST" [ADMIN] fn module_list() -> Vec<ValueMap> => |_c| {}

    /// Loads a module from `path`, passing it `args`.
    /// See <https://redis.io/commands/module-load/>.
    "MODULE LOAD" [ADMIN] fn module_load<P: ToArgs, A: ToArgs>(path: P, args: A) -> () => |c| { c.arg(path).arg(args); }

    /// Loads a module with configuration `(name, value)` pairs and `args`.
    /// See <https://redis.io/commands/module-loadex/>.
    "MODULE LOADEX" [ADMIN] fn module_loadex<P: ToArgs>(path: P, configs: &[(&str, &str)], args: &[&str]) -> ()
        => |c| {
            c.arg(path);
            for (n, v) in configs {
                c.arg("CONFIG").arg(*n).arg(*v);
            }
            if !args.is_empty() {
                c.arg("ARGS").arg(args);
            }
        }

    /// Unloads the module `name`.
    /// See <https://redis.io/commands/module-unload/>.
    "MODULE UNLOAD" [ADMIN] fn module_unload<N: ToArgs>(name: N) -> () => |c| { c.arg(name); }

    /// Returns MODULE's help text.
    /// See <https://redis.io/commands/module-help/>.
    "MODULE HELP" [] fn module_help() -> Vec<String> => |_c| {}

    /// Waits until `numreplicas` replicas acknowledged this connection's writes, or
    /// `timeout` (sent in milliseconds; `Duration::ZERO`: forever); returns how many did.
    /// See <https://redis.io/commands/wait/>.
    "WAIT" [BLOCKING] fn wait(numreplicas: i64, timeout: Duration) -> i64
        => |c| { c.arg(numreplicas).arg(millis(timeout)).block_for(timeout); }

    /// Waits until this connection's writes are fsynced by `numlocal` (0 or 1) local AOF
    /// and `numreplicas` replicas, or `timeout` (`Duration::ZERO`: forever); returns
    /// `(local, replicas)` that did. Redis 7.2.
    /// See <https://redis.io/commands/waitaof/>.
    "WAITAOF" [BLOCKING] fn waitaof(numlocal: i64, numreplicas: i64, timeout: Duration) -> (i64, i64)
        => |c| { c.arg(numlocal).arg(numreplicas).arg(millis(timeout)).block_for(timeout); }

    /// RESTORE sent during a cluster slot migration (accepted for an importing slot),
    /// expiring after `ttl` (`None`: never).
    /// See <https://redis.io/commands/restore-asking/>.
    "RESTORE-ASKING" [] fn restore_asking<K: ToArgs>(key: K, ttl: Option<Duration>, serialized: Bytes) -> ()
        => |c| { c.key(key).arg(ttl.map_or(0, |t| millis(t).max(1))).arg(serialized); }
}
