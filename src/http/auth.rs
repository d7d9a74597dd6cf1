//! Authentication at the HTTP edge: every request but the health probes shows an
//! API key (as `Authorization: Bearer`, `X-API-Key`, or HTTP Basic with the key
//! as password, the Confluent REST Proxy's scheme) whose scopes cover the route.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::error::ApiError;
use super::{AppState, ClientCertificate, KeyedLimiter};
use crate::auth::Need;

/// The name of the key a request was made with; `anonymous` without keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller(pub String);

/// Lets the request through if its key covers the route, else `401` or `403`.
pub(super) async fn authorize(
    State(state): State<AppState>,
    matched: Option<MatchedPath>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let route = matched.as_ref().map_or("", MatchedPath::as_str);
    let need = need(request.method(), route, request.uri().path());
    if need == Need::Nothing {
        return Ok(next.run(request).await);
    }
    let certificate = request
        .extensions()
        .get::<ClientCertificate>()
        .and_then(|c| c.0.clone());
    let caller = if state.keys.is_empty() {
        "anonymous".to_owned()
    } else {
        let by_certificate = certificate
            .as_deref()
            .and_then(|fingerprint| state.keys.identify_certificate(fingerprint));
        let key = match by_certificate {
            Some(key) => key,
            None => {
                let secret = credentials(request.headers()).ok_or(ApiError::Unauthenticated)?;
                state
                    .keys
                    .identify(&secret)
                    .ok_or(ApiError::Unauthenticated)?
            }
        };
        if !key.allows(&need) {
            return Err(ApiError::Forbidden {
                key: key.name().to_owned(),
                need: need.to_string(),
            });
        }
        key.name().to_owned()
    };
    if let Some(limiter) = &state.rate_limiter {
        limit_rate(limiter, &caller)?;
    }
    request.extensions_mut().insert(Caller(caller));
    Ok(next.run(request).await)
}

/// Counts a request against its key's rate; `429` once the key is over it.
fn limit_rate(limiter: &KeyedLimiter, caller: &str) -> Result<(), ApiError> {
    use governor::clock::{Clock, DefaultClock};
    limiter.check_key(&caller.to_owned()).map_err(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        ApiError::RateLimited {
            retry_after: wait.as_secs().max(1),
        }
    })
}

/// What a route needs, by method and route template.
fn need(method: &Method, route: &str, path: &str) -> Need {
    match (method.as_str(), route) {
        (_, "" | "/health" | "/health/live" | "/health/ready") => Need::Nothing,
        (
            "POST",
            "/topics/{topic}"
            | "/topics/{topic}/partitions/{partition}"
            | "/v3/clusters/{cluster_id}/topics/{topic}/records"
            | "/v3/clusters/{cluster_id}/topics/{topic}/records:batch",
        ) => {
            // The topic is the path segment after `topics`.
            let topic = path.split('/').skip_while(|s| *s != "topics").nth(1);
            Need::Produce(topic.unwrap_or_default().to_owned())
        }
        ("POST", "/messages/replay" | "/messages/{message_id}/retry") => Need::Replay,
        (_, "/admin/topics" | "/admin/topics/{topic}")
        | (
            "POST" | "DELETE",
            "/v3/clusters/{cluster_id}/topics" | "/v3/clusters/{cluster_id}/topics/{topic}",
        ) => Need::Admin,
        _ => Need::Read,
    }
}

/// The secret the request presents, from whichever scheme it used.
fn credentials(headers: &HeaderMap) -> Option<String> {
    if let Some(key) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(key.trim().to_owned());
    }
    let authorization = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, value) = authorization.trim().split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(value.trim().to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = STANDARD.decode(value.trim()).ok()?;
        let pair = String::from_utf8(decoded).ok()?;
        let (_user, password) = pair.split_once(':')?;
        return Some(password.to_owned());
    }
    None
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_str(value).expect("header"));
        headers
    }

    #[test]
    fn the_secret_is_read_from_each_scheme() {
        let basic = format!("Basic {}", STANDARD.encode("erp:s3cret"));

        assert_eq!(
            credentials(&headers("x-api-key", "s3cret")).as_deref(),
            Some("s3cret")
        );
        assert_eq!(
            credentials(&headers("authorization", "Bearer s3cret")).as_deref(),
            Some("s3cret")
        );
        assert_eq!(
            credentials(&headers("authorization", &basic)).as_deref(),
            Some("s3cret")
        );
        assert_eq!(credentials(&headers("authorization", "Digest x")), None);
        assert_eq!(credentials(&HeaderMap::new()), None);
    }

    #[test]
    fn each_route_needs_its_scope() {
        let cases = [
            (Method::GET, "/health/ready", "/health/ready", Need::Nothing),
            (
                Method::POST,
                "/topics/{topic}",
                "/topics/notas",
                Need::Produce("notas".to_owned()),
            ),
            (Method::GET, "/topics/{topic}", "/topics/notas", Need::Read),
            (Method::GET, "/metrics", "/metrics", Need::Read),
            (
                Method::POST,
                "/messages/replay",
                "/messages/replay",
                Need::Replay,
            ),
            (
                Method::POST,
                "/messages/{message_id}/retry",
                "/messages/x/retry",
                Need::Replay,
            ),
            (
                Method::DELETE,
                "/admin/topics/{topic}",
                "/admin/topics/t",
                Need::Admin,
            ),
            (
                Method::POST,
                "/topics/{topic}/partitions/{partition}",
                "/topics/notas/partitions/2",
                Need::Produce("notas".to_owned()),
            ),
            (
                Method::POST,
                "/v3/clusters/{cluster_id}/topics/{topic}/records:batch",
                "/v3/clusters/c1/topics/pedidos/records:batch",
                Need::Produce("pedidos".to_owned()),
            ),
            (
                Method::POST,
                "/v3/clusters/{cluster_id}/topics",
                "/v3/clusters/c1/topics",
                Need::Admin,
            ),
            (
                Method::GET,
                "/v3/clusters/{cluster_id}/topics/{topic}",
                "/v3/clusters/c1/topics/t",
                Need::Read,
            ),
        ];
        for (method, route, path, expected) in cases {
            assert_eq!(need(&method, route, path), expected, "{method} {route}");
        }
    }
}
