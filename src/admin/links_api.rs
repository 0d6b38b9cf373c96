//! The link index and audit endpoints: backlinks, referring domains, anchors, a page's
//! links, link reports, rank and the site audit.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use sqlx::PgPool;

use super::api::{next_cursor, parse_cursor, parse_id, parse_limit, require_site, ApiError, ApiSettings};
use crate::db::audit::{self, AuditThresholds};
use crate::db::links::{self, BacklinkQuery, BacklinkSort, LinkStatus, Target};

/// Register the routes of this module under `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/backlinks", web::get().to(list_backlinks))
        .route("/referring-domains", web::get().to(list_referring_domains))
        .route("/anchors", web::get().to(list_anchors))
        .route("/pages/{url_id}", web::get().to(get_page))
        .route("/pages/{url_id}/inlinks", web::get().to(list_inlinks))
        .route("/pages/{url_id}/outlinks", web::get().to(list_outlinks))
        .route("/sites/{id}/best-by-links", web::get().to(best_by_links))
        .route("/sites/{id}/broken-links", web::get().to(list_broken_links))
        .route("/sites/{id}/audit", web::get().to(site_audit))
        .route("/hosts/top", web::get().to(top_hosts))
        .route("/hosts/failing", web::get().to(failing_hosts));
}

/// A target as the query string gives it: `target` (or `url`, as before) and `mode`.
#[derive(Deserialize)]
pub struct TargetQuery {
    pub target: Option<String>,
    pub url: Option<String>,
    /// `url`, `host` or `domain`; without it, a value with a scheme is a URL and anything
    /// else a domain.
    pub mode: Option<String>,
}

/// Turn the query's target into a [`Target`], normalized as the index stores it.
pub fn parse_target(query: &TargetQuery, settings: &ApiSettings) -> Result<Target, ApiError> {
    let raw = query
        .target
        .as_deref()
        .or(query.url.as_deref())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::Invalid("target is missing: give target=<URL, host or domain>".into()))?;
    Target::parse(&settings.url_policy, raw, query.mode.as_deref()).map_err(|e| ApiError::Invalid(e.to_string()))
}

fn target_json(target: &Target) -> serde_json::Value {
    match target {
        Target::Url(url) => json!({ "mode": "url", "value": url }),
        Target::Host(host) => json!({ "mode": "host", "value": host }),
        Target::Domain(domain) => json!({ "mode": "domain", "value": domain }),
    }
}

#[derive(Deserialize)]
struct BacklinksQuery {
    #[serde(flatten)]
    target: TargetQuery,
    status: Option<String>,
    follow: Option<String>,
    external: Option<String>,
    sort: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

fn parse_flag(raw: Option<&str>, name: &str) -> Result<bool, ApiError> {
    match raw {
        None | Some("") | Some("false") | Some("0") | Some("all") => Ok(false),
        Some("true") | Some("1") | Some("only") => Ok(true),
        Some(other) => Err(ApiError::Invalid(format!("{name} must be true or false; got '{other}'"))),
    }
}

/// List the links pointing at a URL, host or domain.
#[utoipa::path(
    get, path = "/api/v1/backlinks", tag = "links",
    params(("target" = Option<String>, Query, description = "A URL, host or domain; `url` is an older name for it"), ("mode" = Option<String>, Query, description = "url, host or domain; without it a value with a scheme is a URL, else a domain"), ("status" = Option<String>, Query, description = "live (the default), lost or all"), ("follow" = Option<bool>, Query, description = "Only followed links"), ("external" = Option<bool>, Query, description = "Only links from other hosts"), ("sort" = Option<String>, Query, description = "first_seen (the default) or last_seen"), ("limit" = Option<i64>, Query, description = "Page size, 1 to 1000; 100 when absent", minimum = 1, maximum = 1000), ("cursor" = Option<String>, Query, description = "The next_cursor of the previous page")),
    responses(
        (status = 200, description = "A JSON object", body = serde_json::Value),
        (status = 422, description = "A parameter is invalid", body = super::openapi::ErrorBody),
    )
)]
async fn list_backlinks(
    pool: web::Data<PgPool>,
    settings: web::Data<ApiSettings>,
    query: web::Query<BacklinksQuery>,
) -> Result<HttpResponse, ApiError> {
    let target = parse_target(&query.target, &settings)?;
    let status = match query.status.as_deref().unwrap_or("live") {
        "live" => LinkStatus::Live,
        "lost" => LinkStatus::Lost,
        "all" => LinkStatus::All,
        other => return Err(ApiError::Invalid(format!("status must be live, lost or all; got '{other}'"))),
    };
    let sort = match query.sort.as_deref().unwrap_or("first_seen") {
        "first_seen" => BacklinkSort::FirstSeen,
        "last_seen" => BacklinkSort::LastSeen,
        other => return Err(ApiError::Invalid(format!("sort must be first_seen or last_seen; got '{other}'"))),
    };
    let after = match query.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(cursor) => Some(
            links::decode_cursor(cursor)
                .ok_or_else(|| ApiError::Invalid(format!("cursor '{cursor}' is not one this API returned")))?,
        ),
    };
    let q = BacklinkQuery {
        target: target.clone(),
        status,
        followed_only: parse_flag(query.follow.as_deref(), "follow")?,
        external_only: parse_flag(query.external.as_deref(), "external")?,
        sort,
        after,
        limit: parse_limit(query.limit.as_deref())?,
    };
    let page = links::backlinks(&pool, &q).await?;
    Ok(HttpResponse::Ok().json(json!({
        "target": target_json(&target),
        "total": page.total,
        "items": page.items,
        "next_cursor": page.next_cursor,
    })))
}

#[derive(Deserialize)]
struct GroupQuery {
    #[serde(flatten)]
    target: TargetQuery,
    limit: Option<String>,
}

/// List the domains linking to a target, with their link counts.
#[utoipa::path(
    get, path = "/api/v1/referring-domains", tag = "links",
    params(("target" = Option<String>, Query, description = "A URL, host or domain; `url` is an older name for it"), ("mode" = Option<String>, Query, description = "url, host or domain; without it a value with a scheme is a URL, else a domain"), ("limit" = Option<i64>, Query, description = "Page size, 1 to 1000; 100 when absent", minimum = 1, maximum = 1000)),
    responses(
        (status = 200, description = "A JSON object", body = serde_json::Value),
        (status = 422, description = "A parameter is invalid", body = super::openapi::ErrorBody),
    )
)]
async fn list_referring_domains(
    pool: web::Data<PgPool>,
    settings: web::Data<ApiSettings>,
    query: web::Query<GroupQuery>,
) -> Result<HttpResponse, ApiError> {
    let target = parse_target(&query.target, &settings)?;
    let items = links::referring_domains(&pool, &target, parse_limit(query.limit.as_deref())?).await?;
    Ok(HttpResponse::Ok().json(json!({ "target": target_json(&target), "items": items })))
}

/// List the anchor texts of the links to a target, with their counts.
#[utoipa::path(
    get, path = "/api/v1/anchors", tag = "links",
    params(("target" = Option<String>, Query, description = "A URL, host or domain; `url` is an older name for it"), ("mode" = Option<String>, Query, description = "url, host or domain; without it a value with a scheme is a URL, else a domain"), ("limit" = Option<i64>, Query, description = "Page size, 1 to 1000; 100 when absent", minimum = 1, maximum = 1000)),
    responses(
        (status = 200, description = "A JSON object", body = serde_json::Value),
        (status = 422, description = "A parameter is invalid", body = super::openapi::ErrorBody),
    )
)]
async fn list_anchors(
    pool: web::Data<PgPool>,
    settings: web::Data<ApiSettings>,
    query: web::Query<GroupQuery>,
) -> Result<HttpResponse, ApiError> {
    let target = parse_target(&query.target, &settings)?;
    let items = links::anchors(&pool, &target, parse_limit(query.limit.as_deref())?).await?;
    Ok(HttpResponse::Ok().json(json!({ "target": target_json(&target), "items": items })))
}

/// One URL with its latest fetch, link counts and rank.
#[utoipa::path(
    get, path = "/api/v1/pages/{url_id}", tag = "links",
    params(("url_id" = i64, Path, description = "URL id", minimum = 1)),
    responses(
        (status = 200, description = "A JSON object", body = serde_json::Value),
        (status = 404, description = "Not found", body = super::openapi::ErrorBody),
        (status = 422, description = "A parameter is invalid", body = super::openapi::ErrorBody),
    )
)]
async fn get_page(pool: web::Data<PgPool>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let url_id = parse_id(&path, "page id")?;
    let page = crate::db::read::page(&pool, url_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no URL with id {url_id}")))?;
    Ok(HttpResponse::Ok().json(page))
}

#[derive(Deserialize)]
struct PageQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

/// List the links pointing at a URL.
#[utoipa::path(
    get, path = "/api/v1/pages/{url_id}/inlinks", tag = "links",
    params(("url_id" = i64, Path, description = "URL id", minimum = 1), ("limit" = Option<i64>, Query, description = "Page size, 1 to 1000; 100 when absent", minimum = 1, maximum = 1000), ("cursor" = Option<String>, Query, description = "The next_cursor of the previous page")),
    responses(
        (status = 200, description = "A JSON object", body = serde_json::Value),
        (status = 404, description = "Not found", body = super::openapi::ErrorBody),
        (status = 422, description = "A parameter is invalid", body = super::openapi::ErrorBody),
    )
)]
async fn list_inlinks(
    pool: web::Data<PgPool>,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    page_links(&pool, &path, &query, false).await
}

/// List the links of a page.
#[utoipa::path(
    get, path = "/api/v1/pages/{url_id}/outlinks", tag = "links",
    params(("url_id" = i64, Path, description = "URL id", minimum = 1), ("limit" = Option<i64>, Query, description = "Page size, 1 to 1000; 100 when absent", minimum = 1, maximum = 1000), ("cursor" = Option<String>, Query, description = "The next_cursor of the previous page")),
    responses(
        (status = 200, description = "A JSON object", body = serde_json::Value),
        (status = 404, description = "Not found", body = super::openapi::ErrorBody),
        (status = 422, description = "A parameter is invalid", body = super::openapi::ErrorBody),
    )
)]
async fn list_outlinks(
    pool: web::Data<PgPool>,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    page_links(&pool, &path, &query, true).await
}

async fn page_links(pool: &PgPool, path: &str, query: &PageQuery, outgoing: bool) -> Result<HttpResponse, ApiError> {
    let url_id = parse_id(path, "page id")?;
    let limit = parse_limit(query.limit.as_deref())?;
    let after = parse_cursor(query.cursor.as_deref())?;
    if !links::url_exists(pool, url_id).await? {
        return Err(ApiError::NotFound(format!("no URL with id {url_id}")));
    }
    let items = links::page_links(pool, url_id, outgoing, after, limit).await?;
    let next_cursor = next_cursor(items.len(), limit, items.last().map(|l| l.link_id));
    Ok(HttpResponse::Ok().json(json!({ "url_id": url_id, "items": items, "next_cursor": next_cursor })))
}

#[derive(Deserialize)]
struct LimitQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

/// List a site's pages with the most links pointing at them.
#[utoipa::path(
    get, path = "/api/v1/sites/{id}/best-by-links", tag = "links",
    params(("id" = i64, Path, description = "Site id", minimum = 1), ("limit" = Option<i64>, Query, description = "Page size, 1 to 1000; 100 when absent", minimum = 1, maximum = 1000)),
    responses(
        (status = 200, description = "A JSON object", body = serde_json::Value),
        (status = 404, description = "No site has this id", body = super::openapi::ErrorBody),
        (status = 422, description = "A parameter is invalid", body = super::openapi::ErrorBody),
    )
)]
async fn best_by_links(
    pool: web::Data<PgPool>,
    path: web::Path<String>,
    query: web::Query<LimitQuery>,
) -> Result<HttpResponse, ApiError> {
    let site_id = parse_id(&path, "site id")?;
    let limit = parse_limit(query.limit.as_deref())?;
    require_site(&pool, site_id).await?;
    let items = links::best_by_links(&pool, site_id, limit).await?;
    Ok(HttpResponse::Ok().json(json!({ "site_id": site_id, "items": items })))
}

/// List the links of a site that point at 4xx, 5xx or failed URLs.
#[utoipa::path(
    get, path = "/api/v1/sites/{id}/broken-links", tag = "links",
    params(("id" = i64, Path, description = "Site id", minimum = 1), ("limit" = Option<i64>, Query, description = "Page size, 1 to 1000; 100 when absent", minimum = 1, maximum = 1000), ("cursor" = Option<String>, Query, description = "The next_cursor of the previous page")),
    responses(
        (status = 200, description = "A JSON object", body = serde_json::Value),
        (status = 404, description = "No site has this id", body = super::openapi::ErrorBody),
        (status = 422, description = "A parameter is invalid", body = super::openapi::ErrorBody),
    )
)]
async fn list_broken_links(
    pool: web::Data<PgPool>,
    path: web::Path<String>,
    query: web::Query<LimitQuery>,
) -> Result<HttpResponse, ApiError> {
    let site_id = parse_id(&path, "site id")?;
    let limit = parse_limit(query.limit.as_deref())?;
    let after = parse_cursor(query.cursor.as_deref())?;
    require_site(&pool, site_id).await?;
    let items = links::broken_links(&pool, site_id, after, limit).await?;
    let next_cursor = next_cursor(items.len(), limit, items.last().map(|l| l.link_id));
    Ok(HttpResponse::Ok().json(json!({ "site_id": site_id, "items": items, "next_cursor": next_cursor })))
}

/// Run the SEO audit of a site.
#[utoipa::path(
    get, path = "/api/v1/sites/{id}/audit", tag = "links",
    params(("id" = i64, Path, description = "Site id", minimum = 1)),
    responses(
        (status = 200, description = "A JSON object", body = serde_json::Value),
        (status = 404, description = "Not found", body = super::openapi::ErrorBody),
        (status = 422, description = "A parameter is invalid", body = super::openapi::ErrorBody),
    )
)]
async fn site_audit(
    pool: web::Data<PgPool>,
    thresholds: web::Data<AuditThresholds>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let site_id = parse_id(&path, "site id")?;
    if crate::db::sites::site_progress(&pool, site_id).await?.is_none() {
        return Err(ApiError::NotFound(format!("no site with id {site_id}")));
    }
    Ok(HttpResponse::Ok().json(audit::site_audit(&pool, site_id, &thresholds).await?))
}

/// List the hosts with the most links pointing at them.
#[utoipa::path(
    get, path = "/api/v1/hosts/top", tag = "links",
    params(("limit" = Option<i64>, Query, description = "Page size, 1 to 1000; 100 when absent", minimum = 1, maximum = 1000)),
    responses(
        (status = 200, description = "A JSON object", body = serde_json::Value),
        (status = 422, description = "A parameter is invalid", body = super::openapi::ErrorBody),
    )
)]
async fn top_hosts(pool: web::Data<PgPool>, query: web::Query<LimitQuery>) -> Result<HttpResponse, ApiError> {
    let items = links::top_hosts(&pool, parse_limit(query.limit.as_deref())?).await?;
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}

/// List the hosts with the most failed fetches or URLs held back by an unreadable robots.txt.
#[utoipa::path(
    get, path = "/api/v1/hosts/failing", tag = "links",
    params(("limit" = Option<i64>, Query, description = "Page size, 1 to 1000; 100 when absent", minimum = 1, maximum = 1000)),
    responses(
        (status = 200, description = "A JSON object", body = serde_json::Value),
        (status = 422, description = "A parameter is invalid", body = super::openapi::ErrorBody),
    )
)]
async fn failing_hosts(pool: web::Data<PgPool>, query: web::Query<LimitQuery>) -> Result<HttpResponse, ApiError> {
    let items = links::failing_hosts(&pool, parse_limit(query.limit.as_deref())?).await?;
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}
