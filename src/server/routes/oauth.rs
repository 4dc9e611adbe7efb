//! RFC 9728 for MCP clients: the protected-resource metadata document, and the
//! `resource_metadata` parameter every `401` challenge carries so a client can find it.

use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};

use crate::ResourceMetadata;

/// `GET <metadata path>`: the document.
pub async fn document(metadata: web::Data<ResourceMetadata>) -> HttpResponse {
    HttpResponse::Ok().json(metadata.document())
}

/// Adds `resource_metadata="<url>"` to the `Bearer` challenge of `response` when it is
/// a `401` (the request middleware calls it when there is metadata).
pub(crate) fn add_challenge<B>(response: &mut ServiceResponse<B>, metadata: &ResourceMetadata) {
    if response.status() != StatusCode::UNAUTHORIZED {
        return;
    }
    let headers = response.headers_mut();
    let current = headers
        .get(header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("Bearer");
    let with = if current == "Bearer" {
        format!("Bearer resource_metadata=\"{}\"", metadata.url())
    } else {
        format!("{current}, resource_metadata=\"{}\"", metadata.url())
    };
    if let Ok(value) = HeaderValue::from_str(&with) {
        headers.insert(header::WWW_AUTHENTICATE, value);
    }
}
