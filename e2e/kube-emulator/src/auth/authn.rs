//! Authentication as kube-apiserver 1.33 does it with anonymous requests disabled: a client
//! certificate the cluster's CA issued, the admin's bearer token, or a ServiceAccount token from
//! the TokenRequest API, bound to its ServiceAccount (a token outlives neither its expiry nor
//! the ServiceAccount it names). Anything else is a 401.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use http::{HeaderMap, header};
use rustls::pki_types::CertificateDer;
use serde_json::{Value, json};

use super::tokens::{Claims, ISSUER, KubernetesClaims, ObjectClaim, TokenIssuer};
use super::user::{UserInfo, service_account_username};
use crate::errors::{ApiError, ApiResult, Cause, Subject};
use crate::meta::{meta_str, now_secs, rfc3339};
use crate::ops::Cluster;

/// The client certificate a TLS connection presented, put in each request's extensions by the
/// server (the CA verified it during the handshake).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate(pub CertificateDer<'static>);

/// Token lifetimes the TokenRequest API accepts: at least 10 minutes, one hour by default.
const MIN_EXPIRATION_SECONDS: i64 = 600;
const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;

/// The credentials an emulator accepts.
#[derive(Debug)]
pub struct Authenticator {
    admin_token: String,
    issuer: OnceLock<Option<TokenIssuer>>,
    /// The client certificates the emulator issued, by DER, with whom each names.
    certificates: Mutex<HashMap<Vec<u8>, UserInfo>>,
}

impl Default for Authenticator {
    fn default() -> Self {
        Self {
            admin_token: format!("{:032x}", rand::random::<u128>()),
            issuer: OnceLock::new(),
            certificates: Mutex::new(HashMap::new()),
        }
    }
}

impl Authenticator {
    /// A bearer token of the cluster administrator (system:masters).
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// Accepts `certificate` (issued by the emulator's CA) as `user`.
    pub fn trust_certificate(&self, certificate: &CertificateDer<'_>, user: UserInfo) {
        self.certificates.lock().unwrap_or_else(|e| e.into_inner()).insert(certificate.to_vec(), user);
    }

    fn issuer(&self) -> ApiResult<&TokenIssuer> {
        self.issuer
            .get_or_init(|| TokenIssuer::new().ok())
            .as_ref()
            .ok_or_else(|| ApiError::internal("the token signing key could not be generated"))
    }

    /// Who sent a request: Ok(None) when it carries no credentials at all, a 401 when they are
    /// not valid.
    pub fn authenticate(
        &self,
        cluster: &Cluster,
        headers: &HeaderMap,
        peer: Option<&PeerCertificate>,
    ) -> ApiResult<Option<UserInfo>> {
        if let Some(user) = peer.and_then(|p| self.certificate_user(p)) {
            return Ok(Some(user));
        }
        match bearer_token(headers) {
            None => Ok(None),
            Some(token) => self.token_user(cluster, token).map(Some).ok_or_else(ApiError::unauthorized),
        }
    }

    fn certificate_user(&self, peer: &PeerCertificate) -> Option<UserInfo> {
        self.certificates.lock().unwrap_or_else(|e| e.into_inner()).get(peer.0.as_ref()).cloned()
    }

    /// The user a bearer token names, if it is valid now.
    pub fn token_user(&self, cluster: &Cluster, token: &str) -> Option<UserInfo> {
        if token == self.admin_token {
            return Some(UserInfo::admin());
        }
        let claims = self.issuer().ok()?.verify(token)?;
        if !claims.is_current(now_secs()) || !claims.aud.iter().any(|a| a == ISSUER) {
            return None;
        }
        let KubernetesClaims { namespace, serviceaccount: sa } = &claims.kubernetes;
        // Bound to the ServiceAccount: deleted (or deleted and created again), the token is dead.
        let live = cluster.store.lock().get("/serviceaccounts", namespace, &sa.name)?;
        if meta_str(&live, "uid") != sa.uid {
            return None;
        }
        let mut user = UserInfo::service_account(namespace, &sa.name, &sa.uid);
        user.extra.insert("authentication.kubernetes.io/credential-id".into(), vec![format!("JTI={}", claims.jti)]);
        Some(user)
    }

    /// `POST .../serviceaccounts/{name}/token`: a TokenRequest answered with a token.
    pub fn token_request(&self, cluster: &Cluster, namespace: &str, name: &str, body: &Value) -> ApiResult<Value> {
        let sa = cluster
            .store
            .lock()
            .get("/serviceaccounts", namespace, name)
            .ok_or_else(|| ApiError::not_found(Subject { group: "", plural: "serviceaccounts", name }))?;
        let spec = body.get("spec").cloned().unwrap_or(json!({}));
        let expiration = spec.get("expirationSeconds").and_then(Value::as_i64).unwrap_or(DEFAULT_EXPIRATION_SECONDS);
        if expiration < MIN_EXPIRATION_SECONDS {
            let cause = Cause::new(
                "FieldValueInvalid",
                "spec.expirationSeconds",
                format!("Invalid value: {expiration}: may not specify a duration less than 10 minutes"),
            );
            return Err(ApiError::invalid("TokenRequest.authentication.k8s.io", name, vec![cause]));
        }
        let audiences: Vec<String> = spec
            .get("audiences")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
            .filter(|a: &Vec<String>| !a.is_empty())
            .unwrap_or_else(|| vec![ISSUER.to_string()]);
        let now = now_secs();
        let claims = Claims {
            aud: audiences.clone(),
            exp: now + expiration,
            iat: now,
            nbf: now,
            iss: ISSUER.to_string(),
            jti: crate::meta::new_uid(),
            sub: service_account_username(namespace, name),
            kubernetes: KubernetesClaims {
                namespace: namespace.to_string(),
                serviceaccount: ObjectClaim { name: name.to_string(), uid: meta_str(&sa, "uid").to_string() },
            },
        };
        let token = self.issuer()?.sign(&claims).map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(json!({
            "kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": null},
            "spec": {"audiences": audiences, "expirationSeconds": expiration,
                     "boundObjectRef": spec.get("boundObjectRef").cloned().unwrap_or(Value::Null)},
            "status": {"token": token, "expirationTimestamp": rfc3339(claims.exp)},
        }))
    }
}

/// The token of `Authorization: Bearer <token>`.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}
