//! The OpenAPI 3.1 description of the admin API, generated from the handlers' annotations
//! with utoipa, served at `/api/openapi.json`, and a reference page at `/docs` that
//! renders it in the browser with no file from outside the binary.

use actix_web::{http::header, web, HttpResponse};
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::db::read::{PageRow, RedirectChain, RedirectHop, UrlRow};
use crate::db::sites::{ResponseCounts, Site, SiteProgress};
use crate::readiness::ReadinessBody;

/// The documentation page; it loads `/api/openapi.json` and renders it with its own script.
const DOCS_HTML: &str = include_str!("docs.html");

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Open Ahrefs admin API",
        description = "Sites, crawl progress, pages and backlinks of a self-hosted crawler. \
            When the admin runs with ADMIN_TOKEN, every request that changes state needs \
            `Authorization: Bearer <ADMIN_TOKEN>`; reads need nothing."
    ),
    paths(
        super::api::create_site,
        super::api::list_sites,
        super::api::get_site,
        super::api::recrawl_site,
        super::api::list_urls,
        super::api::get_redirects,
        super::api::list_pages,
        super::api::add_url,
        super::links_api::list_backlinks,
        super::links_api::list_referring_domains,
        super::links_api::list_anchors,
        super::links_api::get_page,
        super::links_api::list_inlinks,
        super::links_api::list_outlinks,
        super::links_api::best_by_links,
        super::links_api::list_broken_links,
        super::links_api::site_audit,
        super::links_api::top_hosts,
        super::links_api::failing_hosts,
        super::export::export,
        super::api::healthz,
        crate::readiness::readyz,
    ),
    components(schemas(
        Site, SiteProgress, ResponseCounts, PageRow, UrlRow, RedirectChain, RedirectHop,
        ErrorBody, ConflictBody, RecrawlQueued, PageList, UrlList, ReadinessBody
    )),
    modifiers(&BearerToken),
    tags(
        (name = "sites", description = "Adding sites and following their crawl"),
        (name = "pages", description = "Fetched pages, URLs and redirects"),
        (name = "links", description = "The link index"),
        (name = "operations", description = "Liveness and readiness"),
    )
)]
pub struct ApiDoc;

/// Declares the `bearer` security scheme that state-changing operations list.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("The ADMIN_TOKEN setting of the admin; needed only when it is set."))
            .build();
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// The body of an error response.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// What is wrong, in words.
    pub error: String,
}

/// The body of the response to a site that exists already.
#[derive(Serialize, ToSchema)]
pub struct ConflictBody {
    pub error: String,
    /// The id of the existing site.
    pub id: i64,
}

/// The body of the response to a recrawl request.
#[derive(Serialize, ToSchema)]
pub struct RecrawlQueued {
    pub id: i64,
    pub urls_queued: i64,
}

/// One page of fetched pages.
#[derive(Serialize, ToSchema)]
pub struct PageList {
    pub items: Vec<PageRow>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// One page of a site's URLs.
#[derive(Serialize, ToSchema)]
pub struct UrlList {
    pub items: Vec<UrlRow>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// The serialized document, made once at start.
struct OpenApiDocument(String);

/// `GET /api/openapi.json`.
async fn openapi_json(document: web::Data<OpenApiDocument>) -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(document.0.clone())
}

/// `GET /docs`.
async fn docs_page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        // The page runs only its own inline script and reads only this server.
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
        ))
        .body(DOCS_HTML)
}

/// Register `/api/openapi.json` and `/docs`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let document = match ApiDoc::openapi().to_pretty_json() {
        Ok(document) => document,
        Err(error) => panic!("the OpenAPI document does not serialize: {error}"),
    };
    cfg.app_data(web::Data::new(OpenApiDocument(document)))
        .route("/api/openapi.json", web::get().to(openapi_json))
        .route("/docs", web::get().to(docs_page));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_lists_every_route() {
        let document = serde_json::to_value(ApiDoc::openapi()).unwrap();
        assert_eq!(document["openapi"], "3.1.0");
        for path in ["/api/v1/sites", "/api/v1/sites/{id}", "/api/v1/pages", "/api/v1/backlinks", "/crudtask/addurl"] {
            assert!(document["paths"][path].is_object(), "{path} is missing");
        }
        let security = &document["paths"]["/api/v1/sites"]["post"]["security"];
        assert!(security.to_string().contains("bearer"), "{security}");
        assert!(document["components"]["securitySchemes"]["bearer"].is_object());
    }
}
