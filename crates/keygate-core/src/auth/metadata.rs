//! OAuth 2.0 Protected Resource Metadata (RFC 9728), so that an MCP client that gets a
//! `401` can discover the authorization server: the document, where it is served, and
//! the `resource_metadata` parameter 401 answers carry.
//!
//! It exists when `OAUTH_AUDIENCE` is an `http(s)` URL (the resource identifier) and
//! OAuth access tokens are accepted.

use serde_json::{Value, json};

/// The metadata of this resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceMetadata {
    url: String,
    path: String,
    document: Value,
}

impl ResourceMetadata {
    /// The metadata for `resource` (the OAuth audience) issued by `issuers`, when OAuth
    /// access tokens are `accepted` and the resource is a URL.
    pub fn new(
        resource: Option<&str>,
        issuers: &[String],
        accepted: bool,
    ) -> Option<ResourceMetadata> {
        let resource = resource.filter(|_| accepted)?;
        let rest = resource
            .strip_prefix("https://")
            .or_else(|| resource.strip_prefix("http://"))?;
        let scheme = &resource[..resource.len() - rest.len()];
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if host.is_empty() {
            return None;
        }
        // RFC 9728 §3.1: the well-known segment goes between the host and the path.
        let path = format!("/.well-known/oauth-protected-resource{path}");
        Some(ResourceMetadata {
            url: format!("{scheme}{host}{path}"),
            path,
            document: json!({
                "resource": resource,
                "authorization_servers": issuers,
                "bearer_methods_supported": ["header"],
            }),
        })
    }

    /// The metadata URL, for `resource_metadata="…"` in `WWW-Authenticate`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The path the document is served at.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The JSON document.
    pub fn document(&self) -> &Value {
        &self.document
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_well_known_segment_goes_before_the_path() {
        let issuers = vec!["https://clerk.example.com".to_string()];
        let m =
            ResourceMetadata::new(Some("https://api.example.com/mcp/"), &issuers, true).unwrap();
        assert_eq!(
            m.url(),
            "https://api.example.com/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(m.path(), "/.well-known/oauth-protected-resource/mcp");
        assert_eq!(m.document()["authorization_servers"], json!(issuers));
        let bare = ResourceMetadata::new(Some("http://127.0.0.1:8080"), &issuers, true).unwrap();
        assert_eq!(
            bare.url(),
            "http://127.0.0.1:8080/.well-known/oauth-protected-resource"
        );
        assert!(ResourceMetadata::new(Some("api"), &issuers, true).is_none());
        assert!(ResourceMetadata::new(Some("https://a"), &issuers, false).is_none());
        assert!(ResourceMetadata::new(None, &issuers, true).is_none());
    }
}
