#!/usr/bin/env bash
# make setup: install every tool the project needs into repo-local, git-ignored folders.
# Idempotent: each step checks a version stamp and skips what is already there.
#
#   scripts/setup.sh        everything (make setup, make test)
#   scripts/setup.sh dev    what `make dev` needs and nothing more: uv, the Python environment,
#                           the Kafka jars (Prometheus is used when a full setup built it)
#   scripts/setup.sh validate  what `make validate` needs: uv, the Python environment, checkov,
#                           kubeconform, kustomize, amtool, the Kubernetes schemas (promote.yml)
#
#   .venv/          Python dependencies from uv.lock (services + dev tools)
#   .tools/checkov  checkov, resolved in the same lock (its pins conflict with pytest's)
#   .tools/bin/     uv, kubeconform, kustomize, alertmanager, amtool, actionlint, terraform,
#                   prometheus, promtool, sloth
#   .tools/kafka/   Apache Kafka broker and tools jars (version = platform/kafka image tag) and
#                   the JMX exporter agent the brokers load (agent/)
#   .tools/schemas/ Kubernetes JSON schemas for kubeconform
#   .tools/bin/     kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd, kwok,
#                   helm, argocd (+ its component names), redis-server, prometheus-operator:
#                   the cluster simulation
#   .tools/argocd/  Argo CD's CRDs, from the module it is built from
#   .tools/mermaid/ mermaid-cli (npm, scripts/mermaid/package-lock.json), with Debian's Chromium
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
PYTHON_MINOR=3.11
HELM_VERSION=v3.22.0
KWOK_VERSION=v0.8.0
REDIS_DEB_VERSION=5:7.0.15-1~deb12u10
CHROMIUM_DEB_VERSION=156.0.8078.114-1~deb12u1  # renders the mermaid diagrams (mermaid-cli)
# Prometheus, Sloth, Kubernetes, etcd, Argo CD and the Prometheus Operator are pinned by the
# wrapper modules in scripts/gotools/*/go.mod (with go.sum): Prometheus at the cluster's image
# tag (values.yaml of kube-prometheus-stack), Kubernetes at the K3s release's version, Argo CD
# at the bootstrap chart's, the operator at the release of the prometheus-operator-crds chart.
# Argo CD 3.6 needs Go 1.27: the toolchain line of its wrapper's go.mod, which the go command
# fetches from the module proxy when GOTOOLCHAIN names it.

TIER=${1:-all}
case "$TIER" in
  all) STEPS=21 ;;
  dev) STEPS=3 ;;
  validate) STEPS=7 ;;
  *) printf 'setup: error: unknown tier %s (all, dev or validate)\n' "$TIER" >&2; exit 2 ;;
esac
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
[ "$TIER" = dev ] || need go "install Go 1.26+ (builds kubeconform, kustomize, actionlint, terraform, prometheus, sloth, the cluster simulation)"
if [ "$TIER" != validate ]; then
  need java "install a JDK 17+ (runs the local Kafka broker)"
  need mvn "install Apache Maven (fetches the Kafka jars)"
fi
java_major=$(java -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2}')
[ "${java_major%%.*}" -ge 17 ] 2>/dev/null || die "Java 17+ needed for Kafka 4, found ${java_major:-unknown}"

KAFKA_VERSION=$(awk '/name: apache\/kafka/ {found=1} found && /newTag:/ {gsub(/["'"'"' ]/, "", $2); print $2; exit}' \
  platform/kafka/base/kustomization.yaml 2>/dev/null || true)
[ -n "$KAFKA_VERSION" ] || die "cannot read the apache/kafka image tag from platform/kafka/base/kustomization.yaml"
# The JMX exporter agent the brokers load (platform/kafka/base: version and SHA-256 of the jar).
JMX_AGENT_VERSION=$(awk -F= '/- JMX_AGENT_VERSION=/ {print $2; exit}' platform/kafka/base/kustomization.yaml)
JMX_AGENT_SHA256=$(awk -F= '/- JMX_AGENT_SHA256=/ {print $2; exit}' platform/kafka/base/kustomization.yaml)
[ -n "$JMX_AGENT_VERSION" ] && [ -n "$JMX_AGENT_SHA256" ] ||
  die "cannot read JMX_AGENT_VERSION and JMX_AGENT_SHA256 from platform/kafka/base/kustomization.yaml"

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

# ---- 3. Kafka jars --------------------------------------------------------------------------
if [ "$TIER" = validate ]; then :; else
begin "Apache Kafka $KAFKA_VERSION jars, JMX exporter agent $JMX_AGENT_VERSION (Maven)"
kafka_stamp="$KAFKA_VERSION jmx $JMX_AGENT_VERSION"
if stamp_ok "$TOOLS/kafka/libs/.version" "$kafka_stamp"; then done_ "already installed"; else
  rm -rf "$TOOLS/kafka/libs" "$TOOLS/kafka/agent"
  mvn -B -q -f scripts/kafka/pom.xml -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$TOOLS/kafka/libs" \
    >"$ROOT/.cache/setup-kafka.log" 2>&1 \
    || { cat "$ROOT/.cache/setup-kafka.log" >&2; die "mvn could not fetch the Kafka $KAFKA_VERSION jars"; }
  mvn -B -q dependency:copy -Dartifact="io.prometheus.jmx:jmx_prometheus_javaagent:$JMX_AGENT_VERSION" \
    -Dmdep.stripVersion=true -DoutputDirectory="$TOOLS/kafka/agent" \
    >>"$ROOT/.cache/setup-kafka.log" 2>&1 \
    || { cat "$ROOT/.cache/setup-kafka.log" >&2; die "mvn could not fetch the JMX exporter agent $JMX_AGENT_VERSION"; }
  echo "$JMX_AGENT_SHA256  $TOOLS/kafka/agent/jmx_prometheus_javaagent.jar" | sha256sum -c --quiet - \
    || die "the JMX exporter agent's SHA-256 is not the one platform/kafka/base pins"
  echo "$kafka_stamp" >"$TOOLS/kafka/libs/.version"
  done_
fi
fi

if [ "$TIER" = dev ]; then
  say "ready for make dev in $(($(date +%s) - t_all))s (make setup installs the rest)"
  exit 0
fi

begin "checkov (uv.lock -> .tools/checkov)"
UV_PROJECT_ENVIRONMENT=$TOOLS/checkov "$UV" sync --frozen --quiet --python "python$PYTHON_MINOR" \
  --only-group checkov
done_

# ---- 4. Go tools ----------------------------------------------------------------------------
go_tool() { # name module version
  begin "$1 $3"
  if stamp_ok "$BIN/.$1.version" "$3" && [ -x "$BIN/$1" ]; then done_ "already installed"; return; fi
  local log=$ROOT/.cache/setup-$1.log
  GOBIN=$BIN GOFLAGS=-mod=mod CGO_ENABLED=0 go install "$2@$3" >"$log" 2>&1 \
    || { cat "$log" >&2; die "go install $2@$3 failed (log: $log)"; }
  echo "$3" >"$BIN/.$1.version"
  done_
}
# Long builds: a line every minute so the step is visibly alive; the log is kept on failure.
go_build() { # log command...: run a Go build in the background, print minutes meanwhile
  local log=$1 pid t0 elapsed
  shift
  t0=$(date +%s)
  "$@" >"$log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 5
    elapsed=$(($(date +%s) - t0))
    if [ $((elapsed % 60)) -lt 5 ] && [ "$elapsed" -ge 60 ]; then printf '%dm ' $((elapsed / 60)); fi
  done
  wait "$pid" || { cat "$log" >&2; die "build failed (log: $log)"; }
}
wrapper_stamp() { # dir [tags]: go.mod, go.sum and the build tags, if any, decide a rebuild
  { cat "scripts/gotools/$1/go.mod" "scripts/gotools/$1/go.sum"; if [ -n "${2:-}" ]; then echo "tags=$2"; fi; } \
    | sha256sum | cut -c1-16
}
wrapper_version() { awk -v m="$2" '$1 == m {print $2; exit}' "scripts/gotools/$1/go.mod"; }

# Each wrapper module lists its binaries as `tool` lines; `go install tool` builds them all in
# one go (shared packages compile once). -mod=readonly: go.sum pins every module's hash.
go_wrapper() { # dir label ldflags tags [env assignments for the build]
  local dir=$1 label=$2 ldflags=$3 tags=$4 stamp
  shift 4
  stamp=$(wrapper_stamp "$dir" "$tags")
  begin "$label"
  if stamp_ok "$BIN/.$dir.version" "$stamp"; then done_ "already installed"; return; fi
  go_build "$ROOT/.cache/setup-$dir.log" \
    env -C "scripts/gotools/$dir" GOBIN="$BIN" GOFLAGS=-mod=readonly CGO_ENABLED=0 "$@" \
    go install -tags="$tags" -ldflags="$ldflags" tool
  echo "$stamp" >"$BIN/.$dir.version"
  done_
}

go_tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform $KUBECONFORM_VERSION
go_tool kustomize sigs.k8s.io/kustomize/kustomize/v5 $KUSTOMIZE_VERSION
# amtool checks the Alertmanager configuration in make validate; alertmanager itself runs in
# the alert-routing tests. The script skips the build when the pinned release is there.
begin "Alertmanager, amtool (the cluster's release, scripts/install-alertmanager.sh; ~1 min cold)"
scripts/install-alertmanager.sh "$BIN" >"$ROOT/.cache/setup-alertmanager.log" 2>&1 \
  || { cat "$ROOT/.cache/setup-alertmanager.log" >&2; die "could not build alertmanager"; }
if grep -q "already at" "$ROOT/.cache/setup-alertmanager.log"; then done_ "already installed"; else done_; fi
k8s_schemas() {
  begin "Kubernetes JSON schemas (kubernetes-validate)"
  "$ROOT/.venv/bin/python" -m gpu_analytics_tools.gitops.k8s_schemas --quiet
  done_
}
if [ "$TIER" = validate ]; then
  k8s_schemas
  say "ready for make validate in $(($(date +%s) - t_all))s (make setup installs the rest)"
  exit 0
fi
go_tool actionlint github.com/rhysd/actionlint/cmd/actionlint $ACTIONLINT_VERSION

# Terraform's go.mod replaces its remote-state backends with nested modules that `go install`
# cannot fetch; the script builds the pinned release without them (fmt/validate need none).
begin "terraform (built from source, pinned in scripts/install-terraform.sh)"
scripts/install-terraform.sh "$BIN" >"$ROOT/.cache/setup-terraform.log" 2>&1 \
  || { cat "$ROOT/.cache/setup-terraform.log" >&2; die "building terraform failed"; }
done_

# ---- 5. prometheus, promtool and sloth (built from their Go modules) ------------------------
PROMETHEUS_MODULE_VERSION=$(wrapper_version prometheus github.com/prometheus/prometheus)
prom_minor=${PROMETHEUS_MODULE_VERSION#v0.} # module v0.316.0 is Prometheus 3.16.0
PROMETHEUS_VERSION=$((${prom_minor%%.*} / 100)).$((${prom_minor%%.*} % 100)).${prom_minor#*.}
# What `prometheus --version` and `promtool --version` report (as promu sets them for a release).
prom_pkg=github.com/prometheus/common/version
prom_ldflags="-X $prom_pkg.Version=$PROMETHEUS_VERSION -X $prom_pkg.Revision=module-$PROMETHEUS_MODULE_VERSION"
prom_ldflags="$prom_ldflags -X $prom_pkg.Branch=HEAD -X $prom_pkg.BuildUser=scripts/setup.sh -X $prom_pkg.BuildDate=unknown"
# Only the service discoveries local runs use (static, file, http): Prometheus's own build tag
# drops the cloud and Kubernetes ones, whose SDKs are most of its compile time.
PROMETHEUS_TAGS=remove_all_sd
# Earlier setups linked both names into Debian's prometheus package, unpacked in .tools/prometheus.
if [ -d "$TOOLS/prometheus" ]; then rm -rf "$TOOLS/prometheus" "$BIN/prometheus" "$BIN/promtool"; fi
go_wrapper prometheus "Prometheus $PROMETHEUS_VERSION (prometheus, promtool; ~3 min cold)" "$prom_ldflags" \
  "$PROMETHEUS_TAGS"
SLOTH_VERSION=$(wrapper_version sloth github.com/slok/sloth)
go_wrapper sloth "Sloth $SLOTH_VERSION (~2 min cold)" "-X github.com/slok/sloth/internal/info.Version=$SLOTH_VERSION" ""

# ---- 6. Kubernetes JSON schemas for kubeconform ---------------------------------------------
k8s_schemas

# ---- 7. the cluster simulation (gpu-analytics cluster-sim, tests/cluster) --------------------
K8S_VERSION=$(wrapper_version kubernetes k8s.io/kubernetes)
# What `kubectl version` and the API server's /version report (as a release build sets them).
k8s_ldflags=""
k8s_minor=${K8S_VERSION#v1.}
k8s_minor=${k8s_minor%%.*}
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags="$k8s_ldflags -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor -X $pkg.gitTreeState=clean"
done
go_wrapper kubernetes "Kubernetes $K8S_VERSION (kube-apiserver, controller-manager, scheduler, kubectl; ~6 min cold)" "$k8s_ldflags" ""
go_wrapper etcd "etcd $(wrapper_version etcd go.etcd.io/etcd/server/v3)" "" ""
ln -sf "$BIN/server" "$BIN/etcd" # the etcd main package is go.etcd.io/etcd/server/v3
ARGOCD_VERSION=$(wrapper_version argocd github.com/argoproj/argo-cd/v3)
ARGOCD_GOTOOLCHAIN=$(awk '$1 == "toolchain" {print $2; exit}' scripts/gotools/argocd/go.mod)
argocd_ldflags=$(scripts/gotools/argocd/ldflags.sh "$ARGOCD_VERSION")
go_wrapper argocd "Argo CD $ARGOCD_VERSION (Go $ARGOCD_GOTOOLCHAIN; ~6 min cold)" "$argocd_ldflags" "" \
  GOTOOLCHAIN="$ARGOCD_GOTOOLCHAIN"
# One binary, named for each component as Argo CD's image does.
ln -sf "$BIN/cmd" "$BIN/argocd"
for component in server repo-server application-controller applicationset-controller cmp-server git-ask-pass commit-server notifications; do
  ln -sf "$BIN/cmd" "$BIN/argocd-$component"
done
if ! stamp_ok "$TOOLS/argocd/.version" "$ARGOCD_VERSION"; then
  argocd_dir=$(env -C scripts/gotools/argocd GOTOOLCHAIN="$ARGOCD_GOTOOLCHAIN" GOFLAGS=-mod=readonly \
    go list -m -f '{{.Dir}}' github.com/argoproj/argo-cd/v3)
  rm -rf "$TOOLS/argocd" && mkdir -p "$TOOLS/argocd/crds"
  cp "$argocd_dir"/manifests/crds/*-crd.yaml "$TOOLS/argocd/crds/"
  chmod -R u+w "$TOOLS/argocd"
  echo "$ARGOCD_VERSION" >"$TOOLS/argocd/.version"
fi
# The simulation runs kube-prometheus-stack's operator itself when it serves the charts.
OPERATOR_VERSION=$(wrapper_version prometheus-operator github.com/prometheus-operator/prometheus-operator)
go_wrapper prometheus-operator "Prometheus Operator $OPERATOR_VERSION (~3 min cold)" \
  "-X github.com/prometheus/common/version.Version=${OPERATOR_VERSION#v}" ""
ln -sf "$BIN/operator" "$BIN/prometheus-operator" # the main package is cmd/operator
go_tool kwok sigs.k8s.io/kwok/cmd/kwok $KWOK_VERSION
# kwok's own default stages (what kwokctl loads): nodes turn Ready and keep a lease, pods
# turn Running and Ready, pods of Jobs complete, deleted pods go away.
if ! stamp_ok "$TOOLS/kwok/.version" "$KWOK_VERSION"; then
  kwok_dir=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | awk -F'"' '$2 == "Dir" {print $4}')
  rm -rf "$TOOLS/kwok" && mkdir -p "$TOOLS/kwok/stages"
  cp "$kwok_dir"/kustomize/stage/node/fast/node-initialize.yaml \
    "$kwok_dir"/kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
    "$kwok_dir"/kustomize/stage/pod/fast/pod-*.yaml "$TOOLS/kwok/stages/"
  chmod -R u+w "$TOOLS/kwok"
  echo "$KWOK_VERSION" >"$TOOLS/kwok/.version"
fi
go_tool helm helm.sh/helm/v3/cmd/helm $HELM_VERSION

# Debian packages, unpacked into .tools, never installed system-wide.
debs=$ROOT/.cache/debs
mkdir -p "$debs"
apt_refreshed=0
deb_fetch() { # package[=version]: download one .deb into $debs, refreshing stale lists once
  (cd "$debs" && apt-get download -q=2 "$1" 2>/dev/null) && return 0
  [ "$apt_refreshed" = 1 ] && return 1
  apt_refreshed=1
  # Stale or missing package lists: refresh them (as root, or with password-less sudo).
  if [ "$(id -u)" = 0 ]; then apt-get update -q=2 >/dev/null
  elif sudo -n true 2>/dev/null; then sudo apt-get update -q=2 >/dev/null
  fi
  (cd "$debs" && apt-get download -q=2 "$1" 2>/dev/null)
}
begin "redis-server (Debian redis-tools $REDIS_DEB_VERSION, for Argo CD)"
if stamp_ok "$TOOLS/redis/.version" "$REDIS_DEB_VERSION" && [ -x "$BIN/redis-server" ]; then done_ "already installed"; else
  need apt-get "redis comes from Debian's redis-tools package; on other systems put redis-server on PATH as .tools/bin/redis-server"
  rm -f "$debs"/redis-tools_*.deb "$debs"/libjemalloc2_*.deb "$debs"/liblzf1_*.deb
  deb_fetch "redis-tools=$REDIS_DEB_VERSION" || {
    printf '(pinned version not in these apt sources; using the distribution'"'"'s) '
    deb_fetch redis-tools || die "apt-get could not download redis-tools"
  }
  deb_fetch libjemalloc2 || die "apt-get could not download libjemalloc2 (for redis)"
  deb_fetch liblzf1 || die "apt-get could not download liblzf1 (for redis)"
  rm -rf "$TOOLS/redis"
  for deb in "$debs"/redis-tools_*.deb "$debs"/libjemalloc2_*.deb "$debs"/liblzf1_*.deb; do
    dpkg-deb -x "$deb" "$TOOLS/redis"
  done
  # redis-server is redis-check-rdb under another name; its libraries stay in .tools/redis.
  libdir=$(dirname "$(find "$TOOLS/redis" -name 'libjemalloc.so.2' | head -n 1)")
  ln -sf redis-check-rdb "$TOOLS/redis/usr/bin/redis-server"
  printf '#!/bin/sh\nLD_LIBRARY_PATH=%s exec %s "$@"\n' \
    "$libdir" "$TOOLS/redis/usr/bin/redis-server" >"$BIN/redis-server"
  chmod +x "$BIN/redis-server"
  "$BIN/redis-server" --version >/dev/null || die "redis-server does not run (see $BIN/redis-server)"
  echo "$REDIS_DEB_VERSION" >"$TOOLS/redis/.version"
  done_
fi

# ---- 8. mermaid-cli and Chromium: the Markdown files' diagrams, rendered in make test ----------
begin "Chromium (Debian $CHROMIUM_DEB_VERSION, for mermaid-cli)"
if command -v chromium >/dev/null 2>&1; then done_ "already installed"; else
  # Too many shared libraries to unpack into .tools like redis: installed system-wide.
  need apt-get "mermaid-cli renders with Chromium; install it (chromium) or put it on PATH"
  if [ "$(id -u)" = 0 ]; then apt=(apt-get); elif sudo -n true 2>/dev/null; then apt=(sudo apt-get)
  else die "installing Chromium needs root or password-less sudo: apt-get install chromium"; fi
  "${apt[@]}" update -q=2 >/dev/null
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -q=2 --no-install-recommends \
    "chromium=$CHROMIUM_DEB_VERSION" >"$ROOT/.cache/setup-chromium.log" 2>&1 || {
    printf '(pinned version not in these apt sources; using the distribution'"'"'s) '
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -q=2 --no-install-recommends chromium \
      >"$ROOT/.cache/setup-chromium.log" 2>&1 || { cat "$ROOT/.cache/setup-chromium.log" >&2; die "apt-get could not install chromium"; }
  }
  done_
fi

begin "mermaid-cli (npm, scripts/mermaid/package-lock.json)"
mermaid_stamp=$(sha256sum scripts/mermaid/package-lock.json | cut -c1-16)
if stamp_ok "$TOOLS/mermaid/.version" "$mermaid_stamp" && [ -x "$TOOLS/mermaid/node_modules/.bin/mmdc" ]; then
  done_ "already installed"
else
  need npm "install Node.js 20+ with npm (mermaid-cli renders the diagrams)"
  rm -rf "$TOOLS/mermaid"
  mkdir -p "$TOOLS/mermaid"
  cp scripts/mermaid/package.json scripts/mermaid/package-lock.json "$TOOLS/mermaid/"
  # Puppeteer drives Debian's Chromium: no browser download.
  (cd "$TOOLS/mermaid" && PUPPETEER_SKIP_DOWNLOAD=true npm ci --no-audit --no-fund --silent) \
    >"$ROOT/.cache/setup-mermaid.log" 2>&1 || { cat "$ROOT/.cache/setup-mermaid.log" >&2; die "npm ci of mermaid-cli failed"; }
  echo "$mermaid_stamp" >"$TOOLS/mermaid/.version"
  done_
fi

say "ready in $(($(date +%s) - t_all))s: tools in .tools/bin, Python in .venv"
