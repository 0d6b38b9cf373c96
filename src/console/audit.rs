//! The site audit: each finding with its severity, count and example URLs.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use sqlx::PgPool;

use super::format;
use super::i18n::Lang;
use super::sites::{export_links, load_site};
use super::templates::{AuditPage, Count, ExampleRow, FindingRow};
use super::visitor::{ConsoleError, Visitor};
use crate::db::audit::{self, AuditThresholds, Finding, Severity};

/// Show a site's audit, with the thresholds that the admin process registers for the API
/// (`AUDIT_MAX_DEPTH` and the others), or the defaults when none are registered.
pub async fn show(
    visitor: Visitor,
    pool: web::Data<PgPool>,
    thresholds: Option<web::Data<AuditThresholds>>,
    path: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let lang = visitor.lang;
    let site_id = super::parse_id(&path, lang)?;
    let site = load_site(&visitor, &pool, site_id).await?;
    let default_thresholds = AuditThresholds::default();
    let thresholds = thresholds.as_ref().map_or(&default_thresholds, |registered| registered.get_ref());
    let audit = audit::site_audit(&pool, site_id, thresholds).await.map_err(|e| visitor.database_error(e))?;

    let count_of = |severity: Severity| audit.findings.iter().filter(|f| f.severity == severity).count() as i64;
    let summary = lang.format(
        "audit.summary",
        &[
            ("errors", &lang.number(count_of(Severity::Error))),
            ("warnings", &lang.number(count_of(Severity::Warning))),
            ("notices", &lang.number(count_of(Severity::Notice))),
            ("pages", &lang.number(site.urls_fetched)),
        ],
    );
    let page = AuditPage {
        frame: visitor.frame("sites"),
        site_id,
        site_host: site.host_display.clone(),
        summary,
        findings: audit.findings.iter().map(|finding| finding_row(lang, finding)).collect(),
        exports: vec![export_links(lang, "audit", "export.audit", &[("site_id", &site_id.to_string())])],
    };
    Ok(visitor.render(StatusCode::OK, &page))
}

fn finding_row(lang: Lang, finding: &Finding) -> FindingRow {
    let (severity, severity_rank) = match finding.severity {
        Severity::Error => ("error", 0),
        Severity::Warning => ("warning", 1),
        Severity::Notice => ("notice", 2),
    };
    let shown_count = lang.number(finding.examples.len() as i64);
    FindingRow {
        code: finding.code.to_string(),
        severity,
        severity_rank,
        severity_label: lang.text(match finding.severity {
            Severity::Error => "audit.severity.error",
            Severity::Warning => "audit.severity.warning",
            Severity::Notice => "audit.severity.notice",
        }),
        // A code added to the audit after this table shows as the code itself.
        title: lang.lookup(&format!("audit.code.{}", finding.code)).unwrap_or(finding.code).to_string(),
        count: Count::new(lang, finding.count),
        examples_label: lang
            .format("audit.examples", &[("shown", &shown_count), ("count", &lang.number(finding.count))]),
        examples: finding
            .examples
            .iter()
            .map(|example| ExampleRow {
                url: example.url.clone(),
                href: format::external_href(&example.url),
                detail: example.detail.as_deref().map(|detail| translate_detail(lang, detail)).unwrap_or_default(),
            })
            .collect(),
    }
}

/// Translate the detail of an example into the page's language. The audit writes counts as
/// `<number> <unit>` in English (`12 characters`); other details are URLs, titles or
/// error kinds and stay as they are.
fn translate_detail(lang: Lang, detail: &str) -> String {
    let Some((number, unit)) = detail.split_once(' ') else { return detail.to_string() };
    let Ok(value) = number.parse::<i64>() else { return detail.to_string() };
    match lang.lookup(&format!("audit.detail.{unit}")) {
        Some(pattern) => pattern.replace("{count}", &lang.number(value)),
        None => detail.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codes of `db::audit`, which each need a title in both tables.
    pub const AUDIT_CODES: &[&str] = &[
        "http_4xx",
        "http_5xx",
        "fetch_failed",
        "broken_links",
        "redirect_chain",
        "redirect_loop",
        "internal_link_to_redirect",
        "title_missing",
        "title_empty",
        "title_duplicate",
        "title_too_long",
        "title_too_short",
        "description_missing",
        "description_duplicate",
        "h1_missing",
        "h1_multiple",
        "canonical_to_other_url",
        "canonical_not_200",
        "noindex",
        "nofollow_internal_links",
        "sitemap_page_not_linked",
        "too_deep",
        "slow_page",
        "large_page",
        "http_resources_on_https",
        "images_without_alt",
    ];

    #[test]
    fn every_audit_code_has_a_title() {
        for lang in Lang::ALL {
            for code in AUDIT_CODES {
                assert!(
                    lang.lookup(&format!("audit.code.{code}")).is_some(),
                    "{} lacks audit.code.{code}",
                    lang.code()
                );
            }
        }
    }

    #[test]
    fn details_are_translated() {
        assert_eq!(translate_detail(Lang::En, "12 characters"), "12 characters");
        assert_eq!(translate_detail(Lang::Ru, "12 characters"), "символов: 12");
        assert_eq!(translate_detail(Lang::Ru, "1500 ms"), "1\u{a0}500 мс");
        assert_eq!(translate_detail(Lang::Ru, "http://example.com/ (404)"), "http://example.com/ (404)");
        assert_eq!(translate_detail(Lang::Ru, "timeout"), "timeout");
        assert_eq!(translate_detail(Lang::Ru, "3 parsecs"), "3 parsecs");
    }
}
