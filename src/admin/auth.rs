//! Bearer-token access control of the admin API.
//!
//! With `ADMIN_TOKEN` set, every request that changes state (POST, PUT, PATCH, DELETE,
//! and the Python version's `GET /crudtask/addurl`) must send
//! `Authorization: Bearer <ADMIN_TOKEN>`. Reads stay open, so that dashboards and
//! monitoring need no secret. Without `ADMIN_TOKEN` nothing is checked, which suits a
//! cluster reachable only from its own network.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::config::Secret;

/// The token that state-changing requests must present, if any.
#[derive(Clone, Debug)]
pub struct AccessPolicy {
    pub token: Option<Secret>,
}

/// Whether a request changes state and so needs the token. The web console under
/// `/console/` is left to itself: a browser form cannot send the bearer header, so the
/// console checks its own session cookie and CSRF token on every form it accepts.
pub fn changes_state(method: &Method, path: &str) -> bool {
    if path == "/console" || path.starts_with("/console/") {
        return false;
    }
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) || path == "/crudtask/addurl"
}

/// Whether an `Authorization` header value carries the expected bearer token.
///
/// The comparison takes the same time wherever the first differing byte is, so response
/// times do not reveal the token byte by byte; only its length can show.
pub fn bearer_matches(authorization: Option<&[u8]>, expected: &Secret) -> bool {
    let Some(value) = authorization else { return false };
    let Some((scheme, token)) = value.split_at_checked(7) else { return false };
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return false;
    }
    token.ct_eq(expected.expose().as_bytes()).into()
}

/// Middleware that rejects a state-changing request without the right bearer token with
/// 401 and a `WWW-Authenticate` header.
pub async fn require_token(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let expected = req.app_data::<web::Data<AccessPolicy>>().and_then(|policy| policy.token.clone());
    let Some(expected) = expected else {
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    };
    if !changes_state(req.method(), req.path()) {
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    }
    let authorization = req.headers().get(header::AUTHORIZATION).map(|value| value.as_bytes());
    if bearer_matches(authorization, &expected) {
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    }

    log::warn!("rejected {} {}: missing or wrong bearer token", req.method(), req.path());
    let message = if authorization.is_some() {
        "the bearer token is wrong; send Authorization: Bearer <ADMIN_TOKEN>"
    } else {
        "this request changes state and needs Authorization: Bearer <ADMIN_TOKEN>"
    };
    let response = HttpResponse::Unauthorized()
        .insert_header((header::WWW_AUTHENTICATE, r#"Bearer realm="open-ahrefs""#))
        .json(json!({ "error": message }));
    Ok(req.into_response(response).map_into_right_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_changing_requests() {
        assert!(changes_state(&Method::POST, "/api/v1/sites"));
        assert!(changes_state(&Method::DELETE, "/api/v1/sites/1"));
        assert!(changes_state(&Method::PUT, "/anything"));
        assert!(changes_state(&Method::GET, "/crudtask/addurl"));
        assert!(!changes_state(&Method::GET, "/api/v1/sites"));
        assert!(!changes_state(&Method::HEAD, "/api/v1/pages"));
        assert!(!changes_state(&Method::POST, "/console/sites"), "the console checks its own session");
        assert!(changes_state(&Method::POST, "/consoles"));
    }

    #[test]
    fn bearer_token_comparison() {
        let secret: Secret = "s3cret-token".parse().unwrap();
        assert!(bearer_matches(Some(b"Bearer s3cret-token"), &secret));
        assert!(bearer_matches(Some(b"bearer s3cret-token"), &secret));
        assert!(!bearer_matches(Some(b"Bearer s3cret-tokem"), &secret));
        assert!(!bearer_matches(Some(b"Bearer s3cret"), &secret));
        assert!(!bearer_matches(Some(b"Basic s3cret-token"), &secret));
        assert!(!bearer_matches(Some(b"Bearer"), &secret));
        assert!(!bearer_matches(None, &secret));
    }
}
