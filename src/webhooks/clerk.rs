#![allow(missing_docs)]
//! TEMPORARY STUB (replaced by the store branch).
/// Stub.
pub fn decode_signing_secret(s: &str) -> Result<Vec<u8>, String> {
    Ok(s.as_bytes().to_vec())
}
/// Stub.
#[derive(Clone)]
pub struct WebhookState {
    pub secret: Vec<u8>,
    pub store: crate::store::Store,
    pub revocations: crate::store::revocations::RevocationSet,
}
/// Stub.
pub fn configure(_state: WebhookState) -> impl FnOnce(&mut actix_web::web::ServiceConfig) {
    |_cfg| {}
}
