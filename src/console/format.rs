//! Formatting of values for the pages: times, sizes, statuses, link attributes and links
//! with query strings.

use chrono::{DateTime, Utc};

use super::i18n::Lang;
use crate::messages::ROBOTS_UNAVAILABLE_REASON;

/// Format a time in UTC to the minute, the same in both languages: `2026-12-04 22:20 UTC`.
pub fn time(value: DateTime<Utc>) -> String {
    value.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// Format a size in bytes with a binary unit: `950 B`, `12.3 KiB`, in the page's language.
pub fn bytes(lang: Lang, value: Option<i64>) -> String {
    let Some(value) = value else { return String::new() };
    let units: [&str; 4] = match lang {
        Lang::En => ["B", "KiB", "MiB", "GiB"],
        Lang::Ru => ["Б", "КиБ", "МиБ", "ГиБ"],
    };
    if value < 1024 {
        return format!("{} {}", lang.number(value), units[0]);
    }
    let mut scaled = value as f64;
    let mut unit = 0;
    while scaled >= 1024.0 && unit < units.len() - 1 {
        scaled /= 1024.0;
        unit += 1;
    }
    let text = format!("{scaled:.1}");
    let text = match lang {
        Lang::En => text,
        Lang::Ru => text.replace('.', ","),
    };
    format!("{text} {}", units[unit])
}

/// Format a duration in milliseconds: `120 ms` or `120 мс`.
pub fn milliseconds(lang: Lang, value: i32) -> String {
    format!("{} {}", lang.number(i64::from(value)), lang.text("unit.ms"))
}

/// Format the status code of a fetch, or its error kind when no response came.
pub fn status(code: Option<i16>, error_kind: Option<&str>) -> String {
    match (code, error_kind) {
        (Some(code), _) => code.to_string(),
        (None, Some(kind)) => kind.to_string(),
        (None, None) => "error".to_string(),
    }
}

/// Return the class of a status for styling and filters: `2xx` … `5xx`, or `error`.
pub fn status_class(code: Option<i16>) -> String {
    match code {
        Some(code) if (100..600).contains(&code) => format!("{}xx", code / 100),
        _ => "error".to_string(),
    }
}

/// Describe why a URL is in its state, in the page's language. A stored reason is the code
/// of a block or skip, or a robots.txt failure whose detail stays as the scraper wrote it.
/// An unknown reason is shown as stored.
pub fn state_reason(lang: Lang, reason: &str) -> String {
    if let Some(detail) = reason.strip_prefix(ROBOTS_UNAVAILABLE_REASON) {
        let detail = detail.trim_start_matches(':').trim();
        return lang.format("reason.robots_unavailable", &[("detail", detail)]);
    }
    lang.lookup(&format!("reason.{reason}")).map_or_else(|| reason.to_string(), str::to_string)
}

/// List the rel attributes of a link, or return the word for a followed link.
pub fn rel(lang: Lang, nofollow: bool, ugc: bool, sponsored: bool) -> String {
    let kinds: Vec<&str> = [(nofollow, "nofollow"), (ugc, "ugc"), (sponsored, "sponsored")]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| name)
        .collect();
    if kinds.is_empty() {
        lang.text("links.rel.follow").to_string()
    } else {
        kinds.join(", ")
    }
}

/// Build a path with a query string of the non-empty values, percent-encoded.
pub fn href(path: &str, params: &[(&str, &str)]) -> String {
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (name, value) in params.iter().filter(|(_, value)| !value.is_empty()) {
        serializer.append_pair(name, value);
        any = true;
    }
    if any {
        format!("{path}?{}", serializer.finish())
    } else {
        path.to_string()
    }
}

/// Percent-encode a value for a query string.
pub fn query_value(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Make a link target safe in an `href`: http(s) URLs stay as they are, anything else
/// becomes `#`. The crawler stores only http(s) URLs, but a crafted row could contain others.
pub fn external_href(url: &str) -> String {
    let lower = url.trim_start().to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        url.to_string()
    } else {
        "#".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_reason_in_both_languages() {
        let unavailable = "robots.txt unavailable: http://a/robots.txt answered HTTP 503";
        assert_eq!(state_reason(Lang::En, unavailable), unavailable);
        assert_eq!(state_reason(Lang::Ru, unavailable), "robots.txt недоступен: http://a/robots.txt answered HTTP 503");
        assert_eq!(state_reason(Lang::En, "robots_txt"), "disallowed by robots.txt");
        assert_eq!(state_reason(Lang::Ru, "query_variants"), "слишком много вариантов запроса для пути");
        assert_eq!(state_reason(Lang::Ru, "something new"), "something new");

        let block_reasons = [crate::messages::BlockReason::RobotsTxt, crate::messages::BlockReason::PrivateAddress];
        let skip_reasons = [
            crate::scope::SkipReason::MaxPages,
            crate::scope::SkipReason::MaxDepth,
            crate::scope::SkipReason::QueryVariants,
            crate::scope::SkipReason::RepeatedSegments,
        ];
        let codes = block_reasons.map(|r| r.as_str()).into_iter().chain(skip_reasons.map(|r| r.as_str()));
        for code in codes {
            for lang in Lang::ALL {
                assert!(lang.lookup(&format!("reason.{code}")).is_some(), "no {lang:?} text for reason {code}");
            }
        }
    }

    #[test]
    fn href_encodes_and_skips_empty() {
        assert_eq!(
            href("/console/backlinks", &[("target", "a b&c=d"), ("cursor", "")]),
            "/console/backlinks?target=a+b%26c%3Dd"
        );
        assert_eq!(href("/console/x", &[("q", "")]), "/console/x");
        assert_eq!(href("/p", &[("q", "/docs/?x=<y>")]), "/p?q=%2Fdocs%2F%3Fx%3D%3Cy%3E");
    }

    #[test]
    fn external_href_only_http() {
        assert_eq!(external_href("https://example.com/a?b=1"), "https://example.com/a?b=1");
        assert_eq!(external_href("HTTP://example.com/"), "HTTP://example.com/");
        assert_eq!(external_href("javascript:alert(1)"), "#");
        assert_eq!(external_href(" data:text/html,x"), "#");
    }

    #[test]
    fn sizes_in_both_languages() {
        assert_eq!(bytes(Lang::En, Some(950)), "950 B");
        assert_eq!(bytes(Lang::En, Some(12_595)), "12.3 KiB");
        assert_eq!(bytes(Lang::Ru, Some(12_595)), "12,3 КиБ");
        assert_eq!(bytes(Lang::En, Some(3 * 1024 * 1024)), "3.0 MiB");
        assert_eq!(bytes(Lang::En, None), "");
    }

    #[test]
    fn status_and_class() {
        assert_eq!(status(Some(404), None), "404");
        assert_eq!(status(None, Some("timeout")), "timeout");
        assert_eq!(status_class(Some(301)), "3xx");
        assert_eq!(status_class(None), "error");
    }

    #[test]
    fn rel_lists_kinds() {
        assert_eq!(rel(Lang::En, true, false, true), "nofollow, sponsored");
        assert_eq!(rel(Lang::En, false, false, false), Lang::En.text("links.rel.follow"));
    }
}
