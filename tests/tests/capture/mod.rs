//! What the client reported, captured: a `tracing` layer that keeps every span (with its
//! fields, as recorded over its life) and every event, and a metrics hook that keeps
//! every call.

#![allow(dead_code)] // Each test file uses a different subset.

use redis_client::metrics::{Metrics, Outcome};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// A span as the subscriber saw it.
#[derive(Clone, Debug, Default)]
pub struct SpanRec {
    pub name: String,
    pub fields: BTreeMap<String, String>,
    pub closed: bool,
}

impl SpanRec {
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(String::as_str)
    }
}

/// An event, with the span it happened in.
#[derive(Clone, Debug, Default)]
pub struct EventRec {
    pub name: String,
    pub fields: BTreeMap<String, String>,
    /// The name and `otel.name` of the span it happened in.
    pub parent: Option<(String, Option<String>)>,
}

impl EventRec {
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(String::as_str)
    }
}

#[derive(Debug, Default)]
struct Store {
    spans: Vec<(Id, SpanRec)>,
    events: Vec<EventRec>,
}

/// The captured spans and events.
#[derive(Clone, Debug, Default)]
pub struct Capture(Arc<Mutex<Store>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl Capture {
    /// A subscriber that reports into this capture.
    pub fn subscriber(&self) -> impl Subscriber + Send + Sync {
        init();
        tracing_subscriber::registry().with(CaptureLayer(self.clone()))
    }

    /// Every span created, in order.
    pub fn spans(&self) -> Vec<SpanRec> {
        self.0
            .lock()
            .unwrap()
            .spans
            .iter()
            .map(|(_, s)| s.clone())
            .collect()
    }

    /// The spans named `name`.
    pub fn spans_named(&self, name: &str) -> Vec<SpanRec> {
        self.spans()
            .into_iter()
            .filter(|s| s.name == name)
            .collect()
    }

    /// Every event, in order.
    pub fn events(&self) -> Vec<EventRec> {
        self.0.lock().unwrap().events.clone()
    }

    /// The events named `name`.
    pub fn events_named(&self, name: &str) -> Vec<EventRec> {
        self.events()
            .into_iter()
            .filter(|e| e.name == name)
            .collect()
    }

    /// Every span and event, names and fields, as one text to search.
    pub fn all_text(&self) -> String {
        let store = self.0.lock().unwrap();
        format!("{:?} {:?}", store.spans, store.events)
    }

    pub fn clear(&self) {
        let mut store = self.0.lock().unwrap();
        store.spans.clear();
        store.events.clear();
    }
}

struct CaptureLayer(Capture);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for CaptureLayer {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _ctx: Context<'_, S>) {
        let mut rec = SpanRec {
            name: attrs.metadata().name().to_owned(),
            ..SpanRec::default()
        };
        attrs.record(&mut Fields(&mut rec.fields));
        self.0 .0.lock().unwrap().spans.push((id.clone(), rec));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        let mut store = self.0 .0.lock().unwrap();
        if let Some((_, rec)) = store.spans.iter_mut().rev().find(|(i, _)| i == id) {
            values.record(&mut Fields(&mut rec.fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut rec = EventRec {
            name: event.metadata().name().to_owned(),
            ..EventRec::default()
        };
        event.record(&mut Fields(&mut rec.fields));
        let parent = ctx.event_span(event).map(|s| s.id());
        let mut store = self.0 .0.lock().unwrap();
        rec.parent = parent.and_then(|id| {
            store
                .spans
                .iter()
                .rev()
                .find(|(i, _)| *i == id)
                .map(|(_, s)| (s.name.clone(), s.get("otel.name").map(str::to_owned)))
        });
        store.events.push(rec);
    }

    fn on_close(&self, id: Id, _ctx: Context<'_, S>) {
        let mut store = self.0 .0.lock().unwrap();
        if let Some((_, rec)) = store.spans.iter_mut().rev().find(|(i, _)| *i == id) {
            rec.closed = true;
        }
    }
}

/// A metrics hook that keeps every call as a line of text: `command GET ok`,
/// `error WRONGTYPE`, `bytes_out 31`, `pool 1 0 0`, `pool_wait`, `reconnect`, `retry`.
#[derive(Debug, Default)]
pub struct Recorder(Mutex<Vec<String>>);

impl Recorder {
    pub fn new() -> Arc<Recorder> {
        Arc::new(Recorder::default())
    }

    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// The calls whose line starts with `prefix`.
    pub fn starting(&self, prefix: &str) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|l| l.starts_with(prefix))
            .collect()
    }

    /// The sum of the byte counts of `bytes_in` or `bytes_out`.
    pub fn bytes(&self, which: &str) -> u64 {
        self.starting(which)
            .iter()
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    }

    pub fn clear(&self) {
        self.0.lock().unwrap().clear();
    }

    fn push(&self, line: String) {
        self.0.lock().unwrap().push(line);
    }
}

impl Metrics for Recorder {
    fn command(&self, name: &str, latency: Duration, outcome: Outcome) {
        assert!(latency < Duration::from_secs(60), "a plausible latency");
        self.push(format!("command {name} {}", outcome.as_str()));
    }
    fn error(&self, kind: &str) {
        self.push(format!("error {kind}"));
    }
    fn bytes_out(&self, n: u64) {
        self.push(format!("bytes_out {n}"));
    }
    fn bytes_in(&self, n: u64) {
        self.push(format!("bytes_in {n}"));
    }
    fn pool(&self, size: usize, idle: usize, waiters: usize) {
        self.push(format!("pool {size} {idle} {waiters}"));
    }
    fn pool_wait(&self, wait: Duration) {
        self.push(format!("pool_wait {}", wait.as_millis()));
    }
    fn reconnect(&self) {
        self.push("reconnect".to_owned());
    }
    fn retry(&self) {
        self.push("retry".to_owned());
    }
    fn redirection(&self, kind: &str) {
        self.push(format!("redirection {kind}"));
    }
}

/// Installs, once per test binary, a global subscriber that has `tracing` ask the current
/// subscriber about every span and event instead of caching "never".
///
/// `tracing` caches each callsite's interest when the callsite is first reached. While at
/// most one subscriber is alive (one test's capture), it asks only the subscriber of the
/// thread that reaches the callsite: a test thread with no capture (or none installed
/// yet) answers "never", and a capture running at the same moment in another thread then
/// sees nothing from that callsite. With this subscriber alive for good, the answer is
/// "sometimes" at worst, so each span asks the capture of its own thread.
fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        tracing::subscriber::set_global_default(AskEachTime)
            .expect("no other global subscriber in the test binaries");
    });
}

/// Interested in nothing itself, but never lets a callsite be cached as "never".
struct AskEachTime;

impl Subscriber for AskEachTime {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        false
    }
    // Reached only for a callsite another thread's capture made "always".
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}
