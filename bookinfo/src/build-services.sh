#!/usr/bin/env bash
# Builds (and optionally pushes) every Bookinfo image from bookinfo/src/Dockerfile.
#
#   BOOKINFO_HUB      registry and owner            (default ghcr.io/canary-mesh)
#   BOOKINFO_TAG      image tag                     (default 0.1.0)
#   BOOKINFO_LATEST   true: also tag "latest"
#   BOOKINFO_PUSH     true: push every tag (instead of loading the images into the local engine)
#   BOOKINFO_PLATFORMS platforms to build, e.g. linux/amd64,linux/arm64 (needs BOOKINFO_PUSH=true
#                     when more than one)
#   BOOKINFO_UPDATE   true: rewrite the image references in bookinfo/platform/kube/*.yaml
#                     to $BOOKINFO_HUB/...:$BOOKINFO_TAG
#   BOOKINFO_DRY_RUN  true: print the docker commands instead of running them
#   DOCKER            the docker client to call     (default docker)
#
# Needs Docker with BuildKit (the buildx plugin): the Dockerfile uses a per-Dockerfile ignore file
# (Dockerfile.dockerignore) that the legacy builder does not read.
# Images are named like Istio's (examples-bookinfo-<service>-<version>), so a manifest written for
# Istio's images runs ours after a change of hub and tag. Works from any directory.
set -euo pipefail

HUB="${BOOKINFO_HUB:-ghcr.io/canary-mesh}"
TAG="${BOOKINFO_TAG:-0.1.0}"
DOCKER="${DOCKER:-docker}"

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "${script_dir}/../.." && pwd)"
dockerfile="${script_dir}/Dockerfile"
kube_dir="${repo_root}/bookinfo/platform/kube"

# Each name is both a Dockerfile target and the suffix of examples-bookinfo-<name>.
TARGETS=(
    productpage-v1 productpage-v-flooding
    details-v1 details-v2
    reviews-v1 reviews-v2 reviews-v3
    ratings-v1 ratings-v2 ratings-v-faulty ratings-v-delayed ratings-v-unavailable
    ratings-v-unhealthy
    mysqldb mongodb
)

fail() {
    echo "build-services.sh: $*" >&2
    exit 1
}

is_true() {
    [[ "${1,,}" == "true" ]]
}

run() {
    if is_true "${BOOKINFO_DRY_RUN:-false}"; then
        printf '%q ' "$@"
        printf '\n'
    else
        "$@"
    fi
}

[[ "$HUB" =~ ^[a-z0-9][a-z0-9._:/-]*$ ]] || fail "BOOKINFO_HUB='${HUB}' is not a registry path"
[[ "$TAG" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || fail "BOOKINFO_TAG='${TAG}' is not a valid tag"

if ! is_true "${BOOKINFO_DRY_RUN:-false}"; then
    command -v "$DOCKER" >/dev/null 2>&1 ||
        fail "'${DOCKER}' not found: install Docker (https://docs.docker.com/engine/install/) or set DOCKER to another client"
    "$DOCKER" buildx version >/dev/null 2>&1 ||
        fail "'${DOCKER} buildx' is not available: install the Docker buildx plugin (BuildKit)"
fi

output=(--load)
if is_true "${BOOKINFO_PUSH:-false}"; then
    output=(--push)
fi
platform=()
if [[ -n "${BOOKINFO_PLATFORMS:-}" ]]; then
    platform=(--platform "$BOOKINFO_PLATFORMS")
fi

for target in "${TARGETS[@]}"; do
    image="${HUB}/examples-bookinfo-${target}"
    tags=(-t "${image}:${TAG}")
    if is_true "${BOOKINFO_LATEST:-false}"; then
        tags+=(-t "${image}:latest")
    fi
    run "$DOCKER" buildx build -f "$dockerfile" --target "$target" "${platform[@]}" "${tags[@]}" \
        "${output[@]}" "$repo_root"
done

if is_true "${BOOKINFO_UPDATE:-false}"; then
    # Any hub and tag before, ours after: "image: <anything>/examples-bookinfo-<name>:<tag>".
    for manifest in "${kube_dir}"/*.yaml; do
        sed -i -E \
            "s#(image: *)[^ \"]*/examples-bookinfo-([a-z0-9-]+):[A-Za-z0-9_.-]+#\1${HUB}/examples-bookinfo-\2:${TAG}#g" \
            "$manifest"
    done
    echo "Updated the image references in ${kube_dir}/*.yaml to ${HUB}/...:${TAG}"
fi
