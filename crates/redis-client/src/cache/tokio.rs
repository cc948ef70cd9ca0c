//! The async client's part of the cache: its data pool and invalidation connection
//! (through the client's async connector), and its read of a cacheable command that
//! missed, the blocking [`tracked_read`](super::tracked_read) on an async pooled
//! connection.

use super::listener::{Dial, Link};
use super::{Shared, Ticket};
use crate::{Error, Result};
use redis_commands::Cmd;
use redis_conn::aio::{BoxFuture, Connection, Connector, Dialer, Opened, Pool, PooledConnection};
use redis_conn::{Addr, ConnectionInfo, PoolOptions, ReplyTimeout};
use resp_proto::Value;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Waits, up to `timeout`, for the invalidation connection's first attempt to be over, if
/// `cmd` is a read the cache could store: the async form of `Shared::wait_first_listen`.
pub(crate) async fn wait_first_listen(shared: &Shared, cmd: &Cmd, timeout: Option<Duration>) {
    if shared.first_listen.is_set() || shared.cache_key(cmd).is_none() {
        return;
    }
    match timeout {
        Some(t) => drop(::tokio::time::timeout(t, shared.first_listen.wait()).await),
        None => shared.first_listen.wait().await,
    }
}

/// Sends `cmd` on a tracking connection and reads its reply, offering it to `ticket`.
/// Dropped part way, the ticket abandons the read and the pool closes the connection.
pub(crate) async fn tracked_read(
    conn: &mut PooledConnection,
    cmd: &Cmd,
    ticket: Ticket,
    timeout: ReplyTimeout,
) -> Result<Value> {
    let mut header = [0u8; 24];
    let header = cmd.header(&mut header);
    let prefix = ticket.prefix();
    let replies = if prefix.is_empty() { 1 } else { 2 };
    conn.send(&[prefix, header, cmd.body()], replies, timeout)
        .await?;
    if replies == 2 {
        if let Value::Error(e) = conn.read_reply(ReplyTimeout::Default).await? {
            return Err(Error::from(redis_conn::Error::from_server_error(e)).for_command(cmd));
        }
    }
    match conn.read_reply(ReplyTimeout::Default).await? {
        Value::Error(e) => {
            Err(Error::from(redis_conn::Error::from_server_error(e)).for_command(cmd))
        }
        v => {
            ticket.complete(cmd, &v);
            Ok(v)
        }
    }
}

/// The async client's connector with the cache's settings, as the blocking [`Via`]: the
/// pool's connector if it has one (else the pool's address), each data connection
/// checked to be on the invalidation connection's server.
///
/// [`Via`]: super::Via
#[derive(Debug)]
struct AsyncVia {
    inner: Option<Arc<dyn Connector>>,
    addr: Addr,
    cache: Weak<Shared>,
}

impl Connector for AsyncVia {
    fn connect<'a>(
        &'a self,
        dialer: &'a Dialer,
        deadline: Option<std::time::Instant>,
    ) -> BoxFuture<'a, std::result::Result<Opened, redis_conn::Error>> {
        match &self.inner {
            Some(c) => c.connect(dialer, deadline),
            None => Box::pin(async move {
                let transport = dialer.dial(&self.addr, deadline).await?;
                Ok(Opened {
                    transport,
                    epoch: 0,
                })
            }),
        }
    }

    fn verify<'a>(
        &'a self,
        conn: &'a mut Connection,
    ) -> BoxFuture<'a, std::result::Result<(), redis_conn::Error>> {
        Box::pin(async move {
            if let Some(c) = &self.inner {
                c.verify(conn).await?;
            }
            // Opened while the invalidation connection was down: no redirect to check. (Or
            // the registration is another cache's, wrapping this client's pool.)
            let mine = |r: &&Arc<redis_conn::TrackingRegistration>| {
                self.cache
                    .upgrade()
                    .is_some_and(|cache| cache.tracking.owns(r))
            };
            let Some(registration) = conn.tracking_registration().filter(mine).cloned() else {
                return Ok(());
            };
            let run_id = match conn.command(&["INFO", "server"]).await {
                Ok(v) => super::run_id(&v),
                Err(redis_conn::Error::Server(_)) => None,
                Err(e) => return Err(e),
            };
            match self.cache.upgrade() {
                Some(cache) => cache.vouch(&registration, run_id.as_deref()),
                None => Ok(()),
            }
        })
    }

    fn is_current(&self, epoch: u64) -> bool {
        self.inner.as_ref().map_or(true, |c| c.is_current(epoch))
    }
}

/// A cache for the async client whose pool is `pool`, and the pool its data connections
/// come from, as the blocking [`attach`](super::attach).
pub(crate) fn attach(pool: &Pool, options: crate::CacheOptions) -> (Arc<Shared>, Pool) {
    let listen_info = super::untracked(pool.info());
    // Never checked out from: only its way of opening a connection is used.
    let opener = match pool.connector() {
        Some(c) => Pool::with_connector(listen_info.clone(), Arc::clone(c), PoolOptions::default()),
        None => Pool::new(listen_info.clone(), PoolOptions::default()),
    };
    let dial = AsyncDial {
        pool: opener,
        info: listen_info,
        runtime: None,
    };
    let shared = Shared::start(options, Box::new(dial));
    let via = AsyncVia {
        inner: pool.connector().cloned(),
        addr: pool.info().addr.clone(),
        cache: Arc::downgrade(&shared),
    };
    let data = Pool::with_connector(
        shared.tracked(pool.info()),
        Arc::new(via),
        pool.options().clone(),
    );
    let closer = data.clone();
    shared.on_connected(move || closer.disconnect());
    let sweeper = data.clone();
    shared.on_sweep(move || sweeper.sweep_idle());
    (shared, data)
}

/// The async client's invalidation connection: an async connection opened the way its
/// pool opens one (through its connector), driven on a runtime of the invalidation
/// thread's own, since the caller's runtime may be gone or busy.
struct AsyncDial {
    pool: Pool,
    info: ConnectionInfo,
    runtime: Option<Arc<tokio::runtime::Runtime>>,
}

impl Dial for AsyncDial {
    fn dial(&mut self) -> std::result::Result<Box<dyn Link>, redis_conn::Error> {
        let runtime = match &self.runtime {
            Some(r) => Arc::clone(r),
            None => {
                let r = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(redis_conn::Error::Io)?;
                Arc::clone(self.runtime.insert(Arc::new(r)))
            }
        };
        let conn = runtime.block_on(self.pool.open_unpooled(&self.info))?;
        Ok(Box::new(AsyncLink { conn, runtime }))
    }
}

/// Fields drop in order: the connection before (its share of) the runtime it was made on.
struct AsyncLink {
    conn: Connection,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl Link for AsyncLink {
    fn command(&mut self, args: &[&[u8]]) -> std::result::Result<Value, redis_conn::Error> {
        self.runtime.block_on(self.conn.command(args))
    }
    fn send_unanswered(&mut self, out: &[u8]) -> std::result::Result<(), redis_conn::Error> {
        self.runtime
            .block_on(self.conn.send(&[out], 0, ReplyTimeout::Default))
    }
    fn read_push(
        &mut self,
        timeout: Option<Duration>,
    ) -> std::result::Result<Option<Value>, redis_conn::Error> {
        self.runtime.block_on(self.conn.read_push(timeout))
    }
    fn read_timeout(&self) -> Option<Duration> {
        self.conn.read_timeout()
    }
    fn moved(&mut self) -> bool {
        !self.conn.is_current()
    }
}
