//! Deterministic simulation of the async client.
//!
//! The client (`redis_client::aio::Redis`: its multiplexed connection, its pool, the
//! connection core under both) runs unchanged on a current-thread tokio runtime whose
//! clock is paused, so time is simulated and advances only when every task waits. Its
//! connections go over an in-memory network ([`net`]) to a model server ([`model`]), and
//! every choice (how many callers and what they do, how the bytes are split, when the
//! reactor reports them, where a connection is cut, when the server stalls, restarts or
//! sends a reply nobody asked for, when a caller gives up, which calls start from inside
//! the client's own reads and writes, as a caller on another thread would) is drawn from
//! one seed ([`rng`]). The same seed replays the same run.
//!
//! After every call the checker asks: is the reply the model's answer to this caller's
//! own request, and did the call end within its budget? At the end of a run: did the
//! client's memory stay within what its limits allow (with [`memory::Counting`]
//! installed)? A run's [`Report`] lists every broken promise; `cargo xtask sim --seed S` replays one run, `--seeds N` runs many.
//!
//! ```
//! let report = redis_sim::run(redis_sim::Target::Mux, 7);
//! assert!(report.violations.is_empty(), "{:?}", report.violations);
//! ```

mod blocking;
pub mod memory;
pub mod model;
pub mod net;
pub mod rng;
mod scenario;

pub use scenario::{run, Report, Target, Violation};
