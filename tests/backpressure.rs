//! Backpressure: while the DbWriter cannot write (another session holds an exclusive lock
//! on `pages`), the admin must stop taking results in instead of buffering them, so its
//! memory stays flat, and the crawl must complete once the lock is gone.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::{proc_status_kib, Canned, Cluster, FixtureServer};

/// Pages of the generated site, besides its home page.
const PAGES: usize = 1500;

/// Links on every page.
const LINKS_PER_PAGE: usize = 20;

/// How long the lock on `pages` is held.
const LOCK_SECONDS: u64 = 30;

/// The maximum growth of the admin's resident memory while the lock is held. The results in
/// flight are bounded by KafkaIngest's 2 × DB_BATCH_SIZE slots and librdkafka's fetch
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

fn pages_written(cluster: &Cluster) -> u64 {
    let metrics = ureq::get(&format!("{}/metrics", cluster.api)).call().unwrap().into_string().unwrap();
    metrics
        .lines()
        .find(|line| line.starts_with("open_ahrefs_db_rows_written_total{table=\"pages\"}"))
        .and_then(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap_or(0.0) as u64
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
            ("DB_BATCH_SIZE", "100"),
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
    let mut lock =
        Command::new("psql").args([&cluster.database_url, "-v", "ON_ERROR_STOP=1", "-qc", &sql]).spawn().unwrap();
    // Let the lock be taken and the batch in progress be committed or blocked.
    thread::sleep(Duration::from_secs(2));
    let written_before = pages_written(&cluster);
    let requests_before = server.request_count();

    let mut samples = Vec::new();
    for _ in 0..LOCK_SECONDS - 4 {
        samples.push(proc_status_kib(admin, "VmRSS").expect("the admin is gone") / 1024);
        thread::sleep(Duration::from_secs(1));
    }
    let written_during = pages_written(&cluster) - written_before;
    let requests_during = server.request_count() - requests_before;
    assert!(lock.wait().unwrap().success(), "the psql session holding the lock failed");

    println!("admin RSS (MiB) each second while pages was locked: {samples:?}");
    println!("pages written while locked: {written_during}; fetches while locked: {requests_during}");
    let first = samples[0];
    let peak = *samples.iter().max().unwrap();
    assert_eq!(written_during, 0, "the lock did not hold the DbWriter back");
    assert!(requests_during > 0, "no result arrived while the lock was held, so nothing was tested");
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
