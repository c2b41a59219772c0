#!/usr/bin/env bash
# Piggy dev loop against a local kind cluster with LocalStack standing in for AWS
# (`deno task dev [command]`, or `bash scripts/dev.sh [command]`).
#
# Needs: docker (running), kind, kubectl, helm 3.10+ on PATH, and deno (on PATH, or
# node_modules/.bin/deno after `npm ci`). Internet access for the base images, LocalStack and
# deno's runtime download during `docker build`.
#
# Commands (default: up):
#   up       everything below, in order: cluster, images, localstack, seed, install, apply, logs
#   cluster  create the kind cluster (scripts/dev/kind.yaml) unless it exists
#   images   docker build the piggy-webhooks and piggy-env targets of the Dockerfile, kind load them
#   localstack  deploy LocalStack into the cluster (scripts/dev/localstack.yaml) and wait for it
#   seed     put demo/aws.yaml into LocalStack (scripts/dev/seed_localstack.ts, via 127.0.0.1:4566)
#   install  helm upgrade --install charts/piggy-webhooks with the local images and LocalStack
#   apply    (re)create the demo namespace, the demo app ConfigMap and the demo/k8s pods
#   logs     wait for the demo pods, print their output and the webhook's log
#   reload   images + rollout restart of the webhook + apply + logs (after a code change)
#   down     delete the kind cluster
#
# Settings (environment):
#   CLUSTER_NAME  kind cluster name                          (default: piggy-dev)
#   TAG           tag of the locally built images            (default: dev)
#   RELEASE       Helm release name and namespace            (default: piggy-webhooks; the demo
#                 pods' piggysec.com/piggy-address assumes the default)
#   KIND_IMAGE    kind node image, e.g. kindest/node:v1.31.0  (default: kind's own)
#
# The demo pods are those of `deno task demo` (demo/k8s/*.yaml); in the cluster they run the demo
# app from the ConfigMap piggy-demo-app in a debian image, print their values and exit. A cluster
# named CLUSTER_NAME that was not created by this script lacks the LocalStack port mapping of
# scripts/dev/kind.yaml: delete it first (`down`).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

CLUSTER_NAME="${CLUSTER_NAME:-piggy-dev}"
TAG="${TAG:-dev}"
RELEASE="${RELEASE:-piggy-webhooks}"
KIND_IMAGE="${KIND_IMAGE:-}"
DEMO_NAMESPACE="demo"
WEBHOOK_IMAGE="piggy-webhooks"
LAUNCHER_IMAGE="piggy-env"
AWS_REGION_DEMO="ap-southeast-1"
LOCALSTACK_IN_CLUSTER="http://localstack.localstack.svc.cluster.local:4566"
LOCALSTACK_ON_HOST="http://127.0.0.1:4566"
KIND_CONFIG="scripts/dev/kind.yaml"
LOCALSTACK_MANIFEST="scripts/dev/localstack.yaml"
SEED_SCRIPT="scripts/dev/seed_localstack.ts"
RENDER_SCRIPT="scripts/dev/render_manifests.ts"
CHART="charts/piggy-webhooks"
DEMO_APP="demo/app/print-secrets.sh"
AWS_DATA="demo/aws.yaml"
DOCKERFILE="Dockerfile"

log() { printf '\033[1m▶ %s\033[0m\n' "$*" >&2; }
fail() {
  printf '✖ %s\n' "$*" >&2
  exit 1
}

usage() {
  sed -n '2,/^set -euo pipefail/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
}

need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || fail "$tool is not on PATH (see: bash scripts/dev.sh help)"
  done
}

deno_bin() {
  if command -v deno >/dev/null 2>&1; then
    echo deno
  elif [ -x node_modules/.bin/deno ]; then
    echo node_modules/.bin/deno
  else
    fail "deno is not on PATH and node_modules/.bin/deno is missing: run 'npm ci'"
  fi
}

kube() { kubectl --context "kind-${CLUSTER_NAME}" "$@"; }

cmd_cluster() {
  need kind kubectl docker
  if kind get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; then
    log "kind cluster $CLUSTER_NAME exists"
  else
    log "creating kind cluster $CLUSTER_NAME"
    local args=(create cluster --name "$CLUSTER_NAME" --config "$KIND_CONFIG" --wait 120s)
    [ -n "$KIND_IMAGE" ] && args+=(--image "$KIND_IMAGE")
    kind "${args[@]}"
  fi
}

cmd_images() {
  need docker kind
  log "building $WEBHOOK_IMAGE:$TAG and $LAUNCHER_IMAGE:$TAG ($DOCKERFILE)"
  docker build --target piggy-webhooks -t "$WEBHOOK_IMAGE:$TAG" -f "$DOCKERFILE" .
  docker build --target piggy-env -t "$LAUNCHER_IMAGE:$TAG" -f "$DOCKERFILE" .
  log "loading the images into kind"
  kind load docker-image --name "$CLUSTER_NAME" "$WEBHOOK_IMAGE:$TAG" "$LAUNCHER_IMAGE:$TAG"
}

cmd_localstack() {
  need kubectl
  log "deploying LocalStack ($LOCALSTACK_MANIFEST)"
  kube apply -f "$LOCALSTACK_MANIFEST"
  kube -n localstack rollout status deployment/localstack --timeout=300s
}

cmd_seed() {
  local deno
  deno="$(deno_bin)"
  log "seeding LocalStack at $LOCALSTACK_ON_HOST with $AWS_DATA"
  local attempt
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    if AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
      "$deno" run -A "$SEED_SCRIPT" --endpoint "$LOCALSTACK_ON_HOST" --file "$AWS_DATA"; then
      return 0
    fi
    log "LocalStack is not ready yet (attempt $attempt/10)"
    sleep 3
  done
  fail "cannot seed LocalStack at $LOCALSTACK_ON_HOST"
}

cmd_install() {
  need helm kubectl
  log "installing $CHART as release $RELEASE (namespace $RELEASE)"
  helm upgrade --install "$RELEASE" "$CHART" \
    --kube-context "kind-${CLUSTER_NAME}" \
    --namespace "$RELEASE" --create-namespace \
    --set image.repository="$WEBHOOK_IMAGE" \
    --set-string image.tag="$TAG" \
    --set mutate.image.repository="$LAUNCHER_IMAGE" \
    --set-string mutate.image.tag="$TAG" \
    --set replicaCount=1 \
    --set debug=true \
    --set-string env.AWS_ENDPOINT_URL="$LOCALSTACK_IN_CLUSTER" \
    --set-string env.AWS_REGION="$AWS_REGION_DEMO" \
    --set-string env.AWS_ACCESS_KEY_ID=test \
    --set-string env.AWS_SECRET_ACCESS_KEY=test \
    --set-string env.AWS_EC2_METADATA_DISABLED=true \
    --wait --timeout 300s
}

cmd_apply() {
  need kubectl
  local deno
  deno="$(deno_bin)"
  log "recreating the demo pods in namespace $DEMO_NAMESPACE"
  # Pods cannot be updated in place: delete the previous run first.
  kube delete pods -n "$DEMO_NAMESPACE" --all --ignore-not-found --wait=true 2>/dev/null || true
  kube create namespace "$DEMO_NAMESPACE" --dry-run=client -o yaml | kube apply -f -
  kube -n "$DEMO_NAMESPACE" create configmap piggy-demo-app --from-file="$DEMO_APP" \
    --dry-run=client -o yaml | kube apply -f -
  "$deno" run -A "$RENDER_SCRIPT" --aws-endpoint "$LOCALSTACK_IN_CLUSTER" | kube apply -f -
}

# Waits until the pod has finished (Succeeded or Failed); prints its phase.
wait_finished() {
  local pod="$1" phase="" waited=0
  while [ "$waited" -lt 180 ]; do
    phase="$(kube -n "$DEMO_NAMESPACE" get "$pod" -o jsonpath='{.status.phase}' 2>/dev/null || true)"
    case "$phase" in
      Succeeded | Failed) break ;;
    esac
    sleep 2
    waited=$((waited + 2))
  done
  echo "${phase:-Unknown}"
}

cmd_logs() {
  need kubectl
  local pod pods phase
  pods="$(kube -n "$DEMO_NAMESPACE" get pods -o name)"
  [ -n "$pods" ] || fail "no pods in namespace $DEMO_NAMESPACE: run 'bash scripts/dev.sh apply'"
  for pod in $pods; do
    phase="$(wait_finished "$pod")"
    log "$pod: $phase"
    if [ "$phase" != Succeeded ]; then
      kube -n "$DEMO_NAMESPACE" describe "$pod" | tail -n 25
    fi
    kube -n "$DEMO_NAMESPACE" logs "$pod" --all-containers --prefix || true
  done
  log "webhook log (last 40 lines)"
  kube -n "$RELEASE" logs "deployment/$RELEASE" --tail=40 || true
}

cmd_reload() {
  cmd_images
  log "restarting the webhook"
  kube -n "$RELEASE" rollout restart "deployment/$RELEASE"
  kube -n "$RELEASE" rollout status "deployment/$RELEASE" --timeout=300s
  cmd_apply
  cmd_logs
}

cmd_down() {
  need kind
  log "deleting kind cluster $CLUSTER_NAME"
  kind delete cluster --name "$CLUSTER_NAME"
}

cmd_up() {
  cmd_cluster
  cmd_images
  cmd_localstack
  cmd_seed
  cmd_install
  cmd_apply
  cmd_logs
}

case "${1:-up}" in
  up) cmd_up ;;
  cluster) cmd_cluster ;;
  images) cmd_images ;;
  localstack) cmd_localstack ;;
  seed) cmd_seed ;;
  install) cmd_install ;;
  apply) cmd_apply ;;
  logs) cmd_logs ;;
  reload) cmd_reload ;;
  down) cmd_down ;;
  help | -h | --help) usage ;;
  *)
    usage >&2
    exit 2
    ;;
esac
