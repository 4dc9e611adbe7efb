//! Verification keys, parsed once: public keys (from a JWK or a PEM) and the shared
//! secret, each ready to check a signature without parsing anything per token.
//!
//! A key is bound to the algorithms it may verify: its family (jsonwebtoken's
//! [`AlgorithmFamily`]), its curve, the JWK's own `alg` when present, and the
//! configured allow-list. A key that can serve none of them is not a key at all here.

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaParameters, RsaPublicKeyComponents};
use aws_lc_rs::{constant_time, hmac};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind};

/// The family and curve of a public key, which decide the algorithms it can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA: RS256/384/512 and PS256/384/512.
    Rsa,
    /// EC on P-256: ES256.
    EcP256,
    /// EC on P-384: ES384.
    EcP384,
    /// Ed25519: EdDSA.
    Ed25519,
}

impl KeyKind {
    /// Whether a key of this kind may verify `alg`; an HS algorithm never matches a public key.
    pub fn accepts(self, alg: crate::Algorithm) -> bool {
        self.allows(alg.jwt())
    }

    /// [`KeyKind::accepts`] in the JWT library's terms.
    pub(crate) fn allows(self, alg: Algorithm) -> bool {
        match self {
            KeyKind::Rsa => alg.family() == AlgorithmFamily::Rsa,
            KeyKind::EcP256 => alg == Algorithm::ES256,
            KeyKind::EcP384 => alg == Algorithm::ES384,
            KeyKind::Ed25519 => alg == Algorithm::EdDSA,
        }
    }

    /// The algorithms a key of this kind can verify, for messages.
    pub fn algorithm_names(self) -> &'static str {
        match self {
            KeyKind::Rsa => "RS256, RS384, RS512, PS256, PS384, PS512",
            KeyKind::EcP256 => "ES256",
            KeyKind::EcP384 => "ES384",
            KeyKind::Ed25519 => "EdDSA",
        }
    }

    /// A short name for messages.
    pub fn name(self) -> &'static str {
        match self {
            KeyKind::Rsa => "RSA",
            KeyKind::EcP256 => "EC P-256",
            KeyKind::EcP384 => "EC P-384",
            KeyKind::Ed25519 => "Ed25519",
        }
    }
}

/// Why a key could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The key material does not form a valid key of its kind.
    #[error("the {0} key material is invalid")]
    Invalid(&'static str),
    /// RSA keys under 2048 bits are refused (RFC 8725 §3.5).
    #[error("RSA modulus shorter than 2048 bits")]
    WeakRsa,
    /// No allowed algorithm fits the key.
    #[error("no allowed algorithm fits a {} key (it verifies {})", .0.name(), .0.algorithm_names())]
    NoAllowedAlgorithm(KeyKind),
}

/// A public key, parsed once for each allowed algorithm it may verify.
pub struct PublicKey {
    kind: KeyKind,
    /// The JWK's own `alg`, which a token's `alg` must then equal.
    alg: Option<Algorithm>,
    /// The raw key material, to tell an unchanged key across JWKS refreshes.
    material: Box<[u8]>,
    parsed: Vec<(Algorithm, ParsedPublicKey)>,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey")
            .field("kind", &self.kind)
            .field("alg", &self.alg)
            .field(
                "algorithms",
                &self.parsed.iter().map(|(a, _)| *a).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl PublicKey {
    /// Parses `key` (from jsonwebtoken's JWK or PEM readers) for every algorithm of
    /// `allowed` that fits its kind and its own `alg`.
    pub fn new(
        key: &DecodingKey,
        kind: KeyKind,
        alg: Option<Algorithm>,
        allowed: &[Algorithm],
    ) -> Result<PublicKey, KeyError> {
        let algorithms: Vec<Algorithm> = allowed
            .iter()
            .copied()
            .filter(|a| kind.allows(*a) && alg.is_none_or(|own| own == *a))
            .collect();
        if algorithms.is_empty() {
            return Err(KeyError::NoAllowedAlgorithm(kind));
        }
        let (material, parsed) = match (key.kind(), kind) {
            (DecodingKeyKind::RsaModulusExponent { n, e }, _) => rsa_keys(n, e, &algorithms)?,
            (DecodingKeyKind::SecretOrDer(der), KeyKind::Rsa) => {
                // A PEM RSA key arrives as PKCS#1 DER; its components take the JWK's path.
                let public = aws_lc_rs::rsa::PublicKey::from_der(der)
                    .map_err(|_| KeyError::Invalid("RSA"))?;
                let components = RsaPublicKeyComponents::<Vec<u8>>::from(&public);
                rsa_keys(&components.n, &components.e, &algorithms)?
            }
            (DecodingKeyKind::SecretOrDer(bytes), _) => {
                let mut parsed = Vec::with_capacity(algorithms.len());
                for a in &algorithms {
                    let verification =
                        verification_algorithm(*a).ok_or(KeyError::Invalid(kind.name()))?;
                    let key = ParsedPublicKey::new(verification, bytes)
                        .map_err(|_| KeyError::Invalid(kind.name()))?;
                    parsed.push((*a, key));
                }
                (bytes.clone(), parsed)
            }
        };
        Ok(PublicKey {
            kind,
            alg,
            material: material.into_boxed_slice(),
            parsed,
        })
    }

    /// Its family and curve.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The JWK's own `alg`, when it names one.
    pub fn own_alg(&self) -> Option<Algorithm> {
        self.alg
    }

    /// Whether this key may verify a token signed with `alg`.
    pub fn accepts(&self, alg: Algorithm) -> bool {
        self.parsed.iter().any(|(a, _)| *a == alg)
    }

    /// Checks `signature` over `message` with `alg`; `false` for an algorithm the key
    /// does not serve.
    pub fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        self.parsed
            .iter()
            .find(|(a, _)| *a == alg)
            .is_some_and(|(_, key)| key.verify_sig(message, signature).is_ok())
    }

    /// Whether both are the same key material under the same constraints.
    pub fn same_as(&self, other: &PublicKey) -> bool {
        self.kind == other.kind
            && self.alg == other.alg
            && self.material == other.material
            && self.parsed.len() == other.parsed.len()
            && self
                .parsed
                .iter()
                .zip(&other.parsed)
                .all(|((a, _), (b, _))| a == b)
    }
}

/// The shared secret of the HS algorithms, keyed once per allowed HS algorithm.
pub struct SecretKey {
    keys: Vec<(Algorithm, hmac::Key)>,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretKey")
            .field(
                "algorithms",
                &self.keys.iter().map(|(a, _)| *a).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl SecretKey {
    /// HMAC keys for each HS algorithm of `allowed`; `None` when there is none.
    pub fn new(secret: &[u8], allowed: &[Algorithm]) -> Option<SecretKey> {
        let keys: Vec<(Algorithm, hmac::Key)> = allowed
            .iter()
            .filter_map(|alg| {
                let hmac_alg = match alg {
                    Algorithm::HS256 => hmac::HMAC_SHA256,
                    Algorithm::HS384 => hmac::HMAC_SHA384,
                    Algorithm::HS512 => hmac::HMAC_SHA512,
                    _ => return None,
                };
                Some((*alg, hmac::Key::new(hmac_alg, secret)))
            })
            .collect();
        (!keys.is_empty()).then_some(SecretKey { keys })
    }

    /// Whether `alg` is one of the keyed HS algorithms.
    pub fn accepts(&self, alg: Algorithm) -> bool {
        self.keys.iter().any(|(a, _)| *a == alg)
    }

    /// Checks an HMAC tag in constant time.
    pub fn verify(&self, alg: Algorithm, message: &[u8], tag: &[u8]) -> bool {
        self.keys
            .iter()
            .find(|(a, _)| *a == alg)
            .is_some_and(|(_, key)| {
                let expected = hmac::sign(key, message);
                constant_time::verify_slices_are_equal(expected.as_ref(), tag).is_ok()
            })
    }
}

/// Why a PEM value could not become a public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PemKeyError {
    /// A private key was given where the public one belongs.
    #[error("is a private key; give the public key (openssl pkey -in key.pem -pubout)")]
    PrivateKey,
    /// The value is not PEM at all.
    #[error("expected a PEM public key (-----BEGIN PUBLIC KEY-----)")]
    NotPem,
    /// PEM, but of no supported key type or curve.
    #[error("{0}")]
    Unsupported(&'static str),
    /// A key of a supported type that the allowed algorithms cannot use, or whose
    /// material is invalid.
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// Parses a PEM public key of any supported family for the allowed algorithms.
/// Keys pasted into a one-line variable often carry literal `\n`; those are read as
/// line breaks.
pub fn public_key_from_pem(pem: &str, allowed: &[Algorithm]) -> Result<PublicKey, PemKeyError> {
    let pem = pem.replace("\\n", "\n");
    if pem.contains("PRIVATE KEY-----") {
        return Err(PemKeyError::PrivateKey);
    }
    if !pem.contains("-----BEGIN") {
        return Err(PemKeyError::NotPem);
    }
    let bytes = pem.as_bytes();
    let (key, kind) = if let Ok(key) = DecodingKey::from_rsa_pem(bytes) {
        (key, KeyKind::Rsa)
    } else if let Ok(key) = DecodingKey::from_ed_pem(bytes) {
        (key, KeyKind::Ed25519)
    } else if let Ok(key) = DecodingKey::from_ec_pem(bytes) {
        // The curve, told by the length of the uncompressed point.
        let kind = match key.try_get_as_bytes().map(<[u8]>::len) {
            Ok(65) => KeyKind::EcP256,
            Ok(97) => KeyKind::EcP384,
            _ => {
                return Err(PemKeyError::Unsupported(
                    "unsupported elliptic curve (P-256 and P-384 are)",
                ));
            }
        };
        (key, kind)
    } else {
        return Err(PemKeyError::Unsupported(
            "not a PEM RSA, EC (P-256/P-384) or Ed25519 public key",
        ));
    };
    Ok(PublicKey::new(&key, kind, None, allowed)?)
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

type Parsed = (Vec<u8>, Vec<(Algorithm, ParsedPublicKey)>);

/// An RSA key from its modulus and exponent, for each of `algorithms`.
fn rsa_keys(n: &[u8], e: &[u8], algorithms: &[Algorithm]) -> Result<Parsed, KeyError> {
    let n = strip_leading_zeros(n);
    if n.len() < 256 {
        return Err(KeyError::WeakRsa);
    }
    let components = RsaPublicKeyComponents { n, e };
    let mut parsed = Vec::with_capacity(algorithms.len());
    for a in algorithms {
        let params = rsa_parameters(*a).ok_or(KeyError::Invalid("RSA"))?;
        let key = components
            .to_parsed_public_key(params)
            .map_err(|_| KeyError::Invalid("RSA"))?;
        parsed.push((*a, key));
    }
    let mut material = n.to_vec();
    material.extend_from_slice(e);
    Ok((material, parsed))
}

fn rsa_parameters(alg: Algorithm) -> Option<&'static RsaParameters> {
    Some(match alg {
        Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

fn verification_algorithm(alg: Algorithm) -> Option<&'static dyn signature::VerificationAlgorithm> {
    Some(match alg {
        Algorithm::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
        Algorithm::ES384 => &signature::ECDSA_P384_SHA384_FIXED,
        Algorithm::EdDSA => &signature::ED25519,
        other => rsa_parameters(other)?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys_only_for_allowed_hs_algorithms() {
        let key = SecretKey::new(
            b"0123456789abcdef0123456789abcdef",
            &[Algorithm::HS384, Algorithm::RS256],
        )
        .unwrap();
        assert!(key.accepts(Algorithm::HS384) && !key.accepts(Algorithm::HS256));
        let tag = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA384, b"0123456789abcdef0123456789abcdef"),
            b"msg",
        );
        assert!(key.verify(Algorithm::HS384, b"msg", tag.as_ref()));
        assert!(!key.verify(Algorithm::HS384, b"other", tag.as_ref()));
        assert!(SecretKey::new(b"x", &[Algorithm::RS256]).is_none());
    }
}
