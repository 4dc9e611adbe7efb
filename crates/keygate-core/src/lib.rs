//! The library core of keygate: JSON Web Token verification for Actix-web
//! applications, built for Clerk session tokens and shared secrets.
//!
//! Use it through the `keygate` crate (`keygate = { path = "…", default-features = false }`:
//! a path or git dependency, as it is not on crates.io),
//! which re-exports everything here. An application builds one [`Authenticator`]
//! (keys from a JWKS kept fresh by a key-rotation actor, a PEM public key or a shared
//! secret; the claims policy; a verified-token cache), registers it with
//! `App::new().app_data(authenticator.clone())`, and takes [`AuthUser`] in the
//! handlers that need a signed-in caller:
//!
//! ```no_run
//! # use keygate_core as keygate;
//! use actix_web::{App, HttpResponse, HttpServer, web};
//! use keygate::{AuthError, AuthUser, Authenticator};
//!
//! async fn me(user: AuthUser) -> HttpResponse {
//!     HttpResponse::Ok().json(serde_json::json!({ "user_id": user.user_id() }))
//! }
//!
//! async fn admin(user: AuthUser) -> Result<HttpResponse, AuthError> {
//!     user.require_org_role("admin")?;
//!     Ok(HttpResponse::Ok().finish())
//! }
//!
//! #[actix_web::main]
//! async fn main() -> std::io::Result<()> {
//!     let authenticator = Authenticator::builder()
//!         .jwks_url("https://your-app.clerk.accounts.dev/.well-known/jwks.json")
//!         .issuers(["https://your-app.clerk.accounts.dev"])
//!         .build()
//!         .map_err(std::io::Error::other)?;
//!     HttpServer::new(move || {
//!         App::new()
//!             .app_data(authenticator.clone())
//!             .route("/me", web::get().to(me))
//!             .route("/admin", web::get().to(admin))
//!     })
//!     .bind("127.0.0.1:8080")?
//!     .run()
//!     .await
//! }
//! ```
//!
//! The core has no database, no command line, no global logger and no metrics
//! registry: it logs through `tracing` and reports its work to an [`Observer`].

mod algorithm;
mod auth;
mod authenticator;
pub mod clock;
pub mod config;
mod keys;
pub mod observe;
mod revocation;

pub use algorithm::{Algorithm, UnknownAlgorithm};
pub use auth::{
    AuthError, AuthUser, Claims, FactorLevel, Memo, Org, Rejection, ResourceMetadata,
    Reverification, TokenType, TokenTypes, UnknownReverification, error_body, error_response,
    is_valid_entitlement, require_auth,
};
pub use authenticator::{Authenticator, NotReady};
pub use config::{AuthenticatorBuilder, ConfigError};
pub use keys::KeyKind;
pub use keys::MAX_REFRESH_WAIT;
pub use observe::Observer;
pub use revocation::RevocationCheck;

/// Entry points for the fuzz targets; not part of the API.
#[doc(hidden)]
pub mod fuzzing {
    /// Parses a JWKS document for every supported algorithm.
    pub fn jwks(body: &[u8]) -> usize {
        use jsonwebtoken::Algorithm::*;
        crate::keys::jwks::parse(body, &[RS256, PS256, ES256, ES384, EdDSA])
            .map(|keys| keys.len())
            .unwrap_or(0)
    }

    /// Reads typed claims, the organization, the plans, the features and the factor
    /// ages out of a payload object.
    pub fn claims(payload: serde_json::Map<String, serde_json::Value>) -> bool {
        use crate::auth::billing::grants;
        let json = serde_json::Value::Object(payload).to_string();
        match crate::auth::Claims::parse(json, "sub") {
            Ok(claims) => {
                let entitled = ["pro", "org:pro", "user:pro"]
                    .iter()
                    .any(|w| grants(claims.pla(), w) || grants(claims.fea(), w));
                let reverified = crate::Reverification::StrictMfa.is_met(claims.factor_ages());
                crate::auth::Org::from_claims(claims.as_map()).is_some() || entitled || reverified
            }
            Err(_) => false,
        }
    }
}
