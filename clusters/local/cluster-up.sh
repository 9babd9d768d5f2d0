#!/usr/bin/env bash
# make cluster-up: the local cluster in one command. Every step is idempotent: a second run
# repairs what is missing and duplicates nothing.
#
#   1. a k3d cluster running the pinned K3s (clusters/local/k3d.env), or the kube context
#      CLUSTER_CONTEXT when set (any current cluster; nothing is created then)
#   2. the git source Argo CD syncs: your fork and branch, from `git remote` and `git rev-parse`
#      (override: GIT_REMOTE, default origin; GIT_REPO_URL; GIT_REVISION)
#   3. clusters/local/install.sh: Argo CD, the root at that source, the local Secrets, and the
#      wait until every Application is Synced and Healthy
#   4. where the Argo CD UI and Grafana are, and their passwords
#
# Argo CD syncs what is pushed, not your working tree: step 2 warns about unpushed commits.
set -euo pipefail

cd "$(dirname "$0")/../.."
root=$(pwd)
# shellcheck source=clusters/local/k3d.env
. clusters/local/k3d.env
# shellcheck source=clusters/local/tools.sh
. clusters/local/tools.sh
KUBECTL=$(tool KUBECTL kubectl)
K3D=$(tool K3D k3d)
export KUBECTL

step=0
say() { step=$((step + 1)); printf 'cluster-up: [%d/4] %s\n' "$step" "$*"; }
note() { printf 'cluster-up:       %s\n' "$*"; }
die() { printf 'cluster-up: error: %s\n' "$*" >&2; exit 1; }

# ---- 1. the cluster ------------------------------------------------------------------------
if [ -n "${CLUSTER_CONTEXT:-}" ]; then
  say "the kube context $CLUSTER_CONTEXT (CLUSTER_CONTEXT; no k3d cluster is created)"
  "$KUBECTL" config get-contexts -o name | grep -qxF "$CLUSTER_CONTEXT" ||
    die "no kube context named $CLUSTER_CONTEXT (kubectl config get-contexts)"
  "$KUBECTL" config use-context "$CLUSTER_CONTEXT" >/dev/null
else
  say "k3d cluster $K3D_CLUSTER ($K3S_IMAGE)"
  command -v "$K3D" >/dev/null 2>&1 ||
    die "k3d not found: install k3d $K3D_VERSION (it needs Docker), e.g. 'go install github.com/k3d-io/k3d/v5@$K3D_VERSION', or set CLUSTER_CONTEXT to an existing cluster"
  if "$K3D" cluster get "$K3D_CLUSTER" >/dev/null 2>&1; then
    note "exists; starting it if stopped"
    "$K3D" cluster start "$K3D_CLUSTER" >/dev/null
  else
    # Traefik is left out: nothing here uses an ingress (port-forwards reach the UIs).
    "$K3D" cluster create "$K3D_CLUSTER" --image "$K3S_IMAGE" --servers 1 --agents 0 \
      --k3s-arg "--disable=traefik@server:0" --wait --timeout 300s
  fi
  "$KUBECTL" config use-context "k3d-$K3D_CLUSTER" >/dev/null
fi
"$KUBECTL" version >/dev/null 2>&1 || die "the cluster of context $("$KUBECTL" config current-context) does not answer"

# ---- 2. the git source ---------------------------------------------------------------------
https_url() { # git@github.com:o/r.git and ssh://git@host/o/r -> https://host/o/r.git
  local url=$1
  case "$url" in
    git@*:*) url="https://${url#git@}"; url="${url/://}" ;;
    ssh://git@*) url="https://${url#ssh://git@}" ;;
  esac
  case "$url" in *.git) ;; *) url="$url.git" ;; esac
  printf '%s\n' "$url"
}
remote=${GIT_REMOTE:-origin}
if [ -z "${GIT_REPO_URL:-}" ]; then
  url=$(git remote get-url "$remote" 2>/dev/null) ||
    die "no git remote '$remote': set GIT_REMOTE, or GIT_REPO_URL to the repository Argo CD should sync"
  GIT_REPO_URL=$(https_url "$url")
fi
if [ -z "${GIT_REVISION:-}" ]; then
  GIT_REVISION=$(git rev-parse --abbrev-ref HEAD)
  [ "$GIT_REVISION" != HEAD ] || GIT_REVISION=$(git rev-parse HEAD) # detached: the commit
fi
export GIT_REPO_URL GIT_REVISION
say "git source $GIT_REPO_URL at $GIT_REVISION"
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
  note "warning: uncommitted changes; Argo CD syncs $GIT_REVISION as pushed, not this working tree"
fi
if upstream=$(git rev-parse --abbrev-ref --symbolic-full-name '@{upstream}' 2>/dev/null); then
  ahead=$(git rev-list --count "$upstream..HEAD")
  [ "$ahead" = 0 ] || note "warning: $ahead commits not pushed to $upstream; push them for Argo CD to see them"
fi

# ---- 3. Argo CD, the root, the Secrets, the wait -------------------------------------------
say "install (clusters/local/install.sh)"
clusters/local/install.sh

# ---- 4. where things are -------------------------------------------------------------------
say "ready"
cat <<TEXT
  Argo CD UI   $KUBECTL -n argocd port-forward svc/argocd-server 8080:80   then http://localhost:8080
               user admin; password: bootstrap/argo-cd/rotate-admin-password.sh (sets and shows a new one)
  Grafana      $KUBECTL -n kube-prometheus-stack port-forward svc/kube-prometheus-stack-grafana 3000:80   then http://localhost:3000
               user admin; password: $KUBECTL -n kube-prometheus-stack get secret grafana-admin -o jsonpath='{.data.admin-password}' | base64 -d
  Processor    $KUBECTL -n pipeline port-forward svc/processor 8081:8080   then http://localhost:8081/docs
  Status       make sync-status
TEXT
