//! The console's pages as askama templates compiled into the binary, and the view rows
//! they show. Handlers turn database rows into these rows, so that templates only print
//! strings that are already formatted and translated.

use askama::Template;

use super::i18n::Lang;

/// What every page shows around its content: navigation, language switch, logout.
pub struct Frame {
    pub lang: Lang,
    /// The navigation entry to mark as current: `sites`, `backlinks` or empty.
    pub section: &'static str,
    /// The CSRF token of the visitor's session; empty on pages without forms.
    pub csrf: String,
    pub show_logout: bool,
    pub languages: Vec<LangOption>,
}

impl Frame {
    /// The string stored under `key` in the page's language.
    pub fn t(&self, key: &'static str) -> &'static str {
        self.lang.text(key)
    }

    pub fn stylesheet(&self) -> &'static str {
        super::assets::STYLESHEET_PATH
    }

    pub fn script(&self) -> &'static str {
        super::assets::SCRIPT_PATH
    }
}

/// One entry of the language switch: the current page in that language.
pub struct LangOption {
    pub code: &'static str,
    pub label: &'static str,
    pub href: String,
    pub current: bool,
}

/// A count with its raw value, for sorting, and its formatted text.
pub struct Count {
    pub raw: i64,
    pub text: String,
}

impl Count {
    pub fn new(lang: Lang, raw: i64) -> Self {
        Count { raw, text: lang.number(raw) }
    }
}

/// An `<option>` of a `<select>`.
pub struct SelectOption {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// Links to the first and the next page of a table paginated by cursor.
#[derive(Default)]
pub struct Pager {
    pub first_href: Option<String>,
    pub next_href: Option<String>,
}

/// The CSV and JSON links of one export.
pub struct ExportLinks {
    pub label: &'static str,
    pub csv_href: String,
    pub json_href: String,
}

#[derive(Template)]
#[template(path = "sites.html", config = "src/console/askama.toml")]
pub struct SitesPage {
    pub frame: Frame,
    pub notice: Option<String>,
    pub error: Option<String>,
    /// The URL typed into the form, shown again after an error.
    pub url_value: String,
    pub sites: Vec<SiteRow>,
}

/// A site with its progress counts, as the sites list and the site page show it.
pub struct SiteRow {
    pub id: i64,
    pub host: String,
    /// The host as a `target` query value, for the backlinks link.
    pub host_query: String,
    pub seed_url: String,
    pub seed_href: String,
    /// `crawling` or `done`, for the CSS class.
    pub state: String,
    pub state_label: &'static str,
    pub discovered: Count,
    pub fetched: Count,
    /// URLs discovered and not yet fetched.
    pub frontier: Count,
    pub blocked: Count,
    pub skipped: Count,
    pub status_2xx: Count,
    pub status_3xx: Count,
    pub status_4xx: Count,
    pub status_5xx: Count,
    pub errors: Count,
    pub links: Count,
}

#[derive(Template)]
#[template(path = "site.html", config = "src/console/askama.toml")]
pub struct SitePage {
    pub frame: Frame,
    pub notice: Option<String>,
    pub error: Option<String>,
    pub site: SiteRow,
    pub responses: Vec<ResponseClass>,
    /// The `max` of the response bars: the fetched pages, at least 1.
    pub bar_max: i64,
    pub exports: Vec<ExportLinks>,
}

/// One status class of the response bars.
pub struct ResponseClass {
    /// The key of the class in the progress JSON: `2xx` … `5xx`, `error`.
    pub key: &'static str,
    /// The `status` filter of the pages list for this class.
    pub filter: &'static str,
    pub label: String,
    pub count: Count,
}

#[derive(Template)]
#[template(path = "pages.html", config = "src/console/askama.toml")]
pub struct PagesPage {
    pub frame: Frame,
    pub site_id: i64,
    pub site_host: String,
    pub status_options: Vec<SelectOption>,
    /// The URL substring searched for.
    pub search: String,
    pub filtered: bool,
    /// Set when the search stopped at its scan limit before filling the page.
    pub scan_note: Option<String>,
    pub rows: Vec<PageRowView>,
    pub pager: Pager,
    pub exports: Vec<ExportLinks>,
}

/// One fetched page in the pages list.
pub struct PageRowView {
    pub url_id: i64,
    pub url: String,
    /// The status code, or the error kind of a fetch without response.
    pub status: String,
    /// A number that sorts fetches without response after every status.
    pub status_sort: i32,
    /// `2xx` … `5xx` or `error`, for the CSS class.
    pub status_class: String,
    pub title: String,
    pub h1: String,
    pub depth: i32,
    pub response_time_ms: i32,
    pub response_time: String,
    pub size_bytes: i64,
    pub size: String,
    /// `noindex`, `nofollow`, both or empty.
    pub indexing: String,
}

#[derive(Template)]
#[template(path = "page.html", config = "src/console/askama.toml")]
pub struct PageDetailPage {
    pub frame: Frame,
    pub site_id: i64,
    pub site_host: String,
    pub page: PageHeading,
    pub facts: Vec<Fact>,
    pub headers: Vec<HeaderRow>,
    pub inlinks: Vec<LinkRow>,
    pub inlinks_next: Option<String>,
    pub outlinks: Vec<LinkRow>,
    pub outlinks_next: Option<String>,
}

/// One response header of a page's fetch.
pub struct HeaderRow {
    pub name: String,
    pub value: String,
}

/// The URL a page detail is about.
pub struct PageHeading {
    pub url: String,
    pub href: String,
    /// The URL as a `target` query value, for the backlinks link.
    pub url_query: String,
}

/// One labelled fact of a page.
pub struct Fact {
    pub label: &'static str,
    pub value: String,
    pub is_url: bool,
}

/// One link of a page: the other end, its anchor and rel attributes.
pub struct LinkRow {
    pub url: String,
    /// The console's page of the other end.
    pub href: String,
    /// The other end's status or crawl state.
    pub title: String,
    pub anchor: String,
    pub rel: String,
    pub first_seen: String,
}

#[derive(Template)]
#[template(path = "backlinks.html", config = "src/console/askama.toml")]
pub struct BacklinksPage {
    pub frame: Frame,
    pub target_input: String,
    /// The normalized target the results are for; empty before a search.
    pub target_text: String,
    pub mode_options: Vec<SelectOption>,
    pub status_options: Vec<SelectOption>,
    pub followed_only: bool,
    pub external_only: bool,
    pub error: Option<String>,
    /// A sentence with the totals; `None` before a search.
    pub summary: Option<String>,
    pub tabs: Vec<Tab>,
    /// `links`, `domains` or `anchors`.
    pub view: &'static str,
    pub links: Vec<BacklinkRowView>,
    pub domains: Vec<DomainRow>,
    pub anchors: Vec<AnchorRow>,
    pub pager: Pager,
    pub exports: Vec<ExportLinks>,
}

/// A link to one view of a page.
pub struct Tab {
    pub label: &'static str,
    pub href: String,
    pub current: bool,
}

pub struct BacklinkRowView {
    pub source_url: String,
    pub source_href: String,
    pub source_title: String,
    pub target_url: String,
    pub anchor: String,
    pub rel: String,
    pub first_seen: String,
    pub last_seen: String,
}

pub struct DomainRow {
    pub domain: String,
    pub backlinks: Count,
    pub followed: Count,
    pub first_seen: String,
}

pub struct AnchorRow {
    pub anchor: String,
    pub backlinks: Count,
    pub domains: Count,
}

#[derive(Template)]
#[template(path = "audit.html", config = "src/console/askama.toml")]
pub struct AuditPage {
    pub frame: Frame,
    pub site_id: i64,
    pub site_host: String,
    pub summary: String,
    pub findings: Vec<FindingRow>,
    pub exports: Vec<ExportLinks>,
}

pub struct FindingRow {
    pub code: String,
    /// `error`, `warning` or `notice`, for the CSS class.
    pub severity: &'static str,
    /// 0 for errors, 1 for warnings, 2 for notices, for sorting.
    pub severity_rank: u8,
    pub severity_label: &'static str,
    /// What the finding means, in the page's language.
    pub title: String,
    pub count: Count,
    pub examples_label: String,
    pub examples: Vec<ExampleRow>,
}

pub struct ExampleRow {
    pub url: String,
    pub href: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "login.html", config = "src/console/askama.toml")]
pub struct LoginPage {
    pub frame: Frame,
    pub error: Option<String>,
    /// The console path to return to after login.
    pub next: String,
}

#[derive(Template)]
#[template(path = "error.html", config = "src/console/askama.toml")]
pub struct ErrorPage {
    pub frame: Frame,
    pub status: u16,
    pub message: String,
}

/// The template sources, for the test that every key they use is translated.
#[cfg(test)]
const SOURCES: &[&str] = &[
    include_str!("templates/base.html"),
    include_str!("templates/notices.html"),
    include_str!("templates/pager.html"),
    include_str!("templates/exports.html"),
    include_str!("templates/sites.html"),
    include_str!("templates/site.html"),
    include_str!("templates/pages.html"),
    include_str!("templates/page.html"),
    include_str!("templates/backlinks.html"),
    include_str!("templates/audit.html"),
    include_str!("templates/login.html"),
    include_str!("templates/error.html"),
];

/// Every key that a template passes to `frame.t("…")`.
#[cfg(test)]
pub fn used_keys() -> std::collections::BTreeSet<String> {
    let mut keys = std::collections::BTreeSet::new();
    for source in SOURCES {
        for rest in source.split("frame.t(\"").skip(1) {
            if let Some((key, _)) = rest.split_once('"') {
                keys.insert(key.to_string());
            }
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> Frame {
        Frame { lang: Lang::En, section: "sites", csrf: "token".into(), show_logout: false, languages: Vec::new() }
    }

    fn row(url: &str, title: &str) -> PageRowView {
        PageRowView {
            url_id: 7,
            url: url.to_string(),
            status: "200".into(),
            status_sort: 200,
            status_class: "2xx".into(),
            title: title.to_string(),
            h1: String::new(),
            depth: 1,
            response_time_ms: 12,
            response_time: "12 ms".into(),
            size_bytes: 100,
            size: "100 B".into(),
            indexing: String::new(),
        }
    }

    fn pages_page(rows: Vec<PageRowView>, search: &str) -> PagesPage {
        PagesPage {
            frame: frame(),
            site_id: 1,
            site_host: "example.com".into(),
            status_options: Vec::new(),
            search: search.to_string(),
            filtered: false,
            scan_note: None,
            rows,
            pager: Pager::default(),
            exports: Vec::new(),
        }
    }

    #[test]
    fn crawled_text_is_escaped() {
        let html =
            pages_page(vec![row("http://example.com/?a=1&b=2", "<script>alert(1)</script>")], "").render().unwrap();
        assert!(!html.contains("<script>alert(1)"), "title was not escaped: {html}");
        assert!(html.contains("&#60;script&#62;alert(1)&#60;/script&#62;") || html.contains("&lt;script&gt;"));
        assert!(html.contains("http://example.com/?a=1&#38;b=2") || html.contains("http://example.com/?a=1&amp;b=2"));
    }

    #[test]
    fn attribute_values_are_escaped() {
        let html = pages_page(Vec::new(), "\" autofocus onfocus=\"alert(1)").render().unwrap();
        assert!(!html.contains("\" autofocus onfocus=\"alert(1)"), "search value broke out of its attribute");
        assert!(html.contains("onfocus="), "the value itself is still shown, escaped");
    }

    #[test]
    fn pages_show_translated_labels() {
        let mut page = pages_page(vec![row("http://example.com/", "Home")], "");
        page.frame.lang = Lang::Ru;
        let html = page.render().unwrap();
        assert!(html.contains("<html lang=\"ru\">"));
        assert!(html.contains(Lang::Ru.text("pages.title")));
    }
}
