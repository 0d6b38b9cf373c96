//! The link index: backlinks, referring domains, anchors, inlinks and outlinks, and the
//! link reports of a site.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgPool, Postgres, QueryBuilder};

use crate::messages::ROBOTS_UNAVAILABLE_REASON;
use crate::url::UrlPolicy;

/// What a backlink query points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One normalized URL.
    Url(String),
    /// Every URL of one host (with its port when not the default).
    Host(String),
    /// Every URL of one registrable domain, subdomains included.
    Domain(String),
}

/// The reasons a search target is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("{0}")]
    InvalidUrl(String),
    #[error("'{0}' is not a valid host name")]
    InvalidHost(String),
    #[error("'{0}' is a public suffix, not a registrable domain: give a domain under it, such as example.{0}")]
    PublicSuffix(String),
    #[error("mode must be url, host or domain; got '{0}'")]
    InvalidMode(String),
}

impl Target {
    /// Parse a target as a user gives it, normalized as the index stores it. `mode` is
    /// `url`, `host` or `domain`. Without a mode, a value with a scheme is a URL and anything
    /// else a domain. For a host or a domain, a whole URL may be given and its host counts.
    pub fn parse(policy: &UrlPolicy, input: &str, mode: Option<&str>) -> Result<Target, TargetError> {
        let input = input.trim();
        let mode = mode.filter(|m| !m.is_empty()).unwrap_or(if input.contains("://") { "url" } else { "domain" });
        match mode {
            "url" => {
                let url = policy.parse(input).map_err(|e| TargetError::InvalidUrl(e.to_string()))?;
                Ok(Target::Url(url.into()))
            }
            "host" => Ok(Target::Host(site_host_of(policy, input)?)),
            "domain" => {
                let domain = crate::url::registrable_domain(&site_host_of(policy, input)?);
                if is_known_suffix(&domain) {
                    return Err(TargetError::PublicSuffix(domain));
                }
                Ok(Target::Domain(domain))
            }
            other => Err(TargetError::InvalidMode(other.to_string())),
        }
    }
}

/// Extract the host of `input`, with its port when not the default. `input` is a bare host
/// or a URL whose path and query are ignored.
fn site_host_of(policy: &UrlPolicy, input: &str) -> Result<String, TargetError> {
    let invalid = || TargetError::InvalidHost(input.to_string());
    let without_scheme = input.split_once("://").map_or(input, |(_, rest)| rest);
    let authority = without_scheme.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() {
        return Err(invalid());
    }
    let parsed = policy.parse(&format!("http://{authority}/")).map_err(|_| invalid())?;
    // The URL parser keeps empty labels such as the one in `a..b`, which no host has.
    let name = parsed.host_str().unwrap_or_default().trim_end_matches('.');
    if !name.starts_with('[') && name.split('.').any(str::is_empty) {
        return Err(invalid());
    }
    Ok(crate::url::site_host(&parsed))
}

/// Check whether the public suffix list names `name` itself, as it does `com` and `co.uk`
/// but not `localhost` or an unknown top-level name.
fn is_known_suffix(name: &str) -> bool {
    psl::suffix(name.as_bytes()).is_some_and(|suffix| suffix.is_known() && suffix.as_bytes() == name.as_bytes())
}

impl Target {
    fn push_condition(&self, query: &mut QueryBuilder<'_, Postgres>) {
        match self {
            Target::Url(url) => query.push("t.url = ").push_bind(url.clone()),
            Target::Host(host) => query.push("t.host = ").push_bind(host.clone()),
            Target::Domain(domain) => query.push("t.domain = ").push_bind(domain.clone()),
        };
    }
}

/// Which backlinks to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkStatus {
    Live,
    Lost,
    All,
}

/// The order of a backlink list, newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BacklinkSort {
    FirstSeen,
    LastSeen,
}

/// A page of backlinks: keyset-paginated on (sort time, link id).
#[derive(Debug, Clone)]
pub struct BacklinkQuery {
    pub target: Target,
    pub status: LinkStatus,
    /// Only links without nofollow on the element or its page.
    pub followed_only: bool,
    /// Only links from another registrable domain.
    pub external_only: bool,
    pub sort: BacklinkSort,
    /// The (sort time, link id) of the last row of the previous page.
    pub after: Option<(DateTime<Utc>, i64)>,
    pub limit: i64,
}

/// One link pointing at the target.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Backlink {
    pub link_id: i64,
    pub source_url: String,
    pub source_title: Option<String>,
    pub source_domain: Option<String>,
    pub target_url: String,
    pub anchor_text: String,
    pub href: String,
    pub nofollow: bool,
    pub ugc: bool,
    pub sponsored: bool,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub lost_at: Option<DateTime<Utc>>,
    /// The sort time of this row, for the next page's cursor.
    #[serde(skip)]
    pub sort_time: DateTime<Utc>,
}

/// A page of backlinks with the total over every page.
#[derive(Debug, Serialize)]
pub struct BacklinkPage {
    pub total: i64,
    pub items: Vec<Backlink>,
    pub next_cursor: Option<String>,
}

// A page's links to itself, most of them to its own `#fragment`s, are not backlinks of
// it, because they show nothing about who links to the page. They stay in the site's link
// count and in the page's outlinks.
const BACKLINK_FROM: &str = "
    FROM links l
    JOIN urls t ON t.id = l.target_url_id
    JOIN urls s ON s.id = l.source_url_id
    LEFT JOIN pages p ON p.url_id = l.source_url_id
    WHERE l.source_url_id <> l.target_url_id AND ";

fn push_filters(query: &mut QueryBuilder<'_, Postgres>, q: &BacklinkQuery) {
    q.target.push_condition(query);
    match q.status {
        LinkStatus::Live => query.push(" AND l.lost_at IS NULL"),
        LinkStatus::Lost => query.push(" AND l.lost_at IS NOT NULL"),
        LinkStatus::All => query.push(""),
    };
    if q.followed_only {
        query.push(" AND NOT l.nofollow AND NOT COALESCE(p.nofollow, false)");
    }
    if q.external_only {
        query.push(" AND s.domain IS DISTINCT FROM t.domain");
    }
}

/// List the links pointing at a target.
pub async fn backlinks(pool: &PgPool, q: &BacklinkQuery) -> Result<BacklinkPage, sqlx::Error> {
    let sort_column = match q.sort {
        BacklinkSort::FirstSeen => "l.first_seen",
        BacklinkSort::LastSeen => "l.last_seen",
    };

    let mut count = QueryBuilder::<Postgres>::new("SELECT count(*)");
    count.push(BACKLINK_FROM);
    push_filters(&mut count, q);
    let total: i64 = count.build_query_scalar().fetch_one(pool).await?;

    let mut list = QueryBuilder::<Postgres>::new(format!(
        "SELECT l.id AS link_id, s.url AS source_url, p.title AS source_title, s.domain AS source_domain,
                t.url AS target_url, l.anchor_text, l.href, l.nofollow, l.ugc, l.sponsored, l.first_seen,
                l.last_seen, l.lost_at, {sort_column} AS sort_time"
    ));
    list.push(BACKLINK_FROM);
    push_filters(&mut list, q);
    if let Some((time, id)) = q.after {
        list.push(format!(" AND ({sort_column}, l.id) < (")).push_bind(time).push(", ").push_bind(id).push(")");
    }
    list.push(format!(" ORDER BY {sort_column} DESC, l.id DESC LIMIT ")).push_bind(q.limit);
    let items: Vec<Backlink> = list.build_query_as().fetch_all(pool).await?;

    let next_cursor =
        (items.len() as i64 == q.limit).then(|| items.last().map(|b| encode_cursor(b.sort_time, b.link_id))).flatten();
    Ok(BacklinkPage { total, items, next_cursor })
}

/// A cursor is the sort time in microseconds and the link id of the last row.
pub fn encode_cursor(time: DateTime<Utc>, id: i64) -> String {
    format!("{}_{id}", time.timestamp_micros())
}

pub fn decode_cursor(cursor: &str) -> Option<(DateTime<Utc>, i64)> {
    let (micros, id) = cursor.split_once('_')?;
    Some((DateTime::from_timestamp_micros(micros.parse().ok()?)?, id.parse().ok()?))
}

/// One domain linking to the target.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct ReferringDomain {
    pub domain: Option<String>,
    pub backlinks: i64,
    pub followed: i64,
    pub first_seen: DateTime<Utc>,
}

/// The domains with live links to a target, most links first.
pub async fn referring_domains(
    pool: &PgPool,
    target: &Target,
    limit: i64,
) -> Result<Vec<ReferringDomain>, sqlx::Error> {
    let mut query = QueryBuilder::<Postgres>::new(
        "SELECT s.domain, count(*) AS backlinks,
                count(*) FILTER (WHERE NOT l.nofollow AND NOT COALESCE(p.nofollow, false)) AS followed,
                min(l.first_seen) AS first_seen",
    );
    query.push(BACKLINK_FROM);
    target.push_condition(&mut query);
    query.push(" AND l.lost_at IS NULL GROUP BY s.domain ORDER BY backlinks DESC, s.domain LIMIT ").push_bind(limit);
    query.build_query_as().fetch_all(pool).await
}

/// One anchor text used in links to the target.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Anchor {
    pub anchor_text: String,
    pub backlinks: i64,
    pub referring_domains: i64,
}

/// The anchor texts of live links to a target, most used first.
pub async fn anchors(pool: &PgPool, target: &Target, limit: i64) -> Result<Vec<Anchor>, sqlx::Error> {
    let mut query = QueryBuilder::<Postgres>::new(
        "SELECT l.anchor_text, count(*) AS backlinks, count(DISTINCT s.domain) AS referring_domains",
    );
    query.push(BACKLINK_FROM);
    target.push_condition(&mut query);
    query
        .push(" AND l.lost_at IS NULL GROUP BY l.anchor_text ORDER BY backlinks DESC, l.anchor_text LIMIT ")
        .push_bind(limit);
    query.build_query_as().fetch_all(pool).await
}

/// A link of a page, with the state of the other end.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct PageLink {
    pub link_id: i64,
    /// The other end: the target of an outlink, the source of an inlink.
    pub url_id: i64,
    pub url: String,
    pub anchor_text: String,
    pub nofollow: bool,
    pub ugc: bool,
    pub sponsored: bool,
    /// HTTP status of the other end, when fetched.
    pub status: Option<i16>,
    pub error_kind: Option<String>,
    /// Crawl state of the other end (`external` for pages outside every site).
    pub state: String,
    pub first_seen: DateTime<Utc>,
}

/// Check whether a URL with this id exists.
pub async fn url_exists(pool: &PgPool, id: i64) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM urls WHERE id = $1)").bind(id).fetch_one(pool).await
}

/// The live links of a page (`outgoing`) or to a page (incoming), in link id order. The
/// incoming ones leave out the page's links to itself, as backlinks do.
pub async fn page_links(
    pool: &PgPool,
    url_id: i64,
    outgoing: bool,
    after: i64,
    limit: i64,
) -> Result<Vec<PageLink>, sqlx::Error> {
    let (this_end, other_end) =
        if outgoing { ("source_url_id", "target_url_id") } else { ("target_url_id", "source_url_id") };
    let self_links = if outgoing { "" } else { "AND l.source_url_id <> l.target_url_id" };
    sqlx::query_as(&format!(
        "SELECT l.id AS link_id, o.id AS url_id, o.url, l.anchor_text, l.nofollow, l.ugc, l.sponsored,
                p.status, p.error_kind, o.state, l.first_seen
         FROM links l
         JOIN urls o ON o.id = l.{other_end}
         LEFT JOIN pages p ON p.url_id = o.id
         WHERE l.{this_end} = $1 AND l.lost_at IS NULL AND l.id > $2 {self_links}
         ORDER BY l.id
         LIMIT $3"
    ))
    .bind(url_id)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// A page of a site ranked by the links pointing at it.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct RankedPage {
    pub url_id: i64,
    pub url: String,
    pub title: Option<String>,
    pub status: Option<i16>,
    pub internal_inlinks: i64,
    pub external_inlinks: i64,
    pub url_rating: Option<f64>,
}

/// The pages of a site with the most live inlinks, internal and external counted apart,
/// without each page's links to itself.
pub async fn best_by_links(pool: &PgPool, site_id: i64, limit: i64) -> Result<Vec<RankedPage>, sqlx::Error> {
    sqlx::query_as(
        "SELECT t.id AS url_id, t.url, p.title, p.status,
                count(*) FILTER (WHERE s.site_id = t.site_id) AS internal_inlinks,
                count(*) FILTER (WHERE s.site_id IS DISTINCT FROM t.site_id) AS external_inlinks,
                r.score AS url_rating
         FROM urls t
         JOIN links l ON l.target_url_id = t.id AND l.lost_at IS NULL AND l.source_url_id <> t.id
         JOIN urls s ON s.id = l.source_url_id
         LEFT JOIN pages p ON p.url_id = t.id
         LEFT JOIN url_rank r ON r.url_id = t.id
         WHERE t.site_id = $1 AND t.kind = 'page'
         GROUP BY t.id, t.url, p.title, p.status, r.score
         ORDER BY external_inlinks DESC, internal_inlinks DESC, t.id
         LIMIT $2",
    )
    .bind(site_id)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// A host ranked by the links pointing at it.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct RankedHost {
    pub host: String,
    pub backlinks: i64,
    pub referring_domains: i64,
    pub domain_rating: Option<f64>,
}

/// Hosts with the most live links pointing at them from other domains.
pub async fn top_hosts(pool: &PgPool, limit: i64) -> Result<Vec<RankedHost>, sqlx::Error> {
    sqlx::query_as(
        "SELECT t.host, count(*) AS backlinks, count(DISTINCT s.domain) AS referring_domains,
                max(r.score) AS domain_rating
         FROM links l
         JOIN urls t ON t.id = l.target_url_id
         JOIN urls s ON s.id = l.source_url_id
         LEFT JOIN domain_rank r ON r.domain = t.domain
         WHERE l.lost_at IS NULL AND s.domain IS DISTINCT FROM t.domain
         GROUP BY t.host
         ORDER BY backlinks DESC, t.host
         LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// A host whose fetches failed or whose robots.txt could not be read.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct FailingHost {
    pub host: String,
    /// Fetches of the host that got no response.
    pub failed_fetches: i64,
    /// URLs of the host not crawled because its robots.txt could not be read: pending a
    /// retry, or blocked after the last one.
    pub robots_unavailable_urls: i64,
    /// URLs of the host known to the index.
    pub urls: i64,
    /// The error kinds of the failed fetches, and `robots_unavailable` when URLs wait for robots.txt.
    pub error_kinds: Vec<String>,
}

/// List the hosts with fetches that got no response or URLs held back by an unreadable
/// robots.txt, with how many URLs each has.
///
/// NOTE: each call reads every page and URL row, because no index covers `status IS NULL`
/// or the reason prefix. Partial indexes on both, with the prefix written into the query as
/// a literal so that the planner can match it, would make it cheap on a large index.
pub async fn failing_hosts(pool: &PgPool, limit: i64) -> Result<Vec<FailingHost>, sqlx::Error> {
    // The reason prefix is the one the scraper writes for an unavailable robots.txt. A URL's
    // reason is cleared when it is fetched, so a host whose robots.txt became readable drops out.
    sqlx::query_as(
        "WITH failed AS (
             SELECT u.host, count(*) AS failed_fetches, array_agg(DISTINCT p.error_kind) AS error_kinds
             FROM pages p JOIN urls u ON u.id = p.url_id
             WHERE p.status IS NULL
             GROUP BY u.host
         ), waiting AS (
             SELECT host, count(*) AS robots_unavailable_urls
             FROM urls
             WHERE state_reason LIKE $2 || '%'
             GROUP BY host
         )
         SELECT h.host,
                coalesce(f.failed_fetches, 0) AS failed_fetches,
                coalesce(w.robots_unavailable_urls, 0) AS robots_unavailable_urls,
                (SELECT count(*) FROM urls a WHERE a.host = h.host) AS urls,
                coalesce(f.error_kinds, '{}')
                    || CASE WHEN w.host IS NULL THEN '{}'::text[] ELSE ARRAY['robots_unavailable'] END AS error_kinds
         FROM (SELECT host FROM failed UNION SELECT host FROM waiting) h
         LEFT JOIN failed f ON f.host = h.host
         LEFT JOIN waiting w ON w.host = h.host
         ORDER BY coalesce(f.failed_fetches, 0) + coalesce(w.robots_unavailable_urls, 0) DESC, h.host
         LIMIT $1",
    )
    .bind(limit)
    .bind(ROBOTS_UNAVAILABLE_REASON)
    .fetch_all(pool)
    .await
}

/// A link from a page of the site to a target that answered 4xx or 5xx or failed.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct BrokenLink {
    pub link_id: i64,
    pub source_url: String,
    pub target_url: String,
    pub anchor_text: String,
    pub status: Option<i16>,
    pub error_kind: Option<String>,
}

/// Live links of a site's pages whose target is broken, in link id order.
pub async fn broken_links(pool: &PgPool, site_id: i64, after: i64, limit: i64) -> Result<Vec<BrokenLink>, sqlx::Error> {
    sqlx::query_as(
        "SELECT l.id AS link_id, s.url AS source_url, t.url AS target_url, l.anchor_text, tp.status, tp.error_kind
         FROM pages sp
         JOIN links l ON l.source_url_id = sp.url_id AND l.lost_at IS NULL
         JOIN urls s ON s.id = l.source_url_id
         JOIN urls t ON t.id = l.target_url_id
         JOIN pages tp ON tp.url_id = t.id
         WHERE sp.site_id = $1 AND (tp.status >= 400 OR tp.status IS NULL) AND l.id > $2
         ORDER BY l.id
         LIMIT $3",
    )
    .bind(site_id)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_host_and_domain_of_url() {
        let policy = UrlPolicy::default();
        let url = "https://Doc.Rust-Lang.org/book/ch01.html?x=1";
        assert_eq!(Target::parse(&policy, url, Some("domain")), Ok(Target::Domain("rust-lang.org".into())));
        assert_eq!(Target::parse(&policy, url, Some("host")), Ok(Target::Host("doc.rust-lang.org".into())));
        assert_eq!(
            Target::parse(&policy, url, None),
            Ok(Target::Url("https://doc.rust-lang.org/book/ch01.html?x=1".into()))
        );
        assert_eq!(
            Target::parse(&policy, "http://127.0.0.1:8080/x", Some("host")),
            Ok(Target::Host("127.0.0.1:8080".into()))
        );
        assert_eq!(Target::parse(&policy, "127.0.0.1:8080", Some("domain")), Ok(Target::Domain("127.0.0.1".into())));
        assert_eq!(Target::parse(&policy, "www.example.co.uk/", None), Ok(Target::Domain("example.co.uk".into())));
    }

    #[test]
    fn target_rejects_public_suffix_and_bad_hosts() {
        let policy = UrlPolicy::default();
        assert_eq!(Target::parse(&policy, "com", None), Err(TargetError::PublicSuffix("com".into())));
        assert_eq!(Target::parse(&policy, "co.uk", Some("domain")), Err(TargetError::PublicSuffix("co.uk".into())));
        assert_eq!(Target::parse(&policy, "localhost", None), Ok(Target::Domain("localhost".into())));
        assert_eq!(Target::parse(&policy, "a..b", Some("host")), Err(TargetError::InvalidHost("a..b".into())));
        assert_eq!(
            Target::parse(&policy, "https:///x", Some("host")),
            Err(TargetError::InvalidHost("https:///x".into()))
        );
        assert_eq!(Target::parse(&policy, "example.com", Some("page")), Err(TargetError::InvalidMode("page".into())));
        assert!(matches!(Target::parse(&policy, "example.com", Some("url")), Err(TargetError::InvalidUrl(_))));
    }

    #[test]
    fn cursor_round_trips() {
        let time = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        assert_eq!(decode_cursor(&encode_cursor(time, 42)), Some((time, 42)));
        assert_eq!(decode_cursor("garbage"), None);
        assert_eq!(decode_cursor("1_x"), None);
    }
}
