//! Log output: human-readable text on a terminal, or one JSON object per line for Loki.

use std::io::Write as _;

use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// env_logger's text format, with key-value fields at the end.
    Text,
    /// One JSON object per line: ts, level, target, message, role and the record's fields
    /// (actor, site, url where known).
    Json,
}

/// Install the logger for the process; `role` is added to every JSON line.
pub fn init(format: LogFormat, role: &'static str) {
    let mut builder = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if format == LogFormat::Json {
        builder.format(move |buf, record| {
            let mut line = Map::new();
            line.insert("ts".into(), Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true).into());
            line.insert("level".into(), record.level().as_str().to_ascii_lowercase().into());
            line.insert("target".into(), record.target().into());
            line.insert("message".into(), record.args().to_string().into());
            line.insert("role".into(), role.into());
            let mut fields = FieldCollector(&mut line);
            // A visitor that only inserts into a map cannot fail.
            let _ = record.key_values().visit(&mut fields);
            writeln!(buf, "{}", Value::Object(line))
        });
    }
    builder.init();
}

struct FieldCollector<'a>(&'a mut Map<String, Value>);

impl<'kvs> log::kv::VisitSource<'kvs> for FieldCollector<'_> {
    fn visit_pair(&mut self, key: log::kv::Key<'kvs>, value: log::kv::Value<'kvs>) -> Result<(), log::kv::Error> {
        let value = match value.to_i64() {
            Some(number) => Value::from(number),
            None => Value::from(value.to_string()),
        };
        self.0.insert(key.as_str().to_string(), value);
        Ok(())
    }
}
