//! Kafka client statistics: librdkafka reports them every few seconds as JSON, and this
//! context turns them into consumer lag and traffic metrics.

use std::sync::atomic::{AtomicI64, Ordering};

use rdkafka::client::ClientContext;
use rdkafka::statistics::Statistics;

use crate::metrics::KafkaClientStatistics;

/// The client context of every consumer and producer of this crate.
pub struct StatsContext {
    /// The client's name in metric labels, such as `admin-consumer`.
    client: String,
    last_tx: Counters,
    last_rx: Counters,
}

/// The cumulative totals of the previous report, to turn them into counter increments.
#[derive(Default)]
struct Counters {
    messages: AtomicI64,
    bytes: AtomicI64,
}

impl Counters {
    /// Store new totals and return the increase since the previous report.
    fn advance(&self, messages: i64, bytes: i64) -> (u64, u64) {
        let previous_messages = self.messages.swap(messages, Ordering::Relaxed);
        let previous_bytes = self.bytes.swap(bytes, Ordering::Relaxed);
        (u64::try_from(messages - previous_messages).unwrap_or(0), u64::try_from(bytes - previous_bytes).unwrap_or(0))
    }
}

impl StatsContext {
    pub fn new(client: impl Into<String>) -> Self {
        Self { client: client.into(), last_tx: Counters::default(), last_rx: Counters::default() }
    }
}

impl ClientContext for StatsContext {
    fn stats(&self, statistics: Statistics) {
        let (tx_messages, tx_bytes) = self.last_tx.advance(statistics.txmsgs, statistics.txmsg_bytes);
        let (rx_messages, rx_bytes) = self.last_rx.advance(statistics.rxmsgs, statistics.rxmsg_bytes);

        // librdkafka reports -1 for partitions whose lag is unknown, and the internal
        // partition -1 (unassigned) for every topic; neither is a real lag.
        let lags = statistics.topics.iter().flat_map(|(topic, stats)| {
            stats
                .partitions
                .iter()
                .filter(|(partition, p)| **partition >= 0 && p.consumer_lag >= 0)
                .map(move |(partition, p)| (topic.as_str(), *partition, p.consumer_lag))
        });

        KafkaClientStatistics { client: &self.client, tx_messages, tx_bytes, rx_messages, rx_bytes, lags }.emit();
    }
}
