//! Poison messages on both topics: each goes to `<topic>.dlq` with the reason in its
//! headers, is counted, and the partition it came from keeps moving.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{get_json, required_env, Canned, Cluster, FixtureServer};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;

/// KAFKA_MAX_MESSAGE_BYTES of the cluster under test, so that a 100 KiB message is too large.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The poison payloads and the error code each must be dead-lettered with.
fn poison() -> Vec<(&'static str, Vec<u8>)> {
    let oversized = format!(r#"{{"schema_version": 1, "padding": "{}"}}"#, "x".repeat(100 * 1024));
    vec![
        ("invalid_json", b"{not json".to_vec()),
        ("unsupported_version", br#"{"schema_version": 99, "url": "http://example.org/"}"#.to_vec()),
        ("invalid_fields", br#"{"schema_version": 1, "url": "http://example.org/"}"#.to_vec()),
        ("too_large", oversized.into_bytes()),
    ]
}

/// A dead-lettered message as read back: its headers and payload size.
#[derive(Debug)]
struct DeadLetter {
    topic: String,
    headers: HashMap<String, String>,
    payload_bytes: usize,
}

fn read_dead_letters(topics: &[&str], expected: usize) -> Vec<DeadLetter> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", required_env("KAFKA_BROKERS"))
        .set("group.id", common::unique("dlq_reader"))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(topics).unwrap();

    let mut letters = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while letters.len() < expected && Instant::now() < deadline {
        let Some(Ok(message)) = consumer.poll(Duration::from_millis(500)) else { continue };
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|h| (h.key.to_string(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        letters.push(DeadLetter {
            topic: message.topic().to_string(),
            headers,
            payload_bytes: message.payload().map_or(0, <[u8]>::len),
        });
    }
    letters
}

fn metric_sum(url: &str, name: &str) -> u64 {
    let text = ureq::get(url).call().unwrap().into_string().unwrap();
    text.lines()
        .filter(|line| line.starts_with(name) && !line.starts_with('#'))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[test]
fn poison_messages_go_to_dead_letter_topics() {
    let server = FixtureServer::start(
        None,
        HashMap::from([
            ("/".into(), Canned::html(r#"<title>Home</title><a href="/a">A</a>"#)),
            ("/a".into(), Canned::html("<title>A</title>")),
        ]),
        Duration::ZERO,
    );
    let max_bytes = MAX_MESSAGE_BYTES.to_string();
    let cluster = Cluster::start("dead_letters", 1, &[("KAFKA_MAX_MESSAGE_BYTES", &max_bytes)]);
    // The scraper creates the topics at start; it is ready once they exist.
    let deadline = Instant::now() + Duration::from_secs(60);
    while get_json(&cluster.scraper_readyz(0)).is_none_or(|(status, _)| status != 200) {
        assert!(Instant::now() < deadline, "the scraper did not become ready");
        std::thread::sleep(Duration::from_millis(200));
    }

    // Every poison message has the fixture's host as key, the key of its real messages, so
    // they share a partition: the crawl can only finish if that partition moves past them.
    let key = format!("127.0.0.1:{}", server.port);
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", required_env("KAFKA_BROKERS"))
        .set("message.max.bytes", (4 * MAX_MESSAGE_BYTES).to_string())
        .create()
        .unwrap();
    for topic in [&cluster.topic_url, &cluster.topic_res] {
        for (_, payload) in poison() {
            producer.send(BaseRecord::to(topic).key(&key).payload(&payload)).unwrap();
        }
    }
    producer.flush(Duration::from_secs(10)).unwrap();

    let site = cluster.add_site(&server.url("/"));
    let done = cluster.wait_done(site, Duration::from_secs(120));
    assert_eq!(done["urls_fetched"], 2, "{done}");

    let url_dlq = format!("{}.dlq", cluster.topic_url);
    let res_dlq = format!("{}.dlq", cluster.topic_res);
    let letters = read_dead_letters(&[&url_dlq, &res_dlq], 8);
    assert_eq!(letters.len(), 8, "{letters:#?}");
    for (dead_letter_topic, source) in [(&url_dlq, &cluster.topic_url), (&res_dlq, &cluster.topic_res)] {
        for (code, payload) in poison() {
            let letter = letters
                .iter()
                .find(|l| {
                    &l.topic == dead_letter_topic && l.headers.get("error_code").map(String::as_str) == Some(code)
                })
                .unwrap_or_else(|| panic!("no {code} message on {dead_letter_topic}: {letters:#?}"));
            assert_eq!(letter.headers["source_topic"], *source, "{letter:?}");
            assert!(!letter.headers["error"].is_empty(), "{letter:?}");
            assert_eq!(letter.headers["payload_bytes"], payload.len().to_string(), "{letter:?}");
            if code == "too_large" {
                assert_eq!(letter.payload_bytes, MAX_MESSAGE_BYTES, "{letter:?}");
                assert_eq!(letter.headers["payload_truncated"], "true", "{letter:?}");
            } else {
                assert_eq!(letter.payload_bytes, payload.len(), "{letter:?}");
            }
        }
    }
    let invalid_fields = letters.iter().find(|l| l.headers["error_code"] == "invalid_fields").unwrap();
    assert!(invalid_fields.headers["error"].contains("missing field"), "{invalid_fields:?}");

    let admin_metrics = format!("{}/metrics", cluster.api);
    let rejected = format!(
        "open_ahrefs_kafka_messages_rejected_total{{error_code=\"too_large\",topic=\"{}\"}}",
        cluster.topic_res
    );
    assert_eq!(metric_sum(&admin_metrics, &rejected), 1);
    let copied = format!(
        "open_ahrefs_kafka_messages_dead_lettered_total{{error_code=\"invalid_json\",topic=\"{}\"}}",
        cluster.topic_res
    );
    assert_eq!(metric_sum(&admin_metrics, &copied), 1);
    assert_eq!(metric_sum(&admin_metrics, "open_ahrefs_kafka_messages_dead_lettered_total"), 4);
    let scraper_metrics = &cluster.scraper_metrics[0];
    assert_eq!(metric_sum(scraper_metrics, "open_ahrefs_kafka_messages_dead_lettered_total"), 4);
    assert_eq!(metric_sum(scraper_metrics, "open_ahrefs_kafka_messages_rejected_total"), 4);
    cluster.assert_no_duplicates();
}
