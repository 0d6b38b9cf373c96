//! The address policy end to end: scrapers that run with ALLOW_PRIVATE_ADDRESSES=false
//! must record URLs on loopback addresses as blocked and send them no request, including
//! a URL that an allowed host redirects to.
//!
//! Only 127.0.0.0/8 and names mapped to it with RESOLVE are used; the other non-public
//! ranges (169.254.169.254 among them) are covered by the unit tests of `is_public`.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{Canned, Cluster, FixtureServer};

/// The state and state reason of a URL, as stored.
fn url_state(cluster: &Cluster, url: &str) -> String {
    common::psql(
        &cluster.database_url,
        &format!("SELECT state || ' ' || coalesce(state_reason, '') FROM urls WHERE url = '{url}'"),
    )
}

#[test]
fn private_addresses_are_blocked_without_a_request() {
    let private = FixtureServer::start(
        None,
        HashMap::from([("/".into(), Canned::html("<title>secret</title>"))]),
        Duration::ZERO,
    );
    let mut routes = HashMap::new();
    // The allowed host sends the crawler on to the private server.
    routes.insert("/".to_string(), Canned::redirect(302, &private.url("/secret")));
    let allowed = FixtureServer::start(None, routes, Duration::ZERO);
    let allowed_seed = format!("http://allowed.test:{}/", allowed.port);

    // RESOLVE maps allowed.test to the loopback address, and its entries are exempt from the
    // address policy because the operator sets them. 127.0.0.1 itself is not exempt.
    let resolve = format!("allowed.test:{}:127.0.0.1", allowed.port);
    let cluster = Cluster::start(
        "ssrf",
        1,
        &[("ALLOW_PRIVATE_ADDRESSES", "false"), ("RESOLVE", &resolve), ("RESPECT_ROBOTS", "false")],
    );
    let private_site = cluster.add_site(&private.url("/"));
    let allowed_site = cluster.add_site(&allowed_seed);

    cluster.wait_done(private_site, Duration::from_secs(120));
    cluster.wait_done(allowed_site, Duration::from_secs(120));

    assert_eq!(url_state(&cluster, &private.url("/")), "blocked private_address");
    assert_eq!(url_state(&cluster, &private.url("/secret")), "blocked private_address");
    assert_eq!(url_state(&cluster, &private.url("/sitemap.xml")), "blocked private_address");
    assert_eq!(private.request_count(), 0, "the private server got requests: {:?}", private.requests.lock().unwrap());

    let (_, pages) = cluster.get(&format!("/api/v1/pages?site_id={allowed_site}"));
    let seed =
        pages["items"].as_array().unwrap().iter().find(|p| p["url"] == allowed_seed).cloned().unwrap_or_default();
    assert_eq!(seed["status"], 302, "{pages}");
    assert_eq!(seed["redirect_to"], private.url("/secret"), "{pages}");
    assert!(allowed.request_count() >= 1, "the allowed host got no request");

    let site = cluster.site(private_site);
    assert_eq!(site["urls_blocked"], 3, "{site}");
    assert_eq!(site["urls_fetched"], 0, "{site}");
    cluster.assert_no_duplicates();
}
