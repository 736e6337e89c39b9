//! Counts every request the operator sends to the Kubernetes API by verb and answer, as a tower
//! layer around the kube client's HTTP service (client-go's `rest_client_requests_total` is the
//! model): failing watches and lists are how a broken connection or a lost permission shows.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::{Method, Request, Response};
use prism_controllers::metrics::Metrics;
use tower::{Layer, Service};

/// Counts requests into `prism_operator_kube_requests_total` (nothing without metrics).
#[derive(Debug, Clone)]
pub struct RequestMetricsLayer {
    metrics: Option<Arc<Metrics>>,
}

impl RequestMetricsLayer {
    pub fn new(metrics: Option<Arc<Metrics>>) -> Self {
        RequestMetricsLayer { metrics }
    }
}

impl<S> Layer<S> for RequestMetricsLayer {
    type Service = RequestMetrics<S>;

    fn layer(&self, inner: S) -> RequestMetrics<S> {
        RequestMetrics { inner, metrics: self.metrics.clone() }
    }
}

/// The service made by [`RequestMetricsLayer`].
#[derive(Debug, Clone)]
pub struct RequestMetrics<S> {
    inner: S,
    metrics: Option<Arc<Metrics>>,
}

type Counted<R, E> = Pin<Box<dyn Future<Output = Result<R, E>> + Send>>;

impl<S, B, R> Service<Request<B>> for RequestMetrics<S>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
    R: 'static,
    S::Error: 'static,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = Counted<Response<R>, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let verb = verb(request.method(), request.uri().path(), request.uri().query());
        let metrics = self.metrics.clone();
        let response = self.inner.call(request);
        Box::pin(async move {
            let result = response.await;
            if let Some(metrics) = metrics {
                let code = result.as_ref().map_or_else(|_| "error".to_string(), |r| r.status().as_u16().to_string());
                metrics.kube_request(verb, &code);
            }
            result
        })
    }
}

/// The verb the API server would log for a request: get and list, watch, create, update,
/// patch, delete and deletecollection.
pub fn verb(method: &Method, path: &str, query: Option<&str>) -> &'static str {
    let collection = is_collection(path);
    match *method {
        Method::GET if query.is_some_and(is_watch) => "watch",
        Method::GET if collection => "list",
        Method::GET => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if collection => "deletecollection",
        Method::DELETE => "delete",
        _ => "other",
    }
}

fn is_watch(query: &str) -> bool {
    query.split('&').any(|pair| pair == "watch=true" || pair == "watch=1")
}

/// Whether `path` names a collection of resources (`/api/v1/namespaces/ns/pods`) rather than
/// one object or a discovery document.
fn is_collection(path: &str) -> bool {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let rest = match segments.as_slice() {
        ["api", _version, rest @ ..] | ["apis", _, _version, rest @ ..] => rest,
        _ => return false,
    };
    match rest {
        ["namespaces", _namespace, resource @ ..] if !resource.is_empty() => resource.len() == 1,
        resource => resource.len() == 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_are_named_as_the_api_server_names_them() {
        let cases = [
            (Method::GET, "/api/v1/namespaces/prism/pods", Some("watch=true&resourceVersion=1"), "watch"),
            (Method::GET, "/api/v1/namespaces/prism/pods", None, "list"),
            (Method::GET, "/apis/prism.io/v1alpha1/prismclusters", Some("limit=500"), "list"),
            (Method::GET, "/apis/apps/v1/namespaces/prism/deployments/proxy", None, "get"),
            (Method::GET, "/api/v1/namespaces/prism", None, "get"),
            (Method::GET, "/version", None, "get"),
            (Method::PATCH, "/apis/prism.io/v1alpha1/namespaces/p/prismclusters/x/status", None, "patch"),
            (Method::POST, "/api/v1/namespaces/prism/events", None, "create"),
            (Method::PUT, "/apis/coordination.k8s.io/v1/namespaces/p/leases/l", None, "update"),
            (Method::DELETE, "/api/v1/namespaces/prism/secrets/s", None, "delete"),
            (Method::DELETE, "/api/v1/namespaces/prism/secrets", None, "deletecollection"),
        ];
        for (method, path, query, expected) in cases {
            assert_eq!(verb(&method, path, query), expected, "{method} {path}");
        }
    }

    #[tokio::test]
    async fn each_answer_is_counted_by_verb_and_code() {
        let metrics = Arc::new(Metrics::new());
        let inner = tower::service_fn(|_: Request<()>| async {
            Ok::<_, std::convert::Infallible>(Response::builder().status(404).body(()).expect("response"))
        });
        let mut service = RequestMetricsLayer::new(Some(metrics.clone())).layer(inner);
        let request = Request::get("/api/v1/namespaces/prism/configmaps/x").body(()).expect("request");
        service.call(request).await.expect("infallible");
        let text = metrics.encode();
        assert!(text.contains("prism_operator_kube_requests_total{verb=\"get\",code=\"404\"} 1\n"), "{text}");
    }
}
