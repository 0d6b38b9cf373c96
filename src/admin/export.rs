//! CSV and JSON exports of pages, links, backlinks and audit findings, streamed from
//! PostgreSQL row by row so that an export of any size takes constant memory.

use actix_web::{web, HttpResponse};
use futures_util::StreamExt;
use serde::Deserialize;
use sqlx::PgPool;
use tokio::sync::mpsc;

use super::api::{parse_id, ApiError, ApiSettings};
use super::links_api::{parse_target, TargetQuery};
use crate::db::links::Target;

/// Chunks buffered between the database reader and the HTTP response; the reader waits
/// when the client reads slower, which is what keeps memory flat.
const CHANNEL_CHUNKS: usize = 16;

/// Rows gathered into one chunk of the response body.
const ROWS_PER_CHUNK: usize = 256;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/exports/{name}", web::get().to(export));
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Json,
}

#[derive(Deserialize)]
struct ExportQuery {
    site_id: Option<String>,
    #[serde(flatten)]
    target: TargetQuery,
}

/// The columns and SQL of one export; every column is selected as text.
struct ExportSql {
    columns: &'static [Column],
    sql: String,
    bind: Bind,
}

/// One column of an export, with the JSON type its text stands for. CSV has no types and
/// takes the text as it is.
struct Column {
    name: &'static str,
    kind: ColumnKind,
}

#[derive(Clone, Copy)]
enum ColumnKind {
    Text,
    /// An integer, such as a status code or a byte count.
    Integer,
    /// `true` or `false`.
    Boolean,
}

const fn text(name: &'static str) -> Column {
    Column { name, kind: ColumnKind::Text }
}

const fn integer(name: &'static str) -> Column {
    Column { name, kind: ColumnKind::Integer }
}

const fn boolean(name: &'static str) -> Column {
    Column { name, kind: ColumnKind::Boolean }
}

impl Column {
    /// Convert one field's text to its JSON value. Text that does not parse as the
    /// column's type stays a string, so that no value is lost.
    fn json_value(&self, value: Option<String>) -> serde_json::Value {
        let Some(value) = value else {
            return serde_json::Value::Null;
        };
        match self.kind {
            ColumnKind::Integer => value.parse::<i64>().map_or(serde_json::Value::String(value), Into::into),
            ColumnKind::Boolean => match value.as_str() {
                "true" => true.into(),
                "false" => false.into(),
                _ => value.into(),
            },
            ColumnKind::Text => value.into(),
        }
    }
}

/// A timestamp in the API's form, RFC 3339 in UTC with microseconds, as export text.
macro_rules! rfc3339 {
    ($column:literal) => {
        concat!("to_char(", $column, " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
    };
}

enum Bind {
    Site(i64),
    Target(Target),
}

/// Stream a site's or a target's rows as CSV or JSON.
#[utoipa::path(
    get, path = "/api/v1/exports/{name}", tag = "links",
    params(
        ("name" = String, Path, description = "The export and its format, such as pages.csv or backlinks.json"),
        ("site_id" = Option<i64>, Query, description = "Site id, for the exports of a site", minimum = 1),
        ("target" = Option<String>, Query, description = "A URL, host or domain; `url` is an older name for it"), ("mode" = Option<String>, Query, description = "url, host or domain; without it a value with a scheme is a URL, else a domain"),
    ),
    responses(
        (status = 200, description = "The rows", content((String = "text/csv"), (serde_json::Value = "application/json"))),
        (status = 404, description = "No such export, or no site has this id", body = super::openapi::ErrorBody),
        (status = 422, description = "A parameter is invalid", body = super::openapi::ErrorBody),
    )
)]
async fn export(
    pool: web::Data<PgPool>,
    settings: web::Data<ApiSettings>,
    path: web::Path<String>,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    let (kind, format) = match path.rsplit_once('.') {
        Some((kind, "csv")) => (kind.to_string(), Format::Csv),
        Some((kind, "json")) => (kind.to_string(), Format::Json),
        _ => return Err(ApiError::Invalid(format!("export '{path}' must end in .csv or .json"))),
    };
    let site = || -> Result<i64, ApiError> {
        let raw = query.site_id.as_deref().ok_or_else(|| ApiError::Invalid("site_id is missing".into()))?;
        parse_id(raw, "site_id")
    };
    let spec = match kind.as_str() {
        "pages" => pages_sql(site()?),
        "links" => links_sql(site()?),
        "backlinks" => backlinks_sql(parse_target(&query.target, &settings)?),
        "audit" => audit_sql(site()?),
        other => {
            return Err(ApiError::NotFound(format!("no export named '{other}'; try pages, links, backlinks or audit")))
        }
    };

    if let Bind::Site(id) = spec.bind {
        super::api::require_site(&pool, id).await?;
    }

    let (sender, receiver) = mpsc::channel::<Result<web::Bytes, std::io::Error>>(CHANNEL_CHUNKS);
    let pool = pool.get_ref().clone();
    actix_web::rt::spawn(stream_rows(pool, spec, format, sender));
    let body = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });

    let (content_type, extension) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
        Format::Json => ("application/json", "json"),
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Content-Disposition", format!("attachment; filename=\"{kind}.{extension}\"")))
        .streaming(body))
}

/// Read the export's rows and send them as chunks until the client goes away.
async fn stream_rows(
    pool: PgPool,
    spec: ExportSql,
    format: Format,
    sender: mpsc::Sender<Result<web::Bytes, std::io::Error>>,
) {
    let mut chunk = String::new();
    match format {
        Format::Csv => chunk.push_str(&csv_line(spec.columns.iter().map(|c| Some(c.name)))),
        Format::Json => chunk.push('['),
    }

    let query = sqlx::query_scalar::<_, Vec<Option<String>>>(&spec.sql);
    let query = match &spec.bind {
        Bind::Site(id) => query.bind(*id),
        Bind::Target(Target::Url(value) | Target::Host(value) | Target::Domain(value)) => query.bind(value.clone()),
    };
    let mut rows = query.fetch(&pool);
    let mut count = 0usize;
    while let Some(row) = rows.next().await {
        let values = match row {
            Ok(values) => values,
            Err(error) => {
                log::error!("export stopped by a database error: {error}");
                let _ = sender.send(Err(std::io::Error::other(error.to_string()))).await;
                return;
            }
        };
        match format {
            Format::Csv => chunk.push_str(&csv_line(values.iter().map(|v| v.as_deref()))),
            Format::Json => {
                if count > 0 {
                    chunk.push(',');
                }
                let object: serde_json::Map<String, serde_json::Value> = spec
                    .columns
                    .iter()
                    .zip(values)
                    .map(|(column, value)| (column.name.to_string(), column.json_value(value)))
                    .collect();
                chunk.push_str(&serde_json::Value::Object(object).to_string());
            }
        }
        count += 1;
        if count.is_multiple_of(ROWS_PER_CHUNK)
            && sender.send(Ok(web::Bytes::from(std::mem::take(&mut chunk)))).await.is_err()
        {
            return;
        }
    }
    if format == Format::Json {
        chunk.push(']');
    }
    let _ = sender.send(Ok(web::Bytes::from(chunk))).await;
}

/// One CSV record (RFC 4180): fields with a comma, quote or line break are quoted.
fn csv_line<'a>(values: impl Iterator<Item = Option<&'a str>>) -> String {
    let fields: Vec<String> = values
        .map(|value| {
            let value = value.unwrap_or_default();
            if value.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", value.replace('"', "\"\""))
            } else {
                value.to_string()
            }
        })
        .collect();
    format!("{}\r\n", fields.join(","))
}

const PAGE_COLUMNS: &[Column] = &[
    text("url"),
    integer("status"),
    text("error_kind"),
    text("content_type"),
    text("title"),
    text("h1"),
    text("meta_description"),
    text("canonical"),
    boolean("noindex"),
    boolean("nofollow"),
    text("redirect_to"),
    integer("depth"),
    integer("response_time_ms"),
    integer("body_bytes"),
    text("fetched_at"),
];

fn pages_sql(site_id: i64) -> ExportSql {
    ExportSql {
        columns: PAGE_COLUMNS,
        sql: concat!(
            "SELECT ARRAY[u.url, p.status::text, p.error_kind, p.content_type, p.title, p.h1, p.meta_description,
                          p.canonical, p.noindex::text, p.nofollow::text, r.url, u.depth::text,
                          p.response_time_ms::text, p.body_bytes::text, ",
            rfc3339!("p.fetched_at"),
            "]
             FROM pages p JOIN urls u ON u.id = p.url_id LEFT JOIN urls r ON r.id = p.redirect_url_id
             WHERE p.site_id = $1 AND u.kind = 'page'
             ORDER BY p.url_id"
        )
        .into(),
        bind: Bind::Site(site_id),
    }
}

const LINK_COLUMNS: &[Column] = &[
    text("source_url"),
    text("target_url"),
    text("anchor_text"),
    text("href"),
    boolean("nofollow"),
    boolean("ugc"),
    boolean("sponsored"),
    text("first_seen"),
    text("last_seen"),
    text("lost_at"),
];

const LINK_VALUES: &str = concat!(
    "ARRAY[s.url, t.url, l.anchor_text, l.href, l.nofollow::text, l.ugc::text, l.sponsored::text, ",
    rfc3339!("l.first_seen"),
    ", ",
    rfc3339!("l.last_seen"),
    ", ",
    rfc3339!("l.lost_at"),
    "]"
);

fn links_sql(site_id: i64) -> ExportSql {
    ExportSql {
        columns: LINK_COLUMNS,
        sql: format!(
            "SELECT {LINK_VALUES}
             FROM pages sp JOIN links l ON l.source_url_id = sp.url_id
             JOIN urls s ON s.id = l.source_url_id JOIN urls t ON t.id = l.target_url_id
             WHERE sp.site_id = $1
             ORDER BY l.id"
        ),
        bind: Bind::Site(site_id),
    }
}

fn backlinks_sql(target: Target) -> ExportSql {
    let column = match target {
        Target::Url(_) => "t.url",
        Target::Host(_) => "t.host",
        Target::Domain(_) => "t.domain",
    };
    ExportSql {
        columns: LINK_COLUMNS,
        sql: format!(
            "SELECT {LINK_VALUES}
             FROM links l JOIN urls s ON s.id = l.source_url_id JOIN urls t ON t.id = l.target_url_id
             WHERE {column} = $1 AND l.source_url_id <> l.target_url_id
             ORDER BY l.id"
        ),
        bind: Bind::Target(target),
    }
}

const AUDIT_COLUMNS: &[Column] = &[text("code"), text("severity"), text("url"), text("detail")];

fn audit_sql(site_id: i64) -> ExportSql {
    ExportSql { columns: AUDIT_COLUMNS, sql: crate::db::audit::export_sql(), bind: Bind::Site(site_id) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_values_take_column_types() {
        assert_eq!(integer("status").json_value(Some("404".into())), serde_json::json!(404));
        assert_eq!(integer("status").json_value(None), serde_json::Value::Null);
        assert_eq!(boolean("nofollow").json_value(Some("false".into())), serde_json::json!(false));
        assert_eq!(text("url").json_value(Some("123".into())), serde_json::json!("123"));
        assert_eq!(integer("depth").json_value(Some("n/a".into())), serde_json::json!("n/a"), "no value is lost");
    }

    #[test]
    fn csv_quotes_only_when_needed() {
        let line = csv_line([Some("plain"), Some("a,b"), Some("say \"hi\""), None, Some("two\nlines")].into_iter());
        assert_eq!(line, "plain,\"a,b\",\"say \"\"hi\"\"\",,\"two\nlines\"\r\n");
    }
}
