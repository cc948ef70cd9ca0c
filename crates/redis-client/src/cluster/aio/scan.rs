//! SCAN over a whole cluster as one async stream, driving the same walk as the blocking
//! [`ClusterScan`](crate::cluster::ClusterScan).

use super::{within, ClusterClient};
use crate::aio::ScanStream;
use crate::cluster::client::Target;
use crate::cluster::router::SlotMap;
use crate::cluster::scan::{node_gone, ScanWalk, Step};
use crate::{Error, Result, Text};
use bytes::Bytes;
use futures_core::Stream;
use redis_commands::{FromValue, ScanItem, ScanOptions, ScanState};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

impl ClusterClient {
    /// A stream of the key names of the whole cluster: SCAN on each primary in turn, a
    /// page fetched when the previous one is used up. The options (MATCH, COUNT, TYPE)
    /// go with every SCAN. As the blocking
    /// [`scan_iter`](crate::cluster::ClusterClient::scan_iter): a primary that goes away
    /// during the walk is found again by its slots and its walk restarted on the node now
    /// serving them, and once every primary is walked, every node now serving a slot that
    /// changed hands meanwhile is walked again (keys may then be seen twice, as SCAN
    /// allows).
    ///
    /// ```no_run
    /// use redis_client::cluster::aio::ClusterClient;
    /// use redis_client::ScanOptions;
    ///
    /// # async fn demo(c: ClusterClient) -> redis_client::Result<()> {
    /// let mut keys = c.scan_stream(ScanOptions::new().pattern("user:*").count(100));
    /// while let Some(key) = keys.next().await {
    ///     println!("{:?}", key?);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn scan_stream(&self, options: ScanOptions) -> ClusterScanStream<'_, Bytes> {
        ClusterScanStream::new(self, options)
    }

    /// A stream of the members of the set at `key` (SSCAN on the node serving it), as
    /// [`aio::Redis::sscan_stream`](crate::aio::Redis::sscan_stream).
    pub fn sscan_stream(
        &self,
        key: impl Into<Bytes>,
        options: ScanOptions,
    ) -> ScanStream<'_, Bytes, ClusterClient> {
        ScanStream::new(self, ScanState::sscan(key, options))
    }

    /// A stream of the `(field, value)` pairs of the hash at `key` (HSCAN on the node
    /// serving it).
    pub fn hscan_stream(
        &self,
        key: impl Into<Bytes>,
        options: ScanOptions,
    ) -> ScanStream<'_, (Bytes, Bytes), ClusterClient> {
        ScanStream::new(self, ScanState::hscan(key, options))
    }

    /// A stream of the `(member, score)` pairs of the sorted set at `key` (ZSCAN on the
    /// node serving it).
    pub fn zscan_stream(
        &self,
        key: impl Into<Bytes>,
        options: ScanOptions,
    ) -> ScanStream<'_, (Bytes, f64), ClusterClient> {
        ScanStream::new(self, ScanState::zscan(key, options))
    }
}

impl Text<ClusterClient> {
    /// [`ClusterClient::scan_stream`] with the key names as `String`s; a page holding a
    /// name that is not UTF-8 yields [`Error::Reply`] and ends the stream.
    pub fn scan_stream(&self, options: ScanOptions) -> ClusterScanStream<'_, String> {
        ClusterScanStream::new(&self.0, options)
    }

    /// A stream of the members of the set at `key` as `String`s (SSCAN).
    pub fn sscan_stream(
        &self,
        key: impl Into<Bytes>,
        options: ScanOptions,
    ) -> ScanStream<'_, String, ClusterClient> {
        ScanStream::new(&self.0, ScanState::sscan(key, options).items_as())
    }

    /// A stream of the `(field, value)` pairs of the hash at `key` as `String`s (HSCAN).
    pub fn hscan_stream(
        &self,
        key: impl Into<Bytes>,
        options: ScanOptions,
    ) -> ScanStream<'_, (String, String), ClusterClient> {
        ScanStream::new(&self.0, ScanState::hscan(key, options).items_as())
    }

    /// A stream of the `(member, score)` pairs of the sorted set at `key`, members as
    /// `String`s (ZSCAN).
    pub fn zscan_stream(
        &self,
        key: impl Into<Bytes>,
        options: ScanOptions,
    ) -> ScanStream<'_, (String, f64), ClusterClient> {
        ScanStream::new(&self.0, ScanState::zscan(key, options).items_as())
    }
}

/// What fetching one page gave.
enum Fetched<T> {
    Page(u64, Vec<T>),
    /// The node went away; the map was fetched again.
    Lost(Error, Arc<SlotMap>),
    Failed(Error),
    /// The map fetched again after a pass.
    Map(Arc<SlotMap>),
}

type Fetching<'a, T> = Pin<Box<dyn Future<Output = Fetched<T>> + Send + 'a>>;

/// The key names of a whole cluster as a [`Stream`], from
/// [`ClusterClient::scan_stream`]. After an error it yields that error and ends.
///
/// Cancellation: dropping a pending `poll_next` loses nothing: the page being fetched is
/// fetched again on the next poll.
pub struct ClusterScanStream<'a, T> {
    client: &'a ClusterClient,
    options: ScanOptions,
    walk: ScanWalk,
    page: VecDeque<T>,
    fetching: Option<Fetching<'a, T>>,
}

impl<T> std::fmt::Debug for ClusterScanStream<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterScanStream")
            .field("walk", &self.walk)
            .field("buffered", &self.page.len())
            .field("fetching", &self.fetching.is_some())
            .finish_non_exhaustive()
    }
}

impl<'a, T: ScanItem + Send + 'static> ClusterScanStream<'a, T> {
    fn new(client: &'a ClusterClient, options: ScanOptions) -> Self {
        ClusterScanStream {
            client,
            walk: ScanWalk::new(&client.slot_map()),
            options,
            page: VecDeque::new(),
            fetching: None,
        }
    }

    /// The slot map fetched again, once a pass is over.
    fn fetch_map(&self) -> Fetching<'a, T> {
        let client = self.client;
        Box::pin(async move {
            match client.refresh(true).await {
                Ok(()) => Fetched::Map(client.slot_map()),
                Err(e) => Fetched::Failed(e),
            }
        })
    }

    /// One page from `addr` at `cursor`; a node that cannot be reached refreshes the map.
    fn fetch(&self, addr: String, cursor: u64) -> Fetching<'a, T> {
        let client = self.client;
        let cmd = T::page(None, cursor, &self.options).cmd;
        Box::pin(async move {
            let deadline = client.deadline(Some(&cmd));
            let reply = within(
                deadline,
                client.one(&cmd, Target::Node(addr), deadline, None),
            )
            .await
            .and_then(|v| {
                <(u64, Vec<T>)>::from_value(v).map_err(|source| Error::Reply {
                    command: "SCAN".into(),
                    source,
                })
            });
            match reply {
                Ok((cursor, items)) => Fetched::Page(cursor, items),
                Err(e) if node_gone(&e) => match client.refresh(true).await {
                    Ok(()) => Fetched::Lost(e, client.slot_map()),
                    Err(_) => Fetched::Failed(e),
                },
                Err(e) => Fetched::Failed(e),
            }
        })
    }
}

impl<T: ScanItem + Send + Unpin + 'static> ClusterScanStream<'_, T> {
    /// The next key, or `None` once every node is walked: the blocking iterator's `next`,
    /// awaited (`while let Some(key) = keys.next().await { … }`), with no other crate.
    pub async fn next(&mut self) -> Option<Result<T>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl<T: ScanItem + Send + Unpin + 'static> Stream for ClusterScanStream<'_, T> {
    type Item = Result<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        let this = self.get_mut();
        loop {
            if let Some(item) = this.page.pop_front() {
                return Poll::Ready(Some(Ok(item)));
            }
            if this.fetching.is_none() {
                let f = match this.walk.next() {
                    Step::Scan(addr, cursor) => this.fetch(addr.to_owned(), cursor),
                    Step::Recheck => this.fetch_map(),
                    Step::Done => return Poll::Ready(None),
                };
                this.fetching = Some(f);
            }
            let Some(fetching) = this.fetching.as_mut() else {
                continue;
            };
            let fetched = match fetching.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(f) => f,
            };
            this.fetching = None;
            match fetched {
                Fetched::Page(cursor, items) => {
                    if let Err(source) = this.walk.advance(cursor) {
                        return Poll::Ready(Some(Err(crate::Error::Reply {
                            command: "SCAN".into(),
                            source,
                        })));
                    }
                    this.page.extend(items);
                }
                Fetched::Map(map) => this.walk.recheck(&map),
                Fetched::Lost(e, map) => {
                    if !this.walk.node_lost(&map) {
                        this.walk.finish();
                        return Poll::Ready(Some(Err(e)));
                    }
                }
                Fetched::Failed(e) => {
                    this.walk.finish();
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }
}
