//! WATCH transactions on the async cluster client: the keys' slot decides the node, and
//! every key the transaction names must be in that slot.

use super::ClusterClient;
use crate::aio::{Pipeline, Redis, Watched};
use crate::cluster::client::{one_slot, Target};
use crate::cluster::router::ReadFrom;
use crate::{Result, RetryPolicy, Text};
use bytes::Bytes;
use redis_commands::{Cmd, ToArgs};
use resp_proto::Value;
use std::future::Future;

impl ClusterClient {
    /// WATCHes `keys` and runs `f` as [`aio::Redis::transaction`](crate::aio::Redis::transaction)
    /// does (retrying while a watched key changes), on the primary serving their slot.
    ///
    /// Every key must be in one slot: the watched keys are checked before anything is
    /// sent, and the commands `f` queues after [`Watched::multi`] are checked against that
    /// slot before MULTI … EXEC is sent. Commands `f` runs at once (the reads) go to the
    /// watching node as they are: one of another slot is refused there with `MOVED`.
    ///
    /// ```no_run
    /// use redis_client::cluster::aio::ClusterClient;
    /// use redis_client::prelude::*;
    ///
    /// # async fn demo(c: ClusterClient) -> redis_client::Result<()> {
    /// c.transaction("{user:1}:visits", |mut w| async move {
    ///     let n = w.reply_as::<Option<i64>>().get("{user:1}:visits").await?;
    ///     let mut pipe = w.multi();
    ///     pipe.set("{user:1}:visits", n.unwrap_or(0) + 1)
    ///         .set("{user:1}:seen", "yes");
    ///     Ok(pipe)
    /// })
    /// .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// Cancellation: as [`aio::Redis::transaction`](crate::aio::Redis::transaction).
    ///
    /// # Errors
    /// [`Error::CrossSlot`](crate::Error::CrossSlot) when the watched keys are in several
    /// slots (nothing sent), or when `f` queues a command with a key in another slot
    /// (MULTI … EXEC not sent); otherwise as
    /// [`aio::Redis::transaction`](crate::aio::Redis::transaction).
    pub fn transaction<'a, K, F, Fut>(
        &'a self,
        keys: K,
        mut f: F,
    ) -> impl Future<Output = Result<Vec<Value>>> + Send + 'a
    where
        K: ToArgs,
        F: FnMut(Watched) -> Fut + Send + 'a,
        Fut: Future<Output = Result<Pipeline>> + Send + 'a,
    {
        let mut watch = Cmd::new("WATCH");
        watch.key(keys);
        let watched: Vec<Bytes> = watch.keys().map(Bytes::copy_from_slice).collect();
        async move {
            let node = self.watching_node(&watch).await?;
            let watch = &watch;
            node.transaction(watched, move |w| {
                let attempt = f(w);
                async move {
                    let pipe = attempt.await?;
                    // Refused here, the pipeline is dropped unsent and its connection
                    // handed back, which ends the WATCH.
                    one_slot(std::iter::once(watch).chain(pipe.commands()))?;
                    Ok(pipe)
                }
            })
            .await
        }
    }
}

impl ClusterClient {
    /// The primary serving the slot of `watch`'s keys, as a client of that one node whose
    /// every command is bounded by the cluster's budget, as a command is.
    pub(super) async fn watching_node(&self, watch: &Cmd) -> Result<Redis> {
        let slot = one_slot(std::iter::once(watch))?;
        let addr = self
            .resolve(&Target::Slot(slot.unwrap_or(0)), ReadFrom::Primary, None)
            .await?;
        let once = RetryPolicy::none().with_budget(self.inner.options.retry.budget);
        Ok(self.node(&addr, false).with_retry_policy(once))
    }
}

impl Text<ClusterClient> {
    /// [`ClusterClient::transaction`] with `f` given the WATCH-ed pipeline in text mode
    /// and returning the text pipeline to execute.
    ///
    /// Cancellation: as [`ClusterClient::transaction`].
    ///
    /// # Errors
    /// As [`ClusterClient::transaction`].
    pub fn transaction<'a, K, F, Fut>(
        &'a self,
        keys: K,
        mut f: F,
    ) -> impl Future<Output = Result<Vec<Value>>> + Send + 'a
    where
        K: ToArgs,
        F: FnMut(Text<Watched>) -> Fut + Send + 'a,
        Fut: Future<Output = Result<Text<Pipeline>>> + Send + 'a,
    {
        self.0.transaction(keys, move |w| {
            let attempt = f(Text(w));
            async move { attempt.await.map(Text::into_inner) }
        })
    }
}
