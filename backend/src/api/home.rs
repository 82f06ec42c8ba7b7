//! The page at `/` when no web app is served (no `--web-dir`): what this server is, which runtime it uses,
//! where the API is. Static HTML (no script, no style), under a Content-Security-Policy that allows nothing
//! else.

use std::sync::Arc;

use agentfarm_shared::api::{ServerInfo, routes};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

/// `GET /`.
pub async fn page(State(info): State<Arc<ServerInfo>>) -> impl IntoResponse {
    let isolation = if info.runtime.isolated {
        "isolated"
    } else {
        "NOT isolated"
    };
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>agentfarm</title></head>\
         <body><h1>agentfarm {version}</h1>\
         <p>Runtime: <strong>{kind}</strong> ({isolation}). {description}</p>\
         <p>At most {max_running} agents run at once.</p>\
         <p>The web app is not being served: build it with <code>cargo xtask web</code> and start the server with <code>--web-dir frontend/dist</code>. The JSON API: \
         <a href=\"{info_route}\">{info_route}</a>, <a href=\"{configs}\">{configs}</a>, <a href=\"{runs}\">{runs}</a>; \
         live updates on the WebSocket <code>{ws}</code>.</p></body></html>\n",
        version = info.version,
        kind = info.runtime.kind,
        description = info.runtime.description,
        max_running = info.max_running,
        info_route = routes::INFO,
        configs = routes::CONFIGS,
        runs = routes::RUNS,
        ws = routes::WS,
    );
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
}
