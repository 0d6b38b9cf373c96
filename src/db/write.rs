//! Batched, idempotent writes of fetch results.
//!
//! One batch is one transaction of a handful of multi-row statements built on UNNEST
//! arrays, whatever the number of results, URLs and links in it. Every statement is an
//! upsert keyed on natural identities, so writing the same result twice changes nothing.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};

use crate::messages::{CrawlResult, FetchOutcome, PageResponse};

/// What a committed batch added.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchStats {
    pub new_urls: u64,
    pub links: u64,
    /// Results skipped because their URL id is unknown to this database.
    pub unknown_urls: u64,
}

/// Write a batch of results in one transaction.
pub async fn write_results(
    pool: &PgPool,
    results: &[CrawlResult],
    revisit: Duration,
) -> Result<BatchStats, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let mut stats = BatchStats::default();

    let results = latest_per_url(results);
    let known = known_urls(&mut tx, &results).await?;
    let received = results.len();
    let results: Vec<&CrawlResult> = results
        .into_iter()
        .filter(|r| known.contains_key(&r.url_id))
        .collect();
    stats.unknown_urls = (received - results.len()) as u64;

    let (new_urls, ids) = insert_discovered_urls(&mut tx, &results).await?;
    stats.new_urls = new_urls;
    upsert_pages(&mut tx, &results, &known, &ids).await?;
    stats.links = upsert_links(&mut tx, &results, &ids).await?;
    mark_lost_links(&mut tx, &results).await?;
    mark_fetched(&mut tx, &results, revisit).await?;

    tx.commit().await?;
    Ok(stats)
}

/// Keep one result per URL, the latest, because one statement may not upsert a row twice.
fn latest_per_url(results: &[CrawlResult]) -> Vec<&CrawlResult> {
    let mut latest: BTreeMap<i64, &CrawlResult> = BTreeMap::new();
    for result in results {
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

/// The site of every result's URL, from the database rather than from the message, which
/// a buggy or hostile producer could have got wrong.
async fn known_urls(
    tx: &mut Transaction<'_, Postgres>,
    results: &[&CrawlResult],
) -> Result<HashMap<i64, i64>, sqlx::Error> {
    let ids: Vec<i64> = results.iter().map(|r| r.url_id).collect();
    let rows: Vec<(i64, i64)> =
        sqlx::query_as("SELECT id, site_id FROM urls WHERE id = ANY($1) AND site_id IS NOT NULL")
            .bind(&ids)
            .fetch_all(&mut **tx)
            .await?;
    let known: HashMap<i64, i64> = rows.into_iter().collect();
    for result in results.iter().filter(|r| !known.contains_key(&r.url_id)) {
        log::warn!(
            "skipping result for unknown URL id {} ({})",
            result.url_id,
            result.url
        );
    }
    Ok(known)
}

/// Insert the link and redirect targets not seen before; returns how many were new and
/// the id of every target.
async fn insert_discovered_urls(
    tx: &mut Transaction<'_, Postgres>,
    results: &[&CrawlResult],
) -> Result<(u64, HashMap<String, i64>), sqlx::Error> {
    let mut depth_by_url: BTreeMap<&str, i32> = BTreeMap::new();
    for result in results {
        let FetchOutcome::Response(response) = &result.outcome else {
            continue;
        };
        let depth = result.depth.saturating_add(1);
        for target in targets(response) {
            depth_by_url
                .entry(target)
                .and_modify(|d| *d = (*d).min(depth))
                .or_insert(depth);
        }
    }
    if depth_by_url.is_empty() {
        return Ok((0, HashMap::new()));
    }

    let mut urls = Vec::with_capacity(depth_by_url.len());
    let mut hosts = Vec::with_capacity(depth_by_url.len());
    let mut depths = Vec::with_capacity(depth_by_url.len());
    for (url, depth) in &depth_by_url {
        let Ok(parsed) = url::Url::parse(url) else {
            continue;
        };
        urls.push(clean(url));
        hosts.push(crate::url::site_host(&parsed));
        depths.push(*depth);
    }

    let inserted = sqlx::query(
        "INSERT INTO urls (url, host, site_id, state, depth, next_fetch_at)
         SELECT t.url, t.host, s.id,
                CASE WHEN s.id IS NULL THEN 'external' ELSE 'pending' END,
                t.depth,
                CASE WHEN s.id IS NULL THEN NULL ELSE now() END
         FROM UNNEST($1::text[], $2::text[], $3::int4[]) AS t(url, host, depth)
         LEFT JOIN sites s ON s.host = t.host
         ORDER BY t.url
         ON CONFLICT (url) DO NOTHING",
    )
    .bind(&urls)
    .bind(&hosts)
    .bind(&depths)
    .execute(&mut **tx)
    .await?
    .rows_affected();

    let rows: Vec<(i64, String)> = sqlx::query_as("SELECT id, url FROM urls WHERE url = ANY($1)")
        .bind(&urls)
        .fetch_all(&mut **tx)
        .await?;
    Ok((
        inserted,
        rows.into_iter().map(|(id, url)| (url, id)).collect(),
    ))
}

fn targets(response: &PageResponse) -> impl Iterator<Item = &str> {
    response
        .redirect_to
        .as_deref()
        .into_iter()
        .chain(response.links.iter().map(|l| l.url.as_str()))
}

/// The page columns of a batch, one vector per column, as UNNEST wants them.
#[derive(Default)]
struct PageColumns {
    url_id: Vec<i64>,
    site_id: Vec<i64>,
    fetched_at: Vec<DateTime<Utc>>,
    status: Vec<Option<i16>>,
    error_kind: Vec<Option<String>>,
    error_message: Vec<Option<String>>,
    content_type: Vec<Option<String>>,
    title: Vec<Option<String>>,
    h1: Vec<Option<String>>,
    meta_description: Vec<Option<String>>,
    canonical: Vec<Option<String>>,
    noindex: Vec<bool>,
    nofollow: Vec<bool>,
    redirect_url_id: Vec<Option<i64>>,
    response_time_ms: Vec<i32>,
    body_bytes: Vec<Option<i64>>,
    links_dropped: Vec<i32>,
}

async fn upsert_pages(
    tx: &mut Transaction<'_, Postgres>,
    results: &[&CrawlResult],
    site_of_url: &HashMap<i64, i64>,
    ids: &HashMap<String, i64>,
) -> Result<(), sqlx::Error> {
    let mut c = PageColumns::default();
    for result in results {
        c.url_id.push(result.url_id);
        c.site_id.push(site_of_url[&result.url_id]);
        c.fetched_at.push(result.fetched_at);
        c.response_time_ms
            .push(i32::try_from(result.response_time_ms).unwrap_or(i32::MAX));
        match &result.outcome {
            FetchOutcome::Response(r) => {
                c.status.push(i16::try_from(r.status).ok());
                c.error_kind.push(None);
                c.error_message.push(None);
                c.content_type.push(r.content_type.as_deref().map(clean));
                c.title.push(r.facts.title.as_deref().map(clean));
                c.h1.push(r.facts.h1.as_deref().map(clean));
                c.meta_description
                    .push(r.facts.meta_description.as_deref().map(clean));
                c.canonical.push(r.facts.canonical.as_deref().map(clean));
                c.noindex.push(r.facts.noindex);
                c.nofollow.push(r.facts.nofollow);
                c.redirect_url_id.push(
                    r.redirect_to
                        .as_ref()
                        .and_then(|u| ids.get(&clean(u)).copied()),
                );
                c.body_bytes.push(i64::try_from(r.body_bytes).ok());
                c.links_dropped
                    .push(i32::try_from(r.links_dropped).unwrap_or(i32::MAX));
            }
            FetchOutcome::Failed(f) => {
                c.status.push(None);
                c.error_kind.push(Some(f.error_kind.as_str().to_string()));
                c.error_message.push(Some(clean(&f.message)));
                c.content_type.push(None);
                c.title.push(None);
                c.h1.push(None);
                c.meta_description.push(None);
                c.canonical.push(None);
                c.noindex.push(false);
                c.nofollow.push(false);
                c.redirect_url_id.push(None);
                c.body_bytes.push(None);
                c.links_dropped.push(0);
            }
        }
    }

    sqlx::query(
        "INSERT INTO pages (url_id, site_id, fetched_at, status, error_kind, error_message, content_type,
                            title, h1, meta_description, canonical, noindex, nofollow, redirect_url_id,
                            response_time_ms, body_bytes, links_dropped)
         SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::timestamptz[], $4::int2[], $5::text[], $6::text[],
                              $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::bool[],
                              $13::bool[], $14::int8[], $15::int4[], $16::int8[], $17::int4[])
         ON CONFLICT (url_id) DO UPDATE SET
            site_id = EXCLUDED.site_id, fetched_at = EXCLUDED.fetched_at, status = EXCLUDED.status,
            error_kind = EXCLUDED.error_kind, error_message = EXCLUDED.error_message,
            content_type = EXCLUDED.content_type, title = EXCLUDED.title, h1 = EXCLUDED.h1,
            meta_description = EXCLUDED.meta_description, canonical = EXCLUDED.canonical,
            noindex = EXCLUDED.noindex, nofollow = EXCLUDED.nofollow,
            redirect_url_id = EXCLUDED.redirect_url_id, response_time_ms = EXCLUDED.response_time_ms,
            body_bytes = EXCLUDED.body_bytes, links_dropped = EXCLUDED.links_dropped
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
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The link columns of a batch.
#[derive(Default)]
struct LinkColumns {
    source: Vec<i64>,
    target: Vec<i64>,
    anchor_text: Vec<String>,
    occurrence: Vec<i32>,
    href: Vec<String>,
    nofollow: Vec<bool>,
    ugc: Vec<bool>,
    sponsored: Vec<bool>,
    seen: Vec<DateTime<Utc>>,
}

async fn upsert_links(
    tx: &mut Transaction<'_, Postgres>,
    results: &[&CrawlResult],
    ids: &HashMap<String, i64>,
) -> Result<u64, sqlx::Error> {
    let mut c = LinkColumns::default();
    for result in results {
        let FetchOutcome::Response(response) = &result.outcome else {
            continue;
        };
        let mut occurrences: HashMap<(i64, String), i32> = HashMap::new();
        for link in &response.links {
            let Some(&target) = ids.get(&clean(&link.url)) else {
                continue;
            };
            let anchor = clean(&link.anchor_text);
            let occurrence = occurrences.entry((target, anchor.clone())).or_insert(0);
            c.source.push(result.url_id);
            c.target.push(target);
            c.anchor_text.push(anchor);
            c.occurrence.push(*occurrence);
            c.href.push(clean(&link.href));
            c.nofollow.push(link.nofollow);
            c.ugc.push(link.ugc);
            c.sponsored.push(link.sponsored);
            c.seen.push(result.fetched_at);
            *occurrence += 1;
        }
    }
    if c.source.is_empty() {
        return Ok(0);
    }

    let written = sqlx::query(
        "INSERT INTO links (source_url_id, target_url_id, anchor_text, occurrence, href, nofollow, ugc,
                            sponsored, first_seen, last_seen)
         SELECT s, t, a, o, h, n, u, sp, seen, seen
         FROM UNNEST($1::int8[], $2::int8[], $3::text[], $4::int4[], $5::text[], $6::bool[], $7::bool[],
                     $8::bool[], $9::timestamptz[]) AS x(s, t, a, o, h, n, u, sp, seen)
         ON CONFLICT (source_url_id, target_url_id, anchor_text, occurrence) DO UPDATE SET
            href = EXCLUDED.href, nofollow = EXCLUDED.nofollow, ugc = EXCLUDED.ugc,
            sponsored = EXCLUDED.sponsored,
            last_seen = GREATEST(links.last_seen, EXCLUDED.last_seen),
            lost_at = NULL",
    )
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

/// A page that answered again without a link it had before has lost that link. A fetch
/// that failed says nothing about the page's links, so it loses none.
async fn mark_lost_links(
    tx: &mut Transaction<'_, Postgres>,
    results: &[&CrawlResult],
) -> Result<(), sqlx::Error> {
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

async fn mark_fetched(
    tx: &mut Transaction<'_, Postgres>,
    results: &[&CrawlResult],
    revisit: Duration,
) -> Result<(), sqlx::Error> {
    let (ids, fetched_at): (Vec<i64>, Vec<DateTime<Utc>>) =
        results.iter().map(|r| (r.url_id, r.fetched_at)).unzip();
    sqlx::query(
        "UPDATE urls SET state = 'fetched', last_fetched_at = t.fetched_at,
                next_fetch_at = t.fetched_at + make_interval(secs => $3), leased_until = NULL
         FROM UNNEST($1::int8[], $2::timestamptz[]) AS t(id, fetched_at)
         WHERE urls.id = t.id AND (urls.last_fetched_at IS NULL OR urls.last_fetched_at <= t.fetched_at)",
    )
    .bind(&ids)
    .bind(&fetched_at)
    .bind(revisit.as_secs_f64())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// PostgreSQL text cannot hold NUL characters, which hostile pages do contain.
fn clean(text: &str) -> String {
    if text.contains('\0') {
        text.replace('\0', "")
    } else {
        text.to_string()
    }
}
