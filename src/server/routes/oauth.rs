//! RFC 9728 for MCP clients: the protected-resource metadata document, and the
//! `resource_metadata` parameter every `401` challenge carries so a client can find it.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};

use crate::ResourceMetadata;

/// `GET <metadata path>`: the document.
pub async fn document(metadata: web::Data<ResourceMetadata>) -> HttpResponse {
    HttpResponse::Ok().json(metadata.document())
}

/// Middleware (with `from_fn`, registered only when there is metadata): adds
/// `resource_metadata="<url>"` to the `Bearer` challenge of every `401`.
pub async fn challenge(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let metadata = req.app_data::<web::Data<ResourceMetadata>>().cloned();
    let mut response = next.call(req).await?;
    if response.status() == StatusCode::UNAUTHORIZED
        && let Some(metadata) = metadata
    {
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
    Ok(response)
}
