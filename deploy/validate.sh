#!/usr/bin/env bash
# Validates every deployment file offline (no container engine, no cluster needed):
#   - Kubernetes: each Kustomize layout (deploy/k8s/standalone, deploy/k8s/cluster) rendered with
#     `kubectl kustomize` (Debian's kubernetes-client) and checked against the Kubernetes API
#     schema with kubernetes-validate (PyPI), strictly (unknown fields are errors);
#   - Compose: both files through `docker-compose config` (PyPI's docker-compose 1.29, which
#     parses and validates without an engine);
#   - what the schemas cannot say (deploy/check_deploy.py): media reachable by clients (host
#     networking, the host's address advertised), probes on the admin endpoints, drains longer
#     than their grace periods allow, Redis with AOF, a non-root image with a health check.
# The validators are installed on first use into target/deploy-tools (Python venvs).
set -euo pipefail
cd "$(dirname "$0")/.."
tools=${PORTUNUS_DEPLOY_TOOLS:-$PWD/target/deploy-tools}
mkdir -p "$tools"

command -v kubectl >/dev/null 2>&1 || { echo "deploy/validate.sh: kubectl missing: apt-get install kubernetes-client" >&2; exit 1; }

# venv DIR STEP... : a venv, made once, each STEP a `pip install` argument list.
venv() {
    local dir=$tools/$1; shift
    [ -f "$dir/.ready" ] && return 0
    rm -rf "$dir"
    python3 -m venv "$dir"
    local step
    for step in "$@"; do
        # shellcheck disable=SC2086
        "$dir/bin/pip" install -q --disable-pip-version-check $step
    done
    touch "$dir/.ready"
}
venv k8s "kubernetes-validate==1.37.0 PyYAML"
# docker-compose 1.29 needs PyYAML < 6, whose source build needs Cython < 3.
venv compose "cython<3 wheel" "--no-build-isolation pyyaml==5.4.1" "docker-compose==1.29.2"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
status=0
for layout in standalone cluster; do
    kubectl kustomize "deploy/k8s/$layout" >"$out/$layout.yaml"
    # ServiceMonitor is a Prometheus Operator resource, not in the Kubernetes API schema: it is
    # checked by check_deploy.py (kubernetes-validate only warns that it has no schema for it).
    if "$tools/k8s/bin/kubernetes-validate" --strict --quiet "$out/$layout.yaml" >"$out/$layout.log" 2>&1; then
        echo "k8s/$layout: $(grep -c '^kind:' "$out/$layout.yaml") resources valid"
    else
        echo "deploy/validate.sh: k8s/$layout: invalid" >&2
        cat "$out/$layout.log" >&2
        status=1
    fi
done
for file in deploy/docker-compose.yml deploy/docker-compose.cluster.yml; do
    # The values an operator must supply (the cluster file refuses to start without them).
    if REDIS_PASSWORD=validate PORTUNUS_MEDIA_IPS=192.0.2.10 "$tools/compose/bin/docker-compose" -f "$file" config -q; then
        echo "$file: valid"
    else
        echo "deploy/validate.sh: $file: invalid" >&2
        status=1
    fi
done
"$tools/k8s/bin/python" deploy/check_deploy.py "$out/standalone.yaml" "$out/cluster.yaml" || status=1
exit "$status"
