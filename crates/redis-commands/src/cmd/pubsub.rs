//! Publishing and pub/sub introspection. Subscribing needs a connection of its own and
//! lives with `PubSub` in the client.

use crate::ToArgs;
use bytes::Bytes;

commands! {
    /// Publishing and pub/sub introspection. See <https://redis.io/commands/?group=pubsub>.
    pub trait PubSubCommands, table PUBSUB;

    /// Publishes `message` on `channel`; returns how many subscribers received it.
    /// See <https://redis.io/commands/publish/>.
    "PUBLISH" [] fn publish<C: ToArgs, M: ToArgs>(channel: C, message: M) -> i64
        => |c| { c.arg(channel).arg(message); }

    /// Publishes `message` on the shard channel `channel` (routed like a key); returns
    /// how many subscribers received it.
    /// See <https://redis.io/commands/spublish/>.
    "SPUBLISH" [] fn spublish<C: ToArgs, M: ToArgs>(channel: C, message: M) -> i64
        => |c| { c.key(channel).arg(message); }

    /// Returns the channels with at least one subscriber.
    /// See <https://redis.io/commands/pubsub-channels/>.
    "PUBSUB CHANNELS" [] fn pubsub_channels() -> Vec<Bytes> => |_c| {}

    /// Returns the channels matching `pattern` with at least one subscriber.
    /// See <https://redis.io/commands/pubsub-channels/>.
    "PUBSUB CHANNELS" [] fn pubsub_channels_matching<P: ToArgs>(pattern: P) -> Vec<Bytes>
        => |c| { c.arg(pattern); }

    /// Returns the number of pattern subscriptions.
    /// See <https://redis.io/commands/pubsub-numpat/>.
    "PUBSUB NUMPAT" [] fn pubsub_numpat() -> i64 => |_c| {}

    /// Returns each channel's number of subscribers, in the order asked.
    /// See <https://redis.io/commands/pubsub-numsub/>.
    "PUBSUB NUMSUB" [] fn pubsub_numsub<C: ToArgs>(channels: C) -> Vec<(Bytes, i64)>
        => |c| { c.arg(channels); }

    /// Returns the shard channels with at least one subscriber.
    /// See <https://redis.io/commands/pubsub-shardchannels/>.
    "PUBSUB SHARDCHANNELS" [] fn pubsub_shardchannels() -> Vec<Bytes> => |_c| {}

    /// Returns the shard channels matching `pattern` with at least one subscriber.
    /// See <https://redis.io/commands/pubsub-shardchannels/>.
    "PUBSUB SHARDCHANNELS" [] fn pubsub_shardchannels_matching<P: ToArgs>(pattern: P) -> Vec<Bytes>
        => |c| { c.arg(pattern); }

    /// Returns each shard channel's number of subscribers, in the order asked.
    /// See <https://redis.io/commands/pubsub-shardnumsub/>.
    "PUBSUB SHARDNUMSUB" [] fn pubsub_shardnumsub<C: ToArgs>(channels: C) -> Vec<(Bytes, i64)>
        => |c| { c.arg(channels); }

    /// Returns PUBSUB's help text.
    /// See <https://redis.io/commands/pubsub-help/>.
    "PUBSUB HELP" [] fn pubsub_help() -> Vec<String> => |_c| {}
}
