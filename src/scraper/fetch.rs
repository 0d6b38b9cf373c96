//! FetchWorker: checks robots.txt and politeness, fetches a URL, extracts the page and
//! hands the result to the ResultSink, acknowledging the request only once the result is
//! on Kafka.

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use awc::error::{ConnectError, PayloadError, SendRequestError};
use awc::http::header;
use chrono::Utc;
use url::Url;

use super::parse_gate::ParseGate;
use super::politeness::{Politeness, PolitenessSettings};
use super::resolve::{AddressRefused, CrawlResolver};
use super::robots::{RobotsCache, RobotsPolicy};
use crate::config::ScraperSettings;
use crate::extract::{charset, directives::RobotsDirectives, sitemap, Extractor};
use crate::kafka::{Delivery, Publish, PublishError, ResultSink};
use crate::messages::{
    BlockReason, CrawlRequest, CrawlResult, FetchErrorKind, FetchFailure, FetchOutcome, PageResponse, SitemapEntries,
    UrlKind, ROBOTS_UNAVAILABLE_REASON, SCHEMA_VERSION,
};
use crate::metrics::{ActorMessages, ActorName, ActorWorkDone, FetchFailed, FetchStarted, PageFetched};

/// Most links kept from one page; the rest are counted in `links_dropped`, which keeps a
/// result well under the Kafka message limit even for link farms.
const MAX_LINKS_PER_PAGE: usize = 20_000;

/// Most response headers kept per page, and the longest value kept.
const MAX_HEADERS: usize = 64;
const MAX_HEADER_VALUE_BYTES: usize = 1024;

/// The wait after a 429 or 503 that names none.
const DEFAULT_RETRY_AFTER_SECS: u32 = 60;

/// The limits and policies every fetch of one scraper obeys.
#[derive(Debug, Clone)]
pub struct FetchSettings {
    pub user_agent: String,
    pub connect_timeout: Duration,
    pub total_timeout: Duration,
    pub max_body_bytes: usize,
    pub max_message_bytes: usize,
    pub robots_token: String,
    pub respect_robots: bool,
    pub robots_cache: Duration,
    pub robots_retry_secs: u32,
    pub politeness: PolitenessSettings,
    pub url_policy: crate::url::UrlPolicy,
    /// The bound on parses running at once, shared by every worker of the process.
    pub parse_gate: ParseGate,
}

impl FetchSettings {
    pub fn from_settings(settings: &ScraperSettings) -> Self {
        let politeness = &settings.politeness;
        Self {
            user_agent: settings.user_agent.clone(),
            connect_timeout: Duration::from_secs(settings.connect_timeout_seconds),
            total_timeout: Duration::from_secs(settings.fetch_timeout_seconds),
            max_body_bytes: settings.max_body_bytes as usize,
            max_message_bytes: settings.kafka.max_message_bytes as usize,
            robots_token: politeness.robots_token.clone(),
            respect_robots: politeness.respect_robots,
            robots_cache: Duration::from_secs(politeness.robots_cache_seconds),
            robots_retry_secs: politeness.robots_retry_seconds,
            politeness: PolitenessSettings {
                max_in_flight: politeness.host_concurrency as usize,
                min_delay: Duration::from_millis(politeness.crawl_delay_ms),
                max_delay: Duration::from_secs(politeness.max_crawl_delay_seconds),
            },
            url_policy: settings.urls.policy(),
            parse_gate: ParseGate::new(settings.worker_threads()),
        }
    }
}

/// Fetches URLs on its own thread, with its own HTTP connection pool, robots.txt cache
/// and per-host gates.
pub struct FetchWorker {
    state: Rc<WorkerState>,
    sink: Addr<ResultSink>,
    topic_res: String,
}

/// What the fetches of one worker share.
struct WorkerState {
    client: awc::Client,
    /// Shared with the blocking threads that parse bodies.
    extractor: Arc<Extractor>,
    robots: RobotsCache,
    politeness: Politeness,
    settings: FetchSettings,
}

impl FetchWorker {
    /// Build a worker; it must be called on the thread the worker will run on, because
    /// the HTTP client is bound to its thread.
    pub fn new(settings: FetchSettings, resolver: CrawlResolver, sink: Addr<ResultSink>, topic_res: String) -> Self {
        let allow_private = resolver.allows_private();
        let tcp = actix_tls::connect::Connector::new(actix_tls::connect::Resolver::custom(resolver)).service();
        let tcp = super::resolve::GuardedConnector::new(tcp, allow_private);
        let connector = awc::Connector::new().connector(tcp).timeout(settings.connect_timeout);
        let client = awc::Client::builder()
            .connector(connector)
            .timeout(settings.total_timeout)
            .disable_redirects()
            .add_default_header((header::USER_AGENT, settings.user_agent.clone()))
            .finish();
        let state = WorkerState {
            client,
            extractor: Arc::new(Extractor::with_policy(settings.url_policy.clone(), &settings.robots_token)),
            robots: RobotsCache::new(
                &settings.robots_token,
                settings.robots_cache,
                Duration::from_secs(u64::from(settings.robots_retry_secs)),
            ),
            politeness: Politeness::new(settings.politeness.clone()),
            settings,
        };
        Self { state: Rc::new(state), sink, topic_res }
    }
}

impl Actor for FetchWorker {
    type Context = Context<Self>;
}

impl Handler<Delivery<CrawlRequest>> for FetchWorker {
    type Result = ();

    fn handle(&mut self, delivery: Delivery<CrawlRequest>, _ctx: &mut Self::Context) {
        let state = self.state.clone();
        let sink = self.sink.clone();
        let topic = self.topic_res.clone();

        ActorMessages { actor: ActorName::FetchWorker, direction: "in", count: 1 }.emit();
        actix::spawn(async move {
            let Delivery { message: request, key, ack } = delivery;
            let started = Instant::now();
            let result = state.crawl(&request).await;
            ActorWorkDone { actor: ActorName::FetchWorker, elapsed: started.elapsed() }.emit();

            let mut result = result;
            drop_long_urls(&mut result, state.settings.url_policy.max_url_bytes);
            let payload = encode_within_limit(&result, state.settings.max_message_bytes);
            match sink.send(Publish { topic, key, payload }).await {
                Ok(Ok(())) => {
                    ActorMessages { actor: ActorName::FetchWorker, direction: "out", count: 1 }.emit();
                    ack.done();
                }
                Ok(Err(PublishError::ShuttingDown)) => {
                    log::debug!("result of {} not published before shutdown; it will be fetched again", request.url)
                }
                Ok(Err(error)) => log::error!(
                    "result of {} was rejected by the broker and is lost until its lease expires: {error}",
                    request.url
                ),
                Err(error) => log::error!("ResultSink is gone; result of {} not published: {error}", request.url),
            }
        });
    }
}

impl WorkerState {
    /// Decide whether the URL may be fetched, wait for its host's turn, and fetch it.
    async fn crawl(&self, request: &CrawlRequest) -> CrawlResult {
        let fetched_at = Utc::now();
        let started = Instant::now();
        let mut robots_sitemaps = Vec::new();

        let outcome = match Url::parse(&request.url) {
            Err(e) => FetchOutcome::Failed(FetchFailure {
                error_kind: FetchErrorKind::InvalidUrl,
                message: format!("'{}' is not a valid URL: {e}", request.url),
            }),
            Ok(url) => {
                let policy = if self.settings.respect_robots {
                    let lookup = self.robots.lookup(&self.client, &url).await;
                    if lookup.fresh {
                        robots_sitemaps = lookup.policy.sitemaps().to_vec();
                    }
                    Some(lookup.policy)
                } else {
                    None
                };
                self.outcome(request, &url, policy.as_deref()).await
            }
        };

        CrawlResult {
            schema_version: SCHEMA_VERSION,
            url_id: request.url_id,
            site_id: request.site_id,
            url: request.url.clone(),
            depth: request.depth,
            leased_at: request.leased_at,
            fetched_at,
            response_time_ms: u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX),
            outcome,
            robots_sitemaps,
        }
    }

    async fn outcome(&self, request: &CrawlRequest, url: &Url, robots: Option<&RobotsPolicy>) -> FetchOutcome {
        match robots {
            Some(RobotsPolicy::Unavailable(reason)) => {
                return FetchOutcome::Deferred {
                    reason: format!("{ROBOTS_UNAVAILABLE_REASON}: {reason}"),
                    retry_after_secs: self.settings.robots_retry_secs,
                }
            }
            Some(policy) if !policy.allows(url.as_str()) => {
                return FetchOutcome::Blocked { reason: BlockReason::RobotsTxt }
            }
            _ => {}
        }

        let host = crate::url::site_host(url);
        let _turn = self.politeness.acquire(&host, robots.and_then(RobotsPolicy::crawl_delay)).await;
        let _in_flight = FetchStarted::emit();
        let started = Instant::now();
        // The time limit covers the network only: parsing runs on other threads and takes
        // as long as the body, which MAX_BODY_BYTES bounds, needs.
        let downloaded = tokio::time::timeout(self.settings.total_timeout, self.download(url, request.kind)).await;
        let fetched = match downloaded {
            Ok(Ok((page, body))) => self.read_body(url, request.kind, page, body).await,
            Ok(Err(failure)) => Err(failure),
            Err(_) => Err(FetchFailure {
                error_kind: FetchErrorKind::Timeout,
                message: format!("no complete response within {:?}", self.settings.total_timeout),
            }),
        };

        match fetched {
            Ok(response) => {
                if let Some(pause) = response.retry_after_secs {
                    self.politeness.back_off(&host, Duration::from_secs(u64::from(pause)));
                }
                PageFetched {
                    url: url.as_str(),
                    status: response.status,
                    elapsed: started.elapsed(),
                    body_bytes: response.body_bytes,
                    links: response.links.len(),
                }
                .emit();
                FetchOutcome::Response(response)
            }
            Err(failure) => {
                FetchFailed {
                    url: url.as_str(),
                    kind: failure.error_kind,
                    message: &failure.message,
                    elapsed: started.elapsed(),
                }
                .emit();
                if failure.error_kind == FetchErrorKind::BlockedAddress {
                    FetchOutcome::Blocked { reason: BlockReason::PrivateAddress }
                } else {
                    FetchOutcome::Failed(failure)
                }
            }
        }
    }

    /// Send the request and read the response head and body, up to the body limit.
    async fn download(
        &self,
        page_url: &Url,
        kind: UrlKind,
    ) -> Result<(PageResponse, actix_web::web::Bytes), FetchFailure> {
        let mut response = send_get(&self.client, page_url.as_str()).await.map_err(send_failure)?;
        let status = response.status().as_u16();
        let headers = keep_headers(response.headers());
        let header_value = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        let content_type = header_value("content-type");
        // The kept copy of a header is cut at MAX_HEADER_VALUE_BYTES, so a long Location
        // would turn into another URL; the whole value is read instead.
        let location = response
            .headers()
            .get(header::LOCATION)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());

        let limit = match kind {
            UrlKind::Page => self.settings.max_body_bytes,
            UrlKind::Sitemap => sitemap::MAX_SITEMAP_BYTES as usize,
        };
        let body = response.body().limit(limit).await.map_err(|e| body_failure(e, limit))?;

        let mut page = PageResponse {
            status,
            content_type: content_type.clone(),
            body_bytes: body.len() as u64,
            ..PageResponse::default()
        };
        if (300..400).contains(&status) {
            page.redirect_to = location.and_then(|l| self.settings.url_policy.resolve(page_url, &l)).map(String::from);
        }
        if status == 429 || status == 503 {
            page.retry_after_secs = Some(
                header_value("retry-after").as_deref().and_then(parse_retry_after).unwrap_or(DEFAULT_RETRY_AFTER_SECS),
            );
        }
        let header_directives = RobotsDirectives::parse_header(
            headers.iter().filter(|(n, _)| n == "x-robots-tag").map(|(_, v)| v.as_str()),
            &self.settings.robots_token,
        );
        page.facts.noindex = header_directives.noindex;
        page.facts.nofollow = header_directives.nofollow;
        page.headers = headers;
        Ok((page, body))
    }

    /// Parse a 2xx body as a sitemap or an HTML page, as the URL's kind and type say.
    async fn read_body(
        &self,
        page_url: &Url,
        kind: UrlKind,
        mut page: PageResponse,
        body: actix_web::web::Bytes,
    ) -> Result<PageResponse, FetchFailure> {
        if !(200..300).contains(&page.status) {
            return Ok(page);
        }
        let content_type = page.content_type.clone();
        match kind {
            UrlKind::Sitemap => {
                let sitemap = self.settings.parse_gate.run(body.len(), move || read_sitemap(&body)).await?;
                page.sitemap = Some(sitemap);
            }
            UrlKind::Page if is_html(content_type.as_deref(), &body) => {
                let (extractor, url, content_type) = (self.extractor.clone(), page_url.clone(), content_type.clone());
                let extracted = self
                    .settings
                    .parse_gate
                    .run(body.len(), move || {
                        let (html, _encoding) = charset::decode_html(&body, content_type.as_deref());
                        extractor.extract(&url, &html)
                    })
                    .await?;
                self.read_html(extracted, &mut page);
            }
            UrlKind::Page => {}
        }
        Ok(page)
    }

    fn read_html(&self, extracted: crate::extract::Extracted, page: &mut PageResponse) {
        let (noindex, nofollow) = (page.facts.noindex, page.facts.nofollow);
        page.facts = extracted.facts;
        page.facts.noindex |= noindex;
        page.facts.nofollow |= nofollow;
        page.links = extracted.links;
        page.links_dropped = extracted.long_urls_dropped;
        if page.links.len() > MAX_LINKS_PER_PAGE {
            page.links_dropped += (page.links.len() - MAX_LINKS_PER_PAGE) as u32;
            page.links.truncate(MAX_LINKS_PER_PAGE);
        }
        if page.redirect_to.is_none() {
            page.redirect_to = page.facts.meta_refresh.clone();
        }
    }
}

/// Remove the URLs longer than `max_bytes` that a result names outside its links, which the
/// extractor already cuts: redirect, canonical, meta refresh and hreflang targets, and
/// sitemap entries. The admin's unique index on `urls.url` cannot hold a URL of 100 KB, so
/// one such URL would make the database reject the whole result.
fn drop_long_urls(result: &mut CrawlResult, max_bytes: usize) {
    let fits = |url: &String| url.len() <= max_bytes;
    result.robots_sitemaps.retain(fits);
    let FetchOutcome::Response(response) = &mut result.outcome else { return };
    response.redirect_to = response.redirect_to.take().filter(fits);
    response.facts.canonical = response.facts.canonical.take().filter(fits);
    response.facts.meta_refresh = response.facts.meta_refresh.take().filter(fits);
    response.facts.hreflang.retain(|alternate| fits(&alternate.url));
    if let Some(sitemap) = &mut response.sitemap {
        sitemap.pages.retain(fits);
        sitemap.sitemaps.retain(fits);
    }
}

/// Send a GET, trying once more when a pooled keep-alive connection turns out to have been
/// closed by the server before it answered, as browsers do for idempotent requests.
pub(super) async fn send_get(
    client: &awc::Client,
    url: &str,
) -> <awc::SendClientRequest as std::future::Future>::Output {
    match client.get(url).send().await {
        Err(SendRequestError::Connect(ConnectError::Disconnected)) => client.get(url).send().await,
        other => other,
    }
}

fn read_sitemap(body: &[u8]) -> SitemapEntries {
    match sitemap::parse(body) {
        Ok(parsed) => SitemapEntries {
            pages: parsed.pages,
            sitemaps: parsed.sitemaps,
            error: (parsed.truncated > 0).then(|| {
                format!("{} entries past the {}-URL limit were ignored", parsed.truncated, sitemap::MAX_SITEMAP_URLS)
            }),
        },
        Err(error) => SitemapEntries { error: Some(error.to_string()), ..SitemapEntries::default() },
    }
}

/// Keep a bounded copy of the response headers, names in lowercase.
fn keep_headers(headers: &awc::http::header::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .take(MAX_HEADERS)
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes());
            let value = match value.char_indices().nth(MAX_HEADER_VALUE_BYTES) {
                Some((cut, _)) => value[..cut].to_string(),
                None => value.into_owned(),
            };
            (name.as_str().to_string(), value)
        })
        .collect()
}

/// `Retry-After` as seconds or an HTTP date.
fn parse_retry_after(value: &str) -> Option<u32> {
    if let Ok(seconds) = value.trim().parse::<u32>() {
        return Some(seconds);
    }
    let date = chrono::DateTime::parse_from_rfc2822(value.trim()).ok()?;
    let seconds = (date.with_timezone(&Utc) - Utc::now()).num_seconds().max(0);
    u32::try_from(seconds).ok()
}

/// Whether a body should be parsed as HTML: by its declared type, or by its first bytes
/// when the server sent no type at all.
fn is_html(content_type: Option<&str>, body: &[u8]) -> bool {
    match content_type {
        Some(value) => {
            let mime = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
            mime == "text/html" || mime == "application/xhtml+xml"
        }
        None => {
            let start = String::from_utf8_lossy(&body[..body.len().min(256)]).trim_start().to_ascii_lowercase();
            start.starts_with("<!doctype html") || start.starts_with("<html")
        }
    }
}

fn send_failure(error: SendRequestError) -> FetchFailure {
    let error_kind = match &error {
        SendRequestError::Url(_) => FetchErrorKind::InvalidUrl,
        SendRequestError::Connect(ConnectError::Resolver(cause))
            if cause.downcast_ref::<AddressRefused>().is_some() =>
        {
            FetchErrorKind::BlockedAddress
        }
        SendRequestError::Connect(ConnectError::Resolver(_) | ConnectError::NoRecords | ConnectError::Unresolved) => {
            FetchErrorKind::Dns
        }
        SendRequestError::Connect(ConnectError::Timeout) | SendRequestError::Timeout => FetchErrorKind::Timeout,
        SendRequestError::Connect(ConnectError::SslIsNotSupported) => FetchErrorKind::Tls,
        SendRequestError::Connect(ConnectError::Io(io)) if is_tls_error(io) => FetchErrorKind::Tls,
        SendRequestError::Connect(_) | SendRequestError::Send(_) => FetchErrorKind::Connect,
        _ => FetchErrorKind::InvalidResponse,
    };
    FetchFailure { error_kind, message: error.to_string() }
}

/// rustls reports handshake failures as I/O errors of kind InvalidData.
fn is_tls_error(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::InvalidData
}

fn body_failure(error: PayloadError, limit: usize) -> FetchFailure {
    match error {
        PayloadError::Overflow => FetchFailure {
            error_kind: FetchErrorKind::BodyTooLarge,
            message: format!("body is larger than {limit} bytes"),
        },
        other => FetchFailure {
            error_kind: FetchErrorKind::InvalidResponse,
            message: format!("reading the body failed: {other}"),
        },
    }
}

/// Serialize a result, replacing it by a failure when it would exceed the message limit,
/// so that the URL is recorded instead of being lost.
fn encode_within_limit(result: &CrawlResult, max_bytes: usize) -> Vec<u8> {
    let encoded = serde_json::to_vec(result);
    match encoded {
        Ok(bytes) if bytes.len() <= max_bytes => bytes,
        Ok(bytes) => encode_failure(
            result,
            format!("the result is {} bytes, over the {max_bytes}-byte message limit", bytes.len()),
        ),
        Err(e) => encode_failure(result, format!("the result could not be serialized: {e}")),
    }
}

fn encode_failure(result: &CrawlResult, message: String) -> Vec<u8> {
    let replacement = CrawlResult {
        outcome: FetchOutcome::Failed(FetchFailure { error_kind: FetchErrorKind::InvalidResponse, message }),
        ..result.clone()
    };
    // A failure with a short message always serializes: every field is a plain value.
    serde_json::to_vec(&replacement).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_detection() {
        assert!(is_html(Some("text/html; charset=utf-8"), b""));
        assert!(is_html(Some("Application/XHTML+XML"), b""));
        assert!(!is_html(Some("image/png"), b"<html>"));
        assert!(is_html(None, b"  <!DOCTYPE html><p>"));
        assert!(!is_html(None, b"%PDF-1.4"));
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("120"), Some(120));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(0));
        assert_eq!(parse_retry_after("soon"), None);
    }
}
