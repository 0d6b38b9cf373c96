//! Crawls one site with the spider crate and prints what it fetched as one JSON line.
//!
//! Usage: `spider-crawl SEED_URL CONCURRENCY TIMEOUT_SECONDS`. The crawl stays on the
//! seed's host and port, follows every depth, and ignores robots.txt and politeness
//! delays, as the other crawlers of `scripts/benchmark.sh` do. It only fetches pages and
//! extracts their links; nothing is stored. `SPIDER_MAX_DEPTH` sets a maximum depth, to
//! compare with spider's default of 25.

use std::time::{Duration, Instant};

use spider::tokio;
use spider::tokio::sync::broadcast::error::RecvError;
use spider::website::Website;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: {} SEED_URL CONCURRENCY TIMEOUT_SECONDS", args[0]);
        std::process::exit(2);
    }
    let seed = &args[1];
    let concurrency: usize = parse_arg(&args[2], "CONCURRENCY");
    let timeout_seconds: u64 = parse_arg(&args[3], "TIMEOUT_SECONDS");
    let max_depth: usize = std::env::var("SPIDER_MAX_DEPTH")
        .map(|value| parse_arg(&value, "SPIDER_MAX_DEPTH"))
        .unwrap_or(0);

    let mut website = Website::new(seed);
    website
        .with_respect_robots_txt(false)
        .with_delay(0)
        // The default maximum depth of 25 stops the crawl long before the deepest pages
        // of the Rust documentation. 0 means no maximum.
        .with_depth(max_depth)
        .with_limit(0)
        .with_budget(None)
        .with_subdomains(false)
        .with_tld(false)
        .with_concurrency_limit(Some(concurrency))
        .with_request_timeout(Some(Duration::from_secs(30)))
        .with_crawl_timeout(Some(Duration::from_secs(timeout_seconds)))
        .with_return_page_links(true);

    // A broadcast receiver that falls behind loses pages. The channel is large enough for
    // every page of a crawl that outruns the counter, and lost pages are counted apart.
    let mut pages = website.subscribe(65_536);
    let counter = tokio::spawn(async move {
        let mut counts = Counts::default();
        loop {
            match pages.recv().await {
                Ok(page) => {
                    counts.pages += 1;
                    if page.status_code.is_success() {
                        counts.ok += 1;
                    }
                    counts.links += page
                        .page_links
                        .as_ref()
                        .map_or(0, |links| links.len() as u64);
                }
                Err(RecvError::Lagged(missed)) => counts.missed += missed,
                Err(RecvError::Closed) => return counts,
            }
        }
    });

    let started = Instant::now();
    website.crawl().await;
    let elapsed = started.elapsed().as_secs_f64();
    website.unsubscribe();
    let counts = counter.await.expect("the page counter task panicked");

    println!(
        "{{\"crawler\": \"spider\", \"pages\": {}, \"pages_2xx\": {}, \"pages_not_received\": {}, \
         \"links_extracted\": {}, \"urls_visited\": {}, \"seconds\": {:.3}}}",
        counts.pages,
        counts.ok,
        counts.missed,
        counts.links,
        website.get_links().len(),
        elapsed
    );
}

#[derive(Default)]
struct Counts {
    pages: u64,
    ok: u64,
    missed: u64,
    links: u64,
}

fn parse_arg<T: std::str::FromStr>(value: &str, name: &str) -> T {
    value.parse().unwrap_or_else(|_| {
        eprintln!("invalid {name} '{value}': expected a non-negative integer");
        std::process::exit(2);
    })
}
