//! Crawl limits and spider-trap guards: whether a newly discovered URL of a site is
//! crawled. Pure functions; the DbWriter supplies the counts they need.

use std::collections::HashMap;

use url::Url;

/// The limits a site's crawl obeys.
#[derive(Debug, Clone)]
pub struct CrawlLimits {
    pub max_pages_per_site: i64,
    pub max_depth: i32,
    pub max_query_variants: i64,
    pub max_repeated_segments: u32,
}

/// Why a discovered URL is recorded but not crawled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    MaxPages,
    MaxDepth,
    QueryVariants,
    RepeatedSegments,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::MaxPages => "max_pages",
            SkipReason::MaxDepth => "max_depth",
            SkipReason::QueryVariants => "query_variants",
            SkipReason::RepeatedSegments => "repeated_segments",
        }
    }
}

/// The URL without its query, when it has one: the key of the query-variant guard.
pub fn path_key(url: &Url) -> Option<String> {
    url.query()?;
    let mut bare = url.clone();
    bare.set_query(None);
    Some(bare.into())
}

/// How often the most repeated non-empty path segment occurs.
pub fn max_segment_repeats(url: &Url) -> u32 {
    let mut counts: HashMap<&str, u32> = HashMap::new();
    for segment in url.path().split('/').filter(|s| !s.is_empty()) {
        *counts.entry(segment).or_default() += 1;
    }
    counts.into_values().max().unwrap_or(0)
}

/// Running counts of one batch of discoveries, seeded from the database.
#[derive(Debug, Default)]
pub struct GuardCounts {
    /// Page URLs per site so far.
    pub pages_per_site: HashMap<i64, i64>,
    /// URLs per path key so far.
    pub variants_per_path: HashMap<String, i64>,
}

impl CrawlLimits {
    /// Decide on one new page URL of a site, counting it when it is kept.
    pub fn check(&self, site_id: i64, url: &Url, depth: i32, counts: &mut GuardCounts) -> Result<(), SkipReason> {
        if depth > self.max_depth {
            return Err(SkipReason::MaxDepth);
        }
        if max_segment_repeats(url) > self.max_repeated_segments {
            return Err(SkipReason::RepeatedSegments);
        }
        let key = path_key(url);
        if let Some(key) = &key {
            if counts.variants_per_path.get(key).copied().unwrap_or(0) >= self.max_query_variants {
                return Err(SkipReason::QueryVariants);
            }
        }
        let pages = counts.pages_per_site.entry(site_id).or_default();
        if *pages >= self.max_pages_per_site {
            return Err(SkipReason::MaxPages);
        }
        *pages += 1;
        if let Some(key) = key {
            *counts.variants_per_path.entry(key).or_default() += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> CrawlLimits {
        CrawlLimits { max_pages_per_site: 3, max_depth: 5, max_query_variants: 2, max_repeated_segments: 2 }
    }

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn depth_limit() {
        let mut counts = GuardCounts::default();
        assert_eq!(limits().check(1, &url("http://a/x"), 6, &mut counts), Err(SkipReason::MaxDepth));
        assert_eq!(limits().check(1, &url("http://a/x"), 5, &mut counts), Ok(()));
    }

    #[test]
    fn repeated_segments() {
        assert_eq!(max_segment_repeats(&url("http://a/a/b/a/b/a/b")), 3);
        let mut counts = GuardCounts::default();
        assert_eq!(limits().check(1, &url("http://a/a/b/a/b/a"), 1, &mut counts), Err(SkipReason::RepeatedSegments));
        assert_eq!(limits().check(1, &url("http://a/a/b/a/b"), 1, &mut counts), Ok(()));
    }

    #[test]
    fn calendar_trap_stops_after_query_variants() {
        let mut counts = GuardCounts::default();
        let limits = CrawlLimits { max_pages_per_site: 100, ..limits() };
        assert_eq!(limits.check(1, &url("http://a/cal?m=1"), 1, &mut counts), Ok(()));
        assert_eq!(limits.check(1, &url("http://a/cal?m=2"), 2, &mut counts), Ok(()));
        assert_eq!(limits.check(1, &url("http://a/cal?m=3"), 3, &mut counts), Err(SkipReason::QueryVariants));
        assert_eq!(limits.check(1, &url("http://a/other?m=3"), 3, &mut counts), Ok(()));
    }

    #[test]
    fn page_limit_per_site() {
        let mut counts = GuardCounts::default();
        counts.pages_per_site.insert(1, 2);
        assert_eq!(limits().check(1, &url("http://a/1"), 1, &mut counts), Ok(()));
        assert_eq!(limits().check(1, &url("http://a/2"), 1, &mut counts), Err(SkipReason::MaxPages));
        assert_eq!(limits().check(2, &url("http://b/1"), 1, &mut counts), Ok(()));
    }

    #[test]
    fn path_key_drops_query_only() {
        assert_eq!(path_key(&url("http://a/p?x=1")).as_deref(), Some("http://a/p"));
        assert_eq!(path_key(&url("http://a/p")), None);
    }
}
