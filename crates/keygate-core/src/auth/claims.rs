//! Typed claims of a verified token (standard and Clerk fields), with every claim
//! also kept as JSON.

use serde_json::{Map, Value};

use super::AuthError;
use super::error::{Rejection, shown};

/// The claims of a token whose signature verified: every claim as sent, with the time
/// claims read once and the standard ones typed on access.
#[derive(Debug, Clone)]
pub struct Claims {
    exp: i64,
    nbf: Option<i64>,
    iat: Option<i64>,
    all: Value,
}

impl Claims {
    /// Reads the typed claims out of a payload object.
    pub fn from_payload(all: Map<String, Value>) -> Result<Claims, Rejection> {
        let exp = all.get("exp").and_then(numeric_date).ok_or_else(|| {
            Rejection::new(
                AuthError::MissingClaim,
                "the token has no numeric exp claim",
            )
        })?;
        let optional_date = |name: &'static str| match all.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => numeric_date(value).map(Some).ok_or_else(|| {
                Rejection::new(
                    AuthError::MalformedToken,
                    format!("{name} is not a number: {}", shown(Some(value))),
                )
            }),
        };
        let nbf = optional_date("nbf")?;
        let iat = optional_date("iat")?;
        Ok(Claims {
            exp,
            nbf,
            iat,
            all: Value::Object(all),
        })
    }

    /// A claim when it is a JSON string.
    fn text(&self, name: &str) -> Option<&str> {
        self.all.get(name).and_then(Value::as_str)
    }

    /// `sub`, when it is a string.
    pub fn sub(&self) -> Option<&str> {
        self.text("sub")
    }

    /// `iss`, when it is a string.
    pub fn iss(&self) -> Option<&str> {
        self.text("iss")
    }

    /// `aud` as a list: a single string is one entry, entries that are not strings are left out.
    pub fn aud(&self) -> Vec<&str> {
        match self.all.get("aud") {
            Some(Value::String(one)) => vec![one.as_str()],
            Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// `azp`: the origin that requested the token (Clerk), when it is a string.
    pub fn azp(&self) -> Option<&str> {
        self.text("azp")
    }

    /// `exp`, Unix seconds (fractions truncated).
    pub fn exp(&self) -> i64 {
        self.exp
    }

    /// `nbf`, Unix seconds.
    pub fn nbf(&self) -> Option<i64> {
        self.nbf
    }

    /// `iat`, Unix seconds.
    pub fn iat(&self) -> Option<i64> {
        self.iat
    }

    /// `sid`: the Clerk session id, when it is a string.
    pub fn sid(&self) -> Option<&str> {
        self.text("sid")
    }

    /// `sts`: the Clerk session status (v2), e.g. `pending`.
    pub fn sts(&self) -> Option<&str> {
        self.text("sts")
    }

    /// Any claim, as sent.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.all.get(name)
    }

    /// A claim as a non-empty string.
    pub fn string(&self, name: &str) -> Option<&str> {
        self.get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// Every claim, as the JSON object the token carries.
    pub fn as_json(&self) -> &Value {
        &self.all
    }

    /// Every claim as a map.
    pub fn as_map(&self) -> &Map<String, Value> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        match &self.all {
            Value::Object(map) => map,
            _ => EMPTY.get_or_init(Map::new),
        }
    }
}

/// A NumericDate: integer or fractional seconds, truncated.
fn numeric_date(value: &Value) -> Option<i64> {
    value
        .as_i64()
        .or_else(|| value.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn typed_claims_and_errors() {
        let c = Claims::from_payload(map(
            json!({"sub": "u", "exp": 10.7, "aud": ["a", 3, "b"], "sid": "s"}),
        ))
        .unwrap();
        assert_eq!((c.exp(), c.aud(), c.sid()), (10, vec!["a", "b"], Some("s")));
        assert_eq!(
            Claims::from_payload(map(json!({"sub": "u"})))
                .unwrap_err()
                .error,
            AuthError::MissingClaim
        );
        assert_eq!(
            Claims::from_payload(map(json!({"exp": "10"})))
                .unwrap_err()
                .error,
            AuthError::MissingClaim
        );
        assert_eq!(
            Claims::from_payload(map(json!({"exp": 1, "nbf": "x"})))
                .unwrap_err()
                .error,
            AuthError::MalformedToken
        );
        assert!(
            Claims::from_payload(map(json!({"exp": 1, "aud": {"x": 1}})))
                .unwrap()
                .aud()
                .is_empty()
        );
        let c = Claims::from_payload(map(json!({"exp": 1, "sub": 42}))).unwrap();
        assert_eq!(c.string("sub"), None);
    }
}
