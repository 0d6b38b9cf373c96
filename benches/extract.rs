//! Extraction time per page over real pages, and the JSON encoding and decoding of the
//! resulting `CrawlResult`, which every page crosses on its way from a scraper to the
//! admin through Kafka.

use std::hint::black_box;

use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use open_ahrefs::extract::Extractor;
use open_ahrefs::messages::{self, CrawlResult, FetchOutcome, PageResponse};

mod support;

fn extraction(c: &mut Criterion) {
    let pages = support::load(300);
    let extractor = Extractor::new();
    let bytes: usize = pages.iter().map(|page| page.html.len()).sum();
    let links: usize = pages.iter().map(|page| extractor.extract(&page.url, &page.html).links.len()).sum();
    println!("extract corpus: {} pages, {:.1} MiB of HTML, {} links", pages.len(), bytes as f64 / 1048576.0, links);

    let mut group = c.benchmark_group("extract");
    group.sample_size(10);
    // One element is one page, so criterion's throughput is pages per second.
    group.throughput(Throughput::Elements(pages.len() as u64));
    group.bench_function("rust_docs_pages", |b| {
        b.iter(|| {
            for page in &pages {
                black_box(extractor.extract(&page.url, &page.html));
            }
        })
    });
    group.finish();

    let results: Vec<CrawlResult> = pages
        .iter()
        .enumerate()
        .map(|(index, page)| support::crawl_result(&extractor, page, index as i64, 1, 3, Utc::now()))
        .collect();
    let encoded: Vec<Vec<u8>> =
        results.iter().map(|result| serde_json::to_vec(result).expect("a result serializes")).collect();
    let encoded_bytes: usize = encoded.iter().map(Vec::len).sum();
    println!(
        "kafka messages: {:.1} MiB of JSON for {:.1} MiB of HTML",
        encoded_bytes as f64 / 1048576.0,
        bytes as f64 / 1048576.0
    );

    let mut group = c.benchmark_group("kafka_json");
    group.sample_size(20);
    group.throughput(Throughput::Elements(results.len() as u64));
    group.bench_function("encode_result", |b| {
        b.iter(|| {
            for result in &results {
                black_box(serde_json::to_vec(result).expect("a result serializes"));
            }
        })
    });
    group.bench_function("decode_result", |b| {
        b.iter(|| {
            for message in &encoded {
                black_box(serde_json::from_slice::<CrawlResult>(message).expect("a result decodes"));
            }
        })
    });
    // What KafkaIngest runs on every message: a pass for schema_version, then the result.
    group.bench_function("decode_message", |b| {
        b.iter(|| {
            for message in &encoded {
                black_box(messages::decode::<CrawlResult>(Some(message), usize::MAX).expect("a message decodes"));
            }
        })
    });
    // The same page data without the internally tagged FetchOutcome around it, which
    // serde must buffer before it knows the variant.
    let responses: Vec<Vec<u8>> = results
        .iter()
        .map(|result| match &result.outcome {
            FetchOutcome::Response(response) => serde_json::to_vec(response).expect("a response serializes"),
            _ => unreachable!("the corpus results are responses"),
        })
        .collect();
    group.bench_function("decode_page_response_untagged", |b| {
        b.iter(|| {
            for message in &responses {
                black_box(serde_json::from_slice::<PageResponse>(message).expect("a response decodes"));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, extraction);
criterion_main!(benches);
