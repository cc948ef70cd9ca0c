//! Connection commands: ECHO, QUIT, RESET and CLIENT *.
//!
//! Several of them change the state of the connection they run on (CLIENT SETNAME,
//! CLIENT TRACKING, CLIENT REPLY, CLIENT NO-EVICT, RESET, QUIT; declared
//! [`CONNECTION_STATE`](crate::Flags::CONNECTION_STATE)). A pooled client restores each
//! connection when it goes back to the pool, so it refuses these methods before sending,
//! with an error naming what to use instead: a dedicated connection
//! (`r.dedicated_connection()?.client_setname("worker")?`), or for a name on every
//! connection `ConnectionInfo::with_client_name`. Pipelines, WATCH-ed pipelines and
//! connections run them, and the state lasts as long as they hold the connection.
//! AUTH, HELLO and SELECT are not here: the connection layer sends them in its handshake.

use crate::time::millis;
use crate::types::{
    ClientInfo, ClientKillFilter, ClientType, PauseMode, ReplyMode, Toggle, TrackingOptions,
    UnblockMode,
};
use crate::ToArgs;
use bytes::Bytes;
use std::time::Duration;

commands! {
    /// Connection commands. See <https://redis.io/commands/?group=connection>.
    pub trait ConnectionCommands, table CONNECTION;

    /// Checks the connection; returns `message` back.
    /// See <https://redis.io/commands/ping/>.
    "PING" [] fn ping_message<M: ToArgs>(message: M) -> Bytes => |c| { c.arg(message); }

    /// Returns `message`.
    /// See <https://redis.io/commands/echo/>.
    "ECHO" [] fn echo<M: ToArgs>(message: M) -> Bytes => |c| { c.arg(message); }

    /// Asks the server to close the connection after replying. The connection is then
    /// unusable: the pool discards it on its next use.
    /// See <https://redis.io/commands/quit/>.
    /// A pooled client refuses it (the pool would undo it): call it on a dedicated
    /// connection, a pipeline or a WATCH-ed pipeline.
    "QUIT" [CONNECTION_STATE] fn quit() -> () => |_c| {}

    /// Resets the connection's state: database 0, RESP2, no name, not authenticated, out
    /// of MULTI, pub/sub and tracking. Meant for a dedicated connection.
    /// See <https://redis.io/commands/reset/>.
    /// A pooled client refuses it (the pool would undo it): call it on a dedicated
    /// connection, a pipeline or a WATCH-ed pipeline.
    "RESET" [CONNECTION_STATE] fn reset() -> String => |_c| {}

    /// Marks whether the next read is tracked (after CLIENT TRACKING OPTIN/OPTOUT):
    /// `Toggle::On` sends `YES`.
    /// See <https://redis.io/commands/client-caching/>.
    "CLIENT CACHING" [ADMIN] fn client_caching(mode: Toggle) -> ()
        => |c| { c.arg(match mode { Toggle::On => "YES", Toggle::Off => "NO" }); }

    /// Returns the connection's name, or `None` if it has none.
    /// See <https://redis.io/commands/client-getname/>.
    "CLIENT GETNAME" [] fn client_getname() -> Option<String> => |_c| {}

    /// Returns the id of the client receiving this connection's invalidations (0 when
    /// tracking without redirection, -1 when not tracking).
    /// See <https://redis.io/commands/client-getredir/>.
    "CLIENT GETREDIR" [] fn client_getredir() -> i64 => |_c| {}

    /// Returns CLIENT's help text.
    /// See <https://redis.io/commands/client-help/>.
    "CLIENT HELP" [] fn client_help() -> Vec<String> => |_c| {}

    /// Returns the connection's id.
    /// See <https://redis.io/commands/client-id/>.
    "CLIENT ID" [] fn client_id() -> i64 => |_c| {}

    /// Returns this connection as CLIENT LIST describes it.
    /// See <https://redis.io/commands/client-info/>.
    "CLIENT INFO" [] fn client_info() -> ClientInfo => |_c| {}

    /// Closes the connections matching `filter`; returns how many.
    /// See <https://redis.io/commands/client-kill/>.
    "CLIENT KILL" [ADMIN] fn client_kill(filter: ClientKillFilter) -> i64 => |c| { c.arg(filter); }

    /// Returns every connected client.
    /// See <https://redis.io/commands/client-list/>.
    "CLIENT LIST" [ADMIN] fn client_list() -> Vec<ClientInfo> => |_c| {}

    /// Returns the connected clients of one kind.
    /// See <https://redis.io/commands/client-list/>.
    "CLIENT LIST" [ADMIN] fn client_list_type(client_type: ClientType) -> Vec<ClientInfo>
        => |c| { c.arg("TYPE").arg(client_type); }

    /// Returns the connected clients with these ids.
    /// See <https://redis.io/commands/client-list/>.
    "CLIENT LIST" [ADMIN] fn client_list_ids(ids: &[u64]) -> Vec<ClientInfo>
        => |c| { c.arg("ID").arg(ids); }

    /// Sets whether this connection's keys are spared by eviction.
    /// See <https://redis.io/commands/client-no-evict/>.
    /// A pooled client refuses it (the pool would undo it): call it on a dedicated
    /// connection, a pipeline or a WATCH-ed pipeline.
    "CLIENT NO-EVICT" [ADMIN | CONNECTION_STATE] fn client_no_evict(mode: Toggle) -> () => |c| { c.arg(mode); }

    /// Holds back clients' commands (all, or only writes) for `timeout` (sent in
    /// milliseconds).
    /// See <https://redis.io/commands/client-pause/>.
    "CLIENT PAUSE" [ADMIN] fn client_pause(timeout: Duration, mode: Option<PauseMode>) -> ()
        => |c| { c.arg(millis(timeout)).arg(mode); }

    /// Sets whether the server replies on this connection. `Off` and `Skip` leave the
    /// next replies unsent, which a request/response client cannot match: use them only
    /// on a dedicated connection that expects no reply.
    /// See <https://redis.io/commands/client-reply/>.
    /// A pooled client refuses it (the pool would undo it): call it on a dedicated
    /// connection, a pipeline or a WATCH-ed pipeline.
    "CLIENT REPLY" [CONNECTION_STATE] fn client_reply(mode: ReplyMode) -> () => |c| { c.arg(mode); }

    /// Names the connection.
    /// See <https://redis.io/commands/client-setname/>.
    /// A pooled client refuses it (the pool would undo it): call it on a dedicated
    /// connection, a pipeline or a WATCH-ed pipeline.
    "CLIENT SETNAME" [CONNECTION_STATE] fn client_setname<N: ToArgs>(name: N) -> () => |c| { c.arg(name); }

    /// Turns server-assisted client-side caching on or off for this connection. The
    /// invalidations arrive as RESP3 pushes (or on the redirect client), so this belongs
    /// on a dedicated connection.
    /// See <https://redis.io/commands/client-tracking/>.
    /// A pooled client refuses it (the pool would undo it): call it on a dedicated
    /// connection, a pipeline or a WATCH-ed pipeline.
    "CLIENT TRACKING" [CONNECTION_STATE] fn client_tracking(mode: Toggle, options: TrackingOptions) -> ()
        => |c| { c.arg(mode).arg(options); }

    /// Returns this connection's tracking state (`flags`, `redirect`, `prefixes`).
    /// See <https://redis.io/commands/client-trackinginfo/>.
    "CLIENT TRACKINGINFO" [] fn client_trackinginfo() -> crate::types::ValueMap => |_c| {}

    /// Ends a blocking call of the client `id`; true if it was blocked.
    /// See <https://redis.io/commands/client-unblock/>.
    "CLIENT UNBLOCK" [ADMIN] fn client_unblock(id: u64, mode: UnblockMode) -> bool
        => |c| { c.arg(id).arg(mode); }

    /// Ends a CLIENT PAUSE.
    /// See <https://redis.io/commands/client-unpause/>.
    "CLIENT UNPAUSE" [ADMIN] fn client_unpause() -> () => |_c| {}
}
