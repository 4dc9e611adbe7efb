//! `keygate mint`: prints a signed token, so ops and tests can exercise a configuration
//! from the shell without an identity provider.
//!
//! A token is signed either with a shared secret (`--secret`, or `JWT_SECRET` with the
//! same decoding rules as the service) or with a PKCS#8 PEM private key (`--key`).
//! The algorithm must fit the key, exactly as the verifier will demand; a mismatch,
//! an unreadable key or a malformed `--claim` is a usage error (exit 2, one line).
//! The secret is never printed, not even in `Debug` output.

use std::fmt;
use std::path::{Path, PathBuf};

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Map, Value, json};

use super::CliError;
use crate::config::decode_secret;
use crate::{Algorithm, KeyKind};

/// The JWT library's algorithm of the same name, to sign with: both use the JOSE names.
fn signing_algorithm(alg: Algorithm) -> Result<jsonwebtoken::Algorithm, CliError> {
    alg.as_str()
        .parse()
        .map_err(|_| usage(format!("--alg {alg}: cannot sign with it")))
}

/// Options of `keygate mint`.
#[derive(clap::Args)]
pub struct MintArgs {
    /// Shared secret for HS256/HS384/HS512 [default: $JWT_SECRET]; its UTF-8 bytes, or
    /// `base64:<…>` for a binary key; at least 32 bytes
    #[arg(long, value_name = "SECRET")]
    pub secret: Option<String>,
    /// PKCS#8 PEM private key: RSA (RS*/PS*), EC P-256 (ES256), EC P-384 (ES384) or
    /// Ed25519 (EdDSA)
    #[arg(long, value_name = "FILE.pem")]
    pub key: Option<PathBuf>,
    /// Signing algorithm [default: HS256 with a secret, else RS256/ES256/ES384/EdDSA
    /// by key type]
    #[arg(long, value_name = "ALG")]
    pub alg: Option<String>,
    /// `kid` header
    #[arg(long)]
    pub kid: Option<String>,
    /// Subject (`sub`): the user id
    #[arg(long, default_value = "user_dev")]
    pub sub: String,
    /// Lifetime in seconds (`exp` = now + SECS)
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    pub ttl: u64,
    /// Issuer (`iss`)
    #[arg(long)]
    pub iss: Option<String>,
    /// Audience (`aud`); repeat for several
    #[arg(long)]
    pub aud: Vec<String>,
    /// Authorized party (`azp`): the frontend origin
    #[arg(long)]
    pub azp: Option<String>,
    /// Session id (`sid`)
    #[arg(long)]
    pub sid: Option<String>,
    /// Clerk Billing plan (`pla`), scoped: `u:free` (the user's) or `o:pro` (the
    /// organization's); repeat for several
    #[arg(long, value_name = "SCOPE:PLAN")]
    pub plan: Vec<String>,
    /// Clerk Billing feature (`fea`), scoped like --plan (`u:export`); repeat for several
    #[arg(long, value_name = "SCOPE:FEATURE")]
    pub feature: Vec<String>,
    /// Factor verification ages (`fva`): minutes since the first and the second factor
    /// were verified, -1 for a factor not enabled (e.g. `--fva 0,-1` just signed in,
    /// no second factor)
    #[arg(long, value_name = "FIRST,SECOND", allow_hyphen_values = true)]
    pub fva: Option<String>,
    /// Extra claim as KEY=JSON (strings quoted: --claim 'org_role="org:admin"'); wins
    /// over the options above; repeatable
    #[arg(long = "claim", value_name = "KEY=JSON")]
    pub claims: Vec<String>,
}

impl fmt::Debug for MintArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MintArgs")
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("key", &self.key)
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("sub", &self.sub)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// What signs the token.
enum SigningKey {
    /// An HMAC secret, already decoded.
    Secret(EncodingKey),
    /// A private key read from `path`.
    Private {
        key: EncodingKey,
        kind: KeyKind,
        path: PathBuf,
    },
}

/// Signs a token as the options say and returns it (the caller prints it).
pub fn mint(args: &MintArgs) -> Result<String, CliError> {
    let signing = signing_key(args)?;
    let alg = match &args.alg {
        Some(name) => algorithm(name)?,
        None => default_algorithm(&signing),
    };
    check_fit(&signing, alg)?;
    if args.ttl == 0 {
        return Err(usage(
            "--ttl must be at least 1 second (for an expired token, pass --claim exp=<unix time>)",
        ));
    }
    let claims = claims(args, crate::clock::system().unix_secs())?;
    let mut header = Header::new(signing_algorithm(alg)?);
    header.kid = args.kid.clone();
    let key = match &signing {
        SigningKey::Secret(key) | SigningKey::Private { key, .. } => key,
    };
    jsonwebtoken::encode(&header, &claims, key)
        .map_err(|e| usage(format!("cannot sign with this key and --alg {alg:?}: {e}")))
}

fn usage(message: impl Into<String>) -> CliError {
    CliError::Usage(message.into())
}

/// The secret or private key named by the options, or `JWT_SECRET` when neither is.
fn signing_key(args: &MintArgs) -> Result<SigningKey, CliError> {
    match (&args.secret, &args.key) {
        (Some(_), Some(_)) => Err(usage(
            "--secret and --key exclude each other: pass one of them",
        )),
        (None, Some(path)) => read_private_key(path),
        (Some(secret), None) => secret_key("--secret", secret),
        (None, None) => {
            // The service reads `.env`; so does mint, for the same JWT_SECRET.
            match dotenvy::dotenv() {
                Ok(_) => {}
                Err(e) if e.not_found() => {}
                Err(e) => return Err(usage(format!(".env: {e}"))),
            }
            match std::env::var("JWT_SECRET") {
                Ok(secret) if !secret.is_empty() => secret_key("JWT_SECRET", &secret),
                _ => Err(usage(
                    "no signing key: pass --secret SECRET or --key FILE.pem, or set JWT_SECRET",
                )),
            }
        }
    }
}

/// Decodes a secret like the service does; the error names where it came from, never the value.
fn secret_key(source: &str, raw: &str) -> Result<SigningKey, CliError> {
    let bytes = decode_secret(source, raw).map_err(|e| usage(e.to_string()))?;
    Ok(SigningKey::Secret(EncodingKey::from_secret(&bytes)))
}

/// Reads a PEM private key and tells its family by letting aws-lc-rs parse it as each.
fn read_private_key(path: &Path) -> Result<SigningKey, CliError> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("--key {shown}: cannot read the file: {e}")))?;
    let block = pem::parse(&text).map_err(|_| {
        usage(format!(
            "--key {shown}: not a PEM file (-----BEGIN PRIVATE KEY-----)"
        ))
    })?;
    let der = block.contents();
    let not_a_key = |what: &str| usage(format!("--key {shown}: {what}"));
    let (key, kind) = match block.tag() {
        "PRIVATE KEY" => {
            if aws_lc_rs::rsa::KeyPair::from_pkcs8(der).is_ok() {
                (rsa_key(&text, path)?, KeyKind::Rsa)
            } else if EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der).is_ok() {
                (EncodingKey::from_ec_der(der), KeyKind::EcP256)
            } else if EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, der).is_ok() {
                (EncodingKey::from_ec_der(der), KeyKind::EcP384)
            } else if Ed25519KeyPair::from_pkcs8(der).is_ok() {
                (EncodingKey::from_ed_der(der), KeyKind::Ed25519)
            } else {
                return Err(not_a_key(
                    "not a supported private key (RSA of 2048+ bits, EC P-256/P-384 or Ed25519)",
                ));
            }
        }
        // PKCS#1, as older tools write RSA keys; jsonwebtoken reads it as well.
        "RSA PRIVATE KEY" if aws_lc_rs::rsa::KeyPair::from_der(der).is_ok() => {
            (rsa_key(&text, path)?, KeyKind::Rsa)
        }
        "PUBLIC KEY" | "RSA PUBLIC KEY" => {
            return Err(not_a_key(
                "is a public key; minting needs the private key (-----BEGIN PRIVATE KEY-----)",
            ));
        }
        "EC PRIVATE KEY" => {
            return Err(not_a_key(
                "is a SEC1 EC key; convert it to PKCS#8 with `openssl pkcs8 -topk8 -nocrypt`",
            ));
        }
        "ENCRYPTED PRIVATE KEY" => {
            return Err(not_a_key(
                "is encrypted; minting needs an unencrypted PKCS#8 key",
            ));
        }
        other => {
            return Err(not_a_key(&format!(
                "holds a {other} block, not a private key (-----BEGIN PRIVATE KEY-----)"
            )));
        }
    };
    Ok(SigningKey::Private {
        key,
        kind,
        path: path.to_path_buf(),
    })
}

fn rsa_key(text: &str, path: &Path) -> Result<EncodingKey, CliError> {
    EncodingKey::from_rsa_pem(text.as_bytes())
        .map_err(|e| usage(format!("--key {}: unusable RSA key: {e}", path.display())))
}

/// `--alg`, as the `alg` header spells it (case-insensitive on the command line).
fn algorithm(name: &str) -> Result<Algorithm, CliError> {
    name.parse().map_err(|_| {
        usage(format!(
            "--alg {name:?}: unsupported; expected one of HS256, HS384, HS512, RS256, RS384, \
             RS512, PS256, PS384, PS512, ES256, ES384, EdDSA"
        ))
    })
}

fn default_algorithm(signing: &SigningKey) -> Algorithm {
    match signing {
        SigningKey::Secret(_) => Algorithm::HS256,
        SigningKey::Private { kind, .. } => match kind {
            KeyKind::Rsa => Algorithm::RS256,
            KeyKind::EcP256 => Algorithm::ES256,
            KeyKind::EcP384 => Algorithm::ES384,
            KeyKind::Ed25519 => Algorithm::EdDSA,
        },
    }
}

/// The verifier pairs algorithms and keys strictly; minting refuses what it would reject.
fn check_fit(signing: &SigningKey, alg: Algorithm) -> Result<(), CliError> {
    match signing {
        SigningKey::Secret(_) if alg.is_hmac() => Ok(()),
        SigningKey::Secret(_) => Err(usage(format!(
            "--alg {alg:?} needs a private key (--key FILE.pem); a secret signs HS256, HS384 or HS512 only"
        ))),
        SigningKey::Private { kind, .. } if kind.accepts(alg) => Ok(()),
        SigningKey::Private { kind, path, .. } => {
            let (what, fits) = match kind {
                KeyKind::Rsa => ("an RSA key", "RS256/384/512 or PS256/384/512"),
                KeyKind::EcP256 => ("an EC P-256 key", "ES256"),
                KeyKind::EcP384 => ("an EC P-384 key", "ES384"),
                KeyKind::Ed25519 => ("an Ed25519 key", "EdDSA"),
            };
            let hint = if alg.is_hmac() {
                "; HS algorithms take --secret"
            } else {
                ""
            };
            Err(usage(format!(
                "--alg {alg:?} does not fit {} ({what}, which signs {fits}){hint}",
                path.display()
            )))
        }
    }
}

/// The claims: standard ones from the options, then `--claim`s over them.
fn claims(args: &MintArgs, now: u64) -> Result<Map<String, Value>, CliError> {
    let mut claims = Map::new();
    if let Some(iss) = &args.iss {
        claims.insert("iss".into(), json!(iss));
    }
    claims.insert("sub".into(), json!(args.sub));
    match args.aud.as_slice() {
        [] => {}
        [one] => {
            claims.insert("aud".into(), json!(one));
        }
        many => {
            claims.insert("aud".into(), json!(many));
        }
    }
    if let Some(azp) = &args.azp {
        claims.insert("azp".into(), json!(azp));
    }
    if let Some(sid) = &args.sid {
        claims.insert("sid".into(), json!(sid));
    }
    claims.insert("iat".into(), json!(now));
    claims.insert("nbf".into(), json!(now));
    claims.insert("exp".into(), json!(now.saturating_add(args.ttl)));
    for (name, flag, values) in [
        ("pla", "--plan", &args.plan),
        ("fea", "--feature", &args.feature),
    ] {
        if !values.is_empty() {
            claims.insert(name.into(), json!(scoped_list(flag, values)?));
        }
    }
    if let Some(fva) = &args.fva {
        claims.insert("fva".into(), json!(factor_ages(fva)?));
    }
    for raw in &args.claims {
        let (name, value) = parse_claim(raw)?;
        claims.insert(name, value);
    }
    Ok(claims)
}

/// `--plan u:free --plan o:pro` → `u:free,o:pro`, each element with a scope Clerk uses.
fn scoped_list(flag: &str, values: &[String]) -> Result<String, CliError> {
    for value in values {
        let scoped = value.split_once(':').is_some_and(|(scope, name)| {
            matches!(scope, "u" | "o" | "ou" | "uo") && !name.is_empty() && !name.contains(',')
        });
        if !scoped {
            return Err(usage(format!(
                "{flag} {value:?}: expected a scoped name such as u:{0} (the user's) or o:{0} (the organization's)",
                value
                    .rsplit(':')
                    .next()
                    .filter(|n| !n.is_empty())
                    .unwrap_or("pro")
            )));
        }
    }
    Ok(values.join(","))
}

/// `--fva 3,-1` → `[3, -1]`.
fn factor_ages(raw: &str) -> Result<[i64; 2], CliError> {
    let bad = || {
        usage(format!(
            "--fva {raw:?}: expected two whole numbers of minutes, FIRST,SECOND, each -1 (factor not enabled) or more, e.g. --fva 0,-1"
        ))
    };
    let (first, second) = raw.split_once(',').ok_or_else(bad)?;
    let age = |text: &str| {
        text.trim()
            .parse::<i64>()
            .ok()
            .filter(|age| *age >= -1)
            .ok_or_else(bad)
    };
    Ok([age(first)?, age(second)?])
}

/// One `--claim KEY=JSON`.
fn parse_claim(raw: &str) -> Result<(String, Value), CliError> {
    let Some((name, json)) = raw.split_once('=') else {
        return Err(usage(format!(
            "--claim {raw:?}: expected KEY=JSON, e.g. --claim 'org_role=\"org:admin\"'"
        )));
    };
    let name = name.trim();
    if name.is_empty() {
        return Err(usage(format!("--claim {raw:?}: the claim name is empty")));
    }
    let value = serde_json::from_str(json).map_err(|e| {
        usage(format!(
            "--claim {name}: the value is not JSON ({e}); quote strings, e.g. --claim '{name}=\"text\"'"
        ))
    })?;
    Ok((name.to_string(), value))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn claims_parse_as_json_and_reject_the_rest() {
        assert_eq!(parse_claim("n=1").unwrap(), ("n".into(), json!(1)));
        assert_eq!(
            parse_claim(r#"o={"id":"org_1","rol":"admin"}"#).unwrap().1,
            json!({"id": "org_1", "rol": "admin"})
        );
        assert_eq!(parse_claim(r#"eq="a=b""#).unwrap().1, json!("a=b"));
        for bad in ["role", "role=admin", "=1", "x="] {
            let e = parse_claim(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
            assert!(!e.to_string().contains('\n'), "{bad}");
        }
    }

    #[test]
    fn plans_features_and_factor_ages() {
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            scoped_list("--plan", &list(&["u:free", "o:pro"])).unwrap(),
            "u:free,o:pro"
        );
        for bad in ["pro", "x:pro", "u:", "u:a,b"] {
            let e = scoped_list("--plan", &list(&[bad])).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
            assert!(e.to_string().contains("--plan"), "{bad}");
        }
        assert_eq!(factor_ages("0,-1").unwrap(), [0, -1]);
        assert_eq!(factor_ages(" 12 , 3").unwrap(), [12, 3]);
        for bad in ["5", "1,2,3", "-2,0", "a,1", "1.5,0", ""] {
            assert_eq!(factor_ages(bad).unwrap_err().exit_code(), 2, "{bad}");
        }
    }

    #[test]
    fn algorithm_names_are_case_insensitive_on_the_command_line() {
        assert_eq!(algorithm("hs384").unwrap(), Algorithm::HS384);
        assert_eq!(algorithm("eddsa").unwrap(), Algorithm::EdDSA);
        assert!(algorithm("none").is_err());
    }

    #[test]
    fn debug_output_redacts_the_secret() {
        let args = MintArgs {
            secret: Some("do-not-print-me-0123456789abcdefghij".into()),
            key: None,
            alg: None,
            kid: None,
            sub: "u".into(),
            ttl: 1,
            iss: None,
            aud: vec![],
            azp: None,
            sid: None,
            plan: vec![],
            feature: vec![],
            fva: None,
            claims: vec![],
        };
        assert!(!format!("{args:?}").contains("do-not-print-me"));
    }
}
