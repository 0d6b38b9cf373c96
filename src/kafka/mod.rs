//! Kafka plumbing shared by both roles: client configuration, topic creation,
//! KafkaIngest (consume, hand on, commit after the effect) and ResultSink (produce with
//! delivery reports).

mod dead_letter;
mod ingest;
mod offsets;
mod rebalance;
mod sink;
mod stats;

use std::time::Duration;

use anyhow::Context;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::types::RDKafkaErrorCode;

pub use dead_letter::{dead_letter_topic, RejectedMessage};
pub use ingest::{Delivery, Drain, KafkaIngest};
pub use sink::{Publish, PublishError, ResultSink};
pub use stats::StatsContext;

use crate::config::KafkaSettings;

/// The topics both roles create at start: the two topics and their dead-letter topics.
pub fn role_topics(settings: &KafkaSettings) -> Vec<String> {
    let topics = [settings.topic_url.clone(), settings.topic_res.clone()];
    let dead_letters = topics.iter().map(|topic| dead_letter_topic(topic)).collect::<Vec<_>>();
    topics.into_iter().chain(dead_letters).collect()
}

/// Build the client configuration shared by every consumer and producer.
pub fn client_config(settings: &KafkaSettings) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.kafka_brokers)
        .set("message.max.bytes", (settings.max_message_bytes + 64 * 1024).to_string())
        .set("reconnect.backoff.ms", "100")
        .set("reconnect.backoff.max.ms", "10000")
        .set("statistics.interval.ms", settings.statistics_interval_ms.to_string());
    config
}

/// Create the topics this process needs, as a production broker may forbid auto-creation.
///
/// An unreachable broker is retried with exponential backoff, forever, so that a process
/// started before its broker waits for it instead of crash-looping. A broker that serves
/// metadata requests but not CreateTopics (librdkafka's mock cluster) gets the topics
/// through its automatic creation instead.
pub async fn ensure_topics(settings: &KafkaSettings, topics: &[&str]) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = client_config(settings)
        .create()
        .with_context(|| format!("invalid Kafka client settings (KAFKA_BROKERS={})", settings.kafka_brokers))?;

    let existing = wait_for_metadata(settings).await?;
    let missing: Vec<&str> = topics.iter().copied().filter(|t| !existing.iter().any(|e| e == t)).collect();
    if missing.is_empty() {
        return Ok(());
    }

    let max_bytes = (settings.max_message_bytes + 64 * 1024).to_string();
    let new_topics: Vec<NewTopic<'_>> = missing
        .iter()
        .map(|name| {
            NewTopic::new(name, settings.topic_partitions, TopicReplication::Fixed(settings.topic_replication))
                .set("max.message.bytes", &max_bytes)
        })
        .collect();
    let options = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(10)))
        .request_timeout(Some(Duration::from_secs(5)));
    match admin.create_topics(&new_topics, &options).await {
        Ok(results) => {
            for result in results {
                match result {
                    Ok(name) => log::info!("created topic {name}"),
                    Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => log::debug!("topic {name} already exists"),
                    Err((name, code)) => anyhow::bail!(
                        "creating Kafka topic {name} failed: {code}; create it by hand or check KAFKA_TOPIC_PARTITIONS and KAFKA_TOPIC_REPLICATION"
                    ),
                }
            }
            Ok(())
        }
        Err(e) => {
            log::warn!("the broker did not create topics on request ({e}); asking for automatic creation");
            auto_create(settings, &missing)
        }
    }
}

/// Wait until the broker serves a metadata request; returns the names of its topics.
async fn wait_for_metadata(settings: &KafkaSettings) -> anyhow::Result<Vec<String>> {
    let client: BaseProducer = client_config(settings).create().context("creating a Kafka metadata client")?;
    let client = std::sync::Arc::new(client);
    let mut backoff = Duration::from_millis(200);
    let mut attempt: u64 = 0;
    loop {
        attempt += 1;
        // fetch_metadata blocks its thread, so it runs off the actor runtime's only thread.
        let fetcher = client.clone();
        let fetched = tokio::task::spawn_blocking(move || {
            fetcher
                .client()
                .fetch_metadata(None, Duration::from_secs(2))
                .map(|metadata| metadata.topics().iter().map(|t| t.name().to_string()).collect::<Vec<_>>())
        })
        .await
        .context("the metadata request thread failed")?;
        match fetched {
            Ok(topics) => return Ok(topics),
            Err(e) => log::warn!(
                "Kafka broker at {} is not reachable (attempt {attempt}), retrying in {backoff:?}: {e}",
                settings.kafka_brokers
            ),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// Create topics through a metadata request that allows automatic creation.
fn auto_create(settings: &KafkaSettings, topics: &[&str]) -> anyhow::Result<()> {
    let producer: BaseProducer = client_config(settings)
        .set("allow.auto.create.topics", "true")
        .create()
        .context("creating a Kafka client for topic creation")?;
    for topic in topics {
        let metadata = producer
            .client()
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .with_context(|| format!("requesting metadata for Kafka topic {topic}"))?;
        let created =
            metadata.topics().iter().any(|t| t.name() == *topic && t.error().is_none() && !t.partitions().is_empty());
        anyhow::ensure!(
            created,
            "Kafka topic {topic} does not exist and the broker creates it neither on request nor automatically; create it by hand"
        );
        log::info!("topic {topic} created by the broker's automatic creation");
    }
    Ok(())
}
