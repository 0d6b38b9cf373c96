//! The admin HTTP API: sites, pages, backlinks, and the Python version's `addurl`.

use actix_web::{error::InternalError, web, HttpRequest, HttpResponse, ResponseError};
use serde::Deserialize;
use serde_json::json;
use sqlx::PgPool;
use utoipa::{IntoParams, ToSchema};

use crate::db::read::{self, StatusFilter};
use crate::db::sites::{self, AddSiteError};
use crate::metrics::SiteAdded;

/// Largest page size of a list endpoint.
const MAX_LIMIT: i64 = 1000;
const DEFAULT_LIMIT: i64 = 100;

/// Settings the API handlers read.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    pub url_policy: crate::url::UrlPolicy,
    pub max_redirect_hops: usize,
}

/// An API error: a status and a message for the caller, always as `{"error": "..."}`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    Conflict { message: String, id: i64 },
    #[error("database error")]
    Database(#[from] sqlx::Error),
}

impl ResponseError for ApiError {
    fn status_code(&self) -> actix_web::http::StatusCode {
        use actix_web::http::StatusCode;
        match self {
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Database(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let body = match self {
            ApiError::Conflict { message, id } => json!({ "error": message, "id": id }),
            ApiError::Database(error) => {
                log::error!("API request failed on the database: {error}");
                json!({ "error": "the database is unavailable; try again later" })
            }
            other => json!({ "error": other.to_string() }),
        };
        HttpResponse::build(self.status_code()).json(body)
    }
}

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Register every route of the API.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::JsonConfig::default().limit(MAX_BODY_BYTES).error_handler(|err, _req| {
        let response = super::request_errors::json_error_response(&err);
        InternalError::from_response(err, response).into()
    }))
    .app_data(web::PayloadConfig::default().limit(MAX_BODY_BYTES))
    .app_data(web::QueryConfig::default().error_handler(|err, _req| {
        // The deserializer's own message names the parameter, without actix's prefix.
        let message = match &err {
            actix_web::error::QueryPayloadError::Deserialize(cause) => format!("invalid query string: {cause}"),
            other => format!("invalid query string: {other}"),
        };
        InternalError::from_response(err, HttpResponse::UnprocessableEntity().json(json!({ "error": message }))).into()
    }))
    .service(
        web::scope("/api/v1")
            .configure(super::links_api::configure)
            .configure(super::export::configure)
            .route("/sites", web::post().to(create_site))
            .route("/sites", web::get().to(list_sites))
            .route("/sites/{id}", web::get().to(get_site))
            .route("/sites/{id}/recrawl", web::post().to(recrawl_site))
            .route("/urls", web::get().to(list_urls))
            .route("/redirects", web::get().to(get_redirects))
            .route("/pages", web::get().to(list_pages)),
    )
    .route("/crudtask/addurl", web::get().to(add_url))
    .route("/healthz", web::get().to(healthz));
}

#[derive(Deserialize, ToSchema)]
pub(super) struct NewSite {
    /// The seed URL: absolute http(s), at most MAX_URL_BYTES long. Its host (and port)
    /// is the site.
    #[schema(example = "https://example.com/")]
    url: String,
}

/// Add a site and queue its seed URL.
#[utoipa::path(
    post, path = "/api/v1/sites", tag = "sites", request_body = NewSite,
    security((), ("bearer" = [])),
    responses(
        (status = 201, description = "The site was added", body = crate::db::sites::Site),
        (status = 409, description = "A site for this host exists", body = super::openapi::ConflictBody),
        (status = 401, description = "ADMIN_TOKEN is set and the request has no or a wrong bearer token", body = super::openapi::ErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = super::openapi::ErrorBody),
        (status = 415, description = "The body is not application/json", body = super::openapi::ErrorBody),
        (status = 422, description = "The body or the URL is invalid", body = super::openapi::ErrorBody),
    )
)]
async fn create_site(
    pool: web::Data<PgPool>,
    settings: web::Data<ApiSettings>,
    body: web::Json<NewSite>,
) -> Result<HttpResponse, ApiError> {
    let seed = settings.url_policy.parse(&body.url).map_err(|e| ApiError::Invalid(e.to_string()))?;
    match sites::add_site(&pool, &seed).await {
        Ok(site) => {
            SiteAdded { id: site.id, host: &site.host }.emit();
            Ok(HttpResponse::Created().json(site))
        }
        Err(AddSiteError::Exists { id, host }) => {
            Err(ApiError::Conflict { message: format!("a site for host {host} already exists"), id })
        }
        Err(AddSiteError::Database(e)) => Err(e.into()),
    }
}

/// List every site with its crawl progress.
#[utoipa::path(
    get, path = "/api/v1/sites", tag = "sites",
    responses((status = 200, description = "Every site", body = Vec<crate::db::sites::SiteProgress>))
)]
async fn list_sites(pool: web::Data<PgPool>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(sites::list_sites(&pool).await?))
}

/// Queue every fetched or blocked URL of a site again.
#[utoipa::path(
    post, path = "/api/v1/sites/{id}/recrawl", tag = "sites",
    params(("id" = i64, Path, description = "Site id", minimum = 1)),
    security((), ("bearer" = [])),
    responses(
        (status = 202, description = "The URLs are queued", body = super::openapi::RecrawlQueued),
        (status = 401, description = "ADMIN_TOKEN is set and the request has no or a wrong bearer token", body = super::openapi::ErrorBody),
        (status = 404, description = "No site has this id", body = super::openapi::ErrorBody),
        (status = 422, description = "The id is not a positive integer", body = super::openapi::ErrorBody),
    )
)]
async fn recrawl_site(pool: web::Data<PgPool>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path, "site id")?;
    let queued = sites::recrawl(&pool, id).await?.ok_or_else(|| ApiError::NotFound(format!("no site with id {id}")))?;
    log::info!(site_id = id; "site {id} recrawl requested: {queued} URLs queued");
    Ok(HttpResponse::Accepted().json(json!({ "id": id, "urls_queued": queued })))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct UrlsQuery {
    /// Site id.
    #[param(value_type = i64, minimum = 1)]
    site_id: String,
    /// Only URLs in this state: pending, queued, fetched, blocked, skipped or external.
    state: Option<String>,
    /// Page size, 1 to 1000; 100 when absent.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// List a site's URLs with their crawl state.
#[utoipa::path(
    get, path = "/api/v1/urls", tag = "pages", params(UrlsQuery),
    responses(
        (status = 200, description = "One page of URLs", body = super::openapi::UrlList),
        (status = 404, description = "No site has this id", body = super::openapi::ErrorBody),
        (status = 422, description = "A parameter is invalid", body = super::openapi::ErrorBody),
    )
)]
async fn list_urls(pool: web::Data<PgPool>, query: web::Query<UrlsQuery>) -> Result<HttpResponse, ApiError> {
    let site_id = parse_id(&query.site_id, "site_id")?;
    let state = match query.state.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(state @ ("external" | "pending" | "queued" | "fetched" | "blocked" | "skipped")) => Some(state),
        Some(other) => {
            return Err(ApiError::Invalid(format!(
                "state must be one of pending, queued, fetched, blocked, skipped, external; got '{other}'"
            )))
        }
    };
    let limit = parse_limit(query.limit.as_deref())?;
    let after = parse_cursor(query.cursor.as_deref())?;

    require_site(&pool, site_id).await?;

    let items = read::urls(&pool, site_id, state, after, limit).await?;
    let next_cursor = next_cursor(items.len(), limit, items.last().map(|u| u.url_id));
    Ok(HttpResponse::Ok().json(json!({ "items": items, "next_cursor": next_cursor })))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct RedirectQuery {
    /// The URL whose stored redirects are followed.
    url: String,
}

/// Follow the stored redirects of a URL to its final target.
#[utoipa::path(
    get, path = "/api/v1/redirects", tag = "pages", params(RedirectQuery),
    responses(
        (status = 200, description = "The redirect chain", body = crate::db::read::RedirectChain),
        (status = 404, description = "The URL has not been seen", body = super::openapi::ErrorBody),
        (status = 422, description = "The URL is invalid", body = super::openapi::ErrorBody),
    )
)]
async fn get_redirects(
    pool: web::Data<PgPool>,
    settings: web::Data<ApiSettings>,
    query: web::Query<RedirectQuery>,
) -> Result<HttpResponse, ApiError> {
    let url = settings.url_policy.parse(&query.url).map_err(|e| ApiError::Invalid(e.to_string()))?;
    let chain = read::redirect_chain(&pool, url.as_str(), settings.max_redirect_hops)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("{url} has not been seen")))?;
    Ok(HttpResponse::Ok().json(chain))
}

/// One site with its crawl progress.
#[utoipa::path(
    get, path = "/api/v1/sites/{id}", tag = "sites",
    params(("id" = i64, Path, description = "Site id", minimum = 1)),
    responses(
        (status = 200, description = "The site", body = crate::db::sites::SiteProgress),
        (status = 404, description = "No site has this id", body = super::openapi::ErrorBody),
        (status = 422, description = "The id is not a positive integer", body = super::openapi::ErrorBody),
    )
)]
async fn get_site(pool: web::Data<PgPool>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path, "site id")?;
    let site =
        sites::site_progress(&pool, id).await?.ok_or_else(|| ApiError::NotFound(format!("no site with id {id}")))?;
    Ok(HttpResponse::Ok().json(site))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct PagesQuery {
    /// Site id.
    #[param(value_type = i64, minimum = 1)]
    site_id: String,
    /// A status code (`404`), a class (`4xx`) or `error` for fetches without a response.
    status: Option<String>,
    /// Page size, 1 to 1000; 100 when absent.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// List a site's fetched pages with their facts.
#[utoipa::path(
    get, path = "/api/v1/pages", tag = "pages", params(PagesQuery),
    responses(
        (status = 200, description = "One page of fetched pages", body = super::openapi::PageList),
        (status = 404, description = "No site has this id", body = super::openapi::ErrorBody),
        (status = 422, description = "A parameter is invalid", body = super::openapi::ErrorBody),
    )
)]
async fn list_pages(pool: web::Data<PgPool>, query: web::Query<PagesQuery>) -> Result<HttpResponse, ApiError> {
    let site_id = parse_id(&query.site_id, "site_id")?;
    let status = parse_status(query.status.as_deref())?;
    let limit = parse_limit(query.limit.as_deref())?;
    let after = parse_cursor(query.cursor.as_deref())?;

    require_site(&pool, site_id).await?;

    let items = read::pages(&pool, site_id, status, after, limit).await?;
    let next_cursor = next_cursor(items.len(), limit, items.last().map(|p| p.url_id));
    Ok(HttpResponse::Ok().json(json!({ "items": items, "next_cursor": next_cursor })))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct AddUrlQuery {
    /// The seed URL of the site to add.
    url: Option<String>,
}

/// The Python version's endpoint: plain-text `OK`, `ERROR parse` or `ERROR idempotence`.
#[utoipa::path(
    get, path = "/crudtask/addurl", tag = "sites", params(AddUrlQuery),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The site was added", body = String, content_type = "text/plain", example = "OK"),
        (status = 401, description = "ADMIN_TOKEN is set and the request has no or a wrong bearer token", body = super::openapi::ErrorBody),
        (status = 409, description = "A site for this host exists", body = String, content_type = "text/plain", example = "ERROR idempotence"),
        (status = 422, description = "The URL is missing or invalid", body = String, content_type = "text/plain", example = "ERROR parse"),
    )
)]
async fn add_url(pool: web::Data<PgPool>, settings: web::Data<ApiSettings>, req: HttpRequest) -> HttpResponse {
    let url = web::Query::<AddUrlQuery>::from_query(req.query_string()).ok().and_then(|q| q.into_inner().url);
    let Some(seed) = url.as_deref().and_then(|u| settings.url_policy.parse(u).ok()) else {
        return HttpResponse::UnprocessableEntity().content_type("text/plain").body("ERROR parse");
    };
    match sites::add_site(&pool, &seed).await {
        Ok(site) => {
            SiteAdded { id: site.id, host: &site.host }.emit();
            HttpResponse::Ok().content_type("text/plain").body("OK")
        }
        Err(AddSiteError::Exists { .. }) => {
            HttpResponse::Conflict().content_type("text/plain").body("ERROR idempotence")
        }
        Err(AddSiteError::Database(error)) => {
            log::error!("addurl failed on the database: {error}");
            HttpResponse::ServiceUnavailable().content_type("text/plain").body("ERROR database")
        }
    }
}

/// Liveness: the process runs and serves HTTP. Whether it can work is `/readyz`.
#[utoipa::path(
    get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is alive", body = String, content_type = "text/plain", example = "ok"))
)]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

/// Return 404 for a site id that names no site, so that a mistyped id is not mistaken
/// for an empty site.
pub(super) async fn require_site(pool: &PgPool, id: i64) -> Result<(), ApiError> {
    if sites::site_exists(pool, id).await? {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!("no site with id {id}")))
    }
}

pub(super) fn parse_id(raw: &str, name: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::Invalid(format!("{name} must be a positive integer, got '{raw}'")))
}

pub(super) fn parse_limit(raw: Option<&str>) -> Result<i64, ApiError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_LIMIT);
    };
    raw.parse::<i64>()
        .ok()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .ok_or_else(|| ApiError::Invalid(format!("limit must be an integer from 1 to {MAX_LIMIT}, got '{raw}'")))
}

/// Cursors are the last id of the previous page, so that paging is stable while rows are added.
pub(super) fn parse_cursor(raw: Option<&str>) -> Result<i64, ApiError> {
    match raw {
        None | Some("") => Ok(0),
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| ApiError::Invalid(format!("cursor '{raw}' is not one this API returned"))),
    }
}

pub(super) fn next_cursor(returned: usize, limit: i64, last_id: Option<i64>) -> Option<String> {
    (returned as i64 == limit).then_some(last_id).flatten().map(|id| id.to_string())
}

/// `200` (exact), `4xx` (class) or `error` (no response).
fn parse_status(raw: Option<&str>) -> Result<StatusFilter, ApiError> {
    let Some(raw) = raw.filter(|s| !s.is_empty()) else {
        return Ok(StatusFilter::Any);
    };
    let invalid = || {
        ApiError::Invalid(format!("status must be a code such as 404, a class such as 4xx, or 'error'; got '{raw}'"))
    };
    if raw.eq_ignore_ascii_case("error") {
        return Ok(StatusFilter::Error);
    }
    if let Some(class) = raw.strip_suffix("xx").or_else(|| raw.strip_suffix("XX")) {
        return class.parse::<i16>().ok().filter(|c| (1..=5).contains(c)).map(StatusFilter::Class).ok_or_else(invalid);
    }
    raw.parse::<i16>().ok().filter(|c| (100..=599).contains(c)).map(StatusFilter::Exact).ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_filter_forms() {
        assert_eq!(parse_status(Some("404")).unwrap(), StatusFilter::Exact(404));
        assert_eq!(parse_status(Some("4xx")).unwrap(), StatusFilter::Class(4));
        assert_eq!(parse_status(Some("error")).unwrap(), StatusFilter::Error);
        assert_eq!(parse_status(None).unwrap(), StatusFilter::Any);
        assert!(parse_status(Some("9xx")).is_err());
        assert!(parse_status(Some("abc")).is_err());
    }

    #[test]
    fn limit_and_cursor_bounds() {
        assert_eq!(parse_limit(None).unwrap(), DEFAULT_LIMIT);
        assert!(parse_limit(Some("0")).is_err());
        assert!(parse_limit(Some("1001")).is_err());
        assert_eq!(parse_cursor(Some("42")).unwrap(), 42);
        assert!(parse_cursor(Some("-1")).is_err());
    }

    #[test]
    fn next_cursor_only_on_full_page() {
        assert_eq!(next_cursor(10, 10, Some(99)), Some("99".to_string()));
        assert_eq!(next_cursor(3, 10, Some(99)), None);
    }
}
