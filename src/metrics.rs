//! The Prometheus registry and the typed events that write a log line and update a metric
//! in one call, so that logs and metrics cannot drift apart.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

use crate::kafka::RejectedMessage;
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
    let counter =
        IntCounterVec::new(Opts::new(name, help), labels).unwrap_or_else(|e| panic!("invalid metric {name}: {e}"));
    register(counter)
}

fn counter(name: &str, help: &str) -> IntCounter {
    let counter = IntCounter::new(name, help).unwrap_or_else(|e| panic!("invalid metric {name}: {e}"));
    register(counter)
}

static KAFKA_CONSUMED: LazyLock<IntCounterVec> =
    LazyLock::new(|| counter_vec("open_ahrefs_kafka_messages_consumed_total", "Kafka messages consumed.", &["topic"]));
static KAFKA_PRODUCED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec("open_ahrefs_kafka_messages_produced_total", "Kafka messages acknowledged by the broker.", &["topic"])
});
static KAFKA_REJECTED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "open_ahrefs_kafka_messages_rejected_total",
        "Kafka messages that could not be decoded and go to the topic's dead-letter topic.",
        &["topic", "error_code"],
    )
});
static KAFKA_DEAD_LETTERED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "open_ahrefs_kafka_messages_dead_lettered_total",
        "Rejected Kafka messages whose copy the broker acknowledged on the dead-letter topic.",
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
    let histogram =
        HistogramVec::new(opts, &["status_class"]).unwrap_or_else(|e| panic!("invalid fetch histogram: {e}"));
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
static DEPTH_WALK_URLS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "open_ahrefs_depth_walk_urls_total",
        "URLs a depth walk lowered, put back in line after a skip for depth, or deferred to a later round.",
        &["outcome"],
    )
});
static SITES: LazyLock<IntCounterVec> =
    LazyLock::new(|| counter_vec("open_ahrefs_site_events_total", "Site milestones.", &["event"]));
static KAFKA_CLIENT_MESSAGES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "open_ahrefs_kafka_client_messages_total",
        "Messages sent (tx) or received (rx) by a Kafka client, from librdkafka statistics.",
        &["client", "direction"],
    )
});
static KAFKA_CLIENT_BYTES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "open_ahrefs_kafka_client_bytes_total",
        "Message bytes sent (tx) or received (rx) by a Kafka client, from librdkafka statistics.",
        &["client", "direction"],
    )
});
static KAFKA_CONSUMER_LAG: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    let opts = Opts::new(
        "open_ahrefs_kafka_consumer_lag",
        "Messages between a partition's end and this consumer's position, from librdkafka statistics.",
    );
    let gauge = IntGaugeVec::new(opts, &["client", "topic", "partition"])
        .unwrap_or_else(|e| panic!("invalid consumer lag gauge: {e}"));
    register(gauge)
});
static ACTOR_MESSAGES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "open_ahrefs_actor_messages_total",
        "Messages taken in and handed on by each actor.",
        &["actor", "direction"],
    )
});
static ACTOR_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    let opts = HistogramOpts::new(
        "open_ahrefs_actor_processing_seconds",
        "Time an actor spends on one unit of work: a message, a fetch, a batch or a frontier tick.",
    )
    .buckets(vec![0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]);
    let histogram = HistogramVec::new(opts, &["actor"]).unwrap_or_else(|e| panic!("invalid actor histogram: {e}"));
    register(histogram)
});
static INGEST_IN_FLIGHT: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    let opts = Opts::new("open_ahrefs_ingest_in_flight", "Consumed messages whose effect is not yet durable.");
    let gauge = IntGaugeVec::new(opts, &["topic"]).unwrap_or_else(|e| panic!("invalid in-flight gauge: {e}"));
    register(gauge)
});
static FRONTIER_URLS: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    let opts = Opts::new("open_ahrefs_frontier_urls", "URLs of each site by frontier state.");
    let gauge = IntGaugeVec::new(opts, &["site", "state"]).unwrap_or_else(|e| panic!("invalid frontier gauge: {e}"));
    register(gauge)
});

/// The actors whose work is measured.
#[derive(Debug, Clone, Copy)]
pub enum ActorName {
    KafkaIngest,
    FetchWorker,
    ResultSink,
    DbWriter,
    Frontier,
    DepthWalker,
}

impl ActorName {
    const ALL: [ActorName; 6] = [
        ActorName::KafkaIngest,
        ActorName::FetchWorker,
        ActorName::ResultSink,
        ActorName::DbWriter,
        ActorName::Frontier,
        ActorName::DepthWalker,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ActorName::KafkaIngest => "KafkaIngest",
            ActorName::FetchWorker => "FetchWorker",
            ActorName::ResultSink => "ResultSink",
            ActorName::DbWriter => "DbWriter",
            ActorName::Frontier => "Frontier",
            ActorName::DepthWalker => "DepthWalker",
        }
    }
}

/// Create every metric with the label values known in advance, so that `/metrics` lists
/// them from the start instead of after their first event.
pub fn init() {
    for class in ["1xx", "2xx", "3xx", "4xx", "5xx", "other", "error"] {
        PAGES_FETCHED.with_label_values(&[class]);
        FETCH_SECONDS.with_label_values(&[class]);
    }
    for kind in FetchErrorKind::ALL {
        ERRORS.with_label_values(&["fetch", kind.as_str()]);
    }
    for (stage, code) in [
        ("produce", "kafka"),
        ("dead_letter", "kafka"),
        ("db_write", "database"),
        ("frontier", "database"),
        ("depth_walk", "database"),
    ] {
        ERRORS.with_label_values(&[stage, code]);
    }
    for table in ["pages", "urls", "links"] {
        ROWS_WRITTEN.with_label_values(&[table]);
    }
    for event in ["added", "done"] {
        SITES.with_label_values(&[event]);
    }
    for outcome in ["lowered", "requeued", "deferred"] {
        DEPTH_WALK_URLS.with_label_values(&[outcome]);
    }
    for actor in ActorName::ALL {
        ACTOR_MESSAGES.with_label_values(&[actor.name(), "in"]);
        ACTOR_MESSAGES.with_label_values(&[actor.name(), "out"]);
        ACTOR_SECONDS.with_label_values(&[actor.name()]);
    }
    LazyLock::force(&FETCHED_BYTES);
    LazyLock::force(&FETCHES_IN_FLIGHT);
    LazyLock::force(&BATCH_SECONDS);
    LazyLock::force(&BATCH_RESULTS);
    LazyLock::force(&FRONTIER_DISPATCHED);
    LazyLock::force(&FRONTIER_LEASES_EXPIRED);
    LazyLock::force(&KAFKA_CONSUMER_LAG);
    LazyLock::force(&FRONTIER_URLS);
}

/// Create the metrics of a role's topics and Kafka clients with their known label values.
pub fn init_kafka(topics: &[&str], role: &str) {
    for topic in topics {
        KAFKA_CONSUMED.with_label_values(&[topic]);
        KAFKA_PRODUCED.with_label_values(&[topic]);
        INGEST_IN_FLIGHT.with_label_values(&[topic]);
        for code in DecodeError::CODES {
            KAFKA_REJECTED.with_label_values(&[topic, code]);
            KAFKA_DEAD_LETTERED.with_label_values(&[topic, code]);
        }
    }
    for client in [format!("{role}-consumer"), format!("{role}-producer")] {
        for direction in ["tx", "rx"] {
            KAFKA_CLIENT_MESSAGES.with_label_values(&[&client, direction]);
            KAFKA_CLIENT_BYTES.with_label_values(&[&client, direction]);
        }
    }
}

/// An actor took in messages (`in`) or handed them on (`out`).
pub struct ActorMessages {
    pub actor: ActorName,
    pub direction: &'static str,
    pub count: u64,
}

impl ActorMessages {
    pub fn emit(&self) {
        ACTOR_MESSAGES.with_label_values(&[self.actor.name(), self.direction]).inc_by(self.count);
    }
}

/// An actor finished one unit of work.
pub struct ActorWorkDone {
    pub actor: ActorName,
    pub elapsed: Duration,
}

impl ActorWorkDone {
    pub fn emit(&self) {
        ACTOR_SECONDS.with_label_values(&[self.actor.name()]).observe(self.elapsed.as_secs_f64());
    }
}

/// The number of consumed messages of a topic whose effect is not yet durable.
pub struct IngestInFlight<'a> {
    pub topic: &'a str,
    pub count: usize,
}

impl IngestInFlight<'_> {
    pub fn emit(&self) {
        INGEST_IN_FLIGHT.with_label_values(&[self.topic]).set(self.count as i64);
    }
}

/// A statistics report of one Kafka client.
pub struct KafkaClientStatistics<'a, L: Iterator<Item = (&'a str, i32, i64)>> {
    pub client: &'a str,
    pub tx_messages: u64,
    pub tx_bytes: u64,
    pub rx_messages: u64,
    pub rx_bytes: u64,
    /// Consumer lag per (topic, partition).
    pub lags: L,
}

impl<'a, L: Iterator<Item = (&'a str, i32, i64)>> KafkaClientStatistics<'a, L> {
    pub fn emit(self) {
        KAFKA_CLIENT_MESSAGES.with_label_values(&[self.client, "tx"]).inc_by(self.tx_messages);
        KAFKA_CLIENT_MESSAGES.with_label_values(&[self.client, "rx"]).inc_by(self.rx_messages);
        KAFKA_CLIENT_BYTES.with_label_values(&[self.client, "tx"]).inc_by(self.tx_bytes);
        KAFKA_CLIENT_BYTES.with_label_values(&[self.client, "rx"]).inc_by(self.rx_bytes);
        for (topic, partition, lag) in self.lags {
            KAFKA_CONSUMER_LAG.with_label_values(&[self.client, topic, &partition.to_string()]).set(lag);
        }
    }
}

/// The frontier's count of URLs per site and state, replacing the previous count.
pub struct FrontierSize<'a> {
    /// (site host, state, URL count)
    pub rows: &'a [(String, String, i64)],
}

impl FrontierSize<'_> {
    pub fn emit(&self) {
        FRONTIER_URLS.reset();
        for (site, state, count) in self.rows {
            FRONTIER_URLS.with_label_values(&[site.as_str(), state.as_str()]).set(*count);
        }
    }
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

/// A message could not be decoded; it goes to the dead-letter topic instead of a worker.
pub struct MessageRejected<'a> {
    pub rejected: &'a RejectedMessage,
}

impl MessageRejected<'_> {
    pub fn emit(&self) {
        let rejected = self.rejected;
        log::warn!(
            actor = "KafkaIngest", topic = rejected.topic.as_str();
            "rejected message {}/{}@{} ({}): {}",
            rejected.topic,
            rejected.partition,
            rejected.offset,
            rejected.error_code,
            rejected.error
        );
        KAFKA_REJECTED.with_label_values(&[rejected.topic.as_str(), rejected.error_code]).inc();
    }
}

/// The broker acknowledged the dead-letter copy of a rejected message.
pub struct DeadLettered<'a> {
    pub rejected: &'a RejectedMessage,
    pub dead_letter_topic: &'a str,
}

impl DeadLettered<'_> {
    pub fn emit(&self) {
        let rejected = self.rejected;
        log::info!(
            actor = "KafkaIngest", topic = rejected.topic.as_str();
            "copied message {}/{}@{} to {}",
            rejected.topic,
            rejected.partition,
            rejected.offset,
            self.dead_letter_topic
        );
        KAFKA_DEAD_LETTERED.with_label_values(&[rejected.topic.as_str(), rejected.error_code]).inc();
    }
}

/// Copying a rejected message to its dead-letter topic failed and will be retried.
pub struct DeadLetterFailed<'a> {
    pub rejected: &'a RejectedMessage,
    pub dead_letter_topic: &'a str,
    pub attempt: u32,
    pub error: &'a dyn std::fmt::Display,
}

impl DeadLetterFailed<'_> {
    pub fn emit(&self) {
        let rejected = self.rejected;
        log::warn!(
            actor = "KafkaIngest", topic = rejected.topic.as_str();
            "copying message {}/{}@{} to {} failed on attempt {}, retrying: {}",
            rejected.topic,
            rejected.partition,
            rejected.offset,
            self.dead_letter_topic,
            self.attempt,
            self.error
        );
        ERRORS.with_label_values(&["dead_letter", "kafka"]).inc();
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
            actor = "ResultSink", topic = self.topic;
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
            actor = "FetchWorker", url = self.url;
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
        log::debug!(
            actor = "FetchWorker", url = self.url;
            "fetch of {} failed ({}): {}", self.url, self.kind.as_str(), self.message
        );
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
            actor = "DbWriter";
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
            actor = "DbWriter";
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
        log::debug!(actor = "Frontier"; "dispatched {} URLs to the scrapers", self.count);
        FRONTIER_DISPATCHED.inc_by(self.count);
    }
}

/// Leases ran out without a result, so their URLs are due again.
pub struct LeasesExpired {
    pub count: u64,
}

impl LeasesExpired {
    pub fn emit(&self) {
        log::info!(
            actor = "Frontier";
            "{} URLs got no result before their lease ran out; handing them out again", self.count
        );
        FRONTIER_LEASES_EXPIRED.inc_by(self.count);
    }
}

/// A frontier step failed; it runs again on the next tick.
pub struct FrontierFailed<'a> {
    pub error: &'a dyn std::fmt::Display,
}

impl FrontierFailed<'_> {
    pub fn emit(&self) {
        log::warn!(actor = "Frontier"; "frontier step failed, retrying on the next tick: {}", self.error);
        ERRORS.with_label_values(&["frontier", "database"]).inc();
    }
}

/// A round of depth walks committed.
pub struct DepthsLowered {
    pub summary: crate::db::depth::WalkSummary,
    pub elapsed: Duration,
}

impl DepthsLowered {
    pub fn emit(&self) {
        let s = &self.summary;
        log::debug!(
            actor = "DepthWalker";
            "ran {} depth walks in {:?}: {} URLs lowered, {} put back in line, {} deferred",
            s.walks,
            self.elapsed,
            s.lowered,
            s.requeued,
            s.deferred
        );
        DEPTH_WALK_URLS.with_label_values(&["lowered"]).inc_by(s.lowered);
        DEPTH_WALK_URLS.with_label_values(&["requeued"]).inc_by(s.requeued);
        DEPTH_WALK_URLS.with_label_values(&["deferred"]).inc_by(s.deferred);
    }
}

/// A round of depth walks failed. Its walks stay queued for the next round.
pub struct DepthWalkFailed<'a> {
    pub error: &'a dyn std::fmt::Display,
}

impl DepthWalkFailed<'_> {
    pub fn emit(&self) {
        log::warn!(actor = "DepthWalker"; "depth walk failed, retrying on the next round: {}", self.error);
        ERRORS.with_label_values(&["depth_walk", "database"]).inc();
    }
}

/// A site was added through the API.
pub struct SiteAdded<'a> {
    pub id: i64,
    pub host: &'a str,
}

impl SiteAdded<'_> {
    pub fn emit(&self) {
        log::info!(site = self.host; "site {} added: {}", self.id, self.host);
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
        log::info!(actor = "Frontier", site = self.host; "site {} done: {}", self.id, self.host);
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
