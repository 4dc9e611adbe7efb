//! Clerk webhook signatures as Svix makes them: HMAC-SHA256 keyed with the
//! base64-decoded part of `whsec_…`, over `{id}.{timestamp}.{body}`, sent as
//! `v1,<base64>` in `svix-signature`.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// One `v1,<base64>` signature entry of `body`, delivered as `id` at `timestamp`.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut payload = format!("{id}.{timestamp}.").into_bytes();
    payload.extend_from_slice(body);
    let tag = hmac::sign(&key, &payload);
    format!("v1,{}", STANDARD.encode(tag.as_ref()))
}

/// The `CLERK_WEBHOOK_SECRET` value of `key`, as Clerk's dashboard shows it.
pub fn secret(key: &[u8]) -> String {
    format!("whsec_{}", STANDARD.encode(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Svix's published example: secret, message id, timestamp, body and signature.
    #[test]
    fn the_svix_reference_vector() {
        let key = STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap_or_default();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }
}
