//! Adding sites and reading their crawl progress.

use serde::Serialize;
use sqlx::PgPool;
use url::Url;

/// A crawled site as created.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Site {
    pub id: i64,
    pub host: String,
    pub seed_url: String,
}

/// Why a site was not added.
#[derive(Debug, thiserror::Error)]
pub enum AddSiteError {
    #[error("site for host {host} already exists with id {id}")]
    Exists { id: i64, host: String },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Create a site for the seed URL's host and queue the seed. URLs of that host already
/// known as link targets become part of the site and are queued too.
pub async fn add_site(pool: &PgPool, seed: &Url) -> Result<Site, AddSiteError> {
    let host = crate::url::site_host(seed);
    let mut tx = pool.begin().await?;

    // An insert that conflicts still uses up a value of the id sequence, so a known host is
    // looked up first, and site ids skip only when two requests add the same host at once.
    let existing: Option<i64> =
        sqlx::query_scalar("SELECT id FROM sites WHERE host = $1").bind(&host).fetch_optional(&mut *tx).await?;
    if let Some(id) = existing {
        return Err(AddSiteError::Exists { id, host });
    }
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO sites (host, seed_url) VALUES ($1, $2) ON CONFLICT (host) DO NOTHING RETURNING id",
    )
    .bind(&host)
    .bind(seed.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(id) = id else {
        let id: i64 =
            sqlx::query_scalar("SELECT id FROM sites WHERE host = $1").bind(&host).fetch_one(&mut *tx).await?;
        return Err(AddSiteError::Exists { id, host });
    };

    sqlx::query(
        "INSERT INTO urls (url, host, site_id, state, depth, next_fetch_at, domain)
         VALUES ($1, $2, $3, 'pending', 0, now(), $4)
         ON CONFLICT (url) DO UPDATE SET site_id = EXCLUDED.site_id, depth = 0, state = 'pending', next_fetch_at = now()",
    )
    .bind(seed.as_str())
    .bind(&host)
    .bind(id)
    .bind(crate::url::registrable_domain(&host))
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE urls SET site_id = $1, state = 'pending', next_fetch_at = now()
         WHERE host = $2 AND state = 'external'",
    )
    .bind(id)
    .bind(&host)
    .execute(&mut *tx)
    .await?;

    // Sitemaps named in robots.txt are added when the scrapers read it; /sitemap.xml is
    // the conventional place of the others.
    if let Ok(sitemap) = seed.join("/sitemap.xml") {
        sqlx::query(
            "INSERT INTO urls (url, host, site_id, state, kind, depth, next_fetch_at, domain)
             VALUES ($1, $2, $3, 'pending', 'sitemap', 0, now(), $4)
             ON CONFLICT (url) DO NOTHING",
        )
        .bind(sitemap.as_str())
        .bind(&host)
        .bind(id)
        .bind(crate::url::registrable_domain(&host))
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "UPDATE sites SET url_count = (SELECT count(*) FROM urls WHERE site_id = $1 AND kind = 'page') WHERE id = $1",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;

    tx.commit().await?;
    Ok(Site { id, host, seed_url: seed.to_string() })
}

/// A site with its crawl progress, as the API returns it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct SiteProgress {
    pub id: i64,
    pub host: String,
    /// The host as people read it, internationalized names in Unicode.
    #[sqlx(skip)]
    pub host_display: String,
    pub seed_url: String,
    /// `crawling` while a URL of the site is waiting or in flight, or a depth walk is
    /// queued, else `done`.
    pub state: String,
    pub urls_discovered: i64,
    pub urls_fetched: i64,
    /// URLs robots.txt or the address policy refused.
    pub urls_blocked: i64,
    /// URLs a crawl limit or spider-trap guard stopped.
    pub urls_skipped: i64,
    #[sqlx(flatten)]
    pub responses: ResponseCounts,
    /// Live `<a href>` rows on the site's fetched pages that resolve to http(s).
    pub links: i64,
}

/// Fetched pages by status class.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ResponseCounts {
    #[serde(rename = "2xx")]
    pub status_2xx: i64,
    #[serde(rename = "3xx")]
    pub status_3xx: i64,
    #[serde(rename = "4xx")]
    pub status_4xx: i64,
    #[serde(rename = "5xx")]
    pub status_5xx: i64,
    /// Fetches that got no response at all.
    pub error: i64,
}

// One pass over the site's URLs and one over its pages. Sitemaps are fetched like pages
// but are not pages of the site, so their rows are left out by id.
//
// NOTE: both passes read every URL and page row of the site, about 40 ms per call for
// 50,000 URLs. Counters kept by the DbWriter and the frontier would make the call cost
// the same for any size of site.
const PROGRESS_SQL: &str = "
    SELECT s.id, s.host, s.seed_url,
        CASE WHEN EXISTS (SELECT 1 FROM urls w WHERE w.site_id = s.id AND w.state = 'pending')
                  OR EXISTS (SELECT 1 FROM urls w WHERE w.site_id = s.id AND w.state = 'queued')
                  OR EXISTS (SELECT 1 FROM depth_walks dw WHERE dw.site_id = s.id)
             THEN 'crawling' ELSE 'done' END AS state,
        u.urls_discovered, u.urls_blocked, u.urls_skipped,
        p.urls_fetched, p.status_2xx, p.status_3xx, p.status_4xx, p.status_5xx, p.error, p.links
    FROM sites s,
    LATERAL (
        SELECT count(*) FILTER (WHERE kind = 'page') AS urls_discovered,
            count(*) FILTER (WHERE state = 'blocked') AS urls_blocked,
            count(*) FILTER (WHERE state = 'skipped') AS urls_skipped
        FROM urls WHERE urls.site_id = s.id
    ) u,
    LATERAL (
        SELECT count(*) AS urls_fetched,
            count(*) FILTER (WHERE status BETWEEN 200 AND 299) AS status_2xx,
            count(*) FILTER (WHERE status BETWEEN 300 AND 399) AS status_3xx,
            count(*) FILTER (WHERE status BETWEEN 400 AND 499) AS status_4xx,
            count(*) FILTER (WHERE status BETWEEN 500 AND 599) AS status_5xx,
            count(*) FILTER (WHERE status IS NULL) AS error,
            COALESCE(sum(link_count), 0) AS links
        FROM pages
        WHERE pages.site_id = s.id
          AND pages.url_id NOT IN (SELECT sm.id FROM urls sm WHERE sm.site_id = s.id AND sm.kind = 'sitemap')
    ) p";

pub async fn site_progress(pool: &PgPool, id: i64) -> Result<Option<SiteProgress>, sqlx::Error> {
    let site: Option<SiteProgress> =
        sqlx::query_as(&format!("{PROGRESS_SQL} WHERE s.id = $1")).bind(id).fetch_optional(pool).await?;
    Ok(site.map(with_display_host))
}

/// Return the stored reason of a pending URL of the site, with that URL, which tells why
/// part of a crawl waits, such as an unavailable robots.txt. `None` when no pending URL
/// has a reason.
///
/// NOTE: it reads the site's pending URLs until one has a reason, so a large crawl with
/// none reads them all. The console queries it only when it renders a crawling site's page.
pub async fn waiting_reason(pool: &PgPool, id: i64) -> Result<Option<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT url, state_reason FROM urls
         WHERE site_id = $1 AND state = 'pending' AND state_reason IS NOT NULL
         LIMIT 1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Check whether a site with this id exists.
pub async fn site_exists(pool: &PgPool, id: i64) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM sites WHERE id = $1)").bind(id).fetch_one(pool).await
}

pub async fn list_sites(pool: &PgPool) -> Result<Vec<SiteProgress>, sqlx::Error> {
    let sites: Vec<SiteProgress> = sqlx::query_as(&format!("{PROGRESS_SQL} ORDER BY s.id")).fetch_all(pool).await?;
    Ok(sites.into_iter().map(with_display_host).collect())
}

fn with_display_host(mut site: SiteProgress) -> SiteProgress {
    site.host_display = crate::url::display_host(&site.host);
    site
}

/// Queue every fetched or blocked URL of a site again; returns how many, or `None` when
/// the site does not exist.
pub async fn recrawl(pool: &PgPool, id: i64) -> Result<Option<u64>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let exists: Option<i64> =
        sqlx::query_scalar("SELECT id FROM sites WHERE id = $1").bind(id).fetch_optional(&mut *tx).await?;
    if exists.is_none() {
        return Ok(None);
    }
    let queued = sqlx::query(
        "UPDATE urls SET state = 'pending', next_fetch_at = now(), retries = 0, state_reason = NULL
         WHERE site_id = $1 AND state IN ('fetched', 'blocked')",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(Some(queued))
}
