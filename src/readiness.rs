//! Readiness: whether a process can do its work now, served at `GET /readyz`.
//!
//! `/healthz` is liveness: it returns 200 while the process runs. `/readyz` returns 503
//! with the reasons while a dependency is unreachable or start-up is not finished, and
//! 200 once everything works, so that an orchestrator routes traffic only to ready
//! processes and an operator sees why one is waiting.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, HttpResponse};
use rdkafka::producer::{BaseProducer, Producer};
use serde::Serialize;
use sqlx::PgPool;

use crate::config::KafkaSettings;

/// Time between two checks of the dependencies.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Time one check may take before the dependency counts as unreachable.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The state of each part a process needs, by name (`startup`, `database`, `broker`).
#[derive(Clone, Default)]
pub struct Readiness {
    parts: Arc<Mutex<BTreeMap<&'static str, Result<(), String>>>>,
}

impl Readiness {
    /// Create a readiness with every part not ready yet, for the reason given.
    pub fn new(parts: &[(&'static str, &str)]) -> Self {
        let readiness = Self::default();
        for (part, reason) in parts {
            readiness.set(part, Err(reason.to_string()));
        }
        readiness
    }

    pub fn set(&self, part: &'static str, state: Result<(), String>) {
        let mut parts = self.parts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let previous = parts.insert(part, state.clone());
        match (previous, &state) {
            (Some(Err(_)), Ok(())) => log::info!("{part} is ready"),
            (Some(Ok(())), Err(reason)) => log::warn!("{part} is not ready: {reason}"),
            _ => {}
        }
    }

    /// Return the reasons the process is not ready, as `part: reason`; empty when it is ready.
    pub fn reasons(&self) -> Vec<String> {
        let parts = self.parts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        parts
            .iter()
            .filter_map(|(part, state)| state.as_ref().err().map(|reason| format!("{part}: {reason}")))
            .collect()
    }

    /// Check the broker, and the database when there is one, every second for the life of
    /// the process.
    pub fn spawn_monitor(&self, kafka: &KafkaSettings, pool: Option<PgPool>) -> anyhow::Result<()> {
        let client: BaseProducer = crate::kafka::client_config(kafka)
            .create()
            .map_err(|e| anyhow::anyhow!("creating the Kafka client of the readiness check: {e}"))?;
        let client = Arc::new(client);
        let readiness = self.clone();
        actix::spawn(async move {
            loop {
                readiness.set("broker", check_broker(client.clone()).await);
                if let Some(pool) = &pool {
                    readiness.set("database", check_database(pool).await);
                }
                tokio::time::sleep(CHECK_INTERVAL).await;
            }
        });
        Ok(())
    }
}

async fn check_broker(client: Arc<BaseProducer>) -> Result<(), String> {
    // fetch_metadata blocks its thread, so it runs off the actor runtime's thread.
    let fetched = tokio::task::spawn_blocking(move || client.client().fetch_metadata(None, CHECK_TIMEOUT)).await;
    match fetched {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(format!("the Kafka broker is unreachable: {error}")),
        Err(error) => Err(format!("the broker check failed: {error}")),
    }
}

async fn check_database(pool: &PgPool) -> Result<(), String> {
    match tokio::time::timeout(CHECK_TIMEOUT, sqlx::query("SELECT 1").execute(pool)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(format!("PostgreSQL is unreachable: {error}")),
        Err(_) => Err(format!("PostgreSQL did not answer within {CHECK_TIMEOUT:?}")),
    }
}

/// Readiness: whether the process can work now.
///
/// 200 `{"status": "ready"}`, or 503 `{"status": "not_ready", "reasons": [...]}` while
/// start-up or stop is under way or PostgreSQL or the Kafka broker is unreachable.
#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = ReadinessBody),
        (status = 503, description = "Not ready, with the reasons", body = ReadinessBody),
    )
)]
pub async fn readyz(readiness: web::Data<Readiness>) -> HttpResponse {
    let reasons = readiness.reasons();
    if reasons.is_empty() {
        HttpResponse::Ok().json(ReadinessBody { status: "ready", reasons: Vec::new() })
    } else {
        HttpResponse::ServiceUnavailable().json(ReadinessBody { status: "not_ready", reasons })
    }
}

/// The body of a `/readyz` response.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ReadinessBody {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    /// Why the process is not ready, one `part: reason` each; empty when it is ready.
    pub reasons: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_part_is() {
        let readiness = Readiness::new(&[("startup", "creating topics"), ("broker", "not checked yet")]);
        assert_eq!(readiness.reasons(), ["broker: not checked yet", "startup: creating topics"]);
        readiness.set("startup", Ok(()));
        readiness.set("broker", Ok(()));
        assert!(readiness.reasons().is_empty());
        readiness.set("broker", Err("connection refused".into()));
        assert_eq!(readiness.reasons(), ["broker: connection refused"]);
    }
}
