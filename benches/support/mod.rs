//! The page corpus of the micro benchmarks: HTML files of the Rust documentation that
//! rustup installs, the same tree that `scripts/benchmark.sh crawl` serves.

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, Utc};
use open_ahrefs::extract::Extractor;
use open_ahrefs::messages::{CrawlResult, FetchOutcome, PageResponse, SCHEMA_VERSION};
use url::Url;

/// The host the corpus pages pretend to come from; nginx serves the tree there in
/// `scripts/benchmark.sh`.
const BASE: &str = "http://127.0.0.1:18100/";

/// One HTML file and the URL it would have on the benchmark's server.
pub struct Page {
    pub url: Url,
    pub html: String,
}

/// Return the documentation root: `BENCH_DOCS_DIR`, or `share/doc/rust/html` under the
/// sysroot that `rustc --print sysroot` prints.
pub fn docs_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BENCH_DOCS_DIR") {
        return PathBuf::from(dir);
    }
    let output = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .args(["--print", "sysroot"])
        .output()
        .expect("running `rustc --print sysroot` failed; set BENCH_DOCS_DIR instead");
    let sysroot = String::from_utf8(output.stdout).expect("rustc printed a non-UTF-8 sysroot");
    Path::new(sysroot.trim()).join("share/doc/rust/html")
}

/// Load `count` HTML files spread evenly over the sorted list of every HTML file of the
/// tree, so that the corpus mixes the books, the API pages and the source pages.
/// `BENCH_CORPUS_PAGES` overrides the count.
pub fn load(default_count: usize) -> Vec<Page> {
    let count = std::env::var("BENCH_CORPUS_PAGES")
        .ok()
        .map(|value| value.parse().expect("BENCH_CORPUS_PAGES must be a positive integer"))
        .unwrap_or(default_count);
    let root = docs_dir();
    let mut files = Vec::new();
    collect_html(&root, &mut files);
    files.sort();
    assert!(
        !files.is_empty(),
        "no HTML files under {}; install them with `rustup component add rust-docs`",
        root.display()
    );

    let step = (files.len() / count.max(1)).max(1);
    let base = Url::parse(BASE).expect("the corpus base URL is valid");
    files
        .iter()
        .step_by(step)
        .take(count)
        .map(|path| {
            let relative = path.strip_prefix(&root).expect("the file is under the root");
            let html = std::fs::read(path).unwrap_or_else(|e| panic!("reading {} failed: {e}", path.display()));
            Page {
                url: base.join(&relative.to_string_lossy()).expect("a relative file path joins onto the base URL"),
                html: String::from_utf8_lossy(&html).into_owned(),
            }
        })
        .collect()
}

fn collect_html(dir: &Path, files: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("listing {} failed: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("reading a directory entry failed").path();
        if path.is_dir() {
            collect_html(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "html") {
            files.push(path);
        }
    }
}

/// Build the result a scraper would send for `page`, with its links extracted.
// The URL benchmark includes this module too but builds no results.
#[allow(dead_code)]
pub fn crawl_result(
    extractor: &Extractor,
    page: &Page,
    url_id: i64,
    site_id: i64,
    depth: i32,
    now: DateTime<Utc>,
) -> CrawlResult {
    let extracted = extractor.extract(&page.url, &page.html);
    CrawlResult {
        schema_version: SCHEMA_VERSION,
        url_id,
        site_id,
        url: page.url.to_string(),
        depth,
        leased_at: now,
        fetched_at: now,
        response_time_ms: 2,
        outcome: FetchOutcome::Response(PageResponse {
            status: 200,
            content_type: Some("text/html".into()),
            body_bytes: page.html.len() as u64,
            redirect_to: None,
            facts: extracted.facts,
            links: extracted.links,
            links_dropped: 0,
            ..PageResponse::default()
        }),
        robots_sitemaps: Vec::new(),
    }
}
