//! DepthWalker: runs the depth walks the DbWriter queues, one round at a time, off the
//! write path.

use std::time::{Duration, Instant};

use actix::prelude::*;
use sqlx::PgPool;

use crate::db::depth::{self, WalkSummary};
use crate::metrics::{ActorName, ActorWorkDone, DepthWalkFailed, DepthsLowered};

/// The pause before the next round when the last one took less than a full share of the
/// queue, or failed.
const IDLE_INTERVAL: Duration = Duration::from_millis(200);

/// Maximum number of queued walks in one round, so that one round's transaction stays short.
const WALKS_PER_ROUND: i64 = 1000;

/// The actor that lowers the depths of URLs to which a shorter path turned up.
pub struct DepthWalker {
    pool: PgPool,
    max_depth: i32,
}

impl DepthWalker {
    pub fn new(pool: PgPool, max_depth: i32) -> Self {
        Self { pool, max_depth }
    }

    /// Run one round, then the next one at once if this one took a full share of the
    /// queue, or after the idle interval otherwise. A failed round leaves its walks queued
    /// and is retried after the interval.
    fn round(&mut self, ctx: &mut Context<Self>) {
        let pool = self.pool.clone();
        let max_depth = self.max_depth;
        ctx.wait(
            async move {
                let started = Instant::now();
                let outcome = depth::walk(&pool, max_depth, WALKS_PER_ROUND).await;
                (outcome, started.elapsed())
            }
            .into_actor(self)
            .map(|(outcome, elapsed), _walker, ctx| {
                let next = match outcome {
                    Ok(summary) => {
                        if summary != WalkSummary::default() {
                            ActorWorkDone { actor: ActorName::DepthWalker, elapsed }.emit();
                            DepthsLowered { summary, elapsed }.emit();
                        }
                        if summary.walks >= WALKS_PER_ROUND as u64 {
                            Duration::ZERO
                        } else {
                            IDLE_INTERVAL
                        }
                    }
                    Err(error) => {
                        DepthWalkFailed { error: &error }.emit();
                        IDLE_INTERVAL
                    }
                };
                ctx.run_later(next, |walker, ctx| walker.round(ctx));
            }),
        );
    }
}

impl Actor for DepthWalker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.round(ctx);
    }
}
