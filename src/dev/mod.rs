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
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::Algorithm;
use serde_json::Map;

use crate::app::{self, Keygate, StartError};
use crate::cli::CliError;
use crate::config::{JwksSource, Settings};
use crate::keys::KeysHandle;
use issuer::{Audience, DEFAULT_SUBJECT, DEFAULT_TTL_SECS, DevIssuer};

/// Runs `keygate dev` until SIGTERM or SIGINT.
pub fn run() -> Result<(), CliError> {
    let settings = Settings::from_lookup_without_keys_from_env()?;
    if settings.production {
        return Err(CliError::Usage(
            "APP_ENV=production: keygate dev refuses to run in production \
             (it signs tokens with an in-memory key); use `keygate serve` with a real key source"
                .into(),
        ));
    }
    crate::logging::init(settings.log_format);

    // Bind first: with BIND_ADDR on port 0 only the bound socket knows the real port,
    // and the JWKS URL, issuer and printed curl line must all name it.
    let listener = app::bind(&settings)?;
    let bound = listener.local_addr().map_err(|source| StartError::Bind {
        addr: settings.bind_addr.to_string(),
        source,
    })?;
    let origin = format!("http://{}", reachable(bound));
    let clock = crate::clock::system();
    let (settings, audience) = point_at_self(settings, &origin);
    let issuer = Arc::new(DevIssuer::generate(audience, clock.clone())?);
    let first_token = issuer.token(DEFAULT_SUBJECT, DEFAULT_TTL_SECS, &Map::new())?;
    log::warn!(
        "development issuer active (kid {}, issuer {}): never use keygate dev in production",
        issuer.kid(),
        issuer.issuer()
    );

    actix_rt::System::new().block_on(async move {
        let keygate = Keygate::build(settings, clock).await?;
        let keys = keygate.service.keys.clone();
        let within = keygate.settings.fetch_timeout + Duration::from_secs(1);
        let kid = issuer.kid().to_string();
        // The banner waits until the actor has fetched the dev JWKS, so the curl line
        // it prints works the moment it appears.
        actix_rt::spawn(async move {
            if !wait_for_key(&keys, &kid, within).await {
                log::warn!("the dev JWKS was not fetched yet; the first request will fetch it");
            }
            print_banner(&origin, &first_token);
        });
        app::run(keygate, listener, Some(routes::extra_routes(issuer))).await?;
        Ok(())
    })
}

/// The configuration with the dev issuer as its JWKS and only issuer, and the claims
/// policy the dev tokens must satisfy.
fn point_at_self(mut settings: Settings, origin: &str) -> (Settings, Audience) {
    let issuer = format!("{origin}/dev");
    settings.jwks = Some(JwksSource {
        url: format!("{origin}/dev/jwks.json"),
        bearer: None,
    });
    settings.issuers = vec![issuer.clone()];
    if !settings.algorithms.contains(&Algorithm::RS256) {
        settings.algorithms.push(Algorithm::RS256);
    }
    // Dev tokens carry what the rest of the configuration checks, so that setting
    // JWT_AUDIENCE, JWT_AUTHORIZED_PARTIES or JWT_USER_CLAIM does not break them.
    let audience = Audience {
        issuer,
        authorized_party: settings
            .authorized_parties
            .first()
            .cloned()
            .unwrap_or_else(|| origin.to_string()),
        audience: settings.audiences.first().cloned(),
        user_claim: settings.user_claim.clone(),
    };
    (settings, audience)
}

/// The address clients can use: a wildcard bind (0.0.0.0, ::) is reached on loopback.
fn reachable(bound: SocketAddr) -> SocketAddr {
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

/// Waits until the published key map holds `kid`, up to `within`.
async fn wait_for_key(keys: &KeysHandle, kid: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while !keys.current().contains(kid) {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// The start banner on stdout (logs go to stderr); printing the token is the point of
/// this mode, and the key behind it dies with the process.
fn print_banner(origin: &str, token: &str) {
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
        log::warn!("cannot print the dev banner: {e}");
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
        let settings = Settings::from_lookup_without_keys(|k| match k {
            "JWT_ALGORITHMS" => Some("HS256".into()),
            "JWT_ISSUER" => Some("https://elsewhere".into()),
            "JWT_AUDIENCE" => Some("api".into()),
            "JWT_USER_CLAIM" => Some("user_id".into()),
            _ => None,
        })
        .unwrap();

        let (settings, audience) = point_at_self(settings, "http://127.0.0.1:7");

        assert_eq!(
            settings.jwks.unwrap().url,
            "http://127.0.0.1:7/dev/jwks.json"
        );
        assert_eq!(settings.issuers, vec!["http://127.0.0.1:7/dev"]);
        assert!(settings.algorithms.contains(&Algorithm::RS256));
        assert_eq!(audience.authorized_party, "http://127.0.0.1:7");
        assert_eq!(audience.audience.as_deref(), Some("api"));
        assert_eq!(audience.user_claim, "user_id");
    }
}
