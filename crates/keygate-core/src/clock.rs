//! Time, injected: everything that depends on the current time or waits for a moment
//! (token expiry, the JWKS schedule, cooldown, backoff, negative cache) asks a
//! [`Clock`], so tests move time with a [`ManualClock`] instead of sleeping.
//!
//! Network timeouts (a JWKS fetch, the bound on a request's wait) are not logical
//! time and stay on Tokio's timer.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::oneshot;

/// A future that completes once a clock has moved past a moment.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A source of the current time and of timers on the same time line.
pub trait Clock: Send + Sync + 'static {
    /// Time since the Unix epoch.
    fn now(&self) -> Duration;

    /// Completes once `duration` has passed on this clock.
    fn sleep(&self, duration: Duration) -> Sleep;

    /// Whole seconds since the Unix epoch.
    fn unix_secs(&self) -> u64 {
        self.now().as_secs()
    }
}

/// The clock shared by verification, rotation and the server.
pub type SharedClock = Arc<dyn Clock>;

/// The system's wall clock with Tokio's timer.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        // A clock before 1970 is treated as the epoch rather than a failure.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// The system clock as a [`SharedClock`].
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

/// A clock that moves only when told to; its timers fire when it passes them.
///
/// ```
/// # use keygate_core as keygate;
/// use std::time::Duration;
/// use keygate::clock::{Clock, ManualClock};
///
/// let clock = ManualClock::new(1_000);
/// clock.advance(Duration::from_secs(30));
/// assert_eq!(clock.unix_secs(), 1_030);
/// ```
#[derive(Debug, Default)]
pub struct ManualClock {
    state: Mutex<ManualState>,
}

#[derive(Debug, Default)]
struct ManualState {
    now: Duration,
    /// Pending timers by deadline; the second key keeps equal deadlines apart.
    timers: BTreeMap<(Duration, u64), oneshot::Sender<()>>,
    next_id: u64,
}

impl ManualClock {
    /// A clock standing at `unix_secs`.
    pub fn new(unix_secs: u64) -> Arc<ManualClock> {
        let clock = ManualClock::default();
        clock.lock().now = Duration::from_secs(unix_secs);
        Arc::new(clock)
    }

    /// Moves the clock forward and fires every timer it passes.
    pub fn advance(&self, by: Duration) {
        let due = {
            let mut state = self.lock();
            state.now += by;
            let now = state.now;
            let later = state.timers.split_off(&(now, u64::MAX));
            std::mem::replace(&mut state.timers, later)
        };
        for (_, timer) in due {
            // A timer whose future was dropped is simply gone.
            let _ = timer.send(());
        }
    }

    /// Moves the clock forward by whole seconds.
    pub fn advance_secs(&self, secs: u64) {
        self.advance(Duration::from_secs(secs));
    }

    /// Timers waiting for the clock to move.
    pub fn pending_timers(&self) -> usize {
        self.lock().timers.len()
    }

    /// The earliest moment a pending timer fires, as time since the epoch.
    pub fn next_deadline(&self) -> Option<Duration> {
        self.lock()
            .timers
            .keys()
            .next()
            .map(|(deadline, _)| *deadline)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ManualState> {
        // The state is a value and a map, consistent after any panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        self.lock().now
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        let (sender, receiver) = oneshot::channel();
        {
            let mut state = self.lock();
            if duration.is_zero() {
                return Box::pin(std::future::ready(()));
            }
            let deadline = state.now + duration;
            let id = state.next_id;
            state.next_id += 1;
            state.timers.insert((deadline, id), sender);
        }
        Box::pin(async move {
            // The clock dropped its timers (it was dropped): never fire.
            if receiver.await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[actix_rt::test]
    async fn manual_timers_fire_only_when_passed() {
        let clock = ManualClock::new(100);
        let mut early = clock.sleep(Duration::from_secs(5));
        let late = clock.sleep(Duration::from_secs(10));
        assert_eq!(clock.pending_timers(), 2);

        clock.advance(Duration::from_secs(4));
        assert!(futures_util::FutureExt::now_or_never(&mut early).is_none());
        clock.advance(Duration::from_secs(1));
        early.await;
        assert_eq!(clock.pending_timers(), 1);
        clock.advance(Duration::from_secs(60));
        late.await;
        assert_eq!(clock.unix_secs(), 165);
    }
}
