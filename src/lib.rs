//! Open Ahrefs: a self-hosted crawler and link index.
//!
//! The `open-ahrefs` binary runs one role per process: `admin` (frontier, DbWriter, HTTP
//! API) or `scraper` (fetches and extracts pages), joined only by Kafka topics whose
//! message types live in [`messages`]. The library exposes the modules so that benchmarks
//! and tests can drive the pure parts directly.

pub mod admin;
pub mod client;
pub mod config;
pub mod console;
pub mod db;
pub mod dev_broker;
pub mod extract;
pub mod kafka;
pub mod logging;
pub mod messages;
pub mod metrics;
pub mod rank;
pub mod readiness;
pub mod scope;
pub mod scraper;
pub mod shutdown;
pub mod url;
