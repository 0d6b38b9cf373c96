//! The Prometheus registry and the typed events that write a log line and update a metric
//! in one call, so that logs and metrics cannot drift apart.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

use crate::messages::{DecodeError, FetchErrorKind};

/// The registry served at `/metrics` by both roles.
pub static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::new);

fn register<C: prometheus::core::Collector + Clone + 'static>(collector: C) -> C {
    // Each metric is registered once, from its own LazyLock, so a duplicate is a bug in
    // this file and not something a caller can cause.
    if let Err(e) = REGISTRY.register(Box::new(collector.clone())) {
        panic!("metric registered twice: {e}");
    }
    collector
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let counter = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| panic!("invalid metric {name}: {e}"));
    register(counter)
}

fn counter(name: &str, help: &str) -> IntCounter {
    let counter = IntCounter::new(name, help).unwrap_or_else(|e| panic!("invalid metric {name}: {e}"));
    register(counter)
}

static KAFKA_CONSUMED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec("open_ahrefs_kafka_messages_consumed_total", "Kafka messages consumed.", &["topic"])
});
static KAFKA_PRODUCED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec("open_ahrefs_kafka_messages_produced_total", "Kafka messages acknowledged by the broker.", &["topic"])
});
static KAFKA_REJECTED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "open_ahrefs_kafka_messages_rejected_total",
        "Kafka messages that could not be decoded and were skipped.",
        &["topic", "error_code"],
    )
});
static ERRORS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec("open_ahrefs_errors_total", "Errors by pipeline stage and cause.", &["stage", "error_code"])
});
static PAGES_FETCHED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "open_ahrefs_pages_fetched_total",
        "Fetches by HTTP status class (2xx..5xx) or `error`.",
        &["status_class"],
    )
});
static FETCH_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    let opts = HistogramOpts::new("open_ahrefs_fetch_duration_seconds", "Time to fetch a URL, body included.")
        .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]);
    let histogram = HistogramVec::new(opts, &["status_class"])
        .unwrap_or_else(|e| panic!("invalid fetch histogram: {e}"));
    register(histogram)
});
static FETCHED_BYTES: LazyLock<IntCounter> = LazyLock::new(|| {
    counter("open_ahrefs_fetched_bytes_total", "Response body bytes received, after content decoding.")
});
static FETCHES_IN_FLIGHT: LazyLock<IntGauge> = LazyLock::new(|| {
    let gauge = IntGauge::new("open_ahrefs_fetches_in_flight", "Fetches in progress.")
        .unwrap_or_else(|e| panic!("invalid in-flight gauge: {e}"));
    register(gauge)
});
static ROWS_WRITTEN: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec("open_ahrefs_db_rows_written_total", "Rows inserted or updated by the DbWriter.", &["table"])
});
static BATCH_SECONDS: LazyLock<Histogram> = LazyLock::new(|| {
    let opts = HistogramOpts::new("open_ahrefs_db_batch_duration_seconds", "Time to write one batch of results.")
        .buckets(vec![0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]);
    register(Histogram::with_opts(opts).unwrap_or_else(|e| panic!("invalid batch histogram: {e}")))
});
static BATCH_RESULTS: LazyLock<Histogram> = LazyLock::new(|| {
    let opts = HistogramOpts::new("open_ahrefs_db_batch_results", "Fetch results written per batch.")
        .buckets(vec![1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 5000.0]);
    register(Histogram::with_opts(opts).unwrap_or_else(|e| panic!("invalid batch-size histogram: {e}")))
});
static FRONTIER_DISPATCHED: LazyLock<IntCounter> = LazyLock::new(|| {
    counter("open_ahrefs_frontier_dispatched_total", "URLs leased by the frontier and sent to the scrapers.")
});
static FRONTIER_LEASES_EXPIRED: LazyLock<IntCounter> = LazyLock::new(|| {
    counter("open_ahrefs_frontier_leases_expired_total", "URLs handed out again because no result came back in time.")
});
static SITES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec("open_ahrefs_site_events_total", "Site milestones.", &["event"])
});

/// Touch every metric so that `/metrics` lists it from the start, before its first event.
pub fn init() {
    LazyLock::force(&KAFKA_CONSUMED);
    LazyLock::force(&KAFKA_PRODUCED);
    LazyLock::force(&KAFKA_REJECTED);
    LazyLock::force(&ERRORS);
    LazyLock::force(&PAGES_FETCHED);
    LazyLock::force(&FETCH_SECONDS);
    LazyLock::force(&FETCHED_BYTES);
    LazyLock::force(&FETCHES_IN_FLIGHT);
    LazyLock::force(&ROWS_WRITTEN);
    LazyLock::force(&BATCH_SECONDS);
    LazyLock::force(&BATCH_RESULTS);
    LazyLock::force(&FRONTIER_DISPATCHED);
    LazyLock::force(&FRONTIER_LEASES_EXPIRED);
    LazyLock::force(&SITES);
}

/// A message was taken from a topic and handed on.
pub struct MessageConsumed<'a> {
    pub topic: &'a str,
}

impl MessageConsumed<'_> {
    pub fn emit(&self) {
        KAFKA_CONSUMED.with_label_values(&[self.topic]).inc();
    }
}

/// A message could not be decoded; its offset moves on without it.
pub struct MessageRejected<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub error: &'a DecodeError,
}

impl MessageRejected<'_> {
    pub fn emit(&self) {
        log::warn!(
            "skipped message {}/{}@{}: {}",
            self.topic,
            self.partition,
            self.offset,
            self.error
        );
        KAFKA_REJECTED.with_label_values(&[self.topic, self.error.code()]).inc();
    }
}

/// The broker acknowledged a produced message.
pub struct MessageProduced<'a> {
    pub topic: &'a str,
}

impl MessageProduced<'_> {
    pub fn emit(&self) {
        KAFKA_PRODUCED.with_label_values(&[self.topic]).inc();
    }
}

/// A produce attempt failed and will be retried.
pub struct ProduceFailed<'a> {
    pub topic: &'a str,
    pub key: &'a str,
    pub attempt: u32,
    pub error: &'a dyn std::fmt::Display,
}

impl ProduceFailed<'_> {
    pub fn emit(&self) {
        log::warn!(
            "producing to {} (key {}) failed on attempt {}, retrying: {}",
            self.topic,
            self.key,
            self.attempt,
            self.error
        );
        ERRORS.with_label_values(&["produce", "kafka"]).inc();
    }
}

/// A fetch started; the returned guard ends it in the in-flight gauge when dropped.
pub struct FetchStarted;

impl FetchStarted {
    pub fn emit() -> InFlightGuard {
        FETCHES_IN_FLIGHT.inc();
        InFlightGuard
    }
}

/// Keeps one fetch counted in `open_ahrefs_fetches_in_flight` while it lives.
pub struct InFlightGuard;

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        FETCHES_IN_FLIGHT.dec();
    }
}

/// An HTTP response was received.
pub struct PageFetched<'a> {
    pub url: &'a str,
    pub status: u16,
    pub elapsed: Duration,
    pub body_bytes: u64,
    pub links: usize,
}

impl PageFetched<'_> {
    pub fn emit(&self) {
        log::debug!(
            "fetched {} status={} bytes={} links={} in {:?}",
            self.url,
            self.status,
            self.body_bytes,
            self.links,
            self.elapsed
        );
        let class = status_class(self.status);
        PAGES_FETCHED.with_label_values(&[class]).inc();
        FETCH_SECONDS.with_label_values(&[class]).observe(self.elapsed.as_secs_f64());
        FETCHED_BYTES.inc_by(self.body_bytes);
    }
}

/// A fetch ended without a response.
pub struct FetchFailed<'a> {
    pub url: &'a str,
    pub kind: FetchErrorKind,
    pub message: &'a str,
    pub elapsed: Duration,
}

impl FetchFailed<'_> {
    pub fn emit(&self) {
        log::debug!("fetch of {} failed ({}): {}", self.url, self.kind.as_str(), self.message);
        PAGES_FETCHED.with_label_values(&["error"]).inc();
        FETCH_SECONDS.with_label_values(&["error"]).observe(self.elapsed.as_secs_f64());
        ERRORS.with_label_values(&["fetch", self.kind.as_str()]).inc();
    }
}

/// The HTTP status class label: `2xx`, `3xx`, ... or `other` for codes outside 100..=599.
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "other",
    }
}

/// A batch of results was committed to PostgreSQL.
pub struct BatchWritten {
    pub results: usize,
    pub new_urls: u64,
    pub links: u64,
    pub elapsed: Duration,
}

impl BatchWritten {
    pub fn emit(&self) {
        log::debug!(
            "wrote {} results, {} new URLs and {} links in {:?}",
            self.results,
            self.new_urls,
            self.links,
            self.elapsed
        );
        ROWS_WRITTEN.with_label_values(&["pages"]).inc_by(self.results as u64);
        ROWS_WRITTEN.with_label_values(&["urls"]).inc_by(self.new_urls);
        ROWS_WRITTEN.with_label_values(&["links"]).inc_by(self.links);
        BATCH_SECONDS.observe(self.elapsed.as_secs_f64());
        BATCH_RESULTS.observe(self.results as f64);
    }
}

/// A batch could not be written and will be retried.
pub struct BatchFailed<'a> {
    pub results: usize,
    pub attempt: u32,
    pub error: &'a dyn std::fmt::Display,
}

impl BatchFailed<'_> {
    pub fn emit(&self) {
        log::warn!(
            "writing a batch of {} results failed on attempt {}, retrying: {}",
            self.results,
            self.attempt,
            self.error
        );
        ERRORS.with_label_values(&["db_write", "database"]).inc();
    }
}

/// The frontier leased URLs and sent them to the scrapers.
pub struct UrlsDispatched {
    pub count: u64,
}

impl UrlsDispatched {
    pub fn emit(&self) {
        log::debug!("dispatched {} URLs to the scrapers", self.count);
        FRONTIER_DISPATCHED.inc_by(self.count);
    }
}

/// Leases ran out without a result, so their URLs are due again.
pub struct LeasesExpired {
    pub count: u64,
}

impl LeasesExpired {
    pub fn emit(&self) {
        log::info!("{} URLs got no result before their lease ran out; handing them out again", self.count);
        FRONTIER_LEASES_EXPIRED.inc_by(self.count);
    }
}

/// A frontier step failed; it runs again on the next tick.
pub struct FrontierFailed<'a> {
    pub error: &'a dyn std::fmt::Display,
}

impl FrontierFailed<'_> {
    pub fn emit(&self) {
        log::warn!("frontier step failed, retrying on the next tick: {}", self.error);
        ERRORS.with_label_values(&["frontier", "database"]).inc();
    }
}

/// A site was added through the API.
pub struct SiteAdded<'a> {
    pub id: i64,
    pub host: &'a str,
}

impl SiteAdded<'_> {
    pub fn emit(&self) {
        log::info!("site {} added: {}", self.id, self.host);
        SITES.with_label_values(&["added"]).inc();
    }
}

/// A site has no URL waiting or in flight any more.
pub struct SiteDone<'a> {
    pub id: i64,
    pub host: &'a str,
}

impl SiteDone<'_> {
    pub fn emit(&self) {
        log::info!("site {} done: {}", self.id, self.host);
        SITES.with_label_values(&["done"]).inc();
    }
}

/// The actix-web middleware that counts HTTP requests and serves `/metrics`.
pub fn http_middleware(namespace: &str) -> anyhow::Result<actix_web_prom::PrometheusMetrics> {
    actix_web_prom::PrometheusMetricsBuilder::new(namespace)
        .registry(REGISTRY.clone())
        .endpoint("/metrics")
        .build()
        .map_err(|e| anyhow::anyhow!("building the Prometheus middleware: {e}"))
}
