//! Server and connection commands.

use bytes::Bytes;

commands! {
    /// Server administration and connection commands.
    /// See <https://redis.io/commands/?group=server>.
    pub trait ServerCommands, table SERVER;

    /// Checks the connection; returns the server's `PONG`.
    /// See <https://redis.io/commands/ping/>.
    "PING" [READONLY] fn ping() -> Bytes => |_c| {}

    /// Deletes every key of the current database.
    /// See <https://redis.io/commands/flushdb/>.
    "FLUSHDB" [ADMIN] fn flushdb() -> () => |_c| {}

    /// Returns the number of keys in the current database.
    /// See <https://redis.io/commands/dbsize/>.
    "DBSIZE" [READONLY] fn dbsize() -> i64 => |_c| {}
}
