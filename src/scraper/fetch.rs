//! FetchWorker: fetches one URL at a time per request, extracts the page and hands the
//! result to the ResultSink, acknowledging the request only once the result is on Kafka.

use std::rc::Rc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use awc::error::{ConnectError, PayloadError, SendRequestError};
use awc::http::header;
use chrono::Utc;
use url::Url;

use crate::config::ScraperSettings;
use crate::extract::Extractor;
use crate::kafka::{Delivery, Publish, PublishError, ResultSink};
use crate::messages::{
    CrawlRequest, CrawlResult, FetchErrorKind, FetchFailure, FetchOutcome, PageResponse,
    SCHEMA_VERSION,
};
use crate::metrics::{
    ActorMessages, ActorName, ActorWorkDone, FetchFailed, FetchStarted, PageFetched,
};

/// Most links kept from one page; the rest are counted in `links_dropped`, which keeps a
/// result well under the Kafka message limit even for link farms.
const MAX_LINKS_PER_PAGE: usize = 20_000;

/// The limits every fetch obeys.
#[derive(Debug, Clone)]
pub struct FetchLimits {
    pub connect_timeout: Duration,
    pub total_timeout: Duration,
    pub max_body_bytes: usize,
    pub max_message_bytes: usize,
}

impl FetchLimits {
    pub fn from_settings(settings: &ScraperSettings) -> Self {
        Self {
            connect_timeout: Duration::from_secs(settings.connect_timeout_seconds),
            total_timeout: Duration::from_secs(settings.fetch_timeout_seconds),
            max_body_bytes: settings.max_body_bytes as usize,
            max_message_bytes: settings.kafka.max_message_bytes as usize,
        }
    }
}

/// Fetches URLs on its own thread, with its own HTTP connection pool.
pub struct FetchWorker {
    client: awc::Client,
    extractor: Rc<Extractor>,
    sink: Addr<ResultSink>,
    topic_res: String,
    limits: FetchLimits,
}

impl FetchWorker {
    /// Build a worker; it must be called on the thread the worker will run on, because
    /// the HTTP client is bound to its thread.
    pub fn new(
        user_agent: &str,
        limits: FetchLimits,
        sink: Addr<ResultSink>,
        topic_res: String,
    ) -> Self {
        let connector = awc::Connector::new().timeout(limits.connect_timeout);
        let client = awc::Client::builder()
            .connector(connector)
            .timeout(limits.total_timeout)
            .disable_redirects()
            .add_default_header((header::USER_AGENT, user_agent.to_string()))
            .finish();
        Self {
            client,
            extractor: Rc::new(Extractor::new()),
            sink,
            topic_res,
            limits,
        }
    }
}

impl Actor for FetchWorker {
    type Context = Context<Self>;
}

impl Handler<Delivery<CrawlRequest>> for FetchWorker {
    type Result = ();

    fn handle(&mut self, delivery: Delivery<CrawlRequest>, _ctx: &mut Self::Context) {
        let client = self.client.clone();
        let extractor = self.extractor.clone();
        let sink = self.sink.clone();
        let topic = self.topic_res.clone();
        let limits = self.limits.clone();

        ActorMessages {
            actor: ActorName::FetchWorker,
            direction: "in",
            count: 1,
        }
        .emit();
        actix::spawn(async move {
            let Delivery {
                message: request,
                key,
                ack,
            } = delivery;
            let started = Instant::now();
            let result = fetch(&client, &extractor, &limits, &request).await;
            ActorWorkDone {
                actor: ActorName::FetchWorker,
                elapsed: started.elapsed(),
            }
            .emit();

            let payload = encode_within_limit(&result, limits.max_message_bytes);
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

/// Fetch one URL and describe what happened; every failure becomes a result too.
pub async fn fetch(
    client: &awc::Client,
    extractor: &Extractor,
    limits: &FetchLimits,
    request: &CrawlRequest,
) -> CrawlResult {
    let _in_flight = FetchStarted::emit();
    let fetched_at = Utc::now();
    let started = Instant::now();

    let outcome = match tokio::time::timeout(
        limits.total_timeout,
        fetch_response(client, extractor, limits, &request.url),
    )
    .await
    {
        Ok(Ok(response)) => {
            PageFetched {
                url: &request.url,
                status: response.status,
                elapsed: started.elapsed(),
                body_bytes: response.body_bytes,
                links: response.links.len(),
            }
            .emit();
            FetchOutcome::Response(response)
        }
        Ok(Err(failure)) => failed(request, failure, started),
        Err(_) => failed(
            request,
            FetchFailure {
                error_kind: FetchErrorKind::Timeout,
                message: format!("no complete response within {:?}", limits.total_timeout),
            },
            started,
        ),
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
    }
}

fn failed(request: &CrawlRequest, failure: FetchFailure, started: Instant) -> FetchOutcome {
    FetchFailed {
        url: &request.url,
        kind: failure.error_kind,
        message: &failure.message,
        elapsed: started.elapsed(),
    }
    .emit();
    FetchOutcome::Failed(failure)
}

async fn fetch_response(
    client: &awc::Client,
    extractor: &Extractor,
    limits: &FetchLimits,
    url: &str,
) -> Result<PageResponse, FetchFailure> {
    let page_url = Url::parse(url).map_err(|e| FetchFailure {
        error_kind: FetchErrorKind::InvalidUrl,
        message: format!("'{url}' is not a valid URL: {e}"),
    })?;

    let mut response = client
        .get(page_url.as_str())
        .send()
        .await
        .map_err(send_failure)?;
    let status = response.status().as_u16();
    let header_text = |name: header::HeaderName| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = header_text(header::CONTENT_TYPE);
    let location = header_text(header::LOCATION);

    let body = response
        .body()
        .limit(limits.max_body_bytes)
        .await
        .map_err(|e| body_failure(e, limits))?;

    let mut page = PageResponse {
        status,
        content_type: content_type.clone(),
        body_bytes: body.len() as u64,
        ..PageResponse::default()
    };
    if (300..400).contains(&status) {
        page.redirect_to = location
            .and_then(|l| crate::url::resolve(&page_url, &l))
            .map(String::from);
    }
    if (200..300).contains(&status) && is_html(content_type.as_deref(), &body) {
        let html = String::from_utf8_lossy(&body);
        let extracted = extractor.extract(&page_url, &html);
        page.facts = extracted.facts;
        page.links = extracted.links;
        if page.links.len() > MAX_LINKS_PER_PAGE {
            page.links_dropped = (page.links.len() - MAX_LINKS_PER_PAGE) as u32;
            page.links.truncate(MAX_LINKS_PER_PAGE);
        }
    }
    Ok(page)
}

/// Whether a body should be parsed as HTML: by its declared type, or by its first bytes
/// when the server sent no type at all.
fn is_html(content_type: Option<&str>, body: &[u8]) -> bool {
    match content_type {
        Some(value) => {
            let mime = value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            mime == "text/html" || mime == "application/xhtml+xml"
        }
        None => {
            let start = String::from_utf8_lossy(&body[..body.len().min(256)])
                .trim_start()
                .to_ascii_lowercase();
            start.starts_with("<!doctype html") || start.starts_with("<html")
        }
    }
}

fn send_failure(error: SendRequestError) -> FetchFailure {
    let error_kind = match &error {
        SendRequestError::Url(_) => FetchErrorKind::InvalidUrl,
        SendRequestError::Connect(
            ConnectError::Resolver(_) | ConnectError::NoRecords | ConnectError::Unresolved,
        ) => FetchErrorKind::Dns,
        SendRequestError::Connect(ConnectError::Timeout) | SendRequestError::Timeout => {
            FetchErrorKind::Timeout
        }
        SendRequestError::Connect(ConnectError::SslIsNotSupported) => FetchErrorKind::Tls,
        SendRequestError::Connect(ConnectError::Io(io)) if is_tls_error(io) => FetchErrorKind::Tls,
        SendRequestError::Connect(_) | SendRequestError::Send(_) => FetchErrorKind::Connect,
        _ => FetchErrorKind::InvalidResponse,
    };
    FetchFailure {
        error_kind,
        message: error.to_string(),
    }
}

/// rustls reports handshake failures as I/O errors of kind InvalidData.
fn is_tls_error(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::InvalidData
}

fn body_failure(error: PayloadError, limits: &FetchLimits) -> FetchFailure {
    match error {
        PayloadError::Overflow => FetchFailure {
            error_kind: FetchErrorKind::BodyTooLarge,
            message: format!("body is larger than {} bytes", limits.max_body_bytes),
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
            format!(
                "the result is {} bytes, over the {max_bytes}-byte message limit",
                bytes.len()
            ),
        ),
        Err(e) => encode_failure(result, format!("the result could not be serialized: {e}")),
    }
}

fn encode_failure(result: &CrawlResult, message: String) -> Vec<u8> {
    let replacement = CrawlResult {
        outcome: FetchOutcome::Failed(FetchFailure {
            error_kind: FetchErrorKind::InvalidResponse,
            message,
        }),
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
}
