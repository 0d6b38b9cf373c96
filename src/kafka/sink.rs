//! ResultSink: produces messages and resolves only once the broker acknowledged them.

use std::time::{Duration, Instant};

use actix::prelude::*;
use anyhow::Context as _;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;

use super::StatsContext;
use crate::config::KafkaSettings;
use crate::metrics::{ActorMessages, ActorName, ActorWorkDone, MessageProduced, ProduceFailed};
use crate::shutdown::Shutdown;

/// One message to produce; the reply says whether the broker acknowledged it.
#[derive(actix::Message)]
#[rtype(result = "Result<(), PublishError>")]
pub struct Publish {
    pub topic: String,
    pub key: String,
    pub payload: Vec<u8>,
}

/// Why a message was not acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("shutdown started before the broker acknowledged the message")]
    ShuttingDown,
    #[error("the message is rejected by the broker: {0}")]
    Rejected(rdkafka::error::KafkaError),
}

/// Owns the Kafka producer of a process.
pub struct ResultSink {
    producer: FutureProducer<StatsContext>,
    shutdown: Shutdown,
}

impl ResultSink {
    /// Create the producer; `role` names it in metrics (`admin-producer`, `scraper-producer`).
    /// `linger` is how long a message waits for others to share its request (`linger.ms`).
    pub fn new(settings: &KafkaSettings, role: &str, linger: Duration, shutdown: Shutdown) -> anyhow::Result<Self> {
        let producer: FutureProducer<StatsContext> = super::client_config(settings)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("compression.type", "lz4")
            .set("linger.ms", linger.as_millis().to_string())
            .set("message.timeout.ms", "30000")
            .create_with_context(StatsContext::new(format!("{role}-producer")))
            .with_context(|| format!("creating a Kafka producer for {}", settings.kafka_brokers))?;
        Ok(Self { producer, shutdown })
    }
}

impl Actor for ResultSink {
    type Context = Context<Self>;

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        use rdkafka::producer::Producer;
        if let Err(e) = self.producer.flush(Timeout::After(Duration::from_secs(10))) {
            log::warn!("messages still queued in the producer at stop: {e}");
        }
    }
}

impl Handler<Publish> for ResultSink {
    type Result = ResponseFuture<Result<(), PublishError>>;

    fn handle(&mut self, msg: Publish, _ctx: &mut Self::Context) -> Self::Result {
        let producer = self.producer.clone();
        let mut shutdown = self.shutdown.clone();
        ActorMessages { actor: ActorName::ResultSink, direction: "in", count: 1 }.emit();
        let started = Instant::now();
        Box::pin(async move {
            let mut backoff = Duration::from_millis(100);
            let mut attempt = 0;
            loop {
                attempt += 1;
                let record = FutureRecord::to(&msg.topic).key(&msg.key).payload(&msg.payload);
                let error = match producer.send(record, Timeout::After(Duration::from_secs(30))).await {
                    Ok(_) => {
                        MessageProduced { topic: &msg.topic }.emit();
                        ActorMessages { actor: ActorName::ResultSink, direction: "out", count: 1 }.emit();
                        ActorWorkDone { actor: ActorName::ResultSink, elapsed: started.elapsed() }.emit();
                        return Ok(());
                    }
                    Err((error, _)) => error,
                };
                if is_permanent(&error) {
                    return Err(PublishError::Rejected(error));
                }
                ProduceFailed { topic: &msg.topic, key: &msg.key, attempt, error: &error }.emit();
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.wait() => return Err(PublishError::ShuttingDown),
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        })
    }
}

/// Errors that no retry can fix, because they concern the message itself.
fn is_permanent(error: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode::{InvalidMessage, InvalidMessageSize, MessageSizeTooLarge};
    matches!(error.rdkafka_error_code(), Some(MessageSizeTooLarge | InvalidMessageSize | InvalidMessage))
}
