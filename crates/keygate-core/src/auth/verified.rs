//! A verified token as the verifier, its cache and the Backend API actor all hand it
//! on: the claims, the type and scopes, and which key vouched for it.
//!
//! It lives apart from the verifier so that the cache and the actor, which the
//! verifier uses, can name what they store and answer without depending on it.

use std::sync::{Arc, OnceLock};

use super::claims::Claims;
use super::memo::Memo;
use super::org::Org;
use super::token_type::TokenType;
use crate::keys::PublicKey;

/// Which key verified a token, so a cache hit can tell whether that key is still trusted.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// `JWT_SECRET`.
    Secret,
    /// `JWT_PUBLIC_KEY`.
    Static,
    /// A JWKS key: the `kid` it was published under (`None`: the set's only key) and the key.
    Jwks(Option<String>, Arc<PublicKey>),
    /// Clerk's Backend API vouched for an opaque machine token.
    BackendApi,
}

/// A token that passed every check.
#[derive(Debug)]
pub struct Verified {
    /// The claims.
    pub claims: Claims,
    /// The organization, read from the claims when first asked for.
    pub org: OnceLock<Option<Org>>,
    /// What kind of token it is.
    pub token_type: TokenType,
    /// Its scopes (OAuth and machine tokens).
    pub scopes: Vec<String>,
    /// The key that verified it.
    pub key: KeySource,
    /// What the application derived from it (see [`AuthUser::memo`](super::AuthUser::memo)),
    /// cached with it.
    pub memo: Memo,
}
