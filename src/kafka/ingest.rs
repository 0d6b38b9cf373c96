//! KafkaIngest: consumes one topic in a consumer group and hands each decoded message to
//! a downstream actor, committing its offset only after the downstream acknowledged it.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use anyhow::Context as _;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::Message as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::dead_letter::{DeadLetterQueue, RejectedMessage};
use super::offsets::InFlight;
use super::rebalance::IngestContext;
use crate::config::KafkaSettings;
use crate::messages::{self, Versioned};
use crate::metrics::{ActorMessages, ActorName, ActorWorkDone, IngestInFlight, MessageConsumed, MessageRejected};
use crate::shutdown::Shutdown;

/// A decoded message and the acknowledgement its receiver owes once the effect is durable.
pub struct Delivery<T> {
    pub message: T,
    /// The message key, which is the URL's host.
    pub key: String,
    pub ack: Ack,
}

impl<T: 'static> actix::Message for Delivery<T> {
    type Result = ();
}

/// The promise to acknowledge one consumed message.
///
/// Holding an `Ack` keeps one of the consumer's in-flight slots and the message's size in
/// its byte budget taken, which is what bounds the work between the consumer and the effect. Dropping it without [`Ack::done`] releases
/// the slot but leaves the offset uncommitted, so the message is consumed again after a
/// restart or rebalance.
pub struct Ack {
    partition: i32,
    offset: i64,
    consumed_at: Instant,
    offsets: Arc<Offsets>,
    _slot: OwnedSemaphorePermit,
    _bytes: OwnedSemaphorePermit,
}

impl Ack {
    /// Report the message's effect as durable, letting its offset be committed. The
    /// offset is stored before the slot is released, so a drain that has taken every slot
    /// commits it.
    pub fn done(self) {
        ActorWorkDone { actor: ActorName::KafkaIngest, elapsed: self.consumed_at.elapsed() }.emit();
        self.offsets.finished(self.partition, self.offset);
    }
}

/// The offsets of one consumer: which are in flight, and the consumer that stores the
/// committable ones. Acknowledgements come from the workers' threads and update it
/// directly, without a message to the KafkaIngest actor.
struct Offsets {
    consumer: Arc<StreamConsumer<IngestContext>>,
    topic: String,
    in_flight: Arc<InFlight>,
}

impl Offsets {
    fn dispatched(&self, partition: i32, offset: i64) {
        let pending = self.in_flight.dispatched(partition, offset);
        ActorMessages { actor: ActorName::KafkaIngest, direction: "in", count: 1 }.emit();
        IngestInFlight { topic: &self.topic, count: pending }.emit();
    }

    fn finished(&self, partition: i32, offset: i64) {
        let pending = self.in_flight.finished(partition, offset, |offset| {
            // rd_kafka_offset_store records offset + 1, the position of the next message.
            if let Err(e) = self.consumer.store_offset(&self.topic, partition, offset) {
                // The partition was revoked meanwhile: its next owner consumes the message
                // again, which the effects tolerate because they are idempotent.
                log::debug!("not storing offset {}/{partition}@{offset}: {e}", self.topic);
            }
        });
        IngestInFlight { topic: &self.topic, count: pending }.emit();
    }
}

/// Stop consuming, wait for the messages in flight and commit; resolves when done.
#[derive(actix::Message)]
#[rtype(result = "()")]
pub struct Drain {
    pub timeout: Duration,
}

#[derive(actix::Message)]
#[rtype(result = "()")]
struct CommitNow;

/// Consumes a topic for one role and feeds decoded messages of type `T` to its workers.
pub struct KafkaIngest<T: Versioned + Send + 'static> {
    offsets: Arc<Offsets>,
    topic: String,
    workers: Vec<Recipient<Delivery<T>>>,
    slots: Arc<Semaphore>,
    max_in_flight: usize,
    /// KiB of payload in flight, so that large messages are bounded by size and not
    /// only by count.
    byte_budget: Arc<Semaphore>,
    max_message_bytes: usize,
    dead_letters: DeadLetterQueue,
    /// The thread that polls the consumer. A revocation blocks it until the revoked
    /// partitions' messages are acknowledged, which needs the acknowledging actors, so
    /// they must not share its thread.
    consume_thread: Option<Arbiter>,
    shutdown: Shutdown,
}

impl<T: Versioned + Send + 'static> KafkaIngest<T> {
    /// Subscribe to `topic` in the consumer group of `role` (`<KAFKA_GROUP_PREFIX>-<role>`).
    ///
    /// Each worker receives the messages of a fixed set of keys (hosts), so that one host's
    /// URLs are always handled by the same worker. A message that does not decode is
    /// copied to `<topic>.dlq` and committed once the broker has the copy.
    pub fn new(
        settings: &KafkaSettings,
        role: &str,
        topic: &str,
        workers: Vec<Recipient<Delivery<T>>>,
        max_in_flight: usize,
        shutdown: Shutdown,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(!workers.is_empty(), "KafkaIngest needs at least one worker");
        let group = format!("{}-{role}", settings.group_prefix);
        let in_flight = Arc::new(InFlight::default());
        let context = IngestContext::new(format!("{role}-consumer"), topic, in_flight.clone());
        let consumer: StreamConsumer<IngestContext> = super::client_config(settings)
            .set("group.id", &group)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000")
            .set("fetch.wait.max.ms", settings.fetch_wait_ms.to_string())
            .set("queued.max.messages.kbytes", prefetch_kib(settings.max_message_bytes as usize).to_string())
            .set("fetch.max.bytes", (settings.max_message_bytes * 2).to_string())
            .set("max.partition.fetch.bytes", (settings.max_message_bytes + 64 * 1024).to_string())
            .create_with_context(context)
            .with_context(|| format!("creating a Kafka consumer for {topic} at {}", settings.kafka_brokers))?;
        consumer.subscribe(&[topic]).with_context(|| format!("subscribing to Kafka topic {topic}"))?;
        let dead_letters = DeadLetterQueue::new(settings, role)?;

        let offsets = Arc::new(Offsets { consumer: Arc::new(consumer), topic: topic.to_string(), in_flight });
        Ok(Self {
            offsets,
            topic: topic.to_string(),
            workers,
            slots: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
            byte_budget: Arc::new(Semaphore::new(byte_budget_kib(settings.max_message_bytes as usize))),
            max_message_bytes: settings.max_message_bytes as usize,
            dead_letters,
            consume_thread: None,
            shutdown,
        })
    }
}

impl<T: Versioned + Send + 'static> Actor for KafkaIngest<T> {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Self::Context) {
        log::info!("consuming {} with up to {} messages in flight", self.topic, self.max_in_flight);
        let consume = ConsumeLoop {
            consumer: self.offsets.consumer.clone(),
            topic: self.topic.clone(),
            offsets: self.offsets.clone(),
            workers: self.workers.clone(),
            slots: self.slots.clone(),
            byte_budget: self.byte_budget.clone(),
            max_message_bytes: self.max_message_bytes,
            dead_letters: self.dead_letters.clone(),
            acknowledging_thread: Arbiter::current(),
            shutdown: self.shutdown.clone(),
        };
        let thread = Arbiter::new();
        if !thread.spawn(consume.run()) {
            log::error!("the consume thread of {} stopped before it started; not consuming", self.topic);
        }
        self.consume_thread = Some(thread);
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        if let Some(thread) = self.consume_thread.take() {
            thread.stop();
        }
    }
}

impl<T: Versioned + Send + 'static> Handler<CommitNow> for KafkaIngest<T> {
    type Result = ();

    fn handle(&mut self, _msg: CommitNow, _ctx: &mut Self::Context) {
        match self.offsets.consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => log::info!("committed final offsets of {}", self.topic),
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {
                log::debug!("no new offsets of {} to commit", self.topic)
            }
            Err(e) => {
                log::warn!("final commit of {} failed; the last messages will be consumed again: {e}", self.topic)
            }
        }
    }
}

impl<T: Versioned + Send + 'static> Handler<Drain> for KafkaIngest<T> {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, msg: Drain, ctx: &mut Self::Context) -> Self::Result {
        let slots = self.slots.clone();
        let all = self.max_in_flight as u32;
        let topic = self.topic.clone();
        let me = ctx.address();
        Box::pin(async move {
            // Shutdown has already stopped the consume loop; taking every slot means every
            // message it handed on has been acknowledged or dropped.
            match tokio::time::timeout(msg.timeout, slots.acquire_many_owned(all)).await {
                Ok(_) => log::info!("all messages of {topic} in flight are processed"),
                Err(_) => log::warn!(
                    "messages of {topic} still in flight after {:?}; they will be consumed again",
                    msg.timeout
                ),
            }
            let _ = me.send(CommitNow).await;
        })
    }
}

/// The task that takes messages from the consumer, as fast as slots free up.
struct ConsumeLoop<T: Versioned + Send + 'static> {
    consumer: Arc<StreamConsumer<IngestContext>>,
    topic: String,
    offsets: Arc<Offsets>,
    workers: Vec<Recipient<Delivery<T>>>,
    slots: Arc<Semaphore>,
    byte_budget: Arc<Semaphore>,
    max_message_bytes: usize,
    dead_letters: DeadLetterQueue,
    /// The thread of KafkaIngest, where dead-letter copies run, because a revocation
    /// blocks the consume thread until their acknowledgements arrive.
    acknowledging_thread: ArbiterHandle,
    shutdown: Shutdown,
}

impl<T: Versioned + Send + 'static> ConsumeLoop<T> {
    async fn run(mut self) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let slot = tokio::select! {
                slot = self.slots.clone().acquire_owned() => slot,
                _ = self.shutdown.wait() => break,
            };
            let Ok(slot) = slot else { break };

            let received = tokio::select! {
                received = self.consumer.recv() => received,
                _ = self.shutdown.wait() => break,
            };
            let message = match received {
                Ok(message) => {
                    backoff = Duration::from_millis(100);
                    message
                }
                Err(e) => {
                    log::warn!("consuming {} failed, retrying in {backoff:?}: {e}", self.topic);
                    tokio::time::sleep(backoff).await;
                    // librdkafka recovers from consumer errors by itself. The errors of an
                    // outage's failed connection attempts are queued and arrive here after the
                    // broker is back, so a pause of at most 1 s each drains them in seconds.
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            };

            // One message larger than the whole budget takes all of it, so it still passes.
            let kib = message.payload().map_or(0, <[u8]>::len) / 1024 + 1;
            let kib = kib.min(byte_budget_kib(self.max_message_bytes)) as u32;
            let bytes = tokio::select! {
                bytes = self.byte_budget.clone().acquire_many_owned(kib) => bytes,
                _ = self.shutdown.wait() => break,
            };
            let Ok(bytes) = bytes else { break };

            let partition = message.partition();
            let offset = message.offset();
            let key = message.key().map(|k| String::from_utf8_lossy(k).into_owned()).unwrap_or_default();
            let decoded = messages::decode::<T>(message.payload(), self.max_message_bytes)
                .map_err(|error| RejectedMessage::new(&message, &error));
            drop(message);

            self.offsets.dispatched(partition, offset);
            let ack = Ack {
                partition,
                offset,
                consumed_at: Instant::now(),
                offsets: self.offsets.clone(),
                _slot: slot,
                _bytes: bytes,
            };

            match decoded {
                Ok(message) => {
                    MessageConsumed { topic: &self.topic }.emit();
                    let worker = &self.workers[worker_index(&key, self.workers.len())];
                    if worker.send(Delivery { message, key, ack }).await.is_err() {
                        log::error!("a worker for {} stopped; no longer consuming", self.topic);
                        break;
                    }
                    ActorMessages { actor: ActorName::KafkaIngest, direction: "out", count: 1 }.emit();
                }
                Err(rejected) => {
                    MessageRejected { rejected: &rejected }.emit();
                    // The copy runs beside the loop; its ack keeps a slot taken until the
                    // broker has it, which bounds how many copies wait at once.
                    let dead_letters = self.dead_letters.clone();
                    let mut shutdown = self.shutdown.clone();
                    let copy = async move {
                        // Without a copy the offset stays uncommitted and the message is
                        // consumed again after a restart.
                        if dead_letters.send(&rejected, &mut shutdown).await.is_ok() {
                            ack.done();
                        }
                    };
                    if !self.acknowledging_thread.spawn(copy) {
                        log::error!("the thread of KafkaIngest for {} stopped; no longer consuming", self.topic);
                        break;
                    }
                }
            }
        }
        log::info!("stopped consuming {}", self.topic);
    }
}

/// The KiB of payload one KafkaIngest keeps in flight: four messages of the maximum size
/// (32 MiB with the default KAFKA_MAX_MESSAGE_BYTES). Decoded messages take more memory
/// than their JSON, so the resident size of this work is a multiple of the budget.
fn byte_budget_kib(max_message_bytes: usize) -> usize {
    4 * max_message_bytes / 1024
}

/// Return the KiB librdkafka may prefetch ahead of the consumer: two messages of the
/// maximum size (16 MiB with the default KAFKA_MAX_MESSAGE_BYTES). librdkafka's default
/// of 64 MiB adds to every process's memory while the consumer is held back.
fn prefetch_kib(max_message_bytes: usize) -> usize {
    2 * max_message_bytes / 1024
}

fn worker_index(key: &str, workers: usize) -> usize {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    (hasher.finish() % workers as u64) as usize
}
