//! `keygate verify TOKEN`: the service's own verification path, from the shell.

use std::time::{Duration, Instant};

use super::CliError;
use crate::app::StartError;
use crate::auth::Verifier;
use crate::config::Settings;
use crate::keys::rotation;
use crate::metrics::Metrics;
use crate::store::revocations::RevocationSet;

/// Verifies `token` with the configuration from the environment, fetching keys as the
/// service would, and returns its claims.
pub fn verify(token: &str) -> Result<serde_json::Value, CliError> {
    let settings = Settings::from_env()?;
    crate::logging::init(settings.log_format);
    verify_with(settings, token)
}

/// [`verify`] with explicit settings.
pub fn verify_with(settings: Settings, token: &str) -> Result<serde_json::Value, CliError> {
    actix_rt::System::new().block_on(async move {
        let clock = crate::clock::system();
        let metrics = Metrics::new().map_err(StartError::from)?;
        let keys = rotation::start_for(&settings, clock.clone(), metrics.clone());
        // The first fetch is bounded by its own timeout; wait for its outcome.
        let deadline = Instant::now() + settings.fetch_timeout + Duration::from_secs(1);
        while keys.has_jwks() && keys.stats().fetches() == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Revoked sessions live in the service's database; this command checks the token itself.
        let verifier = Verifier::new(&settings, keys, RevocationSet::default(), clock, metrics);
        match verifier.verify(token.trim()).await {
            Ok(verified) => Ok(serde_json::Value::Object(verified.claims.all.clone())),
            Err(e) => Err(CliError::Rejected {
                code: e.code(),
                detail: e.detail(),
            }),
        }
    })
}
