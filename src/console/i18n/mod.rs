//! The console's languages: one table of strings per language and the choice of language
//! from the `lang` query parameter, the `lang` cookie or the `Accept-Language` header.

mod en;
mod ru;

use std::collections::HashMap;
use std::sync::OnceLock;

/// A language the console is translated into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Ru,
}

impl Lang {
    /// Every language, in the order of the language switch.
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Ru];

    /// Return the BCP 47 tag, as used in `<html lang>`, the cookie and the query parameter.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ru => "ru",
        }
    }

    /// Return the language's name in that language, for the switch.
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Ru => "Русский",
        }
    }

    /// Find the language of a tag such as `ru`, `ru-RU` or `EN-gb`, or `None` for any other.
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next().unwrap_or_default();
        Lang::ALL.into_iter().find(|lang| primary.eq_ignore_ascii_case(lang.code()))
    }

    fn table(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Lang::En => en::STRINGS,
            Lang::Ru => ru::STRINGS,
        }
    }

    /// Look up the string stored under `key`, or `None` when the table has no such key.
    pub fn lookup(self, key: &str) -> Option<&'static str> {
        static INDEX: OnceLock<[HashMap<&'static str, &'static str>; 2]> = OnceLock::new();
        let index = INDEX.get_or_init(|| Lang::ALL.map(|lang| lang.table().iter().copied().collect()));
        let position = Lang::ALL.iter().position(|lang| *lang == self).unwrap_or(0);
        index[position].get(key).copied()
    }

    /// Return the string stored under `key`, or the key itself when it is missing, so that
    /// a gap shows on the page instead of failing the request. The tests check that every
    /// key the templates use is in both tables.
    pub fn text(self, key: &str) -> &str {
        self.lookup(key).unwrap_or(key)
    }

    /// Fill the string under `key`, replacing each `{name}` with its value.
    pub fn format(self, key: &str, values: &[(&str, &str)]) -> String {
        let mut text = self.text(key).to_string();
        for (name, value) in values {
            text = text.replace(&format!("{{{name}}}"), value);
        }
        text
    }

    /// Format an integer with the language's thousands separator: `12,345` or `12 345`.
    pub fn number(self, value: i64) -> String {
        let separator = match self {
            Lang::En => ",",
            // A no-break space, as Russian typography and `Intl.NumberFormat("ru")` use.
            Lang::Ru => "\u{a0}",
        };
        let digits = value.unsigned_abs().to_string();
        let mut grouped = String::with_capacity(digits.len() + digits.len() / 3 * 2 + 1);
        if value < 0 {
            grouped.push('-');
        }
        for (index, digit) in digits.chars().enumerate() {
            if index > 0 && (digits.len() - index).is_multiple_of(3) {
                grouped.push_str(separator);
            }
            grouped.push(digit);
        }
        grouped
    }
}

/// Choose the language of a request: an explicit `lang` query parameter first, then the
/// `lang` cookie, then the best supported language of `Accept-Language`, then English.
pub fn negotiate(query: Option<&str>, cookie: Option<&str>, accept_language: Option<&str>) -> Lang {
    query
        .and_then(Lang::from_tag)
        .or_else(|| cookie.and_then(Lang::from_tag))
        .or_else(|| accept_language.and_then(from_accept_language))
        .unwrap_or(Lang::En)
}

/// Pick the supported language with the highest quality in an `Accept-Language` header
/// (RFC 9110, section 12.5.4). The earlier one wins a tie, and `q=0` excludes a language.
fn from_accept_language(header: &str) -> Option<Lang> {
    let mut best: Option<(Lang, f32)> = None;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let Some(lang) = parts.next().and_then(Lang::from_tag) else { continue };
        let quality = parts
            .filter_map(|param| param.trim().strip_prefix("q="))
            .next()
            .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok().filter(|q| (0.0..=1.0).contains(q)));
        let Some(quality) = quality.filter(|q| *q > 0.0) else { continue };
        if best.is_none_or(|(_, best_quality)| quality > best_quality) {
            best = Some((lang, quality));
        }
    }
    best.map(|(lang, _)| lang)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn keys(lang: Lang) -> BTreeSet<&'static str> {
        lang.table().iter().map(|(key, _)| *key).collect()
    }

    #[test]
    fn tables_have_same_keys() {
        let english = keys(Lang::En);
        let russian = keys(Lang::Ru);
        let only_english: Vec<_> = english.difference(&russian).collect();
        let only_russian: Vec<_> = russian.difference(&english).collect();
        assert!(only_english.is_empty(), "keys missing from ru.rs: {only_english:?}");
        assert!(only_russian.is_empty(), "keys missing from en.rs: {only_russian:?}");
    }

    #[test]
    fn tables_have_no_duplicate_or_empty_entries() {
        for lang in Lang::ALL {
            let table = lang.table();
            assert_eq!(keys(lang).len(), table.len(), "{} table repeats a key", lang.code());
            for (key, text) in table {
                assert!(!text.trim().is_empty(), "{} table has an empty string for {key}", lang.code());
            }
        }
    }

    #[test]
    fn placeholders_match_between_tables() {
        let placeholders = |text: &str| -> BTreeSet<String> {
            text.split('{').skip(1).filter_map(|rest| rest.split_once('}')).map(|(name, _)| name.to_string()).collect()
        };
        for (key, english) in Lang::En.table() {
            let russian = Lang::Ru.text(key);
            assert_eq!(placeholders(english), placeholders(russian), "placeholders of {key} differ");
        }
    }

    #[test]
    fn templates_use_only_known_keys() {
        let used = super::super::templates::used_keys();
        assert!(used.len() > 20, "expected the templates to use many keys, found {}", used.len());
        for lang in Lang::ALL {
            let known = keys(lang);
            let missing: Vec<_> = used.iter().filter(|key| !known.contains(key.as_str())).collect();
            assert!(missing.is_empty(), "keys used in templates but missing from {}: {missing:?}", lang.code());
        }
    }

    #[test]
    fn accept_language_prefers_highest_quality() {
        assert_eq!(from_accept_language("ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7"), Some(Lang::Ru));
        assert_eq!(from_accept_language("en-GB,en;q=0.9,ru;q=0.8"), Some(Lang::En));
        assert_eq!(from_accept_language("de-DE, ru;q=0.5, en;q=0.7"), Some(Lang::En));
        assert_eq!(from_accept_language("en;q=0.2, RU;q=0.4"), Some(Lang::Ru));
    }

    #[test]
    fn accept_language_ignores_unsupported_and_excluded() {
        assert_eq!(from_accept_language("de, fr;q=0.9"), None);
        assert_eq!(from_accept_language("ru;q=0, en;q=0.1"), Some(Lang::En));
        assert_eq!(from_accept_language("ru;q=abc, en;q=0.1"), Some(Lang::En));
        assert_eq!(from_accept_language("*"), None);
        assert_eq!(from_accept_language(""), None);
    }

    #[test]
    fn negotiate_order_is_query_cookie_header() {
        assert_eq!(negotiate(Some("ru"), Some("en"), Some("en")), Lang::Ru);
        assert_eq!(negotiate(None, Some("ru"), Some("en")), Lang::Ru);
        assert_eq!(negotiate(Some("xx"), Some("ru"), Some("en")), Lang::Ru);
        assert_eq!(negotiate(None, None, Some("ru-RU")), Lang::Ru);
        assert_eq!(negotiate(None, None, Some("de")), Lang::En);
        assert_eq!(negotiate(None, None, None), Lang::En);
    }

    #[test]
    fn number_grouping() {
        assert_eq!(Lang::En.number(0), "0");
        assert_eq!(Lang::En.number(999), "999");
        assert_eq!(Lang::En.number(1000), "1,000");
        assert_eq!(Lang::En.number(-1234567), "-1,234,567");
        assert_eq!(Lang::Ru.number(12345), "12\u{a0}345");
    }

    #[test]
    fn format_replaces_placeholders() {
        assert_eq!(Lang::En.format("sites.notice.recrawl", &[("count", "7")]), "URLs queued for a new crawl: 7.");
    }
}
