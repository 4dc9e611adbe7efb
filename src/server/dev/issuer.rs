//! The signing half of `keygate dev`: an RSA-2048 key pair that lives only in memory,
//! its public JWKS, and Clerk-shaped session tokens signed with it.
//!
//! The private key is generated at start and never written anywhere; a restart makes
//! a new key and a new `kid`, so old development tokens stop verifying. This module
//! only signs: verification goes through the service's ordinary path, which fetches
//! [`DevIssuer::jwks`] over HTTP like any remote JWKS.

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rsa::{KeyPair, KeySize};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::Rng;
use serde_json::{Map, Value, json};

use crate::clock::SharedClock;

/// The user id of the token printed at start and the default of `POST /dev/token`.
pub const DEFAULT_SUBJECT: &str = "user_dev";
/// Lifetime of the token printed at start and the default of `POST /dev/token`.
pub const DEFAULT_TTL_SECS: u64 = 3600;
/// The longest lifetime `POST /dev/token` grants (one day).
pub const MAX_TTL_SECS: u64 = 86_400;

/// Why the development issuer could not be created or could not sign.
#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    /// aws-lc-rs refused to generate or export the key pair.
    #[error("cannot generate the development RSA key pair")]
    KeyGeneration,
    /// jsonwebtoken refused the generated key or the claims.
    #[error("cannot sign with the development key: {0}")]
    Signing(#[from] jsonwebtoken::errors::Error),
}

/// Who the development tokens are for: the service's own policy, so that the tokens
/// it mints pass the checks the rest of the configuration asks for.
#[derive(Debug, Clone)]
pub struct Audience {
    /// `iss` of every token: `http://<addr>/dev`.
    pub issuer: String,
    /// `azp` of every token (a Clerk session token names the frontend origin).
    pub authorized_party: String,
    /// `aud`, when `JWT_AUDIENCE` asks for one.
    pub audience: Option<String>,
    /// The claim that carries the user id besides `sub` (`JWT_USER_CLAIM`).
    pub user_claim: String,
}

/// The in-memory development issuer.
pub struct DevIssuer {
    kid: String,
    key: EncodingKey,
    jwk: Value,
    audience: Audience,
    clock: SharedClock,
}

impl std::fmt::Debug for DevIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevIssuer")
            .field("kid", &self.kid)
            .field("issuer", &self.audience.issuer)
            .finish_non_exhaustive()
    }
}

impl DevIssuer {
    /// Generates a fresh RSA-2048 key pair with a random `kid`.
    pub fn generate(audience: Audience, clock: SharedClock) -> Result<DevIssuer, IssuerError> {
        let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| IssuerError::KeyGeneration)?;
        let der = AsDer::<Pkcs8V1Der>::as_der(&pair).map_err(|_| IssuerError::KeyGeneration)?;
        // jsonwebtoken reads RSA private keys from PEM (it unwraps PKCS#8 itself).
        let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", der.as_ref().to_vec()));
        let key = EncodingKey::from_rsa_pem(pem.as_bytes())?;
        let kid = random_hex(8);
        let mut jwk = serde_json::to_value(Jwk::from_encoding_key(&key, Algorithm::RS256)?)
            .map_err(jsonwebtoken::errors::Error::from)?;
        if let Some(fields) = jwk.as_object_mut() {
            fields.insert("kid".into(), json!(kid));
            fields.insert("use".into(), json!("sig"));
            fields.insert("alg".into(), json!("RS256"));
        }
        Ok(DevIssuer {
            kid,
            key,
            jwk,
            audience,
            clock,
        })
    }

    /// The key id written into every token header and the JWK.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The `iss` of every token.
    pub fn issuer(&self) -> &str {
        &self.audience.issuer
    }

    /// The public JWKS document: `{"keys": [<the one RS256 key>]}`.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.jwk] })
    }

    /// A token for `sub` valid `ttl_secs` from now, with a fresh session id; `extra`
    /// claims are written last, so they override the standard ones.
    pub fn token(
        &self,
        sub: &str,
        ttl_secs: u64,
        extra: &Map<String, Value>,
    ) -> Result<String, IssuerError> {
        let now = self.clock.unix_secs();
        let mut claims = Map::new();
        claims.insert("iss".into(), json!(self.audience.issuer));
        claims.insert("sub".into(), json!(sub));
        claims.insert("sid".into(), json!(format!("sess_{}", random_hex(12))));
        claims.insert("azp".into(), json!(self.audience.authorized_party));
        claims.insert("iat".into(), json!(now));
        claims.insert("nbf".into(), json!(now));
        claims.insert("exp".into(), json!(now.saturating_add(ttl_secs)));
        if let Some(aud) = &self.audience.audience {
            claims.insert("aud".into(), json!(aud));
        }
        if self.audience.user_claim != "sub" {
            claims.insert(self.audience.user_claim.clone(), json!(sub));
        }
        for (name, value) in extra {
            claims.insert(name.clone(), value.clone());
        }
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, &claims, &self.key)?)
    }
}

/// `bytes` random bytes as lowercase hex.
fn random_hex(bytes: usize) -> String {
    let mut rng = rand::rng();
    (0..bytes)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn part(token: &str, index: usize) -> Value {
        let raw = token.split('.').nth(index).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(raw).unwrap()).unwrap()
    }

    fn issuer(user_claim: &str, audience: Option<&str>) -> DevIssuer {
        DevIssuer::generate(
            Audience {
                issuer: "http://127.0.0.1:9/dev".into(),
                authorized_party: "http://127.0.0.1:9".into(),
                audience: audience.map(String::from),
                user_claim: user_claim.into(),
            },
            ManualClock::new(1_000),
        )
        .unwrap()
    }

    #[test]
    fn tokens_are_clerk_shaped_and_extra_claims_win() {
        let dev = issuer("sub", None);
        let extra = json!({"org_id": "org_1", "azp": "http://localhost:3000"});

        let token = dev.token("user_a", 60, extra.as_object().unwrap()).unwrap();

        let header = part(&token, 0);
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["kid"], dev.kid());
        let claims = part(&token, 1);
        assert_eq!(claims["iss"], "http://127.0.0.1:9/dev");
        assert_eq!(claims["sub"], "user_a");
        assert!(claims["sid"].as_str().unwrap().starts_with("sess_"));
        assert_eq!(
            (claims["iat"].clone(), claims["nbf"].clone()),
            (json!(1_000), json!(1_000))
        );
        assert_eq!(claims["exp"], 1_060);
        assert_eq!(claims["azp"], "http://localhost:3000");
        assert_eq!(claims["org_id"], "org_1");
        assert!(claims.get("aud").is_none());
    }

    #[test]
    fn configured_user_claim_and_audience_are_filled() {
        let claims = part(
            &issuer("user_id", Some("api"))
                .token("42", 60, &Map::new())
                .unwrap(),
            1,
        );
        assert_eq!(
            (claims["user_id"].clone(), claims["aud"].clone()),
            (json!("42"), json!("api"))
        );
    }

    #[test]
    fn jwks_publishes_the_public_key_only() {
        let dev = issuer("sub", None);
        let jwks = dev.jwks();
        let key = &jwks["keys"][0];
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
        assert_eq!(
            (
                key["kty"].clone(),
                key["kid"].clone(),
                key["use"].clone(),
                key["alg"].clone()
            ),
            (json!("RSA"), json!(dev.kid()), json!("sig"), json!("RS256"))
        );
        assert!(key.get("d").is_none(), "no private parameter leaks");
        assert_eq!(dev.kid().len(), 16);
        assert_ne!(dev.kid(), issuer("sub", None).kid());
    }
}
