//! Page analysis: HTML in, SEO facts and links out. No I/O happens here.

use scraper::{ElementRef, Html, Selector};
use url::Url;

use crate::messages::{Link, PageFacts};

/// The facts and outgoing links of one HTML document.
#[derive(Debug, Default)]
pub struct Extracted {
    pub facts: PageFacts,
    pub links: Vec<Link>,
}

/// The CSS selectors used on every page, compiled once per worker.
pub struct Extractor {
    base: Selector,
    title: Selector,
    h1: Selector,
    meta: Selector,
    canonical: Selector,
    anchor: Selector,
    image: Selector,
}

impl Default for Extractor {
    fn default() -> Self {
        Self::new()
    }
}

impl Extractor {
    pub fn new() -> Self {
        let parse = |css: &str| match Selector::parse(css) {
            Ok(selector) => selector,
            Err(e) => panic!("built-in selector '{css}' is invalid: {e}"),
        };
        Self {
            base: parse("base[href]"),
            title: parse("title"),
            h1: parse("h1"),
            meta: parse("meta[name][content]"),
            canonical: parse("link[rel][href]"),
            anchor: parse("a[href]"),
            image: parse("img[alt]"),
        }
    }

    /// Analyse a decoded HTML document fetched from `page_url`.
    pub fn extract(&self, page_url: &Url, html: &str) -> Extracted {
        let document = Html::parse_document(html);

        // `<base href>` changes how every relative link resolves, the canonical included.
        let base = document
            .select(&self.base)
            .next()
            .and_then(|e| e.value().attr("href"))
            .and_then(|href| page_url.join(href.trim()).ok())
            .unwrap_or_else(|| page_url.clone());

        let mut facts = PageFacts {
            title: document
                .select(&self.title)
                .next()
                .map(|e| collapse_text(e.text())),
            h1: document
                .select(&self.h1)
                .next()
                .map(|e| self.anchor_text(e)),
            ..PageFacts::default()
        };

        for meta in document.select(&self.meta) {
            let name = meta
                .value()
                .attr("name")
                .unwrap_or_default()
                .to_ascii_lowercase();
            let content = meta.value().attr("content").unwrap_or_default();
            match name.as_str() {
                "description" if facts.meta_description.is_none() => {
                    facts.meta_description = Some(collapse_text(std::iter::once(content)));
                }
                "robots" | "googlebot" => {
                    let directives = RobotsDirectives::parse(content);
                    facts.noindex |= directives.noindex;
                    facts.nofollow |= directives.nofollow;
                }
                _ => {}
            }
        }

        facts.canonical = document
            .select(&self.canonical)
            .find(|e| rel_tokens(e).any(|t| t == "canonical"))
            .and_then(|e| e.value().attr("href"))
            .and_then(|href| crate::url::resolve(&base, href))
            .map(String::from);

        let links = document
            .select(&self.anchor)
            .filter_map(|element| {
                let href = element.value().attr("href")?;
                let target = crate::url::resolve(&base, href)?;
                let rel: Vec<String> = rel_tokens(&element).collect();
                Some(Link {
                    href: href.to_string(),
                    url: target.into(),
                    anchor_text: self.anchor_text(element),
                    nofollow: rel.iter().any(|t| t == "nofollow"),
                    ugc: rel.iter().any(|t| t == "ugc"),
                    sponsored: rel.iter().any(|t| t == "sponsored"),
                })
            })
            .collect();

        Extracted { facts, links }
    }

    /// The visible text of an element; for an image-only link, the images' alt text,
    /// which is what search engines use as its anchor.
    fn anchor_text(&self, element: ElementRef<'_>) -> String {
        let text = collapse_text(element.text());
        if !text.is_empty() {
            return text;
        }
        collapse_text(
            element
                .select(&self.image)
                .filter_map(|img| img.value().attr("alt")),
        )
    }
}

/// Directives of a robots meta tag or an `X-Robots-Tag` header value.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RobotsDirectives {
    pub noindex: bool,
    pub nofollow: bool,
}

impl RobotsDirectives {
    pub fn parse(content: &str) -> Self {
        let mut directives = Self::default();
        for token in content.split(',').map(|t| t.trim().to_ascii_lowercase()) {
            match token.as_str() {
                "noindex" => directives.noindex = true,
                "nofollow" => directives.nofollow = true,
                "none" => {
                    directives.noindex = true;
                    directives.nofollow = true;
                }
                _ => {}
            }
        }
        directives
    }
}

fn rel_tokens<'a>(element: &'a ElementRef<'_>) -> impl Iterator<Item = String> + 'a {
    element
        .value()
        .attr("rel")
        .unwrap_or_default()
        .split_ascii_whitespace()
        .map(str::to_ascii_lowercase)
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
