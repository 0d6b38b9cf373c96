//! End-to-end tests of the crawl pipeline: real admin and scraper processes, the test
//! broker, PostgreSQL, and web servers of our own on 127.0.0.1.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{independent_count, rust_book_dir, Canned, Cluster, FixtureServer};
use serde_json::{json, Value};

fn fixture_routes() -> HashMap<String, Canned> {
    let mut routes = HashMap::new();
    routes.insert(
        "/".to_string(),
        Canned::html(
            r##"<html><head><title>Fixture home</title>
            <meta name="description" content="The home page">
            <link rel="canonical" href="/"></head>
            <body><h1>Welcome</h1>
            <a href="/a.html">Page A</a>
            <a href="b.html" rel="nofollow">Page B</a>
            <a href="/missing.html">Broken</a>
            <a href="https://example.org/page">External</a>
            <a href="mailto:owner@example.org">Mail</a>
            <a href="#top">Top</a>
            </body></html>"##,
        ),
    );
    routes.insert(
        "/a.html".to_string(),
        Canned::html(
            r#"<title>A</title><a href="/">Home</a><a href="/b.html">B</a><a href="/b.html">B</a>
            <a href="/moved">Moved</a>"#,
        ),
    );
    routes.insert(
        "/b.html".to_string(),
        Canned::html(
            r##"<title>B</title><meta name="robots" content="noindex, nofollow"><a href="/a.html#x">A again</a>"##,
        ),
    );
    routes.insert("/moved".to_string(), Canned::redirect(301, "/a.html"));
    routes
}

#[test]
fn fixture_site_counts_facts_and_backlinks() {
    let server = FixtureServer::start(None, fixture_routes(), Duration::ZERO);
    let cluster = Cluster::start("fixture", 2, &[]);
    let id = cluster.add_site(&server.url("/"));
    let site = cluster.wait_done(id, Duration::from_secs(120));

    assert_eq!(site["urls_fetched"], 5, "{site}");
    assert_eq!(site["responses"], json!({"2xx": 3, "3xx": 1, "4xx": 1, "5xx": 0, "error": 0}));
    // Home: a, b, missing, external, #top; A: home, b, b, moved; B: a.
    assert_eq!(site["links"], 10);
    assert_eq!(site["host"], format!("127.0.0.1:{}", server.port));

    let (_, pages) = cluster.get(&format!("/api/v1/pages?site_id={id}&status=2xx"));
    let home = pages["items"].as_array().unwrap().iter().find(|p| p["url"] == server.url("/")).unwrap();
    assert_eq!(home["title"], "Fixture home");
    assert_eq!(home["h1"], "Welcome");
    assert_eq!(home["meta_description"], "The home page");
    assert_eq!(home["canonical"], server.url("/"));
    let b = pages["items"].as_array().unwrap().iter().find(|p| p["url"] == server.url("/b.html")).unwrap();
    assert_eq!(b["noindex"], true);
    assert_eq!(b["nofollow"], true);

    let (_, redirects) = cluster.get(&format!("/api/v1/pages?site_id={id}&status=301"));
    assert_eq!(redirects["items"][0]["redirect_to"], server.url("/a.html"));

    let (_, backlinks) = cluster.get(&format!("/api/v1/backlinks?url={}", server.url("/b.html")));
    let items = backlinks["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{backlinks}");
    let from_home = items.iter().find(|l| l["source_url"] == server.url("/")).unwrap();
    assert_eq!(from_home["anchor_text"], "Page B");
    assert_eq!(from_home["nofollow"], true);
    assert_eq!(from_home["href"], "b.html");
    assert_eq!(from_home["source_title"], "Fixture home");

    let external_state =
        common::psql(&cluster.database_url, "SELECT state FROM urls WHERE url = 'https://example.org/page'");
    assert_eq!(external_state, "external");
    let (_, external) = cluster.get(&format!("/api/v1/urls?site_id={id}&state=external"));
    let external_urls: Vec<&str> =
        external["items"].as_array().unwrap().iter().filter_map(|u| u["url"].as_str()).collect();
    assert_eq!(external_urls, ["https://example.org/page"], "{external}");

    // The sitemap probe is fetched but is no page: the list agrees with the site's count.
    let (_, site) = cluster.get(&format!("/api/v1/sites/{id}"));
    let (_, all_pages) = cluster.get(&format!("/api/v1/pages?site_id={id}&limit=1000"));
    let listed = all_pages["items"].as_array().unwrap();
    assert_eq!(listed.len() as i64, site["urls_fetched"].as_i64().unwrap(), "{site}");
    assert!(listed.iter().all(|p| !p["url"].as_str().unwrap().ends_with("/sitemap.xml")), "{all_pages}");

    // The frontier leases each URL once. A scraper that loses its partition in a
    // rebalance first waits for the partition's fetches and commits their offsets, so the
    // next owner fetches a URL again only when that wait timed out or the commit failed,
    // as at-least-once delivery allows.
    let metrics = ureq::get(&format!("{}/metrics", cluster.api)).call().unwrap().into_string().unwrap();
    let leased = common::psql_count(&cluster.database_url, "SELECT count(*) FROM urls WHERE leased_at IS NOT NULL");
    assert_eq!(metric_sum(&metrics, "open_ahrefs_frontier_dispatched_total") as i64, leased);
    let requests = server.requests.lock().unwrap().iter().filter(|(_, path)| path == "/b.html").count();
    let scraper_logs: String = (0..2).map(|i| cluster.log(&format!("scraper-{i}"))).collect();
    let redelivered =
        scraper_logs.contains("still in flight after") || scraper_logs.contains("committing offsets of revoked");
    assert!(requests == 1 || (requests == 2 && redelivered), "/b.html was requested {requests} times");
    cluster.assert_no_duplicates();
}

#[test]
fn api_rejects_bad_input() {
    let server = FixtureServer::start(None, fixture_routes(), Duration::ZERO);
    let cluster = Cluster::start("api_input", 0, &[]);
    let post = |body: &str| match ureq::post(&format!("{}/api/v1/sites", cluster.api))
        .set("Content-Type", "application/json")
        .send_string(body)
    {
        Ok(response) => (response.status(), response.into_json::<Value>().unwrap()),
        Err(ureq::Error::Status(status, response)) => (status, response.into_json::<Value>().unwrap()),
        Err(e) => panic!("{e}"),
    };

    let (status, body) = post(r#"{"url": "ftp://example.org/"}"#);
    assert_eq!(status, 422);
    assert!(body["error"].as_str().unwrap().contains("only http and https"), "{body}");
    let (status, _) = post(r#"{"url": "not a url"}"#);
    assert_eq!(status, 422);
    let (status, body) = post(r#"{"url": 5"#);
    assert_eq!(status, 422);
    assert!(body["error"].as_str().unwrap().contains("invalid JSON"), "{body}");

    let (status, created) = post(&json!({ "url": server.url("/") }).to_string());
    assert_eq!(status, 201);
    let (status, conflict) = post(&json!({ "url": server.url("/other") }).to_string());
    assert_eq!(status, 409);
    assert_eq!(conflict["id"], created["id"]);
    let (status, next) = post(r#"{"url": "http://next-site.invalid/"}"#);
    assert_eq!(status, 201, "{next}");
    assert_eq!(next["id"], created["id"].as_i64().unwrap() + 1, "a refused duplicate used up a site id");

    let (status, body) = cluster.get("/api/v1/sites/abc");
    assert_eq!(status, 422, "{body}");
    let (status, _) = cluster.get("/api/v1/sites/999999");
    assert_eq!(status, 404);
    let (status, body) = cluster.get("/api/v1/pages?site_id=1&limit=0");
    assert_eq!(status, 422);
    assert!(body["error"].as_str().unwrap().contains("limit"), "{body}");
    for path in
        ["/api/v1/pages?site_id=999999", "/api/v1/urls?site_id=999999", "/api/v1/exports/pages.csv?site_id=999999"]
    {
        let (status, body) = cluster.get(path);
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["error"], "no site with id 999999", "{path}");
    }

    let addurl = |url: &str| match ureq::get(&format!("{}/crudtask/addurl", cluster.api)).query("url", url).call() {
        Ok(response) => response.into_string().unwrap(),
        Err(ureq::Error::Status(_, response)) => response.into_string().unwrap(),
        Err(e) => panic!("{e}"),
    };
    assert_eq!(addurl("http://127.0.0.2:9/"), "OK");
    assert_eq!(addurl("http://127.0.0.2:9/again"), "ERROR idempotence");
    assert_eq!(addurl("javascript:alert(1)"), "ERROR parse");
}

#[test]
fn rust_book_matches_independent_count() {
    let book = rust_book_dir();
    let server = FixtureServer::start(Some(book.clone()), HashMap::new(), Duration::ZERO);
    let seed = server.url("/index.html");
    let expected = independent_count(&book, &seed);

    let cluster = Cluster::start("book", 2, &[]);
    let id = cluster.add_site(&seed);
    let site = cluster.wait_done(id, Duration::from_secs(300));

    assert_eq!(site["urls_fetched"], expected["urls_fetched"], "{site}");
    assert_eq!(site["responses"], expected["responses"]);
    assert_eq!(site["links"], expected["links"]);
    assert!(expected["urls_fetched"].as_i64().unwrap() > 100, "the book should have more than 100 pages");

    // Backlinks of one chapter equal the independent count of links pointing at it.
    let chapter = server.url("/ch04-01-what-is-ownership.html");
    let (_, backlinks) = cluster.get(&format!("/api/v1/backlinks?url={chapter}&limit=1000"));
    assert_eq!(backlinks["items"].as_array().unwrap().len() as i64, expected["inlinks"][&chapter].as_i64().unwrap());
    cluster.assert_no_duplicates();
}

#[test]
fn scraper_killed_mid_crawl_still_completes() {
    let book = rust_book_dir();
    // A small delay per request keeps the crawl running long enough to kill a scraper in it.
    let server = FixtureServer::start(Some(book.clone()), HashMap::new(), Duration::from_millis(20));
    let seed = server.url("/index.html");
    let expected = independent_count(&book, &seed);

    let mut cluster = Cluster::start("sigkill", 2, &[("LEASE_SECONDS", "5"), ("SCRAPER_CONCURRENCY", "8")]);
    let id = cluster.add_site(&seed);
    let started = Instant::now();
    while cluster.site(id)["urls_fetched"].as_i64().unwrap() < 20 {
        assert!(started.elapsed() < Duration::from_secs(120), "crawl did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    // One host's URLs share one partition, so only one scraper has work: kill that one.
    let busy = (0..2).find(|&i| scraper_fetches(&cluster, i) > 0).expect("no scraper has fetched anything");
    cluster.kill_scraper(busy);

    let site = cluster.wait_done(id, Duration::from_secs(300));
    assert_eq!(site["urls_fetched"], expected["urls_fetched"], "{site}");
    assert_eq!(site["responses"], expected["responses"]);
    assert_eq!(site["links"], expected["links"]);
    cluster.assert_no_duplicates();
}

#[test]
fn duplicate_and_poison_messages_change_nothing() {
    let server = FixtureServer::start(None, fixture_routes(), Duration::ZERO);
    let cluster = Cluster::start("redelivery", 1, &[]);
    let id = cluster.add_site(&server.url("/"));
    cluster.wait_done(id, Duration::from_secs(120));
    let counts =
        |c: &Cluster| ["urls", "pages", "links"].map(|table| c.sql_count(&format!("SELECT count(*) FROM {table}")));
    let before = counts(&cluster);
    let metrics_url = format!("{}/metrics", cluster.api);
    let written = || {
        let metrics = ureq::get(&metrics_url).call().unwrap().into_string().unwrap();
        metric_sum(&metrics, "open_ahrefs_db_rows_written_total{table=\"pages\"}")
    };
    let written_before = written();

    // Replay the home page's stored result as the scraper would publish it, plus garbage.
    let url_id = cluster.sql_count(&format!("SELECT id FROM urls WHERE url = '{}'", server.url("/")));
    let result = json!({
        "schema_version": 1, "url_id": url_id, "site_id": id, "url": server.url("/"), "depth": 0,
        "leased_at": "2026-01-01T00:00:00Z", "fetched_at": "2026-01-01T00:00:01Z", "response_time_ms": 3,
        "outcome": {"kind": "response", "status": 200, "content_type": "text/html", "body_bytes": 10,
            "redirect_to": null, "links_dropped": 0,
            "facts": {"title": "Fixture home", "h1": "Welcome", "meta_description": null, "canonical": null,
                      "noindex": false, "nofollow": false},
            "links": [{"href": "/a.html", "url": server.url("/a.html"), "anchor_text": "Page A",
                       "nofollow": false, "ugc": false, "sponsored": false}]}
    });
    let producer: rdkafka::producer::BaseProducer =
        rdkafka::ClientConfig::new().set("bootstrap.servers", common::required_env("KAFKA_BROKERS")).create().unwrap();
    let payloads =
        [result.to_string(), result.to_string(), "{not json".to_string(), r#"{"schema_version": 99}"#.to_string()];
    for payload in &payloads {
        producer.send(rdkafka::producer::BaseRecord::to(&cluster.topic_res).key("127.0.0.1").payload(payload)).unwrap();
    }
    rdkafka::producer::Producer::flush(&producer, Duration::from_secs(10)).unwrap();

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let metrics = ureq::get(&metrics_url).call().unwrap().into_string().unwrap();
        let rejected: u64 = metric_sum(&metrics, "open_ahrefs_kafka_messages_rejected_total");
        if rejected >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "poison messages were not rejected:\n{metrics}");
        std::thread::sleep(Duration::from_millis(200));
    }
    while written() <= written_before {
        assert!(Instant::now() < deadline, "the replayed result was not written");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(counts(&cluster), before);
    cluster.assert_no_duplicates();
    let stale_title = common::psql(&cluster.database_url, &format!("SELECT title FROM pages WHERE url_id = {url_id}"));
    assert_eq!(stale_title, "Fixture home");
}

fn scraper_fetches(cluster: &Cluster, index: usize) -> u64 {
    let metrics = ureq::get(&cluster.scraper_metrics[index]).call().unwrap().into_string().unwrap();
    metric_sum(&metrics, "open_ahrefs_pages_fetched_total")
}

fn metric_sum(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|line| line.starts_with(name) && !line.starts_with('#'))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[test]
fn admin_exits_when_database_is_unreachable() {
    let output = Command::new(env!("CARGO_BIN_EXE_open-ahrefs"))
        .arg("admin")
        .env("DATABASE_URL", "postgres://nobody:secret@127.0.0.1:1/none")
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
    assert!(!stderr.contains("secret"), "the password leaked: {stderr}");
}

#[test]
fn scraper_waits_for_unreachable_broker() {
    let log = std::env::temp_dir().join(common::unique("broker_wait"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_open-ahrefs"))
        .arg("scraper")
        .env("KAFKA_BROKERS", "127.0.0.1:1")
        .env("SCRAPER_METRICS_LISTEN", format!("127.0.0.1:{}", common::free_port()))
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    assert!(child.try_wait().unwrap().is_none(), "the scraper exited instead of waiting for the broker");
    let status = common::terminate(&mut child).expect("the scraper did not stop on SIGTERM");
    assert!(status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("not reachable"), "{text}");
}
