//! The signature algorithms keygate verifies, keygate's own type: the JWT library
//! behind it is an implementation detail.

use std::fmt;
use std::str::FromStr;

/// A JWS signature algorithm keygate can verify (`JWT_ALGORITHMS`, a token's `alg`).
///
/// It parses from its `alg` spelling in any case (`hs256` is [`Algorithm::HS256`]) and
/// displays in the canonical one.
///
/// ```
/// use keygate_core::Algorithm;
///
/// let alg: Algorithm = "eddsa".parse().unwrap();
/// assert_eq!(alg, Algorithm::EdDSA);
/// assert_eq!(alg.to_string(), "EdDSA");
/// assert!("none".parse::<Algorithm>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// HMAC with SHA-256 (a shared secret).
    HS256,
    /// HMAC with SHA-384 (a shared secret).
    HS384,
    /// HMAC with SHA-512 (a shared secret).
    HS512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA with P-256 and SHA-256.
    ES256,
    /// ECDSA with P-384 and SHA-384.
    ES384,
    /// EdDSA with Ed25519.
    EdDSA,
}

impl Algorithm {
    /// Every algorithm, in the order the documentation lists them.
    pub const ALL: [Algorithm; 12] = [
        Algorithm::HS256,
        Algorithm::HS384,
        Algorithm::HS512,
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ];

    /// The canonical `alg` spelling (`HS256`, …, `EdDSA`).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::HS256 => "HS256",
            Algorithm::HS384 => "HS384",
            Algorithm::HS512 => "HS512",
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    /// Whether it is an HMAC (a shared secret rather than a key pair).
    pub fn is_hmac(self) -> bool {
        matches!(self, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
    }

    /// The JWT library's algorithm of the same name.
    pub(crate) fn jwt(self) -> jsonwebtoken::Algorithm {
        use jsonwebtoken::Algorithm as J;
        match self {
            Algorithm::HS256 => J::HS256,
            Algorithm::HS384 => J::HS384,
            Algorithm::HS512 => J::HS512,
            Algorithm::RS256 => J::RS256,
            Algorithm::RS384 => J::RS384,
            Algorithm::RS512 => J::RS512,
            Algorithm::PS256 => J::PS256,
            Algorithm::PS384 => J::PS384,
            Algorithm::PS512 => J::PS512,
            Algorithm::ES256 => J::ES256,
            Algorithm::ES384 => J::ES384,
            Algorithm::EdDSA => J::EdDSA,
        }
    }

    /// The JWT library's algorithm as keygate's; `None` for one keygate does not know.
    pub(crate) fn from_jwt(alg: jsonwebtoken::Algorithm) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|ours| ours.jwt() == alg)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is none of keygate's algorithms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unsupported algorithm {0:?} (HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA)"
)]
pub struct UnknownAlgorithm(pub String);

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    /// An `alg` name in any case, surrounding blanks ignored.
    fn from_str(name: &str) -> Result<Algorithm, UnknownAlgorithm> {
        let trimmed = name.trim();
        Algorithm::ALL
            .into_iter()
            .find(|alg| alg.as_str().eq_ignore_ascii_case(trimmed))
            .ok_or_else(|| UnknownAlgorithm(trimmed.to_string()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_in_any_case_and_match_the_jwt_library() {
        for alg in Algorithm::ALL {
            assert_eq!(alg.as_str().parse::<Algorithm>().unwrap(), alg);
            assert_eq!(
                alg.as_str().to_lowercase().parse::<Algorithm>().unwrap(),
                alg
            );
            assert_eq!(Algorithm::from_jwt(alg.jwt()), Some(alg));
            assert_eq!(
                alg.as_str().parse::<jsonwebtoken::Algorithm>().unwrap(),
                alg.jwt()
            );
        }
        assert!("none".parse::<Algorithm>().is_err());
        assert!("".parse::<Algorithm>().is_err());
    }
}
