#!/usr/bin/env bash
# Builds the Terraform CLI from its Go module into a repo-local folder.
#
# `go install github.com/hashicorp/terraform@vX` is refused: Terraform's go.mod replaces its
# remote-state backends (s3, gcs, azurerm, ...) with nested modules that the module zip does
# not carry. The checks here need only fmt, console and validate, so this script builds the
# released source without those nine backends (local, http, remote and cloud stay). Use a
# release binary for real `terraform init` against an S3 backend.
#
# Usage: scripts/install-terraform.sh [DEST_DIR]   (default: .tools/bin)
# Idempotent: does nothing when DEST_DIR/terraform already reports the pinned version.
set -euo pipefail

TERRAFORM_VERSION="1.13.3"
DEST_DIR="${1:-.tools/bin}"
BIN="${DEST_DIR}/terraform"

# The first line of `terraform version`, read whole: `... | head -n 1 | grep -q` under pipefail
# fails at random when grep or head closes the pipe before terraform has written everything.
first_line() { local out; out="$("$@" 2>/dev/null || true)"; printf '%s\n' "${out%%$'\n'*}"; }

if [[ -x "${BIN}" ]] && [[ "$(first_line "${BIN}" version)" == "Terraform v${TERRAFORM_VERSION}" ]]; then
  echo "terraform v${TERRAFORM_VERSION} already at ${BIN}"
  exit 0
fi

command -v go >/dev/null || { echo "go is required to build terraform" >&2; exit 1; }

src="$(go mod download -json "github.com/hashicorp/terraform@v${TERRAFORM_VERSION}" \
  | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[[ -d "${src}" ]] || { echo "could not download github.com/hashicorp/terraform@v${TERRAFORM_VERSION}" >&2; exit 1; }

work="$(mktemp -d)"
trap 'chmod -R u+w "${work}" && rm -rf "${work}"' EXIT
cp -R "${src}/." "${work}/"
chmod -R u+w "${work}"

backends='azure|consul|cos|gcs|kubernetes|oci|oss|pg|s3'
# go.mod: drop the nested modules (requires and replaces) that are not in the zip.
sed -i -E "/hashicorp\/terraform\/internal\/(backend\/remote-state\/(${backends})|legacy)( |$)/d" "${work}/go.mod"
# init.go: drop their imports and their entries in the backend table.
sed -i -E \
  -e "/internal\/backend\/remote-state\/(${backends})\"$/d" \
  -e '/^\s*"(azurerm|consul|cos|gcs|kubernetes|oss|pg|s3|oci)":\s+func\(\)/d' \
  "${work}/internal/backend/init/init.go"

mkdir -p "${DEST_DIR}"
dest_abs="$(cd "${DEST_DIR}" && pwd)"
(cd "${work}" && GOFLAGS=-mod=mod go build -trimpath \
  -ldflags "-s -w -X github.com/hashicorp/terraform/version.dev=no" -o "${dest_abs}/terraform" .)
first_line "${BIN}" version
