//! One JWKS fetch over HTTP with awc: bounded in time and size, with the response's
//! `Cache-Control: max-age` reported so the actor can refresh sooner.
//!
//! Only the key-rotation actor calls this. The Clerk secret key, when used, goes
//! into the `Authorization` header of this request and nowhere else.

use std::time::Duration;

use awc::http::header;
use jsonwebtoken::Algorithm;

use super::PublicKey;
use super::jwks::{self, JwksError};

/// Where the JWKS comes from.
#[derive(Clone, PartialEq, Eq)]
pub struct JwksSource {
    /// The URL fetched by the key-rotation actor.
    pub url: String,
    /// A bearer secret sent with the fetch (only for Clerk's Backend API JWKS).
    pub bearer: Option<String>,
}

impl std::fmt::Debug for JwksSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksSource")
            .field("url", &self.url)
            .field("bearer", &self.bearer.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// The largest JWKS body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Why a fetch failed; the last good keys stay in use.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The whole fetch took longer than `JWKS_TIMEOUT_SECS`.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The connection or request failed.
    #[error("request failed: {0}")]
    Request(#[source] awc::error::SendRequestError),
    /// The server answered with a non-2xx status.
    #[error("HTTP status {0}")]
    Status(u16),
    /// The body could not be read or exceeded the size limit.
    #[error("body: {0}")]
    Body(#[source] awc::error::PayloadError),
    /// The body is not a JWKS document.
    #[error(transparent)]
    Document(#[from] JwksError),
}

/// A successfully fetched and parsed JWKS.
pub struct Fetched {
    /// The usable keys.
    pub keys: Vec<(Option<String>, PublicKey)>,
    /// `Cache-Control: max-age` of the response, when present.
    pub max_age: Option<Duration>,
}

/// Fetches JWKS documents from one source.
pub struct JwksFetcher {
    source: JwksSource,
    timeout: Duration,
    allowed: Vec<Algorithm>,
    client: awc::Client,
}

impl JwksFetcher {
    /// A fetcher for `source`; must be created on the thread (arbiter) that uses it.
    pub fn new(source: JwksSource, timeout: Duration, allowed: Vec<Algorithm>) -> JwksFetcher {
        let client = awc::Client::builder()
            .timeout(timeout)
            .disable_redirects()
            .add_default_header((
                header::USER_AGENT,
                concat!("keygate/", env!("CARGO_PKG_VERSION")),
            ))
            .finish();
        JwksFetcher {
            source,
            timeout,
            allowed,
            client,
        }
    }

    /// The URL this fetcher reads (safe to log: it carries no secret).
    pub fn url(&self) -> &str {
        &self.source.url
    }

    /// Fetches and parses the JWKS once (in the caller's span: the actor gives each
    /// fetch a `jwks_fetch` span whose parent is the request that caused it).
    pub async fn fetch(&self) -> Result<Fetched, FetchError> {
        match tokio::time::timeout(self.timeout, self.fetch_unbounded()).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout(self.timeout)),
        }
    }

    async fn fetch_unbounded(&self) -> Result<Fetched, FetchError> {
        let mut request = self
            .client
            .get(&self.source.url)
            .insert_header((header::ACCEPT, "application/json"));
        if let Some(secret) = &self.source.bearer {
            request = request.insert_header((header::AUTHORIZATION, format!("Bearer {secret}")));
        }
        let mut response = request.send().await.map_err(FetchError::Request)?;
        if !response.status().is_success() {
            return Err(FetchError::Status(response.status().as_u16()));
        }
        let max_age = response
            .headers()
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_max_age);
        let body = response
            .body()
            .limit(MAX_BODY_BYTES)
            .await
            .map_err(FetchError::Body)?;
        let keys = jwks::parse(&body, &self.allowed)?;
        Ok(Fetched { keys, max_age })
    }
}

/// The `max-age` directive of a `Cache-Control` value.
pub fn parse_max_age(value: &str) -> Option<Duration> {
    value.split(',').find_map(|directive| {
        let (name, secs) = directive.trim().split_once('=')?;
        if name.trim().eq_ignore_ascii_case("max-age") {
            secs.trim()
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs)
        } else {
            None
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(
            parse_max_age("public, max-age=60"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_max_age("Max-Age = \"5\""),
            Some(Duration::from_secs(5))
        );
        assert_eq!(parse_max_age("no-store"), None);
        assert_eq!(parse_max_age("max-age=soon"), None);
    }
}
