//! The proxied WebSockets of this replica, by session and by user, so that a socket
//! ends with the session that opened it.
//!
//! A socket is registered when its tunnel opens and removed when it closes, so the
//! registry holds the open sockets and nothing else; plain HTTP requests never touch
//! it. A revocation (a Clerk webhook on this replica, or one pushed from another
//! through the revocation set), a deleted user, `GATEWAY_WS_MAX_SECS` or the shutdown
//! tell the socket's tunnel how it must end; the tunnel ([`super::ws`]) then closes
//! both sides at the next frame boundary.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use tokio::sync::watch;

use crate::server::metrics::Metrics;
use crate::server::store::RevocationSet;

/// Why a socket was closed by keygate rather than by one of its ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Its session was revoked, or its user deleted.
    Revoked,
    /// It was open for `GATEWAY_WS_MAX_SECS`.
    MaxAge,
    /// keygate is shutting down.
    Shutdown,
}

impl Ending {
    /// Every reason of `keygate_websockets_closed_total`.
    pub const LABELS: [&'static str; 5] = ["client", "upstream", "revoked", "max_age", "shutdown"];

    /// The close frame's status code (RFC 6455 §7.4.1): 1008 (policy violation) for an
    /// ended session, 1001 (going away) for a shutdown.
    pub fn code(self) -> u16 {
        match self {
            Ending::Revoked | Ending::MaxAge => 1008,
            Ending::Shutdown => 1001,
        }
    }

    /// The close frame's reason.
    pub fn reason(self) -> &'static str {
        match self {
            Ending::Revoked => "session revoked",
            Ending::MaxAge => "session expired",
            Ending::Shutdown => "server shutting down",
        }
    }

    /// The metric's label.
    pub fn label(self) -> &'static str {
        match self {
            Ending::Revoked => "revoked",
            Ending::MaxAge => "max_age",
            Ending::Shutdown => "shutdown",
        }
    }
}

type Signal = Arc<watch::Sender<Option<Ending>>>;

#[derive(Default)]
struct Registry {
    next: u64,
    signals: HashMap<u64, Signal>,
    by_session: HashMap<Box<str>, Vec<u64>>,
    by_user: HashMap<Box<str>, Vec<u64>>,
}

impl Registry {
    fn end_session(&self, session: &str) {
        for id in self.by_session.get(session).into_iter().flatten() {
            if let Some(signal) = self.signals.get(id) {
                end(signal, Ending::Revoked);
            }
        }
    }
}

fn lock(registry: &Mutex<Registry>) -> MutexGuard<'_, Registry> {
    // Every change is a few map operations that leave the maps consistent; a poisoned
    // lock is safe to use.
    registry.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The open sockets of this replica; cheap to clone (clones share the registry).
#[derive(Clone)]
pub struct Sockets {
    inner: Arc<Mutex<Registry>>,
    metrics: Metrics,
    revocations: RevocationSet,
}

impl std::fmt::Debug for Sockets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sockets")
            .field("open", &self.registry().signals.len())
            .finish()
    }
}

/// Sets the ending of a socket, unless it already has one: the first reason wins.
fn end(signal: &watch::Sender<Option<Ending>>, ending: Ending) {
    signal.send_if_modified(|current| {
        if current.is_none() {
            *current = Some(ending);
            true
        } else {
            false
        }
    });
}

impl Sockets {
    /// An empty registry reporting to `metrics`, for the sessions `revocations` holds.
    pub fn new(metrics: Metrics, revocations: RevocationSet) -> Sockets {
        Sockets {
            inner: Arc::new(Mutex::new(Registry::default())),
            metrics,
            revocations,
        }
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        lock(&self.inner)
    }

    /// The revocation set's hook: ends a revoked session's sockets. It holds the
    /// registry weakly, since the registry holds the set: neither keeps the other alive.
    pub fn session_revoker(&self) -> impl Fn(&str) + Send + Sync + 'static {
        let registry: Weak<Mutex<Registry>> = Arc::downgrade(&self.inner);
        move |session| {
            if let Some(registry) = registry.upgrade() {
                lock(&registry).end_session(session);
            }
        }
    }

    /// Registers a socket opened by `session` of `user` (both `None` for an anonymous
    /// caller of a public route); the registration ends when the returned value drops.
    pub fn register(&self, session: Option<&str>, user: Option<&str>) -> Registration {
        let (sender, receiver) = watch::channel(None);
        let signal = Arc::new(sender);
        let mut registry = self.registry();
        let id = registry.next;
        registry.next += 1;
        registry.signals.insert(id, signal.clone());
        if let Some(session) = session {
            registry
                .by_session
                .entry(session.into())
                .or_default()
                .push(id);
        }
        if let Some(user) = user {
            registry.by_user.entry(user.into()).or_default().push(id);
        }
        drop(registry);
        // A session revoked between its handshake's authentication and this moment:
        // the revocation's hook ran before the socket was here to be found, but the
        // set already holds the session (the hook runs after the set changes).
        if session.is_some_and(|session| self.revocations.is_revoked(session)) {
            end(&signal, Ending::Revoked);
        }
        self.metrics.websocket_opened();
        Registration {
            sockets: self.clone(),
            id,
            session: session.map(Into::into),
            user: user.map(Into::into),
            signal,
            receiver,
            closed_by: None,
        }
    }

    /// Ends the sockets of a deleted user.
    pub fn revoke_user(&self, user: &str) {
        let registry = self.registry();
        for id in registry.by_user.get(user).into_iter().flatten() {
            if let Some(signal) = registry.signals.get(id) {
                end(signal, Ending::Revoked);
            }
        }
    }

    /// Ends every socket (the shutdown).
    pub fn end_all(&self, ending: Ending) {
        for signal in self.registry().signals.values() {
            end(signal, ending);
        }
    }

    /// How many sockets are open.
    pub fn len(&self) -> usize {
        self.registry().signals.len()
    }

    /// Whether no socket is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One open socket's place in the registry; dropping it removes the socket and counts
/// its closing.
pub struct Registration {
    sockets: Sockets,
    id: u64,
    session: Option<Box<str>>,
    user: Option<Box<str>>,
    signal: Signal,
    receiver: watch::Receiver<Option<Ending>>,
    closed_by: Option<&'static str>,
}

impl Registration {
    /// A receiver of how the socket must end.
    pub fn ending(&self) -> watch::Receiver<Option<Ending>> {
        self.receiver.clone()
    }

    /// Ends this socket (its maximum age passed).
    pub fn end(&self, ending: Ending) {
        end(&self.signal, ending);
    }

    /// Records which end closed the socket when keygate did not (`client` or
    /// `upstream`); the first one recorded counts.
    pub fn closed_by(&mut self, end: &'static str) {
        self.closed_by.get_or_insert(end);
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut guard = self.sockets.registry();
        let registry = &mut *guard;
        registry.signals.remove(&self.id);
        let id = self.id;
        for (index, key) in [
            (&mut registry.by_session, &self.session),
            (&mut registry.by_user, &self.user),
        ]
        .into_iter()
        .filter_map(|(index, key)| key.as_deref().map(|key| (index, key)))
        {
            if let Some(ids) = index.get_mut(key) {
                ids.retain(|other| *other != id);
                if ids.is_empty() {
                    index.remove(key);
                }
            }
        }
        drop(guard);
        let reason = match *self.signal.borrow() {
            Some(ending) => ending.label(),
            None => self.closed_by.unwrap_or("client"),
        };
        self.sockets.metrics.websocket_closed(reason);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_revocation_ends_the_sessions_sockets_only_and_the_registry_empties() {
        let revocations = RevocationSet::default();
        let sockets = Sockets::new(Metrics::new().unwrap(), revocations.clone());
        let a1 = sockets.register(Some("sess_a"), Some("user_1"));
        let a2 = sockets.register(Some("sess_a"), Some("user_1"));
        let b = sockets.register(Some("sess_b"), Some("user_2"));
        let anonymous = sockets.register(None, None);
        let revoker = sockets.session_revoker();
        revoker("sess_a");
        assert_eq!(*a1.ending().borrow(), Some(Ending::Revoked));
        assert_eq!(*a2.ending().borrow(), Some(Ending::Revoked));
        assert_eq!(*b.ending().borrow(), None);
        sockets.revoke_user("user_2");
        assert_eq!(*b.ending().borrow(), Some(Ending::Revoked));
        // The first ending wins.
        sockets.end_all(Ending::Shutdown);
        assert_eq!(*b.ending().borrow(), Some(Ending::Revoked));
        assert_eq!(*anonymous.ending().borrow(), Some(Ending::Shutdown));
        assert_eq!(sockets.len(), 4);
        drop((a1, a2, b, anonymous));
        {
            let registry = sockets.registry();
            assert!(registry.signals.is_empty());
            assert!(registry.by_session.is_empty() && registry.by_user.is_empty());
        }
        // Revoked before the socket was registered: it ends as it opens.
        revocations.insert("sess_late", i64::MAX);
        let late = sockets.register(Some("sess_late"), Some("user_3"));
        assert_eq!(*late.ending().borrow(), Some(Ending::Revoked));
    }
}
