//! The signed identity (`GATEWAY_IDENTITY_TOKEN=true`): `X-Auth-Identity`, a short JWT
//! keygate mints for every request it allows with a verified token, and the JWKS an
//! upstream verifies it with.
//!
//! The identity headers are only as trustworthy as the network between keygate and the
//! upstream; this assertion is trustworthy wherever it comes from, because only
//! keygate holds the key. Signing is jsonwebtoken's; aws-lc-rs reads and checks the
//! key once at start and gives the public half for the JWKS.
//!
//! An identity is minted once per verified token and kept with it in the core's
//! verified-token cache ([`AuthUser::memo`]): a repeated token costs no signature. One
//! that has less than [`RENEW_BEFORE_SECS`] of life left is minted again, unless it
//! already ends with the token.

use std::sync::Arc;

use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};
use arc_swap::ArcSwapOption;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
    KeyPair as _,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters,
    EllipticCurveKeyType, Jwk, JwkSet, KeyAlgorithm, OctetKeyPairParameters, OctetKeyPairType,
    PublicKeyUse, ThumbprintHash,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use crate::clock::SharedClock;
use crate::{AuthUser, ConfigError, TokenType};

/// The header that carries the signed identity.
pub const HEADER: HeaderName = HeaderName::from_static("x-auth-identity");

/// The longest an identity lives: a replayed one is worth a minute at most.
pub const LIFETIME_SECS: i64 = 60;

/// An identity with less life left than this is minted again.
pub const RENEW_BEFORE_SECS: i64 = 10;

/// The JWKS path in proxy mode (keygate's own routes live under `/_keygate`).
pub const PROXY_JWKS_PATH: &str = "/_keygate/.well-known/jwks.json";

/// The JWKS path otherwise.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// The key variable.
pub const KEY_VAR: &str = "GATEWAY_IDENTITY_KEY";

/// The previous key's variable.
pub const PREVIOUS_KEY_VAR: &str = "GATEWAY_IDENTITY_KEY_PREVIOUS";

/// The audience variable.
pub const AUDIENCE_VAR: &str = "GATEWAY_IDENTITY_AUDIENCE";

/// The DER prefix of a P-256 public key (SubjectPublicKeyInfo) before its 65-byte point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// The DER prefix of an Ed25519 public key (SubjectPublicKeyInfo) before its 32 bytes.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// A signing key, checked: its algorithm, the key as jsonwebtoken signs with it, and its
/// public half as a JWK.
struct SigningKey {
    alg: Algorithm,
    encoding: EncodingKey,
    public: Jwk,
}

/// A public key of the JWKS: the current key's or the previous one's.
fn jwk(alg: Algorithm, public: &[u8]) -> Result<Jwk, String> {
    let algorithm = match alg {
        Algorithm::ES256 => {
            // An uncompressed point: 0x04, then x and y.
            let (Some(&0x04), Some(x), Some(y)) =
                (public.first(), public.get(1..33), public.get(33..65))
            else {
                return Err("is not an uncompressed P-256 point".into());
            };
            AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
                key_type: EllipticCurveKeyType::EC,
                curve: EllipticCurve::P256,
                x: URL_SAFE_NO_PAD.encode(x),
                y: URL_SAFE_NO_PAD.encode(y),
            })
        }
        _ => AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
            key_type: OctetKeyPairType::OctetKeyPair,
            curve: EllipticCurve::Ed25519,
            x: URL_SAFE_NO_PAD.encode(public),
        }),
    };
    let mut jwk = Jwk {
        common: CommonParameters {
            public_key_use: Some(PublicKeyUse::Signature),
            key_algorithm: Some(match alg {
                Algorithm::ES256 => KeyAlgorithm::ES256,
                _ => KeyAlgorithm::EdDSA,
            }),
            ..Default::default()
        },
        algorithm,
    };
    // The RFC 7638 thumbprint: replicas that share a key name it alike.
    let kid = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|e| format!("has no thumbprint: {e}"))?;
    jwk.common.key_id = Some(kid);
    Ok(jwk)
}

/// The text of a variable as PEM: literal `\n` read as line breaks, as for
/// `JWT_PUBLIC_KEY` (a key pasted into a one-line variable).
fn pem_of(var: &'static str, text: &str) -> Result<pem::Pem, ConfigError> {
    pem::parse(text.trim().replace("\\n", "\n")).map_err(|_| {
        ConfigError::new(
            var,
            "is not a PEM key (expected -----BEGIN PRIVATE KEY----- or -----BEGIN EC PRIVATE KEY-----)",
        )
    })
}

const WRONG_TYPE: &str = "is not a P-256 or Ed25519 key";

/// A private key: PKCS#8 (`PRIVATE KEY`, P-256 or Ed25519) or SEC1 (`EC PRIVATE KEY`,
/// P-256).
fn private_key(var: &'static str, pem: &pem::Pem) -> Result<SigningKey, ConfigError> {
    let der = pem.contents();
    let refuse = |problem: &str| ConfigError::new(var, problem.to_string());
    let ec = |pair: EcdsaKeyPair| -> Result<SigningKey, ConfigError> {
        // jsonwebtoken signs with a PKCS#8 document; a SEC1 key becomes one here.
        let pkcs8 = pair
            .to_pkcs8v1()
            .map_err(|_| refuse("cannot be re-encoded as PKCS#8"))?;
        Ok(SigningKey {
            alg: Algorithm::ES256,
            encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
            public: jwk(Algorithm::ES256, pair.public_key().as_ref()).map_err(|p| refuse(&p))?,
        })
    };
    match pem.tag() {
        "PRIVATE KEY" => {
            if let Ok(pair) = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der) {
                return ec(pair);
            }
            if let Ok(pair) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
                let pkcs8 = pair
                    .to_pkcs8()
                    .map_err(|_| refuse("cannot be re-encoded as PKCS#8"))?;
                return Ok(SigningKey {
                    alg: Algorithm::EdDSA,
                    encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
                    public: jwk(Algorithm::EdDSA, pair.public_key().as_ref())
                        .map_err(|p| refuse(&p))?,
                });
            }
            if EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, der).is_ok() {
                return Err(refuse("is a P-384 key; expected a P-256 or Ed25519 key"));
            }
            Err(refuse(WRONG_TYPE))
        }
        "EC PRIVATE KEY" => {
            match EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, der) {
                Ok(pair) => ec(pair),
                Err(_) => Err(refuse("is an EC key of another curve than P-256")),
            }
        }
        "PUBLIC KEY" => Err(refuse(
            "is a public key; the signing key must be the private key",
        )),
        _ => Err(refuse(WRONG_TYPE)),
    }
}

/// The public half of `GATEWAY_IDENTITY_KEY_PREVIOUS`, a private or a public key.
fn previous_key(pem: &pem::Pem) -> Result<Jwk, ConfigError> {
    let var = PREVIOUS_KEY_VAR;
    if pem.tag() != "PUBLIC KEY" {
        return Ok(private_key(var, pem)?.public);
    }
    let der = pem.contents();
    let refuse = |problem: String| ConfigError::new(var, problem);
    if let Some(point) = der.strip_prefix(&P256_SPKI_PREFIX[..]) {
        return jwk(Algorithm::ES256, point).map_err(refuse);
    }
    match der.strip_prefix(&ED25519_SPKI_PREFIX[..]) {
        Some(public) if public.len() == 32 => jwk(Algorithm::EdDSA, public).map_err(refuse),
        _ => Err(refuse(WRONG_TYPE.into())),
    }
}

/// `GATEWAY_IDENTITY_*`, read and checked at start.
#[derive(Clone)]
pub struct IdentityConfig {
    /// `GATEWAY_IDENTITY_ISSUER`.
    pub issuer: String,
    /// `GATEWAY_IDENTITY_AUDIENCE`, or the origin of `UPSTREAM_URL`.
    pub audience: String,
    /// Whether the key was made at start (`GATEWAY_IDENTITY_KEY` unset).
    pub generated: bool,
    key: Arc<SigningKey>,
    previous: Option<Jwk>,
}

impl std::fmt::Debug for IdentityConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityConfig")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("alg", &self.key.alg)
            .field("kid", &self.key.public.common.key_id)
            .field("generated", &self.generated)
            .field("previous", &self.previous.is_some())
            .finish()
    }
}

impl IdentityConfig {
    /// The signing setup of `key` (PEM text, `None`: make one), `previous` (PEM text),
    /// `issuer` and `audience`.
    pub fn new(
        key: Option<&str>,
        previous: Option<&str>,
        issuer: String,
        audience: String,
    ) -> Result<IdentityConfig, ConfigError> {
        let (key, generated) = match key {
            Some(text) => (private_key(KEY_VAR, &pem_of(KEY_VAR, text)?)?, false),
            None => {
                let pkcs8 = EcdsaKeyPair::generate_pkcs8(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    &SystemRandom::new(),
                )
                .map_err(|_| ConfigError::new(KEY_VAR, "is unset, and no key could be made"))?;
                let pem = pem::Pem::new("PRIVATE KEY", pkcs8.as_ref().to_vec());
                (private_key(KEY_VAR, &pem)?, true)
            }
        };
        let previous = match previous {
            Some(text) => Some(previous_key(&pem_of(PREVIOUS_KEY_VAR, text)?)?),
            None => None,
        };
        Ok(IdentityConfig {
            issuer,
            audience,
            generated,
            key: Arc::new(key),
            previous,
        })
    }

    /// The `kid` of the signing key.
    pub fn kid(&self) -> &str {
        self.key.public.common.key_id.as_deref().unwrap_or_default()
    }
}

/// What one mint gives: the header value and when it stops being valid.
struct Minted {
    value: HeaderValue,
    exp: i64,
    /// Whether `exp` is the verified token's own: minting again would not extend it.
    capped_by_token: bool,
}

/// The identity kept with a verified token (its memo).
#[derive(Default)]
struct Kept(ArcSwapOption<Minted>);

/// Why no identity could be minted.
#[derive(Debug, thiserror::Error)]
#[error("cannot sign the identity: {0}")]
pub struct MintError(String);

#[derive(Serialize)]
struct OrgClaim<'a> {
    id: &'a str,
    slug: Option<&'a str>,
    role: Option<&'a str>,
    permissions: &'a [String],
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    org: Option<OrgClaim<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pla: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fea: Option<&'a str>,
    token_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scopes: Option<&'a [String]>,
    iat: i64,
    exp: i64,
    jti: String,
}

/// Mints identities and serves the JWKS; shared by every worker.
pub struct IdentityTokens {
    config: IdentityConfig,
    header: Header,
    jwks: Bytes,
    clock: SharedClock,
}

impl IdentityTokens {
    /// The signer of `config`, reading time from `clock`.
    pub fn new(config: IdentityConfig, clock: SharedClock) -> Result<IdentityTokens, ConfigError> {
        let mut header = Header::new(config.key.alg);
        header.kid = Some(config.kid().to_string());
        header.typ = Some("JWT".into());
        let mut keys = vec![config.key.public.clone()];
        if let Some(previous) = &config.previous
            && previous.common.key_id != config.key.public.common.key_id
        {
            keys.push(previous.clone());
        }
        let jwks = serde_json::to_vec(&JwkSet { keys })
            .map_err(|e| ConfigError::new(KEY_VAR, format!("cannot publish the key: {e}")))?;
        Ok(IdentityTokens {
            config,
            header,
            jwks: Bytes::from(jwks),
            clock,
        })
    }

    /// The JWKS document.
    pub fn jwks(&self) -> Bytes {
        self.jwks.clone()
    }

    /// The `X-Auth-Identity` value of `user`: the one kept with its token while it has
    /// life left, else a new one (kept for the next request).
    pub fn value(&self, user: &AuthUser) -> Result<HeaderValue, MintError> {
        let now = i64::try_from(self.clock.unix_secs()).unwrap_or(i64::MAX);
        let kept = user.memo(Kept::default);
        if let Some(kept) = kept
            && let Some(minted) = &*kept.0.load()
            && now < minted.exp
            && (minted.exp - now >= RENEW_BEFORE_SECS || minted.capped_by_token)
        {
            return Ok(minted.value.clone());
        }
        let minted = Arc::new(self.mint(user, now)?);
        let value = minted.value.clone();
        if let Some(kept) = kept {
            kept.0.store(Some(minted));
        }
        Ok(value)
    }

    fn mint(&self, user: &AuthUser, now: i64) -> Result<Minted, MintError> {
        let token_exp = user.claims().exp();
        let exp = match token_exp {
            Some(token_exp) if token_exp <= now + LIFETIME_SECS => token_exp,
            _ => now + LIFETIME_SECS,
        };
        let token_type = user.token_type();
        let claims = Claims {
            iss: &self.config.issuer,
            aud: &self.config.audience,
            sub: user.user_id(),
            sid: user.session_id(),
            org: user.org().map(|org| OrgClaim {
                id: &org.id,
                slug: org.slug.as_deref(),
                role: org.role.as_deref(),
                permissions: &org.permissions,
            }),
            pla: user.plan(),
            fea: user.features(),
            token_type: token_type.as_str(),
            scopes: (token_type != TokenType::SessionToken).then(|| user.scopes()),
            iat: now,
            exp,
            jti: URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>()),
        };
        let token = jsonwebtoken::encode(&self.header, &claims, &self.config.key.encoding)
            .map_err(|e| MintError(e.to_string()))?;
        let value = HeaderValue::from_maybe_shared(Bytes::from(token))
            .map_err(|e| MintError(e.to_string()))?;
        Ok(Minted {
            value,
            exp,
            capped_by_token: token_exp.is_some_and(|t| t == exp),
        })
    }
}

/// `GET` the JWKS: the signing key and, through a rotation, the previous one. Cached by
/// upstreams for five minutes, so a new key is published at least that long before
/// identities are signed with it (see the README on rotation).
pub async fn jwks(gateway: web::Data<super::Gateway>) -> HttpResponse {
    match &gateway.identity {
        Some(tokens) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "max-age=300"))
            .content_type("application/json")
            .body(tokens.jwks()),
        None => HttpResponse::NotFound().finish(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use aws_lc_rs::encoding::AsDer as _;

    use super::*;

    fn err(key: &str) -> ConfigError {
        match IdentityConfig::new(Some(key), None, "keygate".into(), "http://up".into()) {
            Ok(_) => panic!("expected a refusal"),
            Err(e) => e,
        }
    }

    fn pem(tag: &str, der: &[u8]) -> String {
        pem::encode(&pem::Pem::new(tag, der.to_vec()))
    }

    #[test]
    fn p256_and_ed25519_keys_in_pkcs8_and_sec1() {
        let rng = SystemRandom::new();
        let p256 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let text = pem("PRIVATE KEY", p256.as_ref());
        let config = IdentityConfig::new(Some(&text), None, "i".into(), "a".into()).unwrap();
        assert_eq!(config.key.alg, Algorithm::ES256);
        assert!(!config.generated);
        // The same key, one line with literal \n: the same kid.
        let one_line = text.replace("\r\n", "\\n").replace('\n', "\\n");
        let again = IdentityConfig::new(Some(&one_line), None, "i".into(), "a".into()).unwrap();
        assert_eq!(config.kid(), again.kid());
        // SEC1.
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, p256.as_ref()).unwrap();
        let sec1 = pair.private_key().as_der().unwrap();
        let sec1 = pem("EC PRIVATE KEY", sec1.as_ref());
        let from_sec1 = IdentityConfig::new(Some(&sec1), None, "i".into(), "a".into()).unwrap();
        assert_eq!(config.kid(), from_sec1.kid());

        let ed = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let ed = IdentityConfig::new(
            Some(&pem("PRIVATE KEY", ed.as_ref())),
            None,
            "i".into(),
            "a".into(),
        )
        .unwrap();
        assert_eq!(ed.key.alg, Algorithm::EdDSA);
    }

    #[test]
    fn keys_that_cannot_sign_identities_are_refused() {
        let rng = SystemRandom::new();
        let p384 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng).unwrap();
        let e = err(&pem("PRIVATE KEY", p384.as_ref()));
        assert_eq!(e.var, KEY_VAR);
        assert!(e.problem.contains("P-384"), "{}", e.problem);
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let mut spki = P256_SPKI_PREFIX.to_vec();
        spki.extend_from_slice(pair.public_key().as_ref());
        let e = err(&pem("PUBLIC KEY", &spki));
        assert!(e.problem.contains("public key"), "{}", e.problem);
        assert_eq!(err("not a key").var, KEY_VAR);
        assert_eq!(err(&pem("RSA PRIVATE KEY", b"xyz")).var, KEY_VAR);
        assert_eq!(err(&pem("PRIVATE KEY", b"xyz")).var, KEY_VAR);
        // A public key is a fine previous key, and is published beside the current one.
        let public = pem("PUBLIC KEY", &spki);
        let config = IdentityConfig::new(None, Some(&public), "i".into(), "a".into()).unwrap();
        assert!(config.generated);
        let tokens = IdentityTokens::new(config, crate::clock::system()).unwrap();
        let jwks: serde_json::Value = serde_json::from_slice(&tokens.jwks()).unwrap();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
        let bad_previous = IdentityConfig::new(None, Some("nope"), "i".into(), "a".into());
        assert_eq!(bad_previous.err().unwrap().var, PREVIOUS_KEY_VAR);
    }
}
