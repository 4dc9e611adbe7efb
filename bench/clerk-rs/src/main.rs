//! `clerk-rs-bench`: `GET /protected` behind clerk-rs's own Actix-web middleware
//! (`ClerkMiddleware` with its `MemoryCacheJwksProvider`), answering what keygate's
//! `/protected` answers. Every request verifies its token's RS256 signature: clerk-rs
//! keeps the JWKS, not verified tokens.
//!
//! The JWKS comes from `{CLERK_API_URL}/jwks` (clerk-rs's Backend API path), which
//! `bench/load.sh` points at its local JWKS server.
//!
//! ```sh
//! CLERK_API_URL=http://127.0.0.1:8000 CLERK_ADDR=127.0.0.1:3002 WORKERS=1 \
//!     cargo run --release --manifest-path bench/clerk-rs/Cargo.toml
//! ```

use actix_web::{App, HttpMessage, HttpRequest, HttpResponse, HttpServer, web};
use clerk_rs::validators::actix::ClerkMiddleware;
use clerk_rs::validators::authorizer::ClerkJwt;
use clerk_rs::validators::jwks::MemoryCacheJwksProvider;
use clerk_rs::{Clerk, ClerkConfiguration};

async fn protected(req: HttpRequest) -> HttpResponse {
    // The middleware refuses a request without a valid token before this runs.
    match req.extensions().get::<ClerkJwt>() {
        Some(jwt) => HttpResponse::Ok()
            .json(serde_json::json!({ "message": format!("Hello, user {}", jwt.sub) })),
        None => HttpResponse::Unauthorized().finish(),
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::var("CLERK_ADDR").unwrap_or_else(|_| "127.0.0.1:3002".into());
    let api = std::env::var("CLERK_API_URL")
        .map_err(|_| std::io::Error::other("CLERK_API_URL must name the JWKS server"))?;
    let workers = std::env::var("WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(1);
    HttpServer::new(move || {
        // As clerk-rs's own example does: one client and key cache per worker.
        let config = ClerkConfiguration::new("sk_test_bench").with_base_path(api.clone());
        App::new()
            .wrap(ClerkMiddleware::new(
                MemoryCacheJwksProvider::new(Clerk::new(config)),
                None,
                true,
            ))
            .route("/protected", web::get().to(protected))
    })
    .workers(workers)
    .bind(addr)?
    .run()
    .await
}
