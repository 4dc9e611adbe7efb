//! `keygate mint` through the binary: tokens of every algorithm family verify with
//! `keygate verify` and the service under the matching configuration, and every
//! usage error exits 2 with one line and without echoing the secret.

use std::path::PathBuf;
use std::process::{Command, Output};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use crate::common::app::temp_sqlite_url;
use crate::common::*;
use crate::dev::{code_and_stderr, keygate_cmd, run};

/// A private key in a temp file, with its public PEM for `JWT_PUBLIC_KEY`.
struct KeyFile {
    path: PathBuf,
    public_pem: String,
}

impl KeyFile {
    fn new(name: &str, private_pem: &str, public_pem: &str) -> KeyFile {
        let dir = std::env::temp_dir().join(format!(
            "keygate-mint-{}",
            URL_SAFE_NO_PAD.encode(rand::random::<[u8; 9]>())
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, private_pem).unwrap();
        KeyFile {
            path,
            public_pem: public_pem.to_string(),
        }
    }

    fn of(signer: &Signer, name: &str) -> KeyFile {
        KeyFile::new(name, &signer.private_pem, &signer.public_pem)
    }

    fn arg(&self) -> &str {
        self.path.to_str().unwrap()
    }
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    ::pem::encode(&::pem::Pem::new(label, der.to_vec()))
}

/// A fresh P-384 key (the shared token helpers have P-256 only).
fn es384_key() -> KeyFile {
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &SystemRandom::new())
            .unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let spki = AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(pair.public_key()).unwrap();
    KeyFile::new(
        "es384.pem",
        &pem("PRIVATE KEY", pkcs8.as_ref()),
        &pem("PUBLIC KEY", spki.as_ref()),
    )
}

/// `keygate mint ARGS` with `env`.
fn mint(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = keygate_cmd();
    cmd.arg("mint").args(args).envs(env.iter().copied());
    run(cmd)
}

/// The token printed by a successful `mint`.
fn minted(args: &[&str], env: &[(&str, &str)]) -> String {
    let output = mint(args, env);
    assert!(
        output.status.success(),
        "mint {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "mint prints the token alone: {stdout:?}");
    lines[0].to_string()
}

/// `keygate verify TOKEN` under `env` (plus a temp database), as claims or the failure.
fn verify(token: &str, env: &[(&str, &str)]) -> Result<Value, String> {
    let mut cmd: Command = keygate_cmd();
    cmd.args(["verify", token])
        .env("DATABASE_URL", temp_sqlite_url())
        .envs(env.iter().copied());
    let output = run(cmd);
    if output.status.success() {
        Ok(serde_json::from_slice(&output.stdout).unwrap())
    } else {
        Err(format!(
            "{:?}: {}",
            output.status.code(),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn header(token: &str) -> Value {
    let raw = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(raw).unwrap()).unwrap()
}

#[test]
fn hs_tokens_round_trip_through_verify() {
    // HS256 by default, secret on the command line.
    let token = minted(&["--secret", SECRET, "--sub", "user_hs256"], &[]);
    assert_eq!(header(&token)["alg"], "HS256");
    let claims = verify(&token, &[("JWT_SECRET", SECRET)]).unwrap();
    assert_eq!(claims["sub"], "user_hs256");

    // HS384 with the secret from JWT_SECRET.
    let token = minted(&["--alg", "HS384"], &[("JWT_SECRET", SECRET)]);
    assert_eq!(header(&token)["alg"], "HS384");
    let claims = verify(
        &token,
        &[("JWT_SECRET", SECRET), ("JWT_ALGORITHMS", "HS384")],
    )
    .unwrap();
    assert_eq!(claims["sub"], "user_dev");

    // HS512 with a binary secret in base64, decoded like the service decodes it.
    let binary = format!("base64:{}", STANDARD.encode([0xa5u8; 48]));
    let token = minted(&["--alg", "HS512", "--secret", &binary], &[]);
    assert_eq!(header(&token)["alg"], "HS512");
    verify(
        &token,
        &[("JWT_SECRET", &binary), ("JWT_ALGORITHMS", "HS512")],
    )
    .unwrap();
    // ... and not with the same text taken as UTF-8 bytes.
    assert!(
        verify(
            &token,
            &[("JWT_SECRET", &binary[7..]), ("JWT_ALGORITHMS", "HS512")]
        )
        .is_err()
    );
}

#[test]
fn key_tokens_of_every_family_round_trip_through_verify() {
    let rsa = KeyFile::of(&Signer::rsa(0, "k", Algorithm::RS256), "rsa.pem");
    let es256 = KeyFile::of(&Signer::es256("k"), "es256.pem");
    let es384 = es384_key();
    let ed = KeyFile::of(&Signer::ed25519("k"), "ed25519.pem");
    let cases: [(&KeyFile, Option<&str>, &str); 6] = [
        (&rsa, None, "RS256"),
        (&rsa, Some("RS512"), "RS512"),
        (&rsa, Some("PS256"), "PS256"),
        (&es256, None, "ES256"),
        (&es384, None, "ES384"),
        (&ed, None, "EdDSA"),
    ];

    for (key, alg, expected) in cases {
        let mut args = vec!["--key", key.arg(), "--sub", "user_key"];
        if let Some(alg) = alg {
            args.extend(["--alg", alg]);
        }
        let token = minted(&args, &[]);

        assert_eq!(header(&token)["alg"], expected);
        let claims = verify(
            &token,
            &[
                ("JWT_PUBLIC_KEY", key.public_pem.as_str()),
                ("JWT_ALGORITHMS", expected),
            ],
        )
        .unwrap_or_else(|e| panic!("{expected}: {e}"));
        assert_eq!(claims["sub"], "user_key", "{expected}");
    }
}

#[test]
fn options_become_claims_and_header() {
    let key = KeyFile::of(&Signer::rs256(1, "k"), "rsa.pem");

    let token = minted(
        &[
            "--key",
            key.arg(),
            "--kid",
            "ops-key-1",
            "--sub",
            "user_7",
            "--ttl",
            "90",
            "--iss",
            "https://clerk.example.com",
            "--aud",
            "api",
            "--azp",
            "http://localhost:3000",
            "--sid",
            "sess_123",
            "--claim",
            r#"org_id="org_9""#,
            "--claim",
            r#"org_permissions=["org:invoices:read"]"#,
            "--claim",
            "n=1",
        ],
        &[],
    );

    assert_eq!(header(&token)["kid"], "ops-key-1");
    let claims = verify(
        &token,
        &[
            ("JWT_PUBLIC_KEY", key.public_pem.as_str()),
            ("JWT_ISSUER", "https://clerk.example.com"),
            ("JWT_AUDIENCE", "api"),
            ("JWT_AUTHORIZED_PARTIES", "http://localhost:3000"),
        ],
    )
    .unwrap();
    assert_eq!(claims["sub"], "user_7");
    assert_eq!(claims["sid"], "sess_123");
    assert_eq!(claims["org_id"], "org_9");
    assert_eq!(claims["org_permissions"], json!(["org:invoices:read"]));
    assert_eq!(claims["n"], 1);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        90
    );
    assert_eq!(claims["nbf"], claims["iat"]);

    // Repeated --aud gives an array; --claim wins over the options.
    let token = minted(
        &[
            "--secret",
            SECRET,
            "--aud",
            "a",
            "--aud",
            "b",
            "--claim",
            r#"sub="over""#,
        ],
        &[],
    );
    let claims = verify(&token, &[("JWT_SECRET", SECRET), ("JWT_AUDIENCE", "b")]).unwrap();
    assert_eq!(
        (claims["aud"].clone(), claims["sub"].clone()),
        (json!(["a", "b"]), json!("over"))
    );
}

#[test]
fn plans_features_and_factor_ages_become_clerks_claims() {
    let token = minted(
        &[
            "--secret",
            SECRET,
            "--plan",
            "u:free",
            "--plan",
            "o:pro",
            "--feature",
            "o:seats",
            "--fva",
            "0,-1",
        ],
        &[],
    );
    let claims = verify(&token, &[("JWT_SECRET", SECRET)]).unwrap();
    assert_eq!(
        (&claims["pla"], &claims["fea"], &claims["fva"]),
        (&json!("u:free,o:pro"), &json!("o:seats"), &json!([0, -1]))
    );
    for (args, needle) in [
        (
            ["--plan", "pro"],
            "--plan \"pro\": expected a scoped name such as u:pro",
        ),
        (["--feature", "x:export"], "--feature \"x:export\""),
        (["--fva", "5"], "--fva \"5\": expected two whole numbers"),
        (["--fva", "-2,0"], "--fva \"-2,0\""),
    ] {
        let output = mint(&[&["--secret", SECRET][..], &args[..]].concat(), &[]);
        assert_usage_error(&output, needle, &args.join(" "));
    }
}

#[actix_rt::test]
async fn minted_tokens_open_the_service() {
    let key = KeyFile::of(&Signer::es256("k"), "es256.pem");
    let token = minted(&["--key", key.arg(), "--sub", "user_svc"], &[]);
    let app = spawn_app(&[
        ("JWT_PUBLIC_KEY", key.public_pem.as_str()),
        ("JWT_ALGORITHMS", "ES256"),
    ])
    .await;

    let reply = app.get("/protected", Some(&token)).await;

    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, json!({"message": "Hello, user user_svc"}));
}

/// Asserts exit code 2, one stderr line containing `needle`, nothing on stdout.
fn assert_usage_error(output: &Output, needle: &str, case: &str) {
    let (code, stderr) = code_and_stderr(output);
    assert_eq!(code, Some(2), "{case}: {stderr:?}");
    assert_eq!(stderr.len(), 1, "{case}: one line: {stderr:?}");
    assert!(
        stderr[0].contains(needle),
        "{case}: {stderr:?} lacks {needle:?}"
    );
    assert!(output.stdout.is_empty(), "{case}: printed a token");
}

#[test]
fn each_usage_error_exits_2_with_one_line() {
    let rsa = KeyFile::of(&Signer::rs256(2, "k"), "rsa.pem");
    let ec = KeyFile::of(&Signer::es256("k"), "ec.pem");
    let public = KeyFile::new("public.pem", &rsa.public_pem, "");
    let garbage = KeyFile::new("garbage.pem", "not a key at all\n", "");
    let missing = rsa.path.with_file_name("does-not-exist.pem");
    let missing = missing.to_str().unwrap();
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        ("unreadable key file", vec!["--key", missing], "cannot read"),
        ("not PEM", vec!["--key", garbage.arg()], "not a PEM file"),
        ("public key", vec!["--key", public.arg()], "public key"),
        (
            "ES256 with an RSA key",
            vec!["--key", rsa.arg(), "--alg", "ES256"],
            "does not fit",
        ),
        (
            "RS256 with an EC key",
            vec!["--key", ec.arg(), "--alg", "RS256"],
            "does not fit",
        ),
        (
            "HS256 with a key",
            vec!["--key", rsa.arg(), "--alg", "HS256"],
            "--secret",
        ),
        (
            "RS256 with a secret",
            vec!["--secret", SECRET, "--alg", "RS256"],
            "--key",
        ),
        (
            "unknown algorithm",
            vec!["--secret", SECRET, "--alg", "none"],
            "unsupported",
        ),
        (
            "secret and key",
            vec!["--secret", SECRET, "--key", rsa.arg()],
            "exclude",
        ),
        (
            "claim without =",
            vec!["--secret", SECRET, "--claim", "role"],
            "KEY=JSON",
        ),
        (
            "claim not JSON",
            vec!["--secret", SECRET, "--claim", "role=admin"],
            "not JSON",
        ),
        ("zero ttl", vec!["--secret", SECRET, "--ttl", "0"], "--ttl"),
        ("no secret nor key", vec![], "JWT_SECRET"),
    ];

    for (case, args, needle) in cases {
        let output = mint(&args, &[]);

        assert_usage_error(&output, needle, case);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains(SECRET), "{case}: the secret was printed");
    }
}

#[test]
fn a_short_secret_is_refused_without_echoing_it() {
    let short = "short-secret-value";

    let from_option = mint(&["--secret", short], &[]);
    let from_env = mint(&[], &[("JWT_SECRET", short)]);

    assert_usage_error(
        &from_option,
        "--secret: must be at least 32 bytes",
        "--secret",
    );
    assert_usage_error(
        &from_env,
        "JWT_SECRET: must be at least 32 bytes",
        "JWT_SECRET",
    );
    for output in [&from_option, &from_env] {
        assert!(!String::from_utf8_lossy(&output.stderr).contains(short));
    }
}
