//! The admin API's access control and input limits: the bearer token of ADMIN_TOKEN on
//! every state-changing request, body size and type limits, 4xx answers that say what is
//! wrong, and the OpenAPI document with its reference page.

mod common;

use std::time::{Duration, Instant};

use common::{get_json, Cluster};
use serde_json::{json, Value};

const TOKEN: &str = "test-token-0123456789";

/// Send a request and return its status and body, whatever the status.
fn call(request: ureq::Request, body: Option<&str>) -> (u16, String) {
    let result = match body {
        Some(body) => request.send_string(body),
        None => request.call(),
    };
    match result {
        Ok(response) => (response.status(), response.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(status, response)) => (status, response.into_string().unwrap_or_default()),
        Err(error) => panic!("request failed: {error}"),
    }
}

fn error_of(body: &str) -> String {
    serde_json::from_str::<Value>(body).ok().and_then(|v| v["error"].as_str().map(str::to_string)).unwrap_or_default()
}

#[test]
fn token_guards_state_changes_only() {
    let cluster = Cluster::start("api_access", 0, &[("ADMIN_TOKEN", TOKEN)]);
    let sites = format!("{}/api/v1/sites", cluster.api);
    let post = |authorization: Option<&str>, body: &str| {
        let mut request = ureq::post(&sites).set("Content-Type", "application/json");
        if let Some(value) = authorization {
            request = request.set("Authorization", value);
        }
        call(request, Some(body))
    };
    let site = json!({ "url": "http://127.0.0.2:9/" }).to_string();

    let (status, body) = post(None, &site);
    assert_eq!(status, 401, "{body}");
    assert!(error_of(&body).contains("Authorization: Bearer"), "{body}");
    let (status, _) = post(Some("Bearer wrong-token-0123456789"), &site);
    assert_eq!(status, 401);
    let (status, _) = post(Some(&format!("Basic {TOKEN}")), &site);
    assert_eq!(status, 401);
    let (status, body) = post(Some(&format!("Bearer {TOKEN}")), &site);
    assert_eq!(status, 201, "{body}");

    let addurl = format!("{}/crudtask/addurl", cluster.api);
    let (status, _) = call(ureq::get(&addurl).query("url", "http://127.0.0.3:9/"), None);
    assert_eq!(status, 401);
    let (status, body) = call(
        ureq::get(&addurl).query("url", "http://127.0.0.3:9/").set("Authorization", &format!("Bearer {TOKEN}")),
        None,
    );
    assert_eq!((status, body.as_str()), (200, "OK"));

    let recrawl = format!("{}/api/v1/sites/1/recrawl", cluster.api);
    let (status, _) = call(ureq::post(&recrawl), Some(""));
    assert_eq!(status, 401);

    // Reads need no token.
    let (status, listed) = cluster.get("/api/v1/sites");
    assert_eq!(status, 200);
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
}

#[test]
fn bad_input_gets_clear_4xx() {
    let cluster = Cluster::start("api_limits", 0, &[]);
    let sites = format!("{}/api/v1/sites", cluster.api);
    let post_json = |body: &str| call(ureq::post(&sites).set("Content-Type", "application/json"), Some(body));

    let (status, body) = post_json(&format!(r#"{{"url": "http://example.org/{}"}}"#, "a".repeat(70 * 1024)));
    assert_eq!(status, 413, "{body}");
    assert!(error_of(&body).contains("larger than"), "{body}");

    let (status, body) = call(ureq::post(&sites).set("Content-Type", "text/plain"), Some(r#"{"url": "http://a/"}"#));
    assert_eq!(status, 415, "{body}");
    assert!(error_of(&body).contains("application/json"), "{body}");

    // A URL that fits the body limit but not MAX_URL_BYTES is rejected before the database.
    let (status, body) =
        post_json(&json!({ "url": format!("http://example.org/{}", "a".repeat(60 * 1024)) }).to_string());
    assert_eq!(status, 422, "{body}");
    assert!(error_of(&body).contains("MAX_URL_BYTES"), "{body}");

    let (status, body) = post_json(r#"{"link": "http://example.org/"}"#);
    assert_eq!(status, 422, "{body}");
    assert!(error_of(&body).contains("url"), "{body}");

    let (status, body) = post_json(&json!({ "url": "http://exa mple.org/\u{0}" }).to_string());
    assert_eq!(status, 422, "{body}");

    let (status, body) = cluster.get("/api/v1/pages?site_id=-1");
    assert_eq!(status, 422, "{body}");
    assert!(body["error"].as_str().unwrap_or("").contains("site_id"), "{body}");
    let (status, body) = cluster.get("/api/v1/backlinks?target=http://example.org/%00&limit=5000");
    assert_eq!(status, 422, "{body}");
    let (status, body) = cluster.get("/api/v1/backlinks?target=a..b&mode=domain");
    assert_eq!(status, 422, "{body}");
    assert!(error_of(&body.to_string()).contains("not a valid host name"), "{body}");
    let (status, body) = cluster.get("/api/v1/backlinks?target=co.uk&mode=domain");
    assert_eq!(status, 422, "{body}");
    assert!(error_of(&body.to_string()).contains("public suffix"), "{body}");
    let (status, body) = cluster.get("/api/v1/referring-domains?target=https://www.example.org/a/b&mode=domain");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["target"]["value"], "example.org", "{body}");
    for direction in ["inlinks", "outlinks"] {
        let (status, body) = cluster.get(&format!("/api/v1/pages/999999999/{direction}"));
        assert_eq!(status, 404, "{direction}: {body}");
        assert_eq!(error_of(&body.to_string()), "no URL with id 999999999", "{body}");
    }
    let (status, body) = cluster.get("/api/v1/pages");
    assert_eq!(status, 422, "{body}");
    assert_eq!(error_of(&body.to_string()), "invalid query string: missing field `site_id`", "{body}");

    let (status, body) = cluster.get("/api/v1/no-such-thing");
    assert_eq!(status, 404, "{body}");
    assert!(body["error"].as_str().unwrap_or("").contains("/api/v1/no-such-thing"), "{body}");

    for path in ["/api/v1/sites/999/broken-links", "/api/v1/sites/999/best-by-links"] {
        let (status, body) = cluster.get(path);
        assert_eq!(status, 404, "{path}: {body}");
        assert!(error_of(&body.to_string()).contains("no site with id 999"), "{path}: {body}");
    }
}

/// A known path requested with a method it does not serve gets 405 with `Allow`, and
/// HEAD works wherever GET only reads.
#[test]
fn methods_get_405_and_head() {
    let cluster = Cluster::start("api_methods", 0, &[]);
    let url = |path: &str| format!("{}{path}", cluster.api);
    let allow_of = |method: &str, path: &str| match ureq::request(method, &url(path)).call() {
        Err(ureq::Error::Status(status, response)) => {
            (status, response.header("allow").unwrap_or_default().to_string(), response.into_string().unwrap())
        }
        Ok(response) => panic!("{method} {path} answered {}", response.status()),
        Err(error) => panic!("{method} {path} failed: {error}"),
    };

    let (status, allow, body) = allow_of("DELETE", "/api/v1/sites/1");
    assert_eq!(status, 405, "{body}");
    assert_eq!(allow, "GET, HEAD");
    assert!(error_of(&body).contains("DELETE is not allowed on /api/v1/sites/1"), "{body}");
    assert_eq!(allow_of("PUT", "/api/v1/sites").1, "GET, HEAD, POST");
    assert_eq!(allow_of("GET", "/api/v1/sites/1/recrawl").1, "POST");
    assert_eq!(allow_of("POST", "/healthz").1, "GET, HEAD");
    assert_eq!(allow_of("POST", "/docs").1, "GET, HEAD", "a path outside the OpenAPI document");

    for path in ["/healthz", "/api/v1/sites", "/console/", "/api/openapi.json"] {
        let response = ureq::head(&url(path)).call().unwrap_or_else(|e| panic!("HEAD {path} failed: {e}"));
        assert_eq!(response.status(), 200, "HEAD {path}");
        assert_eq!(response.into_string().unwrap(), "", "HEAD {path} has no body");
    }

    // A HEAD must never change state, and a GET of addurl adds a site.
    let (status, allow, _) = allow_of("HEAD", "/crudtask/addurl?url=http://127.0.0.4:9/");
    assert_eq!((status, allow.as_str()), (405, "GET"));
    let (_, sites) = cluster.get("/api/v1/sites");
    assert_eq!(sites.as_array().map(Vec::len), Some(0), "{sites}");
}

#[test]
fn openapi_document_and_docs_page() {
    let cluster = Cluster::start("api_docs", 0, &[]);
    let (status, document) = cluster.get("/api/openapi.json");
    assert_eq!(status, 200);
    assert_eq!(document["openapi"], "3.1.0");
    for path in ["/api/v1/sites", "/api/v1/pages", "/api/v1/backlinks", "/crudtask/addurl", "/readyz"] {
        assert!(document["paths"][path].is_object(), "{path} is not documented");
    }

    let response = ureq::get(&format!("{}/docs", cluster.api)).call().unwrap();
    assert_eq!(response.content_type(), "text/html");
    let page = response.into_string().unwrap();
    assert!(page.contains("/api/openapi.json"), "the docs page does not load the document");
    assert!(!page.contains("https://"), "the docs page loads something from outside");

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = get_json(&format!("{}/readyz", cluster.api)).expect("/readyz did not answer");
        if status == 200 {
            assert_eq!(body["status"], "ready");
            break;
        }
        assert!(Instant::now() < deadline, "/readyz stayed {status}: {body}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (status, _) = call(ureq::get(&format!("{}/healthz", cluster.api)), None);
    assert_eq!(status, 200);
}
