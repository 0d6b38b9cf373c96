//! Login with `ADMIN_TOKEN` and logout.

use std::time::{Duration, SystemTime};

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::session::tokens_match;
use super::templates::LoginPage;
use super::visitor::{ConsoleError, Guest, Visitor};

/// Delay before the response to a wrong token, which slows guessing from one connection.
// NOTE: this is no limit on parallel guesses; put the admin address behind a proxy that
// rate-limits, or keep it on a private network, when the token is short.
const FAILED_LOGIN_DELAY: Duration = Duration::from_millis(500);

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

pub async fn form(guest: Guest, query: web::Query<LoginQuery>) -> HttpResponse {
    let next = safe_next(query.next.as_deref());
    if guest.state.admin_token.is_none() || guest.session.is_some() {
        return guest.redirect(&next);
    }
    let page = LoginPage { frame: guest.frame(""), error: None, next };
    guest.render(StatusCode::OK, &page)
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: Option<String>,
    next: Option<String>,
}

pub async fn submit(mut guest: Guest, req: HttpRequest, form: web::Form<LoginForm>) -> HttpResponse {
    let next = safe_next(form.next.as_deref());
    let Some(configured) = guest.state.admin_token.clone() else {
        return guest.redirect(&next);
    };
    if tokens_match(&configured, form.token.as_deref().unwrap_or_default()) {
        guest.start_session();
        log::info!("console login from {}", peer(&req));
        return guest.redirect(&next);
    }

    log::warn!("console login from {} rejected: wrong ADMIN_TOKEN", peer(&req));
    actix_web::rt::time::sleep(FAILED_LOGIN_DELAY).await;
    let page =
        LoginPage { frame: guest.frame(""), error: Some(guest.lang.text("auth.error.wrong_token").to_string()), next };
    guest.render(StatusCode::UNAUTHORIZED, &page)
}

#[derive(Deserialize)]
pub struct LogoutForm {
    csrf: Option<String>,
}

pub async fn logout(visitor: Visitor, form: web::Form<LogoutForm>) -> Result<HttpResponse, ConsoleError> {
    visitor.check_csrf(form.csrf.as_deref())?;
    visitor.state.keys.revoke(visitor.session(), SystemTime::now());
    let mut guest = visitor.into_guest();
    guest.end_session();
    Ok(guest.redirect("/console/login"))
}

/// The address a login returns to: a path of the console, never another site.
fn safe_next(next: Option<&str>) -> String {
    let Some(next) = next else { return "/console/".to_string() };
    let path = next.split(['?', '#']).next().unwrap_or_default();
    if path.starts_with("/console/") && !path.contains("//") && !next.contains('\\') && !next.contains(char::is_control)
    {
        next.to_string()
    } else {
        "/console/".to_string()
    }
}

fn peer(req: &HttpRequest) -> String {
    req.connection_info().realip_remote_addr().unwrap_or("an unknown address").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_in_console() {
        assert_eq!(safe_next(Some("/console/sites/1?x=2")), "/console/sites/1?x=2");
        assert_eq!(safe_next(Some("https://evil.example/")), "/console/");
        assert_eq!(safe_next(Some("//evil.example/console/")), "/console/");
        assert_eq!(safe_next(Some("/console//evil.example")), "/console/");
        assert_eq!(safe_next(Some("/console/\\evil")), "/console/");
        assert_eq!(safe_next(Some("/api/v1/sites")), "/console/");
        assert_eq!(
            safe_next(Some("/console/backlinks?target=https://example.com/")),
            "/console/backlinks?target=https://example.com/"
        );
        assert_eq!(safe_next(Some("/console/\r\nSet-Cookie: x")), "/console/");
        assert_eq!(safe_next(None), "/console/");
    }
}
