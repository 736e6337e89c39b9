//! The identity of a request, as authenticators hand it to the authorizer and to admission.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Members may do anything: the real server's privileged group.
pub const MASTERS: &str = "system:masters";
/// Every authenticated user is in this group.
pub const AUTHENTICATED: &str = "system:authenticated";
/// Every ServiceAccount, and those of one namespace (with `:{namespace}` appended).
pub const SERVICE_ACCOUNTS: &str = "system:serviceaccounts";
/// ServiceAccount user names: `system:serviceaccount:{namespace}:{name}`.
const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

/// A user as `authentication.k8s.io/v1` `UserInfo` writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserInfo {
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// The cluster administrator of the written kubeconfig (kubeadm's name for it).
    pub fn admin() -> Self {
        Self::user("kubernetes-admin", &[MASTERS])
    }

    /// An authenticated user in `groups` (system:authenticated is added).
    pub fn user(name: &str, groups: &[&str]) -> Self {
        let mut groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        if !groups.iter().any(|g| g == AUTHENTICATED) {
            groups.push(AUTHENTICATED.to_string());
        }
        Self { username: name.to_string(), groups, ..Self::default() }
    }

    /// A ServiceAccount with the groups the real token authenticator gives it.
    pub fn service_account(namespace: &str, name: &str, uid: &str) -> Self {
        Self {
            username: service_account_username(namespace, name),
            uid: uid.to_string(),
            groups: vec![
                SERVICE_ACCOUNTS.to_string(),
                format!("{SERVICE_ACCOUNTS}:{namespace}"),
                AUTHENTICATED.to_string(),
            ],
            extra: BTreeMap::new(),
        }
    }

    /// In system:masters: the authorizer allows everything, as the real server does.
    pub fn is_privileged(&self) -> bool {
        self.groups.iter().any(|g| g == MASTERS)
    }

    /// `(namespace, name)` when this is a ServiceAccount.
    pub fn service_account_ref(&self) -> Option<(&str, &str)> {
        parse_service_account(&self.username)
    }
}

pub fn service_account_username(namespace: &str, name: &str) -> String {
    format!("{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}")
}

/// `system:serviceaccount:{namespace}:{name}` -> `(namespace, name)`.
pub fn parse_service_account(username: &str) -> Option<(&str, &str)> {
    username.strip_prefix(SERVICE_ACCOUNT_PREFIX)?.split_once(':').filter(|(ns, n)| !ns.is_empty() && !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_accounts_get_their_groups_and_parse_back() {
        let sa = UserInfo::service_account("prism-system", "prism-operator", "u1");
        assert_eq!(sa.username, "system:serviceaccount:prism-system:prism-operator");
        assert_eq!(
            sa.groups,
            ["system:serviceaccounts", "system:serviceaccounts:prism-system", "system:authenticated"]
        );
        assert_eq!(sa.service_account_ref(), Some(("prism-system", "prism-operator")));
        assert_eq!(parse_service_account("system:serviceaccount:x"), None);
        assert!(UserInfo::admin().is_privileged() && !sa.is_privileged());
    }
}
