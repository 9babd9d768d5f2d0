#!/usr/bin/env bash
# make images: build the processor and producer images from this checkout and load them into
# the local k3d cluster, under the names and tags clusters/local/pipeline/kustomization.yaml
# pins (newName where a fork set one), so the Deployments run them without a registry (their
# pull policy is IfNotPresent and the tags are fixed).
#
#   clusters/local/images.sh            docker build x2, then k3d image import
#   clusters/local/images.sh --dry-run  print those commands; needs neither Docker nor k3d
#
# Environment: DOCKER, K3D (default: .tools/bin, then PATH), K3D_CLUSTER (default from
# clusters/local/k3d.env), PIPELINE_KUSTOMIZATION (default clusters/local/pipeline/kustomization.yaml).
# Exit status: 0 done; 1 a tool or a pin is missing, or a build or import failed; 2 bad arguments.
set -euo pipefail

cd "$(dirname "$0")/../.."
root=$(pwd)
# shellcheck source=clusters/local/k3d.env
. clusters/local/k3d.env
die() { printf 'images: error: %s\n' "$1" >&2; exit "${2:-1}"; }
# shellcheck source=clusters/local/tools.sh
. clusters/local/tools.sh

dry_run=false
case "${1:-}" in
  "") ;;
  --dry-run) dry_run=true ;;
  *) die "unknown argument '$1' (usage: clusters/local/images.sh [--dry-run])" 2 ;;
esac

kustomization=${PIPELINE_KUSTOMIZATION:-clusters/local/pipeline/kustomization.yaml}
[ -f "$kustomization" ] || die "no $kustomization"

# name:tag of one image: its newName (a fork's registry) or its name, and its newTag.
image_of() { # processor|producer
  awk -v want="gpu-analytics-$1" '
    /^[[:space:]]*- name:/ { ours = ($3 ~ ("/" want "$")); name = $3; next }
    ours && /^[[:space:]]*newName:/ { name = $2 }
    ours && /^[[:space:]]*newTag:/ { tag = $2; gsub(/["'"'"']/, "", tag); print name ":" tag; exit }
  ' "$kustomization"
}
processor=$(image_of processor)
producer=$(image_of producer)
[ -n "$processor" ] && [ -n "$producer" ] ||
  die "$kustomization: the images: entries of gpu-analytics-processor and -producer, each with a newTag, were not found"

run() { # print the command; run it unless --dry-run
  printf '+'
  printf ' %q' "$@"
  printf '\n'
  if [ "$dry_run" = false ]; then "$@"; fi
}

DOCKER=$(tool DOCKER docker)
K3D=$(tool K3D k3d)
if [ "$dry_run" = false ]; then
  command -v "$DOCKER" >/dev/null 2>&1 || die "docker not found: building the images needs Docker (or use --dry-run)"
  command -v "$K3D" >/dev/null 2>&1 || die "k3d not found: install k3d $K3D_VERSION (make cluster-up says how)"
  "$K3D" cluster get "$K3D_CLUSTER" >/dev/null 2>&1 ||
    die "no k3d cluster $K3D_CLUSTER: run make cluster-up first"
fi

printf 'images: %s and %s from %s\n' "$processor" "$producer" "$kustomization"
run "$DOCKER" build -f services/Dockerfile --target processor -t "$processor" .
run "$DOCKER" build -f services/Dockerfile --target producer -t "$producer" .
run "$K3D" image import --mode direct --cluster "$K3D_CLUSTER" "$processor" "$producer"
if [ "$dry_run" = false ]; then
  printf 'images: in k3d cluster %s; Argo CD rolls them out when the pins change\n' "$K3D_CLUSTER"
fi
