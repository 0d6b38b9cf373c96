//! The consumer context of KafkaIngest. Besides the statistics every client reports, it
//! makes a revocation wait for the messages in flight of the revoked partitions and
//! commit their offsets, so that the partitions' next owner does not consume them again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::TopicPartitionList;

use super::offsets::InFlight;
use super::StatsContext;

/// How long a revocation waits for the messages in flight of its partitions. A fetch
/// held back by a host's crawl delay can take longer, and what is still in flight then
/// is consumed again by the partitions' next owner. The group's other members wait for
/// this consumer during that time.
const REVOKE_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The client context of one KafkaIngest consumer.
pub struct IngestContext {
    stats: StatsContext,
    client: String,
    topic: String,
    in_flight: Arc<InFlight>,
}

impl IngestContext {
    pub fn new(client: String, topic: &str, in_flight: Arc<InFlight>) -> Self {
        Self { stats: StatsContext::new(client.clone()), client, topic: topic.to_string(), in_flight }
    }
}

impl ClientContext for IngestContext {
    fn stats(&self, statistics: Statistics) {
        self.stats.stats(statistics);
    }
}

impl ConsumerContext for IngestContext {
    /// Runs on the thread that polls the consumer, so no new message of the topic is
    /// handed on while it waits.
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(revoked) = rebalance else {
            return;
        };
        let partitions: Vec<i32> = revoked.elements_for_topic(&self.topic).iter().map(|p| p.partition()).collect();
        if partitions.is_empty() {
            return;
        }

        let started = Instant::now();
        let left = self.in_flight.drain(&partitions, REVOKE_DRAIN_TIMEOUT);
        if left > 0 {
            log::warn!(
                client = self.client.as_str();
                "{left} messages of revoked {} still in flight after {REVOKE_DRAIN_TIMEOUT:?}; their next owner consumes them again",
                describe(revoked)
            );
        }

        match consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => log::info!(
                client = self.client.as_str();
                "committed offsets of revoked {} after waiting {:?}",
                describe(revoked),
                started.elapsed()
            ),
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => log::warn!(
                client = self.client.as_str();
                "committing offsets of revoked {} failed; their next owner consumes the last messages again: {e}",
                describe(revoked)
            ),
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(partitions) => {
                log::info!(client = self.client.as_str(); "partitions assigned: {}", describe(partitions))
            }
            Rebalance::Revoke(partitions) => {
                log::info!(client = self.client.as_str(); "partitions revoked: {}", describe(partitions))
            }
            Rebalance::Error(error) => {
                log::warn!(client = self.client.as_str(); "rebalance failed: {error}")
            }
        }
    }
}

fn describe(partitions: &TopicPartitionList) -> String {
    let names: Vec<String> = partitions.elements().iter().map(|p| format!("{}/{}", p.topic(), p.partition())).collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}
