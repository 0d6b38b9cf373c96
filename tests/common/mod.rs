//! Shared test harness: fixture web servers, fresh databases, and a cluster of real
//! `open-ahrefs` processes (one admin, N scrapers) joined by the test broker.
//!
//! The tests need DATABASE_URL (a role allowed to create databases) and KAFKA_BROKERS;
//! `scripts/test.sh` starts both and sets them.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run the tests through scripts/test.sh"))
}

/// A name unique to this test process and call, usable as a database or topic name.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst))
}

/// A port on 127.0.0.1 that nothing listens on now, for a child process to bind.
///
/// It is taken below the kernel's ephemeral range (32768 and up on Linux). A port that the
/// kernel hands out for port 0 can be handed out again as the local end of an outgoing
/// connection (to PostgreSQL, the broker) before the child binds it. Each test process starts at its own
/// offset so that two processes rarely try the same port.
pub fn free_port() -> u16 {
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7_919) % SPAN;
    for _ in 0..SPAN {
        let offset = (start + NEXT.fetch_add(1, Ordering::SeqCst)) % SPAN;
        let port = u16::try_from(FIRST + offset).unwrap();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between {FIRST} and {}", FIRST + SPAN);
}

/// Run SQL through psql and return its unaligned output.
pub fn psql(database_url: &str, sql: &str) -> String {
    let output = Command::new("psql").args([database_url, "-v", "ON_ERROR_STOP=1", "-tAc", sql]).output().unwrap();
    assert!(output.status.success(), "psql failed on {sql}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

pub fn psql_count(database_url: &str, sql: &str) -> i64 {
    psql(database_url, sql).parse().unwrap_or_else(|_| panic!("not a count: {sql}"))
}

/// Create an empty database and return its URL.
pub fn fresh_database(name: &str) -> String {
    let admin_url = required_env("DATABASE_URL");
    psql(&admin_url, &format!("DROP DATABASE IF EXISTS {name}"));
    psql(&admin_url, &format!("CREATE DATABASE {name}"));
    let mut url = url::Url::parse(&admin_url).unwrap();
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// The folder of the Rust book that rustup installs.
pub fn rust_book_dir() -> PathBuf {
    let output = Command::new("rustc").args(["--print", "sysroot"]).output().unwrap();
    let sysroot = String::from_utf8(output.stdout).unwrap();
    let dir = Path::new(sysroot.trim()).join("share/doc/rust/html/book");
    assert!(dir.is_dir(), "the Rust book is not installed at {}", dir.display());
    dir
}

/// A canned HTTP response of a fixture server.
#[derive(Clone, Debug)]
pub struct Canned {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Canned {
    pub fn html(body: &str) -> Self {
        Self {
            status: 200,
            headers: vec![("Content-Type".into(), "text/html; charset=utf-8".into())],
            body: body.into(),
        }
    }

    pub fn redirect(status: u16, location: &str) -> Self {
        Self { status, headers: vec![("Location".into(), location.into())], body: Vec::new() }
    }
}

/// A web server on 127.0.0.1 that serves canned routes first, then files of a folder.
///
/// A file is answered 200 (`index.html` for a path ending in `/`), anything else 404. Every
/// request is recorded with its arrival time.
pub struct FixtureServer {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<(Instant, String)>>>,
    routes: Arc<Mutex<HashMap<String, Canned>>>,
}

impl FixtureServer {
    /// Start on a port the kernel picks. Routes that must name the port go in with `set_routes`.
    pub fn start(root: Option<PathBuf>, routes: HashMap<String, Canned>, delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let routes = Arc::new(Mutex::new(routes));
        let recorded = requests.clone();
        let served_routes = routes.clone();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (root, routes, recorded) = (root.clone(), served_routes.clone(), recorded.clone());
                thread::spawn(move || serve_connection(stream, root.as_deref(), &routes, &recorded, delay));
            }
        });
        Self { port, requests, routes }
    }

    /// Add canned routes while the server runs, replacing those of the same paths.
    pub fn set_routes(&self, routes: HashMap<String, Canned>) {
        self.routes.lock().unwrap().extend(routes);
    }

    /// Replace or add a canned route while the server runs.
    pub fn set_route(&self, path: &str, response: Canned) {
        self.routes.lock().unwrap().insert(path.to_string(), response);
    }

    /// The request paths received, in order.
    pub fn paths(&self) -> Vec<String> {
        self.requests.lock().unwrap().iter().map(|(_, path)| path.clone()).collect()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn request_count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

fn serve_connection(
    stream: TcpStream,
    root: Option<&Path>,
    routes: &Mutex<HashMap<String, Canned>>,
    recorded: &Mutex<Vec<(Instant, String)>>,
    delay: Duration,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut keep_alive = true;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header.to_ascii_lowercase().starts_with("connection: close") {
                keep_alive = false;
            }
            if header == "\r\n" || header == "\n" {
                break;
            }
        }
        let target = request_line.split_whitespace().nth(1).unwrap_or("/").to_string();
        recorded.lock().unwrap().push((Instant::now(), target.clone()));
        thread::sleep(delay);

        let canned = routes.lock().unwrap().get(&target).cloned();
        let response = canned.unwrap_or_else(|| serve_file(root, &target));
        let mut head = format!("HTTP/1.1 {} Fixture\r\nContent-Length: {}\r\n", response.status, response.body.len());
        for (name, value) in &response.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        if writer.write_all(head.as_bytes()).and_then(|_| writer.write_all(&response.body)).is_err() || !keep_alive {
            return;
        }
    }
}

fn serve_file(root: Option<&Path>, target: &str) -> Canned {
    let not_found = Canned {
        status: 404,
        headers: vec![("Content-Type".into(), "text/html".into())],
        body: b"<h1>Not found</h1>".to_vec(),
    };
    let Some(root) = root else { return not_found };
    let path = target.split(['?', '#']).next().unwrap_or("/");
    let decoded = percent_decode(path);
    let mut relative = decoded.trim_start_matches('/').to_string();
    if relative.is_empty() || relative.ends_with('/') {
        relative.push_str("index.html");
    }
    if relative.split('/').any(|segment| segment == "..") {
        return not_found;
    }
    let file = root.join(relative);
    let Ok(mut handle) = std::fs::File::open(&file) else {
        return not_found;
    };
    if !file.is_file() {
        return not_found;
    }
    let mut body = Vec::new();
    handle.read_to_end(&mut body).unwrap();
    let content_type = match file.extension().and_then(|e| e.to_str()) {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("css") => "text/css",
        Some("js") => "application/javascript",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    };
    Canned { status: 200, headers: vec![("Content-Type".into(), content_type.into())], body }
}

fn percent_decode(input: &str) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        if let Some(value) = hex.filter(|_| bytes[i] == b'%').and_then(|h| u8::from_str_radix(h, 16).ok()) {
            out.push(value);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One admin and N scrapers as separate OS processes, with their own database and topics.
pub struct Cluster {
    pub name: String,
    pub database_url: String,
    pub api: String,
    pub topic_url: String,
    pub topic_res: String,
    pub scraper_metrics: Vec<String>,
    admin: Option<Child>,
    admin_port: u16,
    scrapers: Vec<Option<Child>>,
    scraper_ports: Vec<u16>,
    /// Processes started so far, which numbers their log files.
    starts: u32,
    env: Vec<(String, String)>,
    log_dir: PathBuf,
}

impl Cluster {
    pub fn start(name: &str, scrapers: usize, extra_env: &[(&str, &str)]) -> Self {
        let name = unique(name);
        let database_url = match extra_env.iter().find(|(k, _)| *k == "DATABASE_URL") {
            Some((_, url)) => url.to_string(),
            None => fresh_database(&name),
        };
        let log_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("logs").join(&name);
        std::fs::create_dir_all(&log_dir).unwrap();

        let admin_port = free_port();
        let mut env: Vec<(String, String)> = vec![
            ("DATABASE_URL".into(), database_url.clone()),
            ("KAFKA_BROKERS".into(), required_env("KAFKA_BROKERS")),
            ("TOPIC_URL".into(), format!("{name}_url")),
            ("TOPIC_RES".into(), format!("{name}_res")),
            ("KAFKA_GROUP_PREFIX".into(), name.clone()),
            ("KAFKA_TOPIC_PARTITIONS".into(), "4".into()),
            ("RUST_LOG".into(), "info,open_ahrefs=debug".into()),
            // The fixture servers listen on loopback, and the tests need no politeness delay.
            ("ALLOW_PRIVATE_ADDRESSES".into(), "true".into()),
            ("CRAWL_DELAY_MS".into(), "0".into()),
        ];
        env.extend(extra_env.iter().map(|(k, v)| (k.to_string(), v.to_string())));

        let mut cluster = Self {
            name: name.clone(),
            database_url,
            api: format!("http://127.0.0.1:{admin_port}"),
            topic_url: format!("{name}_url"),
            topic_res: format!("{name}_res"),
            scraper_metrics: Vec::new(),
            admin: None,
            admin_port,
            scrapers: Vec::new(),
            scraper_ports: Vec::new(),
            starts: 0,
            env,
            log_dir,
        };
        cluster.start_admin();
        for i in 0..scrapers {
            let port = free_port();
            cluster.scraper_ports.push(port);
            cluster.scraper_metrics.push(format!("http://127.0.0.1:{port}/metrics"));
            cluster.scrapers.push(None);
            cluster.restart_scraper(i);
        }
        cluster
    }

    fn start_admin(&mut self) {
        let listen = format!("127.0.0.1:{}", self.admin_port);
        self.admin = Some(self.spawn("admin", &[("ADMIN_LISTEN", listen)]));
        self.wait_healthy(&format!("{}/healthz", self.api));
    }

    /// Kill the admin with SIGKILL, as a crash would.
    pub fn kill_admin(&mut self) {
        if let Some(mut child) = self.admin.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Start the admin again on the same address, killing it first if it runs.
    pub fn restart_admin(&mut self) {
        self.kill_admin();
        self.start_admin();
    }

    /// Start scraper `index` again, killing it first if it runs; it keeps its metrics port.
    pub fn restart_scraper(&mut self, index: usize) {
        self.kill_scraper(index);
        let listen = format!("127.0.0.1:{}", self.scraper_ports[index]);
        let child = self.spawn(&format!("scraper-{index}"), &[("SCRAPER_METRICS_LISTEN", listen)]);
        self.scrapers[index] = Some(child);
    }

    /// Send SIGTERM to the admin and return its exit status and how long it took to exit,
    /// or `None` when it had not exited after `limit` (it is then killed).
    pub fn terminate_admin(&mut self, limit: Duration) -> Option<(std::process::ExitStatus, Duration)> {
        let mut child = self.admin.take()?;
        terminate_within(&mut child, limit)
    }

    /// Send SIGTERM to scraper `index`, as [`Cluster::terminate_admin`] does to the admin.
    pub fn terminate_scraper(&mut self, index: usize, limit: Duration) -> Option<(std::process::ExitStatus, Duration)> {
        let mut child = self.scrapers[index].take()?;
        terminate_within(&mut child, limit)
    }

    pub fn admin_pid(&self) -> Option<u32> {
        self.admin.as_ref().map(Child::id)
    }

    pub fn scraper_pid(&self, index: usize) -> Option<u32> {
        self.scrapers[index].as_ref().map(Child::id)
    }

    /// The `/readyz` URL of scraper `index`.
    pub fn scraper_readyz(&self, index: usize) -> String {
        format!("http://127.0.0.1:{}/readyz", self.scraper_ports[index])
    }

    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    fn spawn(&mut self, role: &str, extra: &[(&str, String)]) -> Child {
        // A restarted process gets a log of its own, so that the first run's log stays.
        self.starts += 1;
        let file = if self.log_dir.join(format!("{role}.log")).exists() {
            format!("{role}.{}.log", self.starts)
        } else {
            format!("{role}.log")
        };
        let log = std::fs::File::create(self.log_dir.join(file)).unwrap();
        let subcommand = if role == "admin" { "admin" } else { "scraper" };
        Command::new(env!("CARGO_BIN_EXE_open-ahrefs"))
            .arg(subcommand)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    fn wait_healthy(&self, url: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if ureq::get(url).call().is_ok() {
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
        panic!("{url} did not answer within 60 s; see {}", self.log_dir.display());
    }

    pub fn log(&self, role: &str) -> String {
        std::fs::read_to_string(self.log_dir.join(format!("{role}.log"))).unwrap_or_default()
    }

    /// POST a site and return its id.
    pub fn add_site(&self, url: &str) -> i64 {
        let response = ureq::post(&format!("{}/api/v1/sites", self.api))
            .send_json(serde_json::json!({ "url": url }))
            .unwrap_or_else(|e| panic!("adding {url} failed: {e}"));
        assert_eq!(response.status(), 201);
        response.into_json::<Value>().unwrap()["id"].as_i64().unwrap()
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        match ureq::get(&format!("{}{path}", self.api)).call() {
            Ok(response) => (response.status(), response.into_json().unwrap()),
            Err(ureq::Error::Status(status, response)) => (status, response.into_json().unwrap_or(Value::Null)),
            Err(e) => panic!("GET {path} failed: {e}"),
        }
    }

    pub fn site(&self, id: i64) -> Value {
        let (status, body) = self.get(&format!("/api/v1/sites/{id}"));
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Poll a site until it is done, calling `on_progress` on every look.
    pub fn wait_done_with(&self, id: i64, timeout: Duration, mut on_progress: impl FnMut(&Value)) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let site = self.site(id);
            on_progress(&site);
            if site["state"] == "done" {
                return site;
            }
            assert!(
                Instant::now() < deadline,
                "site {id} not done after {timeout:?}: {site}; logs in {}",
                self.log_dir.display()
            );
            thread::sleep(Duration::from_millis(250));
        }
    }

    pub fn wait_done(&self, id: i64, timeout: Duration) -> Value {
        self.wait_done_with(id, timeout, |_| {})
    }

    pub fn sql_count(&self, sql: &str) -> i64 {
        psql_count(&self.database_url, sql)
    }

    /// The admin process's resident memory, in KiB.
    pub fn admin_rss_kib(&self) -> u64 {
        let pid = self.admin.as_ref().expect("the admin is not running").id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// Kill a scraper with SIGKILL, as a crash would.
    pub fn kill_scraper(&mut self, index: usize) {
        if let Some(mut child) = self.scrapers[index].take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Assert that no row of pages, URLs or links exists twice.
    pub fn assert_no_duplicates(&self) {
        let duplicate_urls = self.sql_count("SELECT count(*) - count(DISTINCT url) FROM urls");
        assert_eq!(duplicate_urls, 0, "duplicate URL rows");
        let duplicate_pages = self.sql_count("SELECT count(*) - count(DISTINCT url_id) FROM pages");
        assert_eq!(duplicate_pages, 0, "duplicate page rows");
        let duplicate_links = self.sql_count(
            "SELECT count(*) FROM (SELECT 1 FROM links GROUP BY source_url_id, target_url_id, anchor_text, occurrence HAVING count(*) > 1) d",
        );
        assert_eq!(duplicate_links, 0, "duplicate link rows");
    }

    /// Poll a site until it is done, like [`Cluster::wait_done`], but treat a refused
    /// connection or an error status as "not yet", because the admin or its database may
    /// be down for a while on purpose.
    pub fn wait_done_through_faults(&self, id: i64, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        let url = format!("{}/api/v1/sites/{id}", self.api);
        let mut last = Value::Null;
        loop {
            if let Ok(response) = ureq::get(&url).timeout(Duration::from_secs(5)).call() {
                last = response.into_json().unwrap_or(Value::Null);
                if last["state"] == "done" {
                    return last;
                }
            }
            assert!(
                Instant::now() < deadline,
                "site {id} not done after {timeout:?}: {last}; logs in {}",
                self.log_dir.display()
            );
            thread::sleep(Duration::from_millis(250));
        }
    }

    /// Stop every process with SIGTERM, as an orchestrator would, and wait for it.
    pub fn stop(&mut self) {
        let children = self.scrapers.iter_mut().chain(std::iter::once(&mut self.admin));
        for child in children.flatten() {
            terminate(child);
        }
        self.scrapers.clear();
        self.admin = None;
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// SIGTERM a child and wait for it, killing it after 30 s.
pub fn terminate(child: &mut Child) -> Option<std::process::ExitStatus> {
    terminate_within(child, Duration::from_secs(30)).map(|(status, _)| status)
}

/// SIGTERM a child and wait up to `limit` for it to exit; returns its status and the time
/// it took, or `None` after killing it at the limit.
pub fn terminate_within(child: &mut Child, limit: Duration) -> Option<(std::process::ExitStatus, Duration)> {
    let started = Instant::now();
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    while started.elapsed() < limit {
        if let Ok(Some(status)) = child.try_wait() {
            return Some((status, started.elapsed()));
        }
        thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// A field of `/proc/<pid>/status` in KiB, such as `VmHWM` (peak resident memory) or
/// `VmRSS` (resident memory now); `None` once the process is gone.
pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with(&format!("{field}:")))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The status and JSON body of a GET, with `None` when the connection failed.
pub fn get_json(url: &str) -> Option<(u16, Value)> {
    match ureq::get(url).timeout(Duration::from_secs(5)).call() {
        Ok(response) => Some((response.status(), response.into_json().unwrap_or(Value::Null))),
        Err(ureq::Error::Status(status, response)) => Some((status, response.into_json().unwrap_or(Value::Null))),
        Err(_) => None,
    }
}

/// The independent count of `tests/independent_count.py` for a folder served at `seed`.
pub fn independent_count(root: &Path, seed: &str) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/independent_count.py");
    let output = Command::new("python3").arg(script).arg(root).arg(seed).output().unwrap();
    assert!(output.status.success(), "independent count failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}
