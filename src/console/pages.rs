//! The pages of a site, filtered by status and URL substring, and one page's facts with
//! its inlinks and outlinks.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use sqlx::PgPool;

use super::format;
use super::i18n::Lang;
use super::sites::{export_links, load_site};
use super::templates::{
    Fact, HeaderRow, LinkRow, PageDetailPage, PageHeading, PageRowView, Pager, PagesPage, SelectOption,
};
use super::visitor::{ConsoleError, Visitor};
use crate::db::links::{self, PageLink};
use crate::db::read::{self, PageDetail, PageRow, StatusFilter};

/// Rows of one page of a table.
const PAGE_SIZE: i64 = 50;

/// Rows read per query while searching URLs for a substring.
const SCAN_BATCH: i64 = 500;

/// Rows one search request reads at most before it returns what it found with a cursor
/// to go on, so that a rare substring on a large site cannot hold a connection for long.
const MAX_SCANNED: usize = 5000;

#[derive(Deserialize)]
pub struct PagesQuery {
    status: Option<String>,
    q: Option<String>,
    cursor: Option<String>,
}

pub async fn list(
    visitor: Visitor,
    pool: web::Data<PgPool>,
    path: web::Path<String>,
    query: web::Query<PagesQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let lang = visitor.lang;
    let site_id = super::parse_id(&path, lang)?;
    let site = load_site(&visitor, &pool, site_id).await?;

    let status_raw = query.status.as_deref().unwrap_or_default().trim().to_string();
    let status =
        parse_status(&status_raw).ok_or_else(|| visitor.error(StatusCode::BAD_REQUEST, "error.invalid_status"))?;
    let search = query.q.as_deref().unwrap_or_default().trim().to_string();
    let after = match query.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => 0,
        Some(cursor) => cursor
            .parse::<i64>()
            .ok()
            .filter(|c| *c >= 0)
            .ok_or_else(|| visitor.error(StatusCode::BAD_REQUEST, "error.invalid_cursor"))?,
    };

    let found = if search.is_empty() {
        let rows =
            read::pages(&pool, site_id, status, after, PAGE_SIZE).await.map_err(|e| visitor.database_error(e))?;
        let next = (rows.len() as i64 == PAGE_SIZE).then(|| rows.last().map(|r| r.url_id)).flatten();
        Found { rows, next, scanned_out: false }
    } else {
        search_pages(&pool, site_id, status, &search, after).await.map_err(|e| visitor.database_error(e))?
    };

    let base = format!("/console/sites/{site_id}/pages");
    let pager = Pager {
        first_href: (after > 0).then(|| format::href(&base, &[("status", &status_raw), ("q", &search)])),
        next_href: found
            .next
            .map(|next| format::href(&base, &[("status", &status_raw), ("q", &search), ("cursor", &next.to_string())])),
    };
    let scan_note =
        found.scanned_out.then(|| lang.format("pages.scan_note", &[("count", &lang.number(MAX_SCANNED as i64))]));
    let page = PagesPage {
        frame: visitor.frame("sites"),
        site_id,
        site_host: site.host_display.clone(),
        status_options: status_options(lang, &status_raw),
        filtered: !status_raw.is_empty() || !search.is_empty(),
        search,
        scan_note,
        rows: found.rows.iter().map(|row| page_row(lang, row)).collect(),
        pager,
        exports: vec![export_links(lang, "pages", "export.pages", &[("site_id", &site_id.to_string())])],
    };
    Ok(visitor.render(StatusCode::OK, &page))
}

/// The rows of one page of a list and where the next page starts.
struct Found {
    rows: Vec<PageRow>,
    next: Option<i64>,
    /// The search read `MAX_SCANNED` rows without filling the page.
    scanned_out: bool,
}

/// Read a site's pages in id order after `after` and keep those whose URL contains
/// `search`, ignoring case, until a page is full, the site has no more, or
/// `MAX_SCANNED` rows were read.
// NOTE: `db::read::pages` has no URL filter, so the search reads rows and filters them
// here. On large sites a substring index (pg_trgm) in PostgreSQL would be faster.
async fn search_pages(
    pool: &PgPool,
    site_id: i64,
    status: StatusFilter,
    search: &str,
    mut after: i64,
) -> Result<Found, sqlx::Error> {
    let needle = search.to_lowercase();
    let mut rows = Vec::new();
    let mut scanned = 0;
    loop {
        let batch = read::pages(pool, site_id, status, after, SCAN_BATCH).await?;
        let exhausted = (batch.len() as i64) < SCAN_BATCH;
        for row in batch {
            after = row.url_id;
            scanned += 1;
            if row.url.to_lowercase().contains(&needle) {
                rows.push(row);
                if rows.len() as i64 == PAGE_SIZE {
                    return Ok(Found { rows, next: Some(after), scanned_out: false });
                }
            }
        }
        if exhausted {
            return Ok(Found { rows, next: None, scanned_out: false });
        }
        if scanned >= MAX_SCANNED {
            return Ok(Found { rows, next: Some(after), scanned_out: true });
        }
    }
}

/// Parse a status filter as the API's `status` parameter takes it: `""` (any), a class
/// such as `4xx`, `error`, or a code such as `404`.
fn parse_status(raw: &str) -> Option<StatusFilter> {
    if raw.is_empty() {
        return Some(StatusFilter::Any);
    }
    if raw.eq_ignore_ascii_case("error") {
        return Some(StatusFilter::Error);
    }
    if let Some(class) = raw.strip_suffix("xx").or_else(|| raw.strip_suffix("XX")) {
        return class.parse::<i16>().ok().filter(|c| (1..=5).contains(c)).map(StatusFilter::Class);
    }
    raw.parse::<i16>().ok().filter(|c| (100..=599).contains(c)).map(StatusFilter::Exact)
}

fn status_options(lang: Lang, selected: &str) -> Vec<SelectOption> {
    let mut options: Vec<SelectOption> = [
        ("", lang.text("filter.status.any")),
        ("2xx", "2xx"),
        ("3xx", "3xx"),
        ("4xx", "4xx"),
        ("5xx", "5xx"),
        ("error", lang.text("progress.errors")),
    ]
    .into_iter()
    .map(|(value, label)| SelectOption {
        value: value.to_string(),
        label: label.to_string(),
        selected: value.eq_ignore_ascii_case(selected),
    })
    .collect();
    // An exact code typed into the address keeps its own entry, so the form shows it.
    if !options.iter().any(|o| o.selected) {
        options.push(SelectOption { value: selected.to_string(), label: selected.to_string(), selected: true });
    }
    options
}

fn page_row(lang: Lang, row: &PageRow) -> PageRowView {
    let indexing: Vec<&str> = [(row.noindex, "noindex"), (row.nofollow, "nofollow")]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| n)
        .collect();
    PageRowView {
        url_id: row.url_id,
        url: row.url.clone(),
        status: format::status(row.status, row.error_kind.as_deref()),
        status_sort: row.status.map_or(1000, i32::from),
        status_class: format::status_class(row.status),
        title: row.title.clone().unwrap_or_default(),
        h1: row.h1.clone().unwrap_or_default(),
        depth: row.depth,
        response_time_ms: row.response_time_ms,
        response_time: format::milliseconds(lang, row.response_time_ms),
        size_bytes: row.body_bytes.unwrap_or(0),
        size: format::bytes(lang, row.body_bytes),
        indexing: indexing.join(", "),
    }
}

#[derive(Deserialize)]
pub struct PageQuery {
    inlinks_cursor: Option<String>,
    outlinks_cursor: Option<String>,
}

pub async fn show(
    visitor: Visitor,
    pool: web::Data<PgPool>,
    path: web::Path<(String, String)>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let lang = visitor.lang;
    let site_id = super::parse_id(&path.0, lang)?;
    let url_id = super::parse_id(&path.1, lang)?;
    let page = read::page(&pool, url_id)
        .await
        .map_err(|e| visitor.database_error(e))?
        .ok_or_else(|| visitor.error(StatusCode::NOT_FOUND, "error.page_not_found"))?;
    // A link followed from one site may lead to a page of another: show it under its own.
    if let Some(own_site) = page.site_id.filter(|own| *own != site_id) {
        let mut location = format!("/console/sites/{own_site}/pages/{url_id}");
        if !query_string(&query).is_empty() {
            location = format!("{location}?{}", query_string(&query));
        }
        return Ok(visitor.redirect(&location));
    }
    let site = load_site(&visitor, &pool, site_id).await?;

    let inlinks_after = parse_link_cursor(&visitor, query.inlinks_cursor.as_deref())?;
    let outlinks_after = parse_link_cursor(&visitor, query.outlinks_cursor.as_deref())?;
    let inlinks = links::page_links(&pool, url_id, false, inlinks_after, PAGE_SIZE)
        .await
        .map_err(|e| visitor.database_error(e))?;
    let outlinks = links::page_links(&pool, url_id, true, outlinks_after, PAGE_SIZE)
        .await
        .map_err(|e| visitor.database_error(e))?;

    let base = format!("/console/sites/{site_id}/pages/{url_id}");
    let next_link = |rows: &[PageLink], name: &str, other_name: &str, other: &Option<String>| {
        (rows.len() as i64 == PAGE_SIZE).then(|| rows.last()).flatten().map(|last| {
            let cursor = last.link_id.to_string();
            format::href(&base, &[(name, &cursor), (other_name, other.as_deref().unwrap_or_default())])
        })
    };
    let inlinks_next = next_link(&inlinks, "inlinks_cursor", "outlinks_cursor", &query.outlinks_cursor);
    let outlinks_next = next_link(&outlinks, "outlinks_cursor", "inlinks_cursor", &query.inlinks_cursor);

    let detail = PageDetailPage {
        frame: visitor.frame("sites"),
        site_id,
        site_host: site.host_display.clone(),
        page: PageHeading {
            url: page.url.clone(),
            href: format::external_href(&page.url),
            url_query: format::query_value(&page.url),
        },
        facts: facts(lang, &page),
        headers: response_headers(&page),
        inlinks: inlinks.iter().map(|link| link_row(lang, site_id, link)).collect(),
        inlinks_next,
        outlinks: outlinks.iter().map(|link| link_row(lang, site_id, link)).collect(),
        outlinks_next,
    };
    Ok(visitor.render(StatusCode::OK, &detail))
}

fn query_string(query: &PageQuery) -> String {
    let inlinks = query.inlinks_cursor.as_deref().unwrap_or_default();
    let outlinks = query.outlinks_cursor.as_deref().unwrap_or_default();
    format::href("", &[("inlinks_cursor", inlinks), ("outlinks_cursor", outlinks)]).trim_start_matches('?').to_string()
}

fn parse_link_cursor(visitor: &Visitor, raw: Option<&str>) -> Result<i64, ConsoleError> {
    match raw.filter(|c| !c.is_empty()) {
        None => Ok(0),
        Some(cursor) => cursor
            .parse::<i64>()
            .ok()
            .filter(|c| *c >= 0)
            .ok_or_else(|| visitor.error(StatusCode::BAD_REQUEST, "error.invalid_cursor")),
    }
}

fn facts(lang: Lang, page: &PageDetail) -> Vec<Fact> {
    let yes_no = |value: bool| lang.text(if value { "facts.yes" } else { "facts.no" }).to_string();
    let text = |value: &Option<String>| value.clone().filter(|v| !v.is_empty()).unwrap_or_else(|| "—".to_string());
    let count = |value: Option<i32>| value.map_or_else(|| "—".to_string(), |v| lang.number(i64::from(v)));
    let rating = |value: Option<f64>| value.map_or_else(|| "—".to_string(), |v| format!("{v:.0}"));

    let mut state = lang.text(&format!("url_state.{}", page.state)).to_string();
    if let Some(reason) = &page.state_reason {
        state = format!("{state} ({})", format::state_reason(lang, reason));
    }
    let mut facts = vec![fact(lang, "facts.state", state)];
    if page.fetched_at.is_some() {
        let redirect = match (&page.redirect_to, &page.redirect_kind) {
            (Some(target), Some(kind)) => format!("{target} ({kind})"),
            (target, _) => text(target),
        };
        let h1 = match page.h1_count {
            Some(count) if count > 1 => format!(
                "{} ({})",
                text(&page.h1),
                lang.format("facts.h1_count", &[("count", &lang.number(i64::from(count)))])
            ),
            _ => text(&page.h1),
        };
        facts.extend([
            fact(lang, "facts.status", format::status(page.status, page.error_kind.as_deref())),
            fact(lang, "facts.title", text(&page.title)),
            fact(lang, "facts.h1", h1),
            fact(lang, "facts.meta_description", text(&page.meta_description)),
            url_fact(lang, "facts.canonical", text(&page.canonical)),
            url_fact(lang, "facts.redirect_to", redirect),
            fact(lang, "facts.noindex", yes_no(page.noindex.unwrap_or(false))),
            fact(lang, "facts.nofollow", yes_no(page.nofollow.unwrap_or(false))),
            url_fact(lang, "facts.hreflang", hreflang(page)),
            fact(lang, "facts.content_type", text(&page.content_type)),
            fact(
                lang,
                "facts.response_time",
                page.response_time_ms.map_or_else(|| "—".into(), |ms| format::milliseconds(lang, ms)),
            ),
            fact(lang, "facts.size", format::bytes(lang, page.body_bytes)),
            fact(lang, "facts.images_missing_alt", count(page.images_missing_alt)),
            fact(lang, "facts.insecure_resources", count(page.insecure_resources)),
        ]);
    }
    facts.extend([
        fact(lang, "facts.depth", page.depth.to_string()),
        fact(lang, "facts.in_sitemap", yes_no(page.in_sitemap)),
        fact(lang, "facts.inlinks", lang.number(page.inlinks)),
        fact(lang, "facts.outlinks", lang.number(page.outlinks)),
        fact(lang, "facts.url_rating", rating(page.url_rating)),
        fact(lang, "facts.domain_rating", rating(page.domain_rating)),
        fact(lang, "facts.fetched_at", page.fetched_at.map_or_else(|| "—".to_string(), format::time)),
    ]);
    facts
}

/// Format the hreflang alternates of a page as `lang url` lines. The DbWriter stores
/// them as a JSON array of `{"lang", "url"}` objects.
fn hreflang(page: &PageDetail) -> String {
    let Some(serde_json::Value::Array(entries)) = &page.hreflang else { return "—".to_string() };
    let lines: Vec<String> = entries
        .iter()
        .filter_map(|entry| Some(format!("{} {}", entry.get("lang")?.as_str()?, entry.get("url")?.as_str()?)))
        .collect();
    if lines.is_empty() {
        "—".to_string()
    } else {
        lines.join("\n")
    }
}

/// List the response headers of a page's fetch. The DbWriter stores them as a JSON
/// array of `[name, value]` pairs.
fn response_headers(page: &PageDetail) -> Vec<HeaderRow> {
    let Some(serde_json::Value::Array(pairs)) = &page.headers else { return Vec::new() };
    pairs
        .iter()
        .filter_map(|pair| {
            let name = pair.get(0)?.as_str()?;
            let value = pair.get(1)?.as_str()?;
            Some(HeaderRow { name: name.to_string(), value: value.to_string() })
        })
        .collect()
}

fn fact(lang: Lang, key: &'static str, value: String) -> Fact {
    Fact { label: lang.text(key), value, is_url: false }
}

fn url_fact(lang: Lang, key: &'static str, value: String) -> Fact {
    Fact { label: lang.text(key), value, is_url: true }
}

/// Build the row of a link. The other end links to its console page, which shows a URL
/// outside every site with its inlinks too.
fn link_row(lang: Lang, site_id: i64, link: &PageLink) -> LinkRow {
    let fetched = link.status.is_some() || link.error_kind.is_some();
    let title = if fetched {
        format::status(link.status, link.error_kind.as_deref())
    } else {
        lang.text(&format!("url_state.{}", link.state)).to_string()
    };
    LinkRow {
        url: link.url.clone(),
        href: format!("/console/sites/{site_id}/pages/{}", link.url_id),
        title,
        anchor: link.anchor_text.clone(),
        rel: format::rel(lang, link.nofollow, link.ugc, link.sponsored),
        first_seen: format::time(link.first_seen),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_filter_forms() {
        assert_eq!(parse_status(""), Some(StatusFilter::Any));
        assert_eq!(parse_status("404"), Some(StatusFilter::Exact(404)));
        assert_eq!(parse_status("4xx"), Some(StatusFilter::Class(4)));
        assert_eq!(parse_status("ERROR"), Some(StatusFilter::Error));
        assert_eq!(parse_status("9xx"), None);
        assert_eq!(parse_status("abc"), None);
    }

    #[test]
    fn status_options_keep_typed_code() {
        let options = status_options(Lang::En, "404");
        let selected: Vec<_> = options.iter().filter(|o| o.selected).map(|o| o.value.as_str()).collect();
        assert_eq!(selected, ["404"]);
        let options = status_options(Lang::En, "4xx");
        assert_eq!(options.iter().filter(|o| o.selected).count(), 1);
    }
}
