//! TLS and authentication as kube-apiserver 1.33 answers them, with the kube client and kubectl:
//! HTTPS with the emulator's CA, the admin's client certificate and token, ServiceAccount tokens
//! from the TokenRequest API bound to their ServiceAccount, and the 401 of anything else.

mod common;

use common::kubectl::Env;
use k8s_openapi::api::authentication::v1::{SelfSubjectReview, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, DeleteParams, PostParams};
use kube::{Client, Config};
use kube_emulator::emulator::Transport;
use kube_emulator::{Emulator, Server};
use serde_json::json;

/// The real server's 401 body.
fn unauthorized() -> (u16, serde_json::Value) {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": "Unauthorized", "reason": "Unauthorized", "code": 401});
    (401, body)
}

async fn client_of(yaml: &str) -> Client {
    Client::try_from(common::config_from(yaml).await).expect("client")
}

async fn served() -> Server {
    Emulator::start().serve("127.0.0.1:0").await.expect("serve")
}

async fn whoami(client: &Client) -> k8s_openapi::api::authentication::v1::UserInfo {
    let api: Api<SelfSubjectReview> = Api::all(client.clone());
    let review = api.create(&PostParams::default(), &SelfSubjectReview::default()).await.expect("whoami");
    review.status.and_then(|s| s.user_info).expect("user info")
}

#[tokio::test]
async fn https_with_the_emulators_ca_and_the_admins_client_certificate() {
    let server = served().await;
    assert!(server.url().starts_with("https://127.0.0.1:"));
    let yaml = server.kubeconfig_yaml();
    assert!(yaml.contains("certificate-authority-data:") && yaml.contains("client-certificate-data:"), "{yaml}");
    let admin = client_of(&yaml).await;
    let me = whoami(&admin).await;
    assert_eq!(me.username.as_deref(), Some("kubernetes-admin"));
    assert_eq!(me.groups, Some(vec!["system:masters".to_string(), "system:authenticated".to_string()]));
    let namespaces: Api<Namespace> = Api::all(admin);
    assert!(namespaces.get("default").await.is_ok());

    // A client that does not trust the emulator's CA fails the handshake.
    let mut config = Config::new(server.url().parse().expect("url"));
    config.root_cert = Some(vec![rcgen_ca_der()]);
    let stranger = Client::try_from(config).expect("client");
    let err = Api::<Namespace>::all(stranger).get("default").await.expect_err("untrusted");
    assert!(!matches!(err, kube::Error::Api(_)), "a TLS failure, not an answer: {err:?}");
}

/// A benchmark measures on a fresh emulator after stopping the last: what the last one takes to
/// free must be paid before `stop` returns, not during the next measurement. On two workers the
/// aborted connections are dropped on the other one, while `stop` goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_a_server_closes_its_connections_and_frees_the_emulator() {
    let server = served().await;
    let namespaces: Api<Namespace> = Api::all(client_of(&server.kubeconfig_yaml()).await);
    namespaces.get("default").await.expect("served");
    // A watch holds a connection of its own, which the server ends.
    let watch = namespaces.watch(&Default::default(), "0").await.expect("a watch");
    let cluster = std::sync::Arc::downgrade(&server.emulator.cluster);
    server.stop().await;
    assert!(cluster.upgrade().is_none(), "the emulator is freed when stop returns");
    drop(watch);
}

/// A CA the emulator never heard of.
fn rcgen_ca_der() -> Vec<u8> {
    kube_emulator::tls::Ca::generate("someone-else").expect("CA").der().to_vec()
}

#[tokio::test]
async fn missing_or_unknown_credentials_are_refused_with_the_real_401() {
    let server = served().await;
    assert_eq!(raw_get(&server, None).await, unauthorized());
    assert_eq!(raw_get(&server, Some("not-a-token")).await, unauthorized());
    let client = client_of(&server.token_kubeconfig_yaml("not-a-token")).await;
    let status = common::status_of(Api::<Namespace>::all(client).list(&Default::default()).await.expect_err("401"));
    assert_eq!((status.code, status.reason.as_str(), status.message.as_str()), (401, "Unauthorized", "Unauthorized"));
}

/// GET /api over HTTPS with an optional bearer token, without kube's error parsing: status and body.
async fn raw_get(server: &Server, token: Option<&str>) -> (u16, serde_json::Value) {
    let yaml = server.token_kubeconfig_yaml(token.unwrap_or("placeholder"));
    let mut config = common::config_from(&yaml).await;
    if token.is_none() {
        config.auth_info.token = None;
    }
    let client = Client::try_from(config).expect("client");
    let req = http::Request::get("/api/v1/namespaces").body(vec![]).expect("request");
    let resp = client.send(req.map(kube::client::Body::from)).await.expect("an answer");
    let code = resp.status().as_u16();
    let body = http_body_util::BodyExt::collect(resp.into_body()).await.expect("body").to_bytes();
    (code, serde_json::from_slice(&body).expect("a JSON body"))
}

#[tokio::test]
async fn a_service_account_token_is_bound_to_its_service_account() {
    let server = served().await;
    let admin = client_of(&server.kubeconfig_yaml()).await;
    let token = common::service_account_token(&admin, "default", "robot").await;
    assert_eq!(token.split('.').count(), 3, "a JWT");
    let robot = client_of(&server.token_kubeconfig_yaml(&token)).await;
    let me = whoami(&robot).await;
    assert_eq!(me.username.as_deref(), Some("system:serviceaccount:default:robot"));
    assert_eq!(
        me.groups.unwrap_or_default(),
        ["system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"]
    );
    assert!(me.extra.is_some_and(|e| e.contains_key("authentication.kubernetes.io/credential-id")));

    // Deleted, the ServiceAccount takes its tokens with it; a new one of the same name is
    // another ServiceAccount (another uid).
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), "default");
    sas.delete("robot", &DeleteParams::default()).await.expect("delete");
    assert_eq!(raw_get(&server, Some(&token)).await, unauthorized());
    let sa = serde_json::from_value(json!({"metadata": {"name": "robot"}})).expect("sa");
    sas.create(&PostParams::default(), &sa).await.expect("again");
    assert_eq!(raw_get(&server, Some(&token)).await.0, 401);
}

#[tokio::test]
async fn token_requests_are_validated_and_audiences_bind_tokens() {
    let server = served().await;
    let admin = client_of(&server.kubeconfig_yaml()).await;
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), "default");
    let short = TokenRequest {
        spec: TokenRequestSpec { expiration_seconds: Some(60), ..TokenRequestSpec::default() },
        ..TokenRequest::default()
    };
    let err = sas.create_token_request("default-sa", &PostParams::default(), &short).await.expect_err("no SA");
    assert_eq!(common::status_of(err).message, r#"serviceaccounts "default-sa" not found"#);
    let sa = serde_json::from_value(json!({"metadata": {"name": "bot"}})).expect("sa");
    sas.create(&PostParams::default(), &sa).await.expect("sa");
    let err = sas.create_token_request("bot", &PostParams::default(), &short).await.expect_err("too short");
    assert_eq!(
        common::status_of(err).message,
        "TokenRequest.authentication.k8s.io \"bot\" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"
    );
    // A token for another audience cannot be used against the API.
    let foreign = TokenRequest {
        spec: TokenRequestSpec { audiences: vec!["vault".into()], ..TokenRequestSpec::default() },
        ..TokenRequest::default()
    };
    let answer = sas.create_token_request("bot", &PostParams::default(), &foreign).await.expect("token");
    let token = answer.status.expect("status").token;
    assert_eq!(raw_get(&server, Some(&token)).await.0, 401);
}

#[tokio::test]
async fn plain_http_behind_a_flag_with_the_admins_token() {
    let server = Emulator::start().serve_with("127.0.0.1:0", Transport::Http).await.expect("serve");
    assert!(server.url().starts_with("http://127.0.0.1:"));
    let yaml = server.kubeconfig_yaml();
    assert!(yaml.contains(&format!("token: {}", server.emulator.authenticator.admin_token())), "{yaml}");
    let admin = client_of(&yaml).await;
    assert_eq!(whoami(&admin).await.username.as_deref(), Some("kubernetes-admin"));
    assert_eq!(raw_get(&server, None).await.0, 401);
}

#[tokio::test]
async fn the_in_process_router_is_the_admin_unless_a_token_says_otherwise() {
    let (emulator, admin) = common::in_process();
    assert_eq!(whoami(&admin).await.username.as_deref(), Some("kubernetes-admin"));
    let token = common::service_account_token(&admin, "default", "inproc").await;
    let robot = common::client_with_token(&emulator, &token);
    assert_eq!(whoami(&robot).await.username.as_deref(), Some("system:serviceaccount:default:inproc"));
    let garbage = common::client_with_token(&emulator, "garbage");
    let err = Api::<Namespace>::all(garbage).list(&Default::default()).await.expect_err("401");
    assert_eq!(common::status_of(err).code, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_creates_tokens_and_is_refused_with_a_wrong_one() {
    let env = Env::start().await;
    env.ok(&["create", "serviceaccount", "bot"]).await;
    let token = env.ok(&["create", "token", "bot", "--duration=15m"]).await;
    let token = token.trim();
    assert_eq!(token.split('.').count(), 3, "{token}");
    let bot = env.file("bot.kubeconfig", &env.em.token_kubeconfig_yaml(token));
    let out = env
        .run_with(std::path::Path::new(&bot), &["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"])
        .await;
    assert!(out.ok, "{}", out.stderr);
    assert_eq!(out.stdout, "system:serviceaccount:default:bot");
    let out = env.ok(&["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"]).await;
    assert_eq!(out, "kubernetes-admin");
    let wrong = env.file("wrong.kubeconfig", &env.em.token_kubeconfig_yaml("wrong-token"));
    let out = env.run_with(std::path::Path::new(&wrong), &["get", "namespaces"]).await;
    assert!(!out.ok);
    // Discovery fails first, as against a real server.
    let refused =
        "error: You must be logged in to the server (the server has asked for the client to provide credentials)";
    assert!(out.stderr.contains(refused), "{}", out.stderr);
    let out = env.run(&["create", "token", "bot", "--duration=1m"]).await;
    assert!(!out.ok && out.stderr.contains("may not specify a duration less than 10 minutes"), "{}", out.stderr);
}
