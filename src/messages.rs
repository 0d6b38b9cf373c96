//! The messages that cross Kafka between the admin and the scraper roles.
//!
//! Both topics carry JSON objects with a `schema_version` field. A consumer rejects any
//! other version instead of guessing, so a rolling upgrade that changes the schema must
//! bump [`SCHEMA_VERSION`]. This module depends on nothing else in the crate.

mod outcome;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The version of the message schema this build writes and reads. Fields added within a
/// version carry `#[serde(default)]`, so that messages of older builds still decode.
pub const SCHEMA_VERSION: u32 = 1;

/// What a URL is expected to hold, which decides how its body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UrlKind {
    #[default]
    Page,
    Sitemap,
}

/// A URL the frontier hands to the scrapers (topic `topic_url`, keyed by host).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrawlRequest {
    pub schema_version: u32,
    pub url_id: i64,
    pub site_id: i64,
    pub url: String,
    #[serde(default)]
    pub kind: UrlKind,
    /// Link distance from the site's seed URL.
    pub depth: i32,
    /// When the frontier leased the URL; echoed back so that a late duplicate result
    /// of an older lease cannot overwrite a newer fetch.
    pub leased_at: DateTime<Utc>,
}

/// The outcome of fetching one URL (topic `topic_res`, keyed by host).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrawlResult {
    pub schema_version: u32,
    pub url_id: i64,
    pub site_id: i64,
    pub url: String,
    pub depth: i32,
    pub leased_at: DateTime<Utc>,
    pub fetched_at: DateTime<Utc>,
    pub response_time_ms: u32,
    pub outcome: FetchOutcome,
    /// `Sitemap:` URLs of the host's robots.txt, sent with the result of the request that
    /// fetched the robots.txt.
    #[serde(default)]
    pub robots_sitemaps: Vec<String>,
}

/// An HTTP response, the reason none was received, or the reason none was requested.
///
/// On the wire it is an object whose `kind` field names the variant, beside the variant's
/// own fields. Deserialization is written by hand in [`outcome`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FetchOutcome {
    Response(PageResponse),
    Failed(FetchFailure),
    /// The URL may not be fetched; it is recorded with this reason and not tried again
    /// until the site is recrawled.
    Blocked {
        reason: BlockReason,
    },
    /// The URL may not be fetched now; the frontier offers it again after the delay.
    Deferred {
        reason: String,
        retry_after_secs: u32,
    },
}

/// The prefix of the reason stored for a URL deferred by an unreadable robots.txt, by which
/// the admin finds such URLs.
pub const ROBOTS_UNAVAILABLE_REASON: &str = "robots.txt unavailable";

/// Why a URL was not fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockReason {
    /// robots.txt disallows it for our product token.
    RobotsTxt,
    /// Its host resolves to a loopback, private or otherwise non-public address.
    PrivateAddress,
}

impl BlockReason {
    pub fn as_str(self) -> &'static str {
        match self {
            BlockReason::RobotsTxt => "robots_txt",
            BlockReason::PrivateAddress => "private_address",
        }
    }
}

/// What an HTTP response told us about a page.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PageResponse {
    pub status: u16,
    pub content_type: Option<String>,
    /// Body size in bytes as received, after content decoding.
    pub body_bytes: u64,
    /// The absolute target of a 3xx `Location` header, when it resolves to http(s).
    pub redirect_to: Option<String>,
    pub facts: PageFacts,
    pub links: Vec<Link>,
    /// Links beyond the per-page maximum or the URL length limit, counted but not listed.
    pub links_dropped: u32,
    /// Response headers, names in lowercase, as received.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// Seconds the server asked us to wait (`Retry-After` of a 429 or 503).
    #[serde(default)]
    pub retry_after_secs: Option<u32>,
    /// The entries of a sitemap, for a URL of kind sitemap.
    #[serde(default)]
    pub sitemap: Option<SitemapEntries>,
}

/// The URLs a sitemap lists.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SitemapEntries {
    pub pages: Vec<String>,
    pub sitemaps: Vec<String>,
    /// Why the sitemap could not be read, when it could not.
    pub error: Option<String>,
}

/// The SEO facts found in a page's HTML head and body.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PageFacts {
    pub title: Option<String>,
    pub h1: Option<String>,
    pub meta_description: Option<String>,
    /// The canonical URL, resolved to an absolute URL.
    pub canonical: Option<String>,
    /// `noindex` from `<meta name="robots">`, `googlebot` or our product token, or from
    /// the `X-Robots-Tag` header.
    pub noindex: bool,
    /// Page-wide `nofollow` from the same meta tags or the `X-Robots-Tag` header.
    pub nofollow: bool,
    /// Number of `<h1>` elements.
    #[serde(default)]
    pub h1_count: u32,
    /// The target of `<meta http-equiv="refresh">`, absolute.
    #[serde(default)]
    pub meta_refresh: Option<String>,
    /// `<link rel="alternate" hreflang>` entries.
    #[serde(default)]
    pub hreflang: Vec<Hreflang>,
    /// `<img>` elements without an `alt` attribute.
    #[serde(default)]
    pub images_missing_alt: u32,
    /// Resources loaded over http on an https page.
    #[serde(default)]
    pub insecure_resources: u32,
}

/// One alternate language version of a page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hreflang {
    pub lang: String,
    pub url: String,
}

/// One `<a href>` element whose target resolves to an http(s) URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    /// The `href` attribute exactly as written.
    pub href: String,
    /// The absolute target, normalized, without fragment.
    pub url: String,
    pub anchor_text: String,
    /// `rel="nofollow"` on the element itself; page-wide nofollow is in [`PageFacts`].
    pub nofollow: bool,
    /// `rel="ugc"`: user-generated content.
    pub ugc: bool,
    /// `rel="sponsored"`: a paid link.
    pub sponsored: bool,
}

/// Why no response was received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FetchFailure {
    pub error_kind: FetchErrorKind,
    pub message: String,
}

/// The cause of a failed fetch, stable for storage and metrics labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FetchErrorKind {
    Dns,
    Connect,
    Tls,
    Timeout,
    BodyTooLarge,
    InvalidResponse,
    InvalidUrl,
    /// The host resolves only to addresses the scraper may not connect to.
    BlockedAddress,
}

impl FetchErrorKind {
    pub const ALL: [FetchErrorKind; 8] = [
        FetchErrorKind::Dns,
        FetchErrorKind::Connect,
        FetchErrorKind::Tls,
        FetchErrorKind::Timeout,
        FetchErrorKind::BodyTooLarge,
        FetchErrorKind::InvalidResponse,
        FetchErrorKind::InvalidUrl,
        FetchErrorKind::BlockedAddress,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FetchErrorKind::Dns => "dns",
            FetchErrorKind::Connect => "connect",
            FetchErrorKind::Tls => "tls",
            FetchErrorKind::Timeout => "timeout",
            FetchErrorKind::BodyTooLarge => "body_too_large",
            FetchErrorKind::InvalidResponse => "invalid_response",
            FetchErrorKind::InvalidUrl => "invalid_url",
            FetchErrorKind::BlockedAddress => "blocked_address",
        }
    }
}

/// Why a Kafka payload could not be turned into a message.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("payload is empty")]
    Empty,
    #[error("payload is {size} bytes, over the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("payload is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Valid JSON whose fields do not match the message type: one is missing or has the
    /// wrong type.
    #[error("payload does not match the message schema: {0}")]
    Fields(serde_json::Error),
    #[error("schema_version {found} is not supported (this build reads {SCHEMA_VERSION})")]
    UnsupportedVersion { found: u64 },
    #[error("schema_version is missing")]
    MissingVersion,
}

impl DecodeError {
    /// Every value of [`DecodeError::code`].
    pub const CODES: [&'static str; 6] =
        ["empty", "too_large", "invalid_json", "invalid_fields", "unsupported_version", "missing_version"];

    /// A short stable label for metrics and dead-letter headers.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::Empty => "empty",
            DecodeError::TooLarge { .. } => "too_large",
            DecodeError::Json(_) => "invalid_json",
            DecodeError::Fields(_) => "invalid_fields",
            DecodeError::UnsupportedVersion { .. } => "unsupported_version",
            DecodeError::MissingVersion => "missing_version",
        }
    }
}

/// A message that carries the schema version it was written with.
pub trait Versioned: serde::de::DeserializeOwned {
    fn schema_version(&self) -> u32;
}

impl Versioned for CrawlRequest {
    fn schema_version(&self) -> u32 {
        self.schema_version
    }
}

impl Versioned for CrawlResult {
    fn schema_version(&self) -> u32 {
        self.schema_version
    }
}

/// Decode a message after checking the size limit. A message of another schema version
/// is reported as such, even when its fields do not match this build's, so that a
/// message from a newer producer is not mistaken for a malformed one.
pub fn decode<T: Versioned>(payload: Option<&[u8]>, max_bytes: usize) -> Result<T, DecodeError> {
    let bytes = payload.filter(|b| !b.is_empty()).ok_or(DecodeError::Empty)?;
    if bytes.len() > max_bytes {
        return Err(DecodeError::TooLarge { size: bytes.len(), limit: max_bytes });
    }

    // One parse on the path every valid message takes; the version is read on its own
    // only to explain a failure.
    let fields_error = match serde_json::from_slice::<T>(bytes) {
        Ok(message) if message.schema_version() == SCHEMA_VERSION => return Ok(message),
        Ok(message) => return Err(DecodeError::UnsupportedVersion { found: message.schema_version().into() }),
        Err(error) => error,
    };

    #[derive(Deserialize)]
    struct VersionOnly {
        schema_version: Option<u64>,
    }
    let version: VersionOnly = serde_json::from_slice(bytes)?;
    match version.schema_version {
        None => Err(DecodeError::MissingVersion),
        Some(found) if found != u64::from(SCHEMA_VERSION) => Err(DecodeError::UnsupportedVersion { found }),
        Some(_) => Err(DecodeError::Fields(fields_error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> CrawlRequest {
        CrawlRequest {
            schema_version: SCHEMA_VERSION,
            url_id: 7,
            site_id: 1,
            url: "http://example.com/".into(),
            depth: 0,
            kind: UrlKind::Page,
            leased_at: Utc::now(),
        }
    }

    #[test]
    fn request_round_trips() {
        let original = request();
        let bytes = serde_json::to_vec(&original).unwrap();
        let decoded: CrawlRequest = decode(Some(&bytes), 1 << 20).unwrap();
        assert_eq!(decoded, original);
    }

    #[test]
    fn decode_rejects_other_version() {
        let mut value = serde_json::to_value(request()).unwrap();
        value["schema_version"] = 99.into();
        let bytes = serde_json::to_vec(&value).unwrap();
        let err = decode::<CrawlRequest>(Some(&bytes), 1 << 20).unwrap_err();
        assert_eq!(err.code(), "unsupported_version");
    }

    #[test]
    fn decode_rejects_missing_field() {
        let err = decode::<CrawlRequest>(Some(br#"{"schema_version":1}"#), 1 << 20).unwrap_err();
        assert_eq!(err.code(), "invalid_fields");
        assert!(err.to_string().contains("missing field"), "{err}");
    }

    #[test]
    fn decode_rejects_oversized_and_empty() {
        let bytes = serde_json::to_vec(&request()).unwrap();
        let err = decode::<CrawlRequest>(Some(&bytes), 10).unwrap_err();
        assert_eq!(err.code(), "too_large");
        let err = decode::<CrawlRequest>(None, 10).unwrap_err();
        assert_eq!(err.code(), "empty");
    }

    #[test]
    fn decode_rejects_garbage() {
        let err = decode::<CrawlRequest>(Some(b"\xff not json"), 1 << 20).unwrap_err();
        assert_eq!(err.code(), "invalid_json");
    }
}
