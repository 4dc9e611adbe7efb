//! Authentication and authorization: token sources, verification, the `AuthUser`
//! extractor and the guards built on it.

pub mod cache;
pub mod claims;
pub mod error;
pub mod extractor;
pub mod guard;
pub mod token;
pub mod verifier;

pub use claims::{Claims, Org};
pub use error::AuthError;
pub use extractor::{AuthState, AuthUser};
pub use guard::require_auth;
pub use verifier::{VerifiedToken, Verifier};
