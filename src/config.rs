//! Settings read once from the environment (and `.env`), validated before anything starts.
//!
//! Every variable of the contract has its default here and nowhere else. A bad value
//! becomes a [`ConfigError`] naming the variable; this module never panics and never
//! puts a secret into an error message.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey};

use crate::keys::KeyKind;

/// A configuration problem: the variable and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    /// The environment variable at fault (several, comma-separated, when none was set).
    pub var: String,
    /// What is wrong, without the value when the value is a secret.
    pub problem: String,
}

impl ConfigError {
    fn new(var: &str, problem: impl Into<String>) -> Self {
        Self {
            var: var.to_string(),
            problem: problem.into(),
        }
    }
}

/// Log line format chosen by `LOG_FORMAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line.
    Json,
}

/// Where the JWKS comes from.
#[derive(Clone, PartialEq, Eq)]
pub struct JwksSource {
    /// The URL fetched by the key-rotation actor.
    pub url: String,
    /// A bearer secret sent with the fetch (only for Clerk's Backend API JWKS).
    pub bearer: Option<String>,
}

impl std::fmt::Debug for JwksSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksSource")
            .field("url", &self.url)
            .field("bearer", &self.bearer.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// A PEM public key given by `JWT_PUBLIC_KEY`, parsed at start.
#[derive(Clone)]
pub struct StaticKey {
    /// The verification key.
    pub key: DecodingKey,
    /// Which algorithms it can serve.
    pub kind: KeyKind,
}

impl std::fmt::Debug for StaticKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticKey")
            .field("kind", &self.kind)
            .finish()
    }
}

/// Validated settings of one keygate process.
#[derive(Clone)]
pub struct Settings {
    /// `BIND_ADDR`.
    pub bind_addr: SocketAddr,
    /// `WORKERS`.
    pub workers: usize,
    /// `JWKS_URL` / `CLERK_JWKS_URL`, or derived from the Clerk keys.
    pub jwks: Option<JwksSource>,
    /// `JWT_PUBLIC_KEY` / `CLERK_JWT_KEY`.
    pub public_key: Option<StaticKey>,
    /// `JWT_SECRET`, decoded.
    pub secret: Option<Vec<u8>>,
    /// `JWT_ALGORITHMS`.
    pub algorithms: Vec<Algorithm>,
    /// `JWT_ISSUER` (empty: not checked).
    pub issuers: Vec<String>,
    /// `JWT_AUDIENCE` (empty: not checked).
    pub audiences: Vec<String>,
    /// `JWT_AUTHORIZED_PARTIES` (empty: not checked).
    pub authorized_parties: Vec<String>,
    /// `JWT_REQUIRE_AZP`.
    pub require_azp: bool,
    /// `JWT_ACCEPT_PENDING`.
    pub accept_pending: bool,
    /// `JWT_LEEWAY_SECS`.
    pub leeway_secs: u64,
    /// `JWT_USER_CLAIM`.
    pub user_claim: String,
    /// `JWT_COOKIE_NAME` (`None` when empty).
    pub cookie_name: Option<String>,
    /// `JWKS_REFRESH_SECS`.
    pub refresh: Duration,
    /// `JWKS_COOLDOWN_SECS`.
    pub cooldown: Duration,
    /// `JWKS_TIMEOUT_SECS`.
    pub fetch_timeout: Duration,
    /// `JWKS_MAX_STALE_SECS`.
    pub max_stale: Duration,
    /// `TOKEN_CACHE_SIZE` (0 disables).
    pub token_cache_size: usize,
    /// `DATABASE_URL`.
    pub database_url: String,
    /// `CLERK_WEBHOOK_SECRET`, decoded.
    pub webhook_secret: Option<Vec<u8>>,
    /// `LOG_FORMAT`.
    pub log_format: LogFormat,
    /// `APP_ENV=production`.
    pub production: bool,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("bind_addr", &self.bind_addr)
            .field("jwks", &self.jwks)
            .field("public_key", &self.public_key)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("algorithms", &self.algorithms)
            .field("issuers", &self.issuers)
            .field("audiences", &self.audiences)
            .finish_non_exhaustive()
    }
}

const DEFAULT_DATABASE_URL: &str = "sqlite://keygate.db?mode=rwc";
const DEFAULT_CLERK_API_URL: &str = "https://api.clerk.com";
const MIN_SECRET_BYTES: usize = 32;

/// Every variable keygate reads, for `.env.example` checks and documentation tests.
pub const VARIABLES: &[&str] = &[
    "BIND_ADDR",
    "WORKERS",
    "JWKS_URL",
    "CLERK_JWKS_URL",
    "JWT_PUBLIC_KEY",
    "CLERK_JWT_KEY",
    "JWT_SECRET",
    "JWT_ALGORITHMS",
    "JWT_ISSUER",
    "JWT_AUDIENCE",
    "JWT_AUTHORIZED_PARTIES",
    "JWT_LEEWAY_SECS",
    "JWT_USER_CLAIM",
    "JWT_COOKIE_NAME",
    "JWKS_REFRESH_SECS",
    "JWKS_COOLDOWN_SECS",
    "JWKS_TIMEOUT_SECS",
    "TOKEN_CACHE_SIZE",
    "DATABASE_URL",
    "CLERK_WEBHOOK_SECRET",
    "RUST_LOG",
    "LOG_FORMAT",
    "CLERK_PUBLISHABLE_KEY",
    "CLERK_SECRET_KEY",
    "CLERK_API_URL",
    "JWT_REQUIRE_AZP",
    "JWT_ACCEPT_PENDING",
    "JWKS_MAX_STALE_SECS",
    "APP_ENV",
];

/// Reads variables through a lookup function so tests need not touch the process environment.
struct Env<F: Fn(&str) -> Option<String>>(F);

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// A set, non-blank value.
    fn get(&self, var: &str) -> Option<String> {
        (self.0)(var)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// The first of a variable and its alias that is set, with the name it was found under.
    fn get_alias(&self, var: &'static str, alias: &'static str) -> Option<(&'static str, String)> {
        self.get(var)
            .map(|v| (var, v))
            .or_else(|| self.get(alias).map(|v| (alias, v)))
    }

    fn number<T>(&self, var: &str, default: T, min: T) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        match self.get(var) {
            None => Ok(default),
            Some(raw) => match raw.parse::<T>() {
                Ok(n) if n >= min => Ok(n),
                Ok(_) => Err(ConfigError::new(
                    var,
                    format!("must be at least {min}, got {raw}"),
                )),
                Err(_) => Err(ConfigError::new(
                    var,
                    format!("expected a whole number, got {raw:?}"),
                )),
            },
        }
    }

    fn flag(&self, var: &str) -> Result<bool, ConfigError> {
        match self.get(var).map(|v| v.to_ascii_lowercase()) {
            None => Ok(false),
            Some(v) if matches!(v.as_str(), "1" | "true" | "yes" | "on") => Ok(true),
            Some(v) if matches!(v.as_str(), "0" | "false" | "no" | "off") => Ok(false),
            Some(v) => Err(ConfigError::new(
                var,
                format!("expected true or false, got {v:?}"),
            )),
        }
    }

    fn list(&self, var: &str) -> Vec<String> {
        self.get(var)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Settings {
    /// Settings from the process environment, after loading `.env` when present
    /// (real environment variables win, as dotenvy never overrides them).
    pub fn from_env() -> Result<Settings, ConfigError> {
        load_dotenv()?;
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Settings from the environment (and `.env`) without requiring a key source, for
    /// commands that verify nothing (`migrate`) or bring their own issuer (`dev`).
    pub fn from_lookup_without_keys_from_env() -> Result<Settings, ConfigError> {
        load_dotenv()?;
        Self::from_lookup_without_keys(|k| std::env::var(k).ok())
    }

    /// Settings from any lookup function (the environment in production, a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        Self::parse(&Env(lookup), false)
    }

    /// Like [`Settings::from_lookup`] but without requiring a key source: `keygate dev`
    /// supplies its own issuer after reading the rest of the configuration.
    pub fn from_lookup_without_keys(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        Self::parse(&Env(lookup), true)
    }

    fn parse<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        keys_optional: bool,
    ) -> Result<Settings, ConfigError> {
        let bind_raw = env
            .get("BIND_ADDR")
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        let bind_addr = bind_raw.parse::<SocketAddr>().map_err(|_| {
            ConfigError::new(
                "BIND_ADDR",
                format!("expected host:port with an IP address, got {bind_raw:?}"),
            )
        })?;
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let workers = env.number("WORKERS", cores, 1)?;

        let clerk_host = match env.get("CLERK_PUBLISHABLE_KEY") {
            Some(pk) => Some(
                parse_publishable_key(&pk)
                    .map_err(|problem| ConfigError::new("CLERK_PUBLISHABLE_KEY", problem))?,
            ),
            None => None,
        };
        let clerk_secret = env.get("CLERK_SECRET_KEY");
        if let Some(sk) = &clerk_secret
            && !sk.starts_with("sk_")
        {
            return Err(ConfigError::new(
                "CLERK_SECRET_KEY",
                "expected a Clerk secret key starting with sk_",
            ));
        }
        let clerk_api = env
            .get("CLERK_API_URL")
            .unwrap_or_else(|| DEFAULT_CLERK_API_URL.into());
        check_url("CLERK_API_URL", &clerk_api)?;

        let jwks = match env.get_alias("JWKS_URL", "CLERK_JWKS_URL") {
            Some((var, url)) => {
                check_url(var, &url)?;
                Some(JwksSource { url, bearer: None })
            }
            None => match (&clerk_host, &clerk_secret) {
                (Some(host), _) => Some(JwksSource {
                    url: format!("https://{host}/.well-known/jwks.json"),
                    bearer: None,
                }),
                (None, Some(secret)) => Some(JwksSource {
                    url: format!("{}/v1/jwks", clerk_api.trim_end_matches('/')),
                    bearer: Some(secret.clone()),
                }),
                (None, None) => None,
            },
        };

        let public_key = match env.get_alias("JWT_PUBLIC_KEY", "CLERK_JWT_KEY") {
            Some((var, pem)) => Some(parse_public_key(&pem).map_err(|p| ConfigError::new(var, p))?),
            None => None,
        };

        let secret = match env.get("JWT_SECRET") {
            Some(raw) => Some(decode_secret(&raw).map_err(|p| ConfigError::new("JWT_SECRET", p))?),
            None => None,
        };

        if jwks.is_none() && public_key.is_none() && secret.is_none() && !keys_optional {
            return Err(ConfigError::new(
                "JWKS_URL, JWT_PUBLIC_KEY, JWT_SECRET",
                "no key source is set: set one of them (or CLERK_PUBLISHABLE_KEY / CLERK_SECRET_KEY), \
                 or run `keygate dev` for a local development issuer",
            ));
        }

        let algorithms = match env.get("JWT_ALGORITHMS") {
            Some(raw) => {
                let mut algs = Vec::new();
                for name in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let alg = parse_algorithm(name).ok_or_else(|| {
                        ConfigError::new(
                            "JWT_ALGORITHMS",
                            format!("unsupported algorithm {name:?}"),
                        )
                    })?;
                    if !algs.contains(&alg) {
                        algs.push(alg);
                    }
                }
                if algs.is_empty() {
                    return Err(ConfigError::new("JWT_ALGORITHMS", "lists no algorithm"));
                }
                if secret.is_none() && algs.iter().any(|a| is_hmac(*a)) && !keys_optional {
                    return Err(ConfigError::new(
                        "JWT_ALGORITHMS",
                        "lists an HS algorithm but JWT_SECRET is not set",
                    ));
                }
                algs
            }
            None => {
                let mut algs = Vec::new();
                if jwks.is_some() || public_key.is_some() || keys_optional {
                    algs.push(Algorithm::RS256);
                }
                if secret.is_some() {
                    algs.push(Algorithm::HS256);
                }
                algs
            }
        };

        let user_claim = env.get("JWT_USER_CLAIM").unwrap_or_else(|| "sub".into());
        let cookie_name = match (env.0)("JWT_COOKIE_NAME") {
            None => Some("__session".to_string()),
            Some(v) if v.trim().is_empty() => None,
            Some(v) => Some(v.trim().to_string()),
        };

        let webhook_secret = match env.get("CLERK_WEBHOOK_SECRET") {
            Some(raw) => Some(
                crate::webhooks::clerk::decode_signing_secret(&raw)
                    .map_err(|p| ConfigError::new("CLERK_WEBHOOK_SECRET", p))?,
            ),
            None => None,
        };

        let log_format = match env
            .get("LOG_FORMAT")
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError::new(
                    "LOG_FORMAT",
                    format!("expected text or json, got {other:?}"),
                ));
            }
        };

        let database_url = env
            .get("DATABASE_URL")
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(ConfigError::new(
                "DATABASE_URL",
                "expected a sqlite: or postgres:// URL",
            ));
        }

        let mut issuers = env.list("JWT_ISSUER");
        if issuers.is_empty()
            && let Some(host) = &clerk_host
        {
            issuers.push(format!("https://{host}"));
        }

        Ok(Settings {
            bind_addr,
            workers,
            jwks,
            public_key,
            secret,
            algorithms,
            issuers,
            audiences: env.list("JWT_AUDIENCE"),
            authorized_parties: env.list("JWT_AUTHORIZED_PARTIES"),
            require_azp: env.flag("JWT_REQUIRE_AZP")?,
            accept_pending: env.flag("JWT_ACCEPT_PENDING")?,
            leeway_secs: env.number("JWT_LEEWAY_SECS", 5, 0)?,
            user_claim,
            cookie_name,
            refresh: Duration::from_secs(env.number("JWKS_REFRESH_SECS", 300, 1)?),
            cooldown: Duration::from_secs(env.number("JWKS_COOLDOWN_SECS", 10, 0)?),
            fetch_timeout: Duration::from_secs(env.number("JWKS_TIMEOUT_SECS", 5, 1)?),
            max_stale: Duration::from_secs(env.number("JWKS_MAX_STALE_SECS", 86_400, 1)?),
            token_cache_size: env.number("TOKEN_CACHE_SIZE", 10_000, 0)?,
            database_url,
            webhook_secret,
            log_format,
            production: env
                .get("APP_ENV")
                .is_some_and(|v| v.eq_ignore_ascii_case("production")),
        })
    }
}

/// Loads `.env` when present; real environment variables win. A missing file is the
/// normal case, a malformed one is reported.
fn load_dotenv() -> Result<(), ConfigError> {
    match dotenvy::dotenv() {
        Ok(_) => Ok(()),
        Err(e) if e.not_found() => Ok(()),
        Err(e) => Err(ConfigError::new(".env", e.to_string())),
    }
}

fn check_url(var: &str, url: &str) -> Result<(), ConfigError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') => Ok(()),
        _ => Err(ConfigError::new(
            var,
            format!("expected an http:// or https:// URL, got {url:?}"),
        )),
    }
}

/// Decodes `JWT_SECRET`: UTF-8 bytes, or `base64:<…>` in either alphabet, padding optional.
pub(crate) fn decode_secret(raw: &str) -> Result<Vec<u8>, String> {
    let bytes = match raw.strip_prefix("base64:") {
        Some(b64) => decode_base64_any(b64).ok_or("the base64: value does not decode")?,
        None => raw.as_bytes().to_vec(),
    };
    if bytes.len() < MIN_SECRET_BYTES {
        return Err(format!(
            "must be at least {MIN_SECRET_BYTES} bytes, got {}",
            bytes.len()
        ));
    }
    Ok(bytes)
}

/// Base64 in the standard or URL-safe alphabet, with or without padding.
pub(crate) fn decode_base64_any(s: &str) -> Option<Vec<u8>> {
    let s = s.trim().trim_end_matches('=');
    STANDARD_NO_PAD
        .decode(s)
        .or_else(|_| URL_SAFE_NO_PAD.decode(s))
        .ok()
}

/// The Frontend API host inside a Clerk publishable key (`pk_test_`/`pk_live_` + base64 of `<host>$`).
pub fn parse_publishable_key(pk: &str) -> Result<String, String> {
    let encoded = pk
        .strip_prefix("pk_test_")
        .or_else(|| pk.strip_prefix("pk_live_"))
        .ok_or("expected a key starting with pk_test_ or pk_live_")?;
    let decoded =
        decode_base64_any(encoded).ok_or("the part after pk_test_/pk_live_ is not base64")?;
    let text = String::from_utf8(decoded).map_err(|_| "the decoded key is not text")?;
    let host = text
        .strip_suffix('$')
        .ok_or("the decoded key does not end with $")?;
    let valid = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
        && !host.starts_with('.');
    if !valid {
        return Err("the decoded key does not name a host".into());
    }
    Ok(host.to_string())
}

/// Parses a PEM public key of any supported family.
fn parse_public_key(pem: &str) -> Result<StaticKey, String> {
    // Keys pasted into a single-line variable often carry literal `\n`.
    let pem = pem.replace("\\n", "\n");
    let bytes = pem.as_bytes();
    if !pem.contains("-----BEGIN") {
        return Err("expected a PEM public key (-----BEGIN PUBLIC KEY-----)".into());
    }
    if let Ok(key) = DecodingKey::from_rsa_pem(bytes) {
        return Ok(StaticKey {
            key,
            kind: KeyKind::Rsa,
        });
    }
    if let Ok(key) = DecodingKey::from_ed_pem(bytes) {
        return Ok(StaticKey {
            key,
            kind: KeyKind::Ed25519,
        });
    }
    if let Ok(key) = DecodingKey::from_ec_pem(bytes) {
        let kind =
            KeyKind::of_ec_point(&key).ok_or("unsupported elliptic curve (P-256 and P-384 are)")?;
        return Ok(StaticKey { key, kind });
    }
    Err("not a PEM RSA, EC (P-256/P-384) or Ed25519 public key".into())
}

/// Names of the algorithms keygate can use, as in the `alg` header.
pub fn parse_algorithm(name: &str) -> Option<Algorithm> {
    Some(match name {
        "HS256" => Algorithm::HS256,
        "HS384" => Algorithm::HS384,
        "HS512" => Algorithm::HS512,
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        _ => return None,
    })
}

/// Whether the algorithm is an HMAC (shared secret) one.
pub fn is_hmac(alg: Algorithm) -> bool {
    matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const SECRET: &str = "a-very-long-shared-secret-of-32+bytes!";

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(move |k| map.get(k).cloned())
    }

    fn err(vars: &[(&str, &str)]) -> ConfigError {
        match settings(vars) {
            Ok(_) => panic!("expected a configuration error for {vars:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn env_example_and_readme_document_every_variable() {
        let example = include_str!("../.env.example");
        let readme = include_str!("../README.md");
        for var in VARIABLES {
            assert!(
                example.contains(&format!("{var}=")),
                ".env.example lacks {var}"
            );
            assert!(readme.contains(var), "README lacks {var}");
        }
    }

    #[test]
    fn defaults_with_a_secret() {
        let s = settings(&[("JWT_SECRET", SECRET)]).unwrap();
        assert_eq!(s.bind_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(s.algorithms, vec![Algorithm::HS256]);
        assert_eq!(s.user_claim, "sub");
        assert_eq!(s.cookie_name.as_deref(), Some("__session"));
        assert_eq!(s.leeway_secs, 5);
        assert_eq!(s.refresh, Duration::from_secs(300));
        assert_eq!(s.cooldown, Duration::from_secs(10));
        assert_eq!(s.fetch_timeout, Duration::from_secs(5));
        assert_eq!(s.max_stale, Duration::from_secs(86_400));
        assert_eq!(s.token_cache_size, 10_000);
        assert_eq!(s.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(s.log_format, LogFormat::Text);
        assert!(s.workers >= 1);
        assert!(s.jwks.is_none() && s.issuers.is_empty() && s.audiences.is_empty());
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
    }

    #[test]
    fn base64_secret_in_both_alphabets() {
        let raw = [0xfbu8; 40];
        let std = base64::engine::general_purpose::STANDARD.encode(raw);
        let url = URL_SAFE_NO_PAD.encode(raw);
        for v in [format!("base64:{std}"), format!("base64:{url}")] {
            assert_eq!(
                settings(&[("JWT_SECRET", &v)]).unwrap().secret.unwrap(),
                raw.to_vec()
            );
        }
        assert_eq!(err(&[("JWT_SECRET", "base64:***")]).var, "JWT_SECRET");
        let short = format!("base64:{}", STANDARD_NO_PAD.encode([1u8; 31]));
        assert_eq!(err(&[("JWT_SECRET", &short)]).var, "JWT_SECRET");
    }

    #[test]
    fn jwks_url_and_alias() {
        let s = settings(&[(
            "CLERK_JWKS_URL",
            "https://x.clerk.accounts.dev/.well-known/jwks.json",
        )])
        .unwrap();
        assert_eq!(
            s.jwks.unwrap().url,
            "https://x.clerk.accounts.dev/.well-known/jwks.json"
        );
        assert_eq!(s.algorithms, vec![Algorithm::RS256]);
        let s = settings(&[
            ("JWKS_URL", "http://a/jwks"),
            ("CLERK_JWKS_URL", "http://b/jwks"),
        ])
        .unwrap();
        assert_eq!(s.jwks.unwrap().url, "http://a/jwks");
        assert_eq!(err(&[("JWKS_URL", "ftp://x")]).var, "JWKS_URL");
        assert_eq!(err(&[("CLERK_JWKS_URL", "nope")]).var, "CLERK_JWKS_URL");
    }

    #[test]
    fn numbers_and_flags() {
        let base = ("JWT_SECRET", SECRET);
        for var in [
            "WORKERS",
            "JWT_LEEWAY_SECS",
            "JWKS_REFRESH_SECS",
            "JWKS_COOLDOWN_SECS",
            "JWKS_TIMEOUT_SECS",
            "TOKEN_CACHE_SIZE",
            "JWKS_MAX_STALE_SECS",
        ] {
            assert_eq!(err(&[base, (var, "abc")]).var, var);
            assert_eq!(err(&[base, (var, "-1")]).var, var);
        }
        assert_eq!(err(&[base, ("WORKERS", "0")]).var, "WORKERS");
        assert_eq!(
            err(&[base, ("JWKS_REFRESH_SECS", "0")]).var,
            "JWKS_REFRESH_SECS"
        );
        assert_eq!(
            settings(&[base, ("JWKS_REFRESH_SECS", "1")])
                .unwrap()
                .refresh,
            Duration::from_secs(1)
        );
        assert_eq!(
            settings(&[base, ("TOKEN_CACHE_SIZE", "0")])
                .unwrap()
                .token_cache_size,
            0
        );
        assert_eq!(
            err(&[base, ("JWT_REQUIRE_AZP", "maybe")]).var,
            "JWT_REQUIRE_AZP"
        );
        assert!(
            settings(&[base, ("JWT_ACCEPT_PENDING", "TRUE")])
                .unwrap()
                .accept_pending
        );
        assert_eq!(err(&[base, ("BIND_ADDR", "localhost")]).var, "BIND_ADDR");
        assert_eq!(err(&[base, ("LOG_FORMAT", "xml")]).var, "LOG_FORMAT");
        assert_eq!(
            settings(&[base, ("LOG_FORMAT", "json")])
                .unwrap()
                .log_format,
            LogFormat::Json
        );
        assert_eq!(
            err(&[base, ("DATABASE_URL", "mysql://x")]).var,
            "DATABASE_URL"
        );
    }

    #[test]
    fn algorithms_allow_list() {
        let s = settings(&[
            ("JWT_SECRET", SECRET),
            ("JWT_ALGORITHMS", "HS512, HS256,HS512"),
        ])
        .unwrap();
        assert_eq!(s.algorithms, vec![Algorithm::HS512, Algorithm::HS256]);
        assert_eq!(
            err(&[("JWT_SECRET", SECRET), ("JWT_ALGORITHMS", "none")]).var,
            "JWT_ALGORITHMS"
        );
        assert_eq!(
            err(&[("JWKS_URL", "http://a/j"), ("JWT_ALGORITHMS", "HS256")]).var,
            "JWT_ALGORITHMS"
        );
        let s = settings(&[("JWKS_URL", "http://a/j"), ("JWT_SECRET", SECRET)]).unwrap();
        assert_eq!(s.algorithms, vec![Algorithm::RS256, Algorithm::HS256]);
    }

    #[test]
    fn lists_and_cookie() {
        let s = settings(&[
            ("JWT_SECRET", SECRET),
            ("JWT_ISSUER", "https://a, https://b"),
            ("JWT_AUDIENCE", "api"),
            ("JWT_AUTHORIZED_PARTIES", "http://localhost:3000"),
            ("JWT_COOKIE_NAME", ""),
        ])
        .unwrap();
        assert_eq!(s.issuers, vec!["https://a", "https://b"]);
        assert_eq!(s.audiences, vec!["api"]);
        assert_eq!(s.authorized_parties, vec!["http://localhost:3000"]);
        assert_eq!(s.cookie_name, None);
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
        format!(
            "{prefix}{}",
            base64::engine::general_purpose::STANDARD.encode(host_and_dollar)
        )
    }

    #[test]
    fn publishable_keys() {
        assert_eq!(
            parse_publishable_key(&pk("clerk.example.com$", "pk_live_")).unwrap(),
            "clerk.example.com"
        );
        assert_eq!(
            parse_publishable_key(&pk("settled-hen-12.clerk.accounts.dev$", "pk_test_")).unwrap(),
            "settled-hen-12.clerk.accounts.dev"
        );
        assert!(parse_publishable_key("pk_test_%%%").is_err());
        assert!(
            parse_publishable_key(&pk("clerk.example.com", "pk_test_"))
                .unwrap_err()
                .contains('$')
        );
        assert!(parse_publishable_key(&pk("x$", "sk_test_")).is_err());
        assert!(parse_publishable_key(&pk("$", "pk_test_")).is_err());
        assert!(parse_publishable_key(&pk("a/b$", "pk_test_")).is_err());
    }

    #[test]
    fn publishable_key_derives_jwks_and_issuer_and_explicit_values_win() {
        let key = pk("clerk.example.com$", "pk_live_");
        let s = settings(&[("CLERK_PUBLISHABLE_KEY", &key)]).unwrap();
        assert_eq!(
            s.jwks.as_ref().unwrap().url,
            "https://clerk.example.com/.well-known/jwks.json"
        );
        assert_eq!(s.jwks.unwrap().bearer, None);
        assert_eq!(s.issuers, vec!["https://clerk.example.com"]);
        let s = settings(&[
            ("CLERK_PUBLISHABLE_KEY", &key),
            ("CLERK_SECRET_KEY", "sk_test_abc"),
            ("JWKS_URL", "http://127.0.0.1:9/jwks"),
            ("JWT_ISSUER", "http://other"),
        ])
        .unwrap();
        assert_eq!(
            s.jwks.unwrap(),
            JwksSource {
                url: "http://127.0.0.1:9/jwks".into(),
                bearer: None
            }
        );
        assert_eq!(s.issuers, vec!["http://other"]);
        assert_eq!(
            err(&[("CLERK_PUBLISHABLE_KEY", "pk_test_bm9wZQ")]).var,
            "CLERK_PUBLISHABLE_KEY"
        );
    }

    #[test]
    fn secret_key_uses_backend_api_only_without_other_jwks() {
        let s = settings(&[
            ("CLERK_SECRET_KEY", "sk_test_123"),
            ("CLERK_API_URL", "http://127.0.0.1:1/"),
        ])
        .unwrap();
        let jwks = s.jwks.unwrap();
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
}
