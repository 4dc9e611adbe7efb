//! Keys and tokens for tests: RSA/EC/Ed keys generated once per test binary.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// A shared secret of 32+ bytes.
pub const SECRET: &str = "test-secret-that-is-at-least-32-bytes-long";

/// Unix time now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Clerk-shaped claims for `sub`, valid for ten minutes.
pub fn claims(sub: &str) -> Value {
    let now = now();
    json!({"sub": sub, "sid": format!("sess_{sub}"), "iat": now, "nbf": now, "exp": now + 600, "iss": "https://issuer.test", "azp": "http://localhost:3000"})
}

/// A private key able to sign, with its public JWK.
#[derive(Clone)]
pub struct Signer {
    /// Key id written into the token header and the JWK.
    pub kid: String,
    /// Algorithm.
    pub alg: Algorithm,
    pub encoding: EncodingKey,
    pub public: Jwk,
    /// The private key as PKCS#8 PEM (for `keygate mint --key`).
    pub private_pem: String,
    /// The public key as SPKI PEM (for `JWT_PUBLIC_KEY`).
    pub public_pem: String,
}

fn pem(label: &str, der: &[u8]) -> String {
    ::pem::encode(&::pem::Pem::new(label, der.to_vec()))
}

fn rsa_pool() -> &'static Vec<(Vec<u8>, Vec<u8>)> {
    static POOL: OnceLock<Vec<(Vec<u8>, Vec<u8>)>> = OnceLock::new();
    POOL.get_or_init(|| {
        (0..4)
            .map(|_| {
                let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
                let private = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair)
                    .unwrap()
                    .as_ref()
                    .to_vec();
                let public = aws_lc_rs::signature::KeyPair::public_key(&pair);
                let spki = AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(public)
                    .unwrap()
                    .as_ref()
                    .to_vec();
                (private, spki)
            })
            .collect()
    })
}

impl Signer {
    /// RSA key number `index` (0..4) of the pool, under `kid`, for `alg` (RS*/PS*).
    pub fn rsa(index: usize, kid: &str, alg: Algorithm) -> Signer {
        let (private, spki) = &rsa_pool()[index];
        let private_pem = pem("PRIVATE KEY", private);
        let encoding = EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap();
        let public = Jwk::from_encoding_key(&encoding, alg).unwrap();
        Signer {
            kid: kid.into(),
            alg,
            encoding,
            public,
            private_pem,
            public_pem: pem("PUBLIC KEY", spki),
        }
    }

    /// RS256 with pool key `index`.
    pub fn rs256(index: usize, kid: &str) -> Signer {
        Self::rsa(index, kid, Algorithm::RS256)
    }

    /// A fresh P-256 key for ES256.
    pub fn es256(kid: &str) -> Signer {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let spki = AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(
            aws_lc_rs::signature::KeyPair::public_key(&pair),
        )
        .unwrap()
        .as_ref()
        .to_vec();
        let encoding = EncodingKey::from_ec_der(pkcs8.as_ref());
        let public = Jwk::from_encoding_key(&encoding, Algorithm::ES256).unwrap();
        Signer {
            kid: kid.into(),
            alg: Algorithm::ES256,
            encoding,
            public,
            private_pem: pem("PRIVATE KEY", pkcs8.as_ref()),
            public_pem: pem("PUBLIC KEY", &spki),
        }
    }

    /// A fresh Ed25519 key for EdDSA.
    pub fn ed25519(kid: &str) -> Signer {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8v1(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let spki = AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(
            aws_lc_rs::signature::KeyPair::public_key(&pair),
        )
        .unwrap()
        .as_ref()
        .to_vec();
        let encoding = EncodingKey::from_ed_der(pkcs8.as_ref());
        let public = Jwk::from_encoding_key(&encoding, Algorithm::EdDSA).unwrap();
        Signer {
            kid: kid.into(),
            alg: Algorithm::EdDSA,
            encoding,
            public,
            private_pem: pem("PRIVATE KEY", pkcs8.as_ref()),
            public_pem: pem("PUBLIC KEY", &spki),
        }
    }

    /// The public JWK with `kid`, `use: sig` and `alg`.
    pub fn jwk(&self) -> Value {
        let mut jwk = serde_json::to_value(&self.public).unwrap();
        let obj = jwk.as_object_mut().unwrap();
        obj.insert("kid".into(), json!(self.kid));
        obj.insert("use".into(), json!("sig"));
        jwk
    }

    /// A token with this key's `kid` and the given claims.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }

    /// A token with a custom header (fields merged over `alg`/`kid`/`typ`).
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        let mut full = json!({"alg": format!("{:?}", self.alg), "typ": "JWT", "kid": self.kid});
        for (k, v) in header.as_object().unwrap() {
            full[k] = v.clone();
        }
        let signing_input = format!("{}.{}", b64(&full.to_string()), b64(&claims.to_string()));
        let signature =
            jsonwebtoken::crypto::sign(signing_input.as_bytes(), &self.encoding, self.alg).unwrap();
        format!("{signing_input}.{signature}")
    }
}

/// base64url without padding.
pub fn b64(s: &str) -> String {
    URL_SAFE_NO_PAD.encode(s)
}

/// An HS token signed with `secret`.
pub fn hs(alg: Algorithm, secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(alg),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// An HS256 token signed with [`SECRET`].
pub fn hs256(claims: &Value) -> String {
    hs(Algorithm::HS256, SECRET, claims)
}

/// An HS256 token with a custom header.
pub fn hs256_with_header(header: &Value, claims: &Value) -> String {
    let signing_input = format!("{}.{}", b64(&header.to_string()), b64(&claims.to_string()));
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let signature =
        jsonwebtoken::crypto::sign(signing_input.as_bytes(), &key, Algorithm::HS256).unwrap();
    format!("{signing_input}.{signature}")
}
