#!/usr/bin/env bash
# Installs the local cluster onto the current kube context, from "a cluster exists" on: the
# quick start of clusters/README.md as one command, run from your fork's checkout (Argo CD
# syncs the repoURL and targetRevision committed in clusters/local/root-app.yaml). Every step
# is idempotent: a second run repairs what is missing and changes nothing else.
#
#   1. Argo CD, through K3s's helm-controller (bootstrap/argo-cd/helmchart.yaml), unless present
#   2. the root Application and its AppProjects (the objects labelled gpu-analytics.io/install),
#      after the Secret of Argo CD's notifications, so that the first syncs are announced
#   3. the local Secrets (clusters/local/create-secrets.sh)
#   4. a wait until every Application is Synced and Healthy, through the argocd CLI
#
# Environment: KUBECTL, ARGOCD, KUSTOMIZE (tools; default .tools/bin, then PATH), ARGOCD_OPTS
# (argocd CLI flags; default --core, which needs only the kube context), INSTALL_TIMEOUT
# (seconds for step 4, default 1200), GIT_REPO_URL and GIT_REVISION (the git source the root
# syncs; default: what root-app.yaml names; `make cluster-up` sets them to your fork and branch).
set -euo pipefail

cd "$(dirname "$0")/../.."
root=$(pwd)
# shellcheck source=clusters/local/tools.sh
. clusters/local/tools.sh
KUBECTL=$(tool KUBECTL kubectl)
ARGOCD=$(tool ARGOCD argocd)
KUSTOMIZE=$(tool KUSTOMIZE kustomize)
GPU_ANALYTICS=$(tool GPU_ANALYTICS gpu-analytics .venv/bin)
export ARGOCD_OPTS=${ARGOCD_OPTS:---core}
timeout=${INSTALL_TIMEOUT:-1200}

step=0
say() { step=$((step + 1)); printf 'install: [%d/4] %s\n' "$step" "$*"; }
die() { printf 'install: error: %s\n' "$*" >&2; exit 1; }
for t in "$KUBECTL" "$ARGOCD" "$KUSTOMIZE" "$GPU_ANALYTICS"; do
  command -v "$t" >/dev/null 2>&1 || die "$t not found (run make setup)"
done
"$KUBECTL" version >/dev/null 2>&1 || die "no cluster answers on the current kube context ($("$KUBECTL" config current-context 2>/dev/null || echo none))"

if "$KUBECTL" -n argocd get configmap argocd-cm >/dev/null 2>&1; then
  say "Argo CD is installed"
else
  say "Argo CD through K3s's helm-controller (bootstrap/argo-cd/helmchart.yaml)"
  "$KUBECTL" apply -f bootstrap/argo-cd/helmchart.yaml
  "$KUBECTL" -n kube-system wait --for=condition=complete job/helm-install-argo-cd --timeout=10m
  for workload in deploy/argocd-server deploy/argocd-repo-server statefulset/argocd-application-controller; do
    "$KUBECTL" -n argocd rollout status "$workload" --timeout=5m
  done
fi

repo_url=${GIT_REPO_URL:-$(awk '$1 == "repoURL:" {print $2; exit}' clusters/local/root-app.yaml)}
revision=${GIT_REVISION:-$(awk '$1 == "targetRevision:" {print $2; exit}' clusters/local/root-app.yaml)}
say "the root Application and its AppProjects (Argo CD syncs $repo_url at $revision)"
KUBECTL=$KUBECTL clusters/local/create-secrets.sh argocd
manifests=$("$KUSTOMIZE" build clusters/local |
  "$GPU_ANALYTICS" cluster install-manifests --repo-url "$repo_url" --revision "$revision")
"$KUBECTL" apply -f - <<<"$manifests"

say "the local Secrets"
KUBECTL=$KUBECTL clusters/local/create-secrets.sh

say "waiting until every Application is Synced and Healthy (at most ${timeout}s)"
ARGOCD=$ARGOCD "$GPU_ANALYTICS" cluster wait --timeout "$timeout"
