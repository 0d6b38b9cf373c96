//! Per-host politeness: how many requests may be open to one host, and how long to wait
//! between two of them.
//!
//! Every URL of a host is keyed by that host on Kafka, so it lands on one partition and
//! so on one scraper process, and KafkaIngest hands every URL of a host to the same
//! FetchWorker. The gate of a host therefore lives in one place, whatever the number of
//! scraper processes. The cost is that one host is crawled by one process: its pace is at
//! most `max_in_flight` requests per `delay`, however many scrapers run.

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Most hosts whose gate one worker keeps before idle gates are dropped.
const MAX_GATES: usize = 10_000;

/// The politeness settings of one scraper.
#[derive(Debug, Clone)]
pub struct PolitenessSettings {
    /// Most requests open to one host at a time.
    pub max_in_flight: usize,
    /// Least time between the starts of two requests to one host.
    pub min_delay: Duration,
    /// Largest `Crawl-delay` or `Retry-After` honoured; longer ones are cut to this.
    pub max_delay: Duration,
}

/// The gates of the hosts one FetchWorker crawls.
pub struct Politeness {
    settings: PolitenessSettings,
    hosts: std::cell::RefCell<HashMap<String, Rc<HostGate>>>,
}

struct HostGate {
    slots: Arc<Semaphore>,
    next_start: Cell<Instant>,
}

/// Permission to send one request to a host; the host's slot frees when it is dropped.
pub struct HostPermit {
    _slot: OwnedSemaphorePermit,
}

impl Politeness {
    pub fn new(settings: PolitenessSettings) -> Self {
        Self { settings, hosts: Default::default() }
    }

    /// Wait until a request to `host` may start, given the host's `Crawl-delay`.
    pub async fn acquire(&self, host: &str, crawl_delay: Option<Duration>) -> HostPermit {
        let gate = self.gate(host);
        // The semaphore is never closed, so acquiring cannot fail.
        let slot = match gate.slots.clone().acquire_owned().await {
            Ok(slot) => slot,
            Err(_) => unreachable!("host semaphores are never closed"),
        };

        let delay = crawl_delay
            .map_or(self.settings.min_delay, |d| d.min(self.settings.max_delay).max(self.settings.min_delay));
        loop {
            let now = Instant::now();
            let start = gate.next_start.get();
            if start <= now {
                gate.next_start.set(now + delay);
                break;
            }
            tokio::time::sleep(start - now).await;
        }
        HostPermit { _slot: slot }
    }

    /// Hold every request to `host` back for `pause` (after a 429 or 503), capped at the
    /// maximum delay.
    pub fn back_off(&self, host: &str, pause: Duration) {
        let gate = self.gate(host);
        let until = Instant::now() + pause.min(self.settings.max_delay);
        if until > gate.next_start.get() {
            gate.next_start.set(until);
        }
    }

    fn gate(&self, host: &str) -> Rc<HostGate> {
        let mut hosts = self.hosts.borrow_mut();
        if hosts.len() >= MAX_GATES && !hosts.contains_key(host) {
            // A gate with no request open and no wait pending holds nothing that a new
            // gate would not, so dropping it keeps the map bounded without loosening pacing.
            let now = Instant::now();
            let max_in_flight = self.settings.max_in_flight;
            hosts.retain(|_, gate| gate.slots.available_permits() < max_in_flight || gate.next_start.get() > now);
        }
        hosts
            .entry(host.to_string())
            .or_insert_with(|| {
                Rc::new(HostGate {
                    slots: Arc::new(Semaphore::new(self.settings.max_in_flight)),
                    next_start: Cell::new(Instant::now()),
                })
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn politeness(delay_ms: u64) -> Politeness {
        Politeness::new(PolitenessSettings {
            max_in_flight: 1,
            min_delay: Duration::from_millis(delay_ms),
            max_delay: Duration::from_secs(1),
        })
    }

    #[actix_rt::test]
    async fn requests_to_one_host_are_spaced() {
        let gates = politeness(50);
        let started = Instant::now();
        drop(gates.acquire("a", None).await);
        drop(gates.acquire("a", None).await);
        drop(gates.acquire("a", None).await);
        assert!(started.elapsed() >= Duration::from_millis(100), "{:?}", started.elapsed());
    }

    #[actix_rt::test]
    async fn hosts_do_not_wait_for_each_other() {
        let gates = politeness(200);
        let started = Instant::now();
        let _a = gates.acquire("a", None).await;
        let _b = gates.acquire("b", None).await;
        assert!(started.elapsed() < Duration::from_millis(100));
    }

    #[actix_rt::test]
    async fn crawl_delay_is_capped() {
        let gates = politeness(0);
        drop(gates.acquire("a", Some(Duration::from_secs(3600))).await);
        let started = Instant::now();
        drop(gates.acquire("a", Some(Duration::from_secs(3600))).await);
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(900) && waited < Duration::from_secs(2), "{waited:?}");
    }

    #[actix_rt::test]
    async fn back_off_delays_next_request() {
        let gates = politeness(0);
        gates.back_off("a", Duration::from_millis(150));
        let started = Instant::now();
        drop(gates.acquire("a", None).await);
        assert!(started.elapsed() >= Duration::from_millis(140));
    }
}
