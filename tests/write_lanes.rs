//! Two DbWriter lanes writing at once, as DB_WRITE_LANES allows: the page limit of a site
//! is kept across them, and the site's URL count stays equal to its page URLs.

mod common;

use std::time::Duration;

use chrono::Utc;
use open_ahrefs::db::url_cache::UrlCache;
use open_ahrefs::db::write::{write_results, WritePolicy};
use open_ahrefs::messages::{CrawlResult, FetchOutcome, Link, PageResponse, SCHEMA_VERSION};
use open_ahrefs::scope::CrawlLimits;
use sqlx::postgres::PgPoolOptions;
use tokio::runtime::Builder;

/// Fetched pages of each site before the two batches arrive.
const SOURCES: i64 = 10;
/// New pages each site may still take.
const ROOM: i64 = 30;

fn policy() -> WritePolicy {
    WritePolicy {
        revisit: Duration::from_secs(86_400),
        max_retries: 3,
        limits: CrawlLimits {
            max_pages_per_site: SOURCES + ROOM,
            max_depth: 10,
            max_query_variants: 500,
            max_repeated_segments: 3,
        },
    }
}

fn link(host: &str, path: &str) -> Link {
    Link {
        href: path.to_owned(),
        url: format!("http://{host}{path}"),
        anchor_text: path.to_owned(),
        nofollow: false,
        ugc: false,
        sponsored: false,
    }
}

/// Build the result of one source page, which links to five pages of its own and to five
/// pages that the other batch's sources link to as well.
fn result(host: &str, site_id: i64, url_id: i64, source: i64) -> CrawlResult {
    let now = Utc::now();
    let own = (0..5).map(|n| link(host, &format!("/own/{source}/{n}")));
    let shared = (0..5).map(|n| link(host, &format!("/shared/{n}")));
    CrawlResult {
        schema_version: SCHEMA_VERSION,
        url_id,
        site_id,
        url: format!("http://{host}/source/{source}"),
        depth: 1,
        leased_at: now,
        fetched_at: now,
        response_time_ms: 1,
        outcome: FetchOutcome::Response(PageResponse {
            status: 200,
            content_type: Some("text/html".into()),
            links: own.chain(shared).collect(),
            ..PageResponse::default()
        }),
        robots_sitemaps: Vec::new(),
    }
}

/// Return the first id that an INSERT ... RETURNING id prints.
fn first_returned_id(database_url: &str, sql: &str) -> i64 {
    let output = common::psql(database_url, sql);
    output.lines().next().and_then(|line| line.parse().ok()).unwrap_or_else(|| panic!("no id in {output:?}"))
}

#[test]
fn concurrent_lanes_keep_the_page_limit() {
    let database_url = common::fresh_database(&common::unique("write_lanes"));
    let runtime = Builder::new_current_thread().enable_all().build().unwrap();
    let pool = runtime.block_on(async {
        let pool = PgPoolOptions::new().max_connections(2).connect(&database_url).await.unwrap();
        open_ahrefs::db::migrate(&pool).await.unwrap();
        pool
    });

    // A site a round, because a round leaves its site at the limit.
    for round in 0..3 {
        let host = format!("lanes{round}.test");
        let site_id = first_returned_id(
            &database_url,
            &format!(
                "INSERT INTO sites (host, seed_url, url_count) VALUES ('{host}', 'http://{host}/', {SOURCES})
                 RETURNING id"
            ),
        );
        // One statement takes its ids from the sequence in order, so the sources' ids
        // follow each other.
        let first_id = first_returned_id(
            &database_url,
            &format!(
                "INSERT INTO urls (url, host, site_id, state, depth)
                 SELECT 'http://{host}/source/' || n, '{host}', {site_id}, 'queued', 1
                 FROM generate_series(0, {SOURCES} - 1) AS n ORDER BY n
                 RETURNING id"
            ),
        );

        // Even sources in one batch, odd ones in the other: 30 new pages each, 55 in all.
        let (even, odd): (Vec<i64>, Vec<i64>) = (0..SOURCES).partition(|source| source % 2 == 0);
        let batch = |sources: Vec<i64>| -> Vec<CrawlResult> {
            sources.into_iter().map(|source| result(&host, site_id, first_id + source, source)).collect()
        };
        let (first, second) = (batch(even), batch(odd));
        let policy = policy();
        let (a, b) = runtime.block_on(async {
            let (mut first_cache, mut second_cache) = (UrlCache::default(), UrlCache::default());
            tokio::join!(
                write_results(&pool, &first, &policy, &mut first_cache),
                write_results(&pool, &second, &policy, &mut second_cache),
            )
        });
        assert_eq!(a.unwrap().links + b.unwrap().links, 10 * SOURCES as u64, "round {round}: every link is stored");

        let pending = common::psql_count(
            &database_url,
            &format!("SELECT count(*) FROM urls WHERE site_id = {site_id} AND state = 'pending'"),
        );
        let skipped = common::psql_count(
            &database_url,
            &format!("SELECT count(*) FROM urls WHERE site_id = {site_id} AND state_reason = 'max_pages'"),
        );
        assert_eq!(pending, ROOM, "round {round}: pages kept under the limit");
        assert_eq!(skipped, 55 - ROOM, "round {round}: pages skipped for the limit");
        let counted = common::psql_count(&database_url, &format!("SELECT url_count FROM sites WHERE id = {site_id}"));
        let pages = common::psql_count(
            &database_url,
            &format!("SELECT count(*) FROM urls WHERE site_id = {site_id} AND kind = 'page'"),
        );
        assert_eq!(counted, pages, "round {round}: the site's URL count is its page URLs");
    }
}
