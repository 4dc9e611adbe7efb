//! The builder's settings as the environment fills them, their validation and the
//! one error assembly can still report.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use jsonwebtoken::Algorithm;

use super::super::error::ConfigError;
use super::AuthenticatorBuilder;
use super::validate::Resolved;
use crate::Authenticator;
use crate::keys::fetch::JwksSource;

const SECRET: &str = "a-very-long-shared-secret-of-32+bytes!";

fn builder(vars: &[(&str, &str)]) -> Result<AuthenticatorBuilder, ConfigError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    AuthenticatorBuilder::from_lookup(move |k| map.get(k).cloned())
}

fn resolved(vars: &[(&str, &str)]) -> Result<(AuthenticatorBuilder, Resolved), ConfigError> {
    let b = builder(vars)?;
    let r = b.resolve()?;
    Ok((b, r))
}

fn err(vars: &[(&str, &str)]) -> ConfigError {
    match resolved(vars) {
        Ok(_) => panic!("expected a configuration error for {vars:?}"),
        Err(e) => e,
    }
}

#[test]
fn defaults_with_a_secret() {
    let (b, r) = resolved(&[("JWT_SECRET", SECRET)]).unwrap();
    assert_eq!(r.algorithms, vec![Algorithm::HS256]);
    assert_eq!(b.user_claim, "sub");
    assert_eq!(b.cookie_name.as_deref(), Some("__session"));
    assert_eq!(b.leeway, Duration::from_secs(5));
    assert_eq!(b.refresh_interval, Duration::from_secs(300));
    assert_eq!(b.cooldown, Duration::from_secs(10));
    assert_eq!(b.fetch_timeout, Duration::from_secs(5));
    assert_eq!(b.max_stale, Duration::from_secs(86_400));
    assert_eq!(b.token_cache_size, 10_000);
    assert!(r.jwks.is_none() && r.issuers.is_empty() && b.audiences.is_empty());
}

#[test]
fn no_key_source_names_all_three_and_dev() {
    let e = err(&[]);
    assert!(
        e.var.contains("JWKS_URL")
            && e.var.contains("JWT_PUBLIC_KEY")
            && e.var.contains("JWT_SECRET")
    );
    assert!(e.to_string().contains("keygate dev"));
}

#[test]
fn short_secret_is_rejected_without_echoing_it() {
    let e = err(&[("JWT_SECRET", "short-secret")]);
    assert_eq!(e.var, "JWT_SECRET");
    assert!(!e.to_string().contains("short-secret"));
    let e = Authenticator::builder()
        .secret("short-secret")
        .build()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "JWT_SECRET: must be at least 32 bytes, got 12"
    );
}

#[test]
fn base64_secret_in_both_alphabets_and_the_value_as_it_is() {
    let raw = [0xfbu8; 40];
    let std = STANDARD.encode(raw);
    let url = URL_SAFE_NO_PAD.encode(raw);
    for v in [format!("base64:{std}"), format!("base64:{url}")] {
        let (b, _) = resolved(&[("JWT_SECRET", &v)]).unwrap();
        assert_eq!(b.secret.unwrap().value, raw.to_vec());
    }
    assert_eq!(err(&[("JWT_SECRET", "base64:***")]).var, "JWT_SECRET");
    let short = format!("base64:{}", STANDARD_NO_PAD.encode([1u8; 31]));
    assert_eq!(err(&[("JWT_SECRET", &short)]).var, "JWT_SECRET");
    let spaced = format!("{SECRET} ");
    let (b, _) = resolved(&[("JWT_SECRET", &spaced)]).unwrap();
    assert_eq!(b.secret.unwrap().value, spaced.as_bytes());
}

#[test]
fn jwks_url_and_alias() {
    let (_, r) = resolved(&[(
        "CLERK_JWKS_URL",
        "https://x.clerk.accounts.dev/.well-known/jwks.json",
    )])
    .unwrap();
    assert_eq!(
        r.jwks.unwrap().url,
        "https://x.clerk.accounts.dev/.well-known/jwks.json"
    );
    assert_eq!(r.algorithms, vec![Algorithm::RS256]);
    let (_, r) = resolved(&[
        ("JWKS_URL", "http://a/jwks"),
        ("CLERK_JWKS_URL", "http://b/jwks"),
    ])
    .unwrap();
    assert_eq!(r.jwks.unwrap().url, "http://a/jwks");
    assert_eq!(err(&[("JWKS_URL", "ftp://x")]).var, "JWKS_URL");
    assert_eq!(err(&[("CLERK_JWKS_URL", "nope")]).var, "CLERK_JWKS_URL");
}

#[test]
fn numbers_and_flags() {
    let base = ("JWT_SECRET", SECRET);
    for var in [
        "JWT_LEEWAY_SECS",
        "JWKS_REFRESH_SECS",
        "JWKS_COOLDOWN_SECS",
        "JWKS_TIMEOUT_SECS",
        "TOKEN_CACHE_SIZE",
        "JWKS_MAX_STALE_SECS",
    ] {
        assert_eq!(builder(&[base, (var, "abc")]).unwrap_err().var, var);
        assert_eq!(builder(&[base, (var, "-1")]).unwrap_err().var, var);
    }
    assert_eq!(
        builder(&[base, ("JWKS_REFRESH_SECS", "0")])
            .unwrap_err()
            .var,
        "JWKS_REFRESH_SECS"
    );
    assert_eq!(
        builder(&[base, ("JWKS_REFRESH_SECS", "1")])
            .unwrap()
            .refresh_interval,
        Duration::from_secs(1)
    );
    assert_eq!(
        builder(&[base, ("TOKEN_CACHE_SIZE", "0")])
            .unwrap()
            .token_cache_size,
        0
    );
    assert_eq!(
        builder(&[base, ("JWT_REQUIRE_AZP", "maybe")])
            .unwrap_err()
            .var,
        "JWT_REQUIRE_AZP"
    );
    assert!(
        builder(&[base, ("JWT_ACCEPT_PENDING", "TRUE")])
            .unwrap()
            .accept_pending
    );
}

#[test]
fn algorithms_allow_list() {
    let (_, r) = resolved(&[
        ("JWT_SECRET", SECRET),
        ("JWT_ALGORITHMS", "HS512, hs256,HS512"),
    ])
    .unwrap();
    assert_eq!(r.algorithms, vec![Algorithm::HS512, Algorithm::HS256]);
    assert_eq!(
        builder(&[("JWT_SECRET", SECRET), ("JWT_ALGORITHMS", "none")])
            .unwrap_err()
            .var,
        "JWT_ALGORITHMS"
    );
    assert_eq!(
        err(&[("JWKS_URL", "http://a/j"), ("JWT_ALGORITHMS", "HS256")]).var,
        "JWT_ALGORITHMS"
    );
    let (_, r) = resolved(&[("JWKS_URL", "http://a/j"), ("JWT_SECRET", SECRET)]).unwrap();
    assert_eq!(r.algorithms, vec![Algorithm::RS256, Algorithm::HS256]);
}

#[test]
fn lists_and_cookie() {
    let b = builder(&[
        ("JWT_SECRET", SECRET),
        ("JWT_ISSUER", "https://a, https://b"),
        ("JWT_AUDIENCE", "api"),
        ("JWT_AUTHORIZED_PARTIES", "http://localhost:3000"),
        ("JWT_COOKIE_NAME", ""),
    ])
    .unwrap();
    assert_eq!(b.issuers, vec!["https://a", "https://b"]);
    assert_eq!(b.audiences, vec!["api"]);
    assert_eq!(b.authorized_parties.value, vec!["http://localhost:3000"]);
    assert_eq!(b.cookie_name, None);
}

#[test]
fn public_key_errors_name_the_variable() {
    assert_eq!(
        err(&[("JWT_PUBLIC_KEY", "not a key")]).var,
        "JWT_PUBLIC_KEY"
    );
    assert_eq!(
        err(&[(
            "CLERK_JWT_KEY",
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"
        )])
        .var,
        "CLERK_JWT_KEY"
    );
}

fn pk(host_and_dollar: &str, prefix: &str) -> String {
    format!("{prefix}{}", STANDARD.encode(host_and_dollar))
}

#[test]
fn publishable_key_derives_jwks_and_issuer_and_explicit_values_win() {
    let key = pk("clerk.example.com$", "pk_live_");
    let (_, r) = resolved(&[("CLERK_PUBLISHABLE_KEY", &key)]).unwrap();
    assert_eq!(
        r.jwks.as_ref().unwrap().url,
        "https://clerk.example.com/.well-known/jwks.json"
    );
    assert_eq!(r.jwks.unwrap().bearer, None);
    assert_eq!(r.issuers, vec!["https://clerk.example.com"]);
    let (_, r) = resolved(&[
        ("CLERK_PUBLISHABLE_KEY", &key),
        ("CLERK_SECRET_KEY", "sk_test_abc"),
        ("JWKS_URL", "http://127.0.0.1:9/jwks"),
        ("JWT_ISSUER", "http://other"),
    ])
    .unwrap();
    assert_eq!(
        r.jwks.unwrap(),
        JwksSource {
            url: "http://127.0.0.1:9/jwks".into(),
            bearer: None
        }
    );
    assert_eq!(r.issuers, vec!["http://other"]);
    assert_eq!(
        err(&[("CLERK_PUBLISHABLE_KEY", "pk_test_bm9wZQ")]).var,
        "CLERK_PUBLISHABLE_KEY"
    );
}

#[test]
fn secret_key_uses_backend_api_only_without_other_jwks() {
    let (_, r) = resolved(&[
        ("CLERK_SECRET_KEY", "sk_test_123"),
        ("CLERK_API_URL", "http://127.0.0.1:1/"),
    ])
    .unwrap();
    let jwks = r.jwks.unwrap();
    assert_eq!(jwks.url, "http://127.0.0.1:1/v1/jwks");
    assert_eq!(jwks.bearer.as_deref(), Some("sk_test_123"));
    assert!(!format!("{jwks:?}").contains("sk_test_123"));
    assert_eq!(
        err(&[("CLERK_SECRET_KEY", "pk_nope")]).var,
        "CLERK_SECRET_KEY"
    );
    let e = err(&[
        ("CLERK_SECRET_KEY", "sk_x"),
        ("CLERK_API_URL", "api.clerk.com"),
    ]);
    assert_eq!(e.var, "CLERK_API_URL");
}

#[test]
fn build_outside_an_actix_runtime_is_an_error_not_a_panic() {
    let e = Authenticator::builder()
        .jwks_url("http://127.0.0.1:9/jwks.json")
        .build()
        .unwrap_err();
    assert_eq!(e.var, "JWKS_URL");
    assert!(e.problem.contains("actix"));
}
