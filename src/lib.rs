//! keygate: a standalone Actix-web service that guards HTTP routes with JSON Web Tokens.
//!
//! Clerk session tokens (RS256, keys from Clerk's JWKS) and tokens signed with a
//! shared secret (HS256/384/512) are verified by [`auth::AuthUser`], an Actix
//! extractor that reads the key map published by the key-rotation actor in
//! [`keys`]. The external contract lives in `SPEC.md`.

pub mod store;
pub mod webhooks;
