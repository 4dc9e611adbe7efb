//! What the signed identity (`GATEWAY_IDENTITY_TOKEN=true`) costs next to verification.
//!
//! Cases, each through [`Authenticator::verify`] (a static PEM key, no network) driven
//! by a current-thread tokio runtime, with the identity signer of the gateway:
//! - `rs256_verify_uncached`: a Clerk-like RS256 token verified afresh (no cache), the
//!   cost of a token seen for the first time;
//! - `rs256_verify_uncached_and_mint`: the same, and its identity minted (ES256): the
//!   cost of a distinct token with the identity on — the difference is the signature;
//! - `rs256_cached` and `rs256_cached_with_identity`: a repeated token, a cache hit,
//!   without and with its identity (kept with the token: no signature).
//!
//! Run with `cargo bench --bench identity` (criterion options after `--`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use criterion::Criterion;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use keygate::server::{IdentityConfig, IdentityTokens};
use keygate::{Authenticator, AuthenticatorBuilder};

fn pem(label: &str, der: &[u8]) -> String {
    pem::encode(&pem::Pem::new(label, der.to_vec()))
}

fn verifier(public: &str, cache: &str) -> Authenticator {
    let map: HashMap<String, String> = [("JWT_PUBLIC_KEY", public), ("TOKEN_CACHE_SIZE", cache)]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    AuthenticatorBuilder::from_lookup(|k| map.get(k).cloned())
        .unwrap()
        .revocations(|_: &str| false)
        .build()
        .unwrap()
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let private = pem(
        "PRIVATE KEY",
        AsDer::<Pkcs8V1Der>::as_der(&pair).unwrap().as_ref(),
    );
    let public = pem(
        "PUBLIC KEY",
        AsDer::<PublicKeyX509Der>::as_der(pair.public_key())
            .unwrap()
            .as_ref(),
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = serde_json::json!({
        "sub": "user_2bench", "sid": "sess_2bench", "iss": "https://issuer.bench",
        "azp": "http://localhost:3000", "iat": now, "nbf": now, "exp": now + 86_400,
        "v": 2, "o": {"id": "org_1", "slg": "acme", "rol": "admin", "per": "read", "fpm": "1"},
        "pla": "u:free,o:pro",
    });
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &claims,
        &EncodingKey::from_rsa_pem(private.as_bytes()).unwrap(),
    )
    .unwrap();
    let identity = IdentityTokens::new(
        IdentityConfig::new(None, None, "keygate".into(), "http://127.0.0.1:8000".into()).unwrap(),
        keygate::clock::system(),
    )
    .unwrap();
    let uncached = verifier(&public, "0");
    let cached = verifier(&public, "10000");
    // Warm the cache and the kept identity; check everything works.
    let user = rt.block_on(cached.verify(&token)).unwrap();
    let first = identity.value(&user).unwrap();
    let again = rt.block_on(cached.verify(&token)).unwrap();
    assert_eq!(
        identity.value(&again).unwrap(),
        first,
        "the identity is kept"
    );

    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("identity");
    group.bench_function("rs256_verify_uncached", |b| {
        b.iter(|| rt.block_on(uncached.verify(black_box(&token))).unwrap())
    });
    group.bench_function("rs256_verify_uncached_and_mint", |b| {
        b.iter(|| {
            let user = rt.block_on(uncached.verify(black_box(&token))).unwrap();
            identity.value(&user).unwrap()
        })
    });
    group.bench_function("rs256_cached", |b| {
        b.iter(|| rt.block_on(cached.verify(black_box(&token))).unwrap())
    });
    group.bench_function("rs256_cached_with_identity", |b| {
        b.iter(|| {
            let user = rt.block_on(cached.verify(black_box(&token))).unwrap();
            identity.value(&user).unwrap()
        })
    });
    group.finish();
    c.final_summary();
}
