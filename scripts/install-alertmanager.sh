#!/usr/bin/env bash
# Builds alertmanager and amtool from their Go module at the release the cluster runs: the
# image tag of alertmanager.alertmanagerSpec in monitoring/kube-prometheus-stack/values.yaml.
#
# `go install github.com/prometheus/alertmanager/cmd/...` is refused: the ui package embeds
# ui/app/dist, the web UI's build output, which the module zip does not carry. This script
# builds the released source with a one-page stand-in for it (the API, the routing and amtool
# need none of the UI).
#
# Usage: scripts/install-alertmanager.sh [DEST_DIR]   (default: .tools/bin)
# Idempotent: does nothing when DEST_DIR/amtool already reports the pinned version.
set -euo pipefail

cd "$(dirname "$0")/.."
VALUES=monitoring/kube-prometheus-stack/values.yaml
version=$(awk '/^alertmanager:/ {a=1} a && /^[[:space:]]+tag:/ {print $2; exit}' "$VALUES")
[[ "$version" =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "no alertmanager image tag in $VALUES" >&2; exit 1; }
DEST_DIR="${1:-.tools/bin}"

if [[ -x "${DEST_DIR}/amtool" && -x "${DEST_DIR}/alertmanager" ]] &&
  [[ "$("${DEST_DIR}/amtool" --version 2>&1 || true)" == *"version ${version#v} "* ]]; then
  echo "alertmanager ${version} already at ${DEST_DIR}"
  exit 0
fi
command -v go >/dev/null || { echo "go is required to build alertmanager" >&2; exit 1; }

src="$(go mod download -json "github.com/prometheus/alertmanager@${version}" \
  | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[[ -d "${src}" ]] || { echo "could not download github.com/prometheus/alertmanager@${version}" >&2; exit 1; }

work="$(mktemp -d)"
trap 'chmod -R u+w "${work}" && rm -rf "${work}"' EXIT
cp -R "${src}/." "${work}/"
chmod -R u+w "${work}"
for ui in elm mantine; do
  mkdir -p "${work}/ui/app/dist/${ui}"
  printf '<!doctype html><title>Alertmanager</title><p>The web UI is not built here.\n' \
    >"${work}/ui/app/dist/${ui}/index.html"
done

mkdir -p "${DEST_DIR}"
dest_abs="$(cd "${DEST_DIR}" && pwd)"
pkg=github.com/prometheus/common/version
(cd "${work}" && CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath -o "${dest_abs}/" \
  -ldflags "-X ${pkg}.Version=${version#v} -X ${pkg}.Revision=module-${version} -X ${pkg}.Branch=HEAD -X ${pkg}.BuildUser=scripts/install-alertmanager.sh -X ${pkg}.BuildDate=unknown" \
  ./cmd/alertmanager ./cmd/amtool)
"${dest_abs}/amtool" --version 2>&1 | head -n 1
