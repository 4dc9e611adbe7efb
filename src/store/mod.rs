#![allow(missing_docs)]
//! TEMPORARY STUB (replaced by the store branch).
pub mod revocations;
pub mod users;
/// Stub.
#[derive(Clone)]
pub struct Store;
/// Stub.
#[derive(Debug, thiserror::Error)]
#[error("stub")]
pub struct StoreError;
/// Stub.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Profile {
    pub user_id: String,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub image_url: Option<String>,
}
impl Store {
    /// Stub.
    pub async fn connect(_url: &str) -> Result<Store, StoreError> {
        Ok(Store)
    }
    /// Stub.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Stub.
    pub async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Stub.
    pub async fn profile(&self, _u: &str) -> Result<Option<Profile>, StoreError> {
        Ok(None)
    }
}
