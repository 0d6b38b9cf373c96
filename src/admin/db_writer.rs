//! DbWriter: collects fetch results into batches and writes each batch in one transaction,
//! acknowledging the results to KafkaIngest only after the commit.
//!
//! A batch is written when it reaches DB_BATCH_SIZE results, or once the writer has rested
//! as long as its last write took, but never longer than DB_BATCH_MS.
//!
//! The rest sets the batch size by the load. When results trickle in, as on a chain of
//! pages that each link only to the next one, a result is written within milliseconds, and
//! the frontier can lease the next page at once. Under load, each write takes longer, the
//! rest grows with it, and the results that arrive meanwhile make a larger batch, so the
//! writer keeps a fixed cost per transaction from eating the database's time.

use std::time::{Duration, Instant};

use actix::prelude::*;
use actix::SpawnHandle;
use sqlx::PgPool;

use super::frontier::{Frontier, Wake};
use crate::db::url_cache::UrlCache;
use crate::db::{self, write::BatchStats, write::WritePolicy};
use crate::kafka::Delivery;
use crate::messages::CrawlResult;
use crate::metrics::{ActorMessages, ActorName, ActorWorkDone, BatchFailed, BatchWritten};

/// Writes fetch results to PostgreSQL in batches.
pub struct DbWriter {
    pool: PgPool,
    buffer: Vec<Delivery<CrawlResult>>,
    batch_size: usize,
    /// The maximum rest between two writes, DB_BATCH_MS.
    max_rest: Duration,
    /// When the last write ended and how long it took.
    last_write: Option<(Instant, Duration)>,
    /// The flush scheduled for the end of the rest, while results wait for it.
    scheduled: Option<SpawnHandle>,
    /// Cache of stored URL ids. Each write takes it and hands it back, which is safe
    /// because only one write runs at a time.
    url_cache: UrlCache,
    policy: WritePolicy,
    /// Woken after each commit, which may have added pending URLs and stored the results
    /// of leased ones.
    frontier: Addr<Frontier>,
}

impl DbWriter {
    pub fn new(
        pool: PgPool,
        batch_size: usize,
        max_rest: Duration,
        policy: WritePolicy,
        frontier: Addr<Frontier>,
    ) -> Self {
        Self {
            pool,
            buffer: Vec::with_capacity(batch_size),
            batch_size,
            max_rest,
            last_write: None,
            scheduled: None,
            url_cache: UrlCache::default(),
            policy,
            frontier,
        }
    }

    /// Write the buffer now if it is full or the rest is over, else schedule the write for
    /// the end of the rest.
    fn flush_when_due(&mut self, ctx: &mut Context<Self>) {
        let rest_left = match self.last_write {
            Some((ended, took)) => took.min(self.max_rest).saturating_sub(ended.elapsed()),
            None => Duration::ZERO,
        };
        if self.buffer.len() >= self.batch_size || rest_left.is_zero() {
            self.flush(ctx);
        } else if self.scheduled.is_none() {
            self.scheduled = Some(ctx.run_later(rest_left, |writer, ctx| {
                writer.scheduled = None;
                writer.flush(ctx);
            }));
        }
    }

    /// Write the buffered results. The actor handles no other message until the batch is
    /// committed, so its mailbox fills and KafkaIngest stops consuming: a slow database
    /// slows the crawl down instead of growing memory.
    fn flush(&mut self, ctx: &mut Context<Self>) {
        if let Some(handle) = self.scheduled.take() {
            ctx.cancel_future(handle);
        }
        if self.buffer.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.buffer);
        let pool = self.pool.clone();
        let policy = self.policy.clone();
        let frontier = self.frontier.clone();
        let mut url_cache = std::mem::take(&mut self.url_cache);
        ctx.wait(
            async move {
                let started = Instant::now();
                write_until_durable(&pool, &batch, &policy, &mut url_cache).await;
                // One Wake per commit, and the Frontier merges the ones that arrive during
                // a tick, so this unchecked send cannot pile up.
                frontier.do_send(Wake);
                ActorWorkDone { actor: ActorName::DbWriter, elapsed: started.elapsed() }.emit();
                ActorMessages { actor: ActorName::DbWriter, direction: "out", count: batch.len() as u64 }.emit();
                for delivery in batch {
                    delivery.ack.done();
                }
                (started.elapsed(), url_cache)
            }
            .into_actor(self)
            .map(|(took, url_cache), writer, _ctx| {
                writer.last_write = Some((Instant::now(), took));
                writer.url_cache = url_cache;
            }),
        );
    }
}

impl Actor for DbWriter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.batch_size);
    }
}

impl Handler<Delivery<CrawlResult>> for DbWriter {
    type Result = ();

    fn handle(&mut self, delivery: Delivery<CrawlResult>, ctx: &mut Self::Context) {
        ActorMessages { actor: ActorName::DbWriter, direction: "in", count: 1 }.emit();
        self.buffer.push(delivery);
        self.flush_when_due(ctx);
    }
}

/// Write a batch, retrying while the database is unreachable. A batch the database
/// rejects for its data is split, so that one bad result cannot hold back the others.
async fn write_until_durable(
    pool: &PgPool,
    batch: &[Delivery<CrawlResult>],
    policy: &WritePolicy,
    url_cache: &mut UrlCache,
) {
    let results: Vec<&CrawlResult> = batch.iter().map(|d| &d.message).collect();
    match write_with_retry(pool, &results, policy, url_cache).await {
        Ok(()) => {}
        Err(error) if results.len() > 1 => {
            log::warn!("a batch of {} results was rejected ({error}); writing them one by one", results.len());
            for result in &results {
                if let Err(error) = write_with_retry(pool, std::slice::from_ref(result), policy, url_cache).await {
                    // The URL stays leased, so it is fetched again when its lease runs out.
                    BatchFailed {
                        results: 1,
                        attempt: 1,
                        error: &format!("{error}; skipping result of {}", result.url),
                    }
                    .emit();
                }
            }
        }
        Err(error) => {
            BatchFailed { results: 1, attempt: 1, error: &format!("{error}; skipping result of {}", results[0].url) }
                .emit()
        }
    }
}

/// Retry transient failures forever with backoff; return the first data error.
async fn write_with_retry(
    pool: &PgPool,
    results: &[&CrawlResult],
    policy: &WritePolicy,
    url_cache: &mut UrlCache,
) -> Result<(), sqlx::Error> {
    let mut backoff = Duration::from_millis(100);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let started = Instant::now();
        match db::write::write_results(pool, results, policy, url_cache).await {
            Ok(BatchStats { new_urls, links, unknown_urls }) => {
                BatchWritten {
                    results: results.len() - unknown_urls as usize,
                    new_urls,
                    links,
                    elapsed: started.elapsed(),
                }
                .emit();
                return Ok(());
            }
            Err(error) if db::is_transient(&error) => {
                BatchFailed { results: results.len(), attempt, error: &error }.emit();
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
            Err(error) => return Err(error),
        }
    }
}
