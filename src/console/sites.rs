//! The sites list with its add form, a site's live crawl progress, and recrawl.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use sqlx::PgPool;

use super::format;
use super::i18n::Lang;
use super::templates::{Count, ExportLinks, ResponseClass, SitePage, SiteRow, SitesPage};
use super::visitor::{with_page_headers, ConsoleError, Visitor};
use crate::db::sites::{self, AddSiteError, SiteProgress};
use crate::metrics::SiteAdded;
use crate::url::UrlError;

/// A notice named in the query string after a redirect, with its count if any.
#[derive(Deserialize, Default)]
pub struct NoticeQuery {
    notice: Option<String>,
    count: Option<i64>,
}

impl NoticeQuery {
    fn text(&self, lang: Lang) -> Option<String> {
        let count = lang.number(self.count.unwrap_or(0));
        match self.notice.as_deref()? {
            "added" => Some(lang.text("sites.notice.added").to_string()),
            "exists" => Some(lang.text("sites.notice.exists").to_string()),
            "recrawl" => Some(lang.format("sites.notice.recrawl", &[("count", &count)])),
            _ => None,
        }
    }
}

pub async fn list(
    visitor: Visitor,
    pool: web::Data<PgPool>,
    query: web::Query<NoticeQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let notice = query.text(visitor.lang);
    render_list(&visitor, &pool, StatusCode::OK, notice, None, String::new()).await
}

async fn render_list(
    visitor: &Visitor,
    pool: &PgPool,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
    url_value: String,
) -> Result<HttpResponse, ConsoleError> {
    let sites = sites::list_sites(pool).await.map_err(|e| visitor.database_error(e))?;
    let page = SitesPage {
        frame: visitor.frame("sites"),
        notice,
        error,
        url_value,
        sites: sites.iter().map(|site| site_row(visitor.lang, site)).collect(),
    };
    Ok(visitor.render(status, &page))
}

/// Explain why a typed URL cannot be crawled, in the visitor's language. The parser's own reason
/// for an unparsable URL is left in English, as the `url` crate words it.
fn url_error_detail(lang: Lang, error: &UrlError) -> String {
    match error {
        UrlError::Parse { input, reason } => lang.format("url_error.parse", &[("input", input), ("reason", reason)]),
        UrlError::Scheme { input, scheme } => lang.format("url_error.scheme", &[("input", input), ("scheme", scheme)]),
        UrlError::NoHost { input } => lang.format("url_error.no_host", &[("input", input)]),
        UrlError::TooLong { length, max } => {
            lang.format("url_error.too_long", &[("length", &length.to_string()), ("max", &max.to_string())])
        }
    }
}

#[derive(Deserialize)]
pub struct AddSiteForm {
    url: Option<String>,
    csrf: Option<String>,
}

pub async fn add(
    visitor: Visitor,
    pool: web::Data<PgPool>,
    form: web::Form<AddSiteForm>,
) -> Result<HttpResponse, ConsoleError> {
    visitor.check_csrf(form.csrf.as_deref())?;
    let typed = form.url.as_deref().unwrap_or_default().trim().to_string();
    let seed = match visitor.state.url_policy.parse(&typed) {
        Ok(seed) => seed,
        Err(error) => {
            let detail = url_error_detail(visitor.lang, &error);
            let message = visitor.lang.format("sites.error.invalid_url", &[("detail", &detail)]);
            return render_list(&visitor, &pool, StatusCode::UNPROCESSABLE_ENTITY, None, Some(message), typed).await;
        }
    };
    match sites::add_site(&pool, &seed).await {
        Ok(site) => {
            SiteAdded { id: site.id, host: &site.host }.emit();
            Ok(visitor.redirect(&format!("/console/sites/{}?notice=added", site.id)))
        }
        Err(AddSiteError::Exists { id, .. }) => Ok(visitor.redirect(&format!("/console/sites/{id}?notice=exists"))),
        Err(AddSiteError::Database(error)) => Err(visitor.database_error(error)),
    }
}

pub async fn show(
    visitor: Visitor,
    pool: web::Data<PgPool>,
    path: web::Path<String>,
    query: web::Query<NoticeQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let site_id = super::parse_id(&path, visitor.lang)?;
    let site = load_site(&visitor, &pool, site_id).await?;
    let lang = visitor.lang;
    let classes = [
        ("2xx", "2xx", &site.responses.status_2xx),
        ("3xx", "3xx", &site.responses.status_3xx),
        ("4xx", "4xx", &site.responses.status_4xx),
        ("5xx", "5xx", &site.responses.status_5xx),
        ("error", "error", &site.responses.error),
    ];
    let responses = classes
        .into_iter()
        .map(|(key, filter, count)| ResponseClass {
            key,
            filter,
            label: if key == "error" { lang.text("progress.errors").to_string() } else { key.to_string() },
            count: Count::new(lang, *count),
        })
        .collect();
    let waiting = if site.state == "crawling" {
        sites::waiting_reason(&pool, site_id).await.map_err(|e| visitor.database_error(e))?
    } else {
        None
    };
    let waiting = waiting.map(|(url, reason)| {
        lang.format("site.waiting", &[("reason", &format::state_reason(lang, &reason)), ("url", &url)])
    });
    let page = SitePage {
        frame: visitor.frame("sites"),
        notice: query.text(lang).or(waiting),
        error: None,
        bar_max: site.urls_fetched.max(1),
        site: site_row(lang, &site),
        responses,
        exports: site_exports(lang, site_id),
    };
    Ok(visitor.render(StatusCode::OK, &page))
}

/// The site's progress as the API's `GET /api/v1/sites/{id}` returns it, behind the
/// console's login, for the page's live updates.
pub async fn progress(
    visitor: Visitor,
    pool: web::Data<PgPool>,
    path: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let site_id = super::parse_id(&path, visitor.lang)?;
    let site = load_site(&visitor, &pool, site_id).await?;
    Ok(with_page_headers(HttpResponse::Ok()).json(site))
}

#[derive(Deserialize)]
pub struct RecrawlForm {
    csrf: Option<String>,
    /// `list` to return to the sites list instead of the site's page.
    return_to: Option<String>,
}

pub async fn recrawl(
    visitor: Visitor,
    pool: web::Data<PgPool>,
    path: web::Path<String>,
    form: web::Form<RecrawlForm>,
) -> Result<HttpResponse, ConsoleError> {
    visitor.check_csrf(form.csrf.as_deref())?;
    let site_id = super::parse_id(&path, visitor.lang)?;
    let queued = sites::recrawl(&pool, site_id)
        .await
        .map_err(|e| visitor.database_error(e))?
        .ok_or_else(|| visitor.error(StatusCode::NOT_FOUND, "error.site_not_found"))?;
    log::info!(site_id = site_id; "site {site_id} recrawl requested from the console: {queued} URLs queued");
    let location = match form.return_to.as_deref() {
        Some("list") => format!("/console/?notice=recrawl&count={queued}"),
        _ => format!("/console/sites/{site_id}?notice=recrawl&count={queued}"),
    };
    Ok(visitor.redirect(&location))
}

/// Load a site's progress, or return a 404 page when there is no such site.
pub async fn load_site(visitor: &Visitor, pool: &PgPool, site_id: i64) -> Result<SiteProgress, ConsoleError> {
    sites::site_progress(pool, site_id)
        .await
        .map_err(|e| visitor.database_error(e))?
        .ok_or_else(|| visitor.error(StatusCode::NOT_FOUND, "error.site_not_found"))
}

fn site_row(lang: Lang, site: &SiteProgress) -> SiteRow {
    let state_label = match site.state.as_str() {
        "crawling" => lang.text("state.crawling"),
        _ => lang.text("state.done"),
    };
    let host = if site.host_display.is_empty() { site.host.clone() } else { site.host_display.clone() };
    SiteRow {
        id: site.id,
        host_query: format::query_value(&site.host),
        host,
        seed_href: format::external_href(&site.seed_url),
        seed_url: site.seed_url.clone(),
        state: site.state.clone(),
        state_label,
        discovered: Count::new(lang, site.urls_discovered),
        fetched: Count::new(lang, site.urls_fetched),
        frontier: Count::new(lang, (site.urls_discovered - site.urls_fetched).max(0)),
        blocked: Count::new(lang, site.urls_blocked),
        skipped: Count::new(lang, site.urls_skipped),
        status_2xx: Count::new(lang, site.responses.status_2xx),
        status_3xx: Count::new(lang, site.responses.status_3xx),
        status_4xx: Count::new(lang, site.responses.status_4xx),
        status_5xx: Count::new(lang, site.responses.status_5xx),
        errors: Count::new(lang, site.responses.error),
        links: Count::new(lang, site.links),
    }
}

/// List the exports of a site: its pages, its links and its audit.
pub fn site_exports(lang: Lang, site_id: i64) -> Vec<ExportLinks> {
    [("pages", "export.pages"), ("links", "export.links"), ("audit", "export.audit")]
        .into_iter()
        .map(|(name, key)| export_links(lang, name, key, &[("site_id", &site_id.to_string())]))
        .collect()
}

/// Build the CSV and JSON links of the API's export `name` with its query.
pub fn export_links(lang: Lang, name: &str, key: &'static str, params: &[(&str, &str)]) -> ExportLinks {
    ExportLinks {
        label: lang.text(key),
        csv_href: format::href(&format!("/api/v1/exports/{name}.csv"), params),
        json_href: format::href(&format!("/api/v1/exports/{name}.json"), params),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_error_in_visitors_language() {
        let error = UrlError::Scheme { input: "ftp://x.y/".into(), scheme: "ftp".into() };
        assert_eq!(
            url_error_detail(Lang::Ru, &error),
            "у 'ftp://x.y/' схема 'ftp', а обходить можно только http и https"
        );
        assert_eq!(url_error_detail(Lang::En, &error), error.to_string(), "English keeps the API's wording");
    }
}
