//! Authorization of requests by the RBAC objects stored in the cluster, read at each decision
//! (as the real authorizer's informers would have them), and the real 403.

use serde_json::json;

use super::rbac::{self, Decision, Policy};
use super::user::UserInfo;
use crate::errors::{ApiError, ApiResult};
use crate::ops::Cluster;
use crate::request_info::RequestInfo;

const ROLES: &str = "rbac.authorization.k8s.io/roles";
const CLUSTER_ROLES: &str = "rbac.authorization.k8s.io/clusterroles";
const ROLE_BINDINGS: &str = "rbac.authorization.k8s.io/rolebindings";
const CLUSTER_ROLE_BINDINGS: &str = "rbac.authorization.k8s.io/clusterrolebindings";

/// Every Role, ClusterRole and binding stored now.
pub fn policy(cluster: &Cluster) -> Policy {
    let st = cluster.store.lock();
    let list = |storage: &str| st.list(storage, None, None);
    let roles = list(ROLES).into_iter().chain(list(CLUSTER_ROLES)).map(|r| rbac::role_from_object(&r)).collect();
    let bindings = list(ROLE_BINDINGS)
        .into_iter()
        .chain(list(CLUSTER_ROLE_BINDINGS))
        .filter_map(|b| rbac::binding_from_object(&b))
        .collect();
    Policy { roles, bindings }
}

/// The RBAC decision on `request` by `user`.
pub fn decide(cluster: &Cluster, user: &UserInfo, request: &RequestInfo) -> Decision {
    if user.is_privileged() {
        // Decided without reading the store: the admin's requests cost nothing here.
        return Decision::Allowed(String::new());
    }
    policy(cluster).authorize(user, request)
}

/// Ok when `user` may do `request`, else the real server's 403.
pub fn check(cluster: &Cluster, user: &UserInfo, request: &RequestInfo) -> ApiResult<()> {
    match decide(cluster, user, request) {
        Decision::Allowed(_) => Ok(()),
        Decision::Denied => Err(forbidden(user, request)),
    }
}

/// The 403 Status of a denied request.
pub fn forbidden(user: &UserInfo, request: &RequestInfo) -> ApiError {
    // Go leaves empty fields out of the details.
    let mut details = serde_json::Map::new();
    for (key, value) in [("name", &request.name), ("group", &request.group), ("kind", &request.resource)] {
        if request.is_resource && !value.is_empty() {
            details.insert(key.to_string(), json!(value));
        }
    }
    ApiError::forbidden(rbac::forbidden_message(user, request)).with_details(details.into())
}
