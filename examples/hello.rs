//! `hello`: the smallest Actix-web service, the HTTP ceiling `bench/load.sh` compares
//! keygate against (same runtime, same worker count, no authentication).
//!
//! With `HELLO_VERIFY=1` every request also performs one bare RSA-2048 signature
//! verification (aws-lc-rs, the key parsed per call as in the criterion floor): the
//! "hello world + one verify" that keygate's uncached path is measured against, under
//! the same request rate and so the same per-request kernel costs.
//!
//! ```sh
//! HELLO_ADDR=127.0.0.1:3001 WORKERS=1 cargo run --release --example hello
//! ```

use std::sync::Arc;

use actix_web::{App, HttpResponse, HttpServer, web};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{
    KeyPair as _, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, UnparsedPublicKey,
};

/// A message, its RS256 signature and the PKCS#1 public key bytes that verify it.
struct Signed {
    message: Vec<u8>,
    signature: Vec<u8>,
    public_key: Vec<u8>,
}

fn signed() -> std::io::Result<Signed> {
    let fail = |what: &str| std::io::Error::other(format!("hello: cannot {what}"));
    let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| fail("generate a key"))?;
    let message = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyXzEifQ".to_vec();
    let mut signature = vec![0; pair.public_modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        &message,
        &mut signature,
    )
    .map_err(|_| fail("sign"))?;
    let public_key = pair
        .public_key()
        .as_der()
        .map_err(|_| fail("export the public key"))?
        .as_ref()
        .to_vec();
    Ok(Signed {
        message,
        signature,
        public_key,
    })
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::var("HELLO_ADDR").unwrap_or_else(|_| "127.0.0.1:3001".into());
    let workers = std::env::var("WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(1);
    let verify = std::env::var("HELLO_VERIFY").is_ok_and(|v| v == "1");
    let signed = Arc::new(signed()?);
    HttpServer::new(move || {
        let signed = signed.clone();
        App::new().route(
            "/",
            web::get().to(move || {
                let signed = signed.clone();
                async move {
                    if verify
                        && UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &signed.public_key)
                            .verify(&signed.message, &signed.signature)
                            .is_err()
                    {
                        return HttpResponse::InternalServerError().finish();
                    }
                    HttpResponse::Ok()
                        .content_type("application/json")
                        .body(r#"{"message":"Hello, world"}"#)
                }
            }),
        )
    })
    .workers(workers)
    .bind(addr)?
    .run()
    .await
}
