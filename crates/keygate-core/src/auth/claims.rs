//! The claims of a verified token: the decoded payload kept as it is, the claims the
//! policy reads typed in one pass over it, and every claim available as JSON on demand.
//!
//! The typed pass allocates nothing for the common case: a claim that is a JSON string
//! without escapes is kept as its position in the payload. Each claim the policy reads
//! is recorded with its JSON type, so a rule can tell a missing claim from one of the
//! wrong type (`"nbf": null` is not an absent `nbf`). A claim repeated in the payload
//! counts once, with its last value, as in JavaScript's `JSON.parse`.
//!
//! Claim names are read by a derived `Deserialize`; the object and the values are not,
//! for what a derive cannot do: it refuses a repeated field, its field names are fixed
//! at compile time (the user claim is configured), telling a value's JSON type would
//! buffer it (`untagged`), and the values it skips (`IgnoredAny`) escape serde_json's
//! nesting limit, which claims read as JSON later must stay within.

use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::AuthError;
use super::error::{Rejection, shown};

/// Where a string claim's text is: a span of the payload, or its own copy when the
/// JSON escaped it.
#[derive(Debug, Clone)]
pub(crate) enum Text {
    Span(u32, u32),
    Owned(Box<str>),
}

/// One claim as the policy sees it.
#[derive(Debug, Clone, Default)]
pub(crate) enum Field {
    /// Not in the payload.
    #[default]
    Absent,
    /// A JSON string.
    Str(Text),
    /// A JSON number.
    Num(f64, Option<i64>),
    /// A JSON array whose entries were asked for (`aud`, `fva`).
    Array(Vec<Field>),
    /// Any other JSON value, by type name (`null`, `boolean`, `array`, `object`).
    Other(&'static str),
}

/// `fva` as the policy sees it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) enum Fva {
    /// Not in the payload.
    #[default]
    Absent,
    /// A JSON array of numbers: how many, and the first two.
    Ages(usize, [f64; 2]),
    /// Anything else, by type name (`null` included: the same as absent).
    Other(&'static str),
}

impl From<Field> for Fva {
    fn from(field: Field) -> Fva {
        match field {
            Field::Absent => Fva::Absent,
            Field::Array(entries) => {
                let age = |i: usize| match entries.get(i) {
                    Some(Field::Num(age, _)) => *age,
                    _ => 0.0,
                };
                if entries.iter().all(|e| matches!(e, Field::Num(..))) {
                    Fva::Ages(entries.len(), [age(0), age(1)])
                } else {
                    Fva::Other("an array with an entry that is not a number")
                }
            }
            other => Fva::Other(type_name(&other)),
        }
    }
}

/// The claims of a token whose signature verified (or of a machine token the Backend
/// API vouched for).
#[derive(Debug)]
pub struct Claims {
    json: Box<str>,
    pub(crate) sub: Field,
    pub(crate) iss: Field,
    pub(crate) azp: Field,
    pub(crate) sid: Field,
    pub(crate) sts: Field,
    pub(crate) exp: Field,
    pub(crate) nbf: Field,
    pub(crate) iat: Field,
    pub(crate) user: Field,
    pub(crate) pla: Field,
    pub(crate) fea: Field,
    pub(crate) fva: Fva,
    /// A string, or an array whose string entries count (others never match).
    aud: Field,
    all: OnceLock<Value>,
}

impl Claims {
    /// Reads a payload (the decoded JSON text), recording the claims the policy reads;
    /// `user_claim` is the claim that holds the user id. Only a payload that is not a
    /// JSON object is refused here; what each claim must be is the policy's to say.
    pub(crate) fn parse(json: String, user_claim: &str) -> Result<Claims, Rejection> {
        let json = json.into_boxed_str();
        let mut claims = Claims::empty(String::new().into_boxed_str());
        {
            let mut de = serde_json::Deserializer::from_str(&json);
            let payload = Payload {
                claims: &mut claims,
                base: json.as_ptr() as usize,
                user_claim,
            };
            de::Deserializer::deserialize_map(&mut de, payload)
                .and_then(|()| de.end())
                .map_err(|e| {
                    let why = if e.is_data() {
                        "the JWT payload is not a JSON object"
                    } else {
                        "the JWT payload is not JSON"
                    };
                    Rejection::new(AuthError::MalformedToken, why)
                })?;
        }
        claims.json = json;
        Ok(claims)
    }

    /// The claims of a JSON object built by keygate itself (a machine token's identity).
    pub(crate) fn from_value(value: &Value, user_claim: &str) -> Claims {
        // Serializing a Value cannot fail; an empty object is the harmless fallback.
        let json = serde_json::to_string(value).unwrap_or_else(|_| "{}".into());
        Claims::parse(json, user_claim).unwrap_or_else(|_| Claims::empty("{}".into()))
    }

    fn empty(json: Box<str>) -> Claims {
        Claims {
            json,
            sub: Field::Absent,
            iss: Field::Absent,
            azp: Field::Absent,
            sid: Field::Absent,
            sts: Field::Absent,
            exp: Field::Absent,
            nbf: Field::Absent,
            iat: Field::Absent,
            user: Field::Absent,
            pla: Field::Absent,
            fea: Field::Absent,
            fva: Fva::Absent,
            aud: Field::Absent,
            all: OnceLock::new(),
        }
    }

    fn text<'s>(&'s self, text: &'s Text) -> &'s str {
        match text {
            Text::Span(start, end) => self
                .json
                .get(*start as usize..*end as usize)
                .unwrap_or_default(),
            Text::Owned(owned) => owned,
        }
    }

    pub(crate) fn field_str<'s>(&'s self, field: &'s Field) -> Option<&'s str> {
        match field {
            Field::Str(text) => Some(self.text(text)),
            _ => None,
        }
    }

    /// `sub`, when it is a string.
    pub fn sub(&self) -> Option<&str> {
        self.field_str(&self.sub)
    }

    /// `iss`, when it is a string.
    pub fn iss(&self) -> Option<&str> {
        self.field_str(&self.iss)
    }

    /// `aud` as a list: a single string is one entry, entries that are not strings are left out.
    pub fn aud(&self) -> Vec<&str> {
        match &self.aud {
            Field::Str(text) => vec![self.text(text)],
            Field::Array(entries) => entries.iter().filter_map(|e| self.field_str(e)).collect(),
            _ => Vec::new(),
        }
    }

    /// `azp`: the origin that requested the token (Clerk), when it is a string.
    pub fn azp(&self) -> Option<&str> {
        self.field_str(&self.azp)
    }

    /// `exp`, Unix seconds (fractions truncated); `None` for a machine token that never expires.
    pub fn exp(&self) -> Option<i64> {
        numeric_date(&self.exp)
    }

    /// `nbf`, Unix seconds.
    pub fn nbf(&self) -> Option<i64> {
        numeric_date(&self.nbf)
    }

    /// `iat`, Unix seconds.
    pub fn iat(&self) -> Option<i64> {
        numeric_date(&self.iat)
    }

    /// `sid`: the Clerk session id, when it is a string.
    pub fn sid(&self) -> Option<&str> {
        self.field_str(&self.sid)
    }

    /// `sts`: the Clerk session status (v2), e.g. `pending`.
    pub fn sts(&self) -> Option<&str> {
        self.field_str(&self.sts)
    }

    /// `pla`: Clerk Billing's plans (`u:free`, `o:pro,u:free`), when it is a non-empty string.
    pub fn pla(&self) -> Option<&str> {
        self.field_str(&self.pla).filter(|s| !s.is_empty())
    }

    /// `fea`: Clerk Billing's features (`u:export,o:seats`), when it is a non-empty string.
    pub fn fea(&self) -> Option<&str> {
        self.field_str(&self.fea).filter(|s| !s.is_empty())
    }

    /// `fva`'s two numbers, when it is an array of exactly two numbers.
    pub(crate) fn factor_ages(&self) -> Option<[f64; 2]> {
        match self.fva {
            Fva::Ages(2, ages) => Some(ages),
            _ => None,
        }
    }

    /// The configured user claim, when it is a non-empty string.
    pub(crate) fn user(&self) -> Option<&str> {
        self.field_str(&self.user).filter(|s| !s.is_empty())
    }

    /// Any claim, as sent.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.as_json().get(name)
    }

    /// A claim as a non-empty string.
    pub fn string(&self, name: &str) -> Option<&str> {
        self.get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// Every claim, as the JSON object the token carries.
    pub fn as_json(&self) -> &Value {
        self.all.get_or_init(|| {
            // The typed pass already read this text as a JSON object.
            serde_json::from_str(&self.json).unwrap_or_else(|_| Value::Object(Map::new()))
        })
    }

    /// Every claim as a map.
    pub fn as_map(&self) -> &Map<String, Value> {
        static EMPTY: OnceLock<Map<String, Value>> = OnceLock::new();
        match self.as_json() {
            Value::Object(map) => map,
            _ => EMPTY.get_or_init(Map::new),
        }
    }

    /// The payload as sent (decoded from base64url), for forwarding.
    pub fn json_text(&self) -> &str {
        &self.json
    }

    /// A claim value for an explanation.
    pub(crate) fn shown(&self, name: &str) -> String {
        shown(self.get(name))
    }
}

/// A NumericDate: integer or fractional seconds, truncated toward zero.
fn numeric_date(field: &Field) -> Option<i64> {
    match field {
        Field::Num(_, Some(int)) => Some(*int),
        // Saturating: a date beyond i64 seconds is "never" or "long ago" either way.
        Field::Num(float, None) => Some(float.trunc() as i64),
        _ => None,
    }
}

/// The name of a JSON type, for explanations.
pub(crate) fn type_name(field: &Field) -> &'static str {
    match field {
        Field::Absent => "absent",
        Field::Str(_) => "a string",
        Field::Num(..) => "a number",
        Field::Array(_) => "an array",
        Field::Other(kind) => kind,
    }
}

/// The payload object: each claim the policy reads goes to its field, the others are
/// skipped.
struct Payload<'c, 'u> {
    claims: &'c mut Claims,
    base: usize,
    user_claim: &'u str,
}

/// A claim's name, borrowed from the payload when it has no escapes.
#[derive(Deserialize)]
#[serde(transparent)]
struct Name<'a>(#[serde(borrow)] Cow<'a, str>);

impl<'de> Visitor<'de> for Payload<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let value = Read {
            base: self.base,
            keep: Keep::Value,
        };
        let entries = Read {
            keep: Keep::Entries,
            ..value
        };
        let c = self.claims;
        while let Some(Name(name)) = map.next_key()? {
            if name == self.user_claim {
                c.user = map.next_value_seed(value)?;
                // The user claim may also be one of the standard ones (`sub` by default).
                if self.user_claim == "sub" {
                    c.sub = c.user.clone();
                }
                continue;
            }
            let field = match &*name {
                "sub" => &mut c.sub,
                "iss" => &mut c.iss,
                "azp" => &mut c.azp,
                "sid" => &mut c.sid,
                "sts" => &mut c.sts,
                "exp" => &mut c.exp,
                "nbf" => &mut c.nbf,
                "iat" => &mut c.iat,
                "pla" => &mut c.pla,
                "fea" => &mut c.fea,
                "aud" => {
                    c.aud = map.next_value_seed(entries)?;
                    continue;
                }
                "fva" => {
                    c.fva = map.next_value_seed(entries)?.into();
                    continue;
                }
                _ => {
                    map.next_value_seed(Read {
                        keep: Keep::Nothing,
                        ..value
                    })?;
                    continue;
                }
            };
            *field = map.next_value_seed(value)?;
        }
        Ok(())
    }
}

/// How much of a value to keep.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// Nothing: the value is only checked to be JSON within the nesting limit.
    Nothing,
    /// Its type, a string's text and a number's value.
    Value,
    /// As `Value`, and an array's entries too.
    Entries,
}

/// Reads one value through `deserialize_any`, so that the JSON parser's nesting limit
/// holds for claims keygate skips as much as for those it reads (the claims are read
/// as JSON later; a value too deep for that must be refused now).
#[derive(Clone, Copy)]
struct Read {
    /// Where the payload starts, to keep a borrowed string as its span.
    base: usize,
    keep: Keep,
}

impl Read {
    fn string(self, v: &str, borrowed: bool) -> Field {
        match self.keep {
            Keep::Nothing => Field::Other("a string"),
            _ if borrowed => Field::Str(text_of(v, self.base)),
            _ => Field::Str(Text::Owned(v.into())),
        }
    }
}

/// A string claim's text: its span when borrowed from the payload at `base`.
fn text_of(v: &str, base: usize) -> Text {
    let start = (v.as_ptr() as usize).wrapping_sub(base);
    match (u32::try_from(start), u32::try_from(start + v.len())) {
        (Ok(start), Ok(end)) => Text::Span(start, end),
        _ => Text::Owned(v.into()),
    }
}

impl<'de> DeserializeSeed<'de> for Read {
    type Value = Field;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Field, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Read {
    type Value = Field;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Field, E> {
        Ok(self.string(v, true))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
        Ok(self.string(v, false))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Field, E> {
        Ok(Field::Num(v as f64, Some(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Field, E> {
        Ok(Field::Num(v as f64, i64::try_from(v).ok()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Field, E> {
        Ok(Field::Num(v, None))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Field, E> {
        Ok(Field::Other("a boolean"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Field, E> {
        Ok(Field::Other("null"))
    }

    fn visit_none<E: de::Error>(self) -> Result<Field, E> {
        Ok(Field::Other("null"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Field, A::Error> {
        let keep = self.keep == Keep::Entries;
        let entry = Read {
            keep: if keep { Keep::Value } else { Keep::Nothing },
            ..self
        };
        let mut entries = Vec::new();
        while let Some(field) = seq.next_element_seed(entry)? {
            if keep {
                entries.push(field);
            }
        }
        Ok(if keep {
            Field::Array(entries)
        } else {
            Field::Other("an array")
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Field, A::Error> {
        let skip = Read {
            keep: Keep::Nothing,
            ..self
        };
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value_seed(skip)?;
        }
        Ok(Field::Other("an object"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Claims {
        Claims::parse(v.to_string(), "sub").unwrap()
    }

    #[test]
    fn typed_claims_without_copies_and_with_escapes() {
        let c = claims(
            json!({"sub": "u", "exp": 10.7, "aud": ["a", 3, "b"], "sid": "s", "iss": "https://x/\u{e9}\"q"}),
        );
        assert_eq!(
            (c.exp(), c.aud(), c.sid(), c.sub()),
            (Some(10), vec!["a", "b"], Some("s"), Some("u"))
        );
        assert_eq!(c.iss(), Some("https://x/\u{e9}\"q"));
        assert_eq!(c.user(), Some("u"));
        assert_eq!(c.get("sid"), Some(&json!("s")));
    }

    #[test]
    fn types_are_recorded_not_guessed() {
        let c = claims(
            json!({"exp": "10", "nbf": null, "iat": true, "azp": 5, "sub": 42, "aud": {"x": 1}}),
        );
        assert_eq!(c.exp(), None);
        assert!(matches!(c.exp, Field::Str(_)));
        assert!(matches!(c.nbf, Field::Other("null")));
        assert!(matches!(c.iat, Field::Other("a boolean")));
        assert!(matches!(c.azp, Field::Num(..)));
        assert_eq!((c.sub(), c.user()), (None, None));
        assert!(c.aud().is_empty());
        assert_eq!(claims(json!({"exp": -1.9})).exp(), Some(-1));
    }

    #[test]
    fn a_configured_user_claim_is_read_beside_sub() {
        let c = Claims::parse(json!({"sub": "a", "user_id": "42"}).to_string(), "user_id").unwrap();
        assert_eq!((c.sub(), c.user()), (Some("a"), Some("42")));
        let empty = Claims::parse(json!({"user_id": ""}).to_string(), "user_id").unwrap();
        assert_eq!(empty.user(), None);
    }

    #[test]
    fn billing_and_reverification_claims_keep_their_types() {
        let c = claims(json!({"pla": "u:free", "fea": "", "fva": [3, -1]}));
        assert_eq!((c.pla(), c.fea()), (Some("u:free"), None));
        assert_eq!(c.factor_ages(), Some([3.0, -1.0]));
        let c = claims(json!({"pla": 5, "fea": null, "fva": [1, 2, 3]}));
        assert!(matches!(c.pla, Field::Num(..)) && matches!(c.fea, Field::Other("null")));
        assert!(matches!(c.fva, Fva::Ages(3, [1.0, 2.0])));
        assert_eq!(c.factor_ages(), None);
        for (fva, kind) in [
            (json!("1,2"), "a string"),
            (
                json!([1, "2"]),
                "an array with an entry that is not a number",
            ),
            (json!({"0": 1}), "an object"),
            (json!(null), "null"),
        ] {
            let c = claims(json!({ "fva": fva }));
            assert!(matches!(c.fva, Fva::Other(k) if k == kind), "{fva}");
        }
    }

    #[test]
    fn the_last_of_repeated_claims_counts() {
        let c = Claims::parse(r#"{"sub":"first","sub":"last"}"#.into(), "sub").unwrap();
        assert_eq!((c.sub(), c.string("sub")), (Some("last"), Some("last")));
    }

    #[test]
    fn only_json_objects_are_payloads() {
        let deep = format!("{{\"x\":{}{}}}", "[".repeat(300), "]".repeat(300));
        for bad in ["[1]", "1", "\"x\"", "{", "{} x", "null", deep.as_str()] {
            assert_eq!(
                Claims::parse(bad.into(), "sub").unwrap_err().error,
                AuthError::MalformedToken,
                "{bad}"
            );
        }
    }
}
