//! `keygate dev`: the service with the built-in development issuer (see
//! [`crate::server::dev`]).

use std::net::TcpListener;
use std::sync::Arc;

use serde_json::Map;

use super::CliError;
use crate::MAX_REFRESH_WAIT;
use crate::server::app::{Application, StartError};
use crate::server::config::Config;
use crate::server::dev::{self, DEFAULT_SUBJECT, DEFAULT_TTL_SECS, DevIssuer};
use crate::server::logging;

/// Runs `keygate dev` until SIGTERM or SIGINT.
pub fn run() -> Result<(), CliError> {
    let config = Config::from_env()?;
    if config.server.production {
        return Err(CliError::Usage(
            "APP_ENV=production: keygate dev refuses to run in production \
             (it signs tokens with an in-memory key); use `keygate serve` with a real key source"
                .into(),
        ));
    }
    let telemetry = logging::init(
        config.server.log_format,
        config.server.log_filter.as_deref(),
        config.server.telemetry.as_ref(),
    )?;

    // Bind first: with BIND_ADDR on port 0 only the bound socket knows the real port,
    // and the JWKS URL, issuer and printed curl line must all name it.
    let bind = config.server.bind_addr;
    let bind_error = |source| StartError::Bind {
        addr: bind.to_string(),
        source,
    };
    let listener = TcpListener::bind(bind).map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    let origin = format!("http://{}", dev::reachable(bound));
    let wait = config.fetch_timeout() + MAX_REFRESH_WAIT;
    let (config, audience) = dev::point_at_self(config, &origin);
    let issuer = Arc::new(DevIssuer::generate(audience, config.clock.clone())?);
    let first_token = issuer.token(DEFAULT_SUBJECT, DEFAULT_TTL_SECS, &Map::new())?;
    tracing::warn!(
        "development issuer active (kid {}, issuer {}): never use keygate dev in production",
        issuer.kid(),
        issuer.issuer()
    );

    let served = actix_rt::System::new().block_on(async move {
        let app = Application::build_on(config, listener, Some(issuer)).await?;
        let authenticator = app.authenticator().clone();
        // The banner waits until the actor has fetched the dev JWKS, so the curl line
        // it prints works the moment it appears.
        actix_rt::spawn(async move {
            if tokio::time::timeout(wait, authenticator.ready())
                .await
                .is_err()
            {
                tracing::warn!("the dev JWKS was not fetched yet; the first request will fetch it");
            }
            dev::print_banner(&origin, &first_token);
        });
        app.run_until_stopped().await?;
        Ok(())
    });
    telemetry.shutdown();
    served
}
