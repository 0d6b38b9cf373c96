//! robots.txt (RFC 9309): fetched once per host, cached, and consulted before every fetch.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use awc::http::header;
use tokio::sync::OnceCell;
use url::Url;

/// Largest robots.txt read; RFC 9309 lets a crawler stop parsing after 500 KiB.
pub const MAX_ROBOTS_BYTES: usize = 500 * 1024;

/// Most redirects followed to reach a robots.txt; RFC 9309 asks for at least five.
const MAX_ROBOTS_REDIRECTS: usize = 5;

/// What a host's robots.txt says about crawling it.
#[derive(Debug)]
pub enum RobotsPolicy {
    /// No usable file (a 4xx answer): everything may be crawled.
    AllowAll,
    /// The parsed rules for our product token.
    Rules(texting_robots::Robot),
    /// The file could not be fetched (a 5xx answer or no connection): nothing may be
    /// crawled until the next try.
    Unavailable(String),
}

impl RobotsPolicy {
    /// Parse a robots.txt body for a product token; a body that does not parse counts
    /// as no rules at all.
    pub fn parse(token: &str, body: &[u8]) -> Self {
        let body = &body[..body.len().min(MAX_ROBOTS_BYTES)];
        match texting_robots::Robot::new(token, body) {
            Ok(robot) => RobotsPolicy::Rules(robot),
            Err(error) => {
                log::debug!("robots.txt does not parse, treating it as empty: {error}");
                RobotsPolicy::AllowAll
            }
        }
    }

    pub fn allows(&self, url: &str) -> bool {
        match self {
            RobotsPolicy::AllowAll => true,
            RobotsPolicy::Rules(robot) => robot.allowed(url),
            RobotsPolicy::Unavailable(_) => false,
        }
    }

    /// The `Crawl-delay` of our group, if any.
    pub fn crawl_delay(&self) -> Option<Duration> {
        match self {
            RobotsPolicy::Rules(robot) => {
                robot.delay.filter(|d| d.is_finite() && *d > 0.0).map(Duration::from_secs_f32)
            }
            _ => None,
        }
    }

    /// The `Sitemap:` lines of the file.
    pub fn sitemaps(&self) -> &[String] {
        match self {
            RobotsPolicy::Rules(robot) => &robot.sitemaps,
            _ => &[],
        }
    }
}

/// A cached policy and whether this request is the one that fetched it.
pub struct Lookup {
    pub policy: Rc<RobotsPolicy>,
    pub fresh: bool,
}

/// The robots.txt policies of the hosts one FetchWorker crawls.
///
/// Every host's URLs reach the same worker, so one cache per worker fetches each
/// robots.txt once; concurrent requests for a host wait for the same fetch.
pub struct RobotsCache {
    token: String,
    ttl: Duration,
    retry_after_failure: Duration,
    entries: RefCell<HashMap<String, CacheEntry>>,
}

struct CacheEntry {
    created: Instant,
    cell: Rc<OnceCell<Rc<RobotsPolicy>>>,
}

impl RobotsCache {
    pub fn new(token: &str, ttl: Duration, retry_after_failure: Duration) -> Self {
        Self { token: token.to_string(), ttl, retry_after_failure, entries: RefCell::new(HashMap::new()) }
    }

    /// The policy for the host of `url`, fetching robots.txt when it is not cached or
    /// has expired.
    pub async fn lookup(&self, client: &awc::Client, url: &Url) -> Lookup {
        let robots_url = match url.join("/robots.txt") {
            Ok(robots_url) => robots_url,
            Err(_) => return Lookup { policy: Rc::new(RobotsPolicy::AllowAll), fresh: false },
        };
        let key = crate::url::site_host(url);
        let cell = self.cell_for(&key);

        let mut fetched_here = false;
        let policy = cell
            .get_or_init(|| {
                fetched_here = true;
                let token = self.token.as_str();
                async move { Rc::new(fetch_policy(client, token, robots_url).await) }
            })
            .await
            .clone();
        Lookup { policy, fresh: fetched_here }
    }

    fn cell_for(&self, key: &str) -> Rc<OnceCell<Rc<RobotsPolicy>>> {
        let mut entries = self.entries.borrow_mut();
        let now = Instant::now();
        let expired = entries.get(key).is_some_and(|entry| {
            let ttl = match entry.cell.get().map(|p| p.as_ref()) {
                Some(RobotsPolicy::Unavailable(_)) => self.retry_after_failure,
                _ => self.ttl,
            };
            entry.cell.initialized() && now.duration_since(entry.created) > ttl
        });
        if expired {
            entries.remove(key);
        }
        entries
            .entry(key.to_string())
            .or_insert_with(|| CacheEntry { created: now, cell: Rc::new(OnceCell::new()) })
            .cell
            .clone()
    }
}

async fn fetch_policy(client: &awc::Client, token: &str, mut robots_url: Url) -> RobotsPolicy {
    for _ in 0..=MAX_ROBOTS_REDIRECTS {
        let mut response = match super::fetch::send_get(client, robots_url.as_str()).await {
            Ok(response) => response,
            Err(error) => return RobotsPolicy::Unavailable(format!("fetching {robots_url} failed: {error}")),
        };
        let status = response.status().as_u16();
        match status {
            200..=299 => {
                // A body over the limit is cut there, as RFC 9309 allows.
                return match response.body().limit(MAX_ROBOTS_BYTES * 4).await {
                    Ok(body) => RobotsPolicy::parse(token, &body),
                    Err(error) => RobotsPolicy::Unavailable(format!("reading {robots_url} failed: {error}")),
                };
            }
            300..=399 => {
                let location = response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok());
                match location.and_then(|l| robots_url.join(l).ok()) {
                    Some(next) => robots_url = next,
                    None => return RobotsPolicy::AllowAll,
                }
            }
            400..=499 => return RobotsPolicy::AllowAll,
            _ => return RobotsPolicy::Unavailable(format!("{robots_url} answered HTTP {status}")),
        }
    }
    // RFC 9309 treats a robots.txt beyond the redirect limit as unavailable (a 4xx).
    RobotsPolicy::AllowAll
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(robots: &str, path: &str) -> bool {
        RobotsPolicy::parse("OpenAhrefsBot", robots.as_bytes()).allows(&format!("http://example.com{path}"))
    }

    #[test]
    fn longest_match_wins() {
        let robots = "User-agent: *\nDisallow: /example/\nAllow: /example/page.html\n";
        assert!(!allows(robots, "/example/other.html"));
        assert!(allows(robots, "/example/page.html"));
        assert!(allows(robots, "/elsewhere"));
    }

    #[test]
    fn equal_length_prefers_allow() {
        let robots = "User-agent: *\nAllow: /page\nDisallow: /page\n";
        assert!(allows(robots, "/page"));
    }

    #[test]
    fn wildcard_and_end_anchor() {
        let robots = "User-agent: *\nDisallow: /*.gif$\nDisallow: /private*/\n";
        assert!(!allows(robots, "/images/a.gif"));
        assert!(allows(robots, "/images/a.gif?x=1"));
        assert!(!allows(robots, "/private-area/x"));
        assert!(allows(robots, "/public/x"));
    }

    #[test]
    fn our_group_overrides_star() {
        let robots = "User-agent: *\nDisallow: /\n\nUser-agent: OpenAhrefsBot\nDisallow: /secret\n";
        assert!(allows(robots, "/page"));
        assert!(!allows(robots, "/secret/x"));
    }

    #[test]
    fn group_of_several_agents() {
        // RFC 9309, section 2.2.1: consecutive user-agent lines share one group.
        let robots = "User-agent: otherbot\nUser-agent: openahrefsbot\nDisallow: /shared\n";
        assert!(!allows(robots, "/shared/x"));
    }

    #[test]
    fn percent_encoding_equivalence() {
        // RFC 9309, section 2.2.2: /foo/bar/%E3%83%84 matches /foo/bar/ツ.
        let robots = "User-agent: *\nDisallow: /foo/bar/ツ\n";
        assert!(!allows(robots, "/foo/bar/%E3%83%84"));
    }

    #[test]
    fn empty_disallow_allows_everything() {
        assert!(allows("User-agent: *\nDisallow:\n", "/anything"));
    }

    #[test]
    fn crawl_delay_and_sitemaps() {
        let policy = RobotsPolicy::parse(
            "OpenAhrefsBot",
            b"Sitemap: http://example.com/s.xml\nUser-agent: *\nCrawl-delay: 2.5\nDisallow: /x\n",
        );
        assert_eq!(policy.crawl_delay(), Some(Duration::from_millis(2500)));
        assert_eq!(policy.sitemaps(), ["http://example.com/s.xml"]);
    }

    #[test]
    fn unavailable_disallows_all() {
        let policy = RobotsPolicy::Unavailable("HTTP 503".into());
        assert!(!policy.allows("http://example.com/"));
    }
}
