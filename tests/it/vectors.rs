//! RFC 7515 appendix A test vectors through keygate's own verification path.
//! Their `exp` is in 2011, so `token_expired` proves the signature passed;
//! one changed byte makes them `invalid_signature`.

use serde_json::json;

use crate::common::*;

const PAYLOAD: &str = "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";

const HS256_KEY: &str =
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
const HS256_HEADER: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9";
const HS256_SIG: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

const RS256_N: &str = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
const RS256_HEADER: &str = "eyJhbGciOiJSUzI1NiJ9";
const RS256_SIG: &str = "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";

const ES256_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
const ES256_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
const ES256_HEADER: &str = "eyJhbGciOiJFUzI1NiJ9";
const ES256_SIG: &str =
    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";

/// The same token with one signature character changed (not the last, whose low bits may be padding).
fn tampered(header: &str, sig: &str) -> String {
    let mut bytes = sig.as_bytes().to_vec();
    bytes[5] = if bytes[5] == b'A' { b'B' } else { b'A' };
    format!("{header}.{PAYLOAD}.{}", String::from_utf8(bytes).unwrap())
}

async fn expect_vector(app: &TestApp, header: &str, sig: &str) {
    let genuine = app
        .get("/protected", Some(&format!("{header}.{PAYLOAD}.{sig}")))
        .await;
    assert_eq!(
        (genuine.status.as_u16(), genuine.code()),
        (401, "token_expired"),
        "{:?}",
        genuine.body
    );
    let forged = app.get("/protected", Some(&tampered(header, sig))).await;
    assert_eq!(
        (forged.status.as_u16(), forged.code()),
        (401, "invalid_signature")
    );
}

#[actix_rt::test]
async fn rfc7515_a1_hs256() {
    let app = spawn_app(&[
        ("JWT_SECRET", &format!("base64:{HS256_KEY}")),
        ("JWT_USER_CLAIM", "iss"),
    ])
    .await;
    expect_vector(&app, HS256_HEADER, HS256_SIG).await;
}

#[actix_rt::test]
async fn rfc7515_a2_rs256_and_a3_es256_from_a_jwks() {
    let jwks = MockJwks::start(vec![json!({"kty": "RSA", "n": RS256_N, "e": "AQAB"})]).await;
    let app = spawn_app(&[("JWKS_URL", &jwks.url), ("JWT_USER_CLAIM", "iss")]).await;
    app.wait_for_keys().await;
    expect_vector(&app, RS256_HEADER, RS256_SIG).await;

    let jwks = MockJwks::start(vec![
        json!({"kty": "EC", "crv": "P-256", "x": ES256_X, "y": ES256_Y}),
    ])
    .await;
    let app = spawn_app(&[
        ("JWKS_URL", &jwks.url),
        ("JWT_USER_CLAIM", "iss"),
        ("JWT_ALGORITHMS", "ES256"),
    ])
    .await;
    app.wait_for_keys().await;
    expect_vector(&app, ES256_HEADER, ES256_SIG).await;
}
