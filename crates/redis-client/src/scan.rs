//! Lazy SCAN iterators on [`Redis`]: each fetches the next page only when the previous
//! one is used up.

use crate::{Redis, Result};
use bytes::Bytes;
use redis_commands::{Executor, ScanItem, ScanOptions, ScanState};
use std::collections::VecDeque;

/// An iterator over a cursor walk (SCAN, SSCAN, HSCAN, ZSCAN). Yields each element once
/// as the server returns it; SCAN's guarantees apply (an element present for the whole
/// walk is returned at least once, and may be returned more than once).
///
/// `T` is what it yields (`Bytes`, `String` in text mode, `(field, value)` or
/// `(member, score)` pairs); `C` the client it runs on: a [`Redis`], or a
/// [`ClusterClient`](crate::cluster::ClusterClient) for the SSCAN, HSCAN and ZSCAN of one
/// key, sent to the node serving it.
///
/// After an error it yields that error and ends.
#[derive(Debug)]
#[must_use = "iterators are lazy and scan nothing unless consumed"]
pub struct ScanIter<'a, T, C = Redis> {
    client: &'a C,
    state: ScanState<T>,
    page: VecDeque<T>,
}

impl<'a, T, C> ScanIter<'a, T, C> {
    pub(crate) fn new(client: &'a C, state: ScanState<T>) -> Self {
        ScanIter {
            client,
            state,
            page: VecDeque::new(),
        }
    }
}

impl<'a, T: ScanItem, C> Iterator for ScanIter<'a, T, C>
where
    &'a C: Executor<Output<(u64, Vec<T>)> = Result<(u64, Vec<T>)>>,
{
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        loop {
            if let Some(item) = self.page.pop_front() {
                return Some(Ok(item));
            }
            // A page may be empty while the cursor is not yet 0: keep asking.
            let cmd = self.state.next_command()?;
            let name = cmd.cmd.name();
            match self.client.run(cmd) {
                Ok(reply) => match self.state.handle_reply(reply) {
                    Ok(items) => self.page.extend(items),
                    Err(source) => {
                        return Some(Err(crate::Error::Reply {
                            command: name.to_owned(),
                            source,
                        }))
                    }
                },
                Err(e) => {
                    self.state.finish();
                    return Some(Err(e));
                }
            }
        }
    }
}

impl Redis {
    pub(crate) fn walk<T: ScanItem>(&self, state: ScanState<T>) -> ScanIter<'_, T> {
        ScanIter::new(self, state)
    }

    /// Iterates over the key names of the database, lazily (SCAN).
    ///
    /// ```no_run
    /// # use redis_client::{Redis, ScanOptions};
    /// let r = Redis::open("redis://localhost")?;
    /// for key in r.scan_iter(ScanOptions::new().pattern("user:*").count(100)) {
    ///     println!("{:?}", key?);
    /// }
    /// # Ok::<(), redis_client::Error>(())
    /// ```
    pub fn scan_iter(&self, options: ScanOptions) -> ScanIter<'_, Bytes> {
        self.walk(ScanState::scan(options))
    }

    /// Iterates over the members of the set at `key`, lazily (SSCAN). `TYPE` is ignored.
    pub fn sscan_iter(&self, key: impl Into<Bytes>, options: ScanOptions) -> ScanIter<'_, Bytes> {
        self.walk(ScanState::sscan(key, options))
    }

    /// Iterates over the `(field, value)` pairs of the hash at `key`, lazily (HSCAN).
    pub fn hscan_iter(
        &self,
        key: impl Into<Bytes>,
        options: ScanOptions,
    ) -> ScanIter<'_, (Bytes, Bytes)> {
        self.walk(ScanState::hscan(key, options))
    }

    /// Iterates over the `(member, score)` pairs of the sorted set at `key`, lazily
    /// (ZSCAN).
    pub fn zscan_iter(
        &self,
        key: impl Into<Bytes>,
        options: ScanOptions,
    ) -> ScanIter<'_, (Bytes, f64)> {
        self.walk(ScanState::zscan(key, options))
    }
}
