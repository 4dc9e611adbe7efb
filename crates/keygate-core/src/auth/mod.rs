//! Authentication and authorization: token sources, verification, the `AuthUser`
//! extractor and the guards built on it.

pub mod billing;
pub mod cache;
pub mod claims;
pub mod classify;
pub mod error;
pub mod extractor;
pub mod guard;
pub mod machine;
pub mod memo;
pub mod metadata;
pub mod org;
pub mod policy;
pub mod reverification;
pub mod sources;
pub mod token;
pub mod token_type;
pub mod user;
pub mod verified;
pub mod verifier;

pub use billing::is_valid_entitlement;
pub use claims::Claims;
pub use error::{AuthError, Rejection, error_body, error_response};
pub use guard::require_auth;
pub use memo::Memo;
pub use metadata::ResourceMetadata;
pub use org::Org;
pub use reverification::{FactorLevel, Reverification, UnknownReverification};
pub use token_type::{TokenType, TokenTypes};
pub use user::AuthUser;
