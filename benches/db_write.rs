//! Rows per second into PostgreSQL for the `links` table: a multi-row INSERT, UNNEST
//! arrays (what `src/db/write.rs` does), COPY into a staging table followed by the same
//! upsert, and a plain COPY into `links` as the ceiling. The last group runs the
//! DbWriter's own `write_results` on batches of real pages, first fetched and delivered
//! twice.
//!
//! Needs DATABASE_URL; `scripts/benchmark.sh micro` provides one. The bench drops and
//! creates the database `open_ahrefs_links_bench` on that server and applies the
//! migrations to it. Every batch is one committed transaction of fresh rows, which is
//! what a first crawl writes.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use open_ahrefs::db::url_cache::UrlCache;
use open_ahrefs::extract::Extractor;
use open_ahrefs::messages::CrawlResult;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, Executor, PgConnection, PgPool, QueryBuilder};
use tokio::runtime::{Builder, Runtime};

mod support;

const DATABASE: &str = "open_ahrefs_links_bench";
const SITE_HOST: &str = "127.0.0.1:18100";
/// URLs that the synthetic links point from and to.
const URL_COUNT: i64 = 2_000;
/// Rows per multi-row INSERT: ten bind parameters a row stay under the limit of 65,535
/// parameters per statement of PostgreSQL's protocol.
const MULTI_ROW_CHUNK: usize = 6_500;

const UPSERT_TAIL: &str = "ON CONFLICT (source_url_id, target_url_id, anchor_text, occurrence) DO UPDATE SET
    href = EXCLUDED.href, nofollow = EXCLUDED.nofollow, ugc = EXCLUDED.ugc,
    sponsored = EXCLUDED.sponsored,
    last_seen = GREATEST(links.last_seen, EXCLUDED.last_seen),
    lost_at = NULL";

/// One row of the `links` table as the DbWriter builds it.
struct LinkRow {
    source: i64,
    target: i64,
    anchor_text: String,
    occurrence: i32,
    href: String,
    nofollow: bool,
    ugc: bool,
    sponsored: bool,
    seen: DateTime<Utc>,
}

fn rows_per_batch() -> usize {
    std::env::var("BENCH_LINK_ROWS")
        .ok()
        .map(|value| value.parse().expect("BENCH_LINK_ROWS must be a positive integer"))
        .unwrap_or(10_000)
}

/// Drop and create the bench database, migrate it and add one site with its URLs.
/// Returns the connect options of the new database and the URL ids.
async fn create_database() -> (PgConnectOptions, Vec<i64>) {
    let server_url = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL is not set; run `scripts/benchmark.sh micro`, which starts a PostgreSQL");
    let server: PgConnectOptions = server_url.parse().expect("DATABASE_URL is not a valid URL");
    let mut admin = PgConnection::connect_with(&server).await.expect("connecting to DATABASE_URL failed");
    admin
        .execute(format!("DROP DATABASE IF EXISTS {DATABASE}").as_str())
        .await
        .expect("dropping the bench database failed");
    admin.execute(format!("CREATE DATABASE {DATABASE}").as_str()).await.expect("creating the bench database failed");

    let options = server.database(DATABASE);
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options.clone())
        .await
        .expect("connecting to the bench database failed");
    open_ahrefs::db::migrate(&pool).await.expect("migrating the bench database failed");
    let site_id: i64 = sqlx::query_scalar("INSERT INTO sites (host, seed_url) VALUES ($1, $2) RETURNING id")
        .bind(SITE_HOST)
        .bind(format!("http://{SITE_HOST}/"))
        .fetch_one(&pool)
        .await
        .expect("adding the bench site failed");
    let ids: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO urls (url, host, site_id, state)
         SELECT 'http://' || $1 || '/synthetic/' || n || '.html', $1, $2, 'fetched'
         FROM generate_series(1, $3) AS n
         RETURNING id",
    )
    .bind(SITE_HOST)
    .bind(site_id)
    .bind(URL_COUNT)
    .fetch_all(&pool)
    .await
    .expect("adding the bench URLs failed");
    pool.close().await;
    (options, ids)
}

/// Build a batch of fresh link rows. `batch` makes their occurrence numbers, and so their
/// keys, differ from every other batch's.
fn link_batch(ids: &[i64], rows: usize, batch: u64) -> Vec<LinkRow> {
    let seen = Utc::now();
    (0..rows)
        .map(|i| LinkRow {
            source: ids[i % 200],
            target: ids[(i * 7 + 13) % ids.len()],
            anchor_text: format!("anchor text {}", i % 50),
            occurrence: (batch as usize * rows + i) as i32,
            href: format!("../synthetic/{}.html#section-{}", (i * 7 + 13) % ids.len(), i % 9),
            nofollow: i % 10 == 0,
            ugc: false,
            sponsored: false,
            seen,
        })
        .collect()
}

async fn insert_multi_row(connection: &mut PgConnection, rows: &[LinkRow]) {
    let mut tx = connection.begin().await.expect("BEGIN failed");
    for chunk in rows.chunks(MULTI_ROW_CHUNK) {
        let mut query = QueryBuilder::new(
            "INSERT INTO links (source_url_id, target_url_id, anchor_text, occurrence, href, nofollow, ugc,
                                sponsored, first_seen, last_seen) ",
        );
        query.push_values(chunk, |mut values, row| {
            values
                .push_bind(row.source)
                .push_bind(row.target)
                .push_bind(&row.anchor_text)
                .push_bind(row.occurrence)
                .push_bind(&row.href)
                .push_bind(row.nofollow)
                .push_bind(row.ugc)
                .push_bind(row.sponsored)
                .push_bind(row.seen)
                .push_bind(row.seen);
        });
        query.push(" ");
        query.push(UPSERT_TAIL);
        query.build().execute(&mut *tx).await.expect("the multi-row INSERT failed");
    }
    tx.commit().await.expect("COMMIT failed");
}

/// Insert with the statement of `upsert_links` in `src/db/write.rs`, from the same column
/// vectors.
async fn insert_unnest(connection: &mut PgConnection, rows: &[LinkRow]) {
    let mut source = Vec::with_capacity(rows.len());
    let mut target = Vec::with_capacity(rows.len());
    let mut anchor_text = Vec::with_capacity(rows.len());
    let mut occurrence = Vec::with_capacity(rows.len());
    let mut href = Vec::with_capacity(rows.len());
    let mut nofollow = Vec::with_capacity(rows.len());
    let mut ugc = Vec::with_capacity(rows.len());
    let mut sponsored = Vec::with_capacity(rows.len());
    let mut seen = Vec::with_capacity(rows.len());
    for row in rows {
        source.push(row.source);
        target.push(row.target);
        anchor_text.push(row.anchor_text.clone());
        occurrence.push(row.occurrence);
        href.push(row.href.clone());
        nofollow.push(row.nofollow);
        ugc.push(row.ugc);
        sponsored.push(row.sponsored);
        seen.push(row.seen);
    }

    let mut tx = connection.begin().await.expect("BEGIN failed");
    sqlx::query(&format!(
        "INSERT INTO links (source_url_id, target_url_id, anchor_text, occurrence, href, nofollow, ugc,
                            sponsored, first_seen, last_seen)
         SELECT s, t, a, o, h, n, u, sp, seen, seen
         FROM UNNEST($1::int8[], $2::int8[], $3::text[], $4::int4[], $5::text[], $6::bool[], $7::bool[],
                     $8::bool[], $9::timestamptz[]) AS x(s, t, a, o, h, n, u, sp, seen)
         {UPSERT_TAIL}"
    ))
    .bind(&source)
    .bind(&target)
    .bind(&anchor_text)
    .bind(&occurrence)
    .bind(&href)
    .bind(&nofollow)
    .bind(&ugc)
    .bind(&sponsored)
    .bind(&seen)
    .execute(&mut *tx)
    .await
    .expect("the UNNEST INSERT failed");
    tx.commit().await.expect("COMMIT failed");
}

/// Encode rows in COPY's text format: tab-separated, with backslash escapes.
fn copy_text(rows: &[LinkRow], with_last_seen: bool) -> Vec<u8> {
    let mut out = String::with_capacity(rows.len() * 96);
    for row in rows {
        let seen = row.seen.format("%Y-%m-%d %H:%M:%S%.6f+00");
        let _ = write!(out, "{}\t{}\t", row.source, row.target);
        push_copy_escaped(&mut out, &row.anchor_text);
        let _ = write!(out, "\t{}\t", row.occurrence);
        push_copy_escaped(&mut out, &row.href);
        let flag = |value: bool| if value { 't' } else { 'f' };
        let _ = write!(out, "\t{}\t{}\t{}\t{seen}", flag(row.nofollow), flag(row.ugc), flag(row.sponsored));
        if with_last_seen {
            let _ = write!(out, "\t{seen}");
        }
        out.push('\n');
    }
    out.into_bytes()
}

fn push_copy_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            _ => out.push(c),
        }
    }
}

/// COPY into a temporary table, then the same upsert as the other methods from there.
async fn insert_copy_staging(connection: &mut PgConnection, rows: &[LinkRow]) {
    let data = copy_text(rows, false);
    let mut tx = connection.begin().await.expect("BEGIN failed");
    let mut copy = tx
        .copy_in_raw(
            "COPY links_staging (source_url_id, target_url_id, anchor_text, occurrence, href, nofollow,
                                 ugc, sponsored, seen) FROM STDIN",
        )
        .await
        .expect("starting COPY into the staging table failed");
    copy.send(data).await.expect("sending COPY data failed");
    copy.finish().await.expect("finishing COPY failed");
    tx.execute(
        format!(
            "INSERT INTO links (source_url_id, target_url_id, anchor_text, occurrence, href, nofollow, ugc,
                                sponsored, first_seen, last_seen)
             SELECT source_url_id, target_url_id, anchor_text, occurrence, href, nofollow, ugc, sponsored,
                    seen, seen
             FROM links_staging
             {UPSERT_TAIL}"
        )
        .as_str(),
    )
    .await
    .expect("the upsert from the staging table failed");
    tx.commit().await.expect("COMMIT failed");
}

/// COPY straight into `links`. It cannot upsert, so a redelivered result would fail on
/// the unique key. This is the ceiling, not a replacement for the DbWriter's statement.
async fn insert_copy_direct(connection: &mut PgConnection, rows: &[LinkRow]) {
    let data = copy_text(rows, true);
    let mut tx = connection.begin().await.expect("BEGIN failed");
    let mut copy = tx
        .copy_in_raw(
            "COPY links (source_url_id, target_url_id, anchor_text, occurrence, href, nofollow, ugc,
                         sponsored, first_seen, last_seen) FROM STDIN",
        )
        .await
        .expect("starting COPY into links failed");
    copy.send(data).await.expect("sending COPY data failed");
    copy.finish().await.expect("finishing COPY failed");
    tx.commit().await.expect("COMMIT failed");
}

fn new_runtime() -> Runtime {
    Builder::new_current_thread().enable_all().build().expect("starting the tokio runtime failed")
}

#[derive(Clone, Copy)]
enum Method {
    MultiRow,
    Unnest,
    CopyStaging,
    CopyDirect,
}

fn link_statements(c: &mut Criterion) {
    let runtime = new_runtime();
    let (options, ids) = runtime.block_on(create_database());
    let mut connection =
        runtime.block_on(PgConnection::connect_with(&options)).expect("connecting to the bench database failed");
    runtime
        .block_on(connection.execute(
            "CREATE TEMPORARY TABLE links_staging (
                 source_url_id BIGINT, target_url_id BIGINT, anchor_text TEXT, occurrence INT, href TEXT,
                 nofollow BOOLEAN, ugc BOOLEAN, sponsored BOOLEAN, seen TIMESTAMPTZ
             ) ON COMMIT DELETE ROWS",
        ))
        .expect("creating the staging table failed");

    let rows = rows_per_batch();
    let mut group = c.benchmark_group(format!("links_{rows}_rows"));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(2));
    group.measurement_time(Duration::from_secs(10));
    // One element is one link row, so criterion's throughput is rows per second.
    group.throughput(Throughput::Elements(rows as u64));
    let mut batch = 0_u64;
    for (name, method) in [
        ("multi_row_insert", Method::MultiRow),
        ("unnest_arrays", Method::Unnest),
        ("copy_staging_upsert", Method::CopyStaging),
        ("copy_direct_no_upsert", Method::CopyDirect),
    ] {
        // Each method starts from an empty table, so none pays for another's index growth.
        runtime.block_on(connection.execute("TRUNCATE links")).expect("emptying links failed");
        group.bench_function(name, |b| {
            b.iter_custom(|iterations| {
                let mut elapsed = Duration::ZERO;
                for _ in 0..iterations {
                    batch += 1;
                    let link_rows = link_batch(&ids, rows, batch);
                    let started = Instant::now();
                    runtime.block_on(async {
                        match method {
                            Method::MultiRow => insert_multi_row(&mut connection, &link_rows).await,
                            Method::Unnest => insert_unnest(&mut connection, &link_rows).await,
                            Method::CopyStaging => insert_copy_staging(&mut connection, &link_rows).await,
                            Method::CopyDirect => insert_copy_direct(&mut connection, &link_rows).await,
                        }
                    });
                    elapsed += started.elapsed();
                }
                elapsed
            })
        });
    }
    group.finish();
}

/// Insert new source URLs and build results of real pages from them, so that every link
/// of the batch is a fresh row.
async fn fresh_results(pool: &PgPool, pages: &[support::Page], extractor: &Extractor, batch: u64) -> Vec<CrawlResult> {
    let site_id: i64 = sqlx::query_scalar("SELECT id FROM sites WHERE host = $1")
        .bind(SITE_HOST)
        .fetch_one(pool)
        .await
        .expect("reading the bench site failed");
    let ids: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO urls (url, host, site_id, state, depth)
         SELECT 'http://' || $1 || '/batch/' || $3 || '/' || n || '.html', $1, $2, 'queued', 2
         FROM generate_series(1, $4) AS n
         ORDER BY n
         RETURNING id",
    )
    .bind(SITE_HOST)
    .bind(site_id)
    .bind(batch as i64)
    .bind(pages.len() as i64)
    .fetch_all(pool)
    .await
    .expect("adding the batch's source URLs failed");
    let now = Utc::now();
    pages
        .iter()
        .zip(ids)
        .map(|(page, url_id)| support::crawl_result(extractor, page, url_id, site_id, 2, now))
        .collect()
}

fn db_writer(c: &mut Criterion) {
    let runtime = new_runtime();
    let (options, _) = runtime.block_on(create_database());
    let pool = runtime
        .block_on(PgPoolOptions::new().max_connections(2).connect_with(options))
        .expect("connecting to the bench database failed");
    // DB_BATCH_SIZE's default: one transaction contains the results of 500 pages.
    let pages = support::load(500);
    let extractor = Extractor::new();
    let links: usize = pages.iter().map(|page| extractor.extract(&page.url, &page.html).links.len()).sum();
    println!("db_writer batch: {} pages, {links} links", pages.len());

    let mut group = c.benchmark_group("db_writer");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(2));
    group.measurement_time(Duration::from_secs(20));
    // One element is one stored link, so criterion's throughput is links per second.
    group.throughput(Throughput::Elements(links as u64));
    // The admin's defaults, with limits high enough never to skip a URL of the corpus.
    let policy = open_ahrefs::db::write::WritePolicy {
        revisit: Duration::from_secs(7 * 86_400),
        max_retries: 3,
        limits: open_ahrefs::scope::CrawlLimits {
            max_pages_per_site: i64::MAX,
            max_depth: i32::MAX,
            max_query_variants: i64::MAX,
            max_repeated_segments: u32::MAX,
        },
    };
    let mut batch = 0_u64;
    group.bench_function("write_results_500_pages", |b| {
        b.iter_custom(|iterations| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iterations {
                batch += 1;
                let results = runtime.block_on(fresh_results(&pool, &pages, &extractor, batch));
                let started = Instant::now();
                let stats = runtime
                    .block_on(open_ahrefs::db::write::write_results(&pool, &results, &policy, &mut UrlCache::default()))
                    .expect("write_results failed");
                elapsed += started.elapsed();
                assert_eq!(stats.links, links as u64, "every link of the batch is stored");
            }
            elapsed
        })
    });
    // A duplicate delivery: the same batch written a second time takes the upsert path
    // and counts each page's live links again. Only the second write is timed.
    group.bench_function("redeliver_500_pages", |b| {
        b.iter_custom(|iterations| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iterations {
                batch += 1;
                let results = runtime.block_on(fresh_results(&pool, &pages, &extractor, batch));
                runtime
                    .block_on(open_ahrefs::db::write::write_results(&pool, &results, &policy, &mut UrlCache::default()))
                    .expect("write_results failed");
                let started = Instant::now();
                let stats = runtime
                    .block_on(open_ahrefs::db::write::write_results(&pool, &results, &policy, &mut UrlCache::default()))
                    .expect("write_results failed on the duplicate delivery");
                elapsed += started.elapsed();
                assert_eq!(stats.links, links as u64, "every link of the batch is updated");
            }
            elapsed
        })
    });
    group.finish();

    // Two batches written at once on two connections, each with its own URL cache: the
    // throughput of a writer that starts a batch while the previous one commits.
    let mut group = c.benchmark_group("db_writer_two_lanes");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(2));
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(2 * links as u64));
    group.bench_function("write_results_2x500_pages", |b| {
        b.iter_custom(|iterations| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iterations {
                batch += 2;
                let first = runtime.block_on(fresh_results(&pool, &pages, &extractor, batch - 1));
                let second = runtime.block_on(fresh_results(&pool, &pages, &extractor, batch));
                let started = Instant::now();
                let (a, b) = runtime.block_on(async {
                    let mut first_cache = UrlCache::default();
                    let mut second_cache = UrlCache::default();
                    tokio::join!(
                        open_ahrefs::db::write::write_results(&pool, &first, &policy, &mut first_cache),
                        open_ahrefs::db::write::write_results(&pool, &second, &policy, &mut second_cache),
                    )
                });
                elapsed += started.elapsed();
                let stored = a.expect("write_results failed").links + b.expect("write_results failed").links;
                assert_eq!(stored, 2 * links as u64, "every link of both batches is stored");
            }
            elapsed
        })
    });
    group.finish();
}

criterion_group!(benches, link_statements, db_writer);
criterion_main!(benches);
