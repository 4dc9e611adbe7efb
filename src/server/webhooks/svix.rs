//! Svix webhook signatures, as Clerk delivers its events: HMAC-SHA256 over
//! `{id}.{timestamp}.{body}` with the key inside a `whsec_` secret, the timestamp within
//! five minutes of the server's clock.
//!
//! This module never logs or echoes the signing secret.

use aws_lc_rs::{constant_time, hmac};
use base64::Engine as _;
use base64::engine::{GeneralPurpose, GeneralPurposeConfig};

/// How far `svix-timestamp` may be from the server's clock, either way (Svix's own tolerance).
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 5 * 60;

/// Standard alphabet, padding optional: Svix secrets and signatures are padded
/// standard base64, but a secret pasted without its `=` should still work.
pub(crate) const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// Why a delivery's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SvixError {
    /// A required Svix header is absent, empty or not ASCII.
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    /// `svix-timestamp` is not an integer.
    #[error("invalid svix-timestamp header")]
    InvalidTimestamp,
    /// `svix-timestamp` is more than 5 minutes from the server's clock.
    #[error("svix-timestamp too far from the current time")]
    TimestampOutOfTolerance,
    /// No `v1` signature in `svix-signature` matches the body.
    #[error("no matching signature")]
    InvalidSignature,
}

/// Decodes a `whsec_<base64>` signing secret (as shown in Clerk's dashboard)
/// into the HMAC key.
///
/// The error says what is wrong without repeating the value, so config
/// validation can print it next to `CLERK_WEBHOOK_SECRET`.
pub fn decode_signing_secret(s: &str) -> Result<Vec<u8>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("is empty".to_owned());
    }
    let Some(encoded) = s.strip_prefix("whsec_") else {
        return Err(
            "must start with whsec_ (copy the signing secret from the Clerk dashboard)".to_owned(),
        );
    };
    let key = BASE64
        .decode(encoded)
        .map_err(|_| "is not valid base64 after whsec_".to_owned())?;
    // Svix generates 24-byte keys; anything much shorter is not a real secret.
    if key.len() < 16 {
        return Err(format!(
            "decodes to {} bytes; a Svix signing secret has at least 16",
            key.len()
        ));
    }
    Ok(key)
}

/// Verifies a Svix delivery: the three headers' values (any may be missing),
/// the raw body, and the current unix time.
///
/// `signatures` holds one or more space-separated `v1,<base64>` entries (Svix
/// sends several while a secret is being rotated); entries of other versions
/// are ignored and one match suffices. The HMAC is computed once and compared
/// to each candidate in constant time, so a header full of signatures costs no
/// more hashing than one.
pub fn verify(
    secret: &[u8],
    id: Option<&str>,
    timestamp: Option<&str>,
    signatures: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), SvixError> {
    let id = present(id).ok_or(SvixError::MissingHeader("svix-id"))?;
    let timestamp = present(timestamp).ok_or(SvixError::MissingHeader("svix-timestamp"))?;
    let signatures = present(signatures).ok_or(SvixError::MissingHeader("svix-signature"))?;

    let timestamp: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SvixError::InvalidTimestamp)?;
    if now.abs_diff(timestamp) > TIMESTAMP_TOLERANCE_SECS.unsigned_abs() {
        return Err(SvixError::TimestampOutOfTolerance);
    }

    // Svix signs the timestamp as the integer it parses, not the header's bytes.
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut mac = hmac::Context::with_key(&key);
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let expected = mac.sign();

    let matched = signatures
        .split_whitespace()
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .filter_map(|(_, signature)| BASE64.decode(signature).ok())
        .any(|candidate| {
            constant_time::verify_slices_are_equal(expected.as_ref(), &candidate).is_ok()
        });
    if matched {
        Ok(())
    } else {
        Err(SvixError::InvalidSignature)
    }
}

pub(crate) fn present(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn key() -> Vec<u8> {
        decode_signing_secret(SECRET).unwrap()
    }

    use keygate_test_support::svix::sign;

    #[test]
    fn svix_reference_vector_verifies() {
        // From Svix's documentation and its libraries' tests.
        let body = br#"{"test": 2432232314}"#;
        let sig = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let ts = 1_614_265_330;
        verify(&key(), Some(id), Some("1614265330"), Some(sig), body, ts).unwrap();
        assert_eq!(sign(&key(), id, ts, body), sig);
    }

    #[test]
    fn valid_signature_verifies() {
        let body = b"{}";
        let sig = sign(&key(), "msg_1", 1_000, body);
        verify(&key(), Some("msg_1"), Some("1000"), Some(&sig), body, 1_000).unwrap();
    }

    #[test]
    fn each_missing_header_is_rejected() {
        let body = b"{}";
        let sig = sign(&key(), "msg_1", 1_000, body);
        let cases = [
            (None, Some("1000"), Some(sig.as_str()), "svix-id"),
            (Some(""), Some("1000"), Some(sig.as_str()), "svix-id"),
            (Some("msg_1"), None, Some(sig.as_str()), "svix-timestamp"),
            (Some("msg_1"), Some("1000"), None, "svix-signature"),
            (Some("msg_1"), Some("1000"), Some(" "), "svix-signature"),
        ];
        for (id, ts, sigs, name) in cases {
            match verify(&key(), id, ts, sigs, body, 1_000) {
                Err(SvixError::MissingHeader(missing)) => assert_eq!(missing, name),
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn wrong_secret_and_tampered_body_are_rejected() {
        let body = br#"{"type":"user.deleted"}"#;
        let other_key = BASE64
            .decode("c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0")
            .unwrap();
        let forged = sign(&other_key, "msg_1", 1_000, body);
        assert!(matches!(
            verify(
                &key(),
                Some("msg_1"),
                Some("1000"),
                Some(&forged),
                body,
                1_000
            ),
            Err(SvixError::InvalidSignature)
        ));

        let sig = sign(&key(), "msg_1", 1_000, body);
        let tampered = br#"{"type":"user.deleted "}"#;
        assert!(matches!(
            verify(
                &key(),
                Some("msg_1"),
                Some("1000"),
                Some(&sig),
                tampered,
                1_000
            ),
            Err(SvixError::InvalidSignature)
        ));
        // The id and timestamp are signed too.
        assert!(matches!(
            verify(&key(), Some("msg_2"), Some("1000"), Some(&sig), body, 1_000),
            Err(SvixError::InvalidSignature)
        ));
        assert!(matches!(
            verify(&key(), Some("msg_1"), Some("1001"), Some(&sig), body, 1_000),
            Err(SvixError::InvalidSignature)
        ));
        // Garbage and other versions are not errors of their own, just no match.
        assert!(matches!(
            verify(
                &key(),
                Some("msg_1"),
                Some("1000"),
                Some("v1,@@@ v2,abc nocomma"),
                body,
                1_000
            ),
            Err(SvixError::InvalidSignature)
        ));
    }

    #[test]
    fn timestamps_more_than_five_minutes_off_are_rejected() {
        let body = b"{}";
        let now = 1_000_000;
        for (ts, ok) in [
            (now - 300, true),
            (now + 300, true),
            (now - 301, false),
            (now + 301, false),
            (now - 3600, false),
            (now + 3600, false),
        ] {
            let sig = sign(&key(), "msg_1", ts, body);
            let result = verify(
                &key(),
                Some("msg_1"),
                Some(&ts.to_string()),
                Some(&sig),
                body,
                now,
            );
            if ok {
                result.unwrap();
            } else {
                assert!(
                    matches!(result, Err(SvixError::TimestampOutOfTolerance)),
                    "{ts}: {result:?}"
                );
            }
        }
        assert!(matches!(
            verify(&key(), Some("msg_1"), Some("soon"), Some("v1,x"), body, now),
            Err(SvixError::InvalidTimestamp)
        ));
    }

    #[test]
    fn one_valid_signature_among_several_suffices() {
        let body = b"{}";
        let other_key = BASE64
            .decode("c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0")
            .unwrap();
        let good = sign(&key(), "msg_1", 1_000, body);
        let stale = sign(&other_key, "msg_1", 1_000, body);
        let header = format!("v2,abc {stale} {good}");
        verify(
            &key(),
            Some("msg_1"),
            Some("1000"),
            Some(&header),
            body,
            1_000,
        )
        .unwrap();
        // The same valid bytes under another version label do not count.
        let relabelled = good.replacen("v1,", "v2,", 1);
        assert!(matches!(
            verify(
                &key(),
                Some("msg_1"),
                Some("1000"),
                Some(&format!("{stale} {relabelled}")),
                body,
                1_000
            ),
            Err(SvixError::InvalidSignature)
        ));
    }

    #[test]
    fn signing_secret_decoding() {
        assert_eq!(key().len(), 24);
        // Unpadded and surrounded by whitespace (a copied .env line) still decodes.
        assert_eq!(
            decode_signing_secret(" whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ \n").unwrap(),
            b"secret-secret-secret"
        );
        for (input, expect) in [
            ("", "is empty"),
            ("   ", "is empty"),
            ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "must start with whsec_"),
            ("sk_test_abc", "must start with whsec_"),
            ("whsec_not*base64!", "not valid base64"),
            ("whsec_", "decodes to 0 bytes"),
            ("whsec_c2hvcnQ=", "decodes to 5 bytes"),
        ] {
            let err = decode_signing_secret(input).unwrap_err();
            assert!(err.contains(expect), "{input:?}: {err}");
            assert!(input.len() < 8 || !err.contains(input.trim()), "{err}");
        }
    }
}
