//! Answers to request bodies the API cannot take: too large, of the wrong type or not
//! valid JSON. Each is a 4xx with `{"error": "..."}`. Paths and methods with no route
//! get their response from `methods`.

use actix_web::error::JsonPayloadError;
use actix_web::HttpResponse;
use serde_json::json;

use super::api::MAX_BODY_BYTES;

/// The response to a JSON body that could not be read: 413 when it is too large, 415
/// when it is not `application/json`, 422 when it does not parse or misses a field.
pub fn json_error_response(error: &JsonPayloadError) -> HttpResponse {
    match error {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            HttpResponse::PayloadTooLarge()
                .json(json!({ "error": format!("the request body is larger than {MAX_BODY_BYTES} bytes") }))
        }
        JsonPayloadError::ContentType => HttpResponse::UnsupportedMediaType()
            .json(json!({ "error": "the request body must be JSON, sent with Content-Type: application/json" })),
        // serde_json's own message gives the cause and its position, without actix's prefix.
        JsonPayloadError::Deserialize(cause) => {
            HttpResponse::UnprocessableEntity().json(json!({ "error": format!("invalid JSON body: {cause}") }))
        }
        other => HttpResponse::UnprocessableEntity().json(json!({ "error": format!("invalid JSON body: {other}") })),
    }
}
