//! Route rules: which paths need what, in the spirit of Clerk's `createRouteMatcher`.
//!
//! The first rule whose `path` (a regular expression anchored at both ends, over the
//! normalised path without its query) and `methods` match decides; a path no rule
//! matches needs what `default` says. Rules are data built once at start: a file that
//! does not parse, an unknown key or value, or a pattern that is not a valid expression
//! stops keygate before it serves anything.
//!
//! ```toml
//! default = "authenticated"            # or "public"
//! [[rule]]
//! path = "/api/public(.*)"
//! methods = ["GET", "HEAD"]
//! access = "public"
//! [[rule]]
//! path = "/api/admin(.*)"
//! org_role = "org:admin"
//! [[rule]]
//! path = "/api/invoices(.*)"
//! permission = "org:invoices:read"
//! accepts = ["session_token", "m2m_token"]
//! [[rule]]
//! path = "/api/reports(.*)"
//! plan = "pro"                          # Clerk Billing: pla
//! feature = "export"                    # and fea
//! [[rule]]
//! path = "/api/account/delete"
//! reverification = "strict"             # or { level = "second_factor", after_minutes = 10 }
//! ```

use std::path::Path;

use regex::{Regex, RegexBuilder};
use serde::Deserialize;

use crate::{
    AuthError, AuthUser, ConfigError, FactorLevel, Reverification, TokenType, TokenTypes,
    is_valid_entitlement,
};

/// The variable that names the rules file.
pub const RULES_VAR: &str = "GATEWAY_RULES";

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// No token needed; a valid one still adds the identity headers.
    Public,
    /// A valid token of an accepted type.
    Authenticated,
}

/// One rule, compiled.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Where it came from, for messages: `rule 3 (/api/admin(.*))`.
    pub name: String,
    path: Regex,
    methods: Option<Vec<String>>,
    /// What the matched requests need.
    pub access: Access,
    /// The org role required (`org:` prefix added when missing).
    pub org_role: Option<String>,
    /// The permission required.
    pub permission: Option<String>,
    /// The token types accepted (`None`: the authenticator's).
    pub accepts: Option<TokenTypes>,
    /// The plan required (Clerk Billing's `pla`): `pro`, `user:pro` or `org:pro`.
    pub plan: Option<String>,
    /// The feature required (`fea`), read as `plan` is.
    pub feature: Option<String>,
    /// How recently the user must have verified (Clerk's step-up reverification).
    pub reverification: Option<Reverification>,
}

impl Rule {
    /// What the rule asks of an authenticated caller beyond a valid token: the org
    /// role, the permission, the plan, the feature, then the reverification, so that
    /// the user is only asked to verify again for a request that would then pass.
    pub fn authorize(&self, user: &AuthUser) -> Result<(), AuthError> {
        if let Some(role) = &self.org_role {
            user.require_org_role(role)?;
        }
        if let Some(permission) = &self.permission {
            user.require_permission(permission)?;
        }
        if let Some(plan) = &self.plan {
            user.require_plan(plan)?;
        }
        if let Some(feature) = &self.feature {
            user.require_feature(feature)?;
        }
        if let Some(reverification) = self.reverification {
            user.require_reverification(reverification)?;
        }
        Ok(())
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.methods
            .as_ref()
            .is_none_or(|methods| methods.iter().any(|m| m.eq_ignore_ascii_case(method)))
            && (self.path.is_match(path)
                // As Clerk's `createRouteMatcher` (path-to-regexp, not strict): a trailing
                // slash is optional, so `/admin` also guards `/admin/`, which most
                // routers serve as `/admin`.
                || path
                    .strip_suffix('/')
                    .is_some_and(|bare| !bare.is_empty() && self.path.is_match(bare)))
    }
}

/// The rules of a gateway.
#[derive(Debug, Clone)]
pub struct Rules {
    rules: Vec<Rule>,
    default: Rule,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    default: Option<Access>,
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    path: String,
    #[serde(default)]
    methods: Option<Vec<String>>,
    #[serde(default)]
    access: Option<Access>,
    #[serde(default)]
    org_role: Option<String>,
    #[serde(default)]
    permission: Option<String>,
    #[serde(default)]
    accepts: Option<Vec<String>>,
    #[serde(default)]
    plan: Option<String>,
    #[serde(default)]
    feature: Option<String>,
    /// A preset's name or `{ level, after_minutes }`, checked in [`compile`] so that
    /// the message names the rule.
    #[serde(default)]
    reverification: Option<toml::Value>,
}

/// Methods a rule may name.
const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
];

impl Rules {
    /// The rules of `GATEWAY_PUBLIC_PATHS` (public patterns, first) and the file of
    /// `GATEWAY_RULES`, when given.
    pub fn load(public_paths: &[String], file: Option<&Path>) -> Result<Rules, ConfigError> {
        let text = match file {
            Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
                ConfigError::caused_by(RULES_VAR, format!("cannot read {}: {e}", path.display()), e)
            })?),
            None => None,
        };
        Rules::parse(public_paths, text.as_deref())
    }

    /// [`Rules::load`] from the file's text.
    pub fn parse(public_paths: &[String], text: Option<&str>) -> Result<Rules, ConfigError> {
        let file: File = match text {
            Some(text) => toml::from_str(text).map_err(|e| {
                ConfigError::caused_by(
                    RULES_VAR,
                    format!("does not parse: {}", one_line(&e.to_string())),
                    e,
                )
            })?,
            None => File {
                default: None,
                rule: Vec::new(),
            },
        };
        let mut rules = Vec::new();
        for (i, pattern) in public_paths.iter().enumerate() {
            let raw = RawRule {
                path: pattern.clone(),
                methods: None,
                access: Some(Access::Public),
                org_role: None,
                permission: None,
                accepts: None,
                plan: None,
                feature: None,
                reverification: None,
            };
            rules.push(compile(
                raw,
                format!("GATEWAY_PUBLIC_PATHS pattern {} ({pattern})", i + 1),
                "GATEWAY_PUBLIC_PATHS",
            )?);
        }
        for (i, raw) in file.rule.into_iter().enumerate() {
            let name = format!("rule {} ({})", i + 1, raw.path);
            rules.push(compile(raw, name, RULES_VAR)?);
        }
        let default = Rule {
            name: "default".into(),
            path: Regex::new("^.*$")
                .map_err(|e| ConfigError::caused_by(RULES_VAR, "internal pattern", e))?,
            methods: None,
            access: file.default.unwrap_or(Access::Authenticated),
            org_role: None,
            permission: None,
            accepts: None,
            plan: None,
            feature: None,
            reverification: None,
        };
        Ok(Rules { rules, default })
    }

    /// The rule that decides a request: the first that matches, else the default.
    pub fn decide(&self, method: &str, path: &str) -> &Rule {
        self.rules
            .iter()
            .find(|rule| rule.matches(method, path))
            .unwrap_or(&self.default)
    }
}

fn compile(raw: RawRule, name: String, var: &str) -> Result<Rule, ConfigError> {
    let problem = |what: String| ConfigError::new(var, format!("{name}: {what}"));
    // Case-insensitive, as Clerk's `createRouteMatcher` is: routers that ignore case
    // (Express, ASP.NET) serve `/API/Admin` as `/api/admin`, so a rule must guard both.
    let path = RegexBuilder::new(&format!("^(?:{})$", raw.path))
        .case_insensitive(true)
        .build()
        .map_err(|e| {
            ConfigError::caused_by(
                var,
                format!(
                    "{name}: not a valid regular expression: {}",
                    one_line(&e.to_string())
                ),
                e,
            )
        })?;
    let methods = match raw.methods {
        Some(methods) if methods.is_empty() => return Err(problem("methods is empty".into())),
        Some(methods) => {
            let mut upper = Vec::with_capacity(methods.len());
            for method in methods {
                let m = method.to_ascii_uppercase();
                if !METHODS.contains(&m.as_str()) {
                    return Err(problem(format!("unknown method {method:?}")));
                }
                upper.push(m);
            }
            Some(upper)
        }
        None => None,
    };
    let access = raw.access.unwrap_or(Access::Authenticated);
    if access == Access::Public
        && (raw.org_role.is_some()
            || raw.permission.is_some()
            || raw.accepts.is_some()
            || raw.plan.is_some()
            || raw.feature.is_some()
            || raw.reverification.is_some())
    {
        return Err(problem(
            "a public rule cannot require an org role, a permission, token types, a plan, a feature or a reverification".into(),
        ));
    }
    for (key, value) in [("plan", &raw.plan), ("feature", &raw.feature)] {
        if let Some(value) = value
            && !is_valid_entitlement(value)
        {
            return Err(problem(format!(
                "{key} {value:?} is not a name, user:<name> or org:<name>"
            )));
        }
    }
    let reverification = raw
        .reverification
        .as_ref()
        .map(reverification)
        .transpose()
        .map_err(problem)?;
    let accepts = match raw.accepts {
        Some(names) if names.is_empty() => return Err(problem("accepts is empty".into())),
        Some(names) => {
            let mut types = Vec::new();
            for name in names {
                types.push(
                    name.parse::<TokenType>()
                        .map_err(|e| problem(e.to_string()))?,
                );
            }
            Some(TokenTypes::of(types))
        }
        None => None,
    };
    let org_role = raw.org_role.map(|role| {
        if role.starts_with("org:") {
            role
        } else {
            format!("org:{role}")
        }
    });
    Ok(Rule {
        name,
        path,
        methods,
        access,
        org_role,
        permission: raw.permission,
        accepts,
        plan: raw.plan,
        feature: raw.feature,
        reverification,
    })
}

/// `reverification = "strict"` (a preset of Clerk's) or
/// `reverification = { level = "second_factor", after_minutes = 10 }`.
fn reverification(value: &toml::Value) -> Result<Reverification, String> {
    match value {
        toml::Value::String(preset) => preset.parse::<Reverification>().map_err(|e| e.to_string()),
        toml::Value::Table(table) => {
            if let Some(key) = table
                .keys()
                .find(|k| !matches!(k.as_str(), "level" | "after_minutes"))
            {
                return Err(format!(
                    "unknown reverification key {key:?} (expected level and after_minutes)"
                ));
            }
            let level: FactorLevel = match table.get("level") {
                Some(toml::Value::String(level)) => {
                    level.parse::<FactorLevel>().map_err(|e| e.to_string())?
                }
                Some(_) => return Err("reverification level is not a string".into()),
                None => return Err("reverification needs a level".into()),
            };
            let after_minutes = match table.get("after_minutes") {
                Some(toml::Value::Integer(minutes)) => u32::try_from(*minutes)
                    .ok()
                    .filter(|m| *m > 0)
                    .ok_or_else(|| {
                        format!(
                            "reverification after_minutes must be a whole number of minutes from 1 to {}, got {minutes}",
                            u32::MAX
                        )
                    })?,
                Some(_) => {
                    return Err("reverification after_minutes is not a whole number".into());
                }
                None => return Err("reverification needs after_minutes".into()),
            };
            Ok(Reverification::Custom {
                level,
                after_minutes,
            })
        }
        _ => Err("reverification is neither a preset's name nor { level, after_minutes }".into()),
    }
}

/// A parser's message on one line.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const FILE: &str = r#"
default = "authenticated"
[[rule]]
path = "/api/public(.*)"
methods = ["GET", "head"]
access = "public"
[[rule]]
path = "/api/admin(.*)"
org_role = "admin"
[[rule]]
path = "/api/invoices(.*)"
permission = "org:invoices:read"
accepts = ["session_token", "m2m_token"]
"#;

    fn err(text: &str) -> String {
        Rules::parse(&[], Some(text)).unwrap_err().to_string()
    }

    #[test]
    fn first_match_wins_and_the_default_catches_the_rest() {
        let rules = Rules::parse(&["/health".into()], Some(FILE)).unwrap();
        assert_eq!(rules.decide("GET", "/health").access, Access::Public);
        assert_eq!(rules.decide("GET", "/api/public/x").access, Access::Public);
        assert_eq!(rules.decide("HEAD", "/api/public").access, Access::Public);
        // Another method falls through to the default.
        assert_eq!(rules.decide("POST", "/api/public/x").name, "default");
        assert_eq!(
            rules.decide("GET", "/api/admin/users").org_role.as_deref(),
            Some("org:admin")
        );
        let invoices = rules.decide("GET", "/api/invoices/1");
        assert!(invoices.accepts.unwrap().contains(TokenType::M2mToken));
        // Anchored at both ends: a prefix elsewhere does not match.
        assert_eq!(rules.decide("GET", "/x/api/public").name, "default");
        assert_eq!(rules.decide("GET", "/healthz").name, "default");
    }

    #[test]
    fn rules_match_as_createroutematcher_does_case_and_trailing_slash() {
        let text = "default = \"public\"\n[[rule]]\npath = \"/api/admin\"\n[[rule]]\npath = \"/dashboard(.*)\"\n";
        let rules = Rules::parse(&[], Some(text)).unwrap();
        for guarded in [
            "/api/admin",
            "/api/admin/",
            "/API/Admin",
            "/Api/ADMIN/",
            "/DASHBOARD/x",
        ] {
            assert_eq!(
                rules.decide("GET", guarded).access,
                Access::Authenticated,
                "{guarded}"
            );
        }
        for public in ["/", "/api/admin/x", "/api/adminx", "/api/admin//"] {
            assert_eq!(
                rules.decide("GET", public).access,
                Access::Public,
                "{public}"
            );
        }
    }

    #[test]
    fn plans_features_and_reverification_are_read() {
        let rules = Rules::parse(
            &[],
            Some(
                r#"
[[rule]]
path = "/pro"
plan = "org:pro"
feature = "export"
[[rule]]
path = "/strict"
reverification = "strict_mfa"
[[rule]]
path = "/custom"
reverification = { level = "second_factor", after_minutes = 10 }
"#,
            ),
        )
        .unwrap();
        let pro = rules.decide("GET", "/pro");
        assert_eq!(
            (pro.plan.as_deref(), pro.feature.as_deref()),
            (Some("org:pro"), Some("export"))
        );
        assert_eq!(
            rules.decide("GET", "/strict").reverification,
            Some(Reverification::StrictMfa)
        );
        assert_eq!(
            rules.decide("GET", "/custom").reverification,
            Some(Reverification::Custom {
                level: FactorLevel::SecondFactor,
                after_minutes: 10
            })
        );
        assert_eq!(rules.decide("GET", "/other").reverification, None);
    }

    #[test]
    fn without_a_file_everything_is_authenticated() {
        let rules = Rules::parse(&[], None).unwrap();
        assert_eq!(rules.decide("GET", "/").access, Access::Authenticated);
        let open = Rules::parse(&[], Some("default = \"public\"")).unwrap();
        assert_eq!(open.decide("DELETE", "/x").access, Access::Public);
    }

    #[test]
    fn bad_rules_name_the_variable_and_the_rule() {
        assert!(err("default = ").starts_with("GATEWAY_RULES: does not parse"));
        assert!(err("colour = \"red\"").contains("unknown field"));
        assert!(err("[[rule]]\npath = \"/a\"\naccess = \"open\"").contains("does not parse"));
        let e = err("[[rule]]\npath = \"/a\"\n[[rule]]\npath = \"/b(\"");
        assert!(
            e.starts_with("GATEWAY_RULES: rule 2 (/b() : not a valid regular expression")
                || e.contains("rule 2 (/b()"),
            "{e}"
        );
        assert!(
            err("[[rule]]\npath = \"/a\"\nmethods = [\"FETCH\"]")
                .contains("rule 1 (/a): unknown method")
        );
        assert!(err("[[rule]]\npath = \"/a\"\naccepts = [\"jwt\"]").contains("unknown token type"));
        assert!(
            err("[[rule]]\npath = \"/a\"\naccess = \"public\"\norg_role = \"admin\"")
                .contains("public rule")
        );
        assert!(err("[[rule]]\nmethods = [\"GET\"]").contains("missing field `path`"));
        for (rule, message) in [
            (
                "plan = \"team:pro\"",
                "rule 1 (/a): plan \"team:pro\" is not a name",
            ),
            ("feature = \"\"", "rule 1 (/a): feature \"\" is not a name"),
            ("feature = \"org:a:b\"", "feature \"org:a:b\""),
            ("plan = 5", "does not parse"),
            (
                "reverification = \"strictest\"",
                "rule 1 (/a): unknown reverification preset \"strictest\"",
            ),
            (
                "reverification = { level = \"third_factor\", after_minutes = 5 }",
                "rule 1 (/a): unknown reverification level \"third_factor\"",
            ),
            (
                "reverification = { level = \"first_factor\", after_minutes = 5, window = 1 }",
                "rule 1 (/a): unknown reverification key \"window\"",
            ),
            (
                "reverification = { level = \"first_factor\", after_minutes = 0 }",
                "after_minutes must be a whole number of minutes from 1",
            ),
            (
                "reverification = { level = \"first_factor\", after_minutes = 1.5 }",
                "after_minutes is not a whole number",
            ),
            (
                "reverification = { after_minutes = 5 }",
                "reverification needs a level",
            ),
            ("reverification = 10", "neither a preset's name"),
            ("access = \"public\"\nplan = \"pro\"", "public rule"),
        ] {
            let e = err(&format!("[[rule]]\npath = \"/a\"\n{rule}"));
            assert!(e.starts_with("GATEWAY_RULES: "), "{e}");
            assert!(e.contains(message), "{rule}: {e}");
        }
        let e = Rules::parse(&["/ok".into(), "[".into()], None).unwrap_err();
        assert_eq!(e.var, "GATEWAY_PUBLIC_PATHS");
        assert!(e.problem.contains("pattern 2"), "{e}");
    }
}
