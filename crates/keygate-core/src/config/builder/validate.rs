//! Validation: every setting of an [`AuthenticatorBuilder`] checked against the
//! others, in a fixed order so that a configuration with several problems always
//! reports the same one first, as a [`ConfigError`] naming the variable. Nothing is
//! started here; what comes out is what assembly needs beyond the settings.

use std::sync::Arc;

use jsonwebtoken::{Algorithm, AlgorithmFamily};

use super::super::error::ConfigError;
use super::super::values::{check_secret, check_url, parse_publishable_key};
use super::DEFAULT_CLERK_API_URL;
use super::settings::AuthenticatorBuilder;
use crate::auth::verifier::algorithm_list;
use crate::keys::fetch::JwksSource;
use crate::keys::key::{KeyError, PemKeyError, public_key_from_pem};
use crate::keys::{PublicKey, SecretKey};

/// The settings after validation: what they derive (the JWKS source, the algorithm
/// list, the issuers) and the keys parsed from them.
pub(super) struct Resolved {
    pub(super) api_url: String,
    pub(super) jwks: Option<JwksSource>,
    /// The variable the JWKS source came from, for errors about starting its fetches.
    pub(super) jwks_var: &'static str,
    pub(super) algorithms: Vec<Algorithm>,
    pub(super) static_key: Option<Arc<PublicKey>>,
    pub(super) secret: Option<SecretKey>,
    pub(super) issuers: Vec<String>,
}

impl AuthenticatorBuilder {
    /// Checks the settings as [`AuthenticatorBuilder::build`] does, without starting
    /// anything: for a service that must refuse a configuration that cannot work before
    /// it opens a database or a port.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.resolve().map(|_| ())
    }

    /// Checks every setting against the others, without starting anything.
    pub(super) fn resolve(&self) -> Result<Resolved, ConfigError> {
        let clerk_host = match &self.publishable_key {
            Some(pk) => {
                Some(parse_publishable_key(&pk.value).map_err(|p| ConfigError::new(pk.var, p))?)
            }
            None => None,
        };
        if let Some(sk) = &self.secret_key
            && !sk.starts_with("sk_")
        {
            return Err(ConfigError::new(
                "CLERK_SECRET_KEY",
                "expected a Clerk secret key starting with sk_",
            ));
        }
        let api_url = self
            .api_url
            .clone()
            .unwrap_or_else(|| DEFAULT_CLERK_API_URL.into());
        check_url(&api_url).map_err(|p| ConfigError::new("CLERK_API_URL", p))?;
        let (jwks, jwks_var) = self.jwks_source(clerk_host.as_deref(), &api_url)?;

        if let Some(secret) = &self.secret {
            check_secret(&secret.value).map_err(|p| ConfigError::new(secret.var, p))?;
        }
        let has_public = jwks.is_some() || self.public_key_pem.is_some();
        if !has_public && self.secret.is_none() {
            return Err(ConfigError::new(
                "JWKS_URL, JWT_PUBLIC_KEY, JWT_SECRET",
                "no key source is set: set one of them (or CLERK_PUBLISHABLE_KEY / CLERK_SECRET_KEY), \
                 or run `keygate dev` for a local development issuer",
            ));
        }
        let algorithms = self.algorithm_list(has_public)?;

        let static_key = match &self.public_key_pem {
            Some(pem) => Some(Arc::new(
                public_key_from_pem(&pem.value, &algorithms)
                    .map_err(|e| static_key_error(pem.var, &algorithms, e))?,
            )),
            None => None,
        };
        let secret = self
            .secret
            .as_ref()
            .and_then(|s| SecretKey::new(&s.value, &algorithms));

        let mut issuers = self.issuers.clone();
        if issuers.is_empty()
            && let Some(host) = &clerk_host
        {
            issuers.push(format!("https://{host}"));
        }
        if self.refresh_interval.is_zero() {
            return Err(ConfigError::new("JWKS_REFRESH_SECS", "must be at least 1"));
        }
        if self.fetch_timeout.is_zero() {
            return Err(ConfigError::new("JWKS_TIMEOUT_SECS", "must be at least 1"));
        }
        Ok(Resolved {
            api_url: api_url.trim_end_matches('/').to_string(),
            jwks,
            jwks_var,
            algorithms,
            static_key,
            secret,
            issuers,
        })
    }

    /// Where the JWKS comes from and the variable that said so: an explicit URL wins
    /// over the one a publishable key derives, and either over the Backend API's JWKS
    /// (which a secret key alone implies).
    fn jwks_source(
        &self,
        clerk_host: Option<&str>,
        api_url: &str,
    ) -> Result<(Option<JwksSource>, &'static str), ConfigError> {
        Ok(match (&self.jwks_url, clerk_host, &self.secret_key) {
            (Some(url), _, _) => {
                check_url(&url.value).map_err(|p| ConfigError::new(url.var, p))?;
                (
                    Some(JwksSource {
                        url: url.value.clone(),
                        bearer: None,
                    }),
                    url.var,
                )
            }
            (None, Some(host), _) => (
                Some(JwksSource {
                    url: format!("https://{host}/.well-known/jwks.json"),
                    bearer: None,
                }),
                "CLERK_PUBLISHABLE_KEY",
            ),
            (None, None, Some(secret)) => (
                Some(JwksSource {
                    url: format!("{}/v1/jwks", api_url.trim_end_matches('/')),
                    bearer: Some(secret.clone()),
                }),
                "CLERK_SECRET_KEY",
            ),
            (None, None, None) => (None, "JWKS_URL"),
        })
    }

    /// The allow-list: as set, when every algorithm in it has a key source, or the
    /// default of the key sources there are (`RS256` for public keys, `HS256` for the
    /// secret).
    fn algorithm_list(&self, has_public: bool) -> Result<Vec<Algorithm>, ConfigError> {
        let Some(list) = &self.algorithms else {
            let mut list = Vec::new();
            if has_public {
                list.push(Algorithm::RS256);
            }
            if self.secret.is_some() {
                list.push(Algorithm::HS256);
            }
            return Ok(list);
        };
        if list.is_empty() {
            return Err(ConfigError::new("JWT_ALGORITHMS", "lists no algorithm"));
        }
        let hmac = |a: &Algorithm| a.family() == AlgorithmFamily::Hmac;
        if self.secret.is_none() && list.iter().any(hmac) {
            return Err(ConfigError::new(
                "JWT_ALGORITHMS",
                "lists an HS algorithm but JWT_SECRET is not set",
            ));
        }
        if !has_public && !list.iter().any(hmac) {
            return Err(ConfigError::new(
                "JWT_ALGORITHMS, JWT_SECRET",
                "lists only public-key algorithms, but the only key source is JWT_SECRET \
                 (add HS256 or set JWKS_URL / JWT_PUBLIC_KEY)",
            ));
        }
        Ok(list.clone())
    }
}

/// The error of a `JWT_PUBLIC_KEY` that cannot be used: a key that the allow-list
/// gives nothing to verify is a problem between both variables, and says so.
fn static_key_error(var: &'static str, algorithms: &[Algorithm], e: PemKeyError) -> ConfigError {
    match e {
        PemKeyError::Key(KeyError::NoAllowedAlgorithm(kind)) => ConfigError::new(
            format!("JWT_ALGORITHMS, {var}"),
            format!(
                "the {} key of {var} verifies {}, and JWT_ALGORITHMS allows only {}: \
                 set JWT_ALGORITHMS to an algorithm of the key, or give a key of the allowed type",
                kind.name(),
                kind.algorithm_names(),
                algorithm_list(algorithms)
            ),
        ),
        other => ConfigError::new(var, other.to_string()),
    }
}
