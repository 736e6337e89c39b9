//! The real kubectl (/usr/bin/kubectl) against the emulator. Each test has its own emulator,
//! port and HOME (kubectl caches discovery under $HOME/.kube/cache).

mod common;

use std::process::{Command, Stdio};

use common::kubectl::{Env, KUBECTL};

const WIDGET: &str = "apiVersion: example.com/v1
kind: Widget
metadata:
  name: w1
spec:
  color: red
  size: 3
";

fn crd_yaml() -> String {
    serde_json::to_string(&common::widget_crd()).expect("json is yaml")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applies_crd_and_custom_resource_and_prints_columns() {
    let env = Env::start().await;
    let crd = env.file("crd.yaml", &crd_yaml());
    let w = env.file("w.yaml", WIDGET);
    let out = env.ok(&["apply", "-f", &crd]).await;
    assert!(out.contains("customresourcedefinition.apiextensions.k8s.io/widgets.example.com created"), "{out}");
    let out = env.ok(&["apply", "-f", &w]).await;
    assert!(out.contains("widget.example.com/w1 created"), "{out}");
    let out = env.ok(&["apply", "-f", &w]).await;
    assert!(out.contains("widget.example.com/w1 unchanged"), "{out}");
    let table = env.ok(&["get", "widgets"]).await;
    let header: Vec<&str> = table.lines().next().unwrap_or("").split_whitespace().collect();
    assert_eq!(header, ["NAME", "COLOR", "SIZE", "AGE"], "{table}");
    assert!(table.lines().nth(1).unwrap_or("").starts_with("w1"), "{table}");
    assert!(table.contains("red"), "{table}");
    let out = env.ok(&["get", "wd", "w1", "-o", "yaml"]).await;
    assert!(out.contains("kind: Widget") && out.contains("color: red") && out.contains("uid:"), "{out}");
    let out = env.ok(&["apply", "--server-side", "-f", &w]).await;
    assert!(out.contains("serverside-applied"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_patch_label_and_delete_with_wait() {
    let env = Env::start().await;
    let cm = env.file("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  k: v\n");
    let out = env.ok(&["create", "-f", &cm]).await;
    assert!(out.contains("configmap/c created"), "{out}");
    env.ok(&["patch", "configmap", "c", "--type", "merge", "-p", r#"{"data":{"m":"1"}}"#]).await;
    env.ok(&["patch", "configmap", "c", "--type", "json", "-p", r#"[{"op":"add","path":"/data/j","value":"2"}]"#])
        .await;
    env.ok(&["patch", "configmap", "c", "-p", r#"{"data":{"s":"3"}}"#]).await;
    env.ok(&["label", "configmap", "c", "tier=web"]).await;
    let data = env
        .ok(&["get", "configmap", "c", "-o", "jsonpath={.data.m},{.data.j},{.data.s},{.metadata.labels.tier}"])
        .await;
    assert_eq!(data, "1,2,3,web");
    let out = env.ok(&["get", "configmaps", "-l", "tier=web", "-o", "name"]).await;
    assert_eq!(out.trim(), "configmap/c");
    let out = env.ok(&["delete", "configmap", "c", "--wait", "--timeout=20s"]).await;
    assert!(out.contains("configmap \"c\" deleted"), "{out}");
    let out = env.run(&["get", "configmap", "c"]).await;
    assert!(!out.ok && out.stderr.contains("configmaps \"c\" not found"), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_creates_and_deletes_a_namespace_from_a_manifest() {
    let env = Env::start().await;
    let ns = env.file("ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-a\n");
    let out = env.ok(&["apply", "-f", &ns]).await;
    assert!(out.contains("namespace/team-a created"), "{out}");
    let cm = env.file("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: team-a\n");
    env.ok(&["create", "-f", &cm]).await;
    let out = env.ok(&["get", "namespaces"]).await;
    assert!(out.contains("team-a") && out.contains("Active"), "{out}");
    env.ok(&["delete", "-f", &ns, "--wait", "--timeout=20s"]).await;
    let out = env.ok(&["get", "namespaces", "-o", "name"]).await;
    assert!(!out.contains("team-a"), "{out}");
    let out = env.run(&["-n", "team-a", "get", "configmap", "c"]).await;
    assert!(!out.ok, "contents went with the namespace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_reports_missing_objects_like_the_real_server() {
    let env = Env::start().await;
    let out = env.run(&["get", "configmap", "nope"]).await;
    assert!(!out.ok);
    assert_eq!(out.stderr.trim(), "Error from server (NotFound): configmaps \"nope\" not found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_prints_schema_rejections_like_the_real_server() {
    let env = Env::start().await;
    env.ok(&["apply", "-f", &env.file("crd.yaml", &crd_yaml())]).await;
    let bad =
        env.file("bad.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: bad\nspec:\n  size: -1\n");
    let out = env.run(&["apply", "-f", &bad]).await;
    assert!(!out.ok);
    assert_eq!(
        out.stderr.trim(),
        "The Widget \"bad\" is invalid: spec.size: Invalid value: -1: spec.size in body should be greater than or equal to 0"
    );
    let unknown =
        env.file("unknown.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: u\nspec:\n  extra: 1\n");
    let out = env.run(&["create", "-f", &unknown]).await;
    assert!(out.stderr.contains("strict decoding error: unknown field \"spec.extra\""), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_describe_shows_events_of_the_object() {
    let env = Env::start().await;
    let cm = env
        .em
        .emulator
        .cluster
        .create_builtin("", "v1", "configmaps", "default", serde_json::json!({"metadata": {"name": "c"}}))
        .expect("create");
    let uid = cm.object["metadata"]["uid"].clone();
    let event = serde_json::json!({
        "metadata": {"name": "c.1"},
        "involvedObject": {"kind": "ConfigMap", "name": "c", "namespace": "default", "uid": uid, "apiVersion": "v1"},
        "reason": "Tested", "message": "hello from the test", "type": "Normal",
        "source": {"component": "tester"}, "count": 1,
        "firstTimestamp": kube_emulator::meta::now_rfc3339(), "lastTimestamp": kube_emulator::meta::now_rfc3339(),
    });
    env.em.emulator.cluster.create_builtin("", "v1", "events", "default", event).expect("event");
    let out = env.ok(&["describe", "configmap", "c"]).await;
    assert!(out.contains("Tested") && out.contains("hello from the test") && out.contains("tester"), "{out}");
    let out = env.ok(&["get", "events"]).await;
    let header: Vec<&str> = out.lines().next().unwrap_or("").split_whitespace().collect();
    assert_eq!(header, ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"], "{out}");
    assert!(out.contains("configmap/c"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_watch_prints_a_row_per_change() {
    let env = Env::start().await;
    let mut child = Command::new(KUBECTL)
        .args(["get", "configmaps", "--watch", "--output-watch-events"])
        .env("HOME", env.home.path())
        .env("KUBECONFIG", &env.kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kubectl");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let cluster = &env.em.emulator.cluster;
    cluster
        .create_builtin("", "v1", "configmaps", "default", serde_json::json!({"metadata": {"name": "w"}}))
        .expect("create");
    let t = cluster.target("", "v1", "configmaps", "default", "w").expect("target");
    let opts = kube_emulator::WriteOptions::default();
    cluster.delete(&t, &serde_json::json!({}), &opts).expect("delete");
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    child.kill().expect("stop kubectl");
    let out = child.wait_with_output().expect("output");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines.first().cloned(), Some(vec!["EVENT", "NAME", "DATA", "AGE"]), "{text}");
    assert!(lines.iter().any(|l| l[..2] == ["ADDED", "w"]), "{text}");
    assert!(lines.iter().any(|l| l[..2] == ["DELETED", "w"]), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_server_side_apply_of_a_crd_then_wait_for_established() {
    let env = Env::start().await;
    let crd = env.file("crd.yaml", &crd_yaml());
    let out = env.ok(&["apply", "--server-side", "-f", &crd]).await;
    assert!(out.contains("serverside-applied"), "{out}");
    let out = env.ok(&["wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=20s"]).await;
    assert!(out.contains("condition met"), "{out}");
    let out = env.ok(&["api-resources", "--api-group=example.com"]).await;
    assert!(out.contains("widgets") && out.contains("wd") && out.contains("Widget"), "{out}");
    let out = env.ok(&["apply", "--server-side", "-f", &env.file("w.yaml", WIDGET)]).await;
    assert!(out.contains("serverside-applied"), "{out}");
    let out = env.ok(&["get", "widgets", "-o", "wide"]).await;
    assert!(out.contains("w1"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_create_generators_send_protobuf_and_work() {
    let env = Env::start().await;
    env.ok(&["create", "namespace", "gen"]).await;
    env.ok(&["-n", "gen", "create", "configmap", "c", "--from-literal=a=b"]).await;
    env.ok(&["-n", "gen", "create", "secret", "generic", "s", "--from-literal=p=q"]).await;
    env.ok(&["-n", "gen", "create", "serviceaccount", "bot"]).await;
    env.ok(&["-n", "gen", "create", "deployment", "web", "--image=nginx:1.27", "--replicas=2"]).await;
    env.ok(&["-n", "gen", "create", "role", "r", "--verb=get", "--resource=pods"]).await;
    env.ok(&["-n", "gen", "create", "rolebinding", "rb", "--role=r", "--serviceaccount=gen:bot"]).await;
    let out = env.ok(&["-n", "gen", "get", "configmap", "c", "-o", "jsonpath={.data.a}"]).await;
    assert_eq!(out, "b");
    let out = env.ok(&["-n", "gen", "get", "secret", "s", "-o", "jsonpath={.data.p}"]).await;
    assert_eq!(out, "cQ==");
    let out = env
        .ok(&[
            "-n",
            "gen",
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.spec.replicas},{.spec.template.spec.containers[0].image}",
        ])
        .await;
    assert_eq!(out, "2,nginx:1.27");
    let out =
        env.ok(&["-n", "gen", "get", "rolebinding", "rb", "-o", "jsonpath={.roleRef.name},{.subjects[0].name}"]).await;
    assert_eq!(out, "r,bot");
}

/// Every other `kubectl create` generator: each posts protobuf, which the real server decodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kubectl_create_generator_is_decoded_from_protobuf() {
    let env = Env::start().await;
    env.ok(&["create", "cronjob", "tick", "--image=busybox:1.36", "--schedule=*/5 * * * *", "--", "date"]).await;
    let out = env.ok(&[
        "get",
        "cronjob",
        "tick",
        "-o",
        "jsonpath={.spec.schedule},{.spec.jobTemplate.spec.template.spec.restartPolicy},{.spec.jobTemplate.spec.template.spec.containers[0].command[0]}",
    ])
    .await;
    assert_eq!(out, "*/5 * * * *,OnFailure,date");
    env.ok(&["create", "job", "once", "--image=busybox:1.36", "--", "echo", "hi"]).await;
    let out = env.ok(&[
        "get",
        "job",
        "once",
        "-o",
        "jsonpath={.spec.template.spec.restartPolicy},{.spec.template.spec.containers[0].command[1]},{.spec.selector.matchLabels}",
    ])
    .await;
    assert!(out.starts_with("Never,hi,{\"batch.kubernetes.io/controller-uid\""), "{out}");
    // --from sends the CronJob's stored template (with the server's defaults) and an owner.
    env.ok(&["create", "job", "manual", "--from=cronjob/tick"]).await;
    let out = env.ok(&[
        "get",
        "job",
        "manual",
        "-o",
        "jsonpath={.metadata.ownerReferences[0].kind},{.metadata.annotations.cronjob\\.kubernetes\\.io/instantiate},{.spec.template.spec.terminationGracePeriodSeconds},{.spec.template.spec.containers[0].imagePullPolicy}",
    ])
    .await;
    assert_eq!(out, "CronJob,manual,30,IfNotPresent");
    env.ok(&["create", "service", "clusterip", "web", "--tcp=80:8080"]).await;
    let out = env
        .ok(&[
            "get",
            "service",
            "web",
            "-o",
            "jsonpath={.spec.ports[0].port},{.spec.ports[0].targetPort},{.spec.selector.app}",
        ])
        .await;
    assert_eq!(out, "80,8080,web");
    env.ok(&["create", "service", "externalname", "ext", "--external-name=example.com"]).await;
    let out = env.ok(&["get", "service", "ext", "-o", "jsonpath={.spec.type},{.spec.externalName}"]).await;
    assert_eq!(out, "ExternalName,example.com");
    env.ok(&["create", "service", "nodeport", "np", "--tcp=443:8443", "--node-port=30443"]).await;
    let out = env.ok(&["get", "service", "np", "-o", "jsonpath={.spec.type},{.spec.ports[0].nodePort}"]).await;
    assert_eq!(out, "NodePort,30443");
    env.ok(&["create", "ingress", "site", "--class=nginx", "--rule=example.com/api*=web:80,tls=site-tls"]).await;
    let out = env.ok(&[
        "get",
        "ingress",
        "site",
        "-o",
        "jsonpath={.spec.ingressClassName},{.spec.rules[0].host},{.spec.rules[0].http.paths[0].path},{.spec.rules[0].http.paths[0].pathType},{.spec.rules[0].http.paths[0].backend.service.port.number},{.spec.tls[0].secretName}",
    ])
    .await;
    assert_eq!(out, "nginx,example.com,/api,Prefix,80,site-tls");
    env.ok(&["create", "poddisruptionbudget", "web", "--selector=app=web", "--min-available=50%"]).await;
    let out =
        env.ok(&["get", "pdb", "web", "-o", "jsonpath={.spec.minAvailable},{.spec.selector.matchLabels.app}"]).await;
    assert_eq!(out, "50%,web");
    env.ok(&["create", "poddisruptionbudget", "db", "--selector=tier in (db)", "--max-unavailable=1"]).await;
    let out = env
        .ok(&[
            "get",
            "pdb",
            "db",
            "-o",
            "jsonpath={.spec.maxUnavailable},{.spec.selector.matchExpressions[0].operator}",
        ])
        .await;
    assert_eq!(out, "1,In");
    env.ok(&["create", "priorityclass", "low", "--value=0", "--description=last"]).await;
    let out = env.ok(&["get", "priorityclass", "low", "-o", "jsonpath={.value},{.description}"]).await;
    assert_eq!(out, "0,last");
    env.ok(&["create", "quota", "q", "--hard=cpu=1,memory=1G,pods=2", "--scopes=BestEffort"]).await;
    let out =
        env.ok(&["get", "quota", "q", "-o", "jsonpath={.spec.hard.memory},{.spec.hard.pods},{.spec.scopes[0]}"]).await;
    assert_eq!(out, "1G,2,BestEffort");
    env.ok(&["create", "clusterrole", "agg", "--aggregation-rule=example.com/aggregate=true"]).await;
    let out = env
        .ok(&["get", "clusterrole", "agg", "-o", "jsonpath={.aggregationRule.clusterRoleSelectors[0].matchLabels}"])
        .await;
    assert_eq!(out, "{\"example.com/aggregate\":\"true\"}");
}

#[test]
fn standalone_binary_prints_its_address_serves_kubectl_and_stops_on_sigterm() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().expect("tmp");
    let kc = dir.path().join("kubeconfig");
    let crd = dir.path().join("crd.yaml");
    std::fs::write(&crd, crd_yaml()).expect("crd");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube-emulator"))
        .args(["serve", "--listen", "127.0.0.1:0", "--kubeconfig-out"])
        .arg(&kc)
        .arg("--crd")
        .arg(&crd)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn emulator");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("ready line");
    let ready: serde_json::Value = serde_json::from_str(&line).expect("one JSON line");
    assert!(ready["server"].as_str().is_some_and(|s| s.starts_with("https://127.0.0.1:")), "{line}");
    assert_eq!(ready["kubeconfig"].as_str(), Some(kc.to_str().expect("utf8")));
    let out = Command::new(KUBECTL)
        .args(["get", "crd", "widgets.example.com", "-o", "name"])
        .env("HOME", dir.path())
        .env("KUBECONFIG", &kc)
        .output()
        .expect("kubectl");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "customresourcedefinition.apiextensions.k8s.io/widgets.example.com"
    );
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let exit = child.wait().expect("wait");
    assert!(exit.success(), "clean exit on SIGTERM: {exit:?}");
}

/// The project's CRDs, as checked in at the repository's root.
fn prism_crds() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crds/prism-crds.yaml");
    std::fs::read_to_string(path).expect("crds/prism-crds.yaml")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_explain_reads_the_schemas_of_custom_and_built_in_kinds() {
    let env = Env::start().await;
    env.ok(&["apply", "--server-side", "-f", &env.file("crds.yaml", &prism_crds())]).await;
    let header = |out: &str| out.lines().take(3).map(str::trim).collect::<Vec<_>>().join(" ");
    // Every kind prefers v1beta1, its storage version; the older one is explained on request.
    for (kind, version) in [("prismcluster", "v1beta1"), ("prismnamespace", "v1beta1"), ("prismpattern", "v1beta1")] {
        let out = env.ok(&["explain", kind]).await;
        assert!(header(&out).starts_with("GROUP:      prism.io"), "{out}");
        assert!(out.contains(&format!("VERSION:    {version}")) && out.contains("spec\t<Object>"), "{out}");
        assert!(out.contains("metadata\t<ObjectMeta>"), "metadata is ObjectMeta: {out}");
    }
    let out = env.ok(&["explain", "prismcluster.spec.proxy"]).await;
    assert!(out.contains("FIELD: proxy <Object>") && out.contains("replicas\t<integer>"), "{out}");
    let out = env.ok(&["explain", "prismpatterns", "--api-version=prism.io/v1beta1"]).await;
    assert!(out.contains("KIND:       PrismPattern") && out.contains("VERSION:    v1beta1"), "{out}");
    let out = env.ok(&["explain", "prismpatterns.prism.io.spec"]).await;
    assert!(out.contains("FIELD: spec <Object>"), "{out}");
    let out = env.ok(&["explain", "prismpatterns.spec", "--api-version=prism.io/v1alpha1"]).await;
    assert!(out.contains("VERSION:    v1alpha1") && out.contains("backendConfig\t<Object>"), "upstream's shape: {out}");
    // kubectl reads `resource.version.group` as a resource and a field path, against any server.
    let out = env.run(&["explain", "prismpatterns.v1beta1.prism.io"]).await;
    assert!(!out.ok && out.stderr.contains(r#"field "io" does not exist"#), "{}", out.stderr);
    let out = env.ok(&["explain", "deployment.spec.template.spec.containers.ports"]).await;
    assert!(
        out.contains("FIELD: ports <[]ContainerPort>") && out.contains("containerPort\t<integer> -required-"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_client_side_apply_merges_lists_by_the_published_keys() {
    let env = Env::start().await;
    let deployment = |containers: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n{containers}"
        )
    };
    let two = "      - {name: a, image: nginx:1}\n      - {name: b, image: nginx:1}\n";
    env.ok(&["apply", "-f", &env.file("two.yaml", &deployment(two))]).await;
    // A container added by someone else survives the apply; the one dropped from the file goes.
    env.ok(&[
        "patch",
        "deployment",
        "web",
        "--type=strategic",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox"}]}}}}"#,
    ])
    .await;
    let one = "      - {name: a, image: nginx:2}\n";
    env.ok(&["apply", "-f", &env.file("one.yaml", &deployment(one))]).await;
    let names = env.ok(&["get", "deployment", "web", "-o", "jsonpath={.spec.template.spec.containers[*].name}"]).await;
    let mut names: Vec<&str> = names.split_whitespace().collect();
    names.sort();
    assert_eq!(names, ["a", "sidecar"], "merged by name (the order is the merge engine's)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_explain_reads_openapi_v2_too() {
    let env = Env::start().await;
    env.ok(&["apply", "--server-side", "-f", &env.file("crds.yaml", &prism_crds())]).await;
    let out = env.ok(&["explain", "prismcluster.spec.proxy", "--output=plaintext-openapiv2"]).await;
    assert!(out.contains("RESOURCE: proxy <Object>") && out.contains("replicas\t<integer>"), "{out}");
    let out = env.ok(&["explain", "deployment.spec.replicas", "--output=plaintext-openapiv2"]).await;
    assert!(out.contains("FIELD:    replicas <integer>"), "{out}");
}
