//! The answers users come for, on a fixture link graph of two domains: backlinks,
//! referring domains, anchors, link rank, the audit, exports and the CLI.

mod common;

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::time::Duration;

use common::{Canned, Cluster, FixtureServer};
use serde_json::Value;

/// Two sites on names mapped to 127.0.0.1: `www.alpha.test` and `beta.test`.
struct Graph {
    alpha: FixtureServer,
    beta: FixtureServer,
}

impl Graph {
    fn alpha(&self, path: &str) -> String {
        format!("http://www.alpha.test:{}{path}", self.alpha.port)
    }

    fn beta(&self, path: &str) -> String {
        format!("http://beta.test:{}{path}", self.beta.port)
    }
}

fn start_graph() -> Graph {
    let graph = Graph {
        alpha: FixtureServer::start(None, HashMap::new(), Duration::ZERO),
        beta: FixtureServer::start(None, HashMap::new(), Duration::ZERO),
    };
    let (alpha_port, beta_port) = (graph.alpha.port, graph.beta.port);
    let beta = |path: &str| format!("http://beta.test:{beta_port}{path}");
    let alpha = |path: &str| format!("http://www.alpha.test:{alpha_port}{path}");

    let mut alpha_routes = HashMap::new();
    alpha_routes.insert(
        "/".to_string(),
        Canned::html(&format!(
            r#"<title>Alpha home</title><h1>Alpha</h1>
            <a href="/p1">P1</a><a href="/p2">P2</a>
            <a href="{}">Beta home</a><a href="{}" rel="nofollow">Target</a>"#,
            beta("/"),
            beta("/target")
        )),
    );
    alpha_routes.insert(
        "/p1".to_string(),
        Canned::html(&format!(
            r#"<title>Alpha page</title><a href="/p2">P2 again</a><a href="{}">Target</a>"#,
            beta("/target")
        )),
    );
    alpha_routes.insert(
        "/p2".to_string(),
        Canned::html(r#"<title>Alpha page</title><a href="/">Home</a><a href="/missing">Gone</a>"#),
    );
    let mut beta_routes = HashMap::new();
    beta_routes.insert(
        "/".to_string(),
        Canned::html(&format!(r#"<title>Beta</title><a href="/target">Target</a><a href="{}">Alpha</a>"#, alpha("/"))),
    );
    beta_routes.insert("/target".to_string(), Canned::html(r#"<title>Target page</title><a href="/">Home</a>"#));

    graph.alpha.set_routes(alpha_routes);
    graph.beta.set_routes(beta_routes);
    graph
}

fn crawl_graph(name: &str) -> (Graph, Cluster, i64, i64) {
    let graph = start_graph();
    let resolve = format!("www.alpha.test:{}:127.0.0.1,beta.test:{}:127.0.0.1", graph.alpha.port, graph.beta.port);
    let cluster = Cluster::start(name, 1, &[("RESOLVE", &resolve), ("RANK_INTERVAL_SECONDS", "0")]);
    let alpha_id = cluster.add_site(&graph.alpha("/"));
    let beta_id = cluster.add_site(&graph.beta("/"));
    cluster.wait_done(alpha_id, Duration::from_secs(120));
    cluster.wait_done(beta_id, Duration::from_secs(120));
    (graph, cluster, alpha_id, beta_id)
}

fn sources(body: &Value) -> Vec<String> {
    let mut urls: Vec<String> =
        body["items"].as_array().unwrap().iter().map(|l| l["source_url"].as_str().unwrap().to_string()).collect();
    urls.sort();
    urls
}

#[test]
fn backlinks_domains_anchors_and_reports() {
    let (graph, cluster, alpha_id, _beta_id) = crawl_graph("link_index");
    let target = graph.beta("/target");

    let (_, all) = cluster.get(&format!("/api/v1/backlinks?target={target}"));
    assert_eq!(all["total"], 3, "{all}");
    assert_eq!(sources(&all), [graph.beta("/"), graph.alpha("/"), graph.alpha("/p1")]);
    let (_, external) = cluster.get(&format!("/api/v1/backlinks?target={target}&external=true"));
    assert_eq!(sources(&external), [graph.alpha("/"), graph.alpha("/p1")]);
    let (_, followed) = cluster.get(&format!("/api/v1/backlinks?target={target}&follow=true"));
    assert_eq!(sources(&followed), [graph.beta("/"), graph.alpha("/p1")]);

    // Keyset pagination walks every backlink exactly once.
    let mut seen = HashSet::new();
    let mut cursor = String::new();
    loop {
        let (_, page) = cluster.get(&format!("/api/v1/backlinks?target={target}&limit=1&cursor={cursor}"));
        for item in page["items"].as_array().unwrap() {
            assert!(seen.insert(item["link_id"].as_i64().unwrap()), "a link came twice");
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 3);

    let (_, by_host) =
        cluster.get(&format!("/api/v1/backlinks?target=beta.test:{}&mode=host&limit=1000", graph.beta.port));
    assert_eq!(by_host["total"], 5, "{by_host}");
    let (_, domains) = cluster.get("/api/v1/referring-domains?target=beta.test&mode=domain");
    let domain_counts: Vec<(String, i64)> = domains["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["domain"].as_str().unwrap().to_string(), d["backlinks"].as_i64().unwrap()))
        .collect();
    assert_eq!(domain_counts, [("alpha.test".to_string(), 3), ("beta.test".to_string(), 2)]);

    let (_, anchors) = cluster.get("/api/v1/anchors?target=beta.test");
    let anchor_counts: Vec<(String, i64)> = anchors["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["anchor_text"].as_str().unwrap().to_string(), a["backlinks"].as_i64().unwrap()))
        .collect();
    assert_eq!(anchor_counts[0], ("Target".to_string(), 3));
    assert!(anchor_counts.contains(&("Beta home".to_string(), 1)));
    assert!(anchor_counts.contains(&("Home".to_string(), 1)));

    let (_, best) = cluster.get(&format!("/api/v1/sites/{alpha_id}/best-by-links"));
    assert_eq!(best["items"][0]["url"], graph.alpha("/"), "{best}");
    assert_eq!(best["items"][0]["external_inlinks"], 1);
    assert_eq!(best["items"][0]["internal_inlinks"], 1);

    let (_, broken) = cluster.get(&format!("/api/v1/sites/{alpha_id}/broken-links"));
    assert_eq!(broken["items"].as_array().unwrap().len(), 1, "{broken}");
    assert_eq!(broken["items"][0]["target_url"], graph.alpha("/missing"));
    assert_eq!(broken["items"][0]["source_url"], graph.alpha("/p2"));

    let (_, audit) = cluster.get(&format!("/api/v1/sites/{alpha_id}/audit"));
    let finding = |code: &str| -> Value {
        audit["findings"].as_array().unwrap().iter().find(|f| f["code"] == code).cloned().unwrap_or(Value::Null)
    };
    assert_eq!(finding("http_4xx")["count"], 1, "{audit}");
    assert_eq!(finding("http_4xx")["examples"][0]["detail"], "1 inlinks");
    assert_eq!(finding("broken_links")["count"], 1);
    assert_eq!(finding("title_duplicate")["count"], 2);
    assert_eq!(finding("description_missing")["count"], 3);
    assert_eq!(finding("h1_missing")["count"], 2);
    assert_eq!(finding("nofollow_internal_links"), Value::Null);
    assert_eq!(audit["findings"][0]["severity"], "error");

    let (_, page) = cluster.get(&format!("/api/v1/pages/{}", url_id(&cluster, &graph.alpha("/"))));
    assert_eq!(page["outlinks"], 4);
    assert_eq!(page["inlinks"], 2);
    let (_, outlinks) = cluster.get(&format!("/api/v1/pages/{}/outlinks", url_id(&cluster, &graph.alpha("/p2"))));
    let missing = outlinks["items"].as_array().unwrap().iter().find(|l| l["url"] == graph.alpha("/missing")).unwrap();
    assert_eq!(missing["status"], 404);
}

fn url_id(cluster: &Cluster, url: &str) -> i64 {
    cluster.sql_count(&format!("SELECT id FROM urls WHERE url = '{url}'"))
}

/// PageRank by a different method than the product's: the dense Google matrix, iterated.
fn dense_pagerank(n: usize, edges: &[(usize, usize)]) -> Vec<f64> {
    let d = 0.85;
    let mut matrix = vec![vec![0.0; n]; n];
    for source in 0..n {
        let targets: HashSet<usize> = edges.iter().filter(|(s, _)| *s == source).map(|(_, t)| *t).collect();
        for target in 0..n {
            let follow = if targets.is_empty() {
                1.0 / n as f64
            } else if targets.contains(&target) {
                1.0 / targets.len() as f64
            } else {
                0.0
            };
            matrix[target][source] = d * follow + (1.0 - d) / n as f64;
        }
    }
    let mut x = vec![1.0 / n as f64; n];
    for _ in 0..500 {
        x = (0..n).map(|row| (0..n).map(|col| matrix[row][col] * x[col]).sum()).collect();
    }
    x
}

#[test]
fn rank_matches_independent_pagerank() {
    let (_graph, cluster, _, _) = crawl_graph("rank");
    let output = Command::new(env!("CARGO_BIN_EXE_open-ahrefs"))
        .arg("rank")
        .env("DATABASE_URL", &cluster.database_url)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("ranked"));

    let edges_text = common::psql(
        &cluster.database_url,
        "SELECT DISTINCT l.source_url_id || ' ' || l.target_url_id FROM links l LEFT JOIN pages p ON p.url_id = l.source_url_id
         WHERE l.lost_at IS NULL AND NOT l.nofollow AND NOT COALESCE(p.nofollow, false) AND l.source_url_id <> l.target_url_id",
    );
    let edges: Vec<(i64, i64)> = edges_text
        .lines()
        .map(|line| {
            let (s, t) = line.split_once(' ').unwrap();
            (s.parse().unwrap(), t.parse().unwrap())
        })
        .collect();
    let mut nodes: Vec<i64> = edges.iter().flat_map(|(s, t)| [*s, *t]).collect();
    nodes.sort();
    nodes.dedup();
    let index: HashMap<i64, usize> = nodes.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let indexed: Vec<(usize, usize)> = edges.iter().map(|(s, t)| (index[s], index[t])).collect();
    let expected = dense_pagerank(nodes.len(), &indexed);

    let stored = common::psql(&cluster.database_url, "SELECT url_id || ' ' || pagerank FROM url_rank");
    let stored: HashMap<i64, f64> = stored
        .lines()
        .map(|line| {
            let (id, rank) = line.split_once(' ').unwrap();
            (id.parse().unwrap(), rank.parse().unwrap())
        })
        .collect();
    assert_eq!(stored.len(), nodes.len());
    for (id, i) in &index {
        assert!((stored[id] - expected[*i]).abs() < 1e-6, "URL {id}: stored {} expected {}", stored[id], expected[*i]);
    }
    let ratings = common::psql(&cluster.database_url, "SELECT min(score)::int || ' ' || max(score)::int FROM url_rank");
    assert_eq!(ratings, "0 100");
    let domains = common::psql(&cluster.database_url, "SELECT count(*) FROM domain_rank");
    assert_eq!(domains, "2");
}

#[test]
fn exports_and_cli_output() {
    let (graph, cluster, alpha_id, _) = crawl_graph("exports");

    let csv = ureq::get(&format!("{}/api/v1/exports/links.csv?site_id={alpha_id}", cluster.api)).call().unwrap();
    assert_eq!(csv.header("Content-Type"), Some("text/csv; charset=utf-8"));
    let csv = csv.into_string().unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "source_url,target_url,anchor_text,href,nofollow,ugc,sponsored,first_seen,last_seen,lost_at");
    assert_eq!(lines.len(), 1 + 8, "{csv}");

    let json: Value =
        ureq::get(&format!("{}/api/v1/exports/backlinks.json?target={}", cluster.api, graph.beta("/target")))
            .call()
            .unwrap()
            .into_json()
            .unwrap();
    assert_eq!(json.as_array().unwrap().len(), 3);
    // JSON exports keep the API's types: booleans, and times in RFC 3339.
    let first = &json[0];
    assert!(first["nofollow"].is_boolean(), "{first}");
    let first_seen = first["first_seen"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(first_seen).is_ok(), "{first_seen}");
    assert!(first_seen.ends_with('Z'), "{first_seen}");
    assert!(first["lost_at"].is_null(), "{first}");

    let (_, pages) = cluster.get(&format!("/api/v1/exports/pages.json?site_id={alpha_id}"));
    let page = &pages[0];
    assert!(page["status"].is_i64(), "{page}");
    assert!(page["depth"].is_i64(), "{page}");
    assert!(page["noindex"].is_boolean(), "{page}");
    let audit_csv = ureq::get(&format!("{}/api/v1/exports/audit.csv?site_id={alpha_id}", cluster.api))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(audit_csv.lines().any(|l| l.starts_with("http_4xx,error,")), "{audit_csv}");

    let output = Command::new(env!("CARGO_BIN_EXE_open-ahrefs"))
        .args(["backlinks", &graph.beta("/target"), "--api", &cluster.api])
        .env("COLUMNS", "100")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.lines().all(|l| l.chars().count() <= 100), "{stdout}");
    assert!(stdout.contains("3 of 3 backlinks"), "{stdout}");
    assert!(stdout.contains("nofollow"), "{stdout}");

    let output = Command::new(env!("CARGO_BIN_EXE_open-ahrefs"))
        .args(["audit", &alpha_id.to_string(), "--json", "--api", &cluster.api])
        .output()
        .unwrap();
    let audit: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(audit["findings"].as_array().unwrap().iter().any(|f| f["code"] == "broken_links"));
}

#[test]
fn large_export_streams_in_flat_memory() {
    let (graph, cluster, alpha_id, _) = crawl_graph("export_memory");
    // 300,000 extra link rows from the home page, about 60 MB of CSV.
    let home = url_id(&cluster, &graph.alpha("/"));
    let p1 = url_id(&cluster, &graph.alpha("/p1"));
    common::psql(
        &cluster.database_url,
        &format!(
            "INSERT INTO links (source_url_id, target_url_id, anchor_text, occurrence, href, nofollow, ugc, sponsored,
                                first_seen, last_seen)
             SELECT {home}, {p1}, 'bulk anchor text to make the row a realistic size', n, '/p1?filler', false, false, false,
                    now(), now()
             FROM generate_series(1, 300000) AS n"
        ),
    );
    let before = cluster.admin_rss_kib();
    let mut reader = ureq::get(&format!("{}/api/v1/exports/links.csv?site_id={alpha_id}", cluster.api))
        .call()
        .unwrap()
        .into_reader();
    let mut bytes = 0usize;
    let mut peak = before;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = std::io::Read::read(&mut reader, &mut buffer).unwrap();
        if read == 0 {
            break;
        }
        bytes += read;
        if bytes % (4 << 20) < read {
            peak = peak.max(cluster.admin_rss_kib());
        }
    }
    peak = peak.max(cluster.admin_rss_kib());
    println!("export of {bytes} bytes: admin RSS {before} KiB before, {peak} KiB at most while streaming");
    assert!(bytes > 50_000_000, "only {bytes} bytes exported");
    assert!(peak - before < 40 * 1024, "admin memory grew by {} KiB during the export", peak - before);
}
