//! The crawler behaves like a professional one: robots.txt, politeness, redirects, meta
//! refresh, charsets, compression, size limits, directives, sitemaps, traps, IDN hosts
//! and recrawls, each with an exact expected result on a fixture site.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use common::{Canned, Cluster, FixtureServer};
use serde_json::Value;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn with_header(mut canned: Canned, name: &str, value: &str) -> Canned {
    canned.headers.push((name.into(), value.into()));
    canned
}

fn policy_site(port: u16) -> HashMap<String, Canned> {
    let host = format!("http://127.0.0.1:{port}");
    let mut routes = HashMap::new();
    let mut add = |path: &str, canned: Canned| {
        routes.insert(path.to_string(), canned);
    };
    add(
        "/robots.txt",
        Canned {
            status: 200,
            headers: vec![("Content-Type".into(), "text/plain".into())],
            body: format!(
                "User-agent: *\nDisallow: /private/\nAllow: /private/open.html\nDisallow: /*.pdf$\nCrawl-delay: 0.3\n\
                 Sitemap: {host}/sitemap_index.xml\n\nUser-agent: OtherBot\nDisallow: /\n"
            )
            .into_bytes(),
        },
    );
    add(
        "/",
        Canned::html(
            r#"<title>Policy home</title>
            <a href="/private/secret.html">secret</a> <a href="/private/open.html">open</a>
            <a href="/doc.pdf">pdf</a> <a href="/doc.pdf?x=1">pdf with query</a>
            <a href="/r1">chain</a> <a href="/loop-a">loop</a> <a href="/refresh.html">refresh</a>
            <a href="/cp1251.html">cp1251</a> <a href="/gzip.html">gzip</a> <a href="/big.html">big</a>
            <a href="/noindex.html">noindex</a> <a href="/nofollow.html">nofollow</a>
            <a href="/calendar?m=1">calendar</a>"#,
        ),
    );
    add("/private/open.html", Canned::html("<title>Open</title>"));
    add("/private/secret.html", Canned::html("<title>Secret</title>"));
    add("/r1", Canned::redirect(301, "/r2"));
    add("/r2", Canned::redirect(302, "/final.html"));
    add("/final.html", Canned::html("<title>Final</title>"));
    add("/loop-a", Canned::redirect(301, "/loop-b"));
    add("/loop-b", Canned::redirect(301, "/loop-a"));
    add(
        "/refresh.html",
        Canned::html(r#"<meta http-equiv="refresh" content="0; url=/final.html"><title>Moving</title>"#),
    );
    let (cp1251, _, _) =
        encoding_rs::WINDOWS_1251.encode(r#"<title>Привет мир</title><a href="/final.html">Ссылка</a>"#);
    add(
        "/cp1251.html",
        Canned {
            status: 200,
            headers: vec![("Content-Type".into(), "text/html; charset=windows-1251".into())],
            body: cp1251.into_owned(),
        },
    );
    add(
        "/gzip.html",
        with_header(
            Canned { body: gzip(b"<title>Compressed</title>"), ..Canned::html("") },
            "Content-Encoding",
            "gzip",
        ),
    );
    add("/big.html", Canned::html(&format!("<title>Big</title>{}", "x".repeat(200_000))));
    add("/noindex.html", with_header(Canned::html("<title>Hidden</title>"), "X-Robots-Tag", "noindex"));
    add("/nofollow.html", Canned::html(r#"<meta name="robots" content="nofollow"><title>No follow</title>"#));
    for month in 1..=30 {
        add(
            &format!("/calendar?m={month}"),
            Canned::html(&format!(r#"<title>Month {month}</title><a href="/calendar?m={}">next</a>"#, month + 1)),
        );
    }
    add(
        "/sitemap_index.xml",
        Canned {
            status: 200,
            headers: vec![("Content-Type".into(), "application/xml".into())],
            body: format!(
                r#"<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
                   <sitemap><loc>{host}/sitemap-pages.xml.gz</loc></sitemap></sitemapindex>"#
            )
            .into_bytes(),
        },
    );
    add(
        "/sitemap-pages.xml.gz",
        Canned {
            status: 200,
            headers: vec![("Content-Type".into(), "application/gzip".into())],
            body: gzip(
                format!(
                    r#"<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
                       <url><loc>{host}/</loc></url><url><loc>{host}/from-sitemap.html</loc></url></urlset>"#
                )
                .as_bytes(),
            ),
        },
    );
    add("/from-sitemap.html", Canned::html("<title>Only in the sitemap</title>"));
    routes
}

fn url_state(cluster: &Cluster, url: &str) -> (String, String) {
    let row = common::psql(
        &cluster.database_url,
        &format!("SELECT state || '|' || COALESCE(state_reason, '') FROM urls WHERE url = '{url}'"),
    );
    let (state, reason) = row.split_once('|').unwrap_or_else(|| panic!("{url} is not stored"));
    (state.to_string(), reason.to_string())
}

fn page(cluster: &Cluster, site_id: i64, url: &str) -> Value {
    let (_, pages) = cluster.get(&format!("/api/v1/pages?site_id={site_id}&limit=1000"));
    pages["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["url"] == url)
        .cloned()
        .unwrap_or_else(|| panic!("{url} not fetched"))
}

#[test]
fn fixture_site_obeys_robots_politeness_and_limits() {
    let server = FixtureServer::start(None, HashMap::new(), Duration::ZERO);
    let port = server.port;
    server.set_routes(policy_site(port));
    let mut unavailable = HashMap::new();
    unavailable.insert("/robots.txt".to_string(), Canned { status: 503, headers: vec![], body: Vec::new() });
    let unavailable = FixtureServer::start(None, unavailable, Duration::ZERO);

    let cluster = Cluster::start(
        "policy",
        1,
        &[("MAX_BODY_BYTES", "100000"), ("MAX_QUERY_VARIANTS", "5"), ("ROBOTS_RETRY_SECONDS", "3600")],
    );
    let id = cluster.add_site(&server.url("/"));
    let blocked_id = cluster.add_site(&unavailable.url("/"));
    let site = cluster.wait_done(id, Duration::from_secs(180));
    let url = |path: &str| server.url(path);

    // robots.txt: groups, longest match, `$`, and blocked URLs recorded without a request.
    assert_eq!(url_state(&cluster, &url("/private/secret.html")), ("blocked".into(), "robots_txt".into()));
    assert_eq!(url_state(&cluster, &url("/doc.pdf")), ("blocked".into(), "robots_txt".into()));
    assert_eq!(url_state(&cluster, &url("/private/open.html")).0, "fetched");
    assert_eq!(url_state(&cluster, &url("/doc.pdf?x=1")).0, "fetched");
    let paths = server.paths();
    assert!(!paths.contains(&"/private/secret.html".to_string()));
    assert!(!paths.contains(&"/doc.pdf".to_string()));
    assert_eq!(paths.iter().filter(|p| *p == "/robots.txt").count(), 1, "robots.txt fetched more than once");
    assert_eq!(site["urls_blocked"], 2, "{site}");

    // Crawl-delay 0.3 s: no two page requests to the host start closer than that.
    let times: Vec<Instant> =
        server.requests.lock().unwrap().iter().filter(|(_, p)| p != "/robots.txt").map(|(t, _)| *t).collect();
    let closest = times.windows(2).map(|w| w[1] - w[0]).min().unwrap();
    assert!(closest >= Duration::from_millis(290), "two requests only {closest:?} apart");

    // Redirect chain, loop and meta refresh.
    let (_, chain) = cluster.get(&format!("/api/v1/redirects?url={}", url("/r1")));
    assert_eq!(chain["hop_count"], 2, "{chain}");
    assert_eq!(chain["final_url"], url("/final.html"));
    assert_eq!(chain["final_status"], 200);
    assert_eq!(chain["is_loop"], false);
    let (_, looping) = cluster.get(&format!("/api/v1/redirects?url={}", url("/loop-a")));
    assert_eq!(looping["is_loop"], true, "{looping}");
    let (_, refresh) = cluster.get(&format!("/api/v1/redirects?url={}", url("/refresh.html")));
    assert_eq!(refresh["hops"][0]["kind"], "meta_refresh", "{refresh}");
    assert_eq!(refresh["final_url"], url("/final.html"));

    // Charsets, compression, size limit and directives.
    assert_eq!(page(&cluster, id, &url("/cp1251.html"))["title"], "Привет мир");
    let (_, anchors) = cluster.get(&format!("/api/v1/backlinks?target={}", url("/final.html")));
    assert!(anchors["items"].as_array().unwrap().iter().any(|l| l["anchor_text"] == "Ссылка"), "{anchors}");
    assert_eq!(page(&cluster, id, &url("/gzip.html"))["title"], "Compressed");
    assert_eq!(page(&cluster, id, &url("/big.html"))["error_kind"], "body_too_large");
    assert_eq!(page(&cluster, id, &url("/noindex.html"))["noindex"], true);
    assert_eq!(page(&cluster, id, &url("/nofollow.html"))["nofollow"], true);

    // Calendar trap: five query variants of /calendar, the sixth recorded as skipped.
    for month in 1..=5 {
        assert_eq!(url_state(&cluster, &url(&format!("/calendar?m={month}"))).0, "fetched");
    }
    assert_eq!(url_state(&cluster, &url("/calendar?m=6")), ("skipped".into(), "query_variants".into()));
    assert!(!paths.contains(&"/calendar?m=6".to_string()));

    // The sitemap index from robots.txt and its gzip child bring in an unlinked page.
    assert_eq!(url_state(&cluster, &url("/from-sitemap.html")).0, "fetched");
    let in_sitemap = common::psql(
        &cluster.database_url,
        &format!("SELECT in_sitemap FROM urls WHERE url = '{}'", url("/from-sitemap.html")),
    );
    assert_eq!(in_sitemap, "t");

    // Sitemaps are fetched, but the progress counts only the site's pages.
    let fetched_of_kind = |kind: &str| {
        common::psql_count(
            &cluster.database_url,
            &format!("SELECT count(*) FROM pages p JOIN urls u ON u.id = p.url_id WHERE p.site_id = {id} AND u.kind = '{kind}'"),
        )
    };
    assert!(fetched_of_kind("sitemap") > 0);
    assert_eq!(site["urls_fetched"], fetched_of_kind("page"), "{site}");

    // A 503 robots.txt holds the whole host back: its seed waits, no page is requested.
    let (_, waiting) = cluster.get(&format!("/api/v1/urls?site_id={blocked_id}&state=pending"));
    let seed = waiting["items"].as_array().unwrap().iter().find(|u| u["url"] == unavailable.url("/")).cloned().unwrap();
    assert!(seed["state_reason"].as_str().unwrap().contains("robots.txt unavailable"), "{seed}");
    assert_eq!(unavailable.paths(), ["/robots.txt"]);
    let (_, failing) = cluster.get("/api/v1/hosts/failing");
    let unavailable_host =
        failing["items"].as_array().unwrap().iter().find(|h| h["host"] == format!("127.0.0.1:{}", unavailable.port));
    let unavailable_host =
        unavailable_host.unwrap_or_else(|| panic!("the host of the 503 robots.txt is not listed: {failing}"));
    assert!(unavailable_host["robots_unavailable_urls"].as_i64().unwrap() > 0, "{unavailable_host}");
    assert_eq!(
        unavailable_host["robots_unavailable_urls"], unavailable_host["urls"],
        "every URL of the host waits: {unavailable_host}"
    );
    assert_eq!(unavailable_host["failed_fetches"], 0, "{unavailable_host}");
    assert_eq!(unavailable_host["error_kinds"], serde_json::json!(["robots_unavailable"]), "{unavailable_host}");

    // The crawl client names the reason of a crawl that makes no progress, and for a site
    // it only follows, it counts the speed of the pages fetched meanwhile.
    let crawl_cli = |seed: &str, timeout: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_open-ahrefs"))
            .args(["crawl", seed, "--api", &cluster.api, "--interval", "0.5", "--timeout", timeout])
            .output()
            .unwrap()
    };
    for (lang, waits) in
        [("en", "Part of the crawl waits: robots.txt unavailable"), ("ru", "Часть обхода ждёт: robots.txt недоступен")]
    {
        let page = ureq::get(&format!("{}/console/sites/{blocked_id}?lang={lang}", cluster.api))
            .call()
            .unwrap()
            .into_string()
            .unwrap();
        assert!(page.contains(waits), "the console page in {lang} does not say why the crawl waits");
    }
    let waiting = crawl_cli(&unavailable.url("/"), "12");
    let waiting_out = String::from_utf8_lossy(&waiting.stdout);
    assert!(!waiting.status.success(), "{waiting_out}");
    assert!(waiting_out.contains("waiting: robots.txt unavailable"), "{waiting_out}");
    let done = crawl_cli(&server.url("/"), "60");
    let done_out = String::from_utf8_lossy(&done.stdout);
    assert!(done.status.success(), "{done_out}");
    assert!(done_out.contains("already exists"), "{done_out}");
    let fetched_now = done_out.lines().find(|l| l.starts_with("fetched now")).unwrap_or_default();
    assert!(fetched_now.ends_with(" 0"), "{done_out}");
    cluster.assert_no_duplicates();
}

#[test]
fn idn_host_is_fetched_by_punycode_and_shown_in_unicode() {
    let mut routes = HashMap::new();
    routes.insert("/".to_string(), Canned::html("<title>Пример</title>"));
    let server = FixtureServer::start(None, routes, Duration::ZERO);
    let port = server.port;
    let cluster = Cluster::start("idn", 1, &[("RESOLVE", &format!("пример.рф:{port}:127.0.0.1"))]);
    let id = cluster.add_site(&format!("http://пример.рф:{port}/"));
    let site = cluster.wait_done(id, Duration::from_secs(60));
    assert_eq!(site["host"], format!("xn--e1afmkfd.xn--p1ai:{port}"));
    assert_eq!(site["host_display"], format!("пример.рф:{port}"));
    assert_eq!(site["responses"]["2xx"], 1, "{site}");
    assert_eq!(server.paths().iter().filter(|p| *p == "/").count(), 1);
}

#[test]
fn recrawl_marks_vanished_links_lost() {
    let mut routes = HashMap::new();
    routes.insert("/".to_string(), Canned::html(r#"<a href="/x">X</a><a href="/y">Y</a>"#));
    routes.insert("/x".to_string(), Canned::html("<title>X</title>"));
    routes.insert("/y".to_string(), Canned::html("<title>Y</title>"));
    let server = FixtureServer::start(None, routes, Duration::ZERO);
    let cluster = Cluster::start("recrawl", 1, &[]);
    let id = cluster.add_site(&server.url("/"));
    cluster.wait_done(id, Duration::from_secs(60));
    assert_eq!(cluster.site(id)["links"], 2);

    server.set_route("/", Canned::html(r#"<a href="/x">X</a>"#));
    let response = ureq::post(&format!("{}/api/v1/sites/{id}/recrawl", cluster.api)).call().unwrap();
    assert_eq!(response.status(), 202);
    let site = cluster.wait_done(id, Duration::from_secs(60));
    assert_eq!(site["links"], 1, "{site}");

    let (_, lost) = cluster.get(&format!("/api/v1/backlinks?target={}&status=lost", server.url("/y")));
    assert_eq!(lost["total"], 1, "{lost}");
    assert!(lost["items"][0]["lost_at"].is_string());
    let (_, live) = cluster.get(&format!("/api/v1/backlinks?target={}", server.url("/y")));
    assert_eq!(live["total"], 0);
    assert_eq!(server.paths().iter().filter(|p| *p == "/").count(), 2);
}

/// A URL first found beyond MAX_DEPTH through a long path is skipped, and fetched once a
/// shorter path to the page before it turns up. Here `/short` returns 503 at first, so the
/// long path `/ → /a → /b → /c → /deep` is crawled before the short one `/ → /short → /c`,
/// and the lower depth of the fetched `/c` must carry on to `/deep`.
#[test]
fn shorter_path_requeues_url_skipped_for_depth() {
    let mut routes = HashMap::new();
    routes.insert("/".to_string(), Canned::html(r#"<a href="/a">A</a><a href="/short">Short</a>"#));
    routes.insert("/a".to_string(), Canned::html(r#"<a href="/b">B</a>"#));
    routes.insert("/b".to_string(), Canned::html(r#"<a href="/c">C</a>"#));
    routes.insert("/c".to_string(), Canned::html(r#"<a href="/deep">Deep</a>"#));
    routes.insert("/deep".to_string(), Canned::html("<title>Deep</title>"));
    let mut unavailable = Canned::html("busy");
    unavailable.status = 503;
    let unavailable = with_header(unavailable, "Retry-After", "1");
    routes.insert("/short".to_string(), unavailable);
    let server = FixtureServer::start(None, routes, Duration::ZERO);
    let cluster = Cluster::start("depth_requeue", 1, &[("MAX_DEPTH", "3")]);
    let id = cluster.add_site(&server.url("/"));
    let depth_of = |path: &str| {
        common::psql(&cluster.database_url, &format!("SELECT depth FROM urls WHERE url = '{}'", server.url(path)))
            .trim()
            .to_string()
    };

    let deadline = Instant::now() + Duration::from_secs(60);
    while common::psql_count(
        &cluster.database_url,
        &format!("SELECT count(*) FROM urls WHERE url = '{}' AND state = 'skipped'", server.url("/deep")),
    ) == 0
    {
        assert!(Instant::now() < deadline, "/deep was never skipped for depth");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(url_state(&cluster, &server.url("/deep")), ("skipped".to_string(), "max_depth".to_string()));
    assert_eq!(depth_of("/deep"), "4");
    server.set_route("/short", Canned::html(r#"<a href="/c">C</a>"#));

    let site = cluster.wait_done(id, Duration::from_secs(60));
    assert_eq!(url_state(&cluster, &server.url("/deep")).0, "fetched", "{site}");
    assert_eq!(depth_of("/c"), "2");
    assert_eq!(depth_of("/deep"), "3");
    assert_eq!(site["urls_skipped"], 0, "{site}");
    assert_eq!(server.paths().iter().filter(|p| *p == "/deep").count(), 1);
}
