//! The webhook's certificates when the operator makes its own: a CA and a serving certificate
//! for the webhook Service's names, kept in one Secret that every replica shares, renewed before
//! expiry. Generation and the renewal decision are pure; `ensure` does the I/O.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};

/// Keys of the Secret, as cert-manager writes them (so that either source reads the same way).
pub const CA_CERT: &str = "ca.crt";
pub const TLS_CERT: &str = "tls.crt";
pub const TLS_KEY: &str = "tls.key";
/// Only in a Secret the operator made: the CA's key, to renew the serving certificate under the
/// same CA (the CA bundle then stays the same).
pub const CA_KEY: &str = "ca.key";
/// Annotations with the expiry times (unix seconds), so that renewal needs no X.509 parser.
pub const SERVING_EXPIRES: &str = "prism.io/serving-certificate-expires";
pub const CA_EXPIRES: &str = "prism.io/ca-expires";

const CA_VALIDITY_DAYS: i64 = 3650;
const SERVING_VALIDITY_DAYS: i64 = 365;
/// Renew this long before expiry: ample time for every replica to reload.
pub const RENEW_BEFORE_SECONDS: i64 = 30 * 24 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("generating a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("Secret {0} lacks {1}")]
    Missing(String, &'static str),
    #[error("reading or writing Secret {name}: {source}")]
    Api { name: String, source: kube::Error },
    #[error("the time {0} is out of range for a certificate")]
    Time(i64),
}

/// What the webhook serves with, and the CA bundle that verifies it.
#[derive(Clone, Debug, PartialEq)]
pub struct ServingCert {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// The Secret's content as generated: certificates, the CA key, and expiry times.
#[derive(Clone, Debug, PartialEq)]
pub struct Generated {
    pub serving: ServingCert,
    pub ca_key_pem: String,
    pub serving_expires: i64,
    pub ca_expires: i64,
}

/// The DNS names of Service `service` in `namespace`, as the API server calls it.
pub fn service_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        service.to_string(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

/// A new CA and a serving certificate for `names`, valid from `now` (unix seconds).
pub fn generate(names: &[String], now: i64) -> Result<Generated, CertError> {
    let ca_key = KeyPair::generate()?;
    let ca_params = ca_params(now)?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let ca_pem = ca_cert.pem();
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = Issuer::new(ca_params, ca_key);
    let (cert_pem, key_pem) = issue_serving(&issuer, names, now)?;
    Ok(Generated {
        serving: ServingCert { ca_pem, cert_pem, key_pem },
        ca_key_pem,
        serving_expires: now + SERVING_VALIDITY_DAYS * 86400,
        ca_expires: now + CA_VALIDITY_DAYS * 86400,
    })
}

/// A new serving certificate under the CA of `current` (kept, so the CA bundle does not change).
pub fn renew_serving(current: &Generated, names: &[String], now: i64) -> Result<Generated, CertError> {
    let ca_key = KeyPair::from_pem(&current.ca_key_pem)?;
    // Signing needs the CA's name and key only (the name is fixed, the key identifier comes
    // from the key): the same parameters as when the CA was made.
    let issuer = Issuer::new(ca_params(now)?, ca_key);
    let (cert_pem, key_pem) = issue_serving(&issuer, names, now)?;
    Ok(Generated {
        serving: ServingCert { ca_pem: current.serving.ca_pem.clone(), cert_pem, key_pem },
        serving_expires: now + SERVING_VALIDITY_DAYS * 86400,
        ..current.clone()
    })
}

/// What to do with the Secret's certificates at `now`.
#[derive(Debug, PartialEq, Eq)]
pub enum Renewal {
    Keep,
    /// The serving certificate expires soon: a new one under the same CA.
    Serving,
    /// The CA expires soon, or the Secret is not usable: everything new.
    All,
}

/// The renewal decision: renew what expires within [`RENEW_BEFORE_SECONDS`].
pub fn renewal(current: Option<&Generated>, now: i64) -> Renewal {
    match current {
        None => Renewal::All,
        Some(g) if g.ca_expires - now <= RENEW_BEFORE_SECONDS => Renewal::All,
        Some(g) if g.serving_expires - now <= RENEW_BEFORE_SECONDS => Renewal::Serving,
        Some(_) => Renewal::Keep,
    }
}

fn ca_params(now: i64) -> Result<CertificateParams, CertError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, "prism-operator-webhook-ca");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyCertSign];
    validity(&mut params, now, CA_VALIDITY_DAYS)?;
    Ok(params)
}

fn issue_serving(issuer: &Issuer<'_, KeyPair>, names: &[String], now: i64) -> Result<(String, String), CertError> {
    let mut params = CertificateParams::new(names.to_vec())?;
    params.distinguished_name.push(DnType::CommonName, names.first().map(String::as_str).unwrap_or("webhook"));
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, now, SERVING_VALIDITY_DAYS)?;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn validity(params: &mut CertificateParams, now: i64, days: i64) -> Result<(), CertError> {
    // A little slack backwards for clocks of the API server that lag ours.
    let at = |seconds: i64| time::OffsetDateTime::from_unix_timestamp(seconds).map_err(|_| CertError::Time(seconds));
    params.not_before = at(now - 3600)?;
    params.not_after = at(now + days * 86400)?;
    Ok(())
}

/// The Secret holding `generated`.
pub fn secret(name: &str, namespace: &str, generated: &Generated) -> Secret {
    let data = BTreeMap::from([
        (CA_CERT.to_string(), ByteString(generated.serving.ca_pem.clone().into_bytes())),
        (TLS_CERT.to_string(), ByteString(generated.serving.cert_pem.clone().into_bytes())),
        (TLS_KEY.to_string(), ByteString(generated.serving.key_pem.clone().into_bytes())),
        (CA_KEY.to_string(), ByteString(generated.ca_key_pem.clone().into_bytes())),
    ]);
    let annotations = BTreeMap::from([
        (SERVING_EXPIRES.to_string(), generated.serving_expires.to_string()),
        (CA_EXPIRES.to_string(), generated.ca_expires.to_string()),
    ]);
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            annotations: Some(annotations),
            labels: Some(BTreeMap::from([(
                prism_api::names::labels::MANAGED_BY.to_string(),
                prism_api::names::labels::MANAGED_BY_VALUE.to_string(),
            )])),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(data),
        ..Secret::default()
    }
}

fn text(secret: &Secret, key: &'static str) -> Result<String, CertError> {
    let name = secret.metadata.name.clone().unwrap_or_default();
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        .filter(|s| !s.is_empty())
        .ok_or(CertError::Missing(name, key))
}

/// The serving certificate of a Secret from either source (the operator's, or cert-manager's).
pub fn serving_from(secret: &Secret) -> Result<ServingCert, CertError> {
    Ok(ServingCert {
        ca_pem: text(secret, CA_CERT)?,
        cert_pem: text(secret, TLS_CERT)?,
        key_pem: text(secret, TLS_KEY)?,
    })
}

/// The content of a Secret the operator made, or none if it is not one (then it is replaced).
pub fn generated_from(secret: &Secret) -> Option<Generated> {
    let annotation = |key: &str| secret.metadata.annotations.as_ref()?.get(key)?.parse::<i64>().ok();
    Some(Generated {
        serving: serving_from(secret).ok()?,
        ca_key_pem: text(secret, CA_KEY).ok()?,
        serving_expires: annotation(SERVING_EXPIRES)?,
        ca_expires: annotation(CA_EXPIRES)?,
    })
}

/// Makes sure Secret `name` holds certificates valid beyond the renewal window, creating or
/// renewing it; replicas race safely (create fails with 409 for all but one, a replace with a
/// stale resourceVersion too) and then read what the winner wrote.
pub async fn ensure(
    api: &Api<Secret>,
    namespace: &str,
    name: &str,
    names: &[String],
    now: i64,
) -> Result<ServingCert, CertError> {
    let api_error = |source| CertError::Api { name: name.to_string(), source };
    for _ in 0..5 {
        let existing = api.get_opt(name).await.map_err(api_error)?;
        let current = existing.as_ref().and_then(generated_from);
        let next = match renewal(current.as_ref(), now) {
            Renewal::Keep => match current {
                Some(current) => return Ok(current.serving),
                None => generate(names, now)?,
            },
            Renewal::Serving => match &current {
                Some(current) => renew_serving(current, names, now)?,
                None => generate(names, now)?,
            },
            Renewal::All => generate(names, now)?,
        };
        let mut desired = secret(name, namespace, &next);
        let written = match existing {
            None => api.create(&PostParams::default(), &desired).await,
            Some(existing) => {
                desired.metadata.resource_version = existing.metadata.resource_version;
                api.replace(name, &PostParams::default(), &desired).await
            }
        };
        match written {
            Ok(_) => {
                tracing::info!(secret = name, "wrote the webhook's certificates");
                return Ok(next.serving);
            }
            // Another replica wrote first: read what it wrote.
            Err(kube::Error::Api(status)) if status.code == 409 => continue,
            Err(source) => return Err(api_error(source)),
        }
    }
    let existing = api.get(name).await.map_err(api_error)?;
    serving_from(&existing)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn a_generated_secret_reads_back_and_is_kept_until_the_renewal_window() {
        let names = service_names("prism-operator-webhook", "prism-system");
        assert_eq!(names[2], "prism-operator-webhook.prism-system.svc");
        let generated = generate(&names, NOW).unwrap();
        let secret = secret("cert", "prism-system", &generated);
        assert_eq!(generated_from(&secret), Some(generated.clone()));
        assert_eq!(renewal(Some(&generated), NOW), Renewal::Keep);
        let late = generated.serving_expires - RENEW_BEFORE_SECONDS + 1;
        assert_eq!(renewal(Some(&generated), late), Renewal::Serving);
        assert_eq!(renewal(Some(&generated), generated.ca_expires - 1), Renewal::All);
        assert_eq!(renewal(None, NOW), Renewal::All);
    }

    #[test]
    fn renewal_keeps_the_ca_so_the_bundle_does_not_change() {
        let names = service_names("w", "ns");
        let generated = generate(&names, NOW).unwrap();
        let later = NOW + 340 * 86400;
        let renewed = renew_serving(&generated, &names, later).unwrap();
        assert_eq!(renewed.serving.ca_pem, generated.serving.ca_pem);
        assert_ne!(renewed.serving.cert_pem, generated.serving.cert_pem);
        assert_eq!(renewed.serving_expires, later + SERVING_VALIDITY_DAYS * 86400);
        assert_eq!(renewal(Some(&renewed), later), Renewal::Keep);
        super::super::tls::server_config(&renewed.serving).expect("rustls accepts it");
    }

    #[test]
    fn a_secret_without_its_keys_is_refused_with_the_missing_key() {
        let mut secret = secret("cert", "ns", &generate(&service_names("w", "ns"), NOW).unwrap());
        secret.data.as_mut().unwrap().remove(TLS_KEY);
        assert_eq!(serving_from(&secret).unwrap_err().to_string(), "Secret cert lacks tls.key");
        assert_eq!(generated_from(&secret), None);
    }
}
