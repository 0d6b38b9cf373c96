//! PostgreSQL access: connecting, migrating, and the queries of each concern.

pub mod audit;
mod binary_copy;
pub mod depth;
pub mod discover;
pub mod frontier;
pub mod links;
pub mod rank;
pub mod read;
pub mod sites;
pub mod url_cache;
pub mod write;

use std::time::Duration;

use anyhow::Context as _;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::Connection as _;

use crate::config::DatabaseSettings;

/// Open a connection pool, failing fast with the setting's name when PostgreSQL is not there.
pub async fn connect(settings: &DatabaseSettings) -> anyhow::Result<PgPool> {
    let context = || format!("cannot connect to PostgreSQL at DATABASE_URL={}", redact(&settings.database_url));
    let options: PgConnectOptions = settings.database_url.parse().map_err(|error| match error {
        // The error's own text repeats its source, which anyhow prints again.
        sqlx::Error::Configuration(source) => {
            anyhow::anyhow!("not a valid connection URL: {source}").context(context())
        }
        other => anyhow::Error::new(other).context(context()),
    })?;

    let pool = PgPoolOptions::new()
        .max_connections(settings.database_max_connections)
        .acquire_timeout(CONNECT_TIMEOUT)
        .connect_with(options.clone())
        .await;
    match pool {
        Ok(pool) => Ok(pool),
        // The pool retries until its timeout and then reports only that, so one direct
        // connection names the cause, such as a refused connection or a wrong password.
        Err(sqlx::Error::PoolTimedOut) => {
            let cause = match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options)).await {
                Ok(Err(error)) => error.to_string(),
                Ok(Ok(_)) => "the server accepted a connection only after the timeout".to_string(),
                Err(_) => "the server did not answer".to_string(),
            };
            Err(anyhow::anyhow!("{cause} (no connection within {} s)", CONNECT_TIMEOUT.as_secs()).context(context()))
        }
        Err(error) => Err(anyhow::Error::new(error).context(context())),
    }
}

/// How long the first connection of a pool may take before start-up fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Apply the migrations compiled into this binary, then fill the registrable domain of
/// URLs stored before it existed.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::migrate!("./migrations").run(pool).await.context("applying database migrations")?;
    backfill_domains(pool).await.context("filling the registrable domains of stored URLs")?;
    Ok(())
}

/// The public suffix list lives in this binary, not in PostgreSQL, so the domain column is
/// filled here, in batches, for rows that lack it.
async fn backfill_domains(pool: &PgPool) -> Result<(), sqlx::Error> {
    loop {
        let hosts: Vec<String> = sqlx::query_scalar("SELECT DISTINCT host FROM urls WHERE domain IS NULL LIMIT 1000")
            .fetch_all(pool)
            .await?;
        if hosts.is_empty() {
            return Ok(());
        }
        let domains: Vec<String> = hosts.iter().map(|h| crate::url::registrable_domain(h)).collect();
        sqlx::query(
            "UPDATE urls SET domain = t.domain FROM UNNEST($1::text[], $2::text[]) AS t(host, domain)
             WHERE urls.host = t.host AND urls.domain IS NULL",
        )
        .bind(&hosts)
        .bind(&domains)
        .execute(pool)
        .await?;
    }
}

/// A connection URL with its password replaced, for messages.
pub fn redact(database_url: &str) -> String {
    match url::Url::parse(database_url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "<not a valid URL>".to_string(),
    }
}

/// Whether an error may go away by itself (a lost connection, a restarting server), as
/// opposed to one caused by the data, which fails again on every retry.
pub fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            // 08: connection exception, 53: insufficient resources, 57P0x: server shutting
            // down, 40001/40P01: serialization failure and deadlock.
            code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57P0")
                || code == "40001"
                || code == "40P01"
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_password() {
        assert_eq!(redact("postgres://user:secret@db:5432/x"), "postgres://user:***@db:5432/x");
        assert_eq!(redact("postgres://db/x"), "postgres://db/x");
        assert_eq!(redact("::"), "<not a valid URL>");
    }
}
