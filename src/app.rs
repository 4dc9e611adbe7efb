//! The one place the service is assembled: `main`, `keygate dev` and every test build
//! the app with [`Keygate::build`] and serve it with [`Keygate::server`].

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};

use crate::auth::{AuthState, Verifier};
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::keys::rotation;
use crate::metrics::Metrics;
use crate::routes::{self, ServiceState};
use crate::store::revocations::{RevocationSet, RevocationSync, spawn_revocation_sync};
use crate::store::users::UserTracker;
use crate::store::{Store, StoreError, unix_now};
use crate::webhooks::clerk::{self as clerk_webhooks, WebhookState};

/// How often each process reloads revoked sessions from the database.
pub const REVOCATION_SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// How long a graceful shutdown waits for in-flight requests.
pub const SHUTDOWN_TIMEOUT_SECS: u64 = 30;
/// After a shutdown signal, how long the service keeps serving with `/readyz` at 503
/// before it stops accepting, so load balancers take it out of rotation first.
pub const DRAIN_DELAY: Duration = Duration::from_secs(2);

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Database(#[from] StoreError),
    /// The metrics registry refused a metric.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// Extra routes mounted next to the standard ones (the development issuer).
pub type ExtraRoutes = Arc<dyn Fn(&mut web::ServiceConfig) + Send + Sync>;

/// An assembled keygate: state shared by all workers, and the background tasks it owns.
pub struct Keygate {
    /// The settings it was built from.
    pub settings: Settings,
    /// The extractor's state.
    pub auth: web::Data<AuthState>,
    /// The routes' state.
    pub service: web::Data<ServiceState>,
    /// The in-memory revocation set.
    pub revocations: RevocationSet,
    webhooks: Option<WebhookState>,
    _revocation_sync: RevocationSync,
}

impl Keygate {
    /// Opens and migrates the database, starts the key-rotation actor (when a JWKS is
    /// configured) and the revocation sync. Must run inside an actix system.
    pub async fn build(settings: Settings, clock: SharedClock) -> Result<Keygate, StartError> {
        let metrics = Metrics::new()?;
        let store = Store::connect(&settings.database_url).await?;
        store.migrate().await?;
        let revocations = RevocationSet::default();
        // Loaded before the server can accept a request: the sync loop's first
        // reload runs in the background, and until it lands a restarted replica
        // would accept tokens of sessions revoked before the restart.
        revocations.reload(&store, unix_now()).await?;
        let revocation_sync =
            spawn_revocation_sync(store.clone(), revocations.clone(), REVOCATION_SYNC_INTERVAL);
        let keys = rotation::start_for(&settings, clock.clone(), metrics.clone());
        let verifier = Verifier::new(
            &settings,
            keys.clone(),
            revocations.clone(),
            clock.clone(),
            metrics.clone(),
        );
        let auth = web::Data::new(AuthState {
            verifier,
            cookie_name: settings.cookie_name.clone(),
            users: Some(UserTracker::spawn(store.clone())),
            metrics: metrics.clone(),
            clock,
        });
        let service = web::Data::new(ServiceState {
            keys,
            store: store.clone(),
            metrics,
            draining: Arc::new(AtomicBool::new(false)),
        });
        let webhooks = settings.webhook_secret.clone().map(|secret| WebhookState {
            secret,
            store,
            revocations: revocations.clone(),
        });
        Ok(Keygate {
            settings,
            auth,
            service,
            revocations,
            webhooks,
            _revocation_sync: revocation_sync,
        })
    }

    /// The HTTP server on `listener`, with optional extra routes; not yet running.
    pub fn server(
        &self,
        listener: TcpListener,
        extra: Option<ExtraRoutes>,
    ) -> Result<Server, StartError> {
        let auth = self.auth.clone();
        let service = self.service.clone();
        let webhooks = self.webhooks.clone();
        let addr = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let server = HttpServer::new(move || {
            let webhooks = webhooks.clone();
            let extra = extra.clone();
            App::new()
                .app_data(auth.clone())
                .app_data(service.clone())
                .wrap(from_fn(routes::record_duration))
                .configure(routes::configure)
                .configure(move |cfg| {
                    if let Some(state) = webhooks {
                        clerk_webhooks::configure(state)(cfg);
                    }
                    if let Some(extra) = extra {
                        extra(cfg);
                    }
                })
        })
        .workers(self.settings.workers)
        // Bounds on slow or abusive clients, set explicitly rather than inherited.
        .client_request_timeout(Duration::from_secs(5))
        .client_disconnect_timeout(Duration::from_secs(1))
        .keep_alive(Duration::from_secs(30))
        .max_connections(25_000)
        .backlog(1024)
        .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS)
        // Signals are handled by `run`, which marks the service as draining first.
        .disable_signals()
        .listen(listener)
        .map_err(|source| StartError::Bind { addr, source })?
        .run();
        Ok(server)
    }

    /// Whether shutdown has begun.
    pub fn draining(&self) -> Arc<AtomicBool> {
        self.service.draining.clone()
    }
}

/// Binds the configured address.
pub fn bind(settings: &Settings) -> Result<TcpListener, StartError> {
    TcpListener::bind(settings.bind_addr).map_err(|source| StartError::Bind {
        addr: settings.bind_addr.to_string(),
        source,
    })
}

/// Serves until SIGTERM or SIGINT, then drains in-flight requests (answering `/readyz`
/// with 503 meanwhile) and returns.
pub async fn run(
    keygate: Keygate,
    listener: TcpListener,
    extra: Option<ExtraRoutes>,
) -> Result<(), StartError> {
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let server = keygate.server(listener, extra)?;
    let handle = server.handle();
    let draining = keygate.draining();
    actix_rt::spawn(async move {
        shutdown_signal().await;
        drain(draining, handle).await;
    });
    log::info!("keygate listening on http://{addr}");
    server
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

async fn drain(draining: Arc<AtomicBool>, handle: ServerHandle) {
    draining.store(true, Ordering::SeqCst);
    log::info!(
        "shutdown requested: /readyz now 503, stopping in {}s, then draining in-flight requests (up to {SHUTDOWN_TIMEOUT_SECS}s)",
        DRAIN_DELAY.as_secs()
    );
    tokio::time::sleep(DRAIN_DELAY).await;
    handle.stop(true).await;
    log::info!("shutdown complete");
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(e) => {
                log::warn!("cannot listen for SIGTERM ({e}); only Ctrl-C stops the service");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
