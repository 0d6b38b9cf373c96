//! URL identity: parsing, resolution against a base, normalization and the site key.
//!
//! Pure functions only. Two spellings of one resource must normalize to the same string,
//! because that string is the URL's identity in the database.

use url::Url;

/// Why a string is not a crawlable URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("'{input}' is not an absolute URL: {reason}")]
    Parse { input: String, reason: String },
    #[error("'{input}' has scheme '{scheme}'; only http and https can be crawled")]
    Scheme { input: String, scheme: String },
    #[error("'{input}' has no host")]
    NoHost { input: String },
    #[error("the URL is {length} bytes long, over the {max}-byte maximum (MAX_URL_BYTES)")]
    TooLong { length: usize, max: usize },
}

/// Parse an absolute http(s) URL as typed by a user and normalize it.
pub fn parse_crawlable(input: &str) -> Result<Url, UrlError> {
    let trimmed = input.trim();
    let url = Url::parse(trimmed).map_err(|e| UrlError::Parse { input: trimmed.to_string(), reason: e.to_string() })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlError::Scheme { input: trimmed.to_string(), scheme: url.scheme().to_string() });
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(UrlError::NoHost { input: trimmed.to_string() });
    }
    Ok(normalize(url))
}

/// What the crawler does to URLs beyond normalization: which query parameters it drops
/// and how long a URL may be.
#[derive(Debug, Clone)]
pub struct UrlPolicy {
    /// Query parameter names to remove; a name ending in `*` is a prefix (`utm_*`).
    pub drop_query_params: Vec<String>,
    /// Longest URL kept, in bytes.
    pub max_url_bytes: usize,
}

impl Default for UrlPolicy {
    fn default() -> Self {
        Self { drop_query_params: Vec::new(), max_url_bytes: 2048 }
    }
}

impl UrlPolicy {
    /// Resolve an `href` and apply the policy; `None` unless the result is http(s).
    pub fn resolve(&self, base: &Url, href: &str) -> Option<Url> {
        let mut url = resolve(base, href)?;
        self.drop_params(&mut url);
        Some(url)
    }

    /// Parse a user's URL and apply the policy, rejecting one longer than the maximum.
    pub fn parse(&self, input: &str) -> Result<Url, UrlError> {
        let mut url = parse_crawlable(input)?;
        self.drop_params(&mut url);
        if url.as_str().len() > self.max_url_bytes {
            return Err(UrlError::TooLong { length: url.as_str().len(), max: self.max_url_bytes });
        }
        Ok(url)
    }

    fn drop_params(&self, url: &mut Url) {
        if self.drop_query_params.is_empty() {
            return;
        }
        let Some(query) = url.query() else { return };
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| {
                let name = pair.split('=').next().unwrap_or_default();
                !self.drop_query_params.iter().any(|pattern| match pattern.strip_suffix('*') {
                    Some(prefix) => name.starts_with(prefix),
                    None => name == pattern,
                })
            })
            .collect();
        let kept = kept.join("&");
        url.set_query((!kept.is_empty()).then_some(kept.as_str()));
    }
}

/// The registrable domain of a site key (`host` or `host:port`) by the public suffix
/// list: `sub.example.co.uk` gives `example.co.uk`. An IP address, or a name that is itself
/// a public suffix, is its own domain.
pub fn registrable_domain(site_host: &str) -> String {
    let host = match site_host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) && !name.contains(':') => name,
        _ => site_host,
    };
    let host = host.trim_matches(['[', ']']).trim_end_matches('.').to_ascii_lowercase();
    if host.parse::<std::net::IpAddr>().is_ok() {
        return host;
    }
    psl::domain_str(&host).map(str::to_string).unwrap_or(host)
}

/// A host as people read it: internationalized names in Unicode, not punycode.
pub fn display_host(host: &str) -> String {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) && !name.contains(':') => (name, Some(port)),
        _ => (host, None),
    };
    let (unicode, result) = idna::domain_to_unicode(name);
    let name = if result.is_ok() { unicode } else { name.to_string() };
    match port {
        Some(port) => format!("{name}:{port}"),
        None => name,
    }
}

/// Resolve an `href` against a base URL; `None` unless the result is http(s) with a host.
pub fn resolve(base: &Url, href: &str) -> Option<Url> {
    let joined = base.join(href.trim()).ok()?;
    if !matches!(joined.scheme(), "http" | "https") || joined.host_str().is_none_or(str::is_empty) {
        return None;
    }
    Some(normalize(joined))
}

/// Normalize a URL that the `url` crate already parsed.
///
/// The parser lowercases scheme and host, drops a default port, resolves dot segments and
/// turns an empty path into `/`. This adds what it leaves alone: the fragment is dropped,
/// percent-escapes of unreserved characters are decoded and the remaining escapes are
/// uppercased. Query parameter order is kept because servers may depend on it.
pub fn normalize(mut url: Url) -> Url {
    url.set_fragment(None);

    let path = normalize_escapes(url.path());
    if path != url.path() {
        url.set_path(&path);
    }
    if let Some(query) = url.query() {
        let normalized = normalize_escapes(query);
        if normalized != query {
            url.set_query(Some(&normalized));
        }
    }
    url
}

/// The site key of a URL: its host, plus the port when it is not the scheme's default.
pub fn site_host(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// Decode `%XX` escapes of unreserved characters and uppercase the hex of the others
/// (RFC 3986, section 6.2.2).
fn normalize_escapes(input: &str) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape = bytes.get(i + 1..i + 3).filter(|_| bytes[i] == b'%');
        if let Some(&[high, low]) = escape {
            if high.is_ascii_hexdigit() && low.is_ascii_hexdigit() {
                let value = hex_value(high) * 16 + hex_value(low);
                if is_unreserved(value) {
                    out.push(value);
                } else {
                    out.push(b'%');
                    out.push(high.to_ascii_uppercase());
                    out.push(low.to_ascii_uppercase());
                }
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    // Only ASCII bytes were decoded, so the output is UTF-8 whenever the input was.
    String::from_utf8(out).unwrap_or_else(|_| input.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(input: &str) -> String {
        parse_crawlable(input).unwrap().to_string()
    }

    #[test]
    fn normalize_case_port_fragment() {
        assert_eq!(norm("HTTP://Example.COM:80/a#top"), "http://example.com/a");
        assert_eq!(norm("https://example.com:443"), "https://example.com/");
        assert_eq!(norm("http://example.com:8080/"), "http://example.com:8080/");
    }

    #[test]
    fn normalize_dot_segments() {
        assert_eq!(norm("http://example.com/a/./b/../c"), "http://example.com/a/c");
    }

    #[test]
    fn normalize_percent_escapes() {
        assert_eq!(norm("http://example.com/%7euser/%2fx"), "http://example.com/~user/%2Fx");
        assert_eq!(norm("http://example.com/?q=%41%3d"), "http://example.com/?q=A%3D");
    }

    #[test]
    fn normalize_keeps_query_order() {
        assert_eq!(norm("http://example.com/?b=1&a=2"), "http://example.com/?b=1&a=2");
    }

    #[test]
    fn truncated_escape_is_kept() {
        assert_eq!(norm("http://example.com/a%4"), "http://example.com/a%4");
        assert_eq!(norm("http://example.com/a%"), "http://example.com/a%");
    }

    #[test]
    fn parse_rejects_other_schemes() {
        assert!(matches!(parse_crawlable("ftp://example.com/"), Err(UrlError::Scheme { .. })));
        assert!(matches!(parse_crawlable("not a url"), Err(UrlError::Parse { .. })));
        assert!(matches!(parse_crawlable("mailto:a@example.com"), Err(UrlError::Scheme { .. })));
    }

    #[test]
    fn resolve_relative_and_rejects_non_http() {
        let base = Url::parse("http://example.com/book/ch1.html").unwrap();
        assert_eq!(resolve(&base, "ch2.html#x").unwrap().as_str(), "http://example.com/book/ch2.html");
        assert_eq!(resolve(&base, "../std/index.html").unwrap().as_str(), "http://example.com/std/index.html");
        assert_eq!(resolve(&base, "#top").unwrap().as_str(), "http://example.com/book/ch1.html");
        assert!(resolve(&base, "mailto:x@example.com").is_none());
        assert!(resolve(&base, "javascript:void(0)").is_none());
    }

    #[test]
    fn policy_drops_listed_params() {
        let policy = UrlPolicy { drop_query_params: vec!["utm_*".into(), "ref".into()], ..UrlPolicy::default() };
        let base = Url::parse("http://example.com/").unwrap();
        let url = policy.resolve(&base, "/a?utm_source=x&id=3&ref=y&utm_medium=z").unwrap();
        assert_eq!(url.as_str(), "http://example.com/a?id=3");
        let url = policy.resolve(&base, "/b?utm_source=x").unwrap();
        assert_eq!(url.as_str(), "http://example.com/b");
    }

    #[test]
    fn default_policy_keeps_params() {
        let base = Url::parse("http://example.com/").unwrap();
        let url = UrlPolicy::default().resolve(&base, "/a?utm_source=x").unwrap();
        assert_eq!(url.as_str(), "http://example.com/a?utm_source=x");
    }

    #[test]
    fn idn_host_is_punycode_and_displayed_in_unicode() {
        let url = parse_crawlable("http://пример.рф:8080/путь").unwrap();
        assert_eq!(url.host_str(), Some("xn--e1afmkfd.xn--p1ai"));
        assert_eq!(url.path(), "/%D0%BF%D1%83%D1%82%D1%8C");
        assert_eq!(display_host(&site_host(&url)), "пример.рф:8080");
        assert_eq!(display_host("127.0.0.1:80"), "127.0.0.1:80");
    }

    #[test]
    fn registrable_domains() {
        assert_eq!(registrable_domain("sub.example.co.uk"), "example.co.uk");
        assert_eq!(registrable_domain("www.example.com:8080"), "example.com");
        assert_eq!(registrable_domain("127.0.0.1:8080"), "127.0.0.1");
        assert_eq!(registrable_domain("xn--e1afmkfd.xn--p1ai"), "xn--e1afmkfd.xn--p1ai");
        assert_eq!(registrable_domain("localhost"), "localhost");
    }

    #[test]
    fn site_host_keeps_explicit_port() {
        let url = Url::parse("http://127.0.0.1:8080/x").unwrap();
        assert_eq!(site_host(&url), "127.0.0.1:8080");
        let url = Url::parse("https://example.com/x").unwrap();
        assert_eq!(site_host(&url), "example.com");
    }
}
