#!/usr/bin/env bash
# make argocd-ui-screenshot: the Argo CD UI's Applications page on the cluster simulation, with
# every Application Synced and Healthy, as clusters/local/argocd-applications.png (the README's).
#
#   1. argocd-server with the UI (scripts/argocd-ui/build.sh; nothing to do once built)
#   2. puppeteer-core as package-lock.json pins it, into .cache/argocd-ui/shot
#   3. the simulation with the UI (gpu-analytics cluster-sim up --ui), serving the working tree
#   4. the tree, installed by clusters/local/install.sh, which waits until all is green
#   5. the screenshot, by screenshot.cjs in headless Chromium
#
# The simulation stops when the script ends, on failure too. Needs root, as the simulation does.
#   CHARTS_DIR  packaged charts at the pinned versions: with it the chart Applications sync too;
#               without it they are left out, as in tests/cluster (the script says so)
#   CHROMIUM    the browser (default: chromium, chromium-browser or google-chrome on PATH)
#   OUT         the PNG (default clusters/local/argocd-applications.png)
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$(pwd)
WORK=$ROOT/.cache/argocd-ui
SIM_STATE=$WORK/sim
OUT=${OUT:-$ROOT/clusters/local/argocd-applications.png}
GPU_ANALYTICS=$ROOT/.venv/bin/gpu-analytics
BIN=$ROOT/.tools/bin
STEPS=5
step=0
say() { step=$((step + 1)); printf 'argocd-ui-screenshot: [%d/%d] %s\n' "$step" "$STEPS" "$*"; }
die() { printf 'argocd-ui-screenshot: error: %s\n' "$*" >&2; exit 1; }

[ -x "$GPU_ANALYTICS" ] || die "the project is not set up: run \`make setup\` first"
[ "$(id -u)" = 0 ] || die "the cluster simulation needs root (a network namespace of its own)"
if [ -z "${CHROMIUM:-}" ]; then
  for candidate in chromium chromium-browser google-chrome; do
    if command -v "$candidate" >/dev/null; then CHROMIUM=$(command -v "$candidate"); break; fi
  done
fi
[ -n "${CHROMIUM:-}" ] || die "no Chromium found: install one (Debian: apt-get install chromium) or set CHROMIUM"
command -v "$CHROMIUM" >/dev/null || die "CHROMIUM=$CHROMIUM is not an executable"
export CHROMIUM
command -v npm >/dev/null || die "npm not found: it installs puppeteer-core"

say "argocd-server with the Argo CD UI"
scripts/argocd-ui/build.sh

say "puppeteer-core (scripts/argocd-ui/package-lock.json)"
shot=$WORK/shot
if ! cmp -s scripts/argocd-ui/package-lock.json "$shot/package-lock.json" || [ ! -d "$shot/node_modules" ]; then
  rm -rf "$shot" && mkdir -p "$shot"
  cp scripts/argocd-ui/package.json scripts/argocd-ui/package-lock.json "$shot/"
  # The browser is the system's: puppeteer-core downloads none.
  npm ci --prefix "$shot" --no-fund --no-audit --loglevel=error >/dev/null
fi

sim_args=(--ui --state-dir "$SIM_STATE")
if [ -n "${CHARTS_DIR:-}" ]; then
  sim_args+=(--charts-dir "$CHARTS_DIR")
  say "the cluster simulation with its UI, serving the working tree and the charts in $CHARTS_DIR"
else
  say "the cluster simulation with its UI, serving the working tree (no CHARTS_DIR: the chart Applications are left out)"
fi
"$GPU_ANALYTICS" cluster-sim down --state-dir "$SIM_STATE" >/dev/null 2>&1 || true
trap '"$GPU_ANALYTICS" cluster-sim down --state-dir "$SIM_STATE" || true' EXIT
exports=$("$GPU_ANALYTICS" cluster-sim up "${sim_args[@]}")
eval "$exports" # KUBECONFIG, ARGOCD_SERVER, ARGOCD_OPTS: the simulation, through its forwarders

say "the tree, installed by clusters/local/install.sh"
KUBECTL=$BIN/kubectl ARGOCD=$BIN/argocd KUSTOMIZE=$BIN/kustomize GPU_ANALYTICS=$GPU_ANALYTICS \
  "$SIM_STATE/checkout/clusters/local/install.sh"

count=$("$BIN/argocd" app list -o name | wc -l)
say "the screenshot of $count Applications: $OUT"
NODE_PATH=$shot/node_modules node scripts/argocd-ui/screenshot.cjs \
  "http://$ARGOCD_SERVER/applications" "$OUT" "$count"
