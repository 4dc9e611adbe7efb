//! Differential conformance against Clerk's own SDK.
//!
//! Every token of a corpus of a few hundred (valid ones, every claim with every JSON
//! type, time boundaries around the 5 s leeway, categories, `typ`s, authorized parties,
//! audiences, issuers, machine tokens, algorithms, signatures, encodings, sizes) is
//! decided twice at one frozen instant:
//!
//! - by Clerk: `@clerk/backend`'s `authenticateRequest` for a session route, through the
//!   Node harness `tests/clerk/decide.mjs` (mode `session`);
//! - by keygate: [`keygate::Authenticator::explain`] with the same key, leeway,
//!   authorized parties, audiences and issuers.
//!
//! What this proves: wherever the two disagree on accept/reject, the disagreement is
//! one listed in [`ALLOWED`] with its reason: keygate refusing what Clerk accepts, on
//! purpose (a standard says so, or the token is of a shape Clerk only tolerates), or,
//! in a few flagged entries, keygate accepting what Clerk refuses for a reason that is
//! not a verification rule. Any other disagreement fails the test, and an entry of
//! [`ALLOWED`] that no longer excuses anything fails it too, so the list (and
//! `docs/clerk-conformance.md`) stays exact. Reason codes are not compared: the two name
//! their failures differently.
//!
//! A second test does the same for the rest of Clerk's `has()`: plans (`pla`), features
//! (`fea`) and step-up reverification (`fva`). A few thousand claims × requirements are
//! decided by the SDK (`auth.has(…)` after `authenticateRequest`, mode `has`), by the
//! library (`has_plan`, `has_feature`, `is_reverified`) and by the service (`/auth`
//! with one gateway rule per requirement); the two keygate answers must be identical,
//! and any disagreement with the SDK must be one of [`HAS_ALLOWED`].
//!
//! Without Node or `tests/clerk/node_modules` (`npm ci` in `tests/clerk`) the tests are
//! skipped with a notice, except when `CI` is set.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::{KeyPair, KeySize};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey};
use keygate::clock::{ManualClock, SharedClock};
use serde_json::{Map, Value, json};

/// The frozen instant, 2026-01-01T00:00:00Z: keygate's clock and Clerk's `Date.now()`.
const NOW: i64 = 1_767_225_600;
/// Clock skew on both sides: keygate's leeway, Clerk's `clockSkewInMs`.
const LEEWAY_SECS: i64 = 5;
/// The Clerk frontend API the publishable key names, and the issuer of its tokens.
const FRONTEND_API: &str = "clerk.example.com";
const ISSUER: &str = "https://clerk.example.com";
/// `JWT_AUTHORIZED_PARTIES` / `authorizedParties`.
const PARTIES: &[&str] = &["https://app.example.com", "http://localhost:3000"];
/// `JWT_AUDIENCE` / `audience` on the audience route.
const AUDIENCES: &[&str] = &["https://api.example.com", "urn:keygate:api"];
/// keygate's longest token.
const MAX_TOKEN_LEN: usize = 16 * 1024;

// ------------------------------------------------------------------ the allow-list

/// Which side refuses what the other accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// keygate refuses a token Clerk accepts.
    KeygateStricter,
    /// keygate accepts a token Clerk refuses. Only where Clerk's refusal is not a
    /// verification rule, or a standard sides with keygate; each is reported.
    KeygateLaxer,
}

/// One known, explained disagreement.
struct Allowed {
    /// The case ids it covers (`*` matches any run of characters).
    cases: &'static [&'static str],
    direction: Direction,
    /// What keygate does, for the table in `docs/clerk-conformance.md`.
    keygate: &'static str,
    /// What Clerk does.
    clerk: &'static str,
    /// Why the difference is right.
    reason: &'static str,
}

/// Every disagreement the test tolerates. Keep `docs/clerk-conformance.md` in step.
const ALLOWED: &[Allowed] = &[
    Allowed {
        cases: &["crit/*"],
        direction: Direction::KeygateStricter,
        keygate: "malformed_token",
        clerk: "ignores crit",
        reason: "RFC 7515 §4.1.11: a recipient MUST reject a JWS whose crit lists extensions it does not understand (and crit MUST NOT be empty); keygate understands none",
    },
    Allowed {
        cases: &["size/over-*"],
        direction: Direction::KeygateStricter,
        keygate: "malformed_token",
        clerk: "no size limit",
        reason: "tokens over 16 KiB are refused unparsed, bounding the work an unauthenticated request can cause; Clerk's own session tokens are far smaller",
    },
    Allowed {
        cases: &["b64/padded-*"],
        direction: Direction::KeygateStricter,
        keygate: "malformed_token",
        clerk: "strips trailing =",
        reason: "RFC 7515 §2 and §3.1: JWS parts are base64url with all trailing = omitted; one token has one encoding",
    },
    Allowed {
        cases: &["utf8/invalid-*"],
        direction: Direction::KeygateStricter,
        keygate: "malformed_token",
        clerk: "decodes lossily (U+FFFD)",
        reason: "RFC 7515 §5.2 and RFC 7519 §7.2: the header and the claims are UTF-8 JSON (RFC 8259 §8.1); replacing bad bytes with U+FFFD would make different payloads read the same. keygate refuses a header or a payload that is not UTF-8, also in a part it does not read",
    },
    Allowed {
        cases: &["bom/*"],
        direction: Direction::KeygateStricter,
        keygate: "malformed_token",
        clerk: "strips a leading BOM",
        reason: "RFC 8259 §8.1: JSON text MUST NOT begin with a byte order mark; a parser MAY ignore one, keygate does not",
    },
    Allowed {
        cases: &["json/duplicate-header-param"],
        direction: Direction::KeygateStricter,
        keygate: "malformed_token",
        clerk: "the last duplicate wins",
        reason: "RFC 7515 §4: header parameter names MUST be unique; a parser MUST reject duplicates or take the last, keygate rejects (duplicate claims in the payload take the last, as Clerk does)",
    },
    Allowed {
        cases: &["json/deep-nesting-*"],
        direction: Direction::KeygateStricter,
        keygate: "malformed_token",
        clerk: "no nesting limit",
        reason: "the JSON parser stops at 128 levels of nesting, so no payload can exhaust the stack; no real claim is that deep",
    },
    Allowed {
        cases: &["json/lone-surrogate-*"],
        direction: Direction::KeygateStricter,
        keygate: "malformed_token",
        clerk: "keeps the lone surrogate",
        reason: "RFC 8259 §8.2: a string with an unpaired surrogate escape is not Unicode and its meaning is unpredictable; it cannot be represented in UTF-8",
    },
    Allowed {
        cases: &["time/*-out-of-range*", "time/*-non-finite*"],
        direction: Direction::KeygateStricter,
        keygate: "token_expired / token_not_yet_valid / token_issued_in_future / malformed_token",
        clerk: "NaN date: the check passes",
        reason: "a NumericDate beyond JavaScript's Date range (±8.64e12 s) or beyond a double (1e400) makes Clerk's comparison NaN and the check pass; keygate compares the number itself, so exp in the far past is expired and nbf/iat in the far future are not yet valid, and a number JSON cannot hold as a double is malformed",
    },
    Allowed {
        cases: &["types/sid-*", "types/sts-*"],
        direction: Direction::KeygateStricter,
        keygate: "malformed_token",
        clerk: "ignores the type",
        reason: "sid (the revocation key) and sts (the session status) must be strings when present; a sid of another type would slip past revocation, an sts of another type past the pending rule",
    },
    Allowed {
        cases: &["types@audience/aud-*", "aud@audience/lax-*"],
        direction: Direction::KeygateStricter,
        keygate: "invalid_audience",
        clerk: "skips the check",
        reason: "RFC 7519 §4.1.3: with an audience configured, a JWT whose aud does not contain it MUST be rejected; Clerk only checks aud when it is a non-empty string or an all-string array",
    },
    Allowed {
        cases: &["sub/empty"],
        direction: Direction::KeygateStricter,
        keygate: "missing_claim",
        clerk: "accepts sub \"\" (userId \"\")",
        reason: "a session must name its user: the user claim must be a non-empty string",
    },
    Allowed {
        cases: &["header/kid-number"],
        direction: Direction::KeygateStricter,
        keygate: "malformed_token",
        clerk: "ignores kid with a PEM key",
        reason: "RFC 7515 §4.1.4: kid is a string; a header parameter of the wrong type makes the header malformed",
    },
    Allowed {
        cases: &["typ/jwt-lowercase", "typ/jwt-mixed-case"],
        direction: Direction::KeygateLaxer,
        keygate: "accepts",
        clerk: "token-invalid (typ must be exactly \"JWT\")",
        reason: "RFC 7515 §4.1.9: typ is a media type, and media types are case-insensitive (RFC 2045); typ is advisory, the token is verified in full",
    },
    Allowed {
        cases: &["ws/leading-space", "ws/nbsp-*"],
        direction: Direction::KeygateLaxer,
        keygate: "accepts (trims Unicode whitespace around the token)",
        clerk: "token-invalid",
        reason: "whitespace is not part of a token: keygate trims it (str::trim, which includes U+00A0) and verifies the token inside in full, so no token passes that would not pass without it. Clerk trims only HTTP whitespace, and reads `Bearer  <token>` (two spaces) as the token `Bearer`, although RFC 6750 §2.1 allows 1*SP after the scheme",
    },
    Allowed {
        cases: &["v2/auth-object-crash-*"],
        direction: Direction::KeygateLaxer,
        keygate: "accepts (the malformed feature grants nothing)",
        clerk: "toAuth() throws (non-tve:Error / TypeError)",
        reason: "the token verifies and Clerk's request state is signed in; building Clerk's auth object then throws on a malformed v2 fea, which is an SDK crash, not a verification rule",
    },
];

/// `*` matches any run of characters; everything else matches itself.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(tail) = text.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len())
                .filter(|i| tail.is_char_boundary(*i))
                .any(|i| glob(rest, &tail[i..]))
        }
    }
}

// ------------------------------------------------------------------ routes

/// A keygate configuration (and the Clerk options that match it). One authenticator each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Route {
    /// The session route as usually configured: authorized parties, no audience.
    Parties,
    /// No authorized parties.
    Open,
    /// Authorized parties and audiences.
    Audience,
    /// Authorized parties and an issuer.
    Issuer,
}

impl Route {
    const ALL: [Route; 4] = [Route::Parties, Route::Open, Route::Audience, Route::Issuer];

    /// The suffix of case ids on this route.
    fn tag(self) -> &'static str {
        match self {
            Route::Parties => "",
            Route::Open => "@open",
            Route::Audience => "@audience",
            Route::Issuer => "@issuer",
        }
    }

    fn parties(self) -> &'static [&'static str] {
        match self {
            Route::Open => &[],
            _ => PARTIES,
        }
    }

    fn audiences(self) -> &'static [&'static str] {
        match self {
            Route::Audience => AUDIENCES,
            _ => &[],
        }
    }

    fn issuers(self) -> &'static [&'static str] {
        match self {
            Route::Issuer => &[ISSUER],
            _ => &[],
        }
    }

    /// The harness's `options`: an empty list is left out (`null`), as keygate leaves
    /// the check out.
    fn clerk_options(self) -> Value {
        let list = |l: &[&str]| if l.is_empty() { Value::Null } else { json!(l) };
        json!({
            "authorizedParties": list(self.parties()),
            "audience": list(self.audiences()),
            "issuer": list(self.issuers()),
            "clockSkewInMs": LEEWAY_SECS * 1000,
        })
    }

    fn authenticator(self, public_pem: &str) -> keygate::Authenticator {
        let clock: SharedClock = ManualClock::new(NOW as u64);
        keygate::Authenticator::builder()
            .public_key_pem(public_pem)
            .authorized_parties(self.parties().iter().copied())
            .audiences(self.audiences().iter().copied())
            .issuers(self.issuers().iter().copied())
            .leeway(Duration::from_secs(LEEWAY_SECS as u64))
            // Every case is decided afresh, never from an earlier case's verification.
            .token_cache_size(0)
            .clock(clock)
            .build()
            .unwrap()
    }
}

// ------------------------------------------------------------------ keys and tokens

/// An RSA-2048 key (the shape Clerk's `jwtKey` parsing needs), a second one for wrong
/// signatures, and the signing helpers.
struct Keys {
    rsa: EncodingKey,
    other: EncodingKey,
    public_pem: String,
}

fn rsa_key() -> (EncodingKey, String) {
    let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
    let pkcs8 = AsDer::<Pkcs8V1Der>::as_der(&pair).unwrap();
    let spki = AsDer::<PublicKeyX509Der>::as_der(aws_lc_rs::signature::KeyPair::public_key(&pair))
        .unwrap();
    let private_pem = pem::encode(&pem::Pem::new("PRIVATE KEY", pkcs8.as_ref().to_vec()));
    let public_pem = pem::encode(&pem::Pem::new("PUBLIC KEY", spki.as_ref().to_vec()));
    (
        EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap(),
        public_pem,
    )
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Keys {
    fn new() -> Keys {
        let (rsa, public_pem) = rsa_key();
        let (other, _) = rsa_key();
        Keys {
            rsa,
            other,
            public_pem,
        }
    }

    /// The base64url signature of `input` with `key`.
    fn signature(input: &str, key: &EncodingKey, alg: Algorithm) -> String {
        jsonwebtoken::crypto::sign(input.as_bytes(), key, alg).unwrap()
    }

    /// `input.signature`, RS256 with the configured key.
    fn seal(&self, input: &str) -> String {
        format!(
            "{input}.{}",
            Self::signature(input, &self.rsa, Algorithm::RS256)
        )
    }

    /// A token of exactly these header and payload bytes, RS256 with the configured key.
    fn raw(&self, header: impl AsRef<[u8]>, payload: impl AsRef<[u8]>) -> String {
        self.seal(&format!("{}.{}", b64(header), b64(payload)))
    }

    /// A token of these JSON values.
    fn jwt(&self, header: &Value, claims: &Value) -> String {
        self.raw(header.to_string(), claims.to_string())
    }

    /// A Clerk-shaped session token with `claims` changed (`None`: removed).
    fn token(&self, claims: &[Change]) -> String {
        self.jwt(&base_header(), &with(base_claims(), claims))
    }

    /// A Clerk-shaped session token with its header changed.
    fn token_with_header(&self, header: &[Change]) -> String {
        self.jwt(&with(base_header(), header), &base_claims())
    }
}

/// The header Clerk's session tokens carry.
fn base_header() -> Value {
    json!({"alg": "RS256", "typ": "JWT", "kid": "ins_differential"})
}

/// A valid Clerk v2 session token's claims at [`NOW`].
fn base_claims() -> Value {
    json!({
        "sub": "user_1", "sid": "sess_1", "iss": ISSUER, "azp": PARTIES[0],
        "iat": NOW - 10, "nbf": NOW - 10, "exp": NOW + 60, "v": 2,
    })
}

/// A member to set (`Some`) or remove (`None`).
type Change = (&'static str, Option<Value>);

/// `object` with `changes` applied.
fn with(mut object: Value, changes: &[Change]) -> Value {
    let map: &mut Map<String, Value> = object.as_object_mut().unwrap();
    for (name, value) in changes {
        match value {
            Some(v) => map.insert((*name).to_string(), v.clone()),
            None => map.remove(*name),
        };
    }
    object
}

/// The base claims with `members` (raw JSON text, `"name": value, …`) appended, for
/// values `serde_json::Value` cannot hold (1e400, duplicates, lone surrogates).
fn claims_text(members: &str) -> String {
    let base = base_claims().to_string();
    format!("{},{members}}}", &base[..base.len() - 1])
}

/// `json` in base64url with `=` padding (JSON whitespace added until there is some).
fn padded(json: &str) -> String {
    let mut text = json.to_string();
    while URL_SAFE_NO_PAD.encode(&text).len().is_multiple_of(4) {
        text.push(' ');
    }
    URL_SAFE.encode(&text)
}

// ------------------------------------------------------------------ the corpus

struct Case {
    id: String,
    route: Route,
    token: String,
}

#[derive(Default)]
struct Corpus {
    cases: Vec<Case>,
}

impl Corpus {
    /// A case on the usual session route.
    fn add(&mut self, id: impl Into<String>, token: impl Into<String>) {
        self.on(Route::Parties, id, token);
    }

    fn on(&mut self, route: Route, id: impl Into<String>, token: impl Into<String>) {
        let id = id.into();
        // Route tags go after the group: `types@audience/aud-number`.
        let id = match id.split_once('/') {
            Some((group, rest)) if !route.tag().is_empty() => {
                format!("{group}{}/{rest}", route.tag())
            }
            _ => id,
        };
        self.cases.push(Case {
            id,
            route,
            token: token.into(),
        });
    }
}

/// JSON values of every type for `claim`, the well-typed ones valid where they can be.
fn samples(claim: &'static str) -> Vec<(&'static str, Option<Value>)> {
    let (number, float) = match claim {
        "exp" => (json!(NOW + 60), json!(NOW as f64 + 60.5)),
        "nbf" | "iat" => (json!(NOW - 10), json!(NOW as f64 - 10.5)),
        _ => (json!(42), json!(1.5)),
    };
    let string = match claim {
        "sub" => json!("user_2"),
        "iss" => json!(ISSUER),
        "azp" => json!(PARTIES[0]),
        "aud" => json!(AUDIENCES[0]),
        "sid" => json!("sess_2"),
        "sts" => json!("active"),
        _ => json!((NOW + 60).to_string()),
    };
    vec![
        ("string", Some(string.clone())),
        ("number", Some(number)),
        ("float", Some(float)),
        ("null", Some(Value::Null)),
        ("bool", Some(json!(true))),
        ("array", Some(json!([string]))),
        ("object", Some(json!({ "value": string }))),
        ("absent", None),
    ]
}

/// A change to a JSON object: set a member.
fn set(name: &'static str, value: impl Into<Value>) -> Change {
    (name, Some(value.into()))
}

/// A change to a JSON object: remove a member.
fn unset(name: &'static str) -> Change {
    (name, None)
}

/// The corpus: groups of cases, each id `group/name` (`group@route/name` off the usual route).
fn corpus(keys: &Keys) -> Corpus {
    let mut c = Corpus::default();
    let valid = keys.token(&[]);
    let header_text = base_header().to_string();
    let claims_b64 = b64(base_claims().to_string());
    let (input, signature) = valid.rsplit_once('.').unwrap();
    let header_b64 = input.split('.').next().unwrap();

    // Valid tokens on every route.
    c.add("valid/baseline", valid.clone());
    c.on(Route::Open, "valid/baseline", valid.clone());
    c.on(Route::Issuer, "valid/baseline", valid.clone());
    let listed = keys.token(&[set("aud", AUDIENCES[1])]);
    c.on(Route::Audience, "valid/aud-listed", listed);
    let minimal = json!({"sub": "user_1", "exp": NOW + 60});
    c.on(
        Route::Open,
        "valid/minimal-sub-exp",
        keys.jwt(&json!({"alg": "RS256"}), &minimal),
    );
    let minimal = with(minimal, &[set("azp", PARTIES[1])]);
    c.add(
        "valid/minimal-sub-exp-azp",
        keys.jwt(&json!({"alg": "RS256"}), &minimal),
    );
    let extra = [
        set("fva", json!([1, -1])),
        set("pla", "u:free"),
        set("jti", "abc"),
    ];
    c.add("valid/extra-claims", keys.token(&extra));

    // Header parameters: kid (ignored with a PEM key), and the ones that must never
    // supply a key.
    for (id, header) in [
        ("header/kid-absent", vec![unset("kid")]),
        ("header/kid-other", vec![set("kid", "ins_someone_else")]),
        ("header/kid-null", vec![set("kid", Value::Null)]),
        ("header/kid-number", vec![set("kid", 5)]),
        (
            "header/jku-x5u",
            vec![
                set("jku", "https://evil.example.com/jwks"),
                set("x5u", "https://evil.example.com/x5"),
            ],
        ),
        (
            "header/jwk-embedded",
            vec![set("jwk", json!({"kty": "oct", "k": "AAAA"}))],
        ),
        ("header/zip", vec![set("zip", "DEF")]),
        ("header/crit-null", vec![set("crit", Value::Null)]),
        (
            "crit/unknown-extension",
            vec![
                set("crit", json!(["https://example.com/x"])),
                set("https://example.com/x", true),
            ],
        ),
        ("crit/registered-claim", vec![set("crit", json!(["exp"]))]),
        ("crit/empty-list", vec![set("crit", json!([]))]),
    ] {
        c.add(id, keys.token_with_header(&header));
    }

    // Every claim the rules read, with every JSON type, on the usual route; aud, iss and
    // azp also on the route that checks them or (azp) does not.
    for claim in [
        "exp", "nbf", "iat", "sub", "iss", "aud", "azp", "sid", "sts",
    ] {
        for (kind, value) in samples(claim) {
            c.add(
                format!("types/{claim}-{kind}"),
                keys.token(&[(claim, value)]),
            );
        }
    }
    for (route, claim) in [
        (Route::Audience, "aud"),
        (Route::Issuer, "iss"),
        (Route::Open, "azp"),
    ] {
        for (kind, value) in samples(claim) {
            c.on(
                route,
                format!("types/{claim}-{kind}"),
                keys.token(&[(claim, value)]),
            );
        }
    }

    // Time boundaries around the 5 s leeway (fractions truncate toward zero) and
    // NumericDates beyond JavaScript's Date range; the claim is the id's first word.
    let now = NOW as f64;
    for (name, value) in [
        ("exp-now-minus-6", json!(NOW - 6)),
        ("exp-now-minus-5", json!(NOW - 5)),
        ("exp-now-minus-4", json!(NOW - 4)),
        ("exp-now-plus-1", json!(NOW + 1)),
        ("exp-now-minus-5-plus-0.99", json!(now - 5.0 + 0.99)),
        ("exp-now-minus-4.5", json!(now - 4.5)),
        ("exp-now-minus-3.5", json!(now - 3.5)),
        ("exp-zero", json!(0)),
        ("exp-minus-half", json!(-0.5)),
        ("exp-exponent-notation", json!(1.76722566e9)),
        ("exp-far-future-1e13", json!(1e13)),
        ("exp-date-max-8.64e12", json!(8_640_000_000_000_i64)),
        ("exp-far-future-1e20", json!(1e20)),
        ("exp-u64-max", json!(u64::MAX)),
        ("exp-date-min-minus-8.64e12", json!(-8_640_000_000_000_i64)),
        (
            "exp-out-of-range-minus-8.64e12-1",
            json!(-8_640_000_000_001_i64),
        ),
        ("exp-out-of-range-minus-1e13", json!(-1e13)),
        ("nbf-now-plus-4", json!(NOW + 4)),
        ("nbf-now-plus-5", json!(NOW + 5)),
        ("nbf-now-plus-6", json!(NOW + 6)),
        ("nbf-now-plus-5.99", json!(now + 5.99)),
        ("nbf-now-plus-6.0", json!(now + 6.0)),
        ("nbf-zero", json!(0)),
        ("nbf-far-past-minus-1e13", json!(-1e13)),
        ("nbf-date-max-8.64e12", json!(8_640_000_000_000_i64)),
        (
            "nbf-out-of-range-8.64e12-plus-1",
            json!(8_640_000_000_001_i64),
        ),
        ("nbf-out-of-range-1e13", json!(1e13)),
        ("iat-now-plus-4", json!(NOW + 4)),
        ("iat-now-plus-5", json!(NOW + 5)),
        ("iat-now-plus-6", json!(NOW + 6)),
        ("iat-now-plus-5.99", json!(now + 5.99)),
        ("iat-now-plus-6.0", json!(now + 6.0)),
        ("iat-zero", json!(0)),
        ("iat-far-past-minus-1e13", json!(-1e13)),
        ("iat-out-of-range-1e13", json!(1e13)),
    ] {
        let claim = name.split('-').next().unwrap();
        c.add(format!("time/{name}"), keys.token(&[set(claim, value)]));
    }

    // Other claim values: subjects, statuses, v2 claims, machine subjects.
    for (id, claims) in [
        (
            "time/exp-before-nbf",
            vec![set("nbf", NOW + 5), set("exp", NOW + 1)],
        ),
        ("sub/empty", vec![set("sub", "")]),
        ("sub/multibyte", vec![set("sub", "usér_1")]),
        ("sts/pending", vec![set("sts", "pending")]),
        ("sts/pending-uppercase", vec![set("sts", "PENDING")]),
        ("sts/empty", vec![set("sts", "")]),
        (
            "v2/org-claims",
            vec![set("o", org()), set("fea", "o:dashboard,u:notes")],
        ),
        (
            "v2/auth-object-crash-fea-missing-colon",
            vec![set("o", org()), set("fea", "dashboard")],
        ),
        (
            "v2/auth-object-crash-fea-number",
            vec![set("o", org()), set("fea", 5)],
        ),
        ("machine/mch-subject", vec![set("sub", "mch_1")]),
        (
            "machine/mch-subject-no-azp",
            vec![set("sub", "mch_1"), unset("azp")],
        ),
        ("machine/uppercase-mch-subject", vec![set("sub", "MCH_1")]),
    ] {
        c.add(id, keys.token(&claims));
    }
    // Numbers a double cannot hold, appended as text (the last duplicate wins).
    for (claim, value) in [
        ("exp", "1e400"),
        ("exp", "-1e400"),
        ("nbf", "1e400"),
        ("nbf", "-1e400"),
        ("iat", "1e400"),
    ] {
        let payload = claims_text(&format!("\"{claim}\":{value}"));
        c.add(
            format!("time/{claim}-non-finite-{value}"),
            keys.raw(&header_text, payload),
        );
    }

    // Clerk's token categories (`cat`) and `typ`s.
    for (name, cat) in [
        ("absent", None),
        ("session-111", Some(json!("cl_B7d4PD111AAA"))),
        ("session-III", Some(json!("cl_I7d4PD111III"))),
        ("template-222", Some(json!("cl_B7d4PD222AAA"))),
        ("m2m-333", Some(json!("cl_B7d4PD333AAA"))),
        ("junk", Some(json!("junk"))),
        ("lowercase-111", Some(json!("cl_b7d4pd111aaa"))),
        ("empty", Some(json!(""))),
        ("null", Some(Value::Null)),
        ("number", Some(json!(111))),
    ] {
        c.add(
            format!("cat/{name}"),
            keys.token_with_header(&[("cat", cat)]),
        );
    }
    for (name, typ) in [
        ("absent", None),
        ("jwt", Some(json!("JWT"))),
        ("jwt-lowercase", Some(json!("jwt"))),
        ("jwt-mixed-case", Some(json!("Jwt"))),
        ("jwt-trailing-space", Some(json!("JWT "))),
        ("application-jwt", Some(json!("application/jwt"))),
        ("at+jwt", Some(json!("at+jwt"))),
        ("application-at+jwt", Some(json!("application/at+jwt"))),
        ("at+jwt-uppercase", Some(json!("AT+JWT"))),
        ("jose", Some(json!("JOSE"))),
        ("empty", Some(json!(""))),
        ("null", Some(Value::Null)),
        ("number", Some(json!(1))),
    ] {
        c.add(
            format!("typ/{name}"),
            keys.token_with_header(&[("typ", typ)]),
        );
    }

    // Machine tokens on a session route: JWT-shaped and opaque.
    let mch = with(base_claims(), &[set("sub", "mch_1")]);
    let m2m_header = with(base_header(), &[set("cat", "cl_B7d4PD333AAA")]);
    c.add("machine/mch-subject-cat-m2m", keys.jwt(&m2m_header, &mch));
    let session_header = with(base_header(), &[set("cat", "cl_B7d4PD111AAA")]);
    c.add(
        "machine/mch-subject-cat-session",
        keys.jwt(&session_header, &mch),
    );
    let oauth_header = with(base_header(), &[set("typ", "at+jwt")]);
    let oauth = with(
        base_claims(),
        &[set("scp", json!(["read"])), set("client_id", "c_1")],
    );
    c.add("machine/oauth-jwt", keys.jwt(&oauth_header, &oauth));
    c.add(
        "machine/opaque-api-key",
        "ak_2abcdefghijklmnopqrstuvwxyz012345",
    );
    c.add("machine/opaque-m2m", "mt_2abcdefghijklmnopqrstuvwxyz012345");
    c.add(
        "machine/opaque-oauth",
        "oat_2abcdefghijklmnopqrstuvwxyz012345",
    );
    c.add("machine/opaque-m2m-dotted", "mt_a.b.c");
    c.add("machine/oat-prefixed-jwt", format!("oat_{valid}"));

    // Authorized parties, with and without a list.
    for route in [Route::Parties, Route::Open] {
        for (name, azp) in [
            ("first", Some(json!(PARTIES[0]))),
            ("second", Some(json!(PARTIES[1]))),
            ("missing", None),
            ("wrong", Some(json!("https://evil.example.com"))),
            ("trailing-slash", Some(json!(format!("{}/", PARTIES[0])))),
            ("with-path", Some(json!(format!("{}/app", PARTIES[0])))),
            ("uppercase-host", Some(json!("https://APP.example.com"))),
            ("prefix", Some(json!("https://app.example"))),
            ("empty", Some(json!(""))),
            ("number", Some(json!(3000))),
            ("array", Some(json!([PARTIES[0]]))),
            ("null", Some(Value::Null)),
        ] {
            c.on(route, format!("azp/{name}"), keys.token(&[("azp", azp)]));
        }
    }

    // Audiences (checked on the audience route only) and issuers (on the issuer route).
    for (name, aud) in [
        ("first", json!(AUDIENCES[0])),
        (
            "second-in-array",
            json!(["https://other.example.com", AUDIENCES[1]]),
        ),
        ("mixed-array-listed", json!([5, AUDIENCES[1]])),
        ("wrong", json!("https://other.example.com")),
        ("wrong-array", json!(["a", "b"])),
        ("case-differs", json!("https://API.example.com")),
        (
            "lax-mixed-array-unlisted",
            json!([5, "https://other.example.com"]),
        ),
        ("lax-empty-string", json!("")),
        ("lax-empty-array", json!([])),
        ("lax-array-of-empty", json!([""])),
    ] {
        for route in [Route::Parties, Route::Audience] {
            c.on(
                route,
                format!("aud/{name}"),
                keys.token(&[set("aud", aud.clone())]),
            );
        }
    }
    for (name, iss) in [
        ("match", Some(json!(ISSUER))),
        ("mismatch", Some(json!("https://other.example.com"))),
        ("trailing-slash", Some(json!(format!("{ISSUER}/")))),
        ("http-scheme", Some(json!(format!("http://{FRONTEND_API}")))),
        ("missing", None),
    ] {
        for route in [Route::Parties, Route::Issuer] {
            c.on(
                route,
                format!("iss/{name}"),
                keys.token(&[("iss", iss.clone())]),
            );
        }
    }

    // Algorithms: none, HMAC (with a secret and with the public key as the secret),
    // RSA variants keygate does not allow, and labels that do not match the signature.
    let with_alg = |header: Value| format!("{}.{claims_b64}", b64(header.to_string()));
    let none = with_alg(json!({"alg": "none", "typ": "JWT"}));
    c.add("alg/none-empty-signature", format!("{none}."));
    c.add("alg/none-with-signature", keys.seal(&none));
    let secret = EncodingKey::from_secret(b"a-shared-secret-of-at-least-32-bytes!");
    let confusion = EncodingKey::from_secret(keys.public_pem.as_bytes());
    for (name, alg, key) in [
        ("rs384", Algorithm::RS384, &keys.rsa),
        ("rs512", Algorithm::RS512, &keys.rsa),
        ("ps256", Algorithm::PS256, &keys.rsa),
        ("hs256-secret", Algorithm::HS256, &secret),
        ("hs256-public-key-as-secret", Algorithm::HS256, &confusion),
    ] {
        let input = with_alg(json!({"alg": format!("{alg:?}"), "typ": "JWT"}));
        c.add(
            format!("alg/{name}"),
            format!("{input}.{}", Keys::signature(&input, key, alg)),
        );
    }
    let labelled = with_alg(base_header());
    let rs384 = Keys::signature(&labelled, &keys.rsa, Algorithm::RS384);
    c.add(
        "alg/rs384-signature-labelled-rs256",
        format!("{labelled}.{rs384}"),
    );
    for (name, alg) in [
        ("lowercase-rs256", Some(json!("rs256"))),
        ("es256-label", Some(json!("ES256"))),
        ("missing", None),
        ("null", Some(Value::Null)),
        ("number", Some(json!(256))),
    ] {
        c.add(
            format!("alg/{name}"),
            keys.token_with_header(&[("alg", alg)]),
        );
    }

    // Signatures.
    let mut flipped = signature.as_bytes().to_vec();
    flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    // 256 bytes end in a 2-character group whose last character carries 4 zero bits.
    let (body, last) = signature.split_at(signature.len() - 1);
    let non_canonical = if last == "A" { "B" } else { "R" };
    let tampered = b64(with(base_claims(), &[set("sub", "user_admin")]).to_string());
    let bare = b64(json!({"alg": "RS256"}).to_string());
    for (name, token) in [
        ("flipped-character", format!("{input}.{flipped}")),
        (
            "other-key",
            format!(
                "{input}.{}",
                Keys::signature(input, &keys.other, Algorithm::RS256)
            ),
        ),
        ("empty", format!("{input}.")),
        (
            "truncated",
            format!("{input}.{}", &signature[..signature.len() - 4]),
        ),
        ("extra-character", format!("{valid}A")),
        (
            "non-canonical-trailing-bits",
            format!("{input}.{body}{non_canonical}"),
        ),
        (
            "tampered-payload",
            format!("{header_b64}.{tampered}.{signature}"),
        ),
        (
            "tampered-header",
            format!("{bare}.{claims_b64}.{signature}"),
        ),
    ] {
        c.add(format!("sig/{name}"), token);
    }
    // The standard alphabet (`+`, `/`) instead of base64url, correctly signed.
    let header_std = STANDARD_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT","x":"~~~??>"}"#);
    assert!(header_std.contains(['+', '/']), "{header_std}");
    c.add(
        "b64/standard-alphabet-header",
        keys.seal(&format!("{header_std}.{claims_b64}")),
    );
    // Padded base64url, correctly signed over the padded text.
    let padded_header = padded(&header_text);
    c.add(
        "b64/padded-header",
        keys.seal(&format!("{padded_header}.{claims_b64}")),
    );
    let padded_claims = padded(&base_claims().to_string());
    c.add(
        "b64/padded-payload",
        keys.seal(&format!("{header_b64}.{padded_claims}")),
    );
    c.add("b64/padded-signature", format!("{valid}=="));
    c.add("b64/padded-excess-signature", format!("{valid}===="));
    let padded_mch = padded(&mch.to_string());
    c.add(
        "b64/padded-payload-machine-subject",
        keys.seal(&format!("{header_b64}.{padded_mch}")),
    );

    // The compact form.
    for (name, token) in [
        ("two", input.to_string()),
        ("four", format!("{valid}.{signature}")),
        ("empty-string", String::new()),
        ("garbage", "abc".into()),
        ("only-dots", "..".into()),
        ("empty-payload", keys.seal(&format!("{header_b64}."))),
        ("empty-header", keys.seal(&format!(".{claims_b64}"))),
        (
            "space-inside",
            format!("{header_b64}. {claims_b64}.{signature}"),
        ),
    ] {
        c.add(format!("parts/{name}"), token);
    }

    // JSON: payloads and headers that are not objects, duplicates, nesting, escapes.
    for (name, payload) in [
        ("payload-array", "[]".to_string()),
        ("payload-null", "null".into()),
        ("payload-string", "\"user_1\"".into()),
        ("payload-number", "42".into()),
        ("payload-trailing-garbage", format!("{} x", base_claims())),
        (
            "payload-truncated",
            base_claims().to_string().trim_end_matches('}').into(),
        ),
        ("whitespace-around", format!(" \n\t{}\r\n ", base_claims())),
        (
            "duplicate-claim-last-valid",
            claims_text(r#""sub":"mch_1","sub":"user_3""#),
        ),
        (
            "duplicate-exp-last-expired",
            claims_text(&format!("\"exp\":{}", NOW - 100)),
        ),
        ("escaped-sub", claims_text(r#""sub":"user_\u0031""#)),
        (
            "nesting-100",
            claims_text(&format!("\"x\":{}{}", "[".repeat(100), "]".repeat(100))),
        ),
        (
            "deep-nesting-200",
            claims_text(&format!("\"x\":{}{}", "[".repeat(200), "]".repeat(200))),
        ),
        (
            "lone-surrogate-unread-claim",
            claims_text(r#""note":"\ud800""#),
        ),
        ("lone-surrogate-sub", claims_text(r#""sub":"user_\udc00""#)),
        (
            "surrogate-pair-sub",
            claims_text(r#""sub":"user_\ud83d\ude00""#),
        ),
        // Escapes in claim names and values: the typed pass must read what JSON means.
        (
            "escaped-name-exp-expired",
            claims_text(&format!("\"\\u0065xp\":{}", NOW - 100)),
        ),
        (
            "escaped-name-sub-machine",
            claims_text(r#""\u0073ub":"mch_1""#),
        ),
        (
            "escaped-sts-pending",
            claims_text(r#""sts":"pend\u0069ng""#),
        ),
        (
            "escaped-azp-slashes",
            claims_text(r#""azp":"https:\/\/app.example.com""#),
        ),
    ] {
        c.add(format!("json/{name}"), keys.raw(&header_text, payload));
    }
    for (name, header) in [
        ("header-array", r#"["RS256"]"#),
        ("header-null", "null"),
        ("header-string", r#""RS256""#),
        ("header-trailing-garbage", r#"{"alg":"RS256"} x"#),
        (
            "header-whitespace-around",
            " {\"alg\":\"RS256\",\"typ\":\"JWT\"} ",
        ),
        (
            "duplicate-header-param",
            r#"{"alg":"none","alg":"RS256","typ":"JWT"}"#,
        ),
    ] {
        c.add(
            format!("json/{name}"),
            keys.raw(header, base_claims().to_string()),
        );
    }

    // Bytes that are not UTF-8, and byte order marks.
    let claims_with = |members: &str, bad: &[u8]| {
        let text = claims_text(members);
        let (head, tail) = text.split_once('?').unwrap();
        [head.as_bytes(), bad, tail.as_bytes()].concat()
    };
    for (name, payload) in [
        (
            "invalid-byte-in-unread-claim",
            claims_with(r#""note":"a?b""#, &[0xff]),
        ),
        (
            "invalid-byte-in-sub",
            claims_with(r#""sub":"user_?""#, &[0xfe]),
        ),
        (
            "invalid-overlong-in-unread-claim",
            claims_with(r#""note":"a?b""#, &[0xc0, 0xaf]),
        ),
    ] {
        c.add(format!("utf8/{name}"), keys.raw(&header_text, payload));
    }
    // In the header: in a parameter keygate skips, and in one it reads (kid).
    for (name, header) in [
        (
            "unread-header-param",
            r#"{"alg":"RS256","typ":"JWT","x":"a?"}"#,
        ),
        ("header-kid", r#"{"alg":"RS256","typ":"JWT","kid":"a?"}"#),
    ] {
        let (head, tail) = header.split_once('?').unwrap();
        let bytes = [head.as_bytes(), &[0xff], tail.as_bytes()].concat();
        let token = keys.raw(bytes, base_claims().to_string());
        c.add(format!("utf8/invalid-byte-in-{name}"), token);
    }
    c.add(
        "bom/payload",
        keys.raw(&header_text, format!("\u{feff}{}", base_claims())),
    );
    c.add(
        "bom/header",
        keys.raw(format!("\u{feff}{header_text}"), base_claims().to_string()),
    );

    // Size: exactly keygate's limit, then over it.
    c.add("size/exactly-16384", sized(keys, MAX_TOKEN_LEN));
    c.add("size/over-16385", sized(keys, MAX_TOKEN_LEN + 1));
    c.add("size/over-64k", sized(keys, 64 * 1024));

    // Whitespace around the token.
    for (name, token) in [
        ("trailing-space", format!("{valid} ")),
        ("trailing-tab", format!("{valid}\t")),
        ("trailing-newline", format!("{valid}\n")),
        ("leading-space", format!(" {valid}")),
        ("nbsp-trailing", format!("{valid}\u{a0}")),
    ] {
        c.add(format!("ws/{name}"), token);
    }

    c
}

/// A v2 organization claim.
fn org() -> Value {
    json!({"id": "org_1", "slg": "acme", "rol": "admin", "per": "read,manage", "fpm": "3"})
}

/// An RS256 signature of a 2048-bit key, in base64url: 256 bytes, 342 characters.
const RS256_SIGNATURE_LEN: usize = 342;

/// A valid token of exactly `len` characters: a filler claim sized to fit, and a `kid`
/// one to four characters long to reach the lengths base64url skips.
fn sized(keys: &Keys, len: usize) -> String {
    let b64_len = |bytes: usize| (4 * bytes).div_ceil(3);
    let empty = with(base_claims(), &[("filler", Some(json!("")))]).to_string();
    for kid in 1..=4 {
        let header = b64(with(base_header(), &[("kid", Some(json!("k".repeat(kid))))]).to_string());
        let fits = (0..len).find(|filler| {
            header.len() + 1 + b64_len(empty.len() + filler) + 1 + RS256_SIGNATURE_LEN == len
        });
        if let Some(filler) = fits {
            let claims = with(
                base_claims(),
                &[("filler", Some(json!("x".repeat(filler))))],
            );
            let token = keys.seal(&format!("{header}.{}", b64(claims.to_string())));
            assert_eq!(token.len(), len);
            return token;
        }
    }
    panic!("no token of {len} characters");
}

// ------------------------------------------------------------------ the two deciders

/// One side's decision.
#[derive(Debug, Clone)]
struct Decision {
    accepted: bool,
    /// keygate: `code: explanation`; Clerk: the harness's reason.
    reason: String,
}

/// `tests/clerk`, when Node and the harness's packages are there.
fn harness_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clerk");
    let node = Command::new("node").arg("--version").output();
    let installed = dir
        .join("node_modules/@clerk/backend/package.json")
        .is_file();
    match node {
        Ok(out) if out.status.success() && installed => Some(dir),
        _ => None,
    }
}

/// Clerk's decisions, by case id, from one run of `decide.mjs`.
fn clerk_decisions(dir: &Path, keys: &Keys, cases: &[Case]) -> HashMap<String, Decision> {
    let corpus = json!({
        "now_ms": NOW * 1000,
        "public_key_pem": keys.public_pem,
        "publishable_key": format!("pk_live_{}", STANDARD.encode(format!("{FRONTEND_API}$"))),
        "secret_key": "sk_test_differential",
        "cases": cases.iter().map(|case| json!({
            "id": case.id,
            "token": case.token,
            "mode": "session",
            "options": case.route.clerk_options(),
        })).collect::<Vec<_>>(),
    });
    let file =
        std::env::temp_dir().join(format!("keygate-differential-{}.json", std::process::id()));
    std::fs::write(&file, corpus.to_string()).unwrap();
    let out = Command::new("node")
        .arg(dir.join("decide.mjs"))
        .arg(&file)
        .current_dir(dir)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&file);
    assert!(
        out.status.success(),
        "decide.mjs exited with {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let decisions: HashMap<String, Decision> = stdout
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            let decision = Decision {
                accepted: v["ok"].as_bool().unwrap(),
                reason: v["reason"].as_str().unwrap().to_string(),
            };
            (v["id"].as_str().unwrap().to_string(), decision)
        })
        .collect();
    assert_eq!(decisions.len(), cases.len(), "one line per case:\n{stdout}");
    decisions
}

/// keygate's decisions, by case id: one authenticator per route.
async fn keygate_decisions(keys: &Keys, cases: &[Case]) -> HashMap<String, Decision> {
    let authenticators: HashMap<Route, keygate::Authenticator> = Route::ALL
        .into_iter()
        .map(|route| (route, route.authenticator(&keys.public_pem)))
        .collect();
    let mut decisions = HashMap::new();
    for case in cases {
        let decision = match authenticators[&case.route].explain(&case.token).await {
            Ok(_) => Decision {
                accepted: true,
                reason: "ok".into(),
            },
            Err(rejection) => Decision {
                accepted: false,
                reason: rejection.to_string(),
            },
        };
        decisions.insert(case.id.clone(), decision);
    }
    decisions
}

// ------------------------------------------------------------------ the test

#[actix_rt::test]
async fn keygate_decides_session_tokens_as_clerk_does() {
    let started = Instant::now();
    let Some(dir) = harness_dir() else {
        let what = "node and tests/clerk/node_modules (npm ci in tests/clerk)";
        if std::env::var_os("CI").is_some() {
            panic!("differential: {what} are required when CI is set");
        }
        eprintln!("skipping differential: {what} are not available");
        crate::common::record_skip("differential", what);
        return;
    };
    let keys = Keys::new();
    let corpus = corpus(&keys);
    let cases = &corpus.cases;
    let mut ids = HashSet::new();
    for case in cases {
        assert!(
            ids.insert(case.id.as_str()),
            "duplicate case id {}",
            case.id
        );
    }
    assert!(
        cases.len() >= 150,
        "the corpus has only {} cases",
        cases.len()
    );

    let clerk = clerk_decisions(&dir, &keys, cases);
    let keygate = keygate_decisions(&keys, cases).await;

    let outcome = compare(cases, &keygate, &clerk);
    for (case, entry) in &outcome.allowed {
        println!(
            "allowed {:?}: {} | keygate: {} | clerk: {}",
            ALLOWED[*entry].direction, case.id, keygate[&case.id].reason, clerk[&case.id].reason
        );
    }
    for (i, entry) in ALLOWED.iter().enumerate() {
        let count = outcome.allowed.iter().filter(|(_, e)| *e == i).count();
        println!(
            "allow-list {:?} ({:?}, {count} cases): keygate {}, Clerk {}; {}",
            entry.cases, entry.direction, entry.keygate, entry.clerk, entry.reason
        );
    }
    let laxer = outcome
        .allowed
        .iter()
        .filter(|(_, e)| ALLOWED[*e].direction == Direction::KeygateLaxer)
        .count();
    println!(
        "differential: {} cases, {} agreements, {} allow-listed disagreements ({} keygate stricter, {laxer} keygate laxer), {} unexplained, in {:.1?}",
        cases.len(),
        outcome.agreements,
        outcome.allowed.len(),
        outcome.allowed.len() - laxer,
        outcome.unexplained.len(),
        started.elapsed()
    );
    assert!(
        outcome.unexplained.is_empty() && outcome.stale.is_empty(),
        "{} disagreement(s) with Clerk not in the allow-list:\n{}\n{} allow-list entr(y/ies) that excuse nothing (remove them):\n{}",
        outcome.unexplained.len(),
        outcome.unexplained.join("\n"),
        outcome.stale.len(),
        outcome.stale.join("\n")
    );
}

/// How the two sets of decisions compare.
struct Outcome<'c> {
    agreements: usize,
    /// Disagreements [`ALLOWED`] explains, with the index of the entry that does.
    allowed: Vec<(&'c Case, usize)>,
    /// Disagreements it does not, each with both decisions.
    unexplained: Vec<String>,
    /// Entries of [`ALLOWED`] that explained nothing.
    stale: Vec<String>,
}

fn compare<'c>(
    cases: &'c [Case],
    keygate: &HashMap<String, Decision>,
    clerk: &HashMap<String, Decision>,
) -> Outcome<'c> {
    let mut outcome = Outcome {
        agreements: 0,
        allowed: Vec::new(),
        unexplained: Vec::new(),
        stale: Vec::new(),
    };
    let mut used = vec![false; ALLOWED.len()];
    // DIFFERENTIAL_VERBOSE=1 prints every decision, not only the disagreements.
    let verbose = std::env::var_os("DIFFERENTIAL_VERBOSE").is_some();
    for case in cases {
        let (k, c) = (&keygate[&case.id], &clerk[&case.id]);
        if verbose {
            println!(
                "{:<48} keygate {:<60.60} clerk {}",
                case.id, k.reason, c.reason
            );
        }
        if k.accepted == c.accepted {
            outcome.agreements += 1;
            continue;
        }
        let direction = if c.accepted {
            Direction::KeygateStricter
        } else {
            Direction::KeygateLaxer
        };
        let entry = ALLOWED
            .iter()
            .position(|a| a.direction == direction && a.cases.iter().any(|p| glob(p, &case.id)));
        match entry {
            Some(i) => {
                used[i] = true;
                outcome.allowed.push((case, i));
            }
            None => outcome.unexplained.push(format!(
                "  {} ({direction:?}) on {:?}\n    keygate: {} ({})\n    clerk:   {} ({})",
                case.id,
                case.route,
                verdict(k.accepted),
                k.reason,
                verdict(c.accepted),
                c.reason
            )),
        }
    }
    outcome.stale = ALLOWED
        .iter()
        .zip(&used)
        .filter(|(_, used)| !**used)
        .map(|(a, _)| format!("  {:?} ({:?})", a.cases, a.direction))
        .collect();
    outcome
}

fn verdict(accepted: bool) -> &'static str {
    if accepted { "accepts" } else { "rejects" }
}

// ------------------------------------------------------------------ has(): plans, features, reverification

/// A requirement of Clerk's `has()`, as the SDK, the library and a gateway rule take it.
#[derive(Debug, Clone)]
enum Wanted {
    Plan(&'static str),
    Feature(&'static str),
    Reverification(keygate::Reverification),
}

impl Wanted {
    /// The argument of `auth.has(…)`.
    fn clerk(&self) -> Value {
        match self {
            Wanted::Plan(plan) => json!({ "plan": plan }),
            Wanted::Feature(feature) => json!({ "feature": feature }),
            Wanted::Reverification(r) => json!({ "reverification": r.to_clerk_metadata() }),
        }
    }

    /// The same requirement as a rule's keys; `None` for one keygate refuses at start.
    fn rule(&self) -> Option<String> {
        match self {
            Wanted::Plan(name) | Wanted::Feature(name) if !keygate::is_valid_entitlement(name) => {
                None
            }
            Wanted::Plan(plan) => Some(format!("plan = {}", json!(plan))),
            Wanted::Feature(feature) => Some(format!("feature = {}", json!(feature))),
            Wanted::Reverification(r) => match (r.preset(), r.after_minutes()) {
                (Some(name), _) => Some(format!("reverification = \"{name}\"")),
                (None, 0) => None,
                (None, minutes) => Some(format!(
                    "reverification = {{ level = \"{}\", after_minutes = {minutes} }}",
                    r.level()
                )),
            },
        }
    }

    /// The library's answer for a verified user.
    fn library(&self, user: &keygate::AuthUser) -> bool {
        match self {
            Wanted::Plan(plan) => user.has_plan(plan),
            Wanted::Feature(feature) => user.has_feature(feature),
            Wanted::Reverification(r) => user.is_reverified(*r),
        }
    }

    fn label(&self) -> String {
        match self {
            Wanted::Plan(plan) => format!("plan={plan}"),
            Wanted::Feature(feature) => format!("feature={feature}"),
            Wanted::Reverification(r) => format!("reverification={r}").replace(' ', "-"),
        }
    }
}

/// One `has()` case: a token (its claims changed) and a requirement.
struct HasCase {
    id: String,
    token: String,
    wanted: usize,
}

/// How a side decided a `has()` case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Signed in and the requirement met.
    Allowed,
    /// Signed in, the requirement not met (keygate: 403).
    Refused,
    /// Not signed in (keygate: 401).
    SignedOut,
}

/// Disagreements of `has()` on allow or refuse, each explained: all keygate refusing
/// a requirement that Clerk's SDK reads in a way that widens it. A gateway rule cannot
/// even hold these requirements (the start stops), so only the library decides them.
const HAS_ALLOWED: &[(&str, &str)] = &[
    (
        "has/plan/*/plan=",
        "an empty requirement: the SDK looks for an empty name and finds one in `u:`; keygate meets no empty requirement",
    ),
    (
        "has/plan/*/plan=org:",
        "`org:` without a name: the SDK falls back to the scope and looks for a plan named `org`; keygate meets no requirement without a name",
    ),
    (
        "has/plan/*/plan=org:pro:x",
        "a second `:`: the SDK drops what follows it and checks `org:pro`; keygate does not widen the requirement",
    ),
    (
        "has/feature/*/feature=",
        "as for plans: an empty requirement",
    ),
    (
        "has/feature/*/feature=org:",
        "as for plans: a scope without a name",
    ),
    (
        "has/feature/*/feature=org:pro:x",
        "as for plans: a second `:`",
    ),
];

/// Where `/auth` may decide otherwise than the library (and the SDK): the gateway's own
/// guarantee that identity values travel as headers exactly (SPEC section 10), which
/// refuses a token whose `pla` or `fea` a header cannot carry as it is.
const FORWARD_ALLOWED: &[(&str, &str)] = &[
    (
        "has/plan/spaces/*",
        "`pla` has leading and trailing whitespace: the gateway refuses the token (401 malformed_token) rather than send X-Auth-Plan trimmed; the library, like the SDK, trims each element",
    ),
    (
        "has/feature/spaces/*",
        "as for plans, over `fea` and X-Auth-Features",
    ),
];

/// Plans and features: claim values × requirements; factor ages at and around every
/// boundary × reverification requirements; claims of the wrong types.
fn has_corpus(keys: &Keys) -> (Vec<Wanted>, Vec<HasCase>) {
    use keygate::{FactorLevel, Reverification as R};
    let entitlements = [
        "pro",
        "org:pro",
        "user:pro",
        "o:pro",
        "u:pro",
        "organization:pro",
        "free",
        "org:free",
        "user:free",
        "team",
        "x:pro",
        "",
        "org:",
        "user:",
        "org:pro:x",
        " pro",
    ];
    let claim_values: Vec<(&str, Value)> = vec![
        ("absent", Value::Null),
        ("null", json!(null)),
        ("empty", json!("")),
        ("u-pro", json!("u:pro")),
        ("o-pro", json!("o:pro")),
        ("ou-pro", json!("ou:pro")),
        ("uo-pro", json!("uo:pro")),
        ("u-free", json!("u:free")),
        ("u-free-o-pro", json!("u:free,o:pro")),
        ("u-pro-o-free", json!("u:pro,o:free")),
        ("spaces", json!(" u:pro , o:free ")),
        ("space-in-name", json!("u: pro")),
        ("unscoped", json!("pro")),
        ("trailing-comma", json!("u:pro,")),
        ("unscoped-second", json!("u:pro,free")),
        ("unknown-scope", json!("x:pro")),
        ("unknown-scope-and-u-free", json!("x:pro,u:free")),
        ("uppercase-scope", json!("U:pro")),
        ("empty-name", json!("u:")),
        ("name-org", json!("o:org")),
        ("colon-in-name", json!("o:pro:x")),
        ("types-number", json!(5)),
        ("types-bool", json!(true)),
        ("types-array", json!(["u:pro"])),
        ("types-object", json!({"u": "pro"})),
    ];
    let mut wanted: Vec<Wanted> = Vec::new();
    let mut cases = Vec::new();
    for (claim, kind) in [("pla", "plan"), ("fea", "feature")] {
        let first = wanted.len();
        for name in entitlements {
            wanted.push(if kind == "plan" {
                Wanted::Plan(name)
            } else {
                Wanted::Feature(name)
            });
        }
        for (label, value) in &claim_values {
            let change = if *label == "absent" {
                unset(claim)
            } else {
                set(claim, value.clone())
            };
            let token = keys.token(&[change]);
            for (w, want) in wanted.iter().enumerate().skip(first) {
                cases.push(HasCase {
                    id: format!("has/{kind}/{label}/{}", want.label()),
                    token: token.clone(),
                    wanted: w,
                });
            }
        }
    }

    let first = wanted.len();
    let custom = |level, after_minutes| R::Custom {
        level,
        after_minutes,
    };
    for r in [
        R::StrictMfa,
        R::Strict,
        R::Moderate,
        R::Lax,
        custom(FactorLevel::FirstFactor, 5),
        custom(FactorLevel::SecondFactor, 5),
        custom(FactorLevel::MultiFactor, 5),
        custom(FactorLevel::FirstFactor, 60),
        custom(FactorLevel::MultiFactor, 1440),
        custom(FactorLevel::SecondFactor, 0),
    ] {
        wanted.push(Wanted::Reverification(r));
    }
    let ages = [
        json!(-1),
        json!(0),
        json!(4),
        json!(5),
        json!(6),
        json!(9),
        json!(10),
        json!(11),
        json!(59),
        json!(60),
        json!(61),
        json!(1439),
        json!(1440),
        json!(1441),
        json!(9.5),
        json!(-2),
        json!(-0.5),
    ];
    let mut fva_values: Vec<(String, Option<Value>)> = Vec::new();
    for a in &ages {
        for b in &ages {
            fva_values.push((format!("{a},{b}"), Some(json!([a, b]))));
        }
    }
    for (label, value) in [
        ("absent", None),
        ("null", Some(json!(null))),
        ("one", Some(json!([0]))),
        ("three", Some(json!([0, 0, 0]))),
        ("empty", Some(json!([]))),
        ("types-string", Some(json!("0,0"))),
        ("types-string-entry", Some(json!([0, "0"]))),
        ("types-null-entry", Some(json!([0, null]))),
        ("types-object", Some(json!({"0": 0, "1": 0}))),
        ("types-number", Some(json!(0))),
        ("types-bool", Some(json!(true))),
    ] {
        fva_values.push((label.to_string(), value));
    }
    for (label, value) in fva_values {
        let token = keys.token(&[("fva", value)]);
        for (w, want) in wanted.iter().enumerate().skip(first) {
            cases.push(HasCase {
                id: format!("has/fva/{label}/{}", want.label()),
                token: token.clone(),
                wanted: w,
            });
        }
    }
    (wanted, cases)
}

/// The SDK's verdicts, from one run of `decide.mjs` in mode `has`.
fn clerk_has(dir: &Path, keys: &Keys, wanted: &[Wanted], cases: &[HasCase]) -> Vec<Verdict> {
    let corpus = json!({
        "now_ms": NOW * 1000,
        "public_key_pem": keys.public_pem,
        "publishable_key": format!("pk_live_{}", STANDARD.encode(format!("{FRONTEND_API}$"))),
        "secret_key": "sk_test_differential",
        "cases": cases.iter().map(|case| json!({
            "id": case.id,
            "token": case.token,
            "mode": "has",
            "has": wanted[case.wanted].clerk(),
            "options": Route::Parties.clerk_options(),
        })).collect::<Vec<_>>(),
    });
    let file = std::env::temp_dir().join(format!(
        "keygate-differential-has-{}.json",
        std::process::id()
    ));
    std::fs::write(&file, corpus.to_string()).unwrap();
    let out = Command::new("node")
        .arg(dir.join("decide.mjs"))
        .arg(&file)
        .current_dir(dir)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&file);
    assert!(
        out.status.success(),
        "decide.mjs exited with {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let verdicts: Vec<Verdict> = stdout
        .lines()
        .zip(cases)
        .map(|(line, case)| {
            let v: Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["id"], case.id.as_str(), "the harness answers in order");
            match (v["ok"].as_bool().unwrap(), v["reason"].as_str().unwrap()) {
                (true, _) => Verdict::Allowed,
                (false, "has:false") => Verdict::Refused,
                (false, reason) => {
                    assert!(!reason.starts_with("has-threw"), "{}: {reason}", case.id);
                    Verdict::SignedOut
                }
            }
        })
        .collect();
    assert_eq!(verdicts.len(), cases.len(), "one line per case");
    verdicts
}

/// The library's verdicts: `Authenticator::verify`, then `has_plan`, `has_feature` or
/// `is_reverified`.
async fn library_has(keys: &Keys, wanted: &[Wanted], cases: &[HasCase]) -> Vec<Verdict> {
    let authenticator = Route::Parties.authenticator(&keys.public_pem);
    let mut verdicts = Vec::with_capacity(cases.len());
    for case in cases {
        verdicts.push(match authenticator.verify(&case.token).await {
            Err(_) => Verdict::SignedOut,
            Ok(user) if wanted[case.wanted].library(&user) => Verdict::Allowed,
            Ok(_) => Verdict::Refused,
        });
    }
    verdicts
}

/// `/auth`'s verdicts: the service with one rule per requirement (`/r/<index>`), asked
/// as Traefik asks. `None` for a requirement a rule cannot hold.
async fn forward_auth_has(
    keys: &Keys,
    wanted: &[Wanted],
    cases: &[HasCase],
) -> Vec<Option<Verdict>> {
    let mut rules = String::new();
    for (i, w) in wanted.iter().enumerate() {
        if let Some(keys) = w.rule() {
            rules.push_str(&format!("[[rule]]\npath = \"/r/{i}\"\n{keys}\n"));
        }
    }
    let file = std::env::temp_dir().join(format!(
        "keygate-differential-rules-{}.toml",
        std::process::id()
    ));
    std::fs::write(&file, rules).unwrap();
    let parties = PARTIES.join(",");
    let app = crate::common::app::spawn_app_with(
        &[
            ("JWT_PUBLIC_KEY", keys.public_pem.as_str()),
            ("JWT_AUTHORIZED_PARTIES", parties.as_str()),
            ("JWT_LEEWAY_SECS", "5"),
            ("GATEWAY_RULES", file.to_str().unwrap()),
        ],
        ManualClock::new(NOW as u64),
    )
    .await;
    let _ = std::fs::remove_file(&file);
    let mut verdicts = Vec::with_capacity(cases.len());
    for case in cases {
        if wanted[case.wanted].rule().is_none() {
            verdicts.push(None);
            continue;
        }
        let uri = format!("/r/{}", case.wanted);
        let bearer = format!("Bearer {}", case.token);
        let reply = app
            .get_with(
                "/auth",
                &[
                    ("X-Forwarded-Method", "GET"),
                    ("X-Forwarded-Uri", &uri),
                    ("Authorization", &bearer),
                ],
            )
            .await;
        verdicts.push(Some(match reply.status.as_u16() {
            200 => Verdict::Allowed,
            403 => {
                let expected = match wanted[case.wanted] {
                    Wanted::Reverification(_) => "reverification_required",
                    _ => "insufficient_permission",
                };
                assert_eq!(reply.code(), expected, "{}", case.id);
                Verdict::Refused
            }
            401 => Verdict::SignedOut,
            other => panic!("{}: /auth answered {other}: {:?}", case.id, reply.body),
        }));
    }
    verdicts
}

#[actix_rt::test]
async fn keygate_decides_has_as_clerk_does() {
    let started = Instant::now();
    let Some(dir) = harness_dir() else {
        let what = "node and tests/clerk/node_modules (npm ci in tests/clerk)";
        if std::env::var_os("CI").is_some() {
            panic!("differential has(): {what} are required when CI is set");
        }
        eprintln!("skipping differential has(): {what} are not available");
        crate::common::record_skip("differential has()", what);
        return;
    };
    let keys = Keys::new();
    let (wanted, cases) = has_corpus(&keys);
    let mut ids = HashSet::new();
    for case in &cases {
        assert!(
            ids.insert(case.id.as_str()),
            "duplicate case id {}",
            case.id
        );
    }
    assert!(
        cases.len() >= 3000,
        "the corpus has only {} cases",
        cases.len()
    );

    let clerk = clerk_has(&dir, &keys, &wanted, &cases);
    let library = library_has(&keys, &wanted, &cases).await;
    let forward = forward_auth_has(&keys, &wanted, &cases).await;

    let allowed = |v: Verdict| v == Verdict::Allowed;
    let mut agreements = 0;
    let mut explained = Vec::new();
    let mut unexplained = Vec::new();
    let mut used = vec![false; HAS_ALLOWED.len()];
    let mut forward_used = vec![false; FORWARD_ALLOWED.len()];
    let mut signed_out_for_types = 0;
    let mut forward_checked = 0;
    for (i, case) in cases.iter().enumerate() {
        let (c, l) = (clerk[i], library[i]);
        // The service decides exactly as the library does.
        if let Some(f) = forward[i] {
            forward_checked += 1;
            if f != l {
                match FORWARD_ALLOWED.iter().position(|(p, _)| glob(p, &case.id)) {
                    Some(e) if f == Verdict::SignedOut => {
                        forward_used[e] = true;
                        explained.push(format!("  {} (/auth: {})", case.id, FORWARD_ALLOWED[e].1));
                    }
                    _ => unexplained.push(format!(
                        "  {}: /auth {f:?}, library {l:?}, clerk {c:?}",
                        case.id
                    )),
                }
            }
        }
        // Claims of the wrong JSON type are malformed tokens for keygate (401) where
        // the SDK signs the user in and answers has() false: both refuse.
        if l == Verdict::SignedOut && c == Verdict::Refused {
            assert!(
                case.id.contains("/types-"),
                "{}: keygate refuses the token, the SDK signs it in",
                case.id
            );
            signed_out_for_types += 1;
        }
        if allowed(c) == allowed(l) {
            agreements += 1;
            continue;
        }
        match HAS_ALLOWED.iter().position(|(p, _)| glob(p, &case.id)) {
            Some(e) if allowed(c) => {
                used[e] = true;
                explained.push(format!("  {} ({})", case.id, HAS_ALLOWED[e].1));
            }
            _ => unexplained.push(format!("  {}: clerk {c:?}, library {l:?}", case.id)),
        }
    }
    for line in &explained {
        println!("explained: {line}");
    }
    let count = |verdicts: &[Verdict], v: Verdict| verdicts.iter().filter(|x| **x == v).count();
    println!(
        "Clerk: {} allowed, {} refused, {} signed out; library: {} allowed, {} refused, {} signed out",
        count(&clerk, Verdict::Allowed),
        count(&clerk, Verdict::Refused),
        count(&clerk, Verdict::SignedOut),
        count(&library, Verdict::Allowed),
        count(&library, Verdict::Refused),
        count(&library, Verdict::SignedOut),
    );
    println!(
        "differential has(): {} cases ({} also through /auth), {agreements} agreements, {} explained disagreements (keygate stricter), {} unexplained; {signed_out_for_types} mistyped-claim cases refused as malformed tokens; in {:.1?}",
        cases.len(),
        forward_checked,
        explained.len(),
        unexplained.len(),
        started.elapsed()
    );
    let stale: Vec<&str> = HAS_ALLOWED
        .iter()
        .zip(&used)
        .filter(|(_, used)| !**used)
        .map(|((p, _), _)| *p)
        .chain(
            FORWARD_ALLOWED
                .iter()
                .zip(&forward_used)
                .filter(|(_, used)| !**used)
                .map(|((p, _), _)| *p),
        )
        .collect();
    assert!(
        unexplained.is_empty() && stale.is_empty(),
        "{} unexplained disagreement(s):\n{}\nallow-list entries that excuse nothing: {stale:?}",
        unexplained.len(),
        unexplained.join("\n")
    );
}
