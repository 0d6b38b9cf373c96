//! Loading the link graph for ranking and storing the scores.

use std::collections::HashMap;
use std::time::Instant;

use sqlx::PgPool;

use crate::rank::{pagerank, scale, scale_to_graph};

/// What a rank run computed.
#[derive(Debug, Clone, Copy)]
pub struct RankSummary {
    pub urls: usize,
    pub domains: usize,
    pub iterations: usize,
    pub seconds: f64,
}

/// Compute URL rank over followed live links between URLs, and domain rank over the
/// links between distinct registrable domains, and replace the stored scores.
///
/// NOTE: the whole edge list is held in memory, about 16 bytes per link; an index of
/// billions of links would need a partitioned, out-of-core computation instead.
pub async fn recompute(pool: &PgPool) -> Result<RankSummary, sqlx::Error> {
    let started = Instant::now();
    let edges: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT DISTINCT l.source_url_id, l.target_url_id
         FROM links l LEFT JOIN pages p ON p.url_id = l.source_url_id
         WHERE l.lost_at IS NULL AND NOT l.nofollow AND NOT COALESCE(p.nofollow, false)
           AND l.source_url_id <> l.target_url_id",
    )
    .fetch_all(pool)
    .await?;

    let (url_ids, url_edges) = index_graph(edges.iter().copied());
    let (url_scores, iterations) = pagerank(url_ids.len(), &url_edges);
    let url_rating = scale(&url_scores);

    let domain_edges: Vec<(String, String)> = sqlx::query_as(
        "SELECT DISTINCT s.domain, t.domain
         FROM links l
         JOIN urls s ON s.id = l.source_url_id
         JOIN urls t ON t.id = l.target_url_id
         LEFT JOIN pages p ON p.url_id = l.source_url_id
         WHERE l.lost_at IS NULL AND NOT l.nofollow AND NOT COALESCE(p.nofollow, false)
           AND s.domain IS NOT NULL AND t.domain IS NOT NULL AND s.domain <> t.domain",
    )
    .fetch_all(pool)
    .await?;
    let (domains, domain_index_edges) = index_graph(domain_edges.into_iter());
    let (domain_scores, _) = pagerank(domains.len(), &domain_index_edges);
    let domain_rating = scale_to_graph(&domain_scores);

    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM url_rank").execute(&mut *tx).await?;
    sqlx::query(
        "INSERT INTO url_rank (url_id, pagerank, score)
         SELECT * FROM UNNEST($1::int8[], $2::float8[], $3::float8[])",
    )
    .bind(&url_ids)
    .bind(&url_scores)
    .bind(&url_rating)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM domain_rank").execute(&mut *tx).await?;
    sqlx::query(
        "INSERT INTO domain_rank (domain, pagerank, score)
         SELECT * FROM UNNEST($1::text[], $2::float8[], $3::float8[])",
    )
    .bind(&domains)
    .bind(&domain_scores)
    .bind(&domain_rating)
    .execute(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO rank_runs (urls, domains, iterations) VALUES ($1, $2, $3)")
        .bind(url_ids.len() as i64)
        .bind(domains.len() as i64)
        .bind(iterations as i32)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;

    Ok(RankSummary {
        urls: url_ids.len(),
        domains: domains.len(),
        iterations,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Number the nodes of an edge list in order of first appearance, sorted for determinism.
fn index_graph<K: Ord + Clone + std::hash::Hash>(edges: impl Iterator<Item = (K, K)>) -> (Vec<K>, Vec<(usize, usize)>) {
    let mut edges: Vec<(K, K)> = edges.collect();
    edges.sort();
    let mut nodes: Vec<K> = edges.iter().flat_map(|(s, t)| [s.clone(), t.clone()]).collect();
    nodes.sort();
    nodes.dedup();
    let index: HashMap<K, usize> = nodes.iter().cloned().enumerate().map(|(i, k)| (k, i)).collect();
    let indexed = edges.iter().map(|(s, t)| (index[s], index[t])).collect();
    (nodes, indexed)
}
