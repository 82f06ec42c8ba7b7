//! The HTTP surface: every route in one place, the request guard in front of them all, and the state the
//! handlers share.
//!
//! - [`guard`]: host allowlist, same-origin checks, JSON-only bodies.
//! - [`identity`]: the owner's Tailscale login, believed only from a trusted proxy.
//! - [`extract`]: JSON body and query extractors whose errors name the field.
//! - [`configs`], [`runs`], [`push`], [`health`], [`usage`], [`history`]: one module per resource, handlers named by verb.
//! - [`home`]: the page at `/` when no web app is built.
//! - [`web`]: the web app (trunk's `dist`): files, SPA fallback, cache rules, Content-Security-Policy.
//! - [`ws`]: the live stream.
//! - [`trace`]: a span per request, and the one log line of its answer (failures with their detail).

pub mod configs;
pub mod extract;
pub mod guard;
pub mod health;
pub mod history;
pub mod home;
pub mod identity;
pub mod push;
pub mod runs;
pub mod trace;
pub mod usage;
pub mod web;
pub mod ws;

use std::sync::Arc;

use agentfarm_shared::api::{ServerInfo, routes};
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::routing::{delete, get, post};

use crate::service::Farm;
pub use guard::RequestPolicy;
pub use identity::IdentityPolicy;

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// What handlers share; each asks only for the part it needs (`State<Arc<Farm>>`, …).
#[derive(Clone, FromRef)]
pub struct AppState {
    /// The service.
    pub farm: Arc<Farm>,
    /// Which hosts and origins may talk to us.
    pub policy: Arc<RequestPolicy>,
    /// Whose requests are served.
    pub identity: Arc<IdentityPolicy>,
    /// Facts for `/api/info`.
    pub info: Arc<ServerInfo>,
    /// Web Push.
    pub push: Arc<crate::push::Push>,
    /// The cluster's checks, on the Kubernetes runtime.
    pub doctor: Option<Arc<crate::doctor::Doctor>>,
    /// The web app served at `/` and every path the API does not route; `None`: the placeholder page.
    #[from_ref(skip)]
    pub web: Option<Arc<web::WebApp>>,
}

/// The whole application: the request's span first, then the request guard, then the identity check, then
/// the route. Serve it with `ConnectInfo<SocketAddr>`, or no peer is trusted with identity headers.
pub fn router(state: AppState) -> Router {
    let app = match &state.web {
        Some(web) => Router::new().fallback_service(web::router(Arc::clone(web))),
        None => Router::new()
            .route("/", get(home::page))
            .fallback(health::not_found),
    };
    let app = app
        .route(routes::HEALTHZ, get(health::healthz))
        .route(routes::READYZ, get(health::readyz))
        .route(routes::INFO, get(health::info))
        .route(routes::DOCTOR, get(health::doctor))
        .route(routes::USAGE, get(usage::window))
        .route(routes::HISTORY, get(history::history))
        .route(routes::CONFIGS, get(configs::list).post(configs::create))
        .route(
            routes::CONFIG,
            get(configs::get).put(configs::update).delete(configs::delete),
        )
        .route(routes::CONFIG_VERSIONS, get(configs::versions))
        .route(routes::RUNS, get(runs::list).post(runs::launch))
        .route(routes::RUN, get(runs::get).delete(runs::delete))
        .route(routes::RUN_STOP, post(runs::stop))
        .route(routes::RUN_MESSAGES, post(runs::send))
        .route(routes::RUN_LOGS, get(runs::logs))
        .route(routes::PUSH_KEY, get(push::key))
        .route(routes::PUSH_SUBSCRIPTIONS, get(push::list).post(push::subscribe))
        .route(routes::PUSH_SUBSCRIPTION, delete(push::remove))
        .route(routes::PUSH_TEST, post(push::test))
        .route(routes::WS, get(ws::upgrade))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state.identity),
            identity::check,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state.policy),
            guard::check,
        ));
    trace::traced(app).with_state(state)
}
