#!/usr/bin/env bash
# make setup: install every tool the project needs into repo-local, git-ignored folders.
# Idempotent: each step checks a version stamp and skips what is already there.
#
#   .venv/          Python dependencies from uv.lock (services + dev tools)
#   .tools/checkov  checkov, resolved in the same lock (its pins conflict with pytest's)
#   .tools/bin/     uv, kubeconform, kustomize, actionlint, terraform, promtool
#   .tools/kafka/   Apache Kafka broker and tools jars (version = platform/kafka image tag)
#   .tools/schemas/ Kubernetes JSON schemas for kubeconform
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
TOOLS=$ROOT/.tools
BIN=$TOOLS/bin
mkdir -p "$BIN" "$ROOT/.cache"

# ---- pinned versions (the Kafka version lives in platform/kafka/base/kustomization.yaml) ----
UV_VERSION=0.13.8
KUBECONFORM_VERSION=v0.7.0
KUSTOMIZE_VERSION=v5.8.2  # v5.8.3 needs Go 1.27
ACTIONLINT_VERSION=v1.7.12
PROMETHEUS_DEB_VERSION=2.42.0+ds-5+deb12u1
PYTHON_MINOR=3.11

STEPS=10
step=0
t_all=$(date +%s)
say() { printf 'setup: %s\n' "$*"; }
begin() { step=$((step + 1)); t_step=$(date +%s); printf 'setup: [%d/%d] %s ... ' "$step" "$STEPS" "$1"; }
done_() { printf '%s (%ss)\n' "${1:-done}" "$(($(date +%s) - t_step))"; }
die() { printf '\nsetup: error: %s\n' "$*" >&2; exit 1; }
stamp_ok() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

# ---- prerequisites --------------------------------------------------------------------------
need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found: $2"; }
need python$PYTHON_MINOR "install Python $PYTHON_MINOR (the services and their images use it)"
need go "install Go 1.22+ (builds kubeconform, kustomize, actionlint, terraform)"
need java "install a JDK 17+ (runs the local Kafka broker)"
need mvn "install Apache Maven (fetches the Kafka jars)"
java_major=$(java -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2}')
[ "${java_major%%.*}" -ge 17 ] 2>/dev/null || die "Java 17+ needed for Kafka 4, found ${java_major:-unknown}"

KAFKA_VERSION=$(awk '/name: apache\/kafka/ {found=1} found && /newTag:/ {gsub(/["'"'"' ]/, "", $2); print $2; exit}' \
  platform/kafka/base/kustomization.yaml 2>/dev/null || true)
[ -n "$KAFKA_VERSION" ] || die "cannot read the apache/kafka image tag from platform/kafka/base/kustomization.yaml"

# ---- 1. uv ----------------------------------------------------------------------------------
begin "uv $UV_VERSION"
if stamp_ok "$TOOLS/uv-env/.version" "$UV_VERSION"; then done_ "already installed"; else
  rm -rf "$TOOLS/uv-env"
  python$PYTHON_MINOR -m venv "$TOOLS/uv-env"
  "$TOOLS/uv-env/bin/pip" install --quiet --disable-pip-version-check "uv==$UV_VERSION"
  echo "$UV_VERSION" >"$TOOLS/uv-env/.version"
  done_
fi
ln -sf "$TOOLS/uv-env/bin/uv" "$BIN/uv"
UV=$BIN/uv

# ---- 2. Python environment from the lock ----------------------------------------------------
begin "Python dependencies (uv.lock -> .venv)"
UV_PROJECT_ENVIRONMENT=$ROOT/.venv "$UV" sync --frozen --quiet --python "python$PYTHON_MINOR"
done_

begin "checkov (uv.lock -> .tools/checkov)"
UV_PROJECT_ENVIRONMENT=$TOOLS/checkov "$UV" sync --frozen --quiet --python "python$PYTHON_MINOR" \
  --no-default-groups --group checkov --no-install-project
done_

# ---- 3. Go tools ----------------------------------------------------------------------------
go_tool() { # name module version
  begin "$1 $3"
  if stamp_ok "$BIN/.$1.version" "$3" && [ -x "$BIN/$1" ]; then done_ "already installed"; return; fi
  local log=$ROOT/.cache/setup-$1.log
  GOBIN=$BIN GOFLAGS=-mod=mod CGO_ENABLED=0 go install "$2@$3" >"$log" 2>&1 \
    || { cat "$log" >&2; die "go install $2@$3 failed (log: $log)"; }
  echo "$3" >"$BIN/.$1.version"
  done_
}
go_tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform $KUBECONFORM_VERSION
go_tool kustomize sigs.k8s.io/kustomize/kustomize/v5 $KUSTOMIZE_VERSION
go_tool actionlint github.com/rhysd/actionlint/cmd/actionlint $ACTIONLINT_VERSION

# Terraform's go.mod replaces its remote-state backends with nested modules that `go install`
# cannot fetch; the script builds the pinned release without them (fmt/validate need none).
begin "terraform (built from source, pinned in scripts/install-terraform.sh)"
scripts/install-terraform.sh "$BIN" >"$ROOT/.cache/setup-terraform.log" 2>&1 \
  || { cat "$ROOT/.cache/setup-terraform.log" >&2; die "building terraform failed"; }
done_

# ---- 4. Kafka jars --------------------------------------------------------------------------
begin "Apache Kafka $KAFKA_VERSION jars (Maven)"
if stamp_ok "$TOOLS/kafka/libs/.version" "$KAFKA_VERSION"; then done_ "already installed"; else
  rm -rf "$TOOLS/kafka/libs"
  mvn -B -q -f scripts/kafka/pom.xml -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$TOOLS/kafka/libs" \
    >"$ROOT/.cache/setup-kafka.log" 2>&1 \
    || { cat "$ROOT/.cache/setup-kafka.log" >&2; die "mvn could not fetch the Kafka $KAFKA_VERSION jars"; }
  echo "$KAFKA_VERSION" >"$TOOLS/kafka/libs/.version"
  done_
fi

# ---- 5. promtool (Debian's prometheus package, unpacked, never installed system-wide) --------
begin "promtool (Debian prometheus $PROMETHEUS_DEB_VERSION)"
if stamp_ok "$TOOLS/prometheus/.version" "$PROMETHEUS_DEB_VERSION"; then done_ "already installed"; else
  need apt-get "promtool comes from Debian's prometheus package; on other systems put promtool on PATH as .tools/bin/promtool"
  debs=$ROOT/.cache/debs
  mkdir -p "$debs"
  rm -f "$debs"/prometheus_*.deb
  fetch() { (cd "$debs" && apt-get download -q=2 "$1" 2>/dev/null); }
  if ! fetch "prometheus=$PROMETHEUS_DEB_VERSION"; then
    # Stale or missing package lists: refresh them (as root, or with password-less sudo).
    if [ "$(id -u)" = 0 ]; then apt-get update -q=2 >/dev/null
    elif sudo -n true 2>/dev/null; then sudo apt-get update -q=2 >/dev/null
    fi
    if ! fetch "prometheus=$PROMETHEUS_DEB_VERSION"; then
      # Not Debian 12 (an Ubuntu CI runner, say): the distribution's own prometheus package.
      # promtool's rule syntax and unit-test format are stable across 2.x and 3.x.
      printf '(pinned version not in these apt sources; using the distribution'"'"'s) '
      fetch prometheus || die "apt-get could not download a prometheus package (try 'sudo apt-get update')"
    fi
  fi
  rm -rf "$TOOLS/prometheus"
  dpkg-deb -x "$debs"/prometheus_*.deb "$TOOLS/prometheus"
  echo "$PROMETHEUS_DEB_VERSION" >"$TOOLS/prometheus/.version"
  done_
fi
ln -sf "$TOOLS/prometheus/usr/bin/promtool" "$BIN/promtool"
ln -sf "$TOOLS/prometheus/usr/bin/prometheus" "$BIN/prometheus"

# ---- 6. Kubernetes JSON schemas for kubeconform ---------------------------------------------
begin "Kubernetes JSON schemas (kubernetes-validate)"
"$ROOT/.venv/bin/python" scripts/gen_k8s_schemas.py --quiet
done_

say "ready in $(($(date +%s) - t_all))s: tools in .tools/bin, Python in .venv"
