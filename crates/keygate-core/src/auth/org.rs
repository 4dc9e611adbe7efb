//! The organization of Clerk v1 and v2 session tokens, in one shape.
//!
//! Organization claims are informative: a malformed one never fails authentication,
//! it yields what could be read and a debug line.

use serde::Serialize;
use serde_json::{Map, Value};

/// The active organization of a session, the same for Clerk v1 and v2 tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Org {
    /// `org_id` / `o.id`.
    pub id: String,
    /// `org_slug` / `o.slg`.
    pub slug: Option<String>,
    /// The role with its `org:` prefix, e.g. `org:admin`.
    pub role: Option<String>,
    /// Permissions such as `org:invoices:read` (empty when none).
    pub permissions: Vec<String>,
}

impl Org {
    /// The organization of a token's claims, if it has one.
    pub fn from_claims(all: &Map<String, Value>) -> Option<Org> {
        if all.get("v").and_then(Value::as_u64) == Some(2) {
            v2(all)
        } else {
            v1(all)
        }
    }

    /// Whether the role is `role` (with or without the `org:` prefix).
    pub fn has_role(&self, role: &str) -> bool {
        self.role.as_deref() == Some(with_org_prefix(role).as_str())
    }

    /// Whether the permission is granted.
    pub fn has_permission(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == permission)
    }
}

/// `admin` → `org:admin`; `org:admin` unchanged.
pub fn with_org_prefix(role: &str) -> String {
    if role.starts_with("org:") {
        role.to_string()
    } else {
        format!("org:{role}")
    }
}

fn v1(all: &Map<String, Value>) -> Option<Org> {
    let id = match all.get("org_id")? {
        Value::String(id) if !id.is_empty() => id.clone(),
        _ => {
            tracing::debug!("org_id claim is not a string; no organization");
            return None;
        }
    };
    let permissions = match all.get("org_permissions") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|p| p.as_str().map(String::from))
            .collect(),
        Some(_) => {
            tracing::debug!("org_permissions claim is not an array; ignored");
            Vec::new()
        }
    };
    Some(Org {
        id,
        slug: all
            .get("org_slug")
            .and_then(Value::as_str)
            .map(String::from),
        role: all
            .get("org_role")
            .and_then(Value::as_str)
            .map(with_org_prefix),
        permissions,
    })
}

/// A non-blank string value.
fn text(value: Option<&Value>) -> Option<&str> {
    value
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn v2(all: &Map<String, Value>) -> Option<Org> {
    let o = all.get("o")?.as_object().or_else(|| {
        tracing::debug!("o claim is not an object; no organization");
        None
    })?;
    let Some(id) = o
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    else {
        tracing::debug!("o.id claim missing or not a string; no organization");
        return None;
    };
    let org_features = org_scoped_features(text(all.get("fea")));
    let permissions = decode_permissions(&org_features, text(o.get("per")), text(o.get("fpm")));
    Some(Org {
        id: id.to_string(),
        slug: text(o.get("slg")).map(String::from),
        role: text(o.get("rol")).map(with_org_prefix),
        permissions,
    })
}

/// Features of `fea` whose scope includes the organization (`o:`, `ou:` or `uo:`, as
/// Clerk's SDK reads them: the scope is what precedes the first `:`, the name all that
/// follows), in order. Entries without a name keep their place so indexes stay aligned
/// with `fpm`; entries without a scope are skipped.
fn org_scoped_features(fea: Option<&str>) -> Vec<Option<&str>> {
    let Some(fea) = fea else { return Vec::new() };
    fea.split(',')
        .map(str::trim)
        .filter_map(|f| f.split_once(':'))
        .filter(|(scope, _)| matches!(*scope, "o" | "ou" | "uo"))
        .map(|(_, name)| Some(name).filter(|name| !name.is_empty()))
        .collect()
}

/// Decodes Clerk v2 feature permissions: bit `i` of `fpm[f]` grants `per[i]` for
/// org feature `f`, as `org:<feature>:<permission>` (as Clerk's JavaScript SDK does).
pub fn decode_permissions(
    features: &[Option<&str>],
    per: Option<&str>,
    fpm: Option<&str>,
) -> Vec<String> {
    let (Some(per), Some(fpm)) = (per, fpm) else {
        return Vec::new();
    };
    let permissions: Vec<&str> = per.split(',').map(str::trim).collect();
    let mut granted = Vec::new();
    for (feature, mask) in features.iter().zip(fpm.split(',').map(str::trim)) {
        let Some(feature) = feature else { continue };
        let Some(bits) = decimal_to_bits(mask, permissions.len()) else {
            tracing::debug!("fpm entry is not a decimal bitmask; ignored");
            continue;
        };
        for (bit, permission) in bits.iter().zip(&permissions) {
            if *bit && !permission.is_empty() {
                granted.push(format!("org:{feature}:{permission}"));
            }
        }
    }
    granted
}

/// The lowest `width` bits (least significant first) of a decimal number of any size.
fn decimal_to_bits(decimal: &str, width: usize) -> Option<Vec<bool>> {
    // Bounded so a hostile token cannot make this quadratic loop expensive.
    const MAX_DIGITS: usize = 512;
    if decimal.is_empty()
        || decimal.len() > MAX_DIGITS
        || !decimal.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let mut digits: Vec<u8> = decimal.bytes().map(|b| b - b'0').collect();
    let mut bits = Vec::with_capacity(width);
    while bits.len() < width {
        let mut remainder = 0u8;
        for digit in digits.iter_mut() {
            let value = remainder * 10 + *digit;
            *digit = value / 2;
            remainder = value % 2;
        }
        bits.push(remainder == 1);
        let first_nonzero = digits.iter().position(|d| *d != 0).unwrap_or(digits.len());
        digits.drain(..first_nonzero);
        if digits.is_empty() {
            bits.resize(width, false);
        }
    }
    Some(bits)
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
    fn bits_of_numbers_wider_than_64_bits() {
        assert_eq!(
            decimal_to_bits("5", 4).unwrap(),
            vec![true, false, true, false]
        );
        assert_eq!(decimal_to_bits("0", 2).unwrap(), vec![false, false]);
        // 2^70 + 1
        let bits = decimal_to_bits("1180591620717411303425", 72).unwrap();
        assert!(bits[0] && bits[70] && !bits[71]);
        assert_eq!(bits.iter().filter(|b| **b).count(), 2);
        assert!(decimal_to_bits("12a", 3).is_none());
        assert!(decimal_to_bits("", 3).is_none());
    }

    #[test]
    fn fpm_decoding_with_mixed_scopes() {
        let features = org_scoped_features(Some("o:dashboard, u:profile, uo:invoices, o:reports"));
        assert_eq!(
            features,
            vec![Some("dashboard"), Some("invoices"), Some("reports")]
        );
        // dashboard: 3 = read+manage; invoices: 1 = read; reports: 0.
        let got = decode_permissions(&features, Some("read,manage"), Some("3,1,0"));
        assert_eq!(
            got,
            vec![
                "org:dashboard:read",
                "org:dashboard:manage",
                "org:invoices:read"
            ]
        );
        assert!(decode_permissions(&features, None, Some("3")).is_empty());
        // An unreadable entry grants nothing but keeps the others aligned.
        let got = decode_permissions(&features, Some("read,manage"), Some("x,2"));
        assert_eq!(got, vec!["org:invoices:manage"]);
    }

    #[test]
    fn only_the_org_scopes_clerk_knows_count() {
        let features = org_scoped_features(Some("foo:a, org:b, ou:c, x, o:d:e, :f, o:, u:g, uo:h"));
        // foo/org are not org scopes; "x" and ":f" have none; "o:d:e" names "d:e".
        assert_eq!(features, vec![Some("c"), Some("d:e"), None, Some("h")]);
    }

    #[test]
    fn wide_fpm_grants_the_high_permission() {
        let per: Vec<String> = (0..70).map(|i| format!("p{i}")).collect();
        let features = org_scoped_features(Some("o:big"));
        // 2^69 grants only the 70th permission.
        let got = decode_permissions(
            &features,
            Some(&per.join(",")),
            Some("590295810358705651712"),
        );
        assert_eq!(got, vec!["org:big:p69"]);
    }

    #[test]
    fn v1_and_v2_give_the_same_org() {
        let v1 = Org::from_claims(&map(json!({
            "org_id": "org_1", "org_slug": "acme", "org_role": "org:admin",
            "org_permissions": ["org:invoices:read", "org:invoices:manage"]
        })))
        .unwrap();
        let v2 = Org::from_claims(&map(json!({
            "v": 2, "fea": "o:invoices,u:notes",
            "o": {"id": "org_1", "slg": "acme", "rol": "admin", "per": "read,manage", "fpm": "3"}
        })))
        .unwrap();
        assert_eq!(v1, v2);
        assert!(v1.has_role("admin") && v1.has_role("org:admin") && !v1.has_role("member"));
        assert!(v2.has_permission("org:invoices:manage"));
    }

    #[test]
    fn malformed_org_claims_give_what_could_be_read() {
        assert_eq!(Org::from_claims(&map(json!({"sub": "u"}))), None);
        assert_eq!(Org::from_claims(&map(json!({"org_id": 7}))), None);
        assert_eq!(Org::from_claims(&map(json!({"v": 2, "o": "x"}))), None);
        let org = Org::from_claims(&map(
            json!({"org_id": "o", "org_permissions": "nope", "org_role": 3}),
        ))
        .unwrap();
        assert_eq!(
            org,
            Org {
                id: "o".into(),
                slug: None,
                role: None,
                permissions: vec![]
            }
        );
        let org = Org::from_claims(&map(json!({"v": 2, "o": {"id": "o", "rol": "member", "per": "read", "fpm": "zz"}, "fea": "o:f"})))
            .unwrap();
        assert_eq!(org.role.as_deref(), Some("org:member"));
        assert!(org.permissions.is_empty());
    }
}
