//! The console's stylesheet and script, embedded in the binary.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

const STYLESHEET: &str = include_str!("static/console.css");
const SCRIPT: &str = include_str!("static/console.js");

/// The paths carry the crate version, so a browser that cached the files for a day
/// fetches them again after an upgrade.
pub const STYLESHEET_PATH: &str = concat!("/console/static/console-", env!("CARGO_PKG_VERSION"), ".css");
pub const SCRIPT_PATH: &str = concat!("/console/static/console-", env!("CARGO_PKG_VERSION"), ".js");

/// Serve an embedded file by the name in its path.
pub async fn serve(name: web::Path<String>) -> HttpResponse {
    let path = format!("/console/static/{name}");
    let (body, content_type) = if path == STYLESHEET_PATH {
        (STYLESHEET, "text/css; charset=utf-8")
    } else if path == SCRIPT_PATH {
        (SCRIPT, "text/javascript; charset=utf-8")
    } else {
        return HttpResponse::NotFound().content_type("text/plain; charset=utf-8").body("not found");
    };
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .content_type(content_type)
        .body(body)
}
