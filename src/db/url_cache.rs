//! UrlCache: the ids and depths of stored URLs, kept by the DbWriter between batches.
//!
//! Most links of a site point at URLs stored long before: the navigation, the index
//! pages, the pages of the same section. Sampled every 50 ms during the benchmark crawl,
//! PostgreSQL was running the lookup of a batch's URLs as often as the COPY of its links
//! (100 and 103 samples). The cache returns those ids from memory and leaves only the URLs
//! it does not contain to the database.
//!
//! A cached id stays valid because no URL row is ever deleted. A cached depth may be
//! higher than the stored one, when a depth update lowered the URL in the database: that
//! only makes the writer ask PostgreSQL to lower it again, which finds nothing to do. A
//! database replaced under a running admin would need the admin restarted.

use std::collections::HashMap;

/// Entries of one generation. The cache keeps at most two generations, an estimated
/// 11 MB for URLs of 70 bytes.
const GENERATION_ENTRIES: usize = 50_000;

/// The id and depth of a stored URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachedUrl {
    pub id: i64,
    pub depth: i32,
}

/// The ids and depths of recently used URLs, bounded in size.
///
/// Eviction keeps two generations: new entries go into the current one, and when it is
/// full it becomes the previous one and the old previous one is dropped. A hit in the
/// previous generation moves the entry to the current one, so URLs in use survive.
#[derive(Debug)]
pub struct UrlCache {
    current: HashMap<Box<str>, CachedUrl>,
    previous: HashMap<Box<str>, CachedUrl>,
    generation_entries: usize,
}

impl Default for UrlCache {
    fn default() -> Self {
        Self::with_generation_entries(GENERATION_ENTRIES)
    }
}

impl UrlCache {
    pub fn with_generation_entries(generation_entries: usize) -> Self {
        Self { current: HashMap::new(), previous: HashMap::new(), generation_entries: generation_entries.max(1) }
    }

    pub fn get(&mut self, url: &str) -> Option<CachedUrl> {
        if let Some(entry) = self.current.get(url) {
            return Some(*entry);
        }
        let entry = self.previous.remove(url)?;
        self.insert(url, entry);
        Some(entry)
    }

    /// Store a URL as committed to the database. Callers insert only after the commit, so
    /// that a rolled-back transaction cannot leave ids that do not exist.
    pub fn insert(&mut self, url: &str, entry: CachedUrl) {
        if self.current.len() >= self.generation_entries && !self.current.contains_key(url) {
            self.previous = std::mem::take(&mut self.current);
        }
        self.previous.remove(url);
        self.current.insert(url.into(), entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: i64) -> CachedUrl {
        CachedUrl { id, depth: 1 }
    }

    #[test]
    fn returns_inserted_entries() {
        let mut cache = UrlCache::default();
        cache.insert("http://a/", entry(1));
        assert_eq!(cache.get("http://a/"), Some(entry(1)));
        assert_eq!(cache.get("http://b/"), None);
    }

    #[test]
    fn holds_at_most_two_generations() {
        let mut cache = UrlCache::with_generation_entries(2);
        for id in 0..10 {
            cache.insert(&format!("http://a/{id}"), entry(id));
        }
        let entries = cache.current.len() + cache.previous.len();
        assert!(entries <= 4, "{entries} entries");
        assert_eq!(cache.get("http://a/9"), Some(entry(9)));
        assert_eq!(cache.get("http://a/0"), None);
    }

    #[test]
    fn keeps_entries_in_use() {
        let mut cache = UrlCache::with_generation_entries(2);
        cache.insert("http://a/hot", entry(0));
        for id in 1..20 {
            cache.insert(&format!("http://a/{id}"), entry(id));
            assert_eq!(cache.get("http://a/hot"), Some(entry(0)), "lost after {id} inserts");
        }
    }

    #[test]
    fn insert_replaces_depth() {
        let mut cache = UrlCache::default();
        cache.insert("http://a/", CachedUrl { id: 1, depth: 5 });
        cache.insert("http://a/", CachedUrl { id: 1, depth: 2 });
        assert_eq!(cache.get("http://a/"), Some(CachedUrl { id: 1, depth: 2 }));
        assert_eq!(cache.current.len() + cache.previous.len(), 1);
    }
}
