//! One span per request (its method and matched route, never the raw path with its ids) and one event when
//! it is answered (status, latency): the one place a failed request is logged, with the [`Failure`] its
//! response carries.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::MatchedPath;
use axum::http::{Request, Response};
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::error::Failure;

/// `router` with a span around each request and its answer logged: server errors at `error` (a proxy's
/// upstream failing at `warn`), everything else at `debug`.
pub fn traced<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router.layer(
        TraceLayer::new_for_http()
            .make_span_with(request_span)
            .on_request(())
            .on_response(log_response)
            // Logged by `log_response` already; the default would log server errors a second time.
            .on_failure(()),
    )
}

fn request_span(request: &Request<Body>) -> Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    tracing::info_span!("request", method = %request.method(), route)
}

fn log_response(response: &Response<Body>, latency: Duration, _span: &Span) {
    let status = response.status();
    let latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
    let failure = response.extensions().get::<Failure>();
    let (code, detail) = failure.map_or(("", ""), |failure| (failure.code, failure.detail.as_str()));
    if status == axum::http::StatusCode::BAD_GATEWAY {
        tracing::warn!(
            status = status.as_u16(),
            latency_ms,
            code,
            detail,
            "request failed upstream"
        );
    } else if status.is_server_error() {
        tracing::error!(
            status = status.as_u16(),
            latency_ms,
            code,
            detail,
            "request failed"
        );
    } else {
        tracing::debug!(
            status = status.as_u16(),
            latency_ms,
            code,
            detail,
            "request answered"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::routing::get;
    use tower::ServiceExt;
    use tracing::field::{Field, Visit};
    use tracing::span::Attributes;
    use tracing::{Event, Id, Level, Subscriber};
    use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

    use super::*;
    use crate::error::AppError;
    use crate::store::StoreError;

    /// What a test subscriber saw: each event's level and fields, and each span's fields.
    #[derive(Default, Clone)]
    struct Seen {
        events: Arc<Mutex<Vec<(Level, String)>>>,
        spans: Arc<Mutex<Vec<String>>>,
    }

    /// Writes fields as `name=value `.
    struct Fields<'a>(&'a mut String);

    impl Visit for Fields<'_> {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            self.0.push_str(&format!("{}={value:?} ", field.name()));
        }
        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.push_str(&format!("{}={value} ", field.name()));
        }
    }

    impl<S: Subscriber> Layer<S> for Seen {
        fn on_new_span(&self, attributes: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
            let mut fields = String::new();
            attributes.record(&mut Fields(&mut fields));
            self.spans.lock().unwrap().push(fields);
        }
        fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
            let mut fields = String::new();
            event.record(&mut Fields(&mut fields));
            self.events
                .lock()
                .unwrap()
                .push((*event.metadata().level(), fields));
        }
    }

    async fn answer(path: &str) -> axum::http::StatusCode {
        let router = traced(
            Router::new()
                .route(
                    "/runs/{id}",
                    get(|| async {
                        Err::<(), _>(AppError::Store(StoreError::Corrupt("disk on fire".into())))
                    }),
                )
                .route(
                    "/configs/{id}",
                    get(|| async { AppError::NotFound("config x".into()) }),
                ),
        );
        let request = Request::get(path).body(Body::empty()).unwrap();
        router.oneshot(request).await.unwrap().status()
    }

    #[tokio::test]
    async fn a_server_error_is_logged_once_with_its_detail_in_a_span_of_its_route() {
        let seen = Seen::default();
        let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(seen.clone()));

        assert_eq!(answer("/runs/01abc").await, 500);
        let events = seen.events.lock().unwrap().clone();
        let errors: Vec<&String> = events
            .iter()
            .filter(|(level, _)| *level == Level::ERROR)
            .map(|(_, fields)| fields)
            .collect();
        assert_eq!(errors.len(), 1, "{events:?}");
        assert!(errors[0].contains("status=500"), "{}", errors[0]);
        assert!(errors[0].contains("code=internal"), "{}", errors[0]);
        assert!(errors[0].contains("disk on fire"), "{}", errors[0]);
        assert!(errors[0].contains("latency_ms="), "{}", errors[0]);
        let spans = seen.spans.lock().unwrap().clone();
        assert_eq!(spans, ["method=GET route=/runs/{id} "], "the route, not the id");
    }

    #[tokio::test]
    async fn a_client_error_is_no_error_in_the_log() {
        let seen = Seen::default();
        let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(seen.clone()));

        assert_eq!(answer("/configs/x").await, 404);
        assert_eq!(answer("/nowhere").await, 404);
        let events = seen.events.lock().unwrap().clone();
        assert!(
            events.iter().all(|(level, _)| *level == Level::DEBUG),
            "{events:?}"
        );
        assert!(events[0].1.contains("code=not_found"), "{events:?}");
        let spans = seen.spans.lock().unwrap().clone();
        assert_eq!(spans[1], "method=GET route=unmatched ");
    }
}
