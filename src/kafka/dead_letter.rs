//! Dead-letter topics: a consumed message that does not decode is copied to
//! `<topic>.dlq` with the reason in its headers, so that its partition moves on and the
//! message is kept for inspection instead of being lost.

use std::time::Duration;

use anyhow::Context as _;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::Message as _;

use super::StatsContext;
use crate::config::KafkaSettings;
use crate::messages::DecodeError;
use crate::metrics::{DeadLetterFailed, DeadLettered};
use crate::shutdown::Shutdown;

/// Return the name of a topic's dead-letter topic.
pub fn dead_letter_topic(topic: &str) -> String {
    format!("{topic}.dlq")
}

/// A consumed message that did not decode, with the reason.
pub struct RejectedMessage {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub error_code: &'static str,
    pub error: String,
}

impl RejectedMessage {
    pub fn new(message: &rdkafka::message::BorrowedMessage<'_>, error: &DecodeError) -> Self {
        Self {
            topic: message.topic().to_string(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
            error_code: error.code(),
            error: error.to_string(),
        }
    }
}

/// The error of a dead-letter copy that shutdown interrupted.
#[derive(Debug, thiserror::Error)]
#[error("shutdown started before the dead-letter copy was acknowledged")]
pub struct ShutdownBeforeCopy;

/// Produces rejected messages to the dead-letter topics.
#[derive(Clone)]
pub struct DeadLetterQueue {
    producer: FutureProducer<StatsContext>,
    max_payload_bytes: usize,
}

impl DeadLetterQueue {
    /// Create the producer; `role` names it in metrics (`admin-dlq-producer`).
    pub fn new(settings: &KafkaSettings, role: &str) -> anyhow::Result<Self> {
        let producer: FutureProducer<StatsContext> = super::client_config(settings)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", "30000")
            .create_with_context(StatsContext::new(format!("{role}-dlq-producer")))
            .with_context(|| format!("creating a Kafka dead-letter producer for {}", settings.kafka_brokers))?;
        Ok(Self { producer, max_payload_bytes: settings.max_message_bytes as usize })
    }

    /// Copy a rejected message to `<topic>.dlq` and wait for the broker's acknowledgement,
    /// retrying with backoff until it comes or shutdown starts.
    ///
    /// The headers carry `error_code` (a [`DecodeError::code`]), `error` (the message),
    /// `source_topic`, `source_partition`, `source_offset` and `payload_bytes`. A payload
    /// over the message size limit is cut to the limit and marked `payload_truncated=true`,
    /// because the broker would reject the whole of it.
    pub async fn send(&self, rejected: &RejectedMessage, shutdown: &mut Shutdown) -> Result<(), ShutdownBeforeCopy> {
        let topic = dead_letter_topic(&rejected.topic);
        let truncated = rejected.payload.len() > self.max_payload_bytes;
        let payload = &rejected.payload[..rejected.payload.len().min(self.max_payload_bytes)];
        let (partition, offset, size) =
            (rejected.partition.to_string(), rejected.offset.to_string(), rejected.payload.len().to_string());
        let mut headers = OwnedHeaders::new()
            .insert(Header { key: "error_code", value: Some(rejected.error_code) })
            .insert(Header { key: "error", value: Some(&rejected.error) })
            .insert(Header { key: "source_topic", value: Some(&rejected.topic) })
            .insert(Header { key: "source_partition", value: Some(&partition) })
            .insert(Header { key: "source_offset", value: Some(&offset) })
            .insert(Header { key: "payload_bytes", value: Some(&size) });
        if truncated {
            headers = headers.insert(Header { key: "payload_truncated", value: Some("true") });
        }

        let mut backoff = Duration::from_millis(100);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut record = FutureRecord::to(&topic).payload(payload).headers(headers.clone());
            if let Some(key) = &rejected.key {
                record = record.key(key);
            }
            match self.producer.send(record, Timeout::After(Duration::from_secs(30))).await {
                Ok(_) => {
                    DeadLettered { rejected, dead_letter_topic: &topic }.emit();
                    return Ok(());
                }
                Err((error, _)) => {
                    DeadLetterFailed { rejected, dead_letter_topic: &topic, attempt, error: &error }.emit()
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.wait() => return Err(ShutdownBeforeCopy),
            }
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
    }
}
