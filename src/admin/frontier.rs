//! Frontier: leases due URLs from PostgreSQL and publishes them to the scrapers.

use std::time::{Duration, Instant};

use actix::prelude::*;
use futures_util::future::join_all;
use sqlx::PgPool;

use crate::db::frontier as queries;
use crate::kafka::{Publish, ResultSink};
use crate::messages::{CrawlRequest, UrlKind, SCHEMA_VERSION};
use crate::metrics::{
    ActorMessages, ActorName, ActorWorkDone, FrontierFailed, FrontierSize, LeasesExpired, SiteDone, UrlsDispatched,
};

/// Most URLs leased in one tick, so that one tick's publishing stays short.
const MAX_LEASE_PER_TICK: i64 = 1000;

/// How often the frontier size per site is counted for the metrics.
const SIZE_INTERVAL: Duration = Duration::from_secs(5);

/// Settings of the frontier.
#[derive(Debug, Clone)]
pub struct FrontierSettings {
    pub topic_url: String,
    pub lease: Duration,
    pub max_in_flight: i64,
    pub max_in_flight_per_site: i64,
    pub interval: Duration,
}

/// Decides what to fetch next and hands it to Kafka.
pub struct Frontier {
    pool: PgPool,
    sink: Addr<ResultSink>,
    settings: FrontierSettings,
    busy: bool,
    /// The tick requested while one was running; it runs as soon as that one ends.
    queued: Option<TickKind>,
}

impl Frontier {
    pub fn new(pool: PgPool, sink: Addr<ResultSink>, settings: FrontierSettings) -> Self {
        Self { pool, sink, settings, busy: false, queued: None }
    }

    /// Run a tick now, or after the running one: ticks never overlap, and requests that
    /// arrive meanwhile merge into one, a full tick if any of them was full.
    fn request_tick(&mut self, ctx: &mut Context<Self>, kind: TickKind) {
        if self.busy {
            self.queued = Some(match self.queued {
                Some(TickKind::Full) => TickKind::Full,
                _ => kind,
            });
            return;
        }
        self.busy = true;
        let step = tick(self.pool.clone(), self.sink.clone(), self.settings.clone(), kind);
        ctx.spawn(step.into_actor(self).map(|outcome, frontier, ctx| {
            frontier.busy = false;
            if let Err(error) = outcome {
                FrontierFailed { error: &error }.emit();
            }
            if let Some(kind) = frontier.queued.take() {
                frontier.request_tick(ctx, kind);
            }
        }));
    }
}

impl Actor for Frontier {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(SIZE_INTERVAL, |frontier, ctx| {
            let pool = frontier.pool.clone();
            ctx.spawn(
                async move {
                    match queries::size_by_site(&pool).await {
                        Ok(rows) => FrontierSize { rows: &rows }.emit(),
                        Err(error) => FrontierFailed { error: &error }.emit(),
                    }
                }
                .into_actor(frontier),
            );
        });
        ctx.run_interval(self.settings.interval, |frontier, ctx| frontier.request_tick(ctx, TickKind::Full));
    }
}

/// A request to tick now instead of at the next interval, because new URLs are pending or
/// the results of leased URLs are stored. The DbWriter sends one after each commit: on a
/// chain of pages that each link only to the next, the interval would add to every hop.
#[derive(actix::Message)]
#[rtype(result = "()")]
pub struct Wake;

impl Handler<Wake> for Frontier {
    type Result = ();

    fn handle(&mut self, _msg: Wake, ctx: &mut Self::Context) {
        self.request_tick(ctx, TickKind::LeaseOnly);
    }
}

/// Stop leasing URLs; anything leased but not yet published goes out again after its lease.
#[derive(actix::Message)]
#[rtype(result = "()")]
pub struct StopFrontier;

impl Handler<StopFrontier> for Frontier {
    type Result = ();

    fn handle(&mut self, _msg: StopFrontier, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

/// The work of one tick: the interval's full round, or only the leasing after a [`Wake`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TickKind {
    Full,
    LeaseOnly,
}

async fn tick(
    pool: PgPool,
    sink: Addr<ResultSink>,
    settings: FrontierSettings,
    kind: TickKind,
) -> Result<(), sqlx::Error> {
    let started = Instant::now();
    if kind == TickKind::Full {
        let expired = queries::expire_leases(&pool).await?;
        if expired > 0 {
            LeasesExpired { count: expired }.emit();
        }
        queries::schedule_revisits(&pool).await?;
    }

    let room = (settings.max_in_flight - queries::in_flight(&pool).await?).min(MAX_LEASE_PER_TICK);
    if room > 0 {
        let leased = queries::lease_due(&pool, room, settings.max_in_flight_per_site, settings.lease).await?;
        if !leased.is_empty() {
            dispatch(&pool, &sink, &settings.topic_url, leased).await?;
        }
    }

    if kind == TickKind::Full {
        for (id, host) in queries::update_site_completion(&pool).await? {
            SiteDone { id, host: &host }.emit();
        }
    }
    ActorWorkDone { actor: ActorName::Frontier, elapsed: started.elapsed() }.emit();
    Ok(())
}

/// Publish leased URLs; the ones Kafka did not take go back to pending at once.
async fn dispatch(
    pool: &PgPool,
    sink: &Addr<ResultSink>,
    topic: &str,
    leased: Vec<queries::LeasedUrl>,
) -> Result<(), sqlx::Error> {
    let sends = leased.iter().map(|url| {
        let request = CrawlRequest {
            schema_version: SCHEMA_VERSION,
            url_id: url.id,
            site_id: url.site_id,
            url: url.url.clone(),
            depth: url.depth,
            kind: if url.kind == "sitemap" { UrlKind::Sitemap } else { UrlKind::Page },
            leased_at: url.leased_at,
        };
        let publish = serde_json::to_vec(&request).map(|payload| Publish {
            topic: topic.to_string(),
            key: url.host.clone(),
            payload,
        });
        async move {
            match publish {
                Ok(publish) => matches!(sink.send(publish).await, Ok(Ok(()))),
                Err(error) => {
                    log::error!("serializing the request for {} failed: {error}", url.url);
                    false
                }
            }
        }
    });
    let published = join_all(sends).await;

    let failed: Vec<i64> = leased.iter().zip(&published).filter(|(_, ok)| !**ok).map(|(url, _)| url.id).collect();
    let dispatched = (leased.len() - failed.len()) as u64;
    UrlsDispatched { count: dispatched }.emit();
    ActorMessages { actor: ActorName::Frontier, direction: "out", count: dispatched }.emit();
    if !failed.is_empty() {
        log::warn!("{} leased URLs were not published; releasing them", failed.len());
        queries::release(pool, &failed).await?;
    }
    Ok(())
}
