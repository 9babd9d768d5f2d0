#!/usr/bin/env bash
# make argocd-ui: build the web UI that argocd-server embeds, from the ui/ folder of the Argo CD
# module the simulation runs (scripts/gotools/argocd), and an argocd-server that embeds it:
# .tools/argocd-ui/bin/argocd-server, which `gpu-analytics cluster-sim up --ui` serves.
#
# The module on the Go proxy carries the UI's sources but not its build (ui/dist/app holds only
# a placeholder), and argocd-server reads index.html from its embedded files only, so the UI is
# built with the pnpm and the lockfile the module names, and the server is rebuilt against a
# copy of the module with the build in place. Needs Node.js 20+ and the npm registry.
#
#   ARGO_UI_TARBALL  a local tarball of the argo-ui package, for a machine that reaches the npm
#                    registry but not GitHub (the lockfile takes argo-ui from a GitHub tarball)
#
# Cold: ~5 min (install ~1, webpack ~3, Go ~1-2 with setup's build cache). Idempotent: a stamp
# of the Argo CD wrapper module and these scripts skips a build that is already there.
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$(pwd)
WRAPPER=$ROOT/scripts/gotools/argocd
WORK=$ROOT/.cache/argocd-ui
OUT=$ROOT/.tools/argocd-ui
STEPS=5
step=0
say() { printf 'argocd-ui: %s\n' "$*"; }
begin() { step=$((step + 1)); t_step=$(date +%s); printf 'argocd-ui: [%d/%d] %s ... ' "$step" "$STEPS" "$1"; }
done_() { printf '%s (%ss)\n' "${1:-done}" "$(($(date +%s) - t_step))"; }
die() { printf '\nargocd-ui: error: %s\n' "$*" >&2; exit 1; }
logged() { # log command...: run quietly, show the log's end on failure
  local log=$1
  shift
  "$@" >"$log" 2>&1 || { tail -n 40 "$log" >&2; die "failed: $* (log: $log)"; }
}

if [ -n "${ARGO_UI_TARBALL:-}" ]; then
  [ -f "$ARGO_UI_TARBALL" ] || die "ARGO_UI_TARBALL=$ARGO_UI_TARBALL is not a file"
  ARGO_UI_TARBALL=$(realpath "$ARGO_UI_TARBALL")
fi
command -v node >/dev/null || die "node not found: the UI builds with Node.js 20+"
command -v npm >/dev/null || die "npm not found: it installs the pnpm release the UI names"
command -v go >/dev/null || die "go not found: run \`make setup\` first"
[ -x "$ROOT/.tools/bin/argocd" ] || die "Argo CD is not built: run \`make setup\` first"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || die "Node.js 20+ needed, found $(node --version)"

VERSION=$(awk '$1 == "github.com/argoproj/argo-cd/v3" {print $2; exit}' "$WRAPPER/go.mod")
TOOLCHAIN=$(awk '$1 == "toolchain" {print $2; exit}' "$WRAPPER/go.mod")
[ -n "$VERSION" ] && [ -n "$TOOLCHAIN" ] || die "cannot read the Argo CD version and toolchain from $WRAPPER/go.mod"
stamp=$(cat "$WRAPPER/go.mod" "$WRAPPER/go.sum" "$ROOT"/scripts/argocd-ui/{build,use-tarball}.sh |
  sha256sum | cut -c1-16)
if [ -x "$OUT/bin/argocd-server" ] && [ "$(cat "$OUT/.stamp" 2>/dev/null)" = "$stamp" ]; then
  say "Argo CD $VERSION with its UI is already built: $OUT/bin/argocd-server"
  exit 0
fi
module_dir=$(env -C "$WRAPPER" GOTOOLCHAIN="$TOOLCHAIN" GOFLAGS=-mod=readonly \
  go list -m -f '{{.Dir}}' github.com/argoproj/argo-cd/v3)
[ -f "$module_dir/ui/package.json" ] || die "no ui/package.json in $module_dir"
t_all=$(date +%s)
mkdir -p "$WORK"

# ---- 1. a writable copy of the module -------------------------------------------------------
src=$WORK/argo-cd-$VERSION
begin "copy of github.com/argoproj/argo-cd/v3@$VERSION"
rm -rf "$src"
cp -r "$module_dir" "$src"
chmod -R u+w "$src"
done_

# ---- 2. pnpm, at the release package.json names ---------------------------------------------
pnpm_version=$(node -p "require('$src/ui/package.json').packageManager.replace(/^pnpm@/, '').split('+')[0]")
begin "pnpm $pnpm_version"
if [ -x "$WORK/pnpm/bin/pnpm" ] && [ "$("$WORK/pnpm/bin/pnpm" --version)" = "$pnpm_version" ]; then
  done_ "already installed"
else
  logged "$WORK/npm-pnpm.log" npm install --global --prefix "$WORK/pnpm" --no-fund --no-audit "pnpm@$pnpm_version"
  done_
fi
export PATH=$WORK/pnpm/bin:$PATH

# ---- 3. the UI's packages, as the lockfile pins them ----------------------------------------
begin "UI packages (pnpm install --frozen-lockfile)"
lock=$src/ui/pnpm-lock.yaml
if [ -n "${ARGO_UI_TARBALL:-}" ]; then
  scripts/argocd-ui/use-tarball.sh "$lock" "$ARGO_UI_TARBALL" || die "ARGO_UI_TARBALL cannot be used"
fi
logged "$WORK/pnpm-install.log" env -C "$src/ui" pnpm install --frozen-lockfile --store-dir "$WORK/pnpm-store"
done_

# ---- 4. the production build, into ui/dist/app (what ui/embed.go embeds) ---------------------
begin "UI build (webpack, production; ~3 min)"
logged "$WORK/pnpm-build.log" env -C "$src/ui" NODE_ENV=production pnpm run build
[ -f "$src/ui/dist/app/index.html" ] || die "the UI build wrote no ui/dist/app/index.html"
done_

# ---- 5. argocd-server embedding it ----------------------------------------------------------
begin "argocd-server $VERSION with the UI (Go $TOOLCHAIN)"
build_mod=$WORK/wrapper
rm -rf "$build_mod" && mkdir -p "$build_mod"
cp "$WRAPPER/go.mod" "$WRAPPER/go.sum" "$build_mod/"
printf '\n// The module with its UI built in (scripts/argocd-ui/build.sh).\nreplace github.com/argoproj/argo-cd/v3 => %s\n' "$src" >>"$build_mod/go.mod"
mkdir -p "$OUT/bin"
logged "$WORK/go-build.log" env -C "$build_mod" GOTOOLCHAIN="$TOOLCHAIN" GOFLAGS=-mod=readonly CGO_ENABLED=0 \
  go build -ldflags="$("$WRAPPER/ldflags.sh" "$VERSION")" -o "$OUT/bin/argocd-server.new" \
  github.com/argoproj/argo-cd/v3/cmd
mv "$OUT/bin/argocd-server.new" "$OUT/bin/argocd-server"
echo "$stamp" >"$OUT/.stamp"
done_
say "built in $(($(date +%s) - t_all))s: $OUT/bin/argocd-server (serve it: gpu-analytics cluster-sim up --ui)"
