//! The `open-ahrefs` command line: parses settings and starts one role.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use open_ahrefs::{admin, client, config, db, dev_broker, logging, scraper, shutdown};

#[derive(Debug, Parser)]
#[command(name = "open-ahrefs", version, about = "Self-hosted crawler and link index")]
struct Cli {
    /// Log line format: text for terminals, json for Loki and other log collectors.
    #[arg(long, env = "LOG_FORMAT", global = true, value_enum, default_value_t = logging::LogFormat::Text)]
    log_format: logging::LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the admin role: frontier, result writer and HTTP API.
    Admin(config::AdminSettings),
    /// Run the scraper role: fetch URLs from Kafka and publish the results.
    Scraper(config::ScraperSettings),
    /// Apply the database migrations and exit.
    Migrate(config::DatabaseSettings),
    /// Add a site through the admin API and follow its crawl to the end.
    Crawl(client::CrawlArgs),
    /// List the backlinks of a URL, host or domain through the admin API.
    Backlinks(client::BacklinksArgs),
    /// Print a site's audit findings through the admin API.
    Audit(client::AuditArgs),
    /// Compute link rank (URL and domain rating) over the stored link graph and exit.
    Rank(config::DatabaseSettings),
    /// Run an in-memory Kafka-API broker for development and tests.
    DevBroker(dev_broker::DevBrokerArgs),
}

#[actix_web::main]
async fn main() {
    tune_malloc();
    let cli = Cli::parse();
    let role = match cli.command {
        Command::Admin(_) => "admin",
        Command::Scraper(_) => "scraper",
        Command::Migrate(_) => "migrate",
        Command::Crawl(_) | Command::Backlinks(_) | Command::Audit(_) => "client",
        Command::Rank(_) => "rank",
        Command::DevBroker(_) => "dev-broker",
    };
    logging::init(cli.log_format, role);

    // awc's rustls support leaves the choice of cryptography to the binary.
    // NOTE: ring has no post-quantum key exchange, which is why rustls deprecates it;
    // aws-lc-rs has one but needs cmake and a much longer build.
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    if provider.install_default().is_err() {
        log::debug!("a rustls crypto provider was already installed");
    }

    // Only the long-running roles drain on SIGTERM; the other commands keep the default
    // handling, so that SIGTERM or Ctrl-C ends them at once.
    let outcome = match cli.command {
        Command::Admin(settings) => with_signals(|signals| admin::run(settings, signals)).await,
        Command::Scraper(settings) => with_signals(|signals| scraper::run(settings, signals)).await,
        Command::DevBroker(args) => with_signals(|signals| dev_broker::run(args, signals)).await,
        Command::Migrate(settings) => migrate(settings).await,
        Command::Crawl(args) => client::crawl(args).await,
        Command::Backlinks(args) => client::backlinks(args).await,
        Command::Audit(args) => client::audit(args).await,
        Command::Rank(settings) => rank(settings).await,
    };
    if let Err(error) = outcome {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

/// Tune glibc's malloc for a process that keeps many large buffers for a short time.
///
/// By default every thread that allocates may get an arena of its own (up to eight per
/// core), and freed pages stay in the arena they came from. A scraper that parses pages on
/// tokio's blocking threads peaked at 523 MB resident in the benchmark crawl that way,
/// against 247 MB with two arenas. A fixed mmap threshold also keeps glibc from raising it after
/// each large free, so that bodies, parsed trees and encoded results of more than 256 KiB
/// go back to the system as soon as they are dropped.
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    for (parameter, name, value) in
        [(libc::M_ARENA_MAX, "M_ARENA_MAX", 2), (libc::M_MMAP_THRESHOLD, "M_MMAP_THRESHOLD", 256 * 1024)]
    {
        // SAFETY: mallopt only changes a malloc tunable, and it runs at the start of main,
        // before any role starts its threads. It returns 0 when it rejects the value, and
        // the default then stays in place.
        let accepted = unsafe { libc::mallopt(parameter, value) };
        if accepted == 0 {
            eprintln!("warning: glibc rejected {name}={value}; its default stays in use");
        }
    }
}

/// Run a long-running role with the SIGTERM and SIGINT handlers it drains on.
async fn with_signals<F, R>(role: F) -> anyhow::Result<()>
where
    F: FnOnce(shutdown::TerminationSignals) -> R,
    R: std::future::Future<Output = anyhow::Result<()>>,
{
    let signals = shutdown::TerminationSignals::install().context("installing the SIGTERM and SIGINT handlers")?;
    role(signals).await
}

async fn rank(settings: config::DatabaseSettings) -> anyhow::Result<()> {
    let pool = db::connect(&settings).await?;
    let summary = db::rank::recompute(&pool).await?;
    println!(
        "ranked {} URLs and {} domains in {:.2}s ({} iterations)",
        summary.urls, summary.domains, summary.seconds, summary.iterations
    );
    Ok(())
}

async fn migrate(settings: config::DatabaseSettings) -> anyhow::Result<()> {
    let pool = db::connect(&settings).await?;
    db::migrate(&pool).await?;
    log::info!("migrations applied");
    Ok(())
}
