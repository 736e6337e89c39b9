//! ServiceAccount tokens as the real token issuer writes them: JWTs signed with ES256, carrying
//! the `kubernetes.io` claims that bind them to a ServiceAccount (name and uid).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde::{Deserialize, Serialize};

/// The issuer and default audience of the real server's tokens.
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("generating the token signing key")]
    Key,
    #[error("signing a token")]
    Sign,
}

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub aud: Vec<String>,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub iss: String,
    pub jti: String,
    pub sub: String,
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: KubernetesClaims,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesClaims {
    pub namespace: String,
    pub serviceaccount: ObjectClaim,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectClaim {
    pub name: String,
    pub uid: String,
}

impl Claims {
    /// Whether the token may be used at `now` (seconds since the epoch).
    pub fn is_current(&self, now: i64) -> bool {
        self.nbf <= now && now < self.exp
    }
}

/// Signs and verifies tokens with one key per emulator.
pub struct TokenIssuer {
    key: EcdsaKeyPair,
    key_id: String,
    rng: SystemRandom,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

impl TokenIssuer {
    pub fn new() -> Result<Self, TokenError> {
        let rng = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).map_err(|_| TokenError::Key)?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|_| TokenError::Key)?;
        // The real issuer's key id is a hash of the public key, too.
        let key_id = URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, key.public_key().as_ref()));
        Ok(Self { key, key_id, rng })
    }

    /// A signed JWT carrying `claims`.
    pub fn sign(&self, claims: &Claims) -> Result<String, TokenError> {
        let header = serde_json::json!({"alg": "ES256", "kid": self.key_id});
        let payload = serde_json::to_vec(claims).map_err(|_| TokenError::Sign)?;
        let signed = format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(payload));
        let signature = self.key.sign(&self.rng, signed.as_bytes()).map_err(|_| TokenError::Sign)?;
        Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref())))
    }

    /// The claims of a token this issuer signed; None for anything else (a forged, altered or
    /// foreign token). Expiry and binding are the caller's to check.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        let (signed, signature) = token.rsplit_once('.')?;
        let (_, payload) = signed.split_once('.')?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        let public = ring::signature::UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, self.key.public_key().as_ref());
        public.verify(signed.as_bytes(), &signature).ok()?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            aud: vec![ISSUER.into()],
            exp: 2000,
            iat: 1000,
            nbf: 1000,
            iss: ISSUER.into(),
            jti: "j".into(),
            sub: "system:serviceaccount:ns:sa".into(),
            kubernetes: KubernetesClaims {
                namespace: "ns".into(),
                serviceaccount: ObjectClaim { name: "sa".into(), uid: "u".into() },
            },
        }
    }

    #[test]
    fn a_signed_token_verifies_and_an_altered_one_does_not() {
        let issuer = TokenIssuer::new().expect("issuer");
        let token = issuer.sign(&claims()).expect("sign");
        assert_eq!(token.split('.').count(), 3);
        assert_eq!(issuer.verify(&token), Some(claims()));
        let mut other = claims();
        other.kubernetes.namespace = "kube-system".into();
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&other).expect("json"));
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(issuer.verify(&format!("{}.{forged_payload}.{}", parts[0], parts[2])), None);
        let stranger = TokenIssuer::new().expect("issuer");
        assert_eq!(stranger.verify(&token), None, "another emulator's token");
        assert!(claims().is_current(1500) && !claims().is_current(2000));
    }
}
