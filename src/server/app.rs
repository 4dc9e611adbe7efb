//! The one place the service is assembled: `keygate serve`, `keygate dev` and every test
//! build it with [`Application::build`] and serve it with
//! [`Application::run_until_stopped`].
//!
//! The service is a user of the library like any embedding app: it builds an
//! [`Authenticator`] from the configuration, with its own observer
//! (Prometheus metrics and just-in-time users) and revocation set, and registers it.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer, web};
use tokio::task::JoinHandle;

use super::config::Config;
use super::dev::DevIssuer;
use super::gateway::identity_token::{self, IdentityTokens};
use super::gateway::proxy::{self, Upstream};
use super::gateway::sockets::{Ending, Sockets};
use super::gateway::{ForwardAuth, Gateway, forward_auth};
use super::metrics::Metrics;
use super::observer::Both;
use super::request_id::FrontLayer;
use super::routes::{self, AppState};
use super::store::revocations::{RevocationSet, spawn_revocation_sync};
use super::store::seen::SeenUsers;
use super::store::users::UserTracker;
use super::store::{Store, StoreError};
use super::telemetry::span::RequestLayer;
use super::webhooks::clerk::{self as clerk_webhooks, WebhookState};
use crate::{Authenticator, ConfigError};

/// How long a graceful shutdown waits for in-flight requests.
pub const SHUTDOWN_TIMEOUT_SECS: u64 = 30;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration cannot work.
    #[error("configuration error: {0}")]
    Config(#[from] ConfigError),
    /// The database could not be opened or migrated.
    #[error(transparent)]
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
        #[source]
        source: std::io::Error,
    },
}

/// A keygate bound to its port, with its background work running; serve it with
/// [`Application::run_until_stopped`].
pub struct Application {
    port: u16,
    authenticator: Authenticator,
    server: Server,
    draining: Arc<AtomicBool>,
    drain_delay: Duration,
    background: Vec<JoinHandle<()>>,
    handle_signals: bool,
    sockets: Sockets,
}

impl Application {
    /// Binds `BIND_ADDR` and assembles everything. Must run inside an actix system.
    pub async fn build(config: Config) -> Result<Application, StartError> {
        let addr = config.server.bind_addr;
        let listener = TcpListener::bind(addr).map_err(|source| StartError::Bind {
            addr: addr.to_string(),
            source,
        })?;
        Application::build_on(config, listener, None).await
    }

    /// Assembles everything on an already bound listener, with the development issuer's
    /// routes when given (`keygate dev`). Must run inside an actix system.
    pub async fn build_on(
        config: Config,
        listener: TcpListener,
        dev: Option<Arc<DevIssuer>>,
    ) -> Result<Application, StartError> {
        let Config {
            auth,
            server,
            gateway,
            cors,
            clock,
        } = config;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: server.bind_addr.to_string(),
            source,
        })?;
        // Before anything is opened: a key setup that cannot work is a configuration
        // error, not a database one that happens to come first.
        auth.validate()?;
        let metrics = Metrics::new()?;
        let store = Store::connect(&server.database_url).await?;
        store.migrate().await?;
        let revocations = RevocationSet::default();
        let sockets = Sockets::new(metrics.clone(), revocations.clone());
        revocations.on_revoked(sockets.session_revoker());
        // Loaded before the server can accept a request: the sync loop's polls run
        // in the background, and until they caught up a restarted replica would
        // accept tokens of sessions revoked before the restart.
        let now = i64::try_from(clock.unix_secs()).unwrap_or(i64::MAX);
        revocations.load(&store, now).await?;
        let revocation_sync = spawn_revocation_sync(
            store.clone(),
            revocations.clone(),
            server.revocation_poll,
            clock.clone(),
            metrics.clone(),
        );
        let (users, user_writer) = UserTracker::spawn(store.clone());
        let authenticator = auth
            .clock(clock.clone())
            .revocations(revocations.clone())
            .observer(Both(metrics.clone(), SeenUsers::new(users, clock.clone())))
            .build()?;
        let ready_check = authenticator.clone();
        let draining = Arc::new(AtomicBool::new(false));
        let state = web::Data::new(AppState {
            authenticator: authenticator.clone(),
            store: store.clone(),
            metrics,
            draining: draining.clone(),
            readyz_database: server.readyz_database,
        });
        let webhooks = server.webhook_secret.clone().map(|secret| WebhookState {
            secret,
            store,
            revocations,
            clock: clock.clone(),
            sockets: sockets.clone(),
        });
        let metadata = authenticator
            .resource_metadata()
            .cloned()
            .map(web::Data::new);
        // The connector is made once, here, so that TLS that cannot be set up for the
        // upstream stops the start instead of a worker.
        let upstream = match gateway.upstream.clone() {
            Some(origin) => Some((
                origin,
                proxy::connector().map_err(|e| {
                    ConfigError::new(
                        "UPSTREAM_URL",
                        format!("TLS for the upstream cannot be set up: {e}"),
                    )
                })?,
            )),
            None => None,
        };
        let (upstream_timeout, max_body) = (gateway.upstream_timeout, gateway.max_body_bytes);
        let ws_max_age = gateway.ws_max_age;
        let preflight_origins = match (&cors, gateway.forward_auth_preflight) {
            (Some(cors), true) => cors.origins.clone(),
            _ => Vec::new(),
        };
        let identity = match gateway.identity {
            Some(identity) => {
                if identity.generated {
                    tracing::warn!(
                        "GATEWAY_IDENTITY_KEY is not set: identities are signed with a key made \
                         at start (kid {}), right for a single replica only; replicas must share \
                         GATEWAY_IDENTITY_KEY, and a restart changes the key",
                        identity.kid()
                    );
                }
                Some(IdentityTokens::new(identity, clock.clone())?)
            }
            None => None,
        };
        let signs_identity = identity.is_some();
        let gateway = web::Data::new(Gateway {
            identity,
            rules: gateway.rules,
            authenticator: authenticator.clone(),
            forward_claims: gateway.forward_claims,
            forward_auth: ForwardAuth {
                convention: gateway.forward_auth_headers,
                preflight_origins,
            },
        });
        let metrics = state.metrics.clone();
        let http_sockets = sockets.clone();
        let http = HttpServer::new(move || {
            let webhooks = webhooks.clone();
            let dev = dev.clone();
            let metadata = metadata.clone();
            let upstream = upstream.clone();
            let proxying = upstream.is_some();
            let owns_cors = cors.is_some();
            let app = App::new()
                .app_data(authenticator.clone())
                .app_data(state.clone())
                .app_data(gateway.clone())
                // Strips the client's X-Auth-*, opens the request span, times the
                // request and adds the resource_metadata challenge.
                .wrap(RequestLayer::new(metrics.clone(), metadata.clone()))
                // Outermost: the id exists before the request span and is on every
                // response, errors included; CORS runs inside it and outside everything
                // that can refuse a request, so that a 401 or 403 carries CORS headers;
                // preflights are answered there, before routing.
                .wrap(FrontLayer::new(cors.clone()))
                .configure(|cfg| match &upstream {
                    // keygate's own routes move under /_keygate/; the rest goes upstream.
                    Some((origin, connector)) => {
                        cfg.app_data(web::Data::new(Upstream::new(
                            origin,
                            connector.clone(),
                            upstream_timeout,
                            max_body,
                            owns_cors,
                            metrics.clone(),
                            http_sockets.clone(),
                            ws_max_age,
                        )))
                        .app_data(routes::RouteLabel("upstream"))
                        .service(web::scope("/_keygate").configure(|cfg| {
                            routes::configure_operations(
                                cfg,
                                ["/_keygate/healthz", "/_keygate/readyz", "/_keygate/metrics"],
                            );
                            if let Some(state) = webhooks.clone() {
                                clerk_webhooks::configure(state)(cfg);
                            }
                            if signs_identity {
                                cfg.service(
                                    web::resource(
                                        identity_token::PROXY_JWKS_PATH
                                            .trim_start_matches("/_keygate"),
                                    )
                                    .app_data(routes::RouteLabel(identity_token::PROXY_JWKS_PATH))
                                    .route(web::get().to(identity_token::jwks)),
                                );
                            }
                        }));
                    }
                    None => {
                        routes::configure(cfg);
                        if let Some(state) = webhooks.clone() {
                            clerk_webhooks::configure(state)(cfg);
                        }
                        if signs_identity {
                            cfg.service(
                                web::resource(identity_token::JWKS_PATH)
                                    .app_data(routes::RouteLabel(identity_token::JWKS_PATH))
                                    .route(web::get().to(identity_token::jwks)),
                            );
                        }
                        // Two resources rather than one with two patterns: a pattern set
                        // is matched as a regex set on every request, a lone static
                        // pattern by comparison.
                        cfg.service(
                            web::resource(forward_auth::PATH)
                                .app_data(routes::RouteLabel(forward_auth::PATH))
                                .to(forward_auth::forward_auth),
                        )
                        .service(
                            web::resource("/auth/{tail:.*}")
                                .app_data(routes::RouteLabel(forward_auth::PATH))
                                .to(forward_auth::forward_auth),
                        );
                    }
                })
                .configure(move |cfg| {
                    if let Some(issuer) = dev {
                        super::dev::routes::configure(issuer)(cfg);
                    }
                    if let Some(metadata) = metadata {
                        cfg.app_data(metadata.clone()).service(
                            web::resource(metadata.path().to_string())
                                .app_data(routes::RouteLabel(
                                    "/.well-known/oauth-protected-resource",
                                ))
                                .route(web::get().to(routes::oauth::document)),
                        );
                    }
                });
            if proxying {
                app.default_service(web::to(proxy::proxy))
            } else {
                app
            }
        })
        .workers(server.workers)
        // Bounds on slow or abusive clients, set explicitly rather than inherited.
        .client_request_timeout(Duration::from_secs(5))
        .client_disconnect_timeout(Duration::from_secs(1))
        .keep_alive(Duration::from_secs(30))
        .max_connections(25_000)
        .backlog(1024)
        .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS)
        // Signals are handled by `run_until_stopped`, which marks the service as draining first.
        .disable_signals()
        .listen(listener)
        .map_err(|source| StartError::Bind {
            addr: addr.to_string(),
            source,
        })?
        .run();
        tracing::info!("keygate listening on http://{addr}");
        Ok(Application {
            port: addr.port(),
            authenticator: ready_check,
            server: http,
            draining,
            drain_delay: server.shutdown_drain,
            background: vec![revocation_sync, user_writer],
            handle_signals: server.handle_signals,
            sockets,
        })
    }

    /// The port it listens on (the real one when `BIND_ADDR` asked for port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The authenticator the routes use (to wait for its keys, say).
    pub fn authenticator(&self) -> &Authenticator {
        &self.authenticator
    }

    /// A handle that stops the server (tests use it; the binary stops on signals).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until the server is stopped — by SIGTERM or SIGINT when signals are
    /// handled (then `/readyz` answers 503 for `SHUTDOWN_DRAIN_SECS` before in-flight
    /// requests drain), or through [`Application::handle`] — then ends the background
    /// work and returns.
    pub async fn run_until_stopped(self) -> Result<(), StartError> {
        let Application {
            port,
            authenticator: _,
            server,
            draining,
            drain_delay,
            background,
            handle_signals,
            sockets,
        } = self;
        if handle_signals {
            let handle = server.handle();
            actix_rt::spawn(async move {
                shutdown_signal().await;
                drain(draining, drain_delay, handle, sockets).await;
            });
        }
        let result = server.await.map_err(|source| StartError::Bind {
            addr: format!("port {port}"),
            source,
        });
        for task in background {
            task.abort();
        }
        result
    }
}

async fn drain(draining: Arc<AtomicBool>, delay: Duration, handle: ServerHandle, sockets: Sockets) {
    draining.store(true, Ordering::SeqCst);
    tracing::info!(
        "shutdown requested: /readyz now 503, stopping in {}s, then draining in-flight requests (up to {SHUTDOWN_TIMEOUT_SECS}s)",
        delay.as_secs()
    );
    tokio::time::sleep(delay).await;
    // A WebSocket never ends by itself: closed (1001) now, so that the graceful stop
    // below waits for their closing handshakes rather than its whole timeout.
    if !sockets.is_empty() {
        tracing::info!("closing {} proxied WebSocket(s) (1001)", sockets.len());
        sockets.end_all(Ending::Shutdown);
    }
    handle.stop(true).await;
    tracing::info!("shutdown complete");
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
                tracing::warn!("cannot listen for SIGTERM ({e}); only Ctrl-C stops the service");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
