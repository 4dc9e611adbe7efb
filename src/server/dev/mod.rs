//! `keygate dev`: the real service with a built-in development issuer, so that a new
//! user gets authenticated requests answered with one command and no Clerk account.
//!
//! It generates an in-memory RSA key ([`issuer`]), serves its JWKS and a token
//! endpoint under `/dev` ([`routes`]), and points the ordinary configuration at
//! itself: the service's own key-rotation actor fetches `http://<addr>/dev/jwks.json`
//! over HTTP like any remote JWKS, so every request goes through the same verification
//! path as in production. This mode must never run in production: it refuses to start
//! when `APP_ENV=production`, and nothing else mounts `/dev`.

pub mod issuer;
pub mod routes;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::Algorithm;

use super::config::Config;
pub use issuer::{Audience, DEFAULT_SUBJECT, DEFAULT_TTL_SECS, DevIssuer, IssuerError};

/// The configuration with the dev issuer, served at `origin`, as its JWKS and only
/// issuer, and the claims the dev tokens must carry to pass the rest of the policy.
pub fn point_at_self(mut config: Config, origin: &str) -> (Config, Audience) {
    let issuer = format!("{origin}/dev");
    // Dev tokens carry what the rest of the configuration checks, so that setting
    // JWT_AUDIENCE, JWT_AUTHORIZED_PARTIES or JWT_USER_CLAIM does not break them.
    let audience = Audience {
        issuer: issuer.clone(),
        authorized_party: config
            .auth
            .configured_authorized_parties()
            .first()
            .cloned()
            .unwrap_or_else(|| origin.to_string()),
        audience: config.auth.configured_audiences().first().cloned(),
        user_claim: config.auth.configured_user_claim().to_string(),
    };
    let missing_rs256 = config.auth_algorithms_without_rs256();
    let mut auth = config
        .auth
        .jwks_url(format!("{origin}/dev/jwks.json"))
        .issuers([issuer]);
    if let Some(algorithms) = missing_rs256 {
        auth = auth.algorithms(algorithms.into_iter().chain([Algorithm::RS256]));
    }
    config.auth = auth;
    (config, audience)
}

impl Config {
    /// An explicit allow-list that lacks RS256, which the dev issuer signs with.
    fn auth_algorithms_without_rs256(&self) -> Option<Vec<Algorithm>> {
        self.auth
            .configured_algorithms()
            .filter(|list| !list.contains(&Algorithm::RS256))
    }
}

/// The address clients can use: a wildcard bind (0.0.0.0, ::) is reached on loopback.
pub fn reachable(bound: SocketAddr) -> SocketAddr {
    match bound.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), bound.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), bound.port())
        }
        _ => bound,
    }
}

/// The start banner on stdout (logs go to stderr); printing the token is the point of
/// this mode, and the key behind it dies with the process.
pub fn print_banner(origin: &str, token: &str) {
    let banner = format!(
        "\n\
         keygate dev: DEVELOPMENT issuer. Tokens are signed by an in-memory key; never use this in production.\n\
         \n\
         \x20 sign-in page  {origin}/dev\n\
         \x20 issuer        {origin}/dev\n\
         \x20 JWKS          {origin}/dev/jwks.json\n\
         \x20 new tokens    curl -X POST -H 'Content-Type: application/json' -d '{{\"sub\":\"user_123\"}}' {origin}/dev/token\n\
         \n\
         Token for {DEFAULT_SUBJECT} (with a session id), valid for 1 hour:\n\
         {token}\n\
         \n\
         Try it:\n\
         curl -H \"Authorization: Bearer {token}\" {origin}/protected\n\
         \n"
    );
    let mut out = std::io::stdout().lock();
    // Flushed at once: stdout is block-buffered when piped, and whoever reads the
    // banner (a script, a test) waits for it.
    if let Err(e) = out.write_all(banner.as_bytes()).and_then(|()| out.flush()) {
        tracing::warn!("cannot print the dev banner: {e}");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_binds_are_reached_on_loopback() {
        let v4: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let v6: SocketAddr = "[::]:8080".parse().unwrap();
        let fixed: SocketAddr = "127.0.0.2:9".parse().unwrap();
        assert_eq!(reachable(v4).to_string(), "127.0.0.1:8080");
        assert_eq!(reachable(v6).to_string(), "[::1]:8080");
        assert_eq!(reachable(fixed), fixed);
    }

    #[test]
    fn settings_point_at_the_dev_issuer() {
        let config = Config::from_lookup(|k| match k {
            "JWT_ALGORITHMS" => Some("ES256".into()),
            "JWT_ISSUER" => Some("https://elsewhere".into()),
            "JWT_AUDIENCE" => Some("api".into()),
            "JWT_USER_CLAIM" => Some("user_id".into()),
            _ => None,
        })
        .unwrap();

        let (config, audience) = point_at_self(config, "http://127.0.0.1:7");

        let algorithms = config.auth.configured_algorithms().unwrap();
        assert_eq!(algorithms, [Algorithm::ES256, Algorithm::RS256]);
        assert_eq!(audience.issuer, "http://127.0.0.1:7/dev");
        assert_eq!(audience.authorized_party, "http://127.0.0.1:7");
        assert_eq!(audience.audience.as_deref(), Some("api"));
        assert_eq!(audience.user_claim, "user_id");
    }
}
