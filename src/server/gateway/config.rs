//! The gateway's variables: `UPSTREAM_URL`, `GATEWAY_RULES`, `GATEWAY_PUBLIC_PATHS`,
//! `UPSTREAM_TIMEOUT_SECS`, `GATEWAY_MAX_BODY_BYTES`, `GATEWAY_FORWARD_CLAIMS`, the
//! signed identity's `GATEWAY_IDENTITY_*` and `GATEWAY_WS_MAX_SECS`.

use std::path::PathBuf;
use std::time::Duration;

use super::forward_auth::Convention;
use super::identity_token::{self, IdentityConfig};
use super::rules::Rules;
use crate::ConfigError;
use crate::config::env::Env;

/// Every variable the gateway reads, for documentation checks.
#[cfg(test)]
pub const VARIABLES: &[&str] = &[
    "UPSTREAM_URL",
    "GATEWAY_RULES",
    "GATEWAY_PUBLIC_PATHS",
    "UPSTREAM_TIMEOUT_SECS",
    "GATEWAY_MAX_BODY_BYTES",
    "GATEWAY_FORWARD_CLAIMS",
    "FORWARD_AUTH_HEADERS",
    "FORWARD_AUTH_PREFLIGHT",
    "GATEWAY_IDENTITY_TOKEN",
    "GATEWAY_IDENTITY_ISSUER",
    "GATEWAY_IDENTITY_AUDIENCE",
    "GATEWAY_IDENTITY_KEY",
    "GATEWAY_IDENTITY_KEY_PREVIOUS",
    "GATEWAY_WS_MAX_SECS",
];

/// The gateway's configuration, validated (rules compiled) at start.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// `UPSTREAM_URL`: the origin requests are proxied to; `None`: forward auth only.
    pub upstream: Option<String>,
    /// The rules of `GATEWAY_PUBLIC_PATHS` and `GATEWAY_RULES`.
    pub rules: Rules,
    /// `UPSTREAM_TIMEOUT_SECS`: how long the upstream may take for its response head.
    pub upstream_timeout: Duration,
    /// `GATEWAY_MAX_BODY_BYTES`: the largest request body proxied.
    pub max_body_bytes: u64,
    /// `GATEWAY_FORWARD_CLAIMS`: also send `X-Auth-Claims`.
    pub forward_claims: bool,
    /// `FORWARD_AUTH_HEADERS`: which headers name the original request of `/auth`.
    pub forward_auth_headers: Convention,
    /// `FORWARD_AUTH_PREFLIGHT`: let CORS preflights from allowed origins through `/auth`.
    pub forward_auth_preflight: bool,
    /// `GATEWAY_IDENTITY_TOKEN=true`: the signing setup of `X-Auth-Identity`.
    pub identity: Option<IdentityConfig>,
    /// `GATEWAY_WS_MAX_SECS`: how long a proxied WebSocket may stay open (`None`: as
    /// long as its session).
    pub ws_max_age: Option<Duration>,
}

impl GatewayConfig {
    /// The gateway variables of `env`.
    pub fn read<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<GatewayConfig, ConfigError> {
        let upstream = match env.get("UPSTREAM_URL") {
            Some(url) => {
                check_url(&url).map_err(|p| ConfigError::new("UPSTREAM_URL", p))?;
                let origin = url.trim_end_matches('/');
                let after_scheme = origin.split_once("://").map_or("", |(_, rest)| rest);
                if after_scheme.contains(['/', '?', '#']) {
                    return Err(ConfigError::new(
                        "UPSTREAM_URL",
                        format!("expected an origin (scheme, host and port, no path), got {url:?}"),
                    ));
                }
                Some(origin.to_string())
            }
            None => None,
        };
        let public_paths = env.list("GATEWAY_PUBLIC_PATHS");
        let file = env.get("GATEWAY_RULES").map(PathBuf::from);
        let rules = Rules::load(&public_paths, file.as_deref())?;
        let identity = match env.flag("GATEWAY_IDENTITY_TOKEN", false)? {
            false => None,
            true => {
                let audience = match (env.get(identity_token::AUDIENCE_VAR), &upstream) {
                    (Some(audience), _) => audience,
                    (None, Some(origin)) => origin.clone(),
                    (None, None) => {
                        return Err(ConfigError::new(
                            identity_token::AUDIENCE_VAR,
                            "is required with GATEWAY_IDENTITY_TOKEN=true in forward-auth mode \
                             (no UPSTREAM_URL to take the audience from): set it to what your \
                             backend checks the aud claim against",
                        ));
                    }
                };
                Some(IdentityConfig::new(
                    env.get_exact(identity_token::KEY_VAR).as_deref(),
                    env.get_exact(identity_token::PREVIOUS_KEY_VAR).as_deref(),
                    env.get("GATEWAY_IDENTITY_ISSUER")
                        .unwrap_or_else(|| "keygate".to_string()),
                    audience,
                )?)
            }
        };
        let ws_max_age = match env.get("GATEWAY_WS_MAX_SECS") {
            Some(_) => Some(env.seconds("GATEWAY_WS_MAX_SECS", 0, 1)?),
            None => None,
        };
        Ok(GatewayConfig {
            upstream,
            rules,
            upstream_timeout: env.seconds("UPSTREAM_TIMEOUT_SECS", 30, 1)?,
            max_body_bytes: env.number("GATEWAY_MAX_BODY_BYTES", 10_485_760, 0)?,
            forward_claims: env.flag("GATEWAY_FORWARD_CLAIMS", false)?,
            forward_auth_headers: match env.get("FORWARD_AUTH_HEADERS") {
                Some(value) => value
                    .parse()
                    .map_err(|problem| ConfigError::new("FORWARD_AUTH_HEADERS", problem))?,
                None => Convention::Auto,
            },
            forward_auth_preflight: env.flag("FORWARD_AUTH_PREFLIGHT", true)?,
            identity,
            ws_max_age,
        })
    }
}

/// Checks an `http://` or `https://` URL with a host.
fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') => Ok(()),
        _ => Err(format!("expected an http:// or https:// URL, got {url:?}")),
    }
}
