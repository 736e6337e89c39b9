#!/usr/bin/env python3
"""Checks charts/prism-operator with real Helm (helm-sdkpy, the Helm v4 library) against the
Kubernetes API emulator. Run through scripts/chart-check.sh, which installs what this needs.

Steps: lint; values that must be refused at install time; install cluster-wide and check every
object with kubectl; start the operator binary with the Deployment's own arguments, over HTTPS
as the chart's ServiceAccount (a token from `kubectl create token`, the emulator enforcing the
chart's RBAC), and see it take the Lease with no request refused; install namespace-scoped with
a ServiceMonitor; upgrade; uninstall (the CRDs stay).
Prints one line per check and ends with 'N passed, N failed'.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

import helm_sdkpy as helm
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "prism-operator"
BIN_DIR = Path(os.environ.get("CHART_CHECK_BIN_DIR", ROOT / "target" / "debug"))
EMULATOR = BIN_DIR / "kube-emulator"
OPERATOR = BIN_DIR / "prism-operator"

RELEASE = "prism-operator"  # the README's release name: objects are named prism-operator
RELEASE_NS = "prism-system"
SCOPED_RELEASE = "scoped"
SCOPED_NS = "prism-ops"
WATCHED_NS = "prism-apps"

# Values the schema (or a template guard) must refuse, with a fragment of the expected message.
BAD_VALUES: list[tuple[str, dict[str, Any], str]] = [
    ("replicaCount not a number", {"replicaCount": "two"}, "/replicaCount"),
    ("unknown log format", {"logging": {"format": "xml"}}, "/logging/format"),
    ("a misspelt key", {"replicas": 3}, "replicas"),
    ("two replicas without leader election", {"leaderElection": {"enabled": False}}, "/leaderElection/enabled"),
    ("watchNamespace not a DNS label", {"watchNamespace": "Team_A"}, "/watchNamespace"),
    ("lease duration not whole seconds", {"leaderElection": {"leaseDuration": "1500ms"}}, "leaseDuration"),
    ("privilege escalation", {"securityContext": {"allowPrivilegeEscalation": True}}, "allowPrivilegeEscalation"),
    ("running as root", {"podSecurityContext": {"runAsNonRoot": False}}, "runAsNonRoot"),
    ("QPS below zero", {"kubeApi": {"qps": -1}}, "/kubeApi/qps"),
    ("a PDB that blocks every drain", {"podDisruptionBudget": {"minAvailable": 2}}, "minAvailable"),
]

def monitoring_crd(kind: str) -> dict:
    """A Prometheus Operator CRD (monitoring.coreos.com/v1) that keeps whatever it is given."""
    plural = kind.lower() + "s"
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.monitoring.coreos.com"},
        "spec": {
            "group": "monitoring.coreos.com",
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind, "listKind": kind + "List"},
            "versions": [{"name": "v1", "served": True, "storage": True,
                          "schema": {"openAPIV3Schema": {"type": "object",
                                                         "x-kubernetes-preserve-unknown-fields": True}}}],
        },
    }


DASHBOARD = CHART / "files" / "dashboards" / "prism-operator.json"
RULES = CHART / "files" / "prometheus-rules.yaml"


class Checks:
    def __init__(self) -> None:
        self.passed = 0
        self.failed: list[str] = []

    def check(self, what: str, ok: bool, detail: Any = "") -> bool:
        if ok:
            self.passed += 1
            print(f"  ok    {what}")
        else:
            self.failed.append(what)
            print(f"  FAIL  {what}" + (f": {detail}" if detail != "" else ""))
        return ok

    def equal(self, what: str, actual: Any, expected: Any) -> bool:
        return self.check(what, actual == expected, f"got {actual!r}, want {expected!r}")


class Emulator:
    """The kube-emulator binary on a loopback port."""

    def __init__(self, workdir: Path) -> None:
        self.kubeconfig = workdir / "kubeconfig"
        self.proc = subprocess.Popen(
            [str(EMULATOR), "serve", "--listen", "127.0.0.1:0", "--kubeconfig-out", str(self.kubeconfig)],
            stdout=subprocess.PIPE, stderr=open(workdir / "emulator.log", "w"), text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"the emulator did not start; see {workdir / 'emulator.log'}")
        self.server = json.loads(line)["server"]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def kubectl(kubeconfig: Path, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, KUBECONFIG=str(kubeconfig))
    result = subprocess.run(["kubectl", *args], input=stdin, env=env, capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
    return result


def get(kubeconfig: Path, kind: str, name: str, namespace: str | None = None) -> dict | None:
    args = ["get", kind, name, "-o", "json"] + (["-n", namespace] if namespace else [])
    result = kubectl(kubeconfig, *args, check=False)
    if result.returncode != 0:
        if "NotFound" in result.stderr or "not found" in result.stderr:
            return None
        raise RuntimeError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
    return json.loads(result.stdout)


def service_account_kubeconfig(kubeconfig: Path, namespace: str, name: str, out: Path) -> str:
    """A kubeconfig of the admin's cluster (server, CA) whose user is a token of the ServiceAccount
    `namespace/name`, as a pod of it would hold. Returns the user name the API server sees."""
    token = kubectl(kubeconfig, "create", "token", name, "-n", namespace, "--duration=1h").stdout.strip()
    config = yaml.safe_load(kubeconfig.read_text())
    config["users"] = [{"name": "service-account", "user": {"token": token}}]
    for context in config["contexts"]:
        context["context"]["user"] = "service-account"
    out.write_text(yaml.safe_dump(config))
    return f"system:serviceaccount:{namespace}:{name}"


def requests_of(kubeconfig: Path, user: str) -> tuple[int, list[str]]:
    """How many requests `user` sent, and those the emulator refused (401, 403), from its log."""
    log = json.loads(kubectl(kubeconfig, "get", "--raw", "/emulator/requests?log=true").stdout)["log"]
    sent = [r for r in log if r.get("user") == user]
    return len(sent), [f"{r['method']} {r['uri']} -> {r['code']}" for r in sent if r["code"] in (401, 403)]


def expected_rules(section: str, lease_name: str) -> list[dict]:
    """The rules of files/rbac-rules.yaml as the templates render them."""
    text = (CHART / "files" / "rbac-rules.yaml").read_text()
    text = text.replace("{{ .Values.leaderElection.leaseName }}", lease_name)
    rules = yaml.safe_load(text)[section]
    keys = ("apiGroups", "resources", "resourceNames", "verbs")
    return [{k: r[k] for k in keys if k in r} for r in rules]


def default_values() -> dict:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def eventually(timeout: float, probe: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = probe()
        except Exception:  # noqa: BLE001 - a probe that cannot answer yet
            value = None
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


async def lint(c: Checks, kubeconfig: Path) -> None:
    print("lint")
    config = helm.Configuration(namespace=RELEASE_NS, kubeconfig=str(kubeconfig))
    result = await helm.Lint(config).run(str(CHART))
    messages = result.get("Messages") or []
    # Severity: 1 info (e.g. "icon is recommended"), 2 warning, 3 error.
    serious = [m for m in messages if m.get("Severity", 0) >= 2]
    c.check("helm lint: no errors or warnings", not result.get("Errors") and not serious, messages)


async def refused_values(c: Checks, kubeconfig: Path) -> None:
    print("values refused at install time")
    config = helm.Configuration(namespace=RELEASE_NS, kubeconfig=str(kubeconfig))
    for what, values, fragment in BAD_VALUES:
        try:
            await helm.Install(config).run("refused", str(CHART), values=values, create_namespace=True, wait=False)
        except helm.HelmError as error:
            message = str(error)
            c.check(f"{what}: refused, naming {fragment}", fragment in message, message)
            if os.environ.get("CHART_CHECK_VERBOSE"):
                print("        " + message.replace("\n", "\n        "))
            continue
        c.check(f"{what}: refused", False, "the install succeeded")
        await helm.Uninstall(config).run("refused", wait=False)
    releases = await helm.List(config).run(all=True) or []
    c.check("no release left by the refused installs", not any(r.get("name") == "refused" for r in releases), releases)


def check_deployment(c: Checks, kc: Path, name: str, ns: str, replicas: int, watch_ns: str | None) -> dict | None:
    deployment = get(kc, "deployment", name, ns)
    if not c.check(f"Deployment {ns}/{name} exists", deployment is not None):
        return None
    values = default_values()
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    args = container["args"]
    c.equal("replicas", spec["replicas"], replicas)
    c.equal("service account", pod["serviceAccountName"], name)
    c.equal("pod seccomp RuntimeDefault", pod["securityContext"].get("seccompProfile"), {"type": "RuntimeDefault"})
    c.equal("pod runAsNonRoot", pod["securityContext"].get("runAsNonRoot"), True)
    sc = container["securityContext"]
    c.equal("container allowPrivilegeEscalation", sc.get("allowPrivilegeEscalation"), False)
    c.equal("container readOnlyRootFilesystem", sc.get("readOnlyRootFilesystem"), True)
    c.equal("container runAsNonRoot", sc.get("runAsNonRoot"), True)
    c.equal("container capabilities", sc.get("capabilities"), {"drop": ["ALL"]})
    c.equal("container seccomp", sc.get("seccompProfile"), {"type": "RuntimeDefault"})
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    c.equal("ports", ports, {"metrics": 8080, "health": 8081, "webhook": 9443})
    c.equal("liveness probe", container["livenessProbe"]["httpGet"], {"path": "/healthz", "port": "health", "scheme": "HTTP"})
    c.equal("readiness probe", container["readinessProbe"]["httpGet"], {"path": "/readyz", "port": "health", "scheme": "HTTP"})
    c.equal("resources", container["resources"], values["resources"])
    env = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") for e in container["env"]}
    c.equal("downward API env", {k: env.get(k) for k in ("POD_NAME", "POD_NAMESPACE")},
            {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"})
    c.check("args: run with leader election in the release namespace",
            args[0] == "run" and "--leader-elect=true" in args and f"--lease-namespace={ns}" in args, args)
    namespace_args = [a for a in args if a.startswith("--namespace=")]
    c.equal("args: watch scope", namespace_args, [f"--namespace={watch_ns}"] if watch_ns else [])
    image = container["image"]
    c.check("image from values, tagged with appVersion", image.startswith(values["image"]["repository"] + ":"), image)
    return deployment


def check_rules(c: Checks, what: str, role: dict | None, section: str) -> None:
    if not c.check(f"{what} exists", role is not None):
        return
    rules = role.get("rules", [])
    c.equal(f"{what}: rules are files/rbac-rules.yaml {section}", rules, expected_rules(section, "prism-operator-leader"))
    wildcard = [r for r in rules if any("*" in r.get(k, []) for k in ("apiGroups", "resources", "verbs", "resourceNames"))]
    c.equal(f"{what}: no wildcards", wildcard, [])


def check_binding(c: Checks, what: str, binding: dict | None, kind: str, role: str, sa: str, sa_ns: str) -> None:
    if not c.check(f"{what} exists", binding is not None):
        return
    c.equal(f"{what}: role", binding["roleRef"], {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role})
    c.equal(f"{what}: subject", binding["subjects"], [{"kind": "ServiceAccount", "name": sa, "namespace": sa_ns}])


async def install_cluster_wide(c: Checks, kc: Path) -> dict | None:
    print(f"install {RELEASE} (cluster-wide) into {RELEASE_NS}")
    config = helm.Configuration(namespace=RELEASE_NS, kubeconfig=str(kc))
    release = await helm.Install(config).run(RELEASE, str(CHART), create_namespace=True, wait=False, timeout=120)
    c.equal("release deployed", release["info"]["status"], "deployed")
    notes = release["info"].get("notes", "")
    c.check("NOTES tell how to create a first PrismCluster", "kind: PrismCluster" in notes and "crds/" in notes, notes)
    chart_crds = [d for d in yaml.safe_load_all((CHART / "crds" / "prism-crds.yaml").read_text()) if d]
    for crd in chart_crds:
        c.check(f"CRD {crd['metadata']['name']} installed", get(kc, "crd", crd["metadata"]["name"]) is not None)
    c.check("ServiceAccount", get(kc, "serviceaccount", RELEASE, RELEASE_NS) is not None)
    deployment = check_deployment(c, kc, RELEASE, RELEASE_NS, replicas=2, watch_ns=None)
    check_rules(c, "ClusterRole", get(kc, "clusterrole", RELEASE), "watched")
    check_binding(c, "ClusterRoleBinding", get(kc, "clusterrolebinding", RELEASE), "ClusterRole", RELEASE, RELEASE, RELEASE_NS)
    lease_role = f"{RELEASE}-leader-election"
    check_rules(c, "leader election Role", get(kc, "role", lease_role, RELEASE_NS), "leaderElection")
    check_binding(c, "leader election RoleBinding", get(kc, "rolebinding", lease_role, RELEASE_NS), "Role", lease_role,
                  RELEASE, RELEASE_NS)
    c.equal("no namespaced Role for the watched resources", get(kc, "role", RELEASE, RELEASE_NS), None)
    tenants = f"{RELEASE}-tenants"
    check_rules(c, "tenants ClusterRole", get(kc, "clusterrole", tenants), "tenants")
    check_binding(c, "tenants ClusterRoleBinding", get(kc, "clusterrolebinding", tenants), "ClusterRole", tenants,
                  RELEASE, RELEASE_NS)
    check_user_roles(c, kc)
    service = get(kc, "service", f"{RELEASE}-metrics", RELEASE_NS)
    if c.check("metrics Service", service is not None) and deployment:
        c.equal("metrics Service port", [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]], [(8080, "metrics")])
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        c.check("metrics Service selects the operator's pods",
                all(labels.get(k) == v for k, v in service["spec"]["selector"].items()), service["spec"]["selector"])
    webhook = get(kc, "service", f"{RELEASE}-webhook", RELEASE_NS)
    if c.check("webhook Service", webhook is not None) and deployment:
        c.equal("webhook Service port", [(p["port"], p["targetPort"]) for p in webhook["spec"]["ports"]], [(443, "webhook")])
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        c.check("webhook Service selects the operator's pods",
                all(labels.get(k) == v for k, v in webhook["spec"]["selector"].items()), webhook["spec"]["selector"])
    pdb = get(kc, "poddisruptionbudget", RELEASE, RELEASE_NS)
    if c.check("PodDisruptionBudget (2 replicas)", pdb is not None):
        c.equal("PodDisruptionBudget minAvailable", pdb["spec"]["minAvailable"], 1)
    sm = kubectl(kc, "get", "crd", "servicemonitors.monitoring.coreos.com", check=False)
    c.check("no ServiceMonitor by default (its CRD is not even needed)", sm.returncode != 0, sm.stdout)
    c.equal("no dashboard ConfigMap by default", get(kc, "configmap", f"{RELEASE}-prism-operator-dashboard", RELEASE_NS), None)
    return deployment


def run_operator_with_chart_args(c: Checks, kc: Path, deployment: dict, workdir: Path) -> None:
    """The Deployment's arguments, as they are, must start the operator and win the Lease, with
    the permissions of the chart's ServiceAccount and nothing more."""
    print("the operator binary with the Deployment's arguments, as the chart's ServiceAccount over HTTPS")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    health = free_port()
    args = []
    for arg in container["args"]:
        if arg.startswith("--metrics-addr="):
            arg = f"--metrics-addr=127.0.0.1:{free_port()}"
        elif arg.startswith("--health-addr="):
            arg = f"--health-addr=127.0.0.1:{health}"
        elif arg.startswith("--webhook-addr="):
            arg = f"--webhook-addr=127.0.0.1:{free_port()}"
        args.append(arg)
    sa_kubeconfig = workdir / "service-account.kubeconfig"
    user = service_account_kubeconfig(kc, RELEASE_NS, deployment["spec"]["template"]["spec"]["serviceAccountName"],
                                      sa_kubeconfig)
    env = dict(os.environ, POD_NAME="prism-operator-7d4b9-x2x9q", POD_NAMESPACE=RELEASE_NS,
               KUBECONFIG=str(sa_kubeconfig))
    log = open(workdir / "operator.log", "w")
    proc = subprocess.Popen([str(OPERATOR), *args], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        def holder() -> str | None:
            lease = get(kc, "lease", "prism-operator-leader", RELEASE_NS)
            return (lease or {}).get("spec", {}).get("holderIdentity")
        held = eventually(30, holder)
        c.check("it takes the Lease in the release namespace as the pod",
                bool(held) and held.startswith("prism-operator-7d4b9-x2x9q"), held)

        def ready() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{health}/readyz", timeout=2) as r:
                return r.status == 200
        c.check("/readyz answers 200 on the health port", eventually(20, ready), "")
        with urllib.request.urlopen(f"http://127.0.0.1:{health}/healthz", timeout=2) as r:
            c.equal("/healthz answers 200", r.status, 200)
        first = (workdir / "operator.log").read_text().splitlines()[:1]
        c.check("logs are JSON (logging.format json)", bool(first) and first[0].startswith("{"), first)
        sent, refused = requests_of(kc, user)
        c.check(f"the operator's requests are {user}'s", sent > 0, sent)
        c.equal(f"none of its {sent} requests refused (401/403)", refused, [])
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = None
        log.close()
    c.equal("it stops cleanly on SIGTERM (the pod's termination)", code, 0)
    lease = get(kc, "lease", "prism-operator-leader", RELEASE_NS) or {}
    c.check("and hands the Lease back", not lease.get("spec", {}).get("holderIdentity"), lease.get("spec"))


def check_user_roles(c: Checks, kc: Path) -> None:
    """The aggregated roles: Kubernetes' edit gathers PrismNamespaces (not PrismClusters), view every kind."""
    def prism_verbs(role: str, resource: str) -> set[str]:
        rules = (get(kc, "clusterrole", role) or {}).get("rules") or []
        return {v for r in rules if "prism.io" in r.get("apiGroups", []) and resource in r.get("resources", [])
                for v in r.get("verbs", [])}
    def gathered() -> bool:
        return "create" in prism_verbs("edit", "prismnamespaces")
    eventually(10, gathered)
    c.check("edit may create PrismNamespaces", "create" in prism_verbs("edit", "prismnamespaces"), prism_verbs("edit", "prismnamespaces"))
    c.check("admin may delete PrismNamespaces", "delete" in prism_verbs("admin", "prismnamespaces"))
    c.equal("edit only reads PrismClusters", prism_verbs("edit", "prismclusters"), {"get", "list", "watch"})
    c.equal("view reads PrismNamespaces", prism_verbs("view", "prismnamespaces"), {"get", "list", "watch"})


async def install_scoped(c: Checks, kc: Path) -> None:
    print(f"install {SCOPED_RELEASE} (watching {WATCHED_NS} only, with a ServiceMonitor, alerts and a dashboard) into {SCOPED_NS}")
    for kind in ("ServiceMonitor", "PrometheusRule"):
        kubectl(kc, "apply", "-f", "-", stdin=json.dumps(monitoring_crd(kind)))
    kubectl(kc, "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": WATCHED_NS}}))
    config = helm.Configuration(namespace=SCOPED_NS, kubeconfig=str(kc))
    values = {"watchNamespace": WATCHED_NS, "replicaCount": 1,
              "metrics": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}},
              "grafana": {"dashboard": {"enabled": True}}}
    release = await helm.Install(config).run(SCOPED_RELEASE, str(CHART), values=values, create_namespace=True, wait=False)
    c.equal("release deployed", release["info"]["status"], "deployed")
    name = f"{SCOPED_RELEASE}-prism-operator"
    check_deployment(c, kc, name, SCOPED_NS, replicas=1, watch_ns=WATCHED_NS)
    check_rules(c, f"Role in {WATCHED_NS}", get(kc, "role", name, WATCHED_NS), "watched")
    check_binding(c, f"RoleBinding in {WATCHED_NS}", get(kc, "rolebinding", name, WATCHED_NS), "Role", name, name, SCOPED_NS)
    c.equal("no ClusterRole", get(kc, "clusterrole", name), None)
    c.equal("no tenants ClusterRole (one namespace has no tenants elsewhere)", get(kc, "clusterrole", f"{name}-tenants"), None)
    c.equal("no ClusterRoleBinding", get(kc, "clusterrolebinding", name), None)
    check_rules(c, f"leader election Role in {SCOPED_NS}", get(kc, "role", f"{name}-leader-election", SCOPED_NS), "leaderElection")
    c.equal("no PodDisruptionBudget with one replica", get(kc, "poddisruptionbudget", name, SCOPED_NS), None)
    monitor = get(kc, "servicemonitor", name, SCOPED_NS)
    if c.check("ServiceMonitor", monitor is not None):
        c.equal("ServiceMonitor endpoint", [(e["port"], e["path"]) for e in monitor["spec"]["endpoints"]], [("metrics", "/metrics")])
        c.equal("ServiceMonitor keeps the clusters' namespace label", monitor["spec"]["endpoints"][0].get("honorLabels"), True)
    rule = get(kc, "prometheusrule", name, SCOPED_NS)
    if c.check("PrometheusRule", rule is not None):
        c.equal("PrometheusRule holds files/prometheus-rules.yaml", rule["spec"], yaml.safe_load(RULES.read_text()))
    dashboard = get(kc, "configmap", f"{name}-dashboard", SCOPED_NS)
    if c.check("dashboard ConfigMap", dashboard is not None):
        c.equal("dashboard ConfigMap has the Grafana sidecar's label", dashboard["metadata"]["labels"].get("grafana_dashboard"), "1")
        c.equal("dashboard ConfigMap holds files/dashboards/prism-operator.json",
                json.loads(dashboard["data"]["prism-operator.json"]), json.loads(DASHBOARD.read_text()))


async def uninstall(c: Checks, config: helm.Configuration, release: str) -> None:
    try:
        await helm.Uninstall(config).run(release, wait=False)
        c.check(f"uninstall {release}", True)
    except helm.UninstallError as error:
        c.check(f"uninstall {release}", False, error)


async def upgrade_and_uninstall(c: Checks, kc: Path) -> None:
    print("upgrade and uninstall")
    config = helm.Configuration(namespace=RELEASE_NS, kubeconfig=str(kc))
    values = {"replicaCount": 3, "logging": {"format": "text"}, "concurrency": 8}
    release = await helm.Upgrade(config).run(RELEASE, str(CHART), values=values, wait=False)
    c.equal("upgrade: revision 2", release.get("version"), 2)
    deployment = get(kc, "deployment", RELEASE, RELEASE_NS) or {"spec": {}}
    c.equal("upgrade: replicas", deployment["spec"].get("replicas"), 3)
    args = deployment["spec"].get("template", {}).get("spec", {}).get("containers", [{}])[0].get("args", [])
    c.check("upgrade: new arguments", "--log-format=text" in args and "--concurrency=8" in args, args)
    await uninstall(c, config, RELEASE)
    await uninstall(c, helm.Configuration(namespace=SCOPED_NS, kubeconfig=str(kc)), SCOPED_RELEASE)
    release_secrets = kubectl(kc, "get", "secrets", "-n", RELEASE_NS, "-l", f"owner=helm,name={RELEASE}", "-o", "name")
    c.equal("uninstall: the release's history is purged", release_secrets.stdout.split(), [])
    c.equal("uninstall: the Deployment is gone", get(kc, "deployment", RELEASE, RELEASE_NS), None)
    c.equal("uninstall: the ClusterRole is gone", get(kc, "clusterrole", RELEASE), None)
    c.equal("uninstall: the tenants ClusterRole is gone", get(kc, "clusterrole", f"{RELEASE}-tenants"), None)
    c.equal("uninstall: the scoped Role is gone", get(kc, "role", f"{SCOPED_RELEASE}-prism-operator", WATCHED_NS), None)
    c.check("uninstall: the CRDs stay (and with them every Prism resource)",
            get(kc, "crd", "prismclusters.prism.io") is not None)


async def main() -> int:
    keep = "--keep" in sys.argv[1:]
    for binary in (EMULATOR, OPERATOR):
        if not binary.exists():
            print(f"missing {binary}: build it with cargo build -p kube-emulator -p prism-operator", file=sys.stderr)
            return 1
    print(f"helm-sdkpy {helm.__version__}, Helm library {helm.get_version()}")
    c = Checks()
    base = os.environ.get("CHART_CHECK_WORK_DIR")
    if base:
        Path(base).mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="chart-check-", dir=base))
    emulator = Emulator(workdir)
    print(f"emulator at {emulator.server} (logs in {workdir})")
    try:
        kc = emulator.kubeconfig
        await lint(c, kc)
        await refused_values(c, kc)
        deployment = await install_cluster_wide(c, kc)
        if deployment:
            run_operator_with_chart_args(c, kc, deployment, workdir)
        await install_scoped(c, kc)
        await upgrade_and_uninstall(c, kc)
    except Exception as error:  # noqa: BLE001 - reported as a failed check, then the summary
        c.check("the checks ran to the end", False, f"{type(error).__name__}: {error}")
    finally:
        if keep:
            print(f"emulator left running: KUBECONFIG={emulator.kubeconfig} (pid {emulator.proc.pid})")
        else:
            emulator.stop()
    print(f"\nchart-check: {c.passed} passed, {len(c.failed)} failed")
    for what in c.failed:
        print(f"  failed: {what}")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
