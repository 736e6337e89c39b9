//! What a request is, in the terms RBAC uses: verb, API group, resource, subresource,
//! namespace and name. Mirrors apiserver's `RequestInfoFactory`, so that request accounting
//! can later prove the operator's RBAC rules and fault rules can match like an authorizer.

use http::{HeaderMap, Method, Uri, header};
use serde::Serialize;

/// The verbs of resource requests (the RBAC vocabulary).
pub const WRITE_VERBS: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];

/// One request, classified.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestInfo {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`, or the
    /// lower-case HTTP method for non-resource paths.
    pub verb: String,
    /// False for `/version`, `/api`, `/openapi/v3`, discovery of a group, `/healthz`.
    pub is_resource: bool,
    pub group: String,
    pub version: String,
    /// The resource (plural), e.g. `configmaps`.
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    /// The path, kept for non-resource requests.
    pub path: String,
    /// `fieldManager` query parameter of writes.
    pub field_manager: Option<String>,
    pub user_agent: String,
}

impl RequestInfo {
    /// Classifies a request from its method, URI and headers.
    pub fn parse(method: &Method, uri: &Uri, headers: &HeaderMap) -> Self {
        let query = uri.query().unwrap_or("");
        let mut info = Self {
            path: uri.path().to_string(),
            field_manager: query_param(query, "fieldManager"),
            user_agent: headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("").to_string(),
            ..Self::default()
        };
        let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
        let rest = match segments.as_slice() {
            ["api", version, rest @ ..] if !rest.is_empty() => {
                info.version = (*version).to_string();
                rest
            }
            ["apis", group, version, rest @ ..] if !rest.is_empty() => {
                info.group = (*group).to_string();
                info.version = (*version).to_string();
                rest
            }
            _ => {
                info.verb = method.as_str().to_ascii_lowercase();
                return info;
            }
        };
        info.is_resource = true;
        let watch_prefix = rest.first() == Some(&"watch");
        let rest = if watch_prefix { &rest[1..] } else { rest };
        info.fill_resource(rest);
        info.verb = resource_verb(method, !info.name.is_empty(), watch_prefix || is_watch(query)).to_string();
        // A list or watch of one object by name is about that name, as RBAC's resourceNames see it.
        if matches!(info.verb.as_str(), "list" | "watch") && info.name.is_empty() {
            info.name = named_by_field_selector(query).unwrap_or_default();
        }
        info
    }

    /// `[namespaces/{ns}/]{resource}[/{name}[/{subresource}]]`; `namespaces/{ns}[/status|finalize]`
    /// addresses the namespace itself, as in the real server.
    fn fill_resource(&mut self, rest: &[&str]) {
        let mut parts = rest;
        if parts.first() == Some(&"namespaces")
            && let Some(ns) = parts.get(1)
        {
            self.namespace = (*ns).to_string();
            if parts.len() > 2 && !matches!(parts[2], "status" | "finalize") {
                parts = &parts[2..];
            }
        }
        let at = |i: usize| parts.get(i).map(|s| (*s).to_string()).unwrap_or_default();
        self.resource = at(0);
        self.name = at(1);
        self.subresource = at(2);
    }

    /// True for create, update, patch, delete and deletecollection.
    pub fn is_write(&self) -> bool {
        self.is_resource && WRITE_VERBS.contains(&self.verb.as_str())
    }

    /// `resource` or `resource/subresource`, as RBAC rules name it.
    pub fn resource_path(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }
}

fn resource_verb(method: &Method, named: bool, watch: bool) -> &'static str {
    match *method {
        Method::GET | Method::HEAD if watch => "watch",
        Method::GET | Method::HEAD if named => "get",
        Method::GET | Method::HEAD => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => "unknown",
    }
}

/// `X` of a fieldSelector `metadata.name=X` (or `==`), the selector's only term.
fn named_by_field_selector(query: &str) -> Option<String> {
    let selector = query_param(query, "fieldSelector")?;
    let value = selector.strip_prefix("metadata.name==").or_else(|| selector.strip_prefix("metadata.name="))?;
    (!value.contains(',')).then(|| value.to_string())
}

fn is_watch(query: &str) -> bool {
    matches!(query_param(query, "watch").as_deref(), Some("true" | "1" | "True"))
}

/// The first value of a query parameter (kube writes `?&a=b`: empty pairs are skipped).
pub fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').filter_map(|p| p.split_once('=')).find(|(k, _)| *k == key).map(|(_, v)| percent_decode(v))
}

/// Decodes `%XX` escapes and `+` (for spaces) of a URL path segment or query value.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(method: Method, uri: &str) -> RequestInfo {
        RequestInfo::parse(&method, &uri.parse().expect("uri"), &HeaderMap::new())
    }

    #[test]
    fn classifies_resource_requests_like_the_apiserver() {
        let i = info(Method::GET, "/api/v1/namespaces/ns1/configmaps?&limit=500");
        assert_eq!((i.verb.as_str(), i.resource.as_str(), i.namespace.as_str()), ("list", "configmaps", "ns1"));
        let i = info(Method::GET, "/apis/apps/v1/namespaces/a/deployments?&watch=true&resourceVersion=5");
        assert_eq!((i.verb.as_str(), i.group.as_str()), ("watch", "apps"));
        let i = info(Method::PATCH, "/apis/apps/v1/namespaces/a/deployments/d/status?&fieldManager=me");
        assert_eq!((i.verb.as_str(), i.name.as_str(), i.subresource.as_str()), ("patch", "d", "status"));
        assert_eq!(i.field_manager.as_deref(), Some("me"));
        assert_eq!(i.resource_path(), "deployments/status");
        let i = info(Method::DELETE, "/api/v1/namespaces/a/pods");
        assert_eq!(i.verb, "deletecollection");
    }

    #[test]
    fn a_list_by_name_is_about_that_name() {
        let i = info(Method::GET, "/api/v1/namespaces/a/configmaps?fieldSelector=metadata.name%3Dc&watch=true");
        assert_eq!((i.verb.as_str(), i.name.as_str()), ("watch", "c"));
        let i = info(Method::GET, "/api/v1/namespaces/a/configmaps?fieldSelector=metadata.name%3Dc,type%3Dx");
        assert_eq!((i.verb.as_str(), i.name.as_str()), ("list", ""));
    }

    #[test]
    fn namespaces_address_themselves() {
        let i = info(Method::GET, "/api/v1/namespaces/foo");
        assert_eq!((i.resource.as_str(), i.name.as_str(), i.namespace.as_str()), ("namespaces", "foo", "foo"));
        let i = info(Method::PUT, "/api/v1/namespaces/foo/finalize");
        assert_eq!((i.verb.as_str(), i.subresource.as_str()), ("update", "finalize"));
        let i = info(Method::GET, "/api/v1/namespaces");
        assert_eq!((i.verb.as_str(), i.namespace.as_str()), ("list", ""));
    }

    #[test]
    fn discovery_is_not_a_resource_request() {
        for p in ["/api", "/apis", "/api/v1", "/apis/apps/v1", "/version", "/openapi/v3"] {
            let i = info(Method::GET, p);
            assert!(!i.is_resource, "{p}");
            assert_eq!(i.verb, "get");
        }
    }
}
