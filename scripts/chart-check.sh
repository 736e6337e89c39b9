#!/usr/bin/env bash
# Verifies the Helm chart with real Helm (the Helm v4 library bundled by the PyPI package
# helm-sdkpy) against the API emulator (HTTPS, RBAC enforced): lint, schema violations, install
# in both scopes, the created objects checked with kubectl, the operator started with the chart's
# own arguments and a token of the chart's ServiceAccount (no request refused), upgrade and
# uninstall. See scripts/chart_check.py for the checks.
#
# Runs on a fresh machine: needs a Python >= 3.12 (pyenv's 3.12 on the project's machines), PyPI,
# cargo and kubectl. Installs helm-sdkpy into a venv under the target directory (reused when
# present). Usage: scripts/chart-check.sh [--keep] (--keep leaves the emulator running at the end).
# Exit status: 0 all checks passed, 1 a check failed, 3 no Python >= 3.12 on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_SDKPY_VERSION=0.1.32
PYYAML_VERSION=6.0.3
TARGET_DIR=${CARGO_TARGET_DIR:-target}
VENV="$TARGET_DIR/chart-check/venv"

find_python() {
  local candidates=(python3.12 python3.13)
  if command -v pyenv >/dev/null 2>&1; then
    local root
    root=$(pyenv root)
    for v in "$root"/versions/3.12* "$root"/versions/3.13*; do
      [ -x "$v/bin/python3" ] && candidates+=("$v/bin/python3")
    done
  fi
  for py in "${candidates[@]}"; do
    if "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; then
      command -v "$py" 2>/dev/null || echo "$py"
      return 0
    fi
  done
  return 1
}

if ! "$VENV/bin/python" -c "import helm_sdkpy, importlib.metadata as m; \
    assert m.version('helm-sdkpy') == '$HELM_SDKPY_VERSION'; import yaml" >/dev/null 2>&1; then
  if ! PYTHON=$(find_python); then
    echo "chart-check: helm-sdkpy needs Python >= 3.12; none found (try: pyenv install 3.12)" >&2
    exit 3
  fi
  echo "chart-check: installing helm-sdkpy $HELM_SDKPY_VERSION with $PYTHON into $VENV"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "helm-sdkpy==$HELM_SDKPY_VERSION" "PyYAML==$PYYAML_VERSION"
fi

# CHART_CHECK_SKIP_BUILD=1: the binaries are built already (CI builds them with the tests).
if [ -z "${CHART_CHECK_SKIP_BUILD:-}" ]; then
  echo "chart-check: building the emulator and the operator"
  cargo build --quiet --locked -p kube-emulator -p prism-operator
fi
export CHART_CHECK_BIN_DIR="$TARGET_DIR/debug"
# Logs and the kubeconfig of this run (kept for a look after a failure).
export CHART_CHECK_WORK_DIR="$TARGET_DIR/chart-check/runs"
rm -rf "$CHART_CHECK_WORK_DIR"
exec "$VENV/bin/python" scripts/chart_check.py "$@"
