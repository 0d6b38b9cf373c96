//! An in-memory Kafka-API broker for development and tests: librdkafka's mock cluster,
//! hosted by this process and reachable over TCP by other processes.
//!
//! It keeps nothing on disk and is not a production broker; set KAFKA_BROKERS to a real
//! Kafka cluster for that.
//!
//! SIGUSR1 takes every broker of the cluster down and SIGUSR2 brings them up again, so that
//! tests and developers can simulate a broker outage. A broker that is down closes its
//! connections and rejects new ones, but keeps its partitions, committed offsets and
//! consumer groups, as a durable Kafka broker keeps them across a restart.
//!
//! NOTE: librdkafka 2.12's mock cluster keeps at most 5 MB or 100,000 messages per
//! partition and drops the oldest even when no consumer has read them, which a fixed
//! constant in librdkafka decides. A result it drops is recovered when the URL's lease
//! runs out, so crawls through it finish late but complete.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use rdkafka::mocking::MockCluster;
use tokio::signal::unix::{signal, SignalKind};

#[derive(Debug, Clone, Args)]
#[command(after_help = "Signals: SIGUSR1 takes every broker down (connections are closed and new ones \
rejected, while topics, offsets and consumer groups are kept), SIGUSR2 brings them up again, \
and SIGTERM or SIGINT stops the cluster and discards its messages.")]
pub struct DevBrokerArgs {
    /// Number of mock brokers in the cluster.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=5))]
    pub brokers: i32,

    /// File to write the bootstrap servers to once the cluster listens.
    #[arg(long)]
    pub bootstrap_file: Option<PathBuf>,

    /// Topics to create at start, each with its dead-letter topic `<topic>.dlq`; others
    /// are created on first use with 4 partitions.
    #[arg(long = "topic", default_values_t = ["topic_url".to_string(), "topic_res".to_string()])]
    pub topics: Vec<String>,

    /// Partitions of each topic created at start.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub partitions: i32,
}

/// Run the mock cluster until SIGTERM or SIGINT, taking its brokers down on SIGUSR1 and up
/// on SIGUSR2.
pub async fn run(args: DevBrokerArgs, mut signals: crate::shutdown::TerminationSignals) -> anyhow::Result<()> {
    let mut outage_start = signal(SignalKind::user_defined1()).context("installing the SIGUSR1 handler")?;
    let mut outage_end = signal(SignalKind::user_defined2()).context("installing the SIGUSR2 handler")?;

    let cluster = MockCluster::new(args.brokers).context("starting librdkafka's mock cluster")?;
    // The mock cluster does not support CreateTopics, so a process that finds a topic
    // missing waits for that request to time out before it falls back to automatic
    // creation. Creating the dead-letter topics here too spares every process that wait.
    let dead_letters = args.topics.iter().map(|topic| crate::kafka::dead_letter_topic(topic));
    for topic in args.topics.iter().cloned().chain(dead_letters) {
        cluster
            .create_topic(&topic, args.partitions, args.brokers.min(3))
            .with_context(|| format!("creating topic {topic} in the mock cluster"))?;
    }
    let bootstrap = cluster.bootstrap_servers();
    if let Some(path) = &args.bootstrap_file {
        std::fs::write(path, &bootstrap).with_context(|| format!("writing {}", path.display()))?;
    }
    println!("{bootstrap}");
    log::info!("in-memory development broker listening at {bootstrap}");

    loop {
        tokio::select! {
            signal = signals.recv() => {
                log::info!("{signal} received; stopping the development broker, its messages are gone");
                break;
            }
            _ = outage_start.recv() => set_brokers_up(&cluster, args.brokers, false),
            _ = outage_end.recv() => set_brokers_up(&cluster, args.brokers, true),
        }
    }
    drop(cluster);
    Ok(())
}

/// Bring brokers 1 to `brokers` up or take them down, logging each. A broker that fails to
/// change is logged and left as it is, because the cluster still serves the others.
fn set_brokers_up<C: rdkafka::ClientContext>(cluster: &MockCluster<'_, C>, brokers: i32, up: bool) {
    let (signal, state) = if up { ("SIGUSR2", "up") } else { ("SIGUSR1", "down") };
    for id in 1..=brokers {
        let changed = if up { cluster.broker_up(id) } else { cluster.broker_down(id) };
        match changed {
            Ok(()) => log::info!("{signal} received; mock broker {id} is {state}"),
            Err(error) => log::error!("{signal} received; setting mock broker {id} {state} failed: {error}"),
        }
    }
}
