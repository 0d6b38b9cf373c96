//! The depth walk on a hand-built link graph: which depths it lowers, which URL skipped
//! for depth it puts back in line, and what it defers when a write has locked a row.

mod common;

use std::collections::HashMap;

use open_ahrefs::db::depth::{self, WalkSummary};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection};
use tokio::runtime::{Builder, Runtime};

const MAX_DEPTH: i32 = 4;

/// A site whose pages form the chain `/a → /b → /c → /d → /e`, each fetched at the depth
/// of that chain from a seed at depth 0, so `/e` (depth 5) was skipped for depth. `/short`
/// (depth 1) is fetched and links to `/c`, a shorter path than the chain's. Apart from
/// them, `/old` (depth 4) responded with a redirect to `/new` (depth 5, skipped for depth).
struct Graph {
    runtime: Runtime,
    pool: PgPool,
    database_url: String,
    ids: HashMap<&'static str, i64>,
}

impl Graph {
    fn build(name: &str) -> Self {
        let database_url = common::fresh_database(&common::unique(name));
        let runtime = Builder::new_current_thread().enable_all().build().unwrap();
        let pool = runtime.block_on(async {
            let pool = PgPoolOptions::new().max_connections(2).connect(&database_url).await.unwrap();
            open_ahrefs::db::migrate(&pool).await.unwrap();
            pool
        });
        common::psql(&database_url, "INSERT INTO sites (host, seed_url) VALUES ('site.test', 'http://site.test/a')");
        let mut ids = HashMap::new();
        for (path, depth, state) in [
            ("/a", 1, "fetched"),
            ("/b", 2, "fetched"),
            ("/c", 3, "fetched"),
            ("/d", 4, "fetched"),
            ("/e", 5, "skipped"),
            ("/short", 1, "fetched"),
            ("/old", 4, "fetched"),
            ("/new", 5, "skipped"),
        ] {
            let reason = if state == "skipped" { "'max_depth'" } else { "NULL" };
            let id = common::psql(
                &database_url,
                &format!(
                    "INSERT INTO urls (url, host, site_id, state, state_reason, depth, last_fetched_at)
                     VALUES ('http://site.test{path}', 'site.test', 1, '{state}', {reason}, {depth},
                             CASE WHEN '{state}' = 'fetched' THEN now() END)
                     RETURNING id"
                ),
            );
            // psql prints the returned id, then the command tag.
            let id = id.lines().next().unwrap_or_default();
            ids.insert(path, id.parse().unwrap());
        }
        for (source, target) in [("/a", "/b"), ("/b", "/c"), ("/c", "/d"), ("/d", "/e"), ("/short", "/c")] {
            common::psql(
                &database_url,
                &format!(
                    "INSERT INTO links (source_url_id, target_url_id, anchor_text, occurrence, href, nofollow, ugc,
                                        sponsored, first_seen, last_seen)
                     VALUES ({}, {}, '', 0, '{target}', false, false, false, now(), now())",
                    ids[source], ids[target]
                ),
            );
        }
        common::psql(
            &database_url,
            &format!(
                "INSERT INTO pages (url_id, site_id, fetched_at, status, redirect_url_id, redirect_kind, response_time_ms)
                 VALUES ({}, 1, now(), 301, {}, 'http', 1)",
                ids["/old"], ids["/new"]
            ),
        );
        Self { runtime, pool, database_url, ids }
    }

    /// Queue a walk from `path` at `depth`, as the DbWriter does when it finds a shorter path.
    fn queue(&self, path: &str, depth: i32) {
        self.runtime.block_on(async {
            let mut tx = self.pool.begin().await.unwrap();
            depth::queue(&mut tx, &[(self.ids[path], depth)]).await.unwrap();
            tx.commit().await.unwrap();
        });
    }

    fn walk(&self) -> WalkSummary {
        self.runtime.block_on(depth::walk(&self.pool, MAX_DEPTH, 1000)).unwrap()
    }

    fn depth(&self, path: &str) -> i64 {
        common::psql_count(&self.database_url, &format!("SELECT depth FROM urls WHERE id = {}", self.ids[path]))
    }

    fn state(&self, path: &str) -> String {
        common::psql(&self.database_url, &format!("SELECT state FROM urls WHERE id = {}", self.ids[path]))
    }

    fn queued(&self) -> String {
        common::psql(
            &self.database_url,
            "SELECT string_agg(url_id || ':' || depth, ',' ORDER BY url_id) FROM depth_walks",
        )
    }
}

#[test]
fn walk_lowers_pages_below_seed() {
    let graph = Graph::build("depth_walk_lowers");
    graph.queue("/c", 2);

    let summary = graph.walk();

    assert_eq!(summary, WalkSummary { walks: 1, lowered: 3, requeued: 1, deferred: 0 });
    assert_eq!([graph.depth("/c"), graph.depth("/d"), graph.depth("/e")], [2, 3, 4]);
    assert_eq!(graph.state("/e"), "pending");
    assert_eq!(graph.depth("/b"), 2, "the walk must not touch pages above the seed");
    assert_eq!(graph.queued(), "", "a finished walk leaves the queue");
    assert_eq!(graph.walk(), WalkSummary::default());
}

/// A redirect target has the depth of the redirecting page plus one, as a link target
/// has, so a shorter path to the redirecting page lowers it too.
#[test]
fn walk_follows_redirects() {
    let graph = Graph::build("depth_walk_redirect");
    graph.queue("/old", 2);

    let summary = graph.walk();

    assert_eq!(summary, WalkSummary { walks: 1, lowered: 2, requeued: 1, deferred: 0 });
    assert_eq!([graph.depth("/old"), graph.depth("/new")], [2, 3]);
    assert_eq!(graph.state("/new"), "pending");
}

#[test]
fn stale_walk_leaves_queue() {
    let graph = Graph::build("depth_walk_stale");
    graph.queue("/d", 6);

    let summary = graph.walk();

    assert_eq!(summary.lowered, 0);
    assert_eq!(graph.depth("/e"), 5);
    assert_eq!(graph.state("/e"), "skipped");
    assert_eq!(graph.queued(), "");
}

#[test]
fn queue_keeps_smaller_depth() {
    let graph = Graph::build("depth_walk_queue");
    graph.queue("/d", 2);
    graph.queue("/d", 3);
    assert_eq!(graph.queued(), format!("{}:2", graph.ids["/d"]));
}

/// A row that a write has locked is not waited for: the walk lowers the others and queues the
/// locked one again with the depth it found, and the next round finishes the work.
#[test]
fn walk_defers_locked_row() {
    let graph = Graph::build("depth_walk_locked");
    graph.queue("/c", 2);

    let mut writer = graph.runtime.block_on(PgConnection::connect(&graph.database_url)).unwrap();
    graph.runtime.block_on(async {
        sqlx::query("BEGIN").execute(&mut writer).await.unwrap();
        sqlx::query("SELECT id FROM urls WHERE id = $1 FOR NO KEY UPDATE")
            .bind(graph.ids["/d"])
            .execute(&mut writer)
            .await
            .unwrap();
    });

    let first = graph.walk();

    assert_eq!(first, WalkSummary { walks: 1, lowered: 2, requeued: 1, deferred: 1 });
    assert_eq!([graph.depth("/c"), graph.depth("/d"), graph.depth("/e")], [2, 4, 4]);
    assert_eq!(graph.queued(), format!("{}:3", graph.ids["/d"]));

    graph.runtime.block_on(sqlx::query("COMMIT").execute(&mut writer)).unwrap();
    let after = graph.walk();

    assert_eq!(after.deferred, 0);
    assert_eq!(graph.depth("/d"), 3);
    assert_eq!(graph.queued(), "");
}

/// A site is not done while a walk of it is queued, because the walk may put a URL back
/// in line.
#[test]
fn queued_walk_keeps_site_crawling() {
    let graph = Graph::build("depth_walk_done");
    let done = |graph: &Graph| graph.runtime.block_on(open_ahrefs::db::frontier::update_site_completion(&graph.pool));

    graph.queue("/c", 2);
    assert_eq!(done(&graph).unwrap(), Vec::new());

    graph.walk();
    assert_eq!(done(&graph).unwrap(), Vec::new(), "/e is pending again");

    common::psql(&graph.database_url, &format!("UPDATE urls SET state = 'fetched' WHERE id = {}", graph.ids["/e"]));
    assert_eq!(done(&graph).unwrap(), vec![(1, "site.test".to_string())]);
}
