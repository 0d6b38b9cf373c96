//! Ranker: recomputes link rank periodically, one run at a time.

use std::time::Duration;

use actix::prelude::*;
use sqlx::PgPool;

/// Runs `db::rank::recompute` every interval.
pub struct Ranker {
    pool: PgPool,
    interval: Duration,
    running: bool,
}

impl Ranker {
    pub fn new(pool: PgPool, interval: Duration) -> Self {
        Self { pool, interval, running: false }
    }
}

impl Actor for Ranker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.interval, |ranker, ctx| {
            if ranker.running {
                return;
            }
            ranker.running = true;
            let pool = ranker.pool.clone();
            ctx.spawn(
                async move {
                    match crate::db::rank::recompute(&pool).await {
                        Ok(summary) => log::info!(
                            actor = "Ranker";
                            "link rank computed for {} URLs and {} domains in {:.1}s ({} iterations)",
                            summary.urls,
                            summary.domains,
                            summary.seconds,
                            summary.iterations
                        ),
                        Err(error) => log::warn!(actor = "Ranker"; "link rank computation failed, retrying next interval: {error}"),
                    }
                }
                .into_actor(ranker)
                .map(|_, ranker, _| ranker.running = false),
            );
        });
    }
}
