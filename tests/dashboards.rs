//! Checks the Grafana dashboards of `grafana/dashboards/` against a live cluster. Every
//! metric that a PromQL query of a dashboard names must appear in the `/metrics` output of
//! the admin or of a scraper after a small crawl.

mod common;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use common::{free_port, required_env, Canned, Cluster, FixtureServer};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::Value;

/// How long the test waits for every dashboard metric to appear. librdkafka reports the
/// statistics behind the Kafka client metrics every few seconds, so the first scrape after
/// the crawl may not list them yet.
const METRICS_DEADLINE: Duration = Duration::from_secs(60);

/// A metric named by a query of a dashboard panel or template variable.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct MetricUse {
    dashboard: String,
    /// The panel or variable whose query names the metric, such as `panel "Fetch latency"`.
    location: String,
    metric: String,
}

fn dashboards_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("grafana/dashboards")
}

/// Reads and parses every dashboard file, returning (file name, dashboard) pairs sorted by name.
fn load_dashboards() -> Vec<(String, Value)> {
    let dir = dashboards_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("reading {} failed: {e}", dir.display()));
    let mut paths: Vec<PathBuf> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let dashboard = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not valid JSON: {e}"));
            (name, dashboard)
        })
        .collect()
}

/// Returns whether a datasource reference points at Loki. A target without its own datasource
/// uses its panel's.
fn is_loki(datasource: Option<&Value>) -> bool {
    let Some(datasource) = datasource else {
        return false;
    };
    datasource["type"] == "loki" || datasource["uid"] == "loki"
}

/// Collects the PromQL queries of a dashboard as (location, expression) pairs, from the
/// panel targets (rows' nested panels included) and the template variables. Loki queries
/// are left out.
fn prometheus_queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut queries = Vec::new();
    let mut panels: Vec<&Value> = dashboard["panels"].as_array().map(|p| p.iter().collect()).unwrap_or_default();
    while let Some(panel) = panels.pop() {
        if let Some(nested) = panel["panels"].as_array() {
            panels.extend(nested);
        }
        let location = format!("panel \"{}\"", panel["title"].as_str().unwrap_or("(untitled)"));
        for target in panel["targets"].as_array().into_iter().flatten() {
            let datasource = target.get("datasource").or(panel.get("datasource"));
            if is_loki(datasource) {
                continue;
            }
            if let Some(expr) = target["expr"].as_str() {
                queries.push((location.clone(), expr.to_string()));
            }
        }
    }
    for variable in dashboard["templating"]["list"].as_array().into_iter().flatten() {
        if variable["type"] != "query" || is_loki(variable.get("datasource")) {
            continue;
        }
        let query = variable["query"]["query"].as_str().or(variable["query"].as_str()).unwrap_or("");
        if let Some(expr) = variable_expression(query) {
            let name = variable["name"].as_str().unwrap_or("?");
            queries.push((format!("variable ${name}"), expr));
        }
    }
    queries
}

/// Extracts the PromQL part of a Grafana template variable query, which is the selector of
/// `label_values(selector, label)` or the expression of `query_result(expr)`. Returns None
/// for `label_values(label)`, which names no metric.
fn variable_expression(query: &str) -> Option<String> {
    let query = query.trim();
    if let Some(inner) = query.strip_prefix("query_result(").and_then(|rest| rest.strip_suffix(')')) {
        return Some(inner.to_string());
    }
    let inner = query.strip_prefix("label_values(")?.strip_suffix(')')?;
    let split = top_level_comma(inner)?;
    Some(inner[..split].to_string())
}

/// Returns the byte index of the last comma outside brackets and strings.
fn top_level_comma(text: &str) -> Option<usize> {
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut found = None;
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'' | '`') => quote = Some(c),
            (None, '(' | '{' | '[') => depth += 1,
            (None, ')' | '}' | ']') => depth -= 1,
            (None, ',') if depth == 0 => found = Some(i),
            _ => {}
        }
    }
    found
}

/// Keywords that take a parenthesized list of label names, which are not metrics.
const LABEL_LIST_KEYWORDS: &[&str] = &["by", "without", "on", "ignoring", "group_left", "group_right"];

/// Binary operators and literals spelled as words.
const WORD_KEYWORDS: &[&str] = &["and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"];

/// Returns the metric names of a PromQL expression.
///
/// The scan skips strings, label matchers (`{...}`), range and subquery brackets (`[...]`)
/// and Grafana variables (`$name`, `${name}`). Of the identifiers left, functions and
/// aggregations (followed by `(`, `by` or `without`), the label lists after `by`, `on` and
/// the like, and operator keywords are not metrics. Selectors written only as
/// `{__name__="..."}` are not recognized.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_string(&chars, i);
        } else if c == '{' {
            i = skip_block(&chars, i, '}');
        } else if c == '[' {
            i = skip_block(&chars, i, ']');
        } else if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '$' {
            i = skip_variable(&chars, i);
        } else if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) {
            // Numbers, durations (5m30s), hex literals and exponents.
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.' || chars[i] == '_') {
                i += 1;
            }
        } else if is_identifier_start(c) {
            let start = i;
            while i < chars.len() && is_identifier_char(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            let opens_parenthesis = chars.get(next) == Some(&'(');
            let lowercase = word.to_ascii_lowercase();
            if opens_parenthesis && LABEL_LIST_KEYWORDS.contains(&lowercase.as_str()) {
                i = skip_block(&chars, next, ')');
            } else if opens_parenthesis
                || starts_with_grouping(&chars[next..])
                || LABEL_LIST_KEYWORDS.contains(&lowercase.as_str())
                || WORD_KEYWORDS.contains(&lowercase.as_str())
            {
                // Functions, aggregations and keywords are not metrics, and the scan goes on after them.
            } else {
                names.insert(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

/// Returns whether the text starts with `by` or `without`, so that the identifier before it is an
/// aggregation written as `sum by (label) (expr)`.
fn starts_with_grouping(chars: &[char]) -> bool {
    ["by", "without"].iter().any(|keyword| {
        let length = keyword.len();
        chars.len() > length
            && chars[..length].iter().collect::<String>().eq_ignore_ascii_case(keyword)
            && !is_identifier_char(chars[length])
    })
}

fn is_identifier_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_identifier_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Returns the index after the string literal that starts at `start`. Backslash escapes
/// count except in backquoted strings, which PromQL reads raw.
fn skip_string(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() {
        if chars[i] == '\\' && quote != '`' {
            i += 2;
            continue;
        }
        if chars[i] == quote {
            return i + 1;
        }
        i += 1;
    }
    i
}

/// Returns the index after the bracket that closes the one at `start`, skipping strings inside.
fn skip_block(chars: &[char], start: usize, close: char) -> usize {
    let open = chars[start];
    let mut depth = 0;
    let mut i = start;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_string(chars, i);
            continue;
        }
        if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                return i + 1;
            }
        }
        i += 1;
    }
    i
}

/// Returns the index after a Grafana variable reference (`$name`, `${name}` or `${name:format}`).
fn skip_variable(chars: &[char], start: usize) -> usize {
    let mut i = start + 1;
    if chars.get(i) == Some(&'{') {
        return skip_block(chars, i, '}');
    }
    while i < chars.len() && is_identifier_char(chars[i]) {
        i += 1;
    }
    i
}

/// Metric names of a Prometheus text exposition, from its `# TYPE` lines (with their kinds)
/// and its sample lines.
#[derive(Debug, Default)]
struct Exposition {
    types: HashMap<String, String>,
    samples: HashSet<String>,
}

impl Exposition {
    fn parse(text: &str) -> Self {
        let mut exposition = Self::default();
        exposition.add(text);
        exposition
    }

    fn add(&mut self, text: &str) {
        for line in text.lines() {
            let line = line.trim();
            if let Some(declaration) = line.strip_prefix("# TYPE ") {
                let mut parts = declaration.split_whitespace();
                if let (Some(name), Some(kind)) = (parts.next(), parts.next()) {
                    self.types.insert(name.to_string(), kind.to_string());
                }
                continue;
            }
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            self.samples.insert(line[..end].to_string());
        }
    }

    /// Returns whether `name` is a declared or sampled metric, or a `_bucket`, `_sum` or `_count`
    /// series of a declared histogram (`_sum` and `_count` of a summary too).
    fn contains(&self, name: &str) -> bool {
        if self.samples.contains(name) || self.types.contains_key(name) {
            return true;
        }
        for (suffix, kinds) in [
            ("_bucket", &["histogram"][..]),
            ("_sum", &["histogram", "summary"]),
            ("_count", &["histogram", "summary"]),
        ] {
            let declared = name.strip_suffix(suffix).and_then(|base| self.types.get(base));
            if declared.is_some_and(|kind| kinds.contains(&kind.as_str())) {
                return true;
            }
        }
        false
    }
}

/// Collects every metric that the dashboards name, with the dashboard and the panel or
/// variable naming it.
fn dashboard_metric_uses() -> Vec<MetricUse> {
    let mut uses = BTreeSet::new();
    for (file, dashboard) in load_dashboards() {
        for (location, expr) in prometheus_queries(&dashboard) {
            for metric in metric_names(&expr) {
                uses.insert(MetricUse { dashboard: file.clone(), location: location.clone(), metric });
            }
        }
    }
    uses.into_iter().collect()
}

fn fetch_text(url: &str) -> String {
    ureq::get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url} failed: {e}"))
        .into_string()
        .unwrap_or_else(|e| panic!("reading {url} failed: {e}"))
}

/// Publish a message that does not decode to the admin's result topic, so that the admin
/// rejects it and `open_ahrefs_kafka_messages_rejected_total` gets a sample.
fn publish_undecodable_result(topic: &str) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", required_env("KAFKA_BROKERS"))
        .set("message.timeout.ms", "10000")
        .create()
        .expect("creating a Kafka producer failed");
    producer
        .send(BaseRecord::to(topic).key("127.0.0.1").payload("this is not a fetch result"))
        .map_err(|(error, _)| error)
        .unwrap_or_else(|e| panic!("queueing a message for {topic} failed: {e}"));
    producer.flush(Duration::from_secs(10)).unwrap_or_else(|e| panic!("producing to {topic} failed: {e}"));
}

fn fixture_routes() -> HashMap<String, Canned> {
    let mut routes = HashMap::new();
    routes.insert(
        "/".to_string(),
        Canned::html(
            r#"<html><head><title>Metrics fixture</title></head><body>
            <a href="/a.html">A</a> <a href="/missing.html">Missing</a>
            <a href="/moved">Moved</a> <a href="/broken">Broken</a>
            </body></html>"#,
        ),
    );
    routes.insert("/a.html".to_string(), Canned::html(r#"<title>A</title><a href="/">Home</a>"#));
    routes.insert("/moved".to_string(), Canned::redirect(301, "/a.html"));
    let mut broken = Canned::html("<h1>Internal error</h1>");
    broken.status = 500;
    routes.insert("/broken".to_string(), broken);
    routes
}

#[test]
fn dashboard_metrics_exist_in_cluster() {
    let uses = dashboard_metric_uses();
    assert!(!uses.is_empty(), "no PromQL metric found in {}", dashboards_dir().display());

    let server = FixtureServer::start(None, fixture_routes(), Duration::ZERO);
    // One scraper, so that the scraper whose metrics are read did every fetch. Without
    // robots.txt, the unreachable site's seed is fetched and fails at once; with it, the
    // failed robots.txt would defer the seed for ROBOTS_RETRY_SECONDS.
    let cluster = Cluster::start("dashboards", 1, &[("RESPECT_ROBOTS", "false")]);
    let site = cluster.add_site(&server.url("/"));
    // Nothing listens on this port, so its seed fails to connect and counts as an error.
    let unreachable = cluster.add_site(&format!("http://127.0.0.1:{}/", free_port()));
    let done = cluster.wait_done(site, Duration::from_secs(120));
    assert_eq!(done["urls_fetched"], 5, "{done}");
    cluster.wait_done(unreachable, Duration::from_secs(120));
    publish_undecodable_result(&cluster.topic_res);

    let scraper_metrics = &cluster.scraper_metrics[0];
    let scraper_health = scraper_metrics.replace("/metrics", "/healthz");
    fetch_text(&scraper_health);

    let deadline = Instant::now() + METRICS_DEADLINE;
    let missing = loop {
        let mut exposition = Exposition::parse(&fetch_text(&format!("{}/metrics", cluster.api)));
        exposition.add(&fetch_text(scraper_metrics));
        let missing: Vec<&MetricUse> = uses.iter().filter(|u| !exposition.contains(&u.metric)).collect();
        if missing.is_empty() || Instant::now() >= deadline {
            break missing;
        }
        thread::sleep(Duration::from_secs(1));
    };

    let report: Vec<String> =
        missing.iter().map(|u| format!("  {}: {}: {}", u.dashboard, u.location, u.metric)).collect();
    let distinct: BTreeSet<&str> = missing.iter().map(|u| u.metric.as_str()).collect();
    assert!(
        missing.is_empty(),
        "{} metric(s) named by the dashboards are missing from the admin's and the scraper's /metrics after {:?}: {}\n{}",
        distinct.len(),
        METRICS_DEADLINE,
        distinct.into_iter().collect::<Vec<_>>().join(", "),
        report.join("\n")
    );
}

#[test]
fn every_dashboard_has_queries() {
    let dashboards = load_dashboards();
    let names: Vec<&str> = dashboards.iter().map(|(name, _)| name.as_str()).collect();
    for expected in ["admin-api.json", "crawl-overview.json", "database.json", "kafka.json", "logs.json"] {
        assert!(names.contains(&expected), "{expected} is missing from {}", dashboards_dir().display());
    }
    for (name, dashboard) in &dashboards {
        if name == "logs.json" {
            continue;
        }
        let metrics: BTreeSet<String> =
            prometheus_queries(dashboard).iter().flat_map(|(_, expr)| metric_names(expr)).collect();
        assert!(!metrics.is_empty(), "{name} names no metric");
        let foreign: Vec<&String> = metrics.iter().filter(|m| !m.starts_with("open_ahrefs_")).collect();
        assert!(foreign.is_empty(), "{name} names metrics outside the open_ahrefs_ namespace: {foreign:?}");
    }
}

#[test]
fn metric_names_skip_functions_labels_and_variables() {
    let cases: &[(&str, &[&str])] = &[
        ("up", &["up"]),
        (
            "sum by (status_class) (rate(open_ahrefs_pages_fetched_total[$__rate_interval]))",
            &["open_ahrefs_pages_fetched_total"],
        ),
        (
            r#"histogram_quantile(0.95, sum by (le, endpoint) (rate(http_seconds_bucket{endpoint=~"$endpoint", status=~"5.."}[5m])))"#,
            &["http_seconds_bucket"],
        ),
        ("sum(rate(a_sum[1m])) / sum(rate(a_count[1m]))", &["a_count", "a_sum"]),
        ("a and on (instance) b or ignoring(x) group_left(y) c unless d", &["a", "b", "c", "d"]),
        ("x > bool 1e3 offset 5m", &["x"]),
        (r#"sum without(instance) (job:rate5m{label="}", other='by(x)'})"#, &["job:rate5m"]),
        ("max_over_time(deriv(g[1h:5m])[30m:]) @ start()", &["g"]),
        ("count(z) by (site)", &["z"]),
        ("-inf + NaN * 0x1F", &[]),
        ("rate(m[$__rate_interval]) * ${scale:raw} + $offset", &["m"]),
    ];
    for (expr, expected) in cases {
        let names: Vec<String> = metric_names(expr).into_iter().collect();
        assert_eq!(names, *expected, "metric names of {expr}");
    }
}

#[test]
fn variable_expression_takes_label_values_selector() {
    assert_eq!(
        variable_expression("label_values(open_ahrefs_frontier_urls, site)").as_deref(),
        Some("open_ahrefs_frontier_urls")
    );
    assert_eq!(variable_expression(r#"label_values(m{a="x,y"}, b)"#).as_deref(), Some(r#"m{a="x,y"}"#));
    assert_eq!(variable_expression("label_values(site)"), None);
    assert_eq!(variable_expression("query_result(topk(5, m))").as_deref(), Some("topk(5, m)"));
}

#[test]
fn exposition_contains_histogram_series() {
    let exposition = Exposition::parse(
        "# HELP h Time.\n# TYPE h histogram\nh_bucket{le=\"1\"} 0\n# TYPE s summary\n# TYPE c counter\n\
         c_total{a=\"b\"} 1\nplain 2\n",
    );
    assert!(exposition.contains("h"));
    assert!(exposition.contains("h_bucket"));
    assert!(exposition.contains("h_sum"), "a declared histogram has a _sum series");
    assert!(exposition.contains("h_count"));
    assert!(exposition.contains("s_sum"));
    assert!(!exposition.contains("s_bucket"), "a summary has no _bucket series");
    assert!(exposition.contains("c_total"));
    assert!(!exposition.contains("c_bucket"), "a counter has no _bucket series");
    assert!(exposition.contains("plain"));
    assert!(!exposition.contains("absent"));
}
