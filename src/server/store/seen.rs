//! The just-in-time user row as the core's [`Observer`]: every authenticated request
//! tells the [`UserTracker`] that its user was seen, at the injected clock's time.
//!
//! Kept apart from the metrics so that each report has one job; the application
//! joins both into the one observer the core takes.

use super::users::UserTracker;
use crate::clock::SharedClock;
use crate::{AuthError, AuthUser, Observer};

/// Records every authenticated user in the database (through the tracker's
/// background writer, so the request never waits on it).
pub(crate) struct SeenUsers {
    users: UserTracker,
    clock: SharedClock,
}

impl SeenUsers {
    /// Users are written through `users`, `last_seen_at` read from `clock`.
    pub(crate) fn new(users: UserTracker, clock: SharedClock) -> SeenUsers {
        SeenUsers { users, clock }
    }
}

impl Observer for SeenUsers {
    fn authenticated(&self, outcome: Result<&AuthUser, &AuthError>) {
        if let Ok(user) = outcome {
            let now = i64::try_from(self.clock.unix_secs()).unwrap_or(i64::MAX);
            self.users.seen(user.user_id(), now);
        }
    }
}
