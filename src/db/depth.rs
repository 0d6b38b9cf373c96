//! Depth walks: lowering the depths of stored URLs when a shorter path to them turns up,
//! and the depths of the pages below them.
//!
//! Many fetches run at once, so a URL is often first found through a longer path than its
//! shortest one. Without the walk, the chain of the unstable book's pages, which link only
//! to the previous and the next page, was first crawled from a deep entry and cut at
//! MAX_DEPTH, although a shorter path to it existed.
//!
//! The DbWriter only queues a walk, in `depth_walks`, inside the transaction of the batch
//! that found the shorter path. The walk runs later, in transactions of its own, because
//! lowering the pages below a page reached late can change tens of thousands of rows, and
//! no batch could commit while it ran.
//!
//! The walk follows the same edges that give a discovered URL its depth: the live links of
//! fetched pages, and their redirects, HTTP or meta refresh, whose targets are stored on
//! the page rather than as links.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};

/// Queue a walk from each stored URL to which a batch found a shorter path, given with the
/// depth of that path. A URL queued already keeps the smaller depth.
pub async fn queue(tx: &mut Transaction<'_, Postgres>, shallower: &[(i64, i32)]) -> Result<(), sqlx::Error> {
    let (ids, depths): (Vec<i64>, Vec<i32>) = shallower.iter().copied().unzip();
    queue_ids(tx, &ids, &depths).await
}

async fn queue_ids(tx: &mut Transaction<'_, Postgres>, ids: &[i64], depths: &[i32]) -> Result<(), sqlx::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    // In id order, so that two transactions queueing overlapping walks do not deadlock.
    sqlx::query(
        "INSERT INTO depth_walks (url_id, site_id, depth)
         SELECT t.id, u.site_id, t.depth
         FROM UNNEST($1::int8[], $2::int4[]) AS t(id, depth) JOIN urls u ON u.id = t.id
         ORDER BY t.id
         ON CONFLICT (url_id) DO UPDATE SET depth = EXCLUDED.depth WHERE EXCLUDED.depth < depth_walks.depth",
    )
    .bind(ids)
    .bind(depths)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Counts of one round of walks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WalkSummary {
    /// Queued walks taken in this round.
    pub walks: u64,
    /// URLs given a smaller depth.
    pub lowered: u64,
    /// URLs skipped for depth that the smaller depth put back in line.
    pub requeued: u64,
    /// URLs queued again because a write locked their rows or stored their results during
    /// the walk.
    pub deferred: u64,
}

/// A URL the walk reached, with the depth it can have and its fetch time as the walk saw it.
#[derive(sqlx::FromRow)]
struct Reached {
    id: i64,
    depth: i32,
    last_fetched_at: Option<DateTime<Utc>>,
}

/// Run up to `limit` queued walks and lower the depths they reach, down to MAX_DEPTH.
///
/// The walk skips the URL rows that a write has locked, and queues them again with the
/// depth found for them, so it never waits for a DbWriter. A DbWriter that needs a row the
/// walk has locked waits only for the walk's short update and commit. A URL whose
/// result was written while the walk ran may have links the walk did not see, so it is
/// queued again too, and the next round follows them.
///
/// The queue changes at the end can still wait for a write that queues the same URL. A
/// deadlock between the two fails one of them, and both retry.
pub async fn walk(pool: &PgPool, max_depth: i32, limit: i64) -> Result<WalkSummary, sqlx::Error> {
    let seeds: Vec<(i64, i32)> = sqlx::query_as("SELECT url_id, depth FROM depth_walks ORDER BY url_id LIMIT $1")
        .bind(limit)
        .fetch_all(pool)
        .await?;
    if seeds.is_empty() {
        return Ok(WalkSummary::default());
    }
    let (seed_ids, seed_depths): (Vec<i64>, Vec<i32>) = seeds.iter().copied().unzip();

    let mut tx = pool.begin().await?;
    let reached = reach(&mut tx, &seed_ids, &seed_depths, max_depth).await?;

    let ids: Vec<i64> = reached.iter().map(|r| r.id).collect();
    let locked: HashMap<i64, Option<DateTime<Utc>>> = sqlx::query_as(
        "SELECT id, last_fetched_at FROM urls WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE SKIP LOCKED",
    )
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    let (mut lower, mut defer) = (Vec::new(), Vec::new());
    for url in &reached {
        match locked.get(&url.id) {
            Some(fetched) if *fetched == url.last_fetched_at => lower.push((url.id, url.depth)),
            Some(_) => {
                lower.push((url.id, url.depth));
                defer.push((url.id, url.depth));
            }
            None => defer.push((url.id, url.depth)),
        }
    }
    let (lowered, requeued) = lower_depths(&mut tx, &lower, max_depth).await?;
    tx.commit().await?;

    // The queue is changed after the depths commit, so that a walk cut short by a crash is
    // run again rather than lost. A seed queued again with a smaller depth meanwhile stays.
    let mut tx = pool.begin().await?;
    let (defer_ids, defer_depths): (Vec<i64>, Vec<i32>) = defer.iter().copied().unzip();
    queue_ids(&mut tx, &defer_ids, &defer_depths).await?;
    let deferred: HashSet<i64> = defer_ids.iter().copied().collect();
    let done: Vec<(i64, i32)> = seeds.into_iter().filter(|(id, _)| !deferred.contains(id)).collect();
    let (done_ids, done_depths): (Vec<i64>, Vec<i32>) = done.into_iter().unzip();
    sqlx::query(
        "DELETE FROM depth_walks w USING UNNEST($1::int8[], $2::int4[]) AS t(id, depth)
         WHERE w.url_id = t.id AND w.depth >= t.depth",
    )
    .bind(&done_ids)
    .bind(&done_depths)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;

    Ok(WalkSummary { walks: seed_ids.len() as u64, lowered, requeued, deferred: defer.len() as u64 })
}

/// Follow live links and redirects from the seeds, only where a depth gets smaller, and
/// only down to MAX_DEPTH, so the walk ends. Returns each URL reached with its smallest
/// depth.
async fn reach(
    tx: &mut Transaction<'_, Postgres>,
    ids: &[i64],
    depths: &[i32],
    max_depth: i32,
) -> Result<Vec<Reached>, sqlx::Error> {
    // A seed whose stored depth is already the queued one is walked all the same: an
    // earlier walk queued it again because a write changed its links meanwhile.
    sqlx::query_as(
        "WITH RECURSIVE lowered(id, depth) AS (
             SELECT t.id, t.depth
             FROM UNNEST($1::int8[], $2::int4[]) AS t(id, depth) JOIN urls u ON u.id = t.id
             WHERE t.depth <= u.depth
           UNION
             -- A recursive query may name itself only once, so both kinds of edge come
             -- from one lateral subquery.
             SELECT edge.target, lowered.depth + 1
             FROM lowered
             CROSS JOIN LATERAL (
                 SELECT l.target_url_id FROM links l WHERE l.source_url_id = lowered.id AND l.lost_at IS NULL
               UNION ALL
                 SELECT p.redirect_url_id FROM pages p WHERE p.url_id = lowered.id AND p.redirect_url_id IS NOT NULL
             ) AS edge(target)
             JOIN urls u ON u.id = edge.target
             WHERE lowered.depth < $3 AND lowered.depth + 1 < u.depth
         )
         SELECT b.id, b.depth, u.last_fetched_at
         FROM (SELECT id, min(depth) AS depth FROM lowered GROUP BY id) b JOIN urls u ON u.id = b.id",
    )
    .bind(ids)
    .bind(depths)
    .bind(max_depth)
    .fetch_all(&mut **tx)
    .await
}

/// Give the URLs their smaller depths, and queue again the ones skipped for depth that
/// the new depth brings within MAX_DEPTH. Returns how many were lowered and requeued.
async fn lower_depths(
    tx: &mut Transaction<'_, Postgres>,
    lower: &[(i64, i32)],
    max_depth: i32,
) -> Result<(u64, u64), sqlx::Error> {
    if lower.is_empty() {
        return Ok((0, 0));
    }
    let (ids, depths): (Vec<i64>, Vec<i32>) = lower.iter().copied().unzip();
    let requeued: Vec<bool> = sqlx::query_scalar(
        "WITH target AS (
             SELECT t.id, t.depth, u.state = 'skipped' AND u.state_reason = 'max_depth' AND t.depth <= $3 AS requeue
             FROM UNNEST($1::int8[], $2::int4[]) AS t(id, depth) JOIN urls u ON u.id = t.id
             WHERE t.depth < u.depth
         )
         UPDATE urls SET depth = t.depth,
                state = CASE WHEN t.requeue THEN 'pending' ELSE urls.state END,
                state_reason = CASE WHEN t.requeue THEN NULL ELSE urls.state_reason END,
                next_fetch_at = CASE WHEN t.requeue THEN now() ELSE urls.next_fetch_at END
         FROM target AS t
         WHERE urls.id = t.id
         RETURNING t.requeue",
    )
    .bind(&ids)
    .bind(&depths)
    .bind(max_depth)
    .fetch_all(&mut **tx)
    .await?;
    let requeued_count = requeued.iter().filter(|r| **r).count() as u64;
    Ok((requeued.len() as u64, requeued_count))
}
