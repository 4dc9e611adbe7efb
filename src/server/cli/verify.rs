//! `keygate verify TOKEN`: the service's own verification path, from the shell, with
//! the reason when the token is refused.

use super::CliError;
use crate::server::config::Config;
use crate::server::logging;
use crate::{Authenticator, MAX_REFRESH_WAIT};

/// Verifies `token` (a leading `Bearer ` is accepted) with the configuration from the
/// environment, fetching keys as the service would, and returns its claims.
///
/// Unless `RUST_LOG` says otherwise only warnings are logged, so a refusal is the one
/// line on stderr and the service's `info` lines (keys loaded) do not bury it.
pub fn verify(token: &str) -> Result<serde_json::Value, CliError> {
    let config = Config::from_env()?;
    let _logging = logging::init(
        config.server.log_format,
        Some(config.server.log_filter.as_deref().unwrap_or("warn")),
        None,
    )?;
    verify_with(config, token)
}

/// [`verify`] with an explicit configuration.
pub fn verify_with(config: Config, token: &str) -> Result<serde_json::Value, CliError> {
    let token = strip_bearer(token);
    actix_rt::System::new().block_on(async move {
        let wait = config.fetch_timeout() + MAX_REFRESH_WAIT;
        let authenticator: Authenticator = config.auth.build()?;
        // Revoked sessions live in the service's database; this command checks the
        // token itself. The first fetch is bounded by its own timeout.
        let _ = tokio::time::timeout(wait, authenticator.ready()).await;
        match authenticator.explain(token).await {
            Ok(user) => Ok(user.claims().as_json().clone()),
            Err(rejection) => Err(CliError::Rejected {
                code: rejection.error.code(),
                detail: rejection.error.detail(),
                reason: rejection.reason.into_owned(),
            }),
        }
    })
}

/// The token of `Bearer <token>` (any case), or the argument as it is.
fn strip_bearer(arg: &str) -> &str {
    let arg = arg.trim();
    match arg.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        _ => arg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leading_bearer_is_dropped() {
        assert_eq!(strip_bearer("Bearer a.b.c"), "a.b.c");
        assert_eq!(strip_bearer("  bearer   a.b.c "), "a.b.c");
        assert_eq!(strip_bearer("a.b.c"), "a.b.c");
    }
}
