//! Read-side queries of the API: pages and backlinks, with keyset pagination.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

/// Which fetched pages to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    Any,
    Exact(i16),
    /// A class such as 4 for `4xx`.
    Class(i16),
    /// Fetches that got no response.
    Error,
}

/// One fetched page with its facts.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct PageRow {
    pub url_id: i64,
    pub url: String,
    pub depth: i32,
    pub fetched_at: DateTime<Utc>,
    pub status: Option<i16>,
    pub error_kind: Option<String>,
    pub error_message: Option<String>,
    pub content_type: Option<String>,
    pub title: Option<String>,
    pub h1: Option<String>,
    pub meta_description: Option<String>,
    pub canonical: Option<String>,
    pub noindex: bool,
    pub nofollow: bool,
    pub redirect_to: Option<String>,
    pub response_time_ms: i32,
    pub body_bytes: Option<i64>,
    pub links_dropped: i32,
}

/// List a site's fetched pages in URL id order, starting after `after`. Sitemaps are
/// fetched too, but are not pages of the site, so they are left out, as from the site's
/// counts and the exports.
pub async fn pages(
    pool: &PgPool,
    site_id: i64,
    status: StatusFilter,
    after: i64,
    limit: i64,
) -> Result<Vec<PageRow>, sqlx::Error> {
    let (mode, value): (i16, i16) = match status {
        StatusFilter::Any => (0, 0),
        StatusFilter::Exact(code) => (1, code),
        StatusFilter::Class(class) => (2, class),
        StatusFilter::Error => (3, 0),
    };
    sqlx::query_as(
        "SELECT p.url_id, u.url, u.depth, p.fetched_at, p.status, p.error_kind, p.error_message,
                p.content_type, p.title, p.h1, p.meta_description, p.canonical, p.noindex, p.nofollow,
                r.url AS redirect_to, p.response_time_ms, p.body_bytes, p.links_dropped
         FROM pages p
         JOIN urls u ON u.id = p.url_id
         LEFT JOIN urls r ON r.id = p.redirect_url_id
         WHERE p.site_id = $1 AND p.url_id > $2 AND u.kind = 'page'
           AND CASE $3::int2
                 WHEN 1 THEN p.status = $4
                 WHEN 2 THEN p.status / 100 = $4
                 WHEN 3 THEN p.status IS NULL
                 ELSE true END
         ORDER BY p.url_id
         LIMIT $5",
    )
    .bind(site_id)
    .bind(after)
    .bind(mode)
    .bind(value)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// One URL with its latest fetch, link counts and rank.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct PageDetail {
    pub url_id: i64,
    pub url: String,
    pub site_id: Option<i64>,
    pub kind: String,
    pub state: String,
    pub state_reason: Option<String>,
    pub depth: i32,
    pub in_sitemap: bool,
    pub fetched_at: Option<DateTime<Utc>>,
    pub status: Option<i16>,
    pub error_kind: Option<String>,
    pub content_type: Option<String>,
    pub title: Option<String>,
    pub h1: Option<String>,
    pub h1_count: Option<i32>,
    pub meta_description: Option<String>,
    pub canonical: Option<String>,
    pub noindex: Option<bool>,
    pub nofollow: Option<bool>,
    pub redirect_to: Option<String>,
    pub redirect_kind: Option<String>,
    pub response_time_ms: Option<i32>,
    pub body_bytes: Option<i64>,
    pub hreflang: Option<serde_json::Value>,
    pub images_missing_alt: Option<i32>,
    pub insecure_resources: Option<i32>,
    pub headers: Option<serde_json::Value>,
    pub inlinks: i64,
    pub outlinks: i64,
    /// URL rating, 0..100, from the latest rank run.
    pub url_rating: Option<f64>,
    /// Domain rating of the URL's registrable domain, 0..100.
    pub domain_rating: Option<f64>,
}

/// One URL by id with everything known about it.
pub async fn page(pool: &PgPool, url_id: i64) -> Result<Option<PageDetail>, sqlx::Error> {
    sqlx::query_as(
        "SELECT u.id AS url_id, u.url, u.site_id, u.kind, u.state, u.state_reason, u.depth, u.in_sitemap,
                p.fetched_at, p.status, p.error_kind, p.content_type, p.title, p.h1, p.h1_count, p.meta_description,
                p.canonical, p.noindex, p.nofollow, r.url AS redirect_to, p.redirect_kind, p.response_time_ms,
                p.body_bytes, p.hreflang, p.images_missing_alt, p.insecure_resources, p.headers,
                (SELECT count(*) FROM links l
                 WHERE l.target_url_id = u.id AND l.lost_at IS NULL AND l.source_url_id <> u.id) AS inlinks,
                (SELECT count(*) FROM links l WHERE l.source_url_id = u.id AND l.lost_at IS NULL) AS outlinks,
                ur.score AS url_rating, dr.score AS domain_rating
         FROM urls u
         LEFT JOIN pages p ON p.url_id = u.id
         LEFT JOIN urls r ON r.id = p.redirect_url_id
         LEFT JOIN url_rank ur ON ur.url_id = u.id
         LEFT JOIN domain_rank dr ON dr.domain = u.domain
         WHERE u.id = $1",
    )
    .bind(url_id)
    .fetch_optional(pool)
    .await
}

/// One URL of a site with its crawl state.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct UrlRow {
    pub url_id: i64,
    pub url: String,
    pub kind: String,
    pub state: String,
    pub state_reason: Option<String>,
    pub depth: i32,
    pub in_sitemap: bool,
    pub first_seen: DateTime<Utc>,
    pub last_fetched_at: Option<DateTime<Utc>>,
    pub next_fetch_at: Option<DateTime<Utc>>,
}

/// List a site's URLs in id order, optionally in one state. External URLs belong to no
/// site, so `external` lists those that the site's pages link to.
pub async fn urls(
    pool: &PgPool,
    site_id: i64,
    state: Option<&str>,
    after: i64,
    limit: i64,
) -> Result<Vec<UrlRow>, sqlx::Error> {
    if state == Some("external") {
        return external_urls(pool, site_id, after, limit).await;
    }
    sqlx::query_as(
        "SELECT id AS url_id, url, kind, state, state_reason, depth, in_sitemap, first_seen, last_fetched_at,
                next_fetch_at
         FROM urls
         WHERE site_id = $1 AND id > $2 AND ($3::text IS NULL OR state = $3)
         ORDER BY id
         LIMIT $4",
    )
    .bind(site_id)
    .bind(after)
    .bind(state)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// List the external URLs that the live links of a site's pages point at, in id order.
///
/// NOTE: each call reads every live link of the site's pages to find the targets, so its
/// cost grows with the site's links. A table of the external targets per site, kept by
/// the DbWriter, would make it an index scan.
async fn external_urls(pool: &PgPool, site_id: i64, after: i64, limit: i64) -> Result<Vec<UrlRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT u.id AS url_id, u.url, u.kind, u.state, u.state_reason, u.depth, u.in_sitemap, u.first_seen,
                u.last_fetched_at, u.next_fetch_at
         FROM urls u
         WHERE u.id IN (SELECT l.target_url_id
                        FROM pages p JOIN links l ON l.source_url_id = p.url_id AND l.lost_at IS NULL
                        WHERE p.site_id = $1 AND l.target_url_id > $2)
           AND u.state = 'external'
         ORDER BY u.id
         LIMIT $3",
    )
    .bind(site_id)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// One step of a redirect chain.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RedirectHop {
    pub url: String,
    pub status: Option<i16>,
    /// `http` for a 3xx, `meta_refresh` for `<meta http-equiv="refresh">`.
    pub kind: Option<String>,
}

/// A redirect chain from a URL to its final target.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RedirectChain {
    pub hops: Vec<RedirectHop>,
    /// Redirects followed: one less than the URLs in `hops`.
    pub hop_count: usize,
    pub final_url: String,
    pub final_status: Option<i16>,
    /// The chain returns to a URL it already passed.
    pub is_loop: bool,
    /// The chain went on past the maximum number of hops.
    pub too_long: bool,
}

/// Follow stored redirects from `url`; `None` when the URL is unknown.
pub async fn redirect_chain(pool: &PgPool, url: &str, max_hops: usize) -> Result<Option<RedirectChain>, sqlx::Error> {
    let start: Option<i64> =
        sqlx::query_scalar("SELECT id FROM urls WHERE url = $1").bind(url).fetch_optional(pool).await?;
    let Some(mut current) = start else { return Ok(None) };

    let mut hops: Vec<RedirectHop> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let (mut is_loop, mut too_long) = (false, false);
    loop {
        let row: (String, Option<i16>, Option<i64>, Option<String>) = sqlx::query_as(
            "SELECT u.url, p.status, p.redirect_url_id, p.redirect_kind
             FROM urls u LEFT JOIN pages p ON p.url_id = u.id WHERE u.id = $1",
        )
        .bind(current)
        .fetch_one(pool)
        .await?;
        let (hop_url, status, next, kind) = row;
        if !seen.insert(current) {
            is_loop = true;
            hops.push(RedirectHop { url: hop_url, status, kind: None });
            break;
        }
        hops.push(RedirectHop { url: hop_url, status, kind: kind.clone() });
        match next {
            Some(_) if hops.len() > max_hops => {
                too_long = true;
                break;
            }
            Some(next) => current = next,
            None => break,
        }
    }
    let last = hops.last().map(|h| (h.url.clone(), h.status)).unwrap_or_default();
    Ok(Some(RedirectChain {
        hop_count: hops.len().saturating_sub(1),
        final_url: last.0,
        final_status: last.1,
        is_loop,
        too_long,
        hops,
    }))
}
