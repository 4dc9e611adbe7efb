//! Fuzzes the whole verification entry point (parsing, algorithm policy, key choice,
//! signature, claims) with a shared secret and a static public key configured.
#![no_main]

use std::sync::OnceLock;

use keygate::{Authenticator, AuthenticatorBuilder};
use libfuzzer_sys::fuzz_target;

// RFC 7515 A.2's public key: a real RSA key, so RS* tokens reach the signature check.
const PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAofgWCuLjybRlzo0tZWJj
NiuSfb4p4fAkd/wWJcyQoTbji9k0l8W26mPddxHmfHQp+Vaw+4qPCJrcS2mJPMEz
P1Pt0Bm4d4QlL+yRT+SFd2lZS+pCgNMsD1W/YpRPEwOWvG6b32690r2jZ47soMZo
9wGzjb/7OMg0LOL+bSf63kpaSHSXndS5z5rexMdbBYUsLA9e+KXBdQOS+UTo7WTB
EMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6/I5IhlJH7aGhyxX
FvUK+DWNmoudF8NAco9/h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXp
oQIDAQAB
-----END PUBLIC KEY-----";

struct Harness {
    runtime: tokio::runtime::Runtime,
    verifier: Authenticator,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let vars = [
            ("JWT_SECRET", "fuzzing-secret-that-is-at-least-32-bytes"),
            ("JWT_PUBLIC_KEY", PUBLIC_KEY),
            ("JWT_ALGORITHMS", "HS256,HS384,HS512,RS256,PS256,ES256,EdDSA"),
            ("JWT_AUDIENCE", "api"),
            ("JWT_ISSUER", "joe"),
            ("TOKEN_CACHE_SIZE", "64"),
        ];
        let verifier = AuthenticatorBuilder::from_lookup(|k| {
            vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        })
        .and_then(|builder| builder.revocations(|_: &str| false).build())
        .expect("fuzz configuration");
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        Harness { runtime, verifier }
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = std::str::from_utf8(data) {
        let h = harness();
        let _ = h.runtime.block_on(h.verifier.verify(token));
    }
});
