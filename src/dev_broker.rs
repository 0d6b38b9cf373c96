//! An in-memory Kafka-API broker for development and tests: librdkafka's mock cluster,
//! hosted by this process and reachable over TCP by other processes.
//!
//! It keeps nothing on disk and is not a production broker; set KAFKA_BROKERS to a real
//! Kafka cluster for that.
//!
//! NOTE: librdkafka 2.12's mock cluster keeps at most 5 MB or 100,000 messages per
//! partition and drops the oldest even when no consumer has read them, which a fixed
//! constant in librdkafka decides. A result it drops is recovered when the URL's lease
//! runs out, so crawls through it finish late but complete.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use rdkafka::mocking::MockCluster;

#[derive(Debug, Clone, Args)]
pub struct DevBrokerArgs {
    /// Number of mock brokers in the cluster.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=5))]
    pub brokers: i32,

    /// File to write the bootstrap servers to once the cluster listens.
    #[arg(long)]
    pub bootstrap_file: Option<PathBuf>,

    /// Topics to create at start; others are created on first use with 4 partitions.
    #[arg(long = "topic", default_values_t = ["topic_url".to_string(), "topic_res".to_string()])]
    pub topics: Vec<String>,

    /// Partitions of each topic created at start.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub partitions: i32,
}

/// Run the mock cluster until SIGTERM or SIGINT.
pub async fn run(args: DevBrokerArgs, mut signals: crate::shutdown::TerminationSignals) -> anyhow::Result<()> {
    let cluster = MockCluster::new(args.brokers).context("starting librdkafka's mock cluster")?;
    for topic in &args.topics {
        cluster
            .create_topic(topic, args.partitions, args.brokers.min(3))
            .with_context(|| format!("creating topic {topic} in the mock cluster"))?;
    }
    let bootstrap = cluster.bootstrap_servers();
    if let Some(path) = &args.bootstrap_file {
        std::fs::write(path, &bootstrap).with_context(|| format!("writing {}", path.display()))?;
    }
    println!("{bootstrap}");
    log::info!("in-memory development broker listening at {bootstrap}");

    let signal = signals.recv().await;
    log::info!("{signal} received; stopping the development broker, its messages are gone");
    drop(cluster);
    Ok(())
}
