//! The blocking client in the simulation: `redis_client::Redis`, its pool and its
//! connections, driven by one caller on the main thread, unchanged, with simulated time
//! (`redis_conn::clock`, feature `sim`) and transports whose blocking reads and writes run
//! the simulated world (the model server, the faults) until they can go on or their
//! timeout passes.

use crate::model::{exec_key, Model};
use crate::net::{LinkRef, SimConnector};
use crate::rng::Rng;
use crate::scenario::{
    args_of, call_bound, check_pipeline, pipeline_bound, pipeline_commands, start_chaos, Knobs,
    Report, Shared,
};
use bytes::Bytes;
use redis_client::prelude::*;
use redis_client::redis_commands::cmd;
use redis_client::redis_conn::aio::now;
use redis_client::redis_conn::clock::{self, Clock};
use redis_client::redis_conn::{Connector, Readiness, Transport};
use redis_client::{
    Cmd, ConnError, ConnectionInfo, ConnectionPool, Error, Executor, FromValue, Redis, RetryPolicy,
    Typed, Value,
};
use std::cell::RefCell;
use std::fmt::Debug;
use std::io::{self, Read, Write};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

thread_local! {
    // The runtime the world runs on, for the blocking calls that must let it run.
    static WORLD: RefCell<Option<Rc<tokio::runtime::Runtime>>> = const { RefCell::new(None) };
}

/// Runs the world until `fut` is done.
fn run_world<F: std::future::Future>(fut: F) -> F::Output {
    let rt = WORLD
        .with(|w| w.borrow().clone())
        .expect("a simulated world on this thread");
    rt.block_on(fut)
}

/// Simulated time for the blocking drivers: the paused runtime's clock, and a sleep that
/// lets the world run meanwhile.
struct WorldClock;

impl Clock for WorldClock {
    fn now(&self) -> Instant {
        now()
    }

    fn sleep(&self, d: Duration) {
        run_world(tokio::time::sleep(d));
    }
}

/// The blocking client's end of a link: a read or write that cannot go on runs the world
/// until it can, or until its timeout passes (then `WouldBlock`, as a socket's timeout).
struct BlockingStream {
    link: LinkRef,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
}

impl BlockingStream {
    fn wait<T>(
        &self,
        timeout: Option<Duration>,
        mut step: impl FnMut(&mut std::task::Context<'_>) -> std::task::Poll<io::Result<T>>,
    ) -> io::Result<T> {
        run_world(async move {
            let go = std::future::poll_fn(&mut step);
            match timeout {
                None => go.await,
                Some(t) => tokio::time::timeout(t, go)
                    .await
                    .unwrap_or_else(|_| Err(io::ErrorKind::WouldBlock.into())),
            }
        })
    }
}

impl Read for BlockingStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let link = Arc::clone(&self.link);
        self.wait(self.read_timeout, |cx| link.lock().client_read(cx, buf))
    }
}

impl Write for BlockingStream {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let link = Arc::clone(&self.link);
        self.wait(self.write_timeout, |cx| link.lock().client_write(cx, data))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for BlockingStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.read_timeout = timeout;
        Ok(())
    }

    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.write_timeout = timeout;
        Ok(())
    }

    fn readiness(&mut self) -> Readiness {
        self.link.lock().client_readiness()
    }
}

impl Drop for BlockingStream {
    fn drop(&mut self) {
        self.link.lock().client_drop();
    }
}

/// The blocking connector onto the simulated network.
struct BlockingNet {
    net: Arc<SimConnector>,
    info: ConnectionInfo,
}

impl Connector for BlockingNet {
    fn info(&self) -> &ConnectionInfo {
        &self.info
    }

    fn connect(&self, _deadline: Option<Instant>) -> Result<Box<dyn Transport>, ConnError> {
        let link = self.net.open_link(&self.info.addr.to_string())?;
        Ok(Box::new(BlockingStream {
            link,
            read_timeout: None,
            write_timeout: None,
        }))
    }
}

/// Runs the blocking target with the choices `seed` gives.
pub fn run(seed: u64) -> Report {
    let rt = Rc::new(
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a current-thread runtime"),
    );
    let _entered = rt.enter();
    WORLD.with(|w| *w.borrow_mut() = Some(Rc::clone(&rt)));
    let _clock = clock::install(Rc::new(WorldClock));
    let report = world(seed);
    WORLD.with(|w| w.borrow_mut().take());
    report
}

fn world(seed: u64) -> Report {
    let mut rng = Rng::new(seed ^ (0xb10c << 48));
    let knobs = Knobs::draw(crate::Target::Blocking, &mut rng);
    let model = Model::new();
    let net = crate::scenario::network(&knobs, &model, &mut rng, None);
    let pool = ConnectionPool::with_connector(
        BlockingNet {
            net: Arc::clone(&net),
            info: knobs.info.clone(),
        },
        knobs.pool.clone(),
    );
    let client =
        Redis::from_pool(pool).with_retry_policy(RetryPolicy::default().with_jitter(false));
    let shared = Arc::new(Shared::new(Arc::clone(&model), knobs.calm));
    let (faults, stop) = start_chaos(&net, &model, &shared, &knobs, &mut rng);
    let mut caller = Caller {
        client,
        shared: Arc::clone(&shared),
        rng: rng.fork(),
        info: knobs.info.clone(),
    };
    for n in 0..knobs.calls_each * knobs.callers {
        caller.think();
        let token = format!("b-{n}");
        match caller.rng.below(8) {
            0 => caller.single::<Bytes>(cmd::connection::echo(token.as_str()).cmd, None),
            1 => {
                let key = caller.key();
                caller.single::<Option<Bytes>>(cmd::strings::get(key).cmd, None);
            }
            2 => {
                let key = caller.key();
                let by = caller.rng.between(1, 9) as i64;
                caller.single::<i64>(cmd::strings::incrby(key, by).cmd, None);
            }
            3 => caller.pipeline(true),
            4 => caller.pipeline(false),
            5 => caller.blpop(&token),
            6 => caller.watch(),
            _ => caller.setname(&token),
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    drop(caller);
    run_world(async {
        let _ = faults.await;
        // Let every connection's task see its end.
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    shared.finish(&model)
}

/// The one caller of the blocking client.
struct Caller {
    client: Redis,
    shared: Arc<Shared>,
    rng: Rng,
    info: ConnectionInfo,
}

impl Caller {
    /// Time between calls, in which the world (and its faults) runs.
    fn think(&mut self) {
        let pause = match self.rng.below(8) {
            0 | 1 => return,
            2 => Duration::from_millis(self.rng.between(20, 200)),
            _ => Duration::from_millis(self.rng.below(20)),
        };
        clock::sleep(pause);
    }

    fn key(&mut self) -> String {
        format!("k-{}", self.rng.below(4))
    }

    fn budget(&self, block: Option<f64>) -> Duration {
        call_bound(&self.info, block)
    }

    fn pipeline_bound(&self, replies: u32) -> Duration {
        pipeline_bound(&self.info, replies)
    }

    fn single<T: FromValue + PartialEq + Debug>(&mut self, cmd: Cmd, block: Option<f64>) {
        let args = args_of(&cmd);
        let bound = self.budget(block);
        let start = now();
        let got = (&self.client).run(Typed::<T>::new(cmd));
        self.shared.check(&args, start, bound, &got);
    }

    /// Through `query`, which sends it as given (the command method refuses it on a
    /// pooled client), so that its connection is restored at hand-back.
    fn setname(&mut self, token: &str) {
        let cmd = cmd::connection::client_setname(token).cmd;
        let args = args_of(&cmd);
        let bound = self.budget(None);
        let start = now();
        let got = self.client.query::<(), ()>(Typed::new(cmd));
        self.shared.check(&args, start, bound, &got);
    }

    fn pipeline(&mut self, atomic: bool) {
        let key = self.key();
        let by = self.rng.between(1, 9) as i64;
        let token = format!("p-{}", self.rng.below(1 << 30));
        let cmds = pipeline_commands(&key, by, &token);
        let queued: Vec<Vec<Bytes>> = cmds.iter().map(args_of).collect();
        let mut pipe = self.client.pipeline();
        pipe.transaction(atomic);
        for c in cmds {
            pipe.queue(c);
        }
        let bound = self.pipeline_bound(if atomic { 5 } else { 3 });
        let start = now();
        let got = pipe.execute();
        check_pipeline(&self.shared, &queued, atomic, start, bound, got);
    }

    fn blpop(&mut self, token: &str) {
        if self.rng.chance(60) {
            self.single::<i64>(cmd::lists::lpush("list", token).cmd, None);
        }
        let secs = [0.05, 0.2, 0.5][self.rng.below(3) as usize];
        self.single::<Option<(Bytes, Bytes)>>(
            cmd::lists::blpop("list", Duration::from_secs_f64(secs)).cmd,
            Some(secs),
        );
    }

    fn watch(&mut self) {
        let key = self.key();
        let by = self.rng.between(1, 9) as i64;
        let budget = self.budget(None);
        let pipe = self.client.pipeline();
        let start = now();
        let watching = pipe.watch(key.as_str());
        let mut watch = Cmd::new("WATCH");
        watch.key(key.as_str());
        self.shared.within(&args_of(&watch), start, budget);
        let mut w = match watching {
            Ok(w) => w,
            Err(e) => return self.shared.error(|| format!("WATCH gave {e}")),
        };
        let get = cmd::strings::get(key.as_str()).cmd;
        let start = now();
        let got = w.get(key.as_str());
        self.shared.check(&args_of(&get), start, budget, &got);
        if got.is_err() {
            return;
        }
        let incr = cmd::strings::incrby(key.as_str(), by).cmd;
        let queued = vec![args_of(&incr)];
        let mut pipe = w.multi();
        pipe.queue(incr);
        let start = now();
        let got = match pipe.execute() {
            Err(Error::Watch) => Ok(Value::Nil),
            other => other.map(Value::Array),
        };
        self.shared
            .check::<Value>(&exec_key(&queued), start, self.pipeline_bound(3), &got);
    }
}
