//! The admin role: the frontier, KafkaIngest on `topic_res` → DbWriter, and the HTTP API.

mod api;
mod auth;
mod db_writer;
mod depth_walker;
mod export;
mod frontier;
mod links_api;
mod methods;
mod openapi;
mod ranker;
mod request_errors;

use std::time::Duration;

use actix::prelude::*;
use actix_web::{web, App, HttpServer};
use anyhow::Context as _;
use sqlx::PgPool;

use crate::config::AdminSettings;
use crate::db::write::WritePolicy;
use crate::kafka::{self, Drain, KafkaIngest, ResultSink};
use crate::messages::CrawlResult;
use crate::readiness::Readiness;
use crate::scope::CrawlLimits;
use crate::shutdown::{self, Shutdown, Stop, TerminationSignals};
use db_writer::DbWriter;
use frontier::{Frontier, FrontierSettings, StopFrontier};

/// How long a stopping admin waits for results in flight to be written.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// Run the admin role until SIGTERM or SIGINT.
pub async fn run(settings: AdminSettings, mut signals: TerminationSignals) -> anyhow::Result<()> {
    settings.check()?;
    crate::metrics::init();
    let pool = crate::db::connect(&settings.database).await?;
    crate::db::migrate(&pool).await?;
    let (trigger, shutdown) = shutdown::channel();
    let readiness = Readiness::new(&[
        ("startup", "waiting for the Kafka broker and the topics"),
        ("broker", "not checked yet"),
        ("database", "not checked yet"),
    ]);
    readiness.spawn_monitor(&settings.kafka, Some(pool.clone()))?;

    let server = http_server(&settings, pool.clone(), readiness.clone())?;
    let server_handle = server.handle();
    actix::spawn(server);
    log::info!("admin API listening on {}", settings.listen);

    let topics = kafka::role_topics(&settings.kafka);
    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
    crate::metrics::init_kafka(&[&settings.kafka.topic_url, &settings.kafka.topic_res], "admin");
    tokio::select! {
        created = kafka::ensure_topics(&settings.kafka, &topics) => created?,
        signal = signals.recv() => {
            log::info!("{signal} received before the broker was reachable; stopping");
            server_handle.stop(true).await;
            return Ok(());
        }
    }

    let supervisor = Supervisor::start_children(&settings, pool, shutdown)?.start();
    readiness.set("startup", Ok(()));
    let signal = signals.recv().await;
    log::info!("{signal} received; writing results in flight");
    readiness.set("startup", Err(format!("{signal} received; stopping")));
    trigger.trigger();
    if let Err(error) = supervisor.send(Stop).await {
        log::warn!("the Supervisor stopped before draining: {error}");
    }
    server_handle.stop(true).await;
    log::info!("admin stopped");
    Ok(())
}

/// Owns the admin's actors: starts them, and stops them in order on [`Stop`].
struct Supervisor {
    ingest: Addr<KafkaIngest<CrawlResult>>,
    frontier: Addr<Frontier>,
}

impl Actor for Supervisor {
    type Context = Context<Self>;
}

impl Handler<Stop> for Supervisor {
    type Result = ResponseFuture<()>;

    /// Stop leasing URLs first, then let KafkaIngest finish the results in flight.
    fn handle(&mut self, _msg: Stop, _ctx: &mut Self::Context) -> Self::Result {
        self.frontier.do_send(StopFrontier);
        let ingest = self.ingest.clone();
        Box::pin(async move {
            if let Err(e) = ingest.send(Drain { timeout: DRAIN_TIMEOUT }).await {
                log::warn!("KafkaIngest stopped before draining: {e}");
            }
        })
    }
}

impl Supervisor {
    fn start_children(settings: &AdminSettings, pool: PgPool, shutdown: Shutdown) -> anyhow::Result<Self> {
        // A frontier tick publishes all its URLs at once, so they share requests without a
        // linger, and the 1 ms left is on every hop of a crawl.
        let sink = ResultSink::new(&settings.kafka, "admin", Duration::from_millis(1), shutdown.clone())?.start();
        let frontier = Frontier::new(
            pool.clone(),
            sink,
            FrontierSettings {
                topic_url: settings.kafka.topic_url.clone(),
                lease: settings.lease(),
                max_in_flight: settings.max_in_flight,
                max_in_flight_per_site: settings.max_in_flight_per_site,
                interval: Duration::from_millis(settings.frontier_interval_ms),
            },
        )
        .start();

        let batch_size = settings.db_batch_size as usize;
        let writer_pool = pool.clone();
        let lanes = settings.db_write_lanes as usize;
        let writer = DbWriter::new(
            pool,
            batch_size,
            lanes,
            Duration::from_millis(settings.db_batch_ms),
            WritePolicy {
                revisit: Duration::from_secs(u64::from(settings.revisit_days) * 86_400),
                max_retries: settings.limits.max_retries,
                limits: CrawlLimits {
                    max_pages_per_site: settings.limits.max_pages_per_site,
                    max_depth: settings.limits.max_depth,
                    max_query_variants: settings.limits.max_query_variants,
                    max_repeated_segments: settings.limits.max_repeated_segments,
                },
            },
            frontier.clone(),
        )
        .start();

        // A batch in each lane being written and one filling up.
        let ingest = KafkaIngest::<CrawlResult>::new(
            &settings.kafka,
            "admin",
            &settings.kafka.topic_res,
            vec![writer.recipient()],
            batch_size * (lanes + 1),
            shutdown,
        )?
        .start();
        depth_walker::DepthWalker::new(writer_pool.clone(), settings.limits.max_depth).start();
        if settings.rank_interval_seconds > 0 {
            ranker::Ranker::new(writer_pool, Duration::from_secs(settings.rank_interval_seconds)).start();
        }
        Ok(Self { ingest, frontier })
    }
}

fn http_server(settings: &AdminSettings, pool: PgPool, readiness: Readiness) -> anyhow::Result<actix_web::dev::Server> {
    let prometheus = crate::metrics::http_middleware("open_ahrefs_admin")?;
    let pool = web::Data::new(pool);
    let thresholds = web::Data::new(crate::db::audit::AuditThresholds {
        max_depth: settings.audit_max_depth,
        slow_ms: settings.audit_slow_ms,
        large_bytes: settings.audit_large_bytes,
        ..crate::db::audit::AuditThresholds::default()
    });
    let api_settings = web::Data::new(api::ApiSettings {
        url_policy: settings.urls.policy(),
        max_redirect_hops: settings.limits.max_redirect_hops as usize,
    });
    let access = web::Data::new(auth::AccessPolicy { token: settings.admin_token.clone() });
    if access.token.is_none() {
        log::warn!("ADMIN_TOKEN is not set: anyone who reaches {} can add sites", settings.listen);
    }
    let readiness = web::Data::new(readiness);
    let console = crate::console::Console::new(settings);
    let allowed_methods =
        web::Data::new(methods::AllowedMethods::from_document(&<openapi::ApiDoc as utoipa::OpenApi>::openapi()));

    let server = HttpServer::new(move || {
        App::new()
            .wrap(actix_web::middleware::from_fn(auth::require_token))
            // Outside the token check, so that a HEAD is checked as the GET it becomes.
            .wrap(actix_web::middleware::from_fn(methods::head_as_get))
            .wrap(tracing_actix_web::TracingLogger::default())
            .wrap(prometheus.clone())
            .app_data(pool.clone())
            .app_data(api_settings.clone())
            .app_data(access.clone())
            .app_data(readiness.clone())
            .app_data(thresholds.clone())
            .app_data(allowed_methods.clone())
            .configure(api::configure)
            .configure(|cfg| console.configure(cfg))
            .configure(openapi::configure)
            .route("/readyz", web::get().to(crate::readiness::readyz))
            .default_service(web::to(methods::no_route))
    })
    .disable_signals()
    // Bounds the wait for open requests at stop, so that SIGTERM ends the process in time.
    .shutdown_timeout(5)
    .bind(settings.listen)
    .with_context(|| format!("binding ADMIN_LISTEN={}", settings.listen))?
    .run();
    Ok(server)
}
