//! Every setting of every role: its flag, its environment variable, its default and its check.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{ArgAction, Args};

use crate::url::UrlPolicy;

/// Where the Kafka-API broker is and how the topics look.
#[derive(Debug, Clone, Args)]
pub struct KafkaSettings {
    /// Comma-separated bootstrap servers (host:port).
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub kafka_brokers: String,

    /// Topic of URLs to fetch, written by the admin and read by the scrapers.
    #[arg(long, env = "TOPIC_URL", default_value = "topic_url")]
    pub topic_url: String,

    /// Topic of fetch results, written by the scrapers and read by the admin.
    #[arg(long, env = "TOPIC_RES", default_value = "topic_res")]
    pub topic_res: String,

    /// Partitions of each topic when this process creates it. One host's URLs stay on one
    /// partition, so this is also the most scraper processes that can share the work.
    #[arg(long, env = "KAFKA_TOPIC_PARTITIONS", default_value_t = 6, value_parser = clap::value_parser!(i32).range(1..=10_000))]
    pub topic_partitions: i32,

    /// Replication factor of each topic when this process creates it.
    #[arg(long, env = "KAFKA_TOPIC_REPLICATION", default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=16))]
    pub topic_replication: i32,

    /// Largest message this process accepts or produces, in bytes.
    #[arg(long, env = "KAFKA_MAX_MESSAGE_BYTES", default_value_t = 8 * 1024 * 1024, value_parser = clap::value_parser!(u32).range(1024..=100 * 1024 * 1024))]
    pub max_message_bytes: u32,

    /// Prefix of the consumer group ids (`<prefix>-admin`, `<prefix>-scraper`).
    #[arg(long, env = "KAFKA_GROUP_PREFIX", default_value = "open-ahrefs")]
    pub group_prefix: String,

    /// Maximum time, in milliseconds, the broker keeps a fetch request of an idle consumer
    /// waiting (`fetch.wait.max.ms`). On a broker that does not return a waiting fetch as
    /// soon as a message arrives, every hop of a crawl (frontier to scraper, scraper to
    /// admin) may wait this long. With tansu 0.6.0, going from 20 to 5 ms cut a hop of the
    /// benchmark crawl from about 70 to 42 ms. The cost is more fetch requests from idle
    /// consumers, up to 200 a second each.
    #[arg(long, env = "KAFKA_FETCH_WAIT_MS", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub fetch_wait_ms: u32,

    /// How often librdkafka reports the statistics behind the Kafka lag and traffic
    /// metrics, in milliseconds. Each report is a JSON document parsed by the process.
    #[arg(long, env = "KAFKA_STATISTICS_INTERVAL_MS", default_value_t = 15_000, value_parser = clap::value_parser!(u32).range(1_000..=3_600_000))]
    pub statistics_interval_ms: u32,
}

/// How URLs are normalized, shared by both roles so that they agree on identities.
#[derive(Debug, Clone, Args)]
pub struct UrlSettings {
    /// Comma-separated query parameters to drop from every URL; `utm_*` drops a prefix.
    #[arg(long, env = "DROP_QUERY_PARAMS", value_delimiter = ',', default_value = "")]
    pub drop_query_params: Vec<String>,

    /// Longest URL followed, in bytes; longer links are counted on their page and dropped.
    #[arg(long, env = "MAX_URL_BYTES", default_value_t = 2048, value_parser = clap::value_parser!(u32).range(64..=2048))]
    pub max_url_bytes: u32,
}

impl UrlSettings {
    pub fn policy(&self) -> UrlPolicy {
        UrlPolicy {
            drop_query_params: self
                .drop_query_params
                .iter()
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect(),
            max_url_bytes: self.max_url_bytes as usize,
        }
    }
}

/// Settings of the admin role.
#[derive(Debug, Clone, Args)]
pub struct AdminSettings {
    #[command(flatten)]
    pub database: DatabaseSettings,

    #[command(flatten)]
    pub kafka: KafkaSettings,

    #[command(flatten)]
    pub urls: UrlSettings,

    #[command(flatten)]
    pub limits: CrawlLimitSettings,

    /// Address the HTTP API listens on.
    #[arg(long, env = "ADMIN_LISTEN", default_value = "0.0.0.0:8000")]
    pub listen: SocketAddr,

    /// Seconds a URL handed to the scrapers may go unanswered before it is handed out again.
    #[arg(long, env = "LEASE_SECONDS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(5..=86_400))]
    pub lease_seconds: u64,

    /// Most URLs handed to the scrapers and not yet answered, over all sites.
    #[arg(long, env = "FRONTIER_MAX_IN_FLIGHT", default_value_t = 2000, value_parser = clap::value_parser!(i64).range(1..=1_000_000))]
    pub max_in_flight: i64,

    /// Most URLs of one site handed to the scrapers and not yet answered. One host is
    /// crawled at the pace its politeness allows, so a long queue would only outlive its
    /// leases.
    #[arg(long, env = "FRONTIER_MAX_IN_FLIGHT_PER_SITE", default_value_t = 200, value_parser = clap::value_parser!(i64).range(1..=1_000_000))]
    pub max_in_flight_per_site: i64,

    /// Milliseconds between two looks of the frontier for due URLs.
    #[arg(long, env = "FRONTIER_INTERVAL_MS", default_value_t = 200, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub frontier_interval_ms: u64,

    /// Days before a fetched URL is due again.
    #[arg(long, env = "REVISIT_DAYS", default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub revisit_days: u32,

    /// Seconds between two link rank computations; 0 turns the periodic run off.
    #[arg(long, env = "RANK_INTERVAL_SECONDS", default_value_t = 3600)]
    pub rank_interval_seconds: u64,

    /// Pages more clicks than this from the seed are reported by the audit.
    #[arg(long, env = "AUDIT_MAX_DEPTH", default_value_t = 5, value_parser = clap::value_parser!(i32).range(0..=10_000))]
    pub audit_max_depth: i32,

    /// Pages slower than this many milliseconds are reported by the audit.
    #[arg(long, env = "AUDIT_SLOW_MS", default_value_t = 1000, value_parser = clap::value_parser!(i32).range(1..))]
    pub audit_slow_ms: i32,

    /// Pages larger than this many bytes are reported by the audit.
    #[arg(long, env = "AUDIT_LARGE_BYTES", default_value_t = 1024 * 1024, value_parser = clap::value_parser!(i64).range(1..))]
    pub audit_large_bytes: i64,

    /// Most fetch results written in one database transaction.
    #[arg(long, env = "DB_BATCH_SIZE", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub db_batch_size: u32,

    /// Maximum milliseconds a partial batch waits for more results. It waits as long as
    /// the previous write took, up to this.
    #[arg(long, env = "DB_BATCH_MS", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub db_batch_ms: u64,

    /// Batches the DbWriter writes at once, each in its own transaction on its own
    /// connection.
    #[arg(long, env = "DB_WRITE_LANES", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub db_write_lanes: u32,

    /// Bearer token that every state-changing API request must send
    /// (`Authorization: Bearer <token>`); unset, the API is open to anyone who reaches it.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<Secret>,
}

/// A setting that must not appear in logs or `Debug` output.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        if value.trim().is_empty() {
            return Err("the token must not be empty or blank".to_string());
        }
        Ok(Self(value.to_string()))
    }
}

impl AdminSettings {
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_seconds)
    }

    /// Check the settings that only make sense together. The DbWriter's lanes hold their
    /// connections for a whole batch, and the frontier, the depth walker and the API need
    /// at least one more.
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.db_write_lanes < self.database.database_max_connections,
            "DB_WRITE_LANES ({}) must be lower than DATABASE_MAX_CONNECTIONS ({}), whose other connections serve \
             the frontier and the API",
            self.db_write_lanes,
            self.database.database_max_connections
        );
        Ok(())
    }
}

/// Crawl limits and spider-trap guards applied when a URL is discovered.
#[derive(Debug, Clone, Args)]
pub struct CrawlLimitSettings {
    /// Most page URLs kept per site; further ones are recorded as skipped.
    #[arg(long, env = "MAX_PAGES_PER_SITE", default_value_t = 1_000_000, value_parser = clap::value_parser!(i64).range(1..))]
    pub max_pages_per_site: i64,

    /// Deepest link distance from the seed that is crawled.
    #[arg(long, env = "MAX_DEPTH", default_value_t = 100, value_parser = clap::value_parser!(i32).range(0..=100_000))]
    pub max_depth: i32,

    /// Most distinct query strings crawled for one path, against calendars and filters.
    #[arg(long, env = "MAX_QUERY_VARIANTS", default_value_t = 500, value_parser = clap::value_parser!(i64).range(1..))]
    pub max_query_variants: i64,

    /// Most times one path segment may repeat in a URL (`/a/b/a/b/a/b` repeats `a` 3 times).
    #[arg(long, env = "MAX_REPEATED_SEGMENTS", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_repeated_segments: u32,

    /// Times a URL is offered again after a 429, 503 or unavailable robots.txt.
    #[arg(long, env = "MAX_RETRIES", default_value_t = 3, value_parser = clap::value_parser!(i32).range(0..=100))]
    pub max_retries: i32,

    /// Longest redirect chain followed by the redirects endpoint before it reports a cut.
    #[arg(long, env = "MAX_REDIRECT_HOPS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_redirect_hops: u32,
}

/// The PostgreSQL connection.
#[derive(Debug, Clone, Args)]
pub struct DatabaseSettings {
    /// PostgreSQL connection URL, e.g. postgres://user:password@host:5432/open_ahrefs.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,

    /// Most open connections to PostgreSQL.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 8, value_parser = clap::value_parser!(u32).range(2..=1000))]
    pub database_max_connections: u32,
}

/// Settings of the scraper role.
#[derive(Debug, Clone, Args)]
pub struct ScraperSettings {
    #[command(flatten)]
    pub kafka: KafkaSettings,

    #[command(flatten)]
    pub urls: UrlSettings,

    #[command(flatten)]
    pub politeness: PolitenessArgs,

    /// Most fetches in progress at once in this process.
    #[arg(long, env = "SCRAPER_CONCURRENCY", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub concurrency: u32,

    /// FetchWorker threads; 0 means one per CPU core.
    #[arg(long, env = "SCRAPER_WORKERS", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=256))]
    pub workers: u32,

    /// Address of this scraper's /metrics and /healthz endpoints.
    #[arg(long, env = "SCRAPER_METRICS_LISTEN", default_value = "0.0.0.0:8001")]
    pub metrics_listen: SocketAddr,

    /// User-Agent header sent with every request.
    #[arg(long, env = "USER_AGENT", default_value = concat!("OpenAhrefsBot/", env!("CARGO_PKG_VERSION"), " (+https://github.com/open-ahrefs/open-ahrefs)"))]
    pub user_agent: String,

    /// Seconds allowed to open a connection, TLS handshake included.
    #[arg(long, env = "CONNECT_TIMEOUT_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub connect_timeout_seconds: u64,

    /// Seconds allowed for a whole fetch, body included.
    #[arg(long, env = "FETCH_TIMEOUT_SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub fetch_timeout_seconds: u64,

    /// Largest response body read, in bytes after content decoding; a larger one is
    /// recorded as `body_too_large`.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 10 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(1024..=1024 * 1024 * 1024))]
    pub max_body_bytes: u64,
}

/// robots.txt, per-host pacing and the address policy of the scraper.
#[derive(Debug, Clone, Args)]
pub struct PolitenessArgs {
    /// Product token matched against robots.txt user-agent lines and robots meta names.
    #[arg(long, env = "ROBOTS_TOKEN", default_value = "OpenAhrefsBot")]
    pub robots_token: String,

    /// Obey robots.txt; turning it off is meant for crawling your own sites.
    #[arg(long, env = "RESPECT_ROBOTS", default_value_t = true, action = ArgAction::Set)]
    pub respect_robots: bool,

    /// Seconds a fetched robots.txt is cached.
    #[arg(long, env = "ROBOTS_CACHE_SECONDS", default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(1..))]
    pub robots_cache_seconds: u64,

    /// Seconds before a robots.txt that could not be fetched is tried again; the host's
    /// URLs wait that long.
    #[arg(long, env = "ROBOTS_RETRY_SECONDS", default_value_t = 600, value_parser = clap::value_parser!(u32).range(1..))]
    pub robots_retry_seconds: u32,

    /// Least milliseconds between the starts of two requests to one host; a larger
    /// robots.txt Crawl-delay wins. 0 is for development and tests.
    #[arg(long, env = "CRAWL_DELAY_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    pub crawl_delay_ms: u64,

    /// Largest Crawl-delay or Retry-After honoured, in seconds.
    #[arg(long, env = "MAX_CRAWL_DELAY_SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub max_crawl_delay_seconds: u64,

    /// Most requests open to one host at a time.
    #[arg(long, env = "HOST_CONCURRENCY", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub host_concurrency: u32,

    /// Allow fetching loopback, private, link-local and other non-public addresses;
    /// for local crawls and tests only.
    #[arg(long, env = "ALLOW_PRIVATE_ADDRESSES", default_value_t = false, action = ArgAction::Set)]
    pub allow_private_addresses: bool,

    /// Comma-separated fixed resolutions `host:port:address`, like curl's --resolve. The
    /// address policy does not apply to them, so they can name private addresses.
    #[arg(long, env = "RESOLVE", value_delimiter = ',', default_value = "")]
    pub resolve: Vec<String>,
}

impl ScraperSettings {
    /// The number of FetchWorker threads, resolving 0 to the number of cores.
    pub fn worker_threads(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n as usize,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Admin {
        #[command(flatten)]
        settings: AdminSettings,
    }

    fn admin(args: &[&str]) -> AdminSettings {
        let mut argv = vec!["admin", "--database-url", "postgres://db/x"];
        argv.extend_from_slice(args);
        Admin::try_parse_from(argv).expect("the arguments parse").settings
    }

    #[test]
    fn write_lanes_leave_a_connection_for_the_rest() {
        assert!(admin(&["--db-write-lanes", "2", "--database-max-connections", "8"]).check().is_ok());
        assert!(admin(&["--db-write-lanes", "7", "--database-max-connections", "8"]).check().is_ok());

        let error = admin(&["--db-write-lanes", "8", "--database-max-connections", "8"]).check().unwrap_err();
        assert_eq!(
            error.to_string(),
            "DB_WRITE_LANES (8) must be lower than DATABASE_MAX_CONNECTIONS (8), whose other connections serve the \
             frontier and the API"
        );
    }
}
