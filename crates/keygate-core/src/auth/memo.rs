//! A slot for one value an application derives from a verified token, kept with the
//! token's verification result in the verified-token cache.
//!
//! Whatever an application computes from a caller's claims on every request — a header
//! it forwards, a signed assertion, a lookup key — can be computed once per token
//! instead: a repeated token is a cache hit that returns the same verification result,
//! and with it the same slot. The core never looks inside.

use std::any::Any;
use std::sync::OnceLock;

/// One value of the application's choosing per verified token. See
/// [`AuthUser::memo`](super::AuthUser::memo).
#[derive(Default)]
pub struct Memo(OnceLock<Box<dyn Any + Send + Sync>>);

impl Memo {
    /// The value of type `T`, made by `init` on first use; `None` when the slot
    /// already holds a value of another type.
    pub(crate) fn get_or_init<T: Any + Send + Sync>(&self, init: impl FnOnce() -> T) -> Option<&T> {
        self.0.get_or_init(|| Box::new(init())).downcast_ref()
    }
}

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // What the application keeps may be a secret or a credential: never printed.
        f.debug_struct("Memo")
            .field("filled", &self.0.get().is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_type_keeps_the_slot() {
        let memo = Memo::default();
        assert_eq!(memo.get_or_init(|| 7_u32), Some(&7));
        assert_eq!(memo.get_or_init(|| 8_u32), Some(&7));
        assert_eq!(memo.get_or_init(|| "other type"), None);
        assert_eq!(format!("{memo:?}"), "Memo { filled: true }");
    }
}
