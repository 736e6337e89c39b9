//! Who is asking, and may they: authentication (client certificates, the admin's token,
//! ServiceAccount tokens from the TokenRequest API), impersonation, RBAC authorization with the
//! cluster's default roles, escalation prevention, and the access and token reviews.
//!
//! `user`, `tokens` and `rbac` are pure (identities, signed tokens, RBAC evaluation); `authn`,
//! `authz`, `escalation`, `reviews` and `bootstrap` read or write the cluster; `layer` puts
//! authentication and authorization as middleware around the API router.

pub mod authn;
pub mod authz;
pub mod bootstrap;
pub mod escalation;
pub mod layer;
pub mod rbac;
pub mod reviews;
pub mod tokens;
pub mod user;

pub use user::UserInfo;
