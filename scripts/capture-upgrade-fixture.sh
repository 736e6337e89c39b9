#!/usr/bin/env bash
# Captures what the first release's operator wrote, for the upgrade test (tests/e2e/versions.rs):
# on the emulator with that release's CRDs (tests/fixtures/crds-0.1.0.yaml), the objects its
# users wrote (samples/alpha/minimal-cluster.yaml and a PrismNamespace) and that operator run
# until the cluster is Running, then every object of the namespace read back whole (uids,
# owners, managedFields, status), for the test to restore as a backup of etcd would.
#
# Usage: scripts/capture-upgrade-fixture.sh <the release's prism-operator binary> [output]
# The release's binary: `git worktree add ../old a8e7d95 && cargo build --bin prism-operator`
# there (a8e7d95 is the last commit before every kind moved to v1beta1).
set -euo pipefail

release_binary=${1:?usage: $0 RELEASE_BINARY [OUTPUT]}
output=${2:-tests/fixtures/upgrade-0.1.0.json}
namespace=upgrade
work=$(mktemp -d)
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cargo build --quiet -p kube-emulator
target/debug/kube-emulator serve --kubeconfig-out "$work/kubeconfig" \
  --crd tests/fixtures/crds-0.1.0.yaml --simulate-workloads >"$work/emulator.log" 2>&1 &
for _ in $(seq 100); do [ -s "$work/kubeconfig" ] && break; sleep 0.1; done
kubectl="kubectl --kubeconfig $work/kubeconfig"

$kubectl create namespace "$namespace"
sed "s/namespace: prism$/namespace: $namespace/" samples/alpha/minimal-cluster.yaml | $kubectl apply -f -
$kubectl apply -n "$namespace" -f - <<EOF
apiVersion: prism.io/v1alpha2
kind: PrismNamespace
metadata: {name: orders}
spec: {cluster: minimal, patterns: [keyvalue], isolation: none}
EOF

"$release_binary" run --kubeconfig "$work/kubeconfig" --namespace "$namespace" \
  --lease-namespace "$namespace" --metrics-addr 127.0.0.1:0 --health-addr 127.0.0.1:0 \
  >"$work/operator.log" 2>&1 &
operator=$!
$kubectl wait -n "$namespace" prismcluster/minimal --for=jsonpath='{.status.phase}'=Running --timeout=120s
$kubectl wait -n "$namespace" prismnamespace/orders --for=jsonpath='{.status.phase}'=Ready --timeout=60s
# Until nothing changes for a while: the last status writes land after the phase.
sleep 5
kill -TERM "$operator"
wait "$operator" || true

# What the release wrote and what its users wrote; not what the cluster's own controllers make
# (pods, their ReplicaSets and revisions, endpoints), nor Events and the leader's Lease.
kinds=$($kubectl api-resources --namespaced --verbs=list -o name \
  | grep -Ev '^(events|events\.events\.k8s\.io|pods|replicasets\.apps|controllerrevisions\.apps|endpoints|endpointslices\.discovery\.k8s\.io|leases\.coordination\.k8s\.io)$' \
  | paste -sd, -)
$kubectl get -n "$namespace" "$kinds" -o json --show-managed-fields >"$work/objects.json"
python3 - "$work/objects.json" "$output" <<'EOF'
import json, sys
items = json.load(open(sys.argv[1]))["items"]
# The namespace's own service account and CA bundle are the cluster's, made again by it.
made_by_cluster = {("ServiceAccount", "default"), ("ConfigMap", "kube-root-ca.crt")}
items = [o for o in items if (o["kind"], o["metadata"]["name"]) not in made_by_cluster]
items.sort(key=lambda o: (o["apiVersion"], o["kind"], o["metadata"]["name"]))
json.dump({"apiVersion": "v1", "kind": "List", "items": items}, open(sys.argv[2], "w"), indent=1, sort_keys=True)
print(f"{len(items)} objects in {sys.argv[2]}")
EOF
