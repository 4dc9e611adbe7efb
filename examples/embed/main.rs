//! `embed`: a complete small Actix-web application that guards its own routes with
//! keygate, configured from the environment like the keygate service.
//!
//! ```sh
//! JWT_SECRET='a-shared-secret-of-at-least-32-bytes!' cargo run --example embed
//! TOKEN=$(JWT_SECRET='a-shared-secret-of-at-least-32-bytes!' cargo run -q -- mint --sub user_1)
//! curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:3000/profile
//! ```
//!
//! With Clerk, `CLERK_PUBLISHABLE_KEY=pk_…` is enough. The example listens on
//! `EMBED_ADDR` (default `127.0.0.1:3000`).

mod app;

use actix_web::{App, HttpServer};
use keygate::Authenticator;

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    // Every verification variable of keygate (JWKS_URL, CLERK_PUBLISHABLE_KEY,
    // JWT_SECRET, JWT_AUTHORIZED_PARTIES, …) configures it.
    let authenticator = Authenticator::from_env().map_err(std::io::Error::other)?;
    let addr = std::env::var("EMBED_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    println!("embed: listening on http://{addr}");
    HttpServer::new(move || {
        App::new()
            .app_data(authenticator.clone())
            .configure(app::routes)
    })
    .bind(addr)?
    .run()
    .await
}
