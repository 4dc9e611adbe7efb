//! Plans (`pla`) and features (`fea`): Clerk Billing's entitlements, checked as
//! `has({ plan })` and `has({ feature })` of `@clerk/backend` check them.
//!
//! Both claims are comma-separated lists of scoped elements, `u:free` or
//! `o:pro,u:export`: the scope is what precedes the first `:` (`u` the user, `o` the
//! active organization, `ou`/`uo` both; other scopes name nothing Clerk knows and are
//! skipped), the name all that follows. Clerk's SDK throws on an element without a
//! `:` and answers `false`, so such an element makes every check on that claim fail.

/// Which entitlements a requirement looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// `org:pro`, `o:pro`, `organization:pro`.
    Org,
    /// `user:pro`, `u:pro`.
    User,
    /// `pro`: the user's or the organization's.
    Either,
}

/// `pro`, `org:pro` or `user:pro` (and Clerk's other spellings `o:`, `organization:`,
/// `u:`) as a scope and a name; `None` for a requirement no entitlement can meet: an
/// unknown scope (Clerk's SDK throws and answers `false`), an empty name, or a name
/// with a `:` of its own (the SDK drops what follows a second `:` and checks the rest,
/// so `org:a:b` would be met by `a`: keygate refuses rather than widen a requirement).
fn requirement(wanted: &str) -> Option<(Scope, &str)> {
    let (scope, name) = match wanted.split_once(':') {
        None => (Scope::Either, wanted),
        Some(("o" | "org" | "organization", name)) => (Scope::Org, name),
        Some(("u" | "user", name)) => (Scope::User, name),
        Some(_) => return None,
    };
    (!name.is_empty() && !name.contains(':')).then_some((scope, name))
}

/// Whether `wanted` is a plan or feature requirement a token can meet: a name
/// (`pro`), or a name scoped to the user (`user:pro`, `u:pro`) or to the active
/// organization (`org:pro`, `o:pro`, `organization:pro`). For configuration read at
/// start, so that a requirement nobody can meet is refused before it locks a route.
pub fn is_valid_entitlement(wanted: &str) -> bool {
    requirement(wanted).is_some()
}

/// Whether `claim` (the text of `pla` or `fea`, `None` when absent) grants `wanted`.
pub(crate) fn grants(claim: Option<&str>, wanted: &str) -> bool {
    let Some((scope, name)) = requirement(wanted) else {
        return false;
    };
    let Some(claim) = claim.filter(|c| !c.is_empty()) else {
        return false;
    };
    let mut granted = false;
    for element in claim.split(',').map(str::trim) {
        // An element without a scope spoils the whole claim, as in Clerk's SDK: keep
        // reading rather than stop at the first match.
        let Some((element_scope, element_name)) = element.split_once(':') else {
            return false;
        };
        let (org, user) = match element_scope {
            "o" => (true, false),
            "u" => (false, true),
            "ou" | "uo" => (true, true),
            _ => (false, false),
        };
        let in_scope = match scope {
            Scope::Org => org,
            Scope::User => user,
            Scope::Either => org || user,
        };
        granted |= in_scope && element_name == name;
    }
    granted
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn scopes_of_the_claim_and_of_the_requirement() {
        let pla = Some("u:free,o:pro");
        for (wanted, expected) in [
            ("free", true),
            ("pro", true),
            ("user:free", true),
            ("u:free", true),
            ("org:pro", true),
            ("o:pro", true),
            ("organization:pro", true),
            ("org:free", false),
            ("user:pro", false),
            ("team", false),
        ] {
            assert_eq!(grants(pla, wanted), expected, "{wanted}");
        }
        for both in ["ou:pro", "uo:pro"] {
            assert!(grants(Some(both), "user:pro") && grants(Some(both), "org:pro"));
        }
    }

    #[test]
    fn names_are_compared_exactly_after_trimming_the_elements() {
        assert!(grants(Some(" u:free , o:pro "), "free"));
        assert!(grants(Some(" u:free , o:pro "), "org:pro"));
        assert!(!grants(Some("u:Free"), "free"));
        assert!(
            !grants(Some("u: free"), "free"),
            "inside an element, spaces count"
        );
        // The name is all after the first colon.
        assert!(!grants(Some("u:a:b"), "a"));
    }

    #[test]
    fn an_element_without_a_scope_fails_every_check_on_the_claim() {
        for claim in ["free", "u:free,pro", "u:free,", ",u:free", "u:free,,o:pro"] {
            assert!(!grants(Some(claim), "free"), "{claim}");
            assert!(!grants(Some(claim), "user:free"), "{claim}");
        }
        // An unknown scope is skipped, not fatal.
        assert!(grants(Some("x:pro,u:free"), "free"));
        assert!(!grants(Some("x:pro"), "pro"));
    }

    #[test]
    fn absent_or_empty_claims_and_unusable_requirements_grant_nothing() {
        assert!(!grants(None, "free"));
        assert!(!grants(Some(""), "free"));
        for wanted in ["", "org:", "user:", "team:pro", "org:a:b", "ou:pro", ":pro"] {
            assert!(!is_valid_entitlement(wanted), "{wanted}");
            assert!(
                !grants(Some("u:pro,o:pro,ou:pro,u:,o:a:b,o:a"), wanted),
                "{wanted}"
            );
        }
    }
}
