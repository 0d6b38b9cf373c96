//! The frontier's queries: which URLs are due, leasing them, and site completion.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// A URL leased to the scrapers.
#[derive(Debug, sqlx::FromRow)]
pub struct LeasedUrl {
    pub id: i64,
    pub site_id: i64,
    pub url: String,
    pub host: String,
    pub depth: i32,
    pub kind: String,
    pub leased_at: DateTime<Utc>,
}

/// Put URLs whose lease ran out without a result back in line; returns how many.
pub async fn expire_leases(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let expired = sqlx::query(
        "UPDATE urls SET state = 'pending', next_fetch_at = now(), leased_until = NULL
         WHERE state = 'queued' AND leased_until < now()",
    )
    .execute(pool)
    .await?;
    Ok(expired.rows_affected())
}

/// Put fetched URLs whose revisit time has come back in line.
pub async fn schedule_revisits(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let due = sqlx::query("UPDATE urls SET state = 'pending' WHERE state = 'fetched' AND next_fetch_at <= now()")
        .execute(pool)
        .await?;
    Ok(due.rows_affected())
}

pub async fn in_flight(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM urls WHERE state = 'queued'").fetch_one(pool).await
}

/// Lease up to `limit` due URLs, at most `per_site` in flight for each site, shallowest
/// first, so that every site is crawled breadth-first and none crowds out the others.
///
/// The leased ids go to the UPDATE as an array. When the UPDATE joined `due` instead, the
/// planner expected `limit` rows and scanned all of `urls`, about 10 ms per lease on a
/// crawl of 50,000 URLs, although a lease in the tail of a crawl takes one or two.
pub async fn lease_due(
    pool: &PgPool,
    limit: i64,
    per_site: i64,
    lease: Duration,
) -> Result<Vec<LeasedUrl>, sqlx::Error> {
    sqlx::query_as(
        "WITH in_flight AS (
            SELECT site_id, count(*) AS n FROM urls WHERE state = 'queued' GROUP BY site_id
         ),
         due AS (
            SELECT d.id FROM sites s
            LEFT JOIN in_flight f ON f.site_id = s.id
            CROSS JOIN LATERAL (
                SELECT id FROM urls
                WHERE site_id = s.id AND state = 'pending' AND next_fetch_at <= now()
                ORDER BY depth, id
                LIMIT GREATEST(0, $2 - COALESCE(f.n, 0))
                FOR UPDATE SKIP LOCKED
            ) d
            LIMIT $1
         )
         UPDATE urls u SET state = 'queued', leased_at = now(), leased_until = now() + make_interval(secs => $3)
         WHERE u.id = ANY (ARRAY(SELECT id FROM due))
         RETURNING u.id, u.site_id, u.url, u.host, u.depth, u.kind, u.leased_at",
    )
    .bind(limit)
    .bind(per_site)
    .bind(lease.as_secs_f64())
    .fetch_all(pool)
    .await
}

/// Return URLs that could not be handed to Kafka, so they go out on the next tick
/// instead of waiting for their lease to run out.
pub async fn release(pool: &PgPool, ids: &[i64]) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE urls SET state = 'pending', leased_until = NULL WHERE id = ANY($1) AND state = 'queued'")
        .bind(ids)
        .execute(pool)
        .await?;
    Ok(())
}

/// Mark sites with nothing waiting or in flight as done, and sites with new work as not
/// done. Returns the sites that became done. A queued depth walk counts as work, because
/// it may put a URL skipped for depth back in line.
pub async fn update_site_completion(pool: &PgPool) -> Result<Vec<(i64, String)>, sqlx::Error> {
    sqlx::query(
        "UPDATE sites SET done_at = NULL WHERE done_at IS NOT NULL AND (
            EXISTS (SELECT 1 FROM urls WHERE urls.site_id = sites.id AND urls.state IN ('pending', 'queued'))
            OR EXISTS (SELECT 1 FROM depth_walks w WHERE w.site_id = sites.id))",
    )
    .execute(pool)
    .await?;
    sqlx::query_as(
        "UPDATE sites SET done_at = now() WHERE done_at IS NULL
            AND NOT EXISTS (SELECT 1 FROM urls WHERE urls.site_id = sites.id AND urls.state IN ('pending', 'queued'))
            AND NOT EXISTS (SELECT 1 FROM depth_walks w WHERE w.site_id = sites.id)
         RETURNING id, host",
    )
    .fetch_all(pool)
    .await
}

/// The number of URLs of each site by state, for the frontier size metric.
///
/// NOTE: this counts every URL row of every site, which takes seconds once the table
/// holds tens of millions of rows; counters kept by the DbWriter would avoid the scan.
pub async fn size_by_site(pool: &PgPool) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT s.host, u.state, count(*)
         FROM urls u JOIN sites s ON s.id = u.site_id
         WHERE u.state IN ('pending', 'queued', 'fetched')
         GROUP BY s.host, u.state",
    )
    .fetch_all(pool)
    .await
}
