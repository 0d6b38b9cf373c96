//! Batched, idempotent writes of fetch results.
//!
//! One batch is one transaction of a handful of multi-row statements built on UNNEST
//! arrays, whatever the number of results, URLs and links in it. Every statement is an
//! upsert keyed on natural identities, so writing the same result twice changes nothing.
//! The one exception is the links of a page fetched for the first time: no row of them
//! can exist yet, so they go in by a binary COPY, without ON CONFLICT.

use std::borrow::{Borrow, Cow};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};

use super::binary_copy::BinaryCopy;
use super::discover::{self, clean};
use super::url_cache::UrlCache;
use crate::messages::{CrawlResult, FetchOutcome};
use crate::scope::CrawlLimits;

/// How the DbWriter schedules and limits the crawl.
#[derive(Debug, Clone)]
pub struct WritePolicy {
    /// Time until a fetched URL is due again.
    pub revisit: Duration,
    /// Times a URL is offered again after a 429, 503 or unavailable robots.txt.
    pub max_retries: i32,
    pub limits: CrawlLimits,
}

/// What a committed batch added.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchStats {
    pub new_urls: u64,
    pub links: u64,
    /// Results skipped because their URL id is unknown to this database.
    pub unknown_urls: u64,
}

/// Write a batch of results in one transaction. URLs found in `cache` are not looked up
/// again, and the URLs of the batch go into it once the transaction commits.
pub async fn write_results<R: Borrow<CrawlResult>>(
    pool: &PgPool,
    results: &[R],
    policy: &WritePolicy,
    cache: &mut UrlCache,
) -> Result<BatchStats, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let mut stats = BatchStats::default();

    let results = latest_per_url(results);
    let known = lock_known_urls(&mut tx, &results).await?;
    let received = results.len();
    let results: Vec<&CrawlResult> = results.into_iter().filter(|r| known.contains_key(&r.url_id)).collect();
    stats.unknown_urls = (received - results.len()) as u64;

    let stored_depth: HashMap<i64, i32> = known.iter().map(|(id, url)| (*id, url.depth)).collect();
    let discovered = discover::record(&mut tx, &results, &stored_depth, &policy.limits, cache).await?;
    stats.new_urls = discovered.new_urls;
    let links = LinkBatch::build(&results, &known, &discovered.ids);
    upsert_pages(&mut tx, &results, &known, &discovered.ids, &links.first_fetch_counts).await?;
    stats.links = write_links(&mut tx, &links.first_fetch, LinkWrite::FirstFetch).await?;
    stats.links += write_links(&mut tx, &links.refetch, LinkWrite::Upsert).await?;

    // Only pages fetched before can have links that this fetch no longer found.
    let refetched: Vec<&CrawlResult> = results.iter().copied().filter(|r| known[&r.url_id].fetched_before).collect();
    mark_lost_links(&mut tx, &refetched).await?;
    count_live_links(&mut tx, &refetched).await?;
    update_states(&mut tx, &results, policy).await?;
    discover::count_new_pages(&mut tx, &discovered.new_pages).await?;

    tx.commit().await?;
    for (url, entry) in &discovered.to_cache {
        cache.insert(url, *entry);
    }
    Ok(stats)
}

/// Keep one result per URL, the latest, because one statement may not upsert a row twice.
fn latest_per_url<R: Borrow<CrawlResult>>(results: &[R]) -> Vec<&CrawlResult> {
    let mut latest: BTreeMap<i64, &CrawlResult> = BTreeMap::new();
    for result in results.iter().map(Borrow::borrow) {
        latest
            .entry(result.url_id)
            .and_modify(|kept| {
                if result.fetched_at > kept.fetched_at {
                    *kept = result;
                }
            })
            .or_insert(result);
    }
    latest.into_values().collect()
}

/// A result's URL as stored before the batch.
struct KnownUrl {
    site_id: i64,
    /// A result of this URL was written before, so links of it may be stored.
    fetched_before: bool,
    depth: i32,
}

/// Lock the URL of every result and read its site from the database rather than from the
/// message, which a buggy or hostile producer could have got wrong. The row lock makes a
/// concurrent writer of the same URL wait for this commit and then read `fetched_before`
/// as true, because every written result sets `last_fetched_at` and nothing clears it.
async fn lock_known_urls(
    tx: &mut Transaction<'_, Postgres>,
    results: &[&CrawlResult],
) -> Result<HashMap<i64, KnownUrl>, sqlx::Error> {
    let ids: Vec<i64> = results.iter().map(|r| r.url_id).collect();
    // Locking in id order keeps two writers of overlapping batches from deadlocking.
    let rows: Vec<(i64, i64, bool, i32)> = sqlx::query_as(
        "SELECT id, site_id, last_fetched_at IS NOT NULL, depth FROM urls
         WHERE id = ANY($1) AND site_id IS NOT NULL
         ORDER BY id
         FOR NO KEY UPDATE",
    )
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?;
    let known: HashMap<i64, KnownUrl> = rows
        .into_iter()
        .map(|(id, site_id, fetched_before, depth)| (id, KnownUrl { site_id, fetched_before, depth }))
        .collect();
    for result in results.iter().filter(|r| !known.contains_key(&r.url_id)) {
        log::warn!("skipping result for unknown URL id {} ({})", result.url_id, result.url);
    }
    Ok(known)
}

/// The page columns of a batch, one vector per column, as UNNEST wants them.
#[derive(Default)]
struct PageColumns<'a> {
    url_id: Vec<i64>,
    site_id: Vec<i64>,
    fetched_at: Vec<DateTime<Utc>>,
    status: Vec<Option<i16>>,
    error_kind: Vec<Option<&'static str>>,
    error_message: Vec<Option<Cow<'a, str>>>,
    content_type: Vec<Option<Cow<'a, str>>>,
    title: Vec<Option<Cow<'a, str>>>,
    h1: Vec<Option<Cow<'a, str>>>,
    meta_description: Vec<Option<Cow<'a, str>>>,
    canonical: Vec<Option<Cow<'a, str>>>,
    noindex: Vec<bool>,
    nofollow: Vec<bool>,
    redirect_url_id: Vec<Option<i64>>,
    redirect_kind: Vec<Option<&'static str>>,
    response_time_ms: Vec<i32>,
    body_bytes: Vec<Option<i64>>,
    links_dropped: Vec<i32>,
    h1_count: Vec<i32>,
    hreflang: Vec<serde_json::Value>,
    images_missing_alt: Vec<i32>,
    insecure_resources: Vec<i32>,
    headers: Vec<serde_json::Value>,
    link_count: Vec<i32>,
}

/// Upsert the page rows. `first_fetch_counts` gives the link count of each page fetched
/// for the first time; other pages get theirs from `count_live_links`.
async fn upsert_pages(
    tx: &mut Transaction<'_, Postgres>,
    results: &[&CrawlResult],
    known: &HashMap<i64, KnownUrl>,
    ids: &HashMap<Cow<'_, str>, i64>,
    first_fetch_counts: &HashMap<i64, i32>,
) -> Result<(), sqlx::Error> {
    let mut c = PageColumns::default();
    for result in results {
        if !matches!(result.outcome, FetchOutcome::Response(_) | FetchOutcome::Failed(_)) {
            continue;
        }
        c.url_id.push(result.url_id);
        c.site_id.push(known[&result.url_id].site_id);
        c.link_count.push(first_fetch_counts.get(&result.url_id).copied().unwrap_or(0));
        c.fetched_at.push(result.fetched_at);
        c.response_time_ms.push(i32::try_from(result.response_time_ms).unwrap_or(i32::MAX));
        match &result.outcome {
            FetchOutcome::Response(r) => {
                c.status.push(i16::try_from(r.status).ok());
                c.error_kind.push(None);
                c.error_message.push(None);
                c.content_type.push(r.content_type.as_deref().map(clean));
                c.title.push(r.facts.title.as_deref().map(clean));
                c.h1.push(r.facts.h1.as_deref().map(clean));
                c.meta_description.push(r.facts.meta_description.as_deref().map(clean));
                c.canonical.push(r.facts.canonical.as_deref().map(clean));
                c.noindex.push(r.facts.noindex);
                c.nofollow.push(r.facts.nofollow);
                let redirect = r.redirect_to.as_deref().and_then(|u| ids.get(clean(u).as_ref()).copied());
                c.redirect_url_id.push(redirect);
                c.redirect_kind.push(redirect.map(|_| {
                    if (300..400).contains(&r.status) {
                        "http"
                    } else {
                        "meta_refresh"
                    }
                }));
                c.body_bytes.push(i64::try_from(r.body_bytes).ok());
                c.links_dropped.push(i32::try_from(r.links_dropped).unwrap_or(i32::MAX));
                c.h1_count.push(i32::try_from(r.facts.h1_count).unwrap_or(i32::MAX));
                c.hreflang.push(serde_json::to_value(&r.facts.hreflang).unwrap_or_default());
                c.images_missing_alt.push(i32::try_from(r.facts.images_missing_alt).unwrap_or(i32::MAX));
                c.insecure_resources.push(i32::try_from(r.facts.insecure_resources).unwrap_or(i32::MAX));
                let headers: Vec<(Cow<str>, Cow<str>)> = r.headers.iter().map(|(n, v)| (clean(n), clean(v))).collect();
                c.headers.push(serde_json::to_value(headers).unwrap_or_default());
            }
            FetchOutcome::Failed(f) => {
                c.status.push(None);
                c.error_kind.push(Some(f.error_kind.as_str()));
                c.error_message.push(Some(clean(&f.message)));
                c.content_type.push(None);
                c.title.push(None);
                c.h1.push(None);
                c.meta_description.push(None);
                c.canonical.push(None);
                c.noindex.push(false);
                c.nofollow.push(false);
                c.redirect_url_id.push(None);
                c.redirect_kind.push(None);
                c.body_bytes.push(None);
                c.links_dropped.push(0);
                c.h1_count.push(0);
                c.hreflang.push(serde_json::Value::Array(Vec::new()));
                c.images_missing_alt.push(0);
                c.insecure_resources.push(0);
                c.headers.push(serde_json::Value::Array(Vec::new()));
            }
            FetchOutcome::Blocked { .. } | FetchOutcome::Deferred { .. } => {
                unreachable!("filtered out above")
            }
        }
    }
    if c.url_id.is_empty() {
        return Ok(());
    }

    sqlx::query(
        "INSERT INTO pages (url_id, site_id, fetched_at, status, error_kind, error_message, content_type,
                            title, h1, meta_description, canonical, noindex, nofollow, redirect_url_id,
                            response_time_ms, body_bytes, links_dropped, redirect_kind, h1_count, hreflang,
                            images_missing_alt, insecure_resources, headers, link_count)
         SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::timestamptz[], $4::int2[], $5::text[], $6::text[],
                              $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::bool[],
                              $13::bool[], $14::int8[], $15::int4[], $16::int8[], $17::int4[], $18::text[],
                              $19::int4[], $20::jsonb[], $21::int4[], $22::int4[], $23::jsonb[], $24::int4[])
         ON CONFLICT (url_id) DO UPDATE SET
            site_id = EXCLUDED.site_id, fetched_at = EXCLUDED.fetched_at, status = EXCLUDED.status,
            error_kind = EXCLUDED.error_kind, error_message = EXCLUDED.error_message,
            content_type = EXCLUDED.content_type, title = EXCLUDED.title, h1 = EXCLUDED.h1,
            meta_description = EXCLUDED.meta_description, canonical = EXCLUDED.canonical,
            noindex = EXCLUDED.noindex, nofollow = EXCLUDED.nofollow,
            redirect_url_id = EXCLUDED.redirect_url_id, response_time_ms = EXCLUDED.response_time_ms,
            body_bytes = EXCLUDED.body_bytes, links_dropped = EXCLUDED.links_dropped,
            redirect_kind = EXCLUDED.redirect_kind, h1_count = EXCLUDED.h1_count, hreflang = EXCLUDED.hreflang,
            images_missing_alt = EXCLUDED.images_missing_alt, insecure_resources = EXCLUDED.insecure_resources,
            headers = EXCLUDED.headers
         WHERE pages.fetched_at <= EXCLUDED.fetched_at",
    )
    .bind(&c.url_id)
    .bind(&c.site_id)
    .bind(&c.fetched_at)
    .bind(&c.status)
    .bind(&c.error_kind)
    .bind(&c.error_message)
    .bind(&c.content_type)
    .bind(&c.title)
    .bind(&c.h1)
    .bind(&c.meta_description)
    .bind(&c.canonical)
    .bind(&c.noindex)
    .bind(&c.nofollow)
    .bind(&c.redirect_url_id)
    .bind(&c.response_time_ms)
    .bind(&c.body_bytes)
    .bind(&c.links_dropped)
    .bind(&c.redirect_kind)
    .bind(&c.h1_count)
    .bind(&c.hreflang)
    .bind(&c.images_missing_alt)
    .bind(&c.insecure_resources)
    .bind(&c.headers)
    .bind(&c.link_count)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The link columns of a batch, one vector per column, as UNNEST wants them.
#[derive(Default)]
struct LinkColumns<'a> {
    source: Vec<i64>,
    target: Vec<i64>,
    anchor_text: Vec<Cow<'a, str>>,
    occurrence: Vec<i32>,
    href: Vec<Cow<'a, str>>,
    nofollow: Vec<bool>,
    ugc: Vec<bool>,
    sponsored: Vec<bool>,
    seen: Vec<DateTime<Utc>>,
}

/// The link rows of a batch, split by whether their page was fetched before.
#[derive(Default)]
struct LinkBatch<'a> {
    /// Rows of pages fetched for the first time, none of them stored yet.
    first_fetch: LinkColumns<'a>,
    /// The number of links of each page fetched for the first time, all of them live.
    first_fetch_counts: HashMap<i64, i32>,
    /// Rows of pages fetched before, which may be stored already.
    refetch: LinkColumns<'a>,
}

impl<'a> LinkBatch<'a> {
    /// Build one row per link whose target has an id. A link's occurrence is its rank among
    /// the page's links with the same target and anchor text, which makes its key unique.
    fn build(results: &[&'a CrawlResult], known: &HashMap<i64, KnownUrl>, ids: &HashMap<Cow<'_, str>, i64>) -> Self {
        let mut batch = LinkBatch::default();
        for result in results {
            let FetchOutcome::Response(response) = &result.outcome else {
                continue;
            };
            let first_fetch = !known[&result.url_id].fetched_before;
            let columns = if first_fetch { &mut batch.first_fetch } else { &mut batch.refetch };
            let mut occurrences: HashMap<(i64, Cow<'a, str>), i32> = HashMap::with_capacity(response.links.len());
            let mut count = 0;
            for link in &response.links {
                let Some(&target) = ids.get(clean(&link.url).as_ref()) else {
                    continue;
                };
                let anchor = clean(&link.anchor_text);
                let next = occurrences.entry((target, anchor.clone())).or_insert(0);
                columns.source.push(result.url_id);
                columns.target.push(target);
                columns.anchor_text.push(anchor);
                columns.occurrence.push(*next);
                columns.href.push(clean(&link.href));
                columns.nofollow.push(link.nofollow);
                columns.ugc.push(link.ugc);
                columns.sponsored.push(link.sponsored);
                columns.seen.push(result.fetched_at);
                *next += 1;
                count += 1;
            }
            if first_fetch {
                batch.first_fetch_counts.insert(result.url_id, count);
            }
        }
        batch
    }
}

/// The upsert of the links of pages fetched before, one row per element of the columns.
const UPSERT_LINKS: &str = "INSERT INTO links (source_url_id, target_url_id, anchor_text, occurrence, href, nofollow,
                                ugc, sponsored, first_seen, last_seen)
     SELECT s, t, a, o, h, n, u, sp, seen, seen
     FROM UNNEST($1::int8[], $2::int8[], $3::text[], $4::int4[], $5::text[], $6::bool[], $7::bool[],
                 $8::bool[], $9::timestamptz[]) AS x(s, t, a, o, h, n, u, sp, seen)
     ON CONFLICT (source_url_id, target_url_id, anchor_text, occurrence) DO UPDATE SET
        href = EXCLUDED.href, nofollow = EXCLUDED.nofollow, ugc = EXCLUDED.ugc,
        sponsored = EXCLUDED.sponsored,
        last_seen = GREATEST(links.last_seen, EXCLUDED.last_seen),
        lost_at = NULL";

/// The columns of `links` that a binary COPY fills, in the order of its rows' fields.
const COPY_LINKS: &str = "COPY links (source_url_id, target_url_id, anchor_text, occurrence, href, nofollow, ugc,
                        sponsored, first_seen, last_seen)
     FROM STDIN (FORMAT binary)";

/// How the links of a batch are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkWrite {
    /// Pages fetched for the first time. No row of such a page can exist, because its URL
    /// is locked and had no result, so the rows cannot conflict and go in by a binary
    /// COPY, which skips the cost of ON CONFLICT and of binding arrays.
    FirstFetch,
    /// Pages fetched before: a result delivered twice updates the same rows, and a link
    /// found again is live again.
    Upsert,
}

/// Write link rows and return how many were inserted or updated.
async fn write_links(
    tx: &mut Transaction<'_, Postgres>,
    c: &LinkColumns<'_>,
    mode: LinkWrite,
) -> Result<u64, sqlx::Error> {
    if c.source.is_empty() {
        return Ok(0);
    }
    match mode {
        LinkWrite::FirstFetch => copy_links(tx, c).await,
        LinkWrite::Upsert => upsert_links(tx, c).await,
    }
}

async fn upsert_links(tx: &mut Transaction<'_, Postgres>, c: &LinkColumns<'_>) -> Result<u64, sqlx::Error> {
    let written = sqlx::query(UPSERT_LINKS)
        .bind(&c.source)
        .bind(&c.target)
        .bind(&c.anchor_text)
        .bind(&c.occurrence)
        .bind(&c.href)
        .bind(&c.nofollow)
        .bind(&c.ugc)
        .bind(&c.sponsored)
        .bind(&c.seen)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    Ok(written)
}

/// Insert link rows by a binary COPY and return how many went in. The rows must not
/// conflict with stored ones, because COPY cannot skip or update a row.
async fn copy_links(tx: &mut Transaction<'_, Postgres>, c: &LinkColumns<'_>) -> Result<u64, sqlx::Error> {
    // A row takes 81 bytes of field count, field lengths and fixed-size values, plus its
    // two texts.
    let text_bytes: usize = c.anchor_text.iter().chain(&c.href).map(|text| text.len()).sum();
    let mut copy = BinaryCopy::with_capacity(c.source.len() * 81 + text_bytes);
    for i in 0..c.source.len() {
        copy.row(10);
        copy.int8(c.source[i]);
        copy.int8(c.target[i]);
        copy.text(&c.anchor_text[i]);
        copy.int4(c.occurrence[i]);
        copy.text(&c.href[i]);
        copy.bool(c.nofollow[i]);
        copy.bool(c.ugc[i]);
        copy.bool(c.sponsored[i]);
        copy.timestamptz(c.seen[i]);
        copy.timestamptz(c.seen[i]);
    }

    let mut sink = tx.copy_in_raw(COPY_LINKS).await?;
    sink.send(copy.finish()).await?;
    sink.finish().await
}

/// A page that answered again without a link it had before has lost that link. A fetch
/// that failed says nothing about the page's links, so it loses none.
async fn mark_lost_links(tx: &mut Transaction<'_, Postgres>, results: &[&CrawlResult]) -> Result<(), sqlx::Error> {
    let (sources, seen): (Vec<i64>, Vec<DateTime<Utc>>) = results
        .iter()
        .filter(|r| matches!(r.outcome, FetchOutcome::Response(_)))
        .map(|r| (r.url_id, r.fetched_at))
        .unzip();
    if sources.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE links SET lost_at = t.seen
         FROM UNNEST($1::int8[], $2::timestamptz[]) AS t(source, seen)
         WHERE links.source_url_id = t.source AND links.last_seen < t.seen AND links.lost_at IS NULL",
    )
    .bind(&sources)
    .bind(&seen)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Store the live link count of every page fetched before, for the site progress, which
/// sums these counts instead of counting the site's links. Counting the rows keeps the sum
/// exact when a result arrives twice or after a newer one.
async fn count_live_links(tx: &mut Transaction<'_, Postgres>, results: &[&CrawlResult]) -> Result<(), sqlx::Error> {
    let sources: Vec<i64> =
        results.iter().filter(|r| matches!(r.outcome, FetchOutcome::Response(_))).map(|r| r.url_id).collect();
    if sources.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE pages SET link_count = (
            SELECT count(*) FROM links WHERE links.source_url_id = pages.url_id AND links.lost_at IS NULL)
         WHERE pages.url_id = ANY($1)",
    )
    .bind(&sources)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Move each result's URL to its next state: fetched and due again after the revisit
/// interval, blocked, or pending again after a 429, 503 or unavailable robots.txt.
async fn update_states(
    tx: &mut Transaction<'_, Postgres>,
    results: &[&CrawlResult],
    policy: &WritePolicy,
) -> Result<(), sqlx::Error> {
    let mut ids = Vec::with_capacity(results.len());
    let mut fetched_at = Vec::with_capacity(results.len());
    let mut retry_after = Vec::with_capacity(results.len());
    let mut blocked = Vec::with_capacity(results.len());
    let mut deferred = Vec::with_capacity(results.len());
    let mut reasons = Vec::with_capacity(results.len());
    for result in results {
        let (retry, block, defer, reason) = match &result.outcome {
            FetchOutcome::Response(r) => (r.retry_after_secs.map(f64::from), false, false, None),
            FetchOutcome::Failed(_) => (None, false, false, None),
            FetchOutcome::Blocked { reason } => (None, true, false, Some(Cow::Borrowed(reason.as_str()))),
            FetchOutcome::Deferred { reason, retry_after_secs } => {
                (Some(f64::from(*retry_after_secs)), false, true, Some(clean(reason)))
            }
        };
        ids.push(result.url_id);
        fetched_at.push(result.fetched_at);
        retry_after.push(retry);
        blocked.push(block);
        deferred.push(defer);
        reasons.push(reason);
    }

    sqlx::query(
        "UPDATE urls SET
            state = CASE
                WHEN t.blocked THEN 'blocked'
                WHEN t.retry_after IS NOT NULL AND urls.retries < $4 THEN 'pending'
                -- A URL deferred too often was never fetched: it stays blocked, with the reason.
                WHEN t.deferred THEN 'blocked'
                ELSE 'fetched' END,
            state_reason = t.reason,
            retries = CASE WHEN t.retry_after IS NOT NULL THEN urls.retries + 1 ELSE 0 END,
            last_fetched_at = t.fetched_at,
            next_fetch_at = CASE
                WHEN t.retry_after IS NOT NULL AND urls.retries < $4 THEN t.fetched_at + make_interval(secs => t.retry_after)
                ELSE t.fetched_at + make_interval(secs => $3) END,
            leased_until = NULL
         FROM UNNEST($1::int8[], $2::timestamptz[], $5::float8[], $6::bool[], $7::text[], $8::bool[])
              AS t(id, fetched_at, retry_after, blocked, reason, deferred)
         WHERE urls.id = t.id AND (urls.last_fetched_at IS NULL OR urls.last_fetched_at <= t.fetched_at)",
    )
    .bind(&ids)
    .bind(&fetched_at)
    .bind(policy.revisit.as_secs_f64())
    .bind(policy.max_retries)
    .bind(&retry_after)
    .bind(&blocked)
    .bind(&reasons)
    .bind(&deferred)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
