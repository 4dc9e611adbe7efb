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
//! ```

use std::path::Path;

use regex::Regex;
use serde::Deserialize;

use crate::{ConfigError, TokenType, TokenTypes};

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
}

impl Rule {
    fn matches(&self, method: &str, path: &str) -> bool {
        self.methods
            .as_ref()
            .is_none_or(|methods| methods.iter().any(|m| m.eq_ignore_ascii_case(method)))
            && self.path.is_match(path)
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
    let path = Regex::new(&format!("^(?:{})$", raw.path)).map_err(|e| {
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
        && (raw.org_role.is_some() || raw.permission.is_some() || raw.accepts.is_some())
    {
        return Err(problem(
            "a public rule cannot require an org role, a permission or token types".into(),
        ));
    }
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
    })
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
        let e = Rules::parse(&["/ok".into(), "[".into()], None).unwrap_err();
        assert_eq!(e.var, "GATEWAY_PUBLIC_PATHS");
        assert!(e.problem.contains("pattern 2"), "{e}");
    }
}
