//! Backlinks, referring domains and anchors of a target URL, host or registrable domain.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use sqlx::PgPool;

use super::format;
use super::i18n::Lang;
use super::sites::export_links;
use super::templates::{AnchorRow, BacklinkRowView, BacklinksPage, Count, DomainRow, Pager, SelectOption, Tab};
use super::visitor::{ConsoleError, Visitor};
use super::ConsoleState;
use crate::db::links::{self, BacklinkQuery, BacklinkSort, LinkStatus, Target, TargetError};

/// Rows of one page of backlinks.
const PAGE_SIZE: i64 = 50;

/// Rows of the referring domains and anchors tables, which the database functions return
/// without cursors.
const GROUP_LIMIT: i64 = 200;

#[derive(Deserialize, Default)]
pub struct BacklinksQuery {
    target: Option<String>,
    /// `url`, `host` or `domain`; empty lets the target's form decide.
    mode: Option<String>,
    /// `live`, `lost` or `all`.
    status: Option<String>,
    follow: Option<String>,
    external: Option<String>,
    /// `links`, `domains` or `anchors`.
    view: Option<String>,
    cursor: Option<String>,
}

pub async fn backlinks(
    visitor: Visitor,
    pool: web::Data<PgPool>,
    query: web::Query<BacklinksQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let lang = visitor.lang;
    let input = query.target.as_deref().unwrap_or_default().trim().to_string();
    let mode = query.mode.as_deref().unwrap_or_default().to_string();
    let status_raw = query.status.as_deref().unwrap_or("live").to_string();
    let followed_only = query.follow.as_deref() == Some("only");
    let external_only = query.external.as_deref() == Some("only");
    let view: &'static str = match query.view.as_deref() {
        Some("domains") => "domains",
        Some("anchors") => "anchors",
        _ => "links",
    };

    let mut page = BacklinksPage {
        frame: visitor.frame("backlinks"),
        target_input: input.clone(),
        target_text: String::new(),
        mode_options: mode_options(lang, &mode),
        status_options: status_options(lang, &status_raw),
        followed_only,
        external_only,
        error: None,
        summary: None,
        tabs: Vec::new(),
        view,
        links: Vec::new(),
        domains: Vec::new(),
        anchors: Vec::new(),
        pager: Pager::default(),
        exports: Vec::new(),
    };
    if input.is_empty() {
        return Ok(visitor.render(StatusCode::OK, &page));
    }

    let target = match parse_target(&visitor.state, &input, &mode) {
        Ok(target) => target,
        Err(key) => {
            page.error = Some(lang.text(key).to_string());
            return Ok(visitor.render(StatusCode::UNPROCESSABLE_ENTITY, &page));
        }
    };
    let status = match status_raw.as_str() {
        "lost" => LinkStatus::Lost,
        "all" => LinkStatus::All,
        _ => LinkStatus::Live,
    };
    let after = match query.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(cursor) => Some(
            links::decode_cursor(cursor)
                .ok_or_else(|| visitor.error(StatusCode::BAD_REQUEST, "error.invalid_cursor"))?,
        ),
    };
    let backlink_query = BacklinkQuery {
        target: target.clone(),
        status,
        followed_only,
        external_only,
        sort: BacklinkSort::FirstSeen,
        after,
        limit: PAGE_SIZE,
    };
    let found = links::backlinks(&pool, &backlink_query).await.map_err(|e| visitor.database_error(e))?;
    let domains = links::referring_domains(&pool, &target, GROUP_LIMIT).await.map_err(|e| visitor.database_error(e))?;

    let (mode_value, target_value) = target_parts(&target);
    page.target_text = target_value.to_string();
    page.summary = Some(lang.format(
        "backlinks.summary",
        &[
            ("target", target_value),
            ("backlinks", &lang.number(found.total)),
            ("domains", &lang.number(domains.len() as i64)),
        ],
    ));
    if domains.len() as i64 == GROUP_LIMIT {
        page.summary = page.summary.map(|s| format!("{s} {}", lang.text("backlinks.domains_capped")));
    }

    let filter_params = |view: &str| -> Vec<(&'static str, String)> {
        vec![
            ("target", input.clone()),
            ("mode", mode.clone()),
            ("status", if status_raw == "live" { String::new() } else { status_raw.clone() }),
            ("follow", if followed_only { "only".into() } else { String::new() }),
            ("external", if external_only { "only".into() } else { String::new() }),
            ("view", if view == "links" { String::new() } else { view.to_string() }),
        ]
    };
    let view_href = |view: &str, cursor: &str| {
        let mut params = filter_params(view);
        params.push(("cursor", cursor.to_string()));
        let borrowed: Vec<(&str, &str)> = params.iter().map(|(name, value)| (*name, value.as_str())).collect();
        format::href("/console/backlinks", &borrowed)
    };
    page.tabs =
        [("links", "backlinks.tab.links"), ("domains", "backlinks.tab.domains"), ("anchors", "backlinks.tab.anchors")]
            .into_iter()
            .map(|(name, key)| Tab { label: lang.text(key), href: view_href(name, ""), current: name == view })
            .collect();

    match view {
        "domains" => {
            page.domains = domains
                .iter()
                .map(|row| DomainRow {
                    domain: row.domain.clone().unwrap_or_else(|| "—".to_string()),
                    backlinks: Count::new(lang, row.backlinks),
                    followed: Count::new(lang, row.followed),
                    first_seen: format::time(row.first_seen),
                })
                .collect();
        }
        "anchors" => {
            let anchors = links::anchors(&pool, &target, GROUP_LIMIT).await.map_err(|e| visitor.database_error(e))?;
            page.anchors = anchors
                .iter()
                .map(|row| AnchorRow {
                    anchor: if row.anchor_text.is_empty() {
                        lang.text("links.anchor.empty").to_string()
                    } else {
                        row.anchor_text.clone()
                    },
                    backlinks: Count::new(lang, row.backlinks),
                    domains: Count::new(lang, row.referring_domains),
                })
                .collect();
        }
        _ => {
            page.links = found
                .items
                .iter()
                .map(|link| BacklinkRowView {
                    source_url: link.source_url.clone(),
                    source_href: format::external_href(&link.source_url),
                    source_title: link.source_title.clone().unwrap_or_default(),
                    target_url: link.target_url.clone(),
                    anchor: link.anchor_text.clone(),
                    rel: format::rel(lang, link.nofollow, link.ugc, link.sponsored),
                    first_seen: format::time(link.first_seen),
                    last_seen: match link.lost_at {
                        Some(lost) => lang.format("links.lost_at", &[("time", &format::time(lost))]),
                        None => format::time(link.last_seen),
                    },
                })
                .collect();
            page.pager = Pager {
                first_href: after.is_some().then(|| view_href("links", "")),
                next_href: found.next_cursor.as_deref().map(|cursor| view_href("links", cursor)),
            };
        }
    }
    page.exports =
        vec![export_links(lang, "backlinks", "export.backlinks", &[("target", target_value), ("mode", mode_value)])];
    Ok(visitor.render(StatusCode::OK, &page))
}

/// Parse the target of a search as the API reads its `target` and `mode` parameters. An
/// error is the key of its message.
fn parse_target(state: &ConsoleState, input: &str, mode: &str) -> Result<Target, &'static str> {
    Target::parse(&state.url_policy, input, Some(mode)).map_err(|error| match error {
        TargetError::InvalidUrl(_) => "backlinks.error.invalid_url",
        TargetError::InvalidHost(_) => "backlinks.error.invalid_host",
        TargetError::PublicSuffix(_) => "backlinks.error.public_suffix",
        TargetError::InvalidMode(_) => "backlinks.error.invalid_mode",
    })
}

/// Return the API's `mode` and `target` values of a target.
fn target_parts(target: &Target) -> (&'static str, &str) {
    match target {
        Target::Url(url) => ("url", url),
        Target::Host(host) => ("host", host),
        Target::Domain(domain) => ("domain", domain),
    }
}

fn mode_options(lang: Lang, selected: &str) -> Vec<SelectOption> {
    [
        ("", "backlinks.mode.auto"),
        ("url", "backlinks.mode.url"),
        ("host", "backlinks.mode.host"),
        ("domain", "backlinks.mode.domain"),
    ]
    .into_iter()
    .map(|(value, key)| SelectOption { value: value.into(), label: lang.text(key).into(), selected: value == selected })
    .collect()
}

fn status_options(lang: Lang, selected: &str) -> Vec<SelectOption> {
    [("live", "backlinks.status.live"), ("lost", "backlinks.status.lost"), ("all", "backlinks.status.all")]
        .into_iter()
        .map(|(value, key)| SelectOption {
            value: value.into(),
            label: lang.text(key).into(),
            selected: value == selected,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::session::SessionKeys;

    fn state() -> ConsoleState {
        ConsoleState { admin_token: None, url_policy: Default::default(), keys: SessionKeys::random() }
    }

    #[test]
    fn target_modes() {
        let state = state();
        assert_eq!(
            parse_target(&state, "https://Example.com/a#x", ""),
            Ok(Target::Url("https://example.com/a".into()))
        );
        assert_eq!(parse_target(&state, "www.example.co.uk", ""), Ok(Target::Domain("example.co.uk".into())));
        assert_eq!(parse_target(&state, "www.example.co.uk", "host"), Ok(Target::Host("www.example.co.uk".into())));
        assert_eq!(parse_target(&state, "http://127.0.0.1:8080/x", "host"), Ok(Target::Host("127.0.0.1:8080".into())));
        assert_eq!(parse_target(&state, "example.com", "url"), Err("backlinks.error.invalid_url"));
        assert_eq!(parse_target(&state, "exa mple", "host"), Err("backlinks.error.invalid_host"));
        assert_eq!(parse_target(&state, "example.com", "page"), Err("backlinks.error.invalid_mode"));
        assert_eq!(parse_target(&state, "co.uk", ""), Err("backlinks.error.public_suffix"));
    }
}
