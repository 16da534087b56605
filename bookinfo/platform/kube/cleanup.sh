#!/usr/bin/env bash
# Removes Bookinfo and its mesh configuration from one namespace: every DestinationRule,
# VirtualService, Istio Gateway and AuthorizationPolicy in it, the Gateway API routes and gateways
# when those CRDs are installed, then the Bookinfo workloads themselves.
#
#   bookinfo/platform/kube/cleanup.sh                 # asks for the namespace (default: default)
#   NAMESPACE=webapps bookinfo/platform/kube/cleanup.sh   # no question asked
#   KUBECTL=... CLEANUP_WAIT=0                        # another client; seconds to let pods go
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KUBECTL="${KUBECTL:-kubectl}"
CLEANUP_WAIT="${CLEANUP_WAIT:-30}"

command -v "$KUBECTL" >/dev/null 2>&1 || {
    echo "cleanup.sh: '${KUBECTL}' not found: install kubectl or set KUBECTL" >&2
    exit 1
}
[[ "$CLEANUP_WAIT" =~ ^[0-9]+$ ]] || {
    echo "cleanup.sh: CLEANUP_WAIT='${CLEANUP_WAIT}' is not a number of seconds" >&2
    exit 1
}

if [[ -z "${NAMESPACE:-}" ]]; then
    read -r -p "namespace ? [default] " NAMESPACE || true
    NAMESPACE="${NAMESPACE:-default}"
fi
echo "using NAMESPACE=${NAMESPACE}"

kube() {
    "$KUBECTL" --namespace "$NAMESPACE" "$@"
}

# Deletes every object of one kind in the namespace; a kind whose CRD is absent is skipped.
delete_all() {
    local kind="$1"
    local names
    if ! names="$(kube get "$kind" -o name 2>/dev/null)"; then
        return 0
    fi
    if [[ -n "$names" ]]; then
        # Word splitting is wanted: one argument per object name.
        # shellcheck disable=SC2086
        kube delete $names --ignore-not-found
    fi
}

for kind in destinationrules.networking.istio.io virtualservices.networking.istio.io \
    gateways.networking.istio.io authorizationpolicies.security.istio.io; do
    delete_all "$kind"
done

if "$KUBECTL" get crd gateways.gateway.networking.k8s.io >/dev/null 2>&1; then
    delete_all httproutes.gateway.networking.k8s.io
    delete_all gateways.gateway.networking.k8s.io
    kube delete -f "${SCRIPT_DIR}/bookinfo-versions.yaml" --ignore-not-found
fi

kube delete -f "${SCRIPT_DIR}/bookinfo.yaml" --ignore-not-found

# Give the pods time to terminate, so that a new apply right after does not race their shutdown.
sleep "$CLEANUP_WAIT"

kube get virtualservices.networking.istio.io 2>/dev/null || true
kube get destinationrules.networking.istio.io 2>/dev/null || true
kube get gateways.networking.istio.io 2>/dev/null || true
kube get pods
echo "Application cleanup successful"
