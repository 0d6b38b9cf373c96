//! The site audit: each finding is a query over the stored crawl that lists the URLs it
//! concerns, with a stable code and a severity.

use serde::Serialize;
use sqlx::PgPool;

/// Most example URLs listed per finding.
const MAX_EXAMPLES: i64 = 10;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
    Notice,
}

/// The thresholds of the audit.
#[derive(Debug, Clone)]
pub struct AuditThresholds {
    /// Pages more clicks than this from the seed are reported as deep.
    pub max_depth: i32,
    pub slow_ms: i32,
    pub large_bytes: i64,
    pub title_min_chars: i32,
    pub title_max_chars: i32,
}

impl Default for AuditThresholds {
    fn default() -> Self {
        Self { max_depth: 5, slow_ms: 1000, large_bytes: 1024 * 1024, title_min_chars: 10, title_max_chars: 60 }
    }
}

/// One kind of problem and the URLs that have it.
#[derive(Debug, Serialize)]
pub struct Finding {
    pub code: &'static str,
    pub severity: Severity,
    pub count: i64,
    pub examples: Vec<Example>,
}

/// A URL with a problem, and what about it.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Example {
    pub url: String,
    pub detail: Option<String>,
}

/// The findings of a site, worst first; findings with no URL are left out.
#[derive(Debug, Serialize)]
pub struct Audit {
    pub site_id: i64,
    pub findings: Vec<Finding>,
}

/// The site's fetched pages: `$1` is the site id.
const SITE_PAGES: &str = "pages p JOIN urls u ON u.id = p.url_id WHERE p.site_id = $1 AND u.kind = 'page'";

/// The site's fetched HTML pages that answered 200.
const HTML_PAGES: &str = "pages p JOIN urls u ON u.id = p.url_id
    WHERE p.site_id = $1 AND u.kind = 'page' AND p.status = 200 AND p.content_type ILIKE '%html%'";

/// Each finding's query selects `url` and `detail`; `$1` is the site id and `$2..$6` the
/// thresholds in the order of [`AuditThresholds`].
fn finding_queries() -> Vec<(&'static str, Severity, String)> {
    use Severity::{Error, Notice, Warning};
    let inlinks = "(SELECT count(*) FROM links l
        WHERE l.target_url_id = u.id AND l.lost_at IS NULL AND l.source_url_id <> u.id) || ' inlinks'";
    let site_links = "pages sp JOIN links l ON l.source_url_id = sp.url_id AND l.lost_at IS NULL
        JOIN urls s ON s.id = l.source_url_id JOIN urls t ON t.id = l.target_url_id";
    vec![
        ("http_4xx", Error, format!("SELECT u.url, {inlinks} AS detail FROM {SITE_PAGES} AND p.status BETWEEN 400 AND 499")),
        ("http_5xx", Error, format!("SELECT u.url, {inlinks} AS detail FROM {SITE_PAGES} AND p.status BETWEEN 500 AND 599")),
        ("fetch_failed", Error, format!("SELECT u.url, p.error_kind AS detail FROM {SITE_PAGES} AND p.status IS NULL")),
        (
            "broken_links",
            Error,
            format!(
                "SELECT s.url, t.url || ' (' || COALESCE(tp.status::text, tp.error_kind) || ')' AS detail
                 FROM {site_links} JOIN pages tp ON tp.url_id = t.id
                 WHERE sp.site_id = $1 AND (tp.status >= 400 OR tp.status IS NULL)"
            ),
        ),
        (
            "redirect_chain",
            Warning,
            format!(
                "SELECT u.url, (SELECT url FROM urls WHERE id = p.redirect_url_id) AS detail
                 FROM {SITE_PAGES} AND p.redirect_url_id IS NOT NULL
                 AND EXISTS (SELECT 1 FROM pages p2 WHERE p2.url_id = p.redirect_url_id AND p2.redirect_url_id IS NOT NULL)"
            ),
        ),
        (
            "redirect_loop",
            Error,
            "WITH RECURSIVE chain (start_id, current_id, path, is_cycle) AS (
                SELECT p.url_id, p.redirect_url_id, ARRAY[p.url_id], p.redirect_url_id = p.url_id
                FROM pages p WHERE p.site_id = $1 AND p.redirect_url_id IS NOT NULL
                UNION ALL
                SELECT c.start_id, p.redirect_url_id, c.path || c.current_id, p.redirect_url_id = ANY (c.path || c.current_id)
                FROM chain c JOIN pages p ON p.url_id = c.current_id
                WHERE NOT c.is_cycle AND p.redirect_url_id IS NOT NULL AND cardinality(c.path) < 50
             )
             SELECT DISTINCT u.url, cardinality(c.path) || ' hops' AS detail
             FROM chain c JOIN urls u ON u.id = c.start_id WHERE c.is_cycle"
                .to_string(),
        ),
        (
            "internal_link_to_redirect",
            Warning,
            format!(
                "SELECT s.url, t.url AS detail FROM {site_links} JOIN pages tp ON tp.url_id = t.id
                 WHERE sp.site_id = $1 AND t.site_id = $1 AND tp.status BETWEEN 300 AND 399"
            ),
        ),
        ("title_missing", Error, format!("SELECT u.url, NULL AS detail FROM {HTML_PAGES} AND p.title IS NULL")),
        ("title_empty", Error, format!("SELECT u.url, NULL AS detail FROM {HTML_PAGES} AND p.title = ''")),
        (
            "title_duplicate",
            Warning,
            format!(
                "SELECT u.url, p.title AS detail FROM {HTML_PAGES} AND p.title <> '' AND p.title IN (
                    SELECT p.title FROM {HTML_PAGES} GROUP BY p.title HAVING count(*) > 1)"
            ),
        ),
        (
            "title_too_long",
            Notice,
            format!("SELECT u.url, length(p.title) || ' characters' AS detail FROM {HTML_PAGES} AND length(p.title) > $6"),
        ),
        (
            "title_too_short",
            Notice,
            format!(
                "SELECT u.url, length(p.title) || ' characters' AS detail FROM {HTML_PAGES}
                 AND length(p.title) BETWEEN 1 AND $5 - 1"
            ),
        ),
        (
            "description_missing",
            Warning,
            format!("SELECT u.url, NULL AS detail FROM {HTML_PAGES} AND COALESCE(p.meta_description, '') = ''"),
        ),
        (
            "description_duplicate",
            Warning,
            format!(
                "SELECT u.url, p.meta_description AS detail FROM {HTML_PAGES} AND p.meta_description <> ''
                 AND p.meta_description IN (
                    SELECT p.meta_description FROM {HTML_PAGES} GROUP BY p.meta_description HAVING count(*) > 1)"
            ),
        ),
        ("h1_missing", Warning, format!("SELECT u.url, NULL AS detail FROM {HTML_PAGES} AND p.h1_count = 0")),
        ("h1_multiple", Notice, format!("SELECT u.url, p.h1_count || ' h1' AS detail FROM {HTML_PAGES} AND p.h1_count > 1")),
        (
            "canonical_to_other_url",
            Notice,
            format!("SELECT u.url, p.canonical AS detail FROM {HTML_PAGES} AND p.canonical IS NOT NULL AND p.canonical <> u.url"),
        ),
        (
            "canonical_not_200",
            Error,
            format!(
                "SELECT u.url, p.canonical || ' (' || COALESCE(
                    (SELECT COALESCE(cp.status::text, cp.error_kind) FROM urls cu JOIN pages cp ON cp.url_id = cu.id
                     WHERE cu.url = p.canonical), 'not fetched') || ')' AS detail
                 FROM {HTML_PAGES} AND p.canonical IS NOT NULL AND p.canonical <> u.url
                 AND NOT EXISTS (SELECT 1 FROM urls cu JOIN pages cp ON cp.url_id = cu.id
                                 WHERE cu.url = p.canonical AND cp.status = 200)"
            ),
        ),
        ("noindex", Notice, format!("SELECT u.url, NULL AS detail FROM {SITE_PAGES} AND p.noindex")),
        (
            "nofollow_internal_links",
            Notice,
            format!(
                "SELECT s.url, t.url AS detail FROM {site_links}
                 WHERE sp.site_id = $1 AND t.site_id = $1 AND (l.nofollow OR sp.nofollow)"
            ),
        ),
        (
            "sitemap_page_not_linked",
            Warning,
            "SELECT u.url, NULL AS detail FROM urls u WHERE u.site_id = $1 AND u.kind = 'page' AND u.in_sitemap
                 AND NOT EXISTS (
                    SELECT 1 FROM links l JOIN pages sp ON sp.url_id = l.source_url_id
                    WHERE l.target_url_id = u.id AND l.lost_at IS NULL AND sp.site_id = $1 AND l.source_url_id <> u.id)".to_string(),
        ),
        ("too_deep", Notice, format!("SELECT u.url, u.depth || ' clicks' AS detail FROM {SITE_PAGES} AND u.depth > $2")),
        (
            "slow_page",
            Notice,
            format!("SELECT u.url, p.response_time_ms || ' ms' AS detail FROM {SITE_PAGES} AND p.response_time_ms > $3"),
        ),
        (
            "large_page",
            Notice,
            format!("SELECT u.url, p.body_bytes || ' bytes' AS detail FROM {SITE_PAGES} AND p.body_bytes > $4"),
        ),
        (
            "http_resources_on_https",
            Warning,
            format!(
                "SELECT u.url, p.insecure_resources || ' resources' AS detail FROM {HTML_PAGES} AND p.insecure_resources > 0"
            ),
        ),
        (
            "images_without_alt",
            Notice,
            format!(
                "SELECT u.url, p.images_missing_alt || ' images' AS detail FROM {HTML_PAGES} AND p.images_missing_alt > 0"
            ),
        ),
    ]
}

/// One query that lists every finding's URLs as text arrays `[code, severity, url,
/// detail]`, for the streamed export; `$1` is the site id and the thresholds are the
/// defaults.
pub fn export_sql() -> String {
    let t = AuditThresholds::default();
    let parts: Vec<String> = finding_queries()
        .into_iter()
        .map(|(code, severity, sql)| {
            let severity = match severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Notice => "notice",
            };
            let sql = sql
                .replace("$2", &t.max_depth.to_string())
                .replace("$3", &t.slow_ms.to_string())
                .replace("$4", &t.large_bytes.to_string())
                .replace("$5", &t.title_min_chars.to_string())
                .replace("$6", &t.title_max_chars.to_string());
            format!("SELECT ARRAY['{code}', '{severity}', f.url, f.detail::text] FROM ({sql}) f")
        })
        .collect();
    parts.join("\nUNION ALL\n")
}

/// Run every finding's query for a site.
pub async fn site_audit(pool: &PgPool, site_id: i64, thresholds: &AuditThresholds) -> Result<Audit, sqlx::Error> {
    let mut findings = Vec::new();
    for (code, severity, sql) in finding_queries() {
        let rows = run(pool, &sql, site_id, thresholds).await?;
        if rows.0 > 0 {
            findings.push(Finding { code, severity, count: rows.0, examples: rows.1 });
        }
    }
    findings.sort_by_key(|f| (f.severity, std::cmp::Reverse(f.count)));
    Ok(Audit { site_id, findings })
}

async fn run(pool: &PgPool, sql: &str, site_id: i64, t: &AuditThresholds) -> Result<(i64, Vec<Example>), sqlx::Error> {
    // Every query names all parameters, so that one bind list serves them all, and the
    // window count is taken before the LIMIT, so one round trip gives count and examples.
    let rows: Vec<(i64, String, Option<String>)> = sqlx::query_as(&format!(
        "SELECT count(*) OVER (), url, detail FROM ({sql}) f
         WHERE $1::int8 IS NOT NULL AND $2::int4 IS NOT NULL AND $3::int4 IS NOT NULL AND $4::int8 IS NOT NULL
           AND $5::int4 IS NOT NULL AND $6::int4 IS NOT NULL
         ORDER BY url LIMIT {MAX_EXAMPLES}"
    ))
    .bind(site_id)
    .bind(t.max_depth)
    .bind(t.slow_ms)
    .bind(t.large_bytes)
    .bind(t.title_min_chars)
    .bind(t.title_max_chars)
    .fetch_all(pool)
    .await?;
    let count = rows.first().map_or(0, |(total, _, _)| *total);
    Ok((count, rows.into_iter().map(|(_, url, detail)| Example { url, detail }).collect()))
}
