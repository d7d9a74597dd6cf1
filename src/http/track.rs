//! Request metrics: count and duration by route template, method and status.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use crate::telemetry::{Metrics, RouteLabels, RouteTimeLabels};

/// Times and counts one request under its route template (never its raw path).
pub(super) async fn track(
    State(metrics): State<Arc<Metrics>>,
    matched: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let route = matched.map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = method_label(request.method()).to_owned();
    let started = Instant::now();

    let response = next.run(request).await;

    let timing = RouteTimeLabels {
        route: route.clone(),
        method: method.clone(),
    };
    metrics
        .http_duration
        .get_or_create(&timing)
        .observe(started.elapsed().as_secs_f64());
    let counted = RouteLabels {
        route,
        method,
        status: response.status().as_u16().to_string(),
    };
    metrics.http_requests.get_or_create(&counted).inc();
    response
}

/// The method as a label; anything unusual is `other`, to keep labels bounded.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
