//! keygate guards HTTP routes with JSON Web Tokens: Clerk session tokens (keys from
//! Clerk's JWKS, kept fresh by a key-rotation actor) and tokens signed with a shared
//! secret.
//!
//! It is two things:
//! - **a library** any Actix-web application embeds: build an [`Authenticator`],
//!   register it with `App::new().app_data(authenticator.clone())`, and take
//!   [`AuthUser`] in the handlers that need a signed-in caller. With
//!   `default-features = false` this crate is only that core;
//! - **a service** (feature `server`, on by default): the `keygate` binary with its
//!   routes, database, Clerk webhooks, metrics and gateway, built on the same public API
//!   ([`server`]).
//!
//! ```toml
//! # keygate is not on crates.io: a path to a checkout, or `git = "…"`.
//! keygate = { path = "../keygate", default-features = false }
//! ```
//!
//! ```no_run
//! use actix_web::{App, HttpResponse, HttpServer, web};
//! use keygate::{AuthError, AuthUser, Authenticator};
//!
//! async fn invoices(user: AuthUser) -> Result<HttpResponse, AuthError> {
//!     user.require_permission("org:invoices:read")?;
//!     Ok(HttpResponse::Ok().json(serde_json::json!({ "user": user.user_id() })))
//! }
//!
//! #[actix_web::main]
//! async fn main() -> std::io::Result<()> {
//!     let authenticator = Authenticator::from_env().map_err(std::io::Error::other)?;
//!     HttpServer::new(move || {
//!         App::new()
//!             .app_data(authenticator.clone())
//!             .route("/invoices", web::get().to(invoices))
//!     })
//!     .bind("127.0.0.1:8080")?
//!     .run()
//!     .await
//! }
//! ```
//!
//! The external contract (commands, variables, routes, codes, metrics) is
//! `docs/reference.md`; the layout of the code is `ARCHITECTURE.md`.

pub use keygate_core::*;

#[cfg(feature = "server")]
pub mod server;
