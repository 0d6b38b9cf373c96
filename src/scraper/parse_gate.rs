//! ParseGate: bounds the HTML and sitemap parses that run at once in one scraper process,
//! by count and by the size of the bodies being parsed.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::messages::{FetchErrorKind, FetchFailure};

/// KiB of body that may be parsed at once in one process. A parsed page takes about twelve
/// times its body in memory: 51 MB for the 4.4 MB `reference/print.html` of the Rust
/// documentation, measured as the growth of VmHWM in a debug build. Two large pages parsed
/// together would so double the scraper's peak. A body over the budget is parsed alone.
const PARSE_BUDGET_KIB: u32 = 4 * 1024;

/// The parse slots and the byte budget of one scraper process, shared by its FetchWorkers.
#[derive(Debug, Clone)]
pub struct ParseGate {
    /// One slot per FetchWorker thread: a parse that waits for a core should not hold its
    /// tree yet.
    slots: Arc<Semaphore>,
    budget: Arc<Semaphore>,
}

impl ParseGate {
    pub fn new(threads: usize) -> Self {
        Self { slots: Arc::new(Semaphore::new(threads)), budget: Arc::new(Semaphore::new(PARSE_BUDGET_KIB as usize)) }
    }

    /// Run `parse` of a body of `body_bytes` on tokio's blocking threads once a slot and
    /// its share of the budget are free. A large body takes seconds of CPU, and the
    /// worker's thread must keep serving the other fetches and their timeouts.
    pub async fn run<T: Send + 'static>(
        &self,
        body_bytes: usize,
        parse: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, FetchFailure> {
        let kib = u32::try_from(body_bytes / 1024 + 1).unwrap_or(u32::MAX).min(PARSE_BUDGET_KIB);
        let _share = self.budget.acquire_many(kib).await.map_err(|error| parse_failed(&error))?;
        let _slot = self.slots.acquire().await.map_err(|error| parse_failed(&error))?;

        tokio::task::spawn_blocking(parse).await.map_err(|error| parse_failed(&error))
    }
}

/// Log and describe a parse that could not run or did not finish: a closed gate, or a
/// parse that panicked.
fn parse_failed(error: &dyn std::fmt::Display) -> FetchFailure {
    log::error!("parsing a response body failed: {error}");
    FetchFailure { error_kind: FetchErrorKind::InvalidResponse, message: format!("parsing the body failed: {error}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Run two parses of `bytes` each at once and return the maximum that overlapped.
    async fn overlap(gate: &ParseGate, bytes: usize) -> usize {
        let running = Arc::new(AtomicUsize::new(0));
        let max_running = Arc::new(AtomicUsize::new(0));
        let parse = |running: Arc<AtomicUsize>, max_running: Arc<AtomicUsize>| {
            move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                max_running.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(50));
                running.fetch_sub(1, Ordering::SeqCst);
            }
        };
        let first = gate.run(bytes, parse(running.clone(), max_running.clone()));
        let second = gate.run(bytes, parse(running.clone(), max_running.clone()));
        let (a, b) = tokio::join!(first, second);
        assert!(a.is_ok());
        assert!(b.is_ok());
        max_running.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn small_bodies_parse_together() {
        assert_eq!(overlap(&ParseGate::new(2), 100 * 1024).await, 2);
    }

    #[tokio::test]
    async fn large_bodies_parse_one_at_a_time() {
        assert_eq!(overlap(&ParseGate::new(2), 3 * 1024 * 1024).await, 1);
    }

    #[tokio::test]
    async fn body_over_budget_still_parses() {
        let gate = ParseGate::new(1);
        let parsed = gate.run(50 * 1024 * 1024, || 7).await;
        assert_eq!(parsed.ok(), Some(7));
    }

    #[tokio::test]
    async fn slots_limit_small_parses() {
        assert_eq!(overlap(&ParseGate::new(1), 1024).await, 1);
    }
}
