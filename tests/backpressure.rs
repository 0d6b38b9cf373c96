//! Backpressure: while the DbWriter cannot write (another session holds an exclusive lock
//! on `pages`) and the scrapers keep publishing results, the admin must stop taking results
//! from Kafka instead of buffering them, so its memory stays flat, and the crawl must
//! complete with every result once the lock is gone.

mod common;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{proc_status_kib, Canned, Cluster, FixtureServer};

/// Pages of the generated site, besides its home page.
const PAGES: usize = 1500;

/// Links on every page.
const LINKS_PER_PAGE: usize = 20;

/// How long the lock on `pages` is held.
const LOCK_SECONDS: u64 = 30;

/// Rows a batch of the DbWriter takes.
const DB_BATCH_SIZE: u64 = 100;
/// Batches the DbWriter writes at once. KafkaIngest of the admin keeps a batch for each
/// lane and one more in flight: its slots.
const DB_WRITE_LANES: u64 = 2;
const SLOTS: u64 = (DB_WRITE_LANES + 1) * DB_BATCH_SIZE;

// NOTE: librdkafka prefetches results into the admin up to queued.max.messages.kbytes,
// which is megabytes (librdkafka 2.12.1's default is 64 MiB), more than all of this site's
// results during the lock. The memory bound therefore catches growth in the admin's own
// code, and the count of results taken in checks that the consumer stops.
/// The maximum growth of the admin's resident memory while the lock is held. The results in
/// flight are bounded by KafkaIngest's `SLOTS` and librdkafka's fetch
/// queue; a result of this site is about 3 KB. The growth measured with the debug build on
/// a 2-core Linux machine was 3 MiB (40 to 43 MiB) over 626 fetches during the lock.
const MAX_GROWTH_MIB: u64 = 32;

/// A site of `PAGES` pages that link to each other, so that every page is found early and
/// results keep coming while the database is locked.
fn generated_site() -> HashMap<String, Canned> {
    let page = |i: usize| {
        // The first link goes to the next page, so that every page is reachable.
        let target = |k: usize| if k == 1 { (i + 1) % PAGES } else { (i * 7 + k * 13) % PAGES };
        let links: String =
            (1..=LINKS_PER_PAGE).map(|k| format!("<a href=\"/p{}.html\">link {k}</a>\n", target(k))).collect();
        Canned::html(&format!("<html><title>Page {i}</title><body><h1>Page {i}</h1>{links}</body></html>"))
    };
    let mut routes: HashMap<String, Canned> = (0..PAGES).map(|i| (format!("/p{i}.html"), page(i))).collect();
    let home: String = (0..LINKS_PER_PAGE).map(|i| format!("<a href=\"/p{i}.html\">start {i}</a>\n")).collect();
    routes.insert("/".into(), Canned::html(&format!("<title>Home</title>{home}")));
    routes
}

/// Read the Prometheus sample `series` (name and labels) at `url`, 0 when absent.
fn metric(url: &str, series: &str) -> u64 {
    let metrics = ureq::get(url).call().unwrap().into_string().unwrap();
    metrics
        .lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap_or(0.0) as u64
}

fn pages_written(cluster: &Cluster) -> u64 {
    metric(&format!("{}/metrics", cluster.api), "open_ahrefs_db_rows_written_total{table=\"pages\"}")
}

/// Count the results the admin's consume loop has taken from Kafka and handed to its workers.
fn results_consumed(cluster: &Cluster) -> u64 {
    let series = format!("open_ahrefs_kafka_messages_consumed_total{{topic=\"{}\"}}", cluster.topic_res);
    metric(&format!("{}/metrics", cluster.api), &series)
}

/// Count the results the scrapers have published and the broker has acknowledged.
fn results_published(cluster: &Cluster) -> u64 {
    let series = format!("open_ahrefs_kafka_messages_produced_total{{topic=\"{}\"}}", cluster.topic_res);
    cluster.scraper_metrics.iter().map(|url| metric(url, &series)).sum()
}

#[test]
fn admin_memory_flat_while_database_locked() {
    let server = FixtureServer::start(None, generated_site(), Duration::ZERO);
    let cluster = Cluster::start(
        "backpressure",
        2,
        &[
            ("FRONTIER_MAX_IN_FLIGHT_PER_SITE", "1000"),
            ("HOST_CONCURRENCY", "8"),
            ("LEASE_SECONDS", "300"),
            ("DB_BATCH_SIZE", &DB_BATCH_SIZE.to_string()),
            ("DB_WRITE_LANES", &DB_WRITE_LANES.to_string()),
        ],
    );
    let admin = cluster.admin_pid().unwrap();
    let site = cluster.add_site(&server.url("/"));
    let deadline = Instant::now() + Duration::from_secs(120);
    while cluster.site(site)["urls_fetched"].as_i64().unwrap() < 100 {
        assert!(Instant::now() < deadline, "the crawl did not start");
        thread::sleep(Duration::from_millis(100));
    }

    let sql = format!("BEGIN; LOCK TABLE pages IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep({LOCK_SECONDS}); COMMIT;");
    let mut lock = Command::new("psql")
        .args([&cluster.database_url, "-v", "ON_ERROR_STOP=1", "-qc", &sql])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Let the lock be taken and the batch in progress be committed or blocked.
    thread::sleep(Duration::from_secs(2));
    let written_before = pages_written(&cluster);
    let consumed_before = results_consumed(&cluster);
    let published_before = results_published(&cluster);

    let mut samples = Vec::new();
    for _ in 0..LOCK_SECONDS - 4 {
        samples.push(proc_status_kib(admin, "VmRSS").expect("the admin is gone") / 1024);
        thread::sleep(Duration::from_secs(1));
    }
    let written_during = pages_written(&cluster) - written_before;
    let consumed_during = results_consumed(&cluster) - consumed_before;
    let published_during = results_published(&cluster) - published_before;
    assert!(lock.wait().unwrap().success(), "the psql session holding the lock failed");

    println!("admin RSS (MiB) each second while pages was locked: {samples:?}");
    println!(
        "while locked: {written_during} pages written, {published_during} results published by the scrapers, \
         {consumed_during} taken in by the admin"
    );
    let first = samples[0];
    let peak = *samples.iter().max().unwrap();
    assert_eq!(written_during, 0, "the lock did not hold the DbWriter back");
    assert!(
        published_during > SLOTS,
        "only {published_during} results arrived while the lock was held, too few to fill the admin's \
         {SLOTS} slots, so nothing was tested"
    );
    assert!(
        consumed_during <= SLOTS,
        "the admin took in {consumed_during} results while it could not write, more than its {SLOTS} slots"
    );
    assert!(
        peak - first < MAX_GROWTH_MIB,
        "admin RSS grew by {} MiB while the database was locked: {samples:?}",
        peak - first
    );

    let done = cluster.wait_done_through_faults(site, Duration::from_secs(300));
    assert_eq!(done["urls_fetched"], PAGES as i64 + 1, "{done}");
    assert_eq!(done["responses"]["2xx"], PAGES as i64 + 1, "{done}");
    assert_eq!(done["links"], ((PAGES + 1) * LINKS_PER_PAGE) as i64, "{done}");
    cluster.assert_no_duplicates();
}
