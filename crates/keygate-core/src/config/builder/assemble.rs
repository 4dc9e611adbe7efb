//! Assembly: validated settings turned into an [`Authenticator`], starting the
//! key-rotation actor and the Backend API actor on the current actix runtime when the
//! settings call for them. Every check that can fail without a runtime is
//! validation's; the only errors here are a missing runtime.

use std::sync::Arc;

use super::super::error::ConfigError;
use super::settings::AuthenticatorBuilder;
use super::validate::Resolved;
use crate::Authenticator;
use crate::auth::cache::TokenCache;
use crate::auth::machine::{ApiConfig, MachineTokens};
use crate::auth::metadata::ResourceMetadata;
use crate::auth::policy::Policy;
use crate::auth::sources::TokenSources;
use crate::auth::token_type::TokenType;
use crate::auth::verifier::Verifier;
use crate::keys::KeysHandle;
use crate::keys::rotation::{KeyRotation, RotationConfig};

impl AuthenticatorBuilder {
    /// Validates everything and starts the key-rotation actor (when a JWKS is
    /// configured) on the current actix runtime.
    pub fn build(self) -> Result<Authenticator, ConfigError> {
        let resolved = self.resolve()?;
        let keys = self.start_keys(&resolved)?;
        let oauth_audience: Option<Arc<str>> = self.oauth_audience.as_deref().map(Arc::from);
        let machine = self.start_machine(&resolved, oauth_audience.clone())?;
        let metadata = ResourceMetadata::new(
            oauth_audience.as_deref(),
            &resolved.issuers,
            self.accepts.contains(TokenType::OauthToken),
        );
        let policy = Policy {
            algorithms: resolved.algorithms.clone().into(),
            issuers: resolved.issuers.into(),
            audiences: self.audiences.into(),
            oauth_audience,
            authorized_parties: self.authorized_parties.value.into(),
            require_azp: self.require_azp,
            accept_pending: self.accept_pending,
            accept_templates: self.accept_templates,
            leeway: i64::try_from(self.leeway.as_secs()).unwrap_or(i64::MAX),
            user_claim: self.user_claim.into(),
        };
        let verifier = Verifier {
            policy,
            secret: resolved.secret,
            static_key: resolved.static_key,
            keys,
            cache: (self.token_cache_size > 0).then(|| TokenCache::new(self.token_cache_size)),
            machine,
            revocations: self.revocations,
            clock: self.clock,
            observer: self.observer.clone(),
            retry_after_secs: self.cooldown.as_secs().clamp(1, 60),
        };
        let publishable_key = self.publishable_key.as_ref().map(|pk| pk.value.as_str());
        Ok(Authenticator::new(
            verifier,
            TokenSources::new(self.cookie_name.clone(), publishable_key),
            self.observer,
            self.accepts,
            metadata,
        ))
    }

    /// The published keys: fed by a rotation actor when there is a JWKS, else none.
    fn start_keys(&self, resolved: &Resolved) -> Result<KeysHandle, ConfigError> {
        let Some(source) = &resolved.jwks else {
            return Ok(KeysHandle::none(self.clock.clone()));
        };
        if actix_rt::Arbiter::try_current().is_none() {
            return Err(ConfigError::new(
                resolved.jwks_var,
                "the authenticator must be built inside an actix runtime (#[actix_web::main]) to fetch the JWKS",
            ));
        }
        Ok(KeyRotation::start(
            source.clone(),
            RotationConfig {
                refresh: self.refresh_interval,
                cooldown: self.cooldown,
                timeout: self.fetch_timeout,
                max_stale: self.max_stale,
                algorithms: resolved.algorithms.clone(),
            },
            self.clock.clone(),
            self.observer.clone(),
        ))
    }

    /// The Backend API actor for opaque machine tokens, when a secret key is set.
    fn start_machine(
        &self,
        resolved: &Resolved,
        oauth_audience: Option<Arc<str>>,
    ) -> Result<Option<MachineTokens>, ConfigError> {
        let Some(secret_key) = &self.secret_key else {
            return Ok(None);
        };
        if actix_rt::Arbiter::try_current().is_none() {
            return Err(ConfigError::new(
                "CLERK_SECRET_KEY",
                "the authenticator must be built inside an actix runtime (#[actix_web::main]) to call the Backend API",
            ));
        }
        Ok(Some(MachineTokens::start(
            ApiConfig {
                api_url: resolved.api_url.clone(),
                secret_key: secret_key.clone(),
                timeout: self.fetch_timeout,
                oauth_audience,
            },
            self.clock.clone(),
            self.observer.clone(),
        )))
    }
}
