//! DbWriter: collects fetch results into batches and writes each batch in one transaction,
//! acknowledging the results to KafkaIngest only after the commit.
//!
//! A batch is written when it reaches DB_BATCH_SIZE results, or once the writer has rested
//! as long as its last write took, but never longer than DB_BATCH_MS. The rest counts from
//! the latest start or end of a write.
//!
//! Up to DB_WRITE_LANES batches are written at once, each in its own transaction. One
//! transaction keeps one PostgreSQL backend busy, and its client waits for every statement;
//! a second lane keeps another core at work meanwhile. The lanes keep the crawl limits
//! exact: a lane that adds URLs to a site locks the site's row first (see `db::discover`).
//!
//! The rest sets the batch size by the load. When results trickle in, as on a chain of
//! pages that each link only to the next one, a result is written within milliseconds, and
//! the frontier can lease the next page at once. Under load, each write takes longer, the
//! rest grows with it, and the results that arrive meanwhile make a larger batch, so the
//! writer keeps a fixed cost per transaction from eating the database's time.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix::SpawnHandle;
use sqlx::PgPool;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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
    /// How long the last finished write took.
    last_write: Option<Duration>,
    /// When a write last started or ended.
    rest_from: Instant,
    /// The flush scheduled for the end of the rest, while results wait for it.
    scheduled: Option<SpawnHandle>,
    /// One permit per lane: a batch is written only while it holds one.
    lanes: Arc<Semaphore>,
    /// Caches of stored URL ids, one per lane at most. Each write takes one and hands it
    /// back, so no two writes share a cache.
    url_caches: Arc<Mutex<Vec<UrlCache>>>,
    policy: WritePolicy,
    /// Woken after each commit, which may have added pending URLs and stored the results
    /// of leased ones.
    frontier: Addr<Frontier>,
}

impl DbWriter {
    pub fn new(
        pool: PgPool,
        batch_size: usize,
        lanes: usize,
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
            rest_from: Instant::now(),
            scheduled: None,
            lanes: Arc::new(Semaphore::new(lanes)),
            url_caches: Arc::new(Mutex::new(Vec::with_capacity(lanes))),
            policy,
            frontier,
        }
    }

    /// Write the buffer now if it is full or the rest is over, else schedule the write for
    /// the end of the rest.
    fn flush_when_due(&mut self, ctx: &mut Context<Self>) {
        let rest_left = match self.last_write {
            Some(took) => took.min(self.max_rest).saturating_sub(self.rest_from.elapsed()),
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

    /// Write the buffered results in a free lane. The actor handles no other message until
    /// a lane is free, so when every lane is busy its mailbox fills and KafkaIngest stops
    /// consuming: a slow database slows the crawl down instead of growing memory.
    fn flush(&mut self, ctx: &mut Context<Self>) {
        if let Some(handle) = self.scheduled.take() {
            ctx.cancel_future(handle);
        }
        if self.buffer.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.buffer);
        let lanes = Arc::clone(&self.lanes);
        ctx.wait(
            // The semaphore is never closed, so the permit is always granted.
            async move { lanes.acquire_owned().await.ok() }
                .into_actor(self)
                .map(|lane, writer, ctx| writer.write_in_lane(batch, lane, ctx)),
        );
    }

    /// Write a batch while holding a lane, then acknowledge its results. The write is a
    /// task of its own rather than a future of the actor, because the actor polls none of
    /// its futures while a flush waits for a lane.
    fn write_in_lane(
        &mut self,
        batch: Vec<Delivery<CrawlResult>>,
        lane: Option<OwnedSemaphorePermit>,
        ctx: &mut Context<Self>,
    ) {
        self.rest_from = Instant::now();
        let pool = self.pool.clone();
        let policy = self.policy.clone();
        let frontier = self.frontier.clone();
        let url_caches = Arc::clone(&self.url_caches);
        let write = actix::spawn(async move {
            let started = Instant::now();
            let mut url_cache = lock(&url_caches).pop().unwrap_or_default();
            write_until_durable(&pool, &batch, &policy, &mut url_cache).await;

            // One Wake per commit, and the Frontier merges the ones that arrive during a
            // tick, so this unchecked send cannot pile up.
            frontier.do_send(Wake);
            ActorWorkDone { actor: ActorName::DbWriter, elapsed: started.elapsed() }.emit();
            ActorMessages { actor: ActorName::DbWriter, direction: "out", count: batch.len() as u64 }.emit();
            for delivery in batch {
                delivery.ack.done();
            }

            // The cache goes back before the lane is freed, so the next write finds it.
            lock(&url_caches).push(url_cache);
            drop(lane);
            started.elapsed()
        });
        ctx.spawn(write.into_actor(self).map(|took, writer, _ctx| {
            if let Ok(took) = took {
                writer.last_write = Some(took);
                writer.rest_from = Instant::now();
            }
        }));
    }
}

/// Lock the lanes' spare caches. A lane that panicked while holding the lock left the list
/// whole, because it only pops or pushes one cache.
fn lock(url_caches: &Mutex<Vec<UrlCache>>) -> MutexGuard<'_, Vec<UrlCache>> {
    url_caches.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
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
