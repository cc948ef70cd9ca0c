//! SCAN, SSCAN, HSCAN and ZSCAN as streams: each page is fetched when the previous one
//! is used up.

use super::{Redis, Request};
use crate::Result;
use futures_core::Stream;
use redis_commands::{Executor, ScanItem, ScanState};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A stream over a cursor walk (SCAN, SSCAN, HSCAN, ZSCAN), made by
/// [`Redis::scan_stream`] and its siblings. Yields each element once as the server returns
/// it; SCAN's guarantees apply. After an error it yields that error and ends.
///
/// ```no_run
/// use redis_client::{aio::Redis, ScanOptions};
///
/// # async fn demo(r: Redis) -> redis_client::Result<()> {
/// let mut keys = r.scan_stream(ScanOptions::new().pattern("user:*"));
/// while let Some(key) = keys.next().await {
///     println!("{:?}", key?);
/// }
/// # Ok(()) }
/// ```
///
/// `T` is what it yields; `C` the client it runs on: an [`aio::Redis`](Redis), or an
/// async [`ClusterClient`](crate::cluster::aio::ClusterClient) for the SSCAN, HSCAN and
/// ZSCAN of one key, sent to the node serving it.
///
/// Cancellation: dropping a pending `poll_next` loses nothing: the page being fetched
/// is fetched on the next poll.
pub struct ScanStream<'a, T, C = Redis> {
    client: &'a C,
    state: ScanState<T>,
    page: VecDeque<T>,
    fetching: Option<Request<'a, (u64, Vec<T>)>>,
    /// The name of the command fetching pages, for an error about its replies.
    name: &'static str,
}

impl<T, C> std::fmt::Debug for ScanStream<'_, T, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScanStream")
            .field("buffered", &self.page.len())
            .field("fetching", &self.fetching.is_some())
            .finish_non_exhaustive()
    }
}

impl<'a, T, C> ScanStream<'a, T, C> {
    pub(crate) fn new(client: &'a C, state: ScanState<T>) -> Self {
        ScanStream {
            client,
            state,
            page: VecDeque::new(),
            fetching: None,
            name: "SCAN",
        }
    }
}

impl<'a, T: ScanItem + Unpin, C> ScanStream<'a, T, C>
where
    &'a C: Executor<Output<(u64, Vec<T>)> = Request<'a, (u64, Vec<T>)>>,
{
    /// The next item, or `None` once the walk is over: the blocking iterator's `next`,
    /// awaited (`while let Some(key) = keys.next().await { … }`), with no other crate.
    /// The same as `StreamExt::next`; cancel-safe as `poll_next` is.
    pub async fn next(&mut self) -> Option<Result<T>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl<'a, T: ScanItem + Unpin, C> Stream for ScanStream<'a, T, C>
where
    &'a C: Executor<Output<(u64, Vec<T>)> = Request<'a, (u64, Vec<T>)>>,
{
    type Item = Result<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        let this = self.get_mut();
        loop {
            if let Some(item) = this.page.pop_front() {
                return Poll::Ready(Some(Ok(item)));
            }
            let fetching = match &mut this.fetching {
                Some(f) => f,
                None => {
                    // A page may be empty while the cursor is not yet 0: keep asking.
                    let Some(cmd) = this.state.next_command() else {
                        return Poll::Ready(None);
                    };
                    this.name = cmd.cmd.name();
                    this.fetching.insert(this.client.run(cmd))
                }
            };
            match Pin::new(fetching).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(reply)) => {
                    this.fetching = None;
                    match this.state.handle_reply(reply) {
                        Ok(items) => this.page.extend(items),
                        Err(source) => {
                            return Poll::Ready(Some(Err(crate::Error::Reply {
                                command: this.name.to_owned(),
                                source,
                            })))
                        }
                    }
                }
                Poll::Ready(Err(e)) => {
                    this.fetching = None;
                    this.state.finish();
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }
}
