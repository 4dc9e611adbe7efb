//! `keygate verify TOKEN`: the service's own verification path, from the shell, with
//! the reason when the token is refused.
//!
//! With no key source configured it verifies against a `keygate dev` running on
//! `BIND_ADDR` (its `/dev/jwks.json` and issuer), so `keygate dev` in one terminal and
//! `keygate verify` in another work together without configuration; it says so on
//! stderr, and when no dev issuer answers it is the usual "no key source" error.

use std::time::Duration;

use super::CliError;
use crate::server::config::Config;
use crate::server::{dev, logging};
use crate::{Authenticator, ConfigError, MAX_REFRESH_WAIT};

/// Verifies `token` (a leading `Bearer ` is accepted) with the configuration from the
/// environment, fetching keys as the service would, and returns its claims.
///
/// Unless `RUST_LOG` says otherwise only warnings are logged, so a refusal is the one
/// line on stderr and the service's `info` lines (keys loaded) do not bury it.
pub fn verify(token: &str) -> Result<serde_json::Value, CliError> {
    let config = Config::from_env()?;
    // Looking for a `keygate dev` that may not run: its failed fetches are the
    // answer, not warnings, so the configuration error stays the one line.
    let quiet = if config.auth.has_key_source() {
        "warn"
    } else {
        "warn,keygate_core::keys=error"
    };
    let _logging = logging::init(
        config.server.log_format,
        Some(config.server.log_filter.as_deref().unwrap_or(quiet)),
        None,
    )?;
    verify_with(config, token)
}

/// [`verify`] with an explicit configuration.
pub fn verify_with(config: Config, token: &str) -> Result<serde_json::Value, CliError> {
    // Never in production: there a missing key source is a configuration error only.
    let (config, dev_jwks) = if config.auth.has_key_source() || config.server.production {
        (config, None)
    } else {
        let origin = format!("http://{}", dev::reachable(config.server.bind_addr));
        let (config, _) = dev::point_at_self(config, &origin);
        (config, Some(format!("{origin}/dev/jwks.json")))
    };
    let argument = Argument::read(token);
    actix_rt::System::new().block_on(async move {
        let wait = config.fetch_timeout() + MAX_REFRESH_WAIT;
        let authenticator: Authenticator = config.auth.build()?;
        // Revoked sessions live in the service's database; this command checks the
        // token itself. The first fetch is bounded by its own timeout, and a fetch that
        // failed ends the wait: its error is what the refusal will name.
        let _ = tokio::time::timeout(wait, keys_settled(&authenticator)).await;
        if let Some(url) = &dev_jwks {
            if let Some(failure) = authenticator.jwks_failure() {
                return Err(CliError::Config(ConfigError::new(
                    "JWKS_URL, JWT_PUBLIC_KEY, JWT_SECRET",
                    format!(
                        "no key source is set, and no `keygate dev` answers on BIND_ADDR ({failure}): \
                         set a key source, or run `keygate dev` first"
                    ),
                )));
            }
            eprintln!("keygate: no key source is set; verifying with the running `keygate dev` ({url})");
        }
        let explained = match argument {
            Argument::Token(token) => authenticator.explain(token).await,
            Argument::Authorization(value) => authenticator.explain_authorization(value).await,
        };
        match explained {
            Ok(user) => Ok(user.claims().as_json().clone()),
            Err(rejection) => Err(CliError::Rejected {
                code: rejection.error.code(),
                detail: rejection.error.detail(),
                reason: rejection.reason.into_owned(),
            }),
        }
    })
}

/// Resolves once the keys are loaded or a fetch of them has failed.
async fn keys_settled(authenticator: &Authenticator) {
    while authenticator.keys_ready().is_err() && authenticator.jwks_failure().is_none() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What the command line was given.
#[derive(Debug, PartialEq, Eq)]
enum Argument<'a> {
    /// A bare token.
    Token(&'a str),
    /// An `Authorization` value (`Bearer <token>`, or something else, which is
    /// refused as the service refuses it, with the reason).
    Authorization(&'a str),
}

impl<'a> Argument<'a> {
    /// A bare token is verified as it is; `Authorization: <value>` (a header copied
    /// whole) and anything with a space (`Bearer <token>`, `Token <token>`) are read as
    /// the header's value is read by the service.
    fn read(arg: &'a str) -> Argument<'a> {
        let arg = arg.trim();
        match arg.split_once(':') {
            Some((name, value)) if name.trim().eq_ignore_ascii_case("authorization") => {
                Argument::Authorization(value.trim())
            }
            _ if arg.contains(char::is_whitespace) => Argument::Authorization(arg),
            _ => Argument::Token(arg),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_token_is_a_token_and_anything_else_an_authorization_value() {
        assert_eq!(Argument::read(" a.b.c "), Argument::Token("a.b.c"));
        assert_eq!(
            Argument::read("Bearer a.b.c"),
            Argument::Authorization("Bearer a.b.c")
        );
        assert_eq!(
            Argument::read("Authorization: a.b.c"),
            Argument::Authorization("a.b.c")
        );
        assert_eq!(
            Argument::read("authorization:Bearer a.b.c"),
            Argument::Authorization("Bearer a.b.c")
        );
        assert_eq!(
            Argument::read("Token a.b.c"),
            Argument::Authorization("Token a.b.c")
        );
    }
}
