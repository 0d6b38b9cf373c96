//! HTTP methods beyond each route's own: HEAD wherever GET only reads, and a 405 with an
//! `Allow` header for a known path requested with a method it does not serve.

use std::collections::HashMap;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;
use utoipa::openapi::path::PathItem;

use super::auth;

/// The `Allow` header of each documented path, by its template (`/api/v1/sites/{id}`).
pub struct AllowedMethods(HashMap<String, String>);

impl AllowedMethods {
    /// Read the methods of every path from the OpenAPI document, which the handlers'
    /// annotations generate. A path without an annotation gets `GET, HEAD`.
    pub fn from_document(document: &utoipa::openapi::OpenApi) -> Self {
        let methods =
            document.paths.paths.iter().map(|(path, item)| (path.clone(), allow_header(path, item))).collect();
        Self(methods)
    }
}

fn allow_header(path: &str, item: &PathItem) -> String {
    let mut methods = Vec::new();
    if item.get.is_some() {
        methods.push("GET");
        if !auth::changes_state(&Method::GET, path) {
            methods.push("HEAD");
        }
    }
    for (operation, name) in
        [(&item.post, "POST"), (&item.put, "PUT"), (&item.patch, "PATCH"), (&item.delete, "DELETE")]
    {
        if operation.is_some() {
            methods.push(name);
        }
    }
    methods.join(", ")
}

/// Route a HEAD request as a GET. The HTTP/1 codec records the request's method before
/// routing and leaves the body out of the response to a HEAD, so the client gets the GET
/// response's status and headers only. A GET that changes state, `/crudtask/addurl`,
/// keeps HEAD out, so that a HEAD never changes anything.
pub async fn head_as_get(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.method() == Method::HEAD && !auth::changes_state(&Method::GET, req.path()) {
        req.head_mut().method = Method::GET;
    }
    next.call(req).await
}

/// Reject a request that no route serves: 405 with `Allow` when a route serves the path
/// with other methods, 404 otherwise.
pub async fn no_route(req: HttpRequest) -> HttpResponse {
    let Some(pattern) = req.resource_map().match_pattern(req.path()) else {
        return HttpResponse::NotFound().json(json!({
            "error": format!("no route for {} {}; /docs lists the API", req.method(), req.path())
        }));
    };

    // Paths outside the document, such as /docs itself, serve GET only.
    let allow = req
        .app_data::<actix_web::web::Data<AllowedMethods>>()
        .and_then(|allowed| allowed.0.get(&pattern).cloned())
        .unwrap_or_else(|| "GET, HEAD".to_string());
    HttpResponse::MethodNotAllowed().insert_header((header::ALLOW, allow.clone())).json(json!({
        "error": format!("{} is not allowed on {}; use {allow}", req.method(), req.path())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists_documented_methods() {
        let allowed = AllowedMethods::from_document(&<super::super::openapi::ApiDoc as utoipa::OpenApi>::openapi());
        assert_eq!(allowed.0["/api/v1/sites"], "GET, HEAD, POST");
        assert_eq!(allowed.0["/api/v1/sites/{id}"], "GET, HEAD");
        assert_eq!(allowed.0["/api/v1/sites/{id}/recrawl"], "POST");
        assert_eq!(allowed.0["/crudtask/addurl"], "GET", "a GET that changes state has no HEAD");
    }
}
