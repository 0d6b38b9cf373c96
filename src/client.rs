//! The command-line client: talks to a running admin API over HTTP.

use std::io::{IsTerminal as _, Write as _};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Args;
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, Clone, Args)]
pub struct CrawlArgs {
    /// The seed URL; its host becomes the crawled site.
    pub url: String,

    /// Base URL of the admin API.
    #[arg(long, env = "OPEN_AHREFS_API", default_value = "http://127.0.0.1:8000")]
    pub api: String,

    /// Seconds between two progress reports.
    #[arg(long, default_value_t = 1.0)]
    pub interval: f64,

    /// Give up after this many seconds; 0 waits for ever.
    #[arg(long, default_value_t = 0)]
    pub timeout: u64,

    /// The admin's ADMIN_TOKEN, sent as a bearer token when the site is added.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Created {
    id: i64,
}

#[derive(Debug, Deserialize)]
struct Conflict {
    id: i64,
}

#[derive(Debug, Deserialize)]
struct Progress {
    host: String,
    state: String,
    urls_discovered: i64,
    urls_fetched: i64,
    responses: Responses,
    links: i64,
}

#[derive(Debug, Deserialize)]
struct Responses {
    #[serde(rename = "2xx")]
    ok: i64,
    #[serde(rename = "3xx")]
    redirect: i64,
    #[serde(rename = "4xx")]
    client_error: i64,
    #[serde(rename = "5xx")]
    server_error: i64,
    error: i64,
}

/// Add a site (or reuse the existing one for its host) and follow it until it is done.
pub async fn crawl(args: CrawlArgs) -> anyhow::Result<()> {
    if !(0.05..=3600.0).contains(&args.interval) {
        bail!("--interval must be between 0.05 and 3600 seconds, got {}", args.interval);
    }
    let api = args.api.trim_end_matches('/');
    let client = awc::Client::builder().timeout(Duration::from_secs(30)).finish();

    let mut request = client.post(format!("{api}/api/v1/sites"));
    if let Some(token) = &args.token {
        request = request.bearer_auth(token);
    }
    let mut response = request
        .send_json(&json!({ "url": args.url }))
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the admin API at {api}: {e}"))?;
    let body = response.body().await.context("reading the API response")?;
    let (site_id, existing) = match response.status().as_u16() {
        201 => (serde_json::from_slice::<Created>(&body).context("parsing the created site")?.id, false),
        409 => {
            let existing = serde_json::from_slice::<Conflict>(&body).context("parsing the conflict")?;
            println!("site already exists with id {}; following it", existing.id);
            (existing.id, true)
        }
        401 => bail!(
            "adding {} failed with HTTP 401: {}; pass the admin's token with --token or ADMIN_TOKEN",
            args.url,
            String::from_utf8_lossy(&body)
        ),
        status => bail!("adding {} failed with HTTP {status}: {}", args.url, String::from_utf8_lossy(&body)),
    };

    // On a terminal the progress line is redrawn in place; in a log, each report is a line.
    let line_end = if std::io::stdout().is_terminal() { "\r" } else { "\n" };
    let started = Instant::now();
    // The speed counts only the pages fetched while this command follows the site.
    let fetched_before = if existing { fetch_progress(&client, api, site_id).await?.urls_fetched } else { 0 };
    let mut last_fetched = fetched_before;
    let mut last_report = Instant::now();
    let mut last_progress = Instant::now();
    let mut waiting_reason = None;
    loop {
        tokio::time::sleep(Duration::from_secs_f64(args.interval)).await;
        let progress = fetch_progress(&client, api, site_id).await?;
        let rate = (progress.urls_fetched - last_fetched) as f64 / last_report.elapsed().as_secs_f64();
        if progress.urls_fetched != last_fetched {
            last_progress = Instant::now();
        }
        last_fetched = progress.urls_fetched;
        last_report = Instant::now();
        print!(
            "{line_end}[{}] {:>7.1}s  fetched {:>7}  frontier {:>7}  {:>8.1} pages/s  links {:>9}",
            progress_bar(progress.urls_fetched, progress.urls_discovered),
            started.elapsed().as_secs_f64(),
            progress.urls_fetched,
            progress.urls_discovered - progress.urls_fetched,
            rate,
            progress.links
        );
        std::io::stdout().flush().context("writing to stdout")?;

        if progress.state == "done" {
            println!();
            print_summary(site_id, &progress, progress.urls_fetched - fetched_before, started.elapsed());
            return Ok(());
        }
        // A crawl that makes no progress usually waits for a reason stored on its URLs,
        // such as an unavailable robots.txt, which the progress does not include.
        if last_progress.elapsed() >= STALL_BEFORE_REASON {
            let reason = pending_reason(api, site_id).await?;
            if reason.is_some() && reason != waiting_reason {
                println!("\nwaiting: {}", reason.as_deref().unwrap_or_default());
            }
            waiting_reason = reason;
        }
        if args.timeout > 0 && started.elapsed() > Duration::from_secs(args.timeout) {
            println!();
            bail!("site {site_id} is still crawling after {}s", args.timeout);
        }
    }
}

/// A 20-character bar of fetched over discovered URLs; the total grows as the crawl finds
/// more, so the bar can move back.
fn progress_bar(done: i64, total: i64) -> String {
    const WIDTH: i64 = 20;
    let filled = if total > 0 { (done * WIDTH / total).clamp(0, WIDTH) } else { 0 };
    format!("{}{}", "#".repeat(filled as usize), "-".repeat((WIDTH - filled) as usize))
}

async fn fetch_progress(client: &awc::Client, api: &str, site_id: i64) -> anyhow::Result<Progress> {
    let mut response = client
        .get(format!("{api}/api/v1/sites/{site_id}"))
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the admin API at {api}: {e}"))?;
    let body = response.body().await.context("reading the API response")?;
    if !response.status().is_success() {
        bail!("reading site {site_id} failed with HTTP {}: {}", response.status(), String::from_utf8_lossy(&body));
    }
    serde_json::from_slice(&body).context("parsing the site progress")
}

/// How long the crawl may make no progress before the client looks for the reason.
const STALL_BEFORE_REASON: Duration = Duration::from_secs(10);

/// Return the stored reason of the first pending URL of the site that has one, with its
/// URL.
async fn pending_reason(api: &str, site_id: i64) -> anyhow::Result<Option<String>> {
    let urls = get_json(api, &format!("/api/v1/urls?site_id={site_id}&state=pending&limit=20")).await?;
    let items = urls["items"].as_array().cloned().unwrap_or_default();
    Ok(items.iter().find_map(|url| Some(format!("{} ({})", url["state_reason"].as_str()?, text(&url["url"])))))
}

/// Print the site's totals; the speed counts the `fetched_now` pages fetched while the
/// command followed the site.
fn print_summary(site_id: i64, progress: &Progress, fetched_now: i64, elapsed: Duration) {
    let r = &progress.responses;
    let rows = [
        ("site", format!("{} ({})", progress.host, site_id)),
        ("elapsed", format!("{:.1}s", elapsed.as_secs_f64())),
        ("urls discovered", progress.urls_discovered.to_string()),
        ("pages fetched", progress.urls_fetched.to_string()),
        ("2xx", r.ok.to_string()),
        ("3xx", r.redirect.to_string()),
        ("4xx", r.client_error.to_string()),
        ("5xx", r.server_error.to_string()),
        ("errors", r.error.to_string()),
        ("links", progress.links.to_string()),
        ("fetched now", fetched_now.to_string()),
        ("pages/s", format!("{:.1}", fetched_now as f64 / elapsed.as_secs_f64().max(0.001))),
    ];
    for (name, value) in rows {
        println!("{name:<16} {value:>20}");
    }
}

#[derive(Debug, Clone, Args)]
pub struct BacklinksArgs {
    /// A URL, host or registrable domain.
    pub target: String,

    /// How to match the target: url, host or domain (default: url when it has a scheme).
    #[arg(long)]
    pub mode: Option<String>,

    /// Most backlinks listed.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,

    /// Print the API's JSON instead of a table.
    #[arg(long)]
    pub json: bool,

    /// Base URL of the admin API.
    #[arg(long, env = "OPEN_AHREFS_API", default_value = "http://127.0.0.1:8000")]
    pub api: String,
}

#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// The site id, as `open-ahrefs crawl` prints it.
    pub site_id: i64,

    /// Print the API's JSON instead of a table.
    #[arg(long)]
    pub json: bool,

    /// Base URL of the admin API.
    #[arg(long, env = "OPEN_AHREFS_API", default_value = "http://127.0.0.1:8000")]
    pub api: String,
}

/// List the backlinks of a target, with totals.
pub async fn backlinks(args: BacklinksArgs) -> anyhow::Result<()> {
    let mut path = format!("/api/v1/backlinks?limit={}&target={}", args.limit, encode_component(&args.target));
    if let Some(mode) = &args.mode {
        path.push_str(&format!("&mode={}", encode_component(mode)));
    }
    let body = get_json(&args.api, &path).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&body).context("formatting JSON")?);
        return Ok(());
    }
    let items = body["items"].as_array().cloned().unwrap_or_default();
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|link| {
            vec![
                text(&link["source_url"]),
                text(&link["anchor_text"]),
                rel_kinds(link),
                text(&link["first_seen"]).chars().take(10).collect(),
            ]
        })
        .collect();
    print_table(&["source", "anchor", "rel", "first seen"], &rows);
    println!(
        "{} of {} backlinks of {}",
        items.len(),
        body["total"],
        body["target"]["value"].as_str().unwrap_or(&args.target)
    );
    Ok(())
}

/// Print a site's audit findings.
pub async fn audit(args: AuditArgs) -> anyhow::Result<()> {
    let body = get_json(&args.api, &format!("/api/v1/sites/{}/audit", args.site_id)).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&body).context("formatting JSON")?);
        return Ok(());
    }
    let findings = body["findings"].as_array().cloned().unwrap_or_default();
    let rows: Vec<Vec<String>> = findings
        .iter()
        .map(|finding| {
            let example = finding["examples"].get(0).map(|e| text(&e["url"])).unwrap_or_default();
            vec![text(&finding["severity"]), text(&finding["code"]), finding["count"].to_string(), example]
        })
        .collect();
    print_table(&["severity", "finding", "count", "example"], &rows);
    println!("{} findings for site {}", findings.len(), args.site_id);
    Ok(())
}

async fn get_json(api: &str, path: &str) -> anyhow::Result<serde_json::Value> {
    let api = api.trim_end_matches('/');
    let client = awc::Client::builder().timeout(Duration::from_secs(60)).finish();
    let mut response = client
        .get(format!("{api}{path}"))
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the admin API at {api}: {e}"))?;
    let body = response.body().limit(64 * 1024 * 1024).await.context("reading the API response")?;
    if !response.status().is_success() {
        bail!("{path} failed with HTTP {}: {}", response.status(), String::from_utf8_lossy(&body));
    }
    serde_json::from_slice(&body).context("parsing the API response")
}

fn text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn rel_kinds(link: &serde_json::Value) -> String {
    let kinds: Vec<&str> =
        ["nofollow", "ugc", "sponsored"].into_iter().filter(|kind| link[*kind].as_bool() == Some(true)).collect();
    if kinds.is_empty() {
        "follow".to_string()
    } else {
        kinds.join(" ")
    }
}

fn encode_component(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Print rows as aligned columns, cutting the widest columns so that a line fits the
/// terminal width (`COLUMNS`, else 120).
fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let width: usize = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).unwrap_or(120);
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let gaps = 2 * headers.len().saturating_sub(1);
    while widths.iter().sum::<usize>() + gaps > width {
        let Some((widest, _)) = widths.iter().enumerate().max_by_key(|(_, w)| **w) else { break };
        if widths[widest] <= 8 {
            break;
        }
        widths[widest] -= 1;
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, w)| {
                let cut: String = if cell.chars().count() > *w {
                    cell.chars().take(w.saturating_sub(1)).chain(std::iter::once('…')).collect()
                } else {
                    cell.clone()
                };
                format!("{cut:<w$}")
            })
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_bar_fills_by_ratio() {
        assert_eq!(progress_bar(0, 0), "--------------------");
        assert_eq!(progress_bar(5, 10), "##########----------");
        assert_eq!(progress_bar(10, 10), "####################");
    }
}
