//! The scraper role: KafkaIngest on `topic_url` → FetchWorker pool → ResultSink to `topic_res`.

mod fetch;
mod parse_gate;
mod politeness;
mod resolve;
mod robots;

use std::time::Duration;

use actix::prelude::*;
use actix_web::{web, App, HttpResponse, HttpServer};
use anyhow::Context as _;

use crate::config::ScraperSettings;
use crate::kafka::{self, Drain, KafkaIngest, ResultSink};
use crate::messages::CrawlRequest;
use crate::readiness::Readiness;
use crate::shutdown::{self, Shutdown, Stop, TerminationSignals};
use fetch::{FetchSettings, FetchWorker};
use resolve::CrawlResolver;

/// How long a stopping scraper waits for its fetches in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// Run the scraper role until SIGTERM or SIGINT.
pub async fn run(settings: ScraperSettings, mut signals: TerminationSignals) -> anyhow::Result<()> {
    crate::metrics::init();
    let (trigger, shutdown) = shutdown::channel();

    let readiness =
        Readiness::new(&[("startup", "waiting for the Kafka broker and the topics"), ("broker", "not checked yet")]);
    readiness.spawn_monitor(&settings.kafka, None)?;
    let metrics_server = metrics_server(&settings, readiness.clone())?;
    let metrics_handle = metrics_server.handle();
    actix::spawn(metrics_server);

    let topics = kafka::role_topics(&settings.kafka);
    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
    crate::metrics::init_kafka(&[&settings.kafka.topic_url, &settings.kafka.topic_res], "scraper");
    tokio::select! {
        created = kafka::ensure_topics(&settings.kafka, &topics) => created?,
        signal = signals.recv() => {
            log::info!("{signal} received before the broker was reachable; stopping");
            return Ok(());
        }
    }

    let supervisor = Supervisor::start_children(&settings, shutdown)?.start();
    readiness.set("startup", Ok(()));
    let signal = signals.recv().await;
    log::info!("{signal} received; draining fetches in flight");
    readiness.set("startup", Err(format!("{signal} received; stopping")));
    trigger.trigger();
    if let Err(error) = supervisor.send(Stop).await {
        log::warn!("the Supervisor stopped before draining: {error}");
    }
    metrics_handle.stop(true).await;
    log::info!("scraper stopped");
    Ok(())
}

/// Owns the scraper's actors and FetchWorker threads: starts them, and drains them on
/// [`Stop`].
struct Supervisor {
    ingest: Addr<KafkaIngest<CrawlRequest>>,
    _arbiters: Vec<Arbiter>,
}

impl Actor for Supervisor {
    type Context = Context<Self>;
}

impl Handler<Stop> for Supervisor {
    type Result = ResponseFuture<()>;

    /// Let KafkaIngest finish the fetches in flight; their results go out through the sink.
    fn handle(&mut self, _msg: Stop, _ctx: &mut Self::Context) -> Self::Result {
        let ingest = self.ingest.clone();
        Box::pin(async move {
            if let Err(e) = ingest.send(Drain { timeout: DRAIN_TIMEOUT }).await {
                log::warn!("KafkaIngest stopped before draining: {e}");
            }
        })
    }
}

impl Supervisor {
    fn start_children(settings: &ScraperSettings, shutdown: Shutdown) -> anyhow::Result<Self> {
        // Results come out one fetch at a time. A 5 ms linger lets them share requests
        // under load: with 1 ms in both producers, the broker used 14.8 CPU seconds in the
        // benchmark crawl instead of about 5.
        let sink = ResultSink::new(&settings.kafka, "scraper", Duration::from_millis(5), shutdown.clone())?.start();
        let fetch_settings = FetchSettings::from_settings(settings);
        let resolver = CrawlResolver::new(&settings.politeness.resolve, settings.politeness.allow_private_addresses)?;
        if settings.politeness.allow_private_addresses {
            log::warn!("ALLOW_PRIVATE_ADDRESSES is on: this scraper fetches loopback and private addresses");
        }

        let mut arbiters = Vec::new();
        let mut workers = Vec::new();
        for _ in 0..settings.worker_threads() {
            let arbiter = Arbiter::new();
            let (fetch_settings, resolver, sink, topic) =
                (fetch_settings.clone(), resolver.clone(), sink.clone(), settings.kafka.topic_res.clone());
            let worker = FetchWorker::start_in_arbiter(&arbiter.handle(), move |_| {
                FetchWorker::new(fetch_settings, resolver, sink, topic)
            });
            workers.push(worker.recipient());
            arbiters.push(arbiter);
        }
        log::info!(
            "scraper started: {} FetchWorker threads, up to {} fetches at once",
            workers.len(),
            settings.concurrency
        );

        let ingest = KafkaIngest::<CrawlRequest>::new(
            &settings.kafka,
            "scraper",
            &settings.kafka.topic_url,
            workers,
            settings.concurrency as usize,
            shutdown,
        )?
        .start();
        Ok(Self { ingest, _arbiters: arbiters })
    }
}

fn metrics_server(settings: &ScraperSettings, readiness: Readiness) -> anyhow::Result<actix_web::dev::Server> {
    let prometheus = crate::metrics::http_middleware("open_ahrefs_scraper")?;
    let readiness = web::Data::new(readiness);
    let server = HttpServer::new(move || {
        App::new()
            .wrap(prometheus.clone())
            .app_data(readiness.clone())
            .route("/healthz", web::get().to(|| async { HttpResponse::Ok().body("ok") }))
            .route("/readyz", web::get().to(crate::readiness::readyz))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(5)
    .bind(settings.metrics_listen)
    .with_context(|| format!("binding SCRAPER_METRICS_LISTEN={}", settings.metrics_listen))?
    .run();
    Ok(server)
}
