#!/usr/bin/env bash
# make cluster-down: deletes the k3d cluster that make cluster-up created (and its volumes).
# With CLUSTER_CONTEXT set it deletes nothing: a cluster it did not create is yours to keep.
set -euo pipefail

cd "$(dirname "$0")/../.."
root=$(pwd)
# shellcheck source=clusters/local/k3d.env
. clusters/local/k3d.env
# shellcheck source=clusters/local/tools.sh
. clusters/local/tools.sh
K3D=$(tool K3D k3d)

if [ -n "${CLUSTER_CONTEXT:-}" ]; then
  echo "cluster-down: CLUSTER_CONTEXT=$CLUSTER_CONTEXT is not a cluster cluster-up created; nothing deleted." >&2
  echo "cluster-down: to remove the tree from it: kubectl -n argocd delete application root (then the namespaces)" >&2
  exit 1
fi
command -v "$K3D" >/dev/null 2>&1 || { echo "cluster-down: k3d not found" >&2; exit 1; }
if "$K3D" cluster get "$K3D_CLUSTER" >/dev/null 2>&1; then
  "$K3D" cluster delete "$K3D_CLUSTER"
  echo "cluster-down: k3d cluster $K3D_CLUSTER deleted"
else
  echo "cluster-down: no k3d cluster $K3D_CLUSTER; nothing to do"
fi
