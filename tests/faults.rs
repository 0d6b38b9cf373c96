//! The fault matrix: while a crawl of the Rust book runs, one part of the system fails and
//! comes back. Every crawl must complete without a manual step, with the counts of an
//! independent count of the book and no duplicate row, and the processes' `/readyz` must
//! report the outage while it lasts.
//!
//! The tests take a lock that runs them one at a time, because one of them stops the
//! PostgreSQL server that every test of this file uses.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use common::{free_port, get_json, independent_count, rust_book_dir, Cluster, FixtureServer};
use serde_json::Value;

/// Serializes the tests of this file.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The time the fixture server waits before each response, so that the crawl of the book's
/// 137 URLs lasts long enough (about 15 s) to fail something in the middle of it.
const REQUEST_DELAY: Duration = Duration::from_millis(100);

/// The maximum time a stopped process may take to exit after SIGTERM: the 20 s the roles wait
/// for work in flight, the 5 s the HTTP servers wait for open requests, and a margin.
const SIGTERM_EXIT_LIMIT: Duration = Duration::from_secs(30);

/// The maximum time a crawl may take to complete after its fault.
const CRAWL_LIMIT: Duration = Duration::from_secs(300);

/// A crawl of the Rust book on a cluster, with the independent count to compare it with.
struct BookCrawl {
    server: FixtureServer,
    expected: Value,
    cluster: Cluster,
    site: i64,
}

impl BookCrawl {
    /// Start a cluster with two scrapers, add the book, and wait until `fetched` URLs are done.
    fn start(name: &str, extra_env: &[(&str, &str)], fetched: i64) -> Self {
        let book = rust_book_dir();
        let server = FixtureServer::start(Some(book.clone()), HashMap::new(), REQUEST_DELAY);
        let seed = server.url("/index.html");
        let expected = independent_count(&book, &seed);

        // A short lease brings back the URLs of a dead process soon; few URLs in flight keep
        // the leases of the live ones from running out while they wait for their turn.
        let mut env =
            vec![("LEASE_SECONDS", "5"), ("SCRAPER_CONCURRENCY", "8"), ("FRONTIER_MAX_IN_FLIGHT_PER_SITE", "20")];
        env.extend_from_slice(extra_env);
        let cluster = Cluster::start(name, 2, &env);
        let site = cluster.add_site(&seed);
        let crawl = Self { server, expected, cluster, site };
        crawl.wait_fetched(fetched);
        crawl
    }

    fn fetched(&self) -> i64 {
        match get_json(&format!("{}/api/v1/sites/{}", self.cluster.api, self.site)) {
            Some((200, site)) => site["urls_fetched"].as_i64().unwrap_or(0),
            _ => 0,
        }
    }

    /// Wait until at least `count` URLs of the book are fetched.
    fn wait_fetched(&self, count: i64) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.fetched() < count {
            assert!(
                Instant::now() < deadline,
                "the crawl did not reach {count} URLs; logs in {:?}",
                self.cluster.log_dir()
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Wait for the crawl to complete and compare it with the independent count.
    fn assert_complete(&self) {
        let site = self.cluster.wait_done_through_faults(self.site, CRAWL_LIMIT);
        assert_eq!(site["urls_fetched"], self.expected["urls_fetched"], "{site}");
        assert_eq!(site["responses"], self.expected["responses"], "{site}");
        assert_eq!(site["links"], self.expected["links"], "{site}");
        assert!(self.server.request_count() > 0);
        self.cluster.assert_no_duplicates();
    }
}

/// Poll a `/readyz` URL until its status is `status` and, for 503, a reason contains
/// `reason`; returns the body seen.
fn wait_readiness(url: &str, status: u16, reason: &str, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    let mut last = None;
    loop {
        let seen = get_json(url);
        if let Some((code, body)) = &seen {
            let reasons = body["reasons"].to_string();
            if *code == status && (status == 200 || reasons.contains(reason)) {
                return body.clone();
            }
        }
        last = seen.or(last);
        assert!(
            Instant::now() < deadline,
            "{url} did not return {status} ({reason}) within {timeout:?}; last: {last:?}"
        );
        thread::sleep(Duration::from_millis(200));
    }
}

fn admin_readyz(cluster: &Cluster) -> String {
    format!("{}/readyz", cluster.api)
}

#[test]
fn admin_killed_and_restarted() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut crawl = BookCrawl::start("fault_admin", &[], 20);

    crawl.cluster.kill_admin();
    thread::sleep(Duration::from_secs(2));
    crawl.cluster.restart_admin();
    wait_readiness(&admin_readyz(&crawl.cluster), 200, "", Duration::from_secs(60));

    crawl.assert_complete();
}

#[test]
fn each_scraper_killed_and_replaced() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut crawl = BookCrawl::start("fault_scrapers", &[], 20);

    for index in 0..2 {
        let before = crawl.fetched();
        crawl.cluster.kill_scraper(index);
        crawl.cluster.restart_scraper(index);
        wait_readiness(&crawl.cluster.scraper_readyz(index), 200, "", Duration::from_secs(60));
        // The crawl moves on before the next scraper is killed, unless it is already done.
        if index == 0 && before < crawl.expected["urls_fetched"].as_i64().unwrap() {
            crawl.wait_fetched(before + 10);
        }
    }

    crawl.assert_complete();
}

#[test]
fn sigterm_drains_and_exits_in_time() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut crawl = BookCrawl::start("fault_sigterm", &[], 20);

    let (status, took) =
        crawl.cluster.terminate_scraper(0, SIGTERM_EXIT_LIMIT).expect("scraper 0 did not exit in time");
    println!("scraper 0 exited with {status} {took:?} after SIGTERM");
    assert!(status.success(), "scraper 0 exited with {status}");
    let (status, took) = crawl.cluster.terminate_admin(SIGTERM_EXIT_LIMIT).expect("the admin did not exit in time");
    println!("admin exited with {status} {took:?} after SIGTERM");
    assert!(status.success(), "the admin exited with {status}");

    crawl.cluster.restart_admin();
    crawl.cluster.restart_scraper(0);
    crawl.assert_complete();

    let (status, took) =
        crawl.cluster.terminate_scraper(1, SIGTERM_EXIT_LIMIT).expect("scraper 1 did not exit in time");
    println!("idle scraper 1 exited with {status} {took:?} after SIGTERM");
    assert!(status.success(), "scraper 1 exited with {status}");
}

/// The test PostgreSQL server that `scripts/test.sh` started: its data folder and binaries.
struct TestPostgres {
    data: PathBuf,
    bin: PathBuf,
}

impl TestPostgres {
    /// The server of `$OPEN_AHREFS_STATE_DIR/run`, or `None` when the tests use a server of
    /// their own (DATABASE_URL set before `scripts/test.sh`), which they must not stop.
    fn find() -> Option<Self> {
        let run = PathBuf::from(std::env::var("OPEN_AHREFS_STATE_DIR").ok()?).join("run");
        let read = |name: &str| std::fs::read_to_string(run.join(name)).ok().map(|s| PathBuf::from(s.trim()));
        Some(Self { data: read("pg.data")?, bin: read("pg.bin")? })
    }

    /// Run pg_ctl, as the postgres user when the tests run as root, because PostgreSQL
    /// refuses to run as root.
    fn pg_ctl(&self, args: &[&str]) {
        let pg_ctl = self.bin.join("pg_ctl");
        let mut command = if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&pg_ctl);
            command
        } else {
            Command::new(&pg_ctl)
        };
        let output = command.arg("-D").arg(&self.data).args(args).output().unwrap();
        assert!(output.status.success(), "pg_ctl {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    }

    /// The server's command-line options, from `postmaster.opts`, without the binary and
    /// the data folder, so that a start after a stop listens where it did.
    fn options(&self) -> String {
        let opts = std::fs::read_to_string(self.data.join("postmaster.opts")).unwrap();
        let words: Vec<&str> = opts.trim().split('"').map(str::trim).filter(|w| !w.is_empty()).collect();
        let mut kept = Vec::new();
        let mut index = 1; // words[0] is the postgres binary
        while index < words.len() {
            if words[index] == "-D" {
                index += 2;
                continue;
            }
            kept.push(format!("'{}'", words[index]));
            index += 1;
        }
        kept.join(" ")
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[test]
fn postgres_stopped_and_started() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let Some(postgres) = TestPostgres::find() else {
        println!(
            "skipped: the tests use a PostgreSQL server of their own (DATABASE_URL), which this test must not stop"
        );
        return;
    };
    let crawl = BookCrawl::start("fault_postgres", &[], 20);
    let options = postgres.options();
    let log = postgres.data.join("server.log");

    postgres.pg_ctl(&["-m", "fast", "-w", "stop"]);
    let down = wait_readiness(&admin_readyz(&crawl.cluster), 503, "database", Duration::from_secs(30));
    println!("admin /readyz while PostgreSQL is down: {down}");
    thread::sleep(Duration::from_secs(5));
    postgres.pg_ctl(&["-w", "-t", "60", "-l", log.to_str().unwrap(), "-o", &options, "start"]);
    wait_readiness(&admin_readyz(&crawl.cluster), 200, "", Duration::from_secs(60));

    crawl.assert_complete();
}

/// A development broker (`open-ahrefs dev-broker`) of this test alone, so that its outage
/// reaches no other test. The outage is librdkafka's mock `broker_down`: the broker closes
/// its connections and rejects new ones. It keeps its log, offsets and groups, as a durable
/// Kafka broker does across a restart, because the process itself does not restart.
struct OwnBroker {
    child: Child,
    address: String,
}

impl OwnBroker {
    fn start() -> Self {
        let folder = Path::new(env!("CARGO_TARGET_TMPDIR")).join(common::unique("dev_broker"));
        std::fs::create_dir_all(&folder).unwrap();
        let address_file = folder.join("bootstrap");
        let log = std::fs::File::create(folder.join("dev-broker.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_open-ahrefs"))
            .arg("dev-broker")
            .arg("--bootstrap-file")
            .arg(&address_file)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut broker = Self { child, address: String::new() };
        let deadline = Instant::now() + Duration::from_secs(30);
        while broker.address.is_empty() {
            assert!(Instant::now() < deadline, "the dev broker did not start; see {}", folder.display());
            thread::sleep(Duration::from_millis(100));
            broker.address = std::fs::read_to_string(&address_file).unwrap_or_default().trim().to_string();
        }
        broker
    }

    /// Send `signal` (USR1 takes the brokers down, USR2 brings them up) to the process.
    fn signal(&self, signal: &str) {
        let status = Command::new("kill").arg(format!("-{signal}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(status.success(), "kill -{signal} of the dev broker failed");
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        common::terminate(&mut self.child);
    }
}

#[test]
fn broker_stopped_and_started() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let broker = OwnBroker::start();
    let crawl = BookCrawl::start("fault_broker", &[("KAFKA_BROKERS", &broker.address)], 20);

    broker.signal("USR1");
    let down = wait_readiness(&admin_readyz(&crawl.cluster), 503, "broker", Duration::from_secs(30));
    println!("admin /readyz while the broker is down: {down}");
    let down = wait_readiness(&crawl.cluster.scraper_readyz(0), 503, "broker", Duration::from_secs(30));
    println!("scraper /readyz while the broker is down: {down}");
    let fetched_at_outage = crawl.fetched();
    thread::sleep(Duration::from_secs(5));
    broker.signal("USR2");
    wait_readiness(&admin_readyz(&crawl.cluster), 200, "", Duration::from_secs(60));
    wait_readiness(&crawl.cluster.scraper_readyz(0), 200, "", Duration::from_secs(60));

    assert!(
        fetched_at_outage < crawl.expected["urls_fetched"].as_i64().unwrap(),
        "the crawl was done before the outage, so nothing was tested"
    );
    crawl.assert_complete();
}

#[test]
fn scraper_not_ready_while_broker_unreachable() {
    let port = free_port();
    let log = std::fs::File::create(std::env::temp_dir().join(common::unique("not_ready"))).unwrap();
    let mut scraper = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_open-ahrefs"))
            .arg("scraper")
            .env("KAFKA_BROKERS", "127.0.0.1:1")
            .env("SCRAPER_METRICS_LISTEN", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let readyz = format!("http://127.0.0.1:{port}/readyz");

    let body = wait_readiness(&readyz, 503, "Kafka broker is unreachable", Duration::from_secs(30));
    let reasons = body["reasons"].to_string();
    assert!(reasons.contains("startup: waiting for the Kafka broker"), "{body}");
    assert!(reasons.contains("broker: the Kafka broker is unreachable"), "{body}");
    let (status, _) = get_json(&format!("http://127.0.0.1:{port}/healthz")).expect("/healthz did not answer");
    assert_eq!(status, 200, "liveness must not depend on the broker");

    let (status, took) =
        common::terminate_within(&mut scraper.0, SIGTERM_EXIT_LIMIT).expect("the scraper did not exit in time");
    assert!(status.success(), "the scraper exited with {status} after {took:?}");
}

#[test]
fn database_errors_name_the_cause() {
    let rank = |database_url: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_open-ahrefs"))
            .arg("rank")
            .env("DATABASE_URL", database_url)
            .output()
            .unwrap();
        assert!(!output.status.success(), "rank succeeded on {database_url}");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };

    let no_server = rank(&format!("postgres://postgres@127.0.0.1:{}/open_ahrefs", free_port()));
    assert!(no_server.contains("cannot connect to PostgreSQL at DATABASE_URL="), "{no_server}");
    assert!(no_server.contains("Connection refused"), "{no_server}");

    let garbage = rank("garbage");
    assert!(garbage.contains("not a valid connection URL: relative URL without a base"), "{garbage}");
    assert_eq!(garbage.matches("relative URL without a base").count(), 1, "{garbage}");
}

/// A child process that is killed when the test ends early.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
