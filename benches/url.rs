//! URL normalization: `parse_crawlable` on absolute URLs and `resolve` on the `href`
//! values of real pages, each against the page it was found on.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use open_ahrefs::extract::Extractor;
use open_ahrefs::url::{parse_crawlable, resolve};
use url::Url;

mod support;

fn normalization(c: &mut Criterion) {
    let pages = support::load(100);
    let extractor = Extractor::new();
    // Every (page URL, href, resolved URL) of the corpus, as the extractor meets them.
    let mut hrefs: Vec<(Url, String)> = Vec::new();
    let mut absolute: Vec<String> = Vec::new();
    for page in &pages {
        for link in extractor.extract(&page.url, &page.html).links {
            absolute.push(link.url);
            hrefs.push((page.url.clone(), link.href));
        }
    }
    println!("url corpus: {} hrefs from {} pages", hrefs.len(), pages.len());

    let mut group = c.benchmark_group("url");
    group.throughput(Throughput::Elements(hrefs.len() as u64));
    group.bench_function("resolve_href", |b| {
        b.iter(|| {
            for (base, href) in &hrefs {
                black_box(resolve(base, href));
            }
        })
    });
    group.bench_function("parse_crawlable", |b| {
        b.iter(|| {
            for url in &absolute {
                black_box(parse_crawlable(url).ok());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, normalization);
criterion_main!(benches);
