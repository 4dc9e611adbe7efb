//! Step-up reverification: how recently the user proved who they are, from Clerk's
//! `fva` claim, decided as `has({ reverification })` of `@clerk/backend` decides it.
//!
//! `fva` is `[minutes since the first factor was verified, minutes since the second
//! factor was verified]`, `-1` for a factor the user has not enabled.

use std::fmt;
use std::str::FromStr;

use serde_json::{Value, json};

/// Which factors a [`Reverification`] looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FactorLevel {
    /// The first factor (password, email code, passkey, …).
    FirstFactor,
    /// The second factor; the first when the user has no second factor.
    SecondFactor,
    /// Both factors; the first alone when the user has no second factor.
    MultiFactor,
}

impl FactorLevel {
    /// The name Clerk uses: `first_factor`, `second_factor` or `multi_factor`.
    pub fn as_str(self) -> &'static str {
        match self {
            FactorLevel::FirstFactor => "first_factor",
            FactorLevel::SecondFactor => "second_factor",
            FactorLevel::MultiFactor => "multi_factor",
        }
    }
}

impl fmt::Display for FactorLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FactorLevel {
    type Err = UnknownReverification;

    fn from_str(s: &str) -> Result<FactorLevel, UnknownReverification> {
        match s {
            "first_factor" => Ok(FactorLevel::FirstFactor),
            "second_factor" => Ok(FactorLevel::SecondFactor),
            "multi_factor" => Ok(FactorLevel::MultiFactor),
            other => Err(UnknownReverification::Level(other.to_string())),
        }
    }
}

/// A reverification requirement: one of Clerk's presets, or a level and a number of
/// minutes. A factor verified exactly `after_minutes` ago no longer counts.
///
/// ```
/// # use keygate_core as keygate;
/// use keygate::{FactorLevel, Reverification};
///
/// let strict: Reverification = "strict".parse().unwrap();
/// assert_eq!(strict, Reverification::Strict);
/// assert_eq!((strict.level(), strict.after_minutes()), (FactorLevel::SecondFactor, 10));
/// let custom = Reverification::Custom { level: FactorLevel::FirstFactor, after_minutes: 5 };
/// assert_eq!(custom.to_string(), "first_factor within 5 minutes");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reverification {
    /// `strict_mfa`: both factors, within 10 minutes.
    StrictMfa,
    /// `strict`: the second factor, within 10 minutes.
    Strict,
    /// `moderate`: the second factor, within 60 minutes.
    Moderate,
    /// `lax`: the second factor, within 1440 minutes (a day).
    Lax,
    /// `{ level, afterMinutes }`. An `after_minutes` of 0 is never met, as in Clerk's SDK.
    Custom {
        /// The factors that count.
        level: FactorLevel,
        /// How many minutes ago they may have been verified, at most (exclusive).
        after_minutes: u32,
    },
}

impl Reverification {
    /// The factors the requirement looks at.
    pub fn level(self) -> FactorLevel {
        match self {
            Reverification::StrictMfa => FactorLevel::MultiFactor,
            Reverification::Strict | Reverification::Moderate | Reverification::Lax => {
                FactorLevel::SecondFactor
            }
            Reverification::Custom { level, .. } => level,
        }
    }

    /// The age, in minutes, a verification must be below.
    pub fn after_minutes(self) -> u32 {
        match self {
            Reverification::StrictMfa | Reverification::Strict => 10,
            Reverification::Moderate => 60,
            Reverification::Lax => 1440,
            Reverification::Custom { after_minutes, .. } => after_minutes,
        }
    }

    /// The preset's name (`strict_mfa`, `strict`, `moderate`, `lax`); `None` for a
    /// custom requirement.
    pub fn preset(self) -> Option<&'static str> {
        match self {
            Reverification::StrictMfa => Some("strict_mfa"),
            Reverification::Strict => Some("strict"),
            Reverification::Moderate => Some("moderate"),
            Reverification::Lax => Some("lax"),
            Reverification::Custom { .. } => None,
        }
    }

    /// The requirement as Clerk's reverification error carries it in
    /// `clerk_error.metadata.reverification`: the preset's name, or
    /// `{"level": …, "afterMinutes": …}`.
    pub fn to_clerk_metadata(self) -> Value {
        match self.preset() {
            Some(name) => Value::from(name),
            None => json!({ "level": self.level().as_str(), "afterMinutes": self.after_minutes() }),
        }
    }

    /// Whether factor ages (`fva`'s two numbers, `None` when the token has none) meet
    /// the requirement. Clerk's `checkReverificationAuthorization`, step by step: ages
    /// must be finite and either `-1` or at least 0; a factor is fresh when it is
    /// enabled and its age is below the limit; without a second factor, the first
    /// decides `second_factor` and `multi_factor`.
    pub(crate) fn is_met(self, ages: Option<[f64; 2]>) -> bool {
        let Some([first, second]) = ages else {
            return false;
        };
        let valid = |age: f64| age.is_finite() && (age == -1.0 || age >= 0.0);
        let limit = f64::from(self.after_minutes());
        if !valid(first) || !valid(second) || limit <= 0.0 {
            return false;
        }
        let first_fresh = first != -1.0 && limit > first;
        let second_fresh = second != -1.0 && limit > second;
        match self.level() {
            FactorLevel::FirstFactor => first_fresh,
            FactorLevel::SecondFactor if second == -1.0 => first_fresh,
            FactorLevel::SecondFactor => second_fresh,
            FactorLevel::MultiFactor if second == -1.0 => first_fresh,
            FactorLevel::MultiFactor => first_fresh && second_fresh,
        }
    }
}

impl fmt::Display for Reverification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.preset() {
            Some(name) => f.write_str(name),
            None => write!(
                f,
                "{} within {} minutes",
                self.level(),
                self.after_minutes()
            ),
        }
    }
}

impl FromStr for Reverification {
    type Err = UnknownReverification;

    /// A preset by name: `strict_mfa`, `strict`, `moderate` or `lax`.
    fn from_str(s: &str) -> Result<Reverification, UnknownReverification> {
        match s {
            "strict_mfa" => Ok(Reverification::StrictMfa),
            "strict" => Ok(Reverification::Strict),
            "moderate" => Ok(Reverification::Moderate),
            "lax" => Ok(Reverification::Lax),
            other => Err(UnknownReverification::Preset(other.to_string())),
        }
    }
}

/// A reverification preset or level that Clerk does not define.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnknownReverification {
    /// Not `strict_mfa`, `strict`, `moderate` or `lax`.
    #[error("unknown reverification preset {0:?} (expected strict_mfa, strict, moderate or lax)")]
    Preset(String),
    /// Not `first_factor`, `second_factor` or `multi_factor`.
    #[error(
        "unknown reverification level {0:?} (expected first_factor, second_factor or multi_factor)"
    )]
    Level(String),
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const PRESETS: [Reverification; 4] = [
        Reverification::StrictMfa,
        Reverification::Strict,
        Reverification::Moderate,
        Reverification::Lax,
    ];

    fn met(r: Reverification, first: f64, second: f64) -> bool {
        r.is_met(Some([first, second]))
    }

    #[test]
    fn each_preset_at_its_boundary() {
        for r in PRESETS {
            let limit = f64::from(r.after_minutes());
            // Both factors enabled: the second factor's age decides (and for strict_mfa
            // the first's too).
            assert!(met(r, 0.0, limit - 1.0), "{r}: one minute inside");
            assert!(!met(r, 0.0, limit), "{r}: an age equal to the limit fails");
            assert!(!met(r, 0.0, limit + 1.0), "{r}");
            assert!(met(r, 0.0, limit - 0.5), "{r}: fractions count");
            assert_eq!(
                met(r, limit, 0.0),
                r != Reverification::StrictMfa,
                "{r}: a stale first factor matters only for multi_factor"
            );
            // No second factor: the first decides.
            assert!(met(r, limit - 1.0, -1.0), "{r}");
            assert!(!met(r, limit, -1.0), "{r}");
            // No first factor (a passkey-only user, say): multi_factor fails.
            assert_eq!(
                met(r, -1.0, 0.0),
                r != Reverification::StrictMfa,
                "{r}: without a first factor"
            );
            assert!(!met(r, -1.0, -1.0), "{r}: nothing enabled");
            assert!(!r.is_met(None), "{r}: no fva");
        }
    }

    #[test]
    fn custom_levels() {
        let at = |level, after_minutes| Reverification::Custom {
            level,
            after_minutes,
        };
        let first = at(FactorLevel::FirstFactor, 5);
        assert!(met(first, 4.0, -1.0) && met(first, 4.0, 100.0));
        assert!(!met(first, 5.0, 0.0) && !met(first, -1.0, 0.0));
        let second = at(FactorLevel::SecondFactor, 5);
        assert!(met(second, 100.0, 4.0) && !met(second, 0.0, 5.0));
        assert!(met(second, -1.0, 4.0) && !met(second, -1.0, 5.0));
        let multi = at(FactorLevel::MultiFactor, 5);
        assert!(met(multi, 4.0, 4.0) && !met(multi, 5.0, 4.0) && !met(multi, 4.0, 5.0));
        // Zero minutes is never met.
        assert!(!met(at(FactorLevel::FirstFactor, 0), 0.0, 0.0));
    }

    #[test]
    fn ages_clerk_would_not_read_fail() {
        for bad in [-2.0, -0.5, f64::NAN, f64::INFINITY, -1.5] {
            assert!(!met(Reverification::Lax, bad, 0.0), "{bad}");
            assert!(!met(Reverification::Lax, 0.0, bad), "{bad}");
        }
        assert!(met(Reverification::Lax, -0.0, -1.0));
    }

    #[test]
    fn names_and_metadata() {
        for r in PRESETS {
            let name = r.preset().unwrap();
            assert_eq!(name.parse::<Reverification>().unwrap(), r);
            assert_eq!(r.to_clerk_metadata(), json!(name));
        }
        let custom = Reverification::Custom {
            level: FactorLevel::SecondFactor,
            after_minutes: 10,
        };
        assert_eq!(
            custom.to_clerk_metadata(),
            json!({"level": "second_factor", "afterMinutes": 10})
        );
        assert!(
            "Strict"
                .parse::<Reverification>()
                .unwrap_err()
                .to_string()
                .contains("unknown reverification preset \"Strict\"")
        );
        assert_eq!(
            "multi_factor".parse::<FactorLevel>(),
            Ok(FactorLevel::MultiFactor)
        );
        assert!("mfa".parse::<FactorLevel>().is_err());
    }
}
