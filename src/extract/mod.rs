//! Page analysis: HTML in, SEO facts and links out. No I/O happens here.

pub mod charset;
pub mod directives;
pub mod nesting;
pub mod sitemap;

use scraper::{ElementRef, Html, Selector};
use url::Url;

use crate::messages::{Hreflang, Link, PageFacts};
use crate::url::UrlPolicy;
use directives::RobotsDirectives;

/// Longest anchor text kept, in characters; the rest is cut so that the link key stays
/// within PostgreSQL's index row size.
pub const MAX_ANCHOR_CHARS: usize = 500;

/// The facts and outgoing links of one HTML document.
#[derive(Debug, Default)]
pub struct Extracted {
    pub facts: PageFacts,
    pub links: Vec<Link>,
    /// `<a href>` elements whose target is longer than the URL policy's maximum.
    pub long_urls_dropped: u32,
}

/// Analyses HTML documents; holds the compiled CSS selectors and the URL policy.
pub struct Extractor {
    policy: UrlPolicy,
    /// Our robots product token in lowercase, for `<meta name="openahrefsbot">`.
    product_token: String,
    base: Selector,
    title: Selector,
    h1: Selector,
    meta: Selector,
    link: Selector,
    anchor: Selector,
    image: Selector,
    image_with_alt: Selector,
    resources: Selector,
}

impl Default for Extractor {
    fn default() -> Self {
        Self::new()
    }
}

impl Extractor {
    /// An extractor with the default URL policy and product token `OpenAhrefsBot`.
    pub fn new() -> Self {
        Self::with_policy(UrlPolicy::default(), "OpenAhrefsBot")
    }

    pub fn with_policy(policy: UrlPolicy, product_token: &str) -> Self {
        let parse = |css: &str| match Selector::parse(css) {
            Ok(selector) => selector,
            Err(e) => panic!("built-in selector '{css}' is invalid: {e}"),
        };
        Self {
            policy,
            product_token: product_token.to_ascii_lowercase(),
            base: parse("base[href]"),
            title: parse("title"),
            h1: parse("h1"),
            meta: parse("meta[content]"),
            link: parse("link[rel][href]"),
            anchor: parse("a[href]"),
            image: parse("img"),
            image_with_alt: parse("img[alt]"),
            resources: parse(
                "img[src], script[src], iframe[src], link[rel~=stylesheet][href], source[src], video[src], audio[src]",
            ),
        }
    }

    /// Analyse a decoded HTML document fetched from `page_url`.
    pub fn extract(&self, page_url: &Url, html: &str) -> Extracted {
        let html = nesting::limit_nesting(html, nesting::MAX_NESTING);
        let document = Html::parse_document(&html);

        // `<base href>` changes how every relative link resolves, the canonical included.
        let base = document
            .select(&self.base)
            .next()
            .and_then(|e| e.value().attr("href"))
            .and_then(|href| page_url.join(href.trim()).ok())
            .unwrap_or_else(|| page_url.clone());

        let mut facts = PageFacts {
            title: document.select(&self.title).next().map(|e| collapse_text(e.text())),
            h1: document.select(&self.h1).next().map(|e| self.anchor_text(e)),
            h1_count: document.select(&self.h1).count() as u32,
            ..PageFacts::default()
        };
        self.read_meta(&document, &base, &mut facts);
        self.read_link_elements(&document, &base, &mut facts);

        facts.images_missing_alt =
            document.select(&self.image).filter(|img| img.value().attr("alt").is_none()).count() as u32;
        if page_url.scheme() == "https" {
            facts.insecure_resources = document
                .select(&self.resources)
                .filter_map(|e| e.value().attr("src").or_else(|| e.value().attr("href")))
                .filter(|target| base.join(target.trim()).is_ok_and(|u| u.scheme() == "http"))
                .count() as u32;
        }

        let mut long_urls_dropped = 0;
        let mut links = Vec::new();
        for element in document.select(&self.anchor) {
            let Some(href) = element.value().attr("href") else { continue };
            let Some(target) = self.policy.resolve(&base, href) else { continue };
            if target.as_str().len() > self.policy.max_url_bytes {
                long_urls_dropped += 1;
                continue;
            }
            let rel: Vec<String> = rel_tokens(&element).collect();
            links.push(Link {
                href: href.to_string(),
                url: target.into(),
                anchor_text: truncate_chars(self.anchor_text(element), MAX_ANCHOR_CHARS),
                nofollow: rel.iter().any(|t| t == "nofollow"),
                ugc: rel.iter().any(|t| t == "ugc"),
                sponsored: rel.iter().any(|t| t == "sponsored"),
            });
        }

        Extracted { facts, links, long_urls_dropped }
    }

    /// Description, robots directives and meta refresh.
    fn read_meta(&self, document: &Html, base: &Url, facts: &mut PageFacts) {
        for meta in document.select(&self.meta) {
            let content = meta.value().attr("content").unwrap_or_default();
            if let Some(equiv) = meta.value().attr("http-equiv") {
                if equiv.eq_ignore_ascii_case("refresh") && facts.meta_refresh.is_none() {
                    facts.meta_refresh = directives::refresh_target(content)
                        .and_then(|t| self.policy.resolve(base, &t))
                        .map(String::from);
                }
                continue;
            }
            let name = meta.value().attr("name").unwrap_or_default().to_ascii_lowercase();
            match name.as_str() {
                "description" if facts.meta_description.is_none() => {
                    facts.meta_description = Some(collapse_text(std::iter::once(content)));
                }
                "robots" | "googlebot" => apply(&mut *facts, RobotsDirectives::parse(content)),
                other if other == self.product_token => apply(&mut *facts, RobotsDirectives::parse(content)),
                _ => {}
            }
        }
    }

    /// Canonical and hreflang alternates.
    fn read_link_elements(&self, document: &Html, base: &Url, facts: &mut PageFacts) {
        for element in document.select(&self.link) {
            let Some(href) = element.value().attr("href") else { continue };
            let rel: Vec<String> = rel_tokens(&element).collect();
            if rel.iter().any(|t| t == "canonical") && facts.canonical.is_none() {
                facts.canonical = self.policy.resolve(base, href).map(String::from);
            }
            if rel.iter().any(|t| t == "alternate") {
                if let (Some(lang), Some(url)) = (element.value().attr("hreflang"), self.policy.resolve(base, href)) {
                    facts.hreflang.push(Hreflang { lang: lang.trim().to_string(), url: url.into() });
                }
            }
        }
    }

    /// The visible text of an element; for an image-only link, the images' alt text,
    /// which is what search engines use as its anchor.
    fn anchor_text(&self, element: ElementRef<'_>) -> String {
        let text = collapse_text(element.text());
        if !text.is_empty() {
            return text;
        }
        collapse_text(element.select(&self.image_with_alt).filter_map(|img| img.value().attr("alt")))
    }
}

fn apply(facts: &mut PageFacts, directives: RobotsDirectives) {
    facts.noindex |= directives.noindex;
    facts.nofollow |= directives.nofollow;
}

fn rel_tokens<'a>(element: &'a ElementRef<'_>) -> impl Iterator<Item = String> + 'a {
    element.value().attr("rel").unwrap_or_default().split_ascii_whitespace().map(str::to_ascii_lowercase)
}

fn truncate_chars(text: String, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => text[..cut].to_string(),
        None => text,
    }
}

/// Concatenate text nodes and collapse runs of whitespace into single spaces, trimmed.
fn collapse_text<'a>(parts: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::new();
    let mut pending_space = false;
    for c in parts.flat_map(str::chars) {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests;
