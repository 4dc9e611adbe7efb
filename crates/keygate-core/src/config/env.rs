//! The verification variables of the environment, read into an
//! [`AuthenticatorBuilder`]. Every default lives in the builder; this module only reads
//! and parses. Values that are secrets or keys are taken exactly as set (an empty
//! value counts as unset); other values are trimmed.

use std::time::Duration;

use super::builder::AuthenticatorBuilder;
use super::error::ConfigError;
use super::values::{decode_secret, parse_algorithms, split_list};
use crate::auth::token_type::TokenType;

/// Every variable the library reads: for documentation checks, or to keep them out of
/// a child process's environment.
pub const VARIABLES: &[&str] = &[
    "JWKS_URL",
    "CLERK_JWKS_URL",
    "JWT_PUBLIC_KEY",
    "CLERK_JWT_KEY",
    "JWT_SECRET",
    "JWT_ALGORITHMS",
    "JWT_ISSUER",
    "JWT_AUDIENCE",
    "JWT_AUTHORIZED_PARTIES",
    "CLERK_AUTHORIZED_PARTIES",
    "JWT_LEEWAY_SECS",
    "JWT_USER_CLAIM",
    "JWT_COOKIE_NAME",
    "JWKS_REFRESH_SECS",
    "JWKS_COOLDOWN_SECS",
    "JWKS_TIMEOUT_SECS",
    "JWKS_MAX_STALE_SECS",
    "TOKEN_CACHE_SIZE",
    "CLERK_PUBLISHABLE_KEY",
    "NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY",
    "CLERK_SECRET_KEY",
    "CLERK_API_URL",
    "JWT_REQUIRE_AZP",
    "JWT_ACCEPT_PENDING",
    "JWT_ACCEPT_TOKENS",
    "JWT_ACCEPT_TEMPLATES",
    "OAUTH_AUDIENCE",
];

/// Reads variables through a lookup function, so tests need not touch the process
/// environment.
///
/// The readers ([`Env::number`], [`Env::seconds`], [`Env::flag`], …) apply the rules
/// of the contract (blank is unset, bounds, the spellings of a boolean) and report a
/// problem as a [`ConfigError`] naming the variable; an application reading its own
/// variables next to keygate's (as the service does) uses them to read alike.
pub struct Env<F: Fn(&str) -> Option<String>>(F);

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// Variables looked up with `lookup` (`|var| std::env::var(var).ok()` for the
    /// process environment).
    pub fn new(lookup: F) -> Env<F> {
        Env(lookup)
    }

    /// A set, non-blank value, trimmed.
    pub fn get(&self, var: &str) -> Option<String> {
        (self.0)(var)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// A set, non-empty value exactly as set (secrets and keys are never altered).
    pub fn get_exact(&self, var: &str) -> Option<String> {
        (self.0)(var).filter(|v| !v.is_empty())
    }

    /// The value exactly as the lookup gives it: `Some("")` for a variable set empty.
    pub fn raw(&self, var: &str) -> Option<String> {
        (self.0)(var)
    }

    /// Whether the variable is present at all, even empty.
    pub fn is_present(&self, var: &str) -> bool {
        (self.0)(var).is_some()
    }

    /// The first of a variable and its alias that is set, with the name it was found under.
    pub fn get_alias(
        &self,
        var: &'static str,
        alias: &'static str,
        exact: bool,
    ) -> Option<(&'static str, String)> {
        let read = |name: &str| {
            if exact {
                self.get_exact(name)
            } else {
                self.get(name)
            }
        };
        read(var)
            .map(|v| (var, v))
            .or_else(|| read(alias).map(|v| (alias, v)))
    }

    /// A whole number of at least `min`, or `default` when unset.
    pub fn number<T>(&self, var: &str, default: T, min: T) -> Result<T, ConfigError>
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

    /// Seconds as a duration, at least `min`.
    pub fn seconds(&self, var: &str, default: u64, min: u64) -> Result<Duration, ConfigError> {
        self.number(var, default, min).map(Duration::from_secs)
    }

    /// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`), or `default` when unset.
    pub fn flag(&self, var: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(var).map(|v| v.to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if matches!(v.as_str(), "1" | "true" | "yes" | "on") => Ok(true),
            Some(v) if matches!(v.as_str(), "0" | "false" | "no" | "off") => Ok(false),
            Some(v) => Err(ConfigError::new(
                var,
                format!("expected true or false, got {v:?}"),
            )),
        }
    }

    /// A comma-separated list (empty when unset).
    pub fn list(&self, var: &str) -> Vec<String> {
        self.get(var).map(|v| split_list(&v)).unwrap_or_default()
    }
}

impl AuthenticatorBuilder {
    /// The builder the process environment describes (the variables of sections 2, 8
    /// and 11 of the contract that concern verification). It does not read `.env`:
    /// load it first (e.g. with `dotenvy`) if the application wants it.
    pub fn from_env() -> Result<AuthenticatorBuilder, ConfigError> {
        Self::from_lookup(|var| std::env::var(var).ok())
    }

    /// The builder described by any lookup function (the environment, a map in tests).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<AuthenticatorBuilder, ConfigError> {
        let env = Env(lookup);
        let mut builder = AuthenticatorBuilder::new();
        if let Some((var, url)) = env.get_alias("JWKS_URL", "CLERK_JWKS_URL", false) {
            builder = builder.jwks_url_from(var, url);
        }
        if let Some((var, key)) = env.get_alias(
            "CLERK_PUBLISHABLE_KEY",
            "NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY",
            true,
        ) {
            builder = builder.clerk_publishable_key_from(var, key);
        }
        if let Some(key) = env.get_exact("CLERK_SECRET_KEY") {
            builder = builder.clerk_secret_key(key);
        }
        if let Some(url) = env.get("CLERK_API_URL") {
            builder = builder.clerk_api_url(url);
        }
        if let Some((var, pem)) = env.get_alias("JWT_PUBLIC_KEY", "CLERK_JWT_KEY", true) {
            builder = builder.public_key_pem_from(var, pem);
        }
        if let Some(raw) = env.get_exact("JWT_SECRET") {
            let secret = decode_secret(&raw).map_err(|p| ConfigError::new("JWT_SECRET", p))?;
            builder = builder.secret(secret);
        }
        if let Some(raw) = env.get("JWT_ALGORITHMS") {
            builder = builder.algorithms(
                parse_algorithms(&raw)
                    .map_err(|p| ConfigError::new("JWT_ALGORITHMS", p))?
                    .into_iter()
                    .filter_map(crate::Algorithm::from_jwt),
            );
        }
        builder = builder
            .issuers(env.list("JWT_ISSUER"))
            .audiences(env.list("JWT_AUDIENCE"));
        let (var, parties) =
            match env.get_alias("JWT_AUTHORIZED_PARTIES", "CLERK_AUTHORIZED_PARTIES", false) {
                Some((var, raw)) => (var, split_list(&raw)),
                None => ("JWT_AUTHORIZED_PARTIES", Vec::new()),
            };
        builder = builder
            .authorized_parties_from(var, parties)
            .require_azp(env.flag("JWT_REQUIRE_AZP", true)?)
            .accept_pending(env.flag("JWT_ACCEPT_PENDING", false)?)
            .accept_templates(env.flag("JWT_ACCEPT_TEMPLATES", false)?)
            .leeway(env.seconds("JWT_LEEWAY_SECS", 5, 0)?)
            .refresh_interval(env.seconds("JWKS_REFRESH_SECS", 300, 1)?)
            .cooldown(env.seconds("JWKS_COOLDOWN_SECS", 10, 0)?)
            .fetch_timeout(env.seconds("JWKS_TIMEOUT_SECS", 5, 1)?)
            .max_stale(env.seconds("JWKS_MAX_STALE_SECS", 86_400, 1)?)
            .token_cache_size(env.number("TOKEN_CACHE_SIZE", 10_000, 0)?);
        if let Some(audience) = env.get("OAUTH_AUDIENCE") {
            builder = builder.oauth_audience(audience);
        }
        if let Some(claim) = env.get("JWT_USER_CLAIM") {
            builder = builder.user_claim(claim);
        }
        if env.is_present("JWT_COOKIE_NAME") {
            builder = builder.cookie_name(env.get("JWT_COOKIE_NAME").as_deref());
        }
        if let Some(raw) = env.get("JWT_ACCEPT_TOKENS") {
            let mut types = Vec::new();
            for name in split_list(&raw) {
                types.push(
                    name.parse::<TokenType>()
                        .map_err(|e| ConfigError::new("JWT_ACCEPT_TOKENS", e.to_string()))?,
                );
            }
            if types.is_empty() {
                return Err(ConfigError::new("JWT_ACCEPT_TOKENS", "lists no token type"));
            }
            builder = builder.accepts(types);
        }
        Ok(builder)
    }
}
