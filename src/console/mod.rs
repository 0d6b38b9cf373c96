//! The web console: HTML pages served by the admin process at `/console/`, in English and
//! Russian, for people who work in a browser.
//!
//! The pages are askama templates compiled into the binary, with the stylesheet and a
//! small script embedded beside them. Handlers read the database through the same `db`
//! functions as the JSON API. When `ADMIN_TOKEN` is set, a login page requests it once
//! and a session cookie keeps the login. Every form that changes state carries a CSRF
//! token bound to the session.

mod assets;
mod audit;
mod format;
mod i18n;
mod links;
mod login;
mod pages;
mod session;
mod sites;
mod templates;
#[cfg(test)]
mod tests;
mod visitor;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse};

use crate::config::AdminSettings;
use crate::url::UrlPolicy;
use session::SessionKeys;
use visitor::{ConsoleError, Guest};

/// Settings and the session signing key that the console's handlers share.
pub struct ConsoleState {
    /// The token a login must present; `None` leaves the console open to anyone who
    /// reaches the admin address.
    admin_token: Option<String>,
    url_policy: UrlPolicy,
    keys: SessionKeys,
}

/// The console, made once per process so that every HTTP worker shares one signing key.
#[derive(Clone)]
pub struct Console {
    state: web::Data<ConsoleState>,
}

impl Console {
    pub fn new(settings: &AdminSettings) -> Self {
        // The admin logs a warning at start when ADMIN_TOKEN is not set.
        let admin_token = settings.admin_token.as_ref().map(|token| token.expose().to_string());
        Console {
            state: web::Data::new(ConsoleState {
                admin_token,
                url_policy: settings.urls.policy(),
                keys: SessionKeys::random(),
            }),
        }
    }

    /// Register the console's routes, and `/` redirecting to it.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.route("/", web::get().to(redirect_to_console)).service(
            web::scope("/console")
                .app_data(self.state.clone())
                .app_data(web::FormConfig::default().error_handler(form_error))
                .route("", web::get().to(redirect_to_console))
                .route("/", web::get().to(sites::list))
                .route("/sites", web::post().to(sites::add))
                .route("/sites/{site_id}", web::get().to(sites::show))
                .route("/sites/{site_id}/progress.json", web::get().to(sites::progress))
                .route("/sites/{site_id}/recrawl", web::post().to(sites::recrawl))
                .route("/sites/{site_id}/pages", web::get().to(pages::list))
                .route("/sites/{site_id}/pages/{url_id}", web::get().to(pages::show))
                .route("/sites/{site_id}/audit", web::get().to(audit::show))
                .route("/backlinks", web::get().to(links::backlinks))
                .route("/login", web::get().to(login::form))
                .route("/login", web::post().to(login::submit))
                .route("/logout", web::post().to(login::logout))
                .route("/static/{name}", web::get().to(assets::serve))
                .default_service(web::to(not_found)),
        );
    }
}

/// Render the error page, in the visitor's language, for a form body that cannot be read.
/// A browser never sends one, so it is a script's mistake.
fn form_error(error: actix_web::error::UrlencodedError, req: &actix_web::HttpRequest) -> actix_web::Error {
    let lang = visitor::request_lang(req);
    let (status, key) = match error {
        actix_web::error::UrlencodedError::ContentType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "error.form_type"),
        actix_web::error::UrlencodedError::Overflow { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "error.form_too_large"),
        _ => (StatusCode::BAD_REQUEST, "error.form_invalid"),
    };
    ConsoleError::page(lang, status, key).into()
}

async fn redirect_to_console() -> HttpResponse {
    HttpResponse::Found().insert_header((header::LOCATION, "/console/")).finish()
}

async fn not_found(guest: Guest) -> Result<HttpResponse, ConsoleError> {
    Err(ConsoleError::page(guest.lang, StatusCode::NOT_FOUND, "error.not_found"))
}

/// Parse a positive id from a path segment, or return a 404 page.
fn parse_id(raw: &str, lang: i18n::Lang) -> Result<i64, ConsoleError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ConsoleError::page(lang, StatusCode::NOT_FOUND, "error.not_found"))
}
