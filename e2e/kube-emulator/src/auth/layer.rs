//! Authentication and authorization as middleware over the API router, in the real server's
//! order: authenticate (then impersonate) at the edge, authorize just before the API.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use http::HeaderMap;

use super::authn::{Authenticator, PeerCertificate};
use super::authz;
use super::user::{AUTHENTICATED, SERVICE_ACCOUNTS, UserInfo, parse_service_account};
use crate::errors::{ApiError, ApiResult};
use crate::ops::Cluster;
use crate::request_info::RequestInfo;

/// How requests are authenticated.
#[derive(Debug, Clone)]
pub struct Authentication {
    pub authenticator: Arc<Authenticator>,
    pub cluster: Arc<Cluster>,
    /// Who a request without credentials is: None answers 401 (a served port, as the real server
    /// with anonymous requests disabled); the in-process router's own clients are the admin.
    pub without_credentials: Option<UserInfo>,
}

/// Wraps `app`: each request gets its `UserInfo` in its extensions, or a 401.
pub fn authenticate(app: Router, authentication: Authentication) -> Router {
    app.layer(from_fn_with_state(authentication, authenticate_request))
}

/// Wraps `api`: each request is allowed by RBAC or answered 403.
pub fn authorize(api: Router, cluster: Arc<Cluster>) -> Router {
    api.layer(from_fn_with_state(cluster, authorize_request))
}

async fn authenticate_request(State(a): State<Authentication>, mut req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<PeerCertificate>();
    let user = match a.authenticator.authenticate(&a.cluster, req.headers(), peer) {
        Ok(Some(user)) => user,
        Ok(None) => match &a.without_credentials {
            Some(user) => user.clone(),
            None => return ApiError::unauthorized().into_response(),
        },
        Err(e) => return e.into_response(),
    };
    match impersonate(&a.cluster, user, req.headers()) {
        Ok(user) => {
            req.extensions_mut().insert(user);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

async fn authorize_request(State(cluster): State<Arc<Cluster>>, req: Request, next: Next) -> Response {
    let Some(user) = req.extensions().get::<UserInfo>() else {
        return ApiError::unauthorized().into_response();
    };
    let request = RequestInfo::parse(req.method(), req.uri(), req.headers());
    match authz::check(&cluster, user, &request) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// `Impersonate-User` and `Impersonate-Group` (`kubectl --as --as-group`): allowed when the user
/// may `impersonate` the user (or ServiceAccount) and each group; the request then is theirs.
fn impersonate(cluster: &Cluster, user: UserInfo, headers: &HeaderMap) -> ApiResult<UserInfo> {
    let values = |name: &str| -> Vec<String> {
        headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).map(String::from).collect()
    };
    let (Some(name), groups) = (values("impersonate-user").into_iter().next(), values("impersonate-group")) else {
        return Ok(user);
    };
    let target = match parse_service_account(&name) {
        Some((ns, sa)) => impersonation("serviceaccounts", ns, sa),
        None => impersonation("users", "", &name),
    };
    authz::check(cluster, &user, &target)?;
    for group in &groups {
        authz::check(cluster, &user, &impersonation("groups", "", group))?;
    }
    let mut impersonated = UserInfo { username: name, groups, ..UserInfo::default() };
    if let Some((ns, _)) = parse_service_account(&impersonated.username)
        && impersonated.groups.is_empty()
    {
        let ns = ns.to_string();
        impersonated.groups = vec![SERVICE_ACCOUNTS.to_string(), format!("{SERVICE_ACCOUNTS}:{ns}")];
    }
    if impersonated.username != "system:anonymous" && !impersonated.groups.iter().any(|g| g == AUTHENTICATED) {
        impersonated.groups.push(AUTHENTICATED.to_string());
    }
    Ok(impersonated)
}

fn impersonation(resource: &str, namespace: &str, name: &str) -> RequestInfo {
    RequestInfo {
        verb: "impersonate".into(),
        is_resource: true,
        resource: resource.into(),
        namespace: namespace.into(),
        name: name.into(),
        ..RequestInfo::default()
    }
}
