#!/usr/bin/env bash
# Promotion's one edit: sets newTag of both pipeline images (gpu-analytics-processor and
# gpu-analytics-producer) in clusters/<cluster>/pipeline/kustomization.yaml to <tag>, and
# changes nothing else in that file (no `kustomize edit set image`, which rewrites the whole
# file and clutters the reviewed diff). Used by .github/workflows/promote.yml (by hand, any
# cluster) and images.yml (every push to main, the local cluster); works the same by hand:
#
#   scripts/promote.sh local sha-1a2b3c4
#   scripts/promote.sh aws 0.2.0 && make validate
#
# With KUSTOMIZE set (a kustomize binary) it then renders clusters/<cluster>/pipeline and
# checks that every container of both images runs <tag>. Running it again is a no-op edit,
# so a second call only repeats that check.
#
# Environment: PROMOTE_ROOT (the repository root; default: this script's checkout),
# KUSTOMIZE (optional, see above), GITHUB_OUTPUT (when set, `changed=true|false` is written to it).
# Exit status: 0 promoted or already at <tag>; 1 the file or the render is not as expected;
# 2 bad arguments (unknown cluster, malformed tag).
set -euo pipefail

usage() { echo "usage: scripts/promote.sh <cluster> <tag>" >&2; exit 2; }
die() { echo "promote: error: $1" >&2; exit "${2:-1}"; } # message [status]

[ $# -eq 2 ] || usage
cluster=$1
tag=$2
root=${PROMOTE_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}

# The tags images.yml makes: semver from a v* git tag, or sha-<short commit>.
if [[ ! "$tag" =~ ^([0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?|sha-[0-9a-f]{7,40})$ ]]; then
  die "tag '$tag' is neither <major>.<minor>.<patch>[-<pre>] nor sha-<hex>" 2
fi

kustomization=clusters/$cluster/pipeline/kustomization.yaml
if [[ ! "$cluster" =~ ^[a-z0-9][a-z0-9-]*$ ]] || [ ! -f "$root/$kustomization" ]; then
  known=$(cd "$root/clusters" 2>/dev/null && for d in */pipeline/kustomization.yaml; do
    [ -f "$d" ] && printf ' %s' "${d%%/*}"
  done || true)
  die "unknown cluster '$cluster': no $kustomization (clusters:${known:- none})" 2
fi
file=$root/$kustomization

# Sets the newTag line that follows each of our two `- name:` entries under images:.
edited=$(mktemp)
trap 'rm -f "$edited"' EXIT
awk -v tag="$tag" '
  /^[[:space:]]*- name: ghcr\.io\/[^\/]+\/gpu-analytics-(processor|producer)[[:space:]]*$/ {
    ours = 1; print; next
  }
  /^[[:space:]]*- name:/ { ours = 0 }
  ours && /^[[:space:]]*newTag:/ { sub(/newTag:.*/, "newTag: \"" tag "\""); ours = 0; edited++ }
  { print }
  END { if (edited != 2) { print "expected 2 newTag lines, found " edited + 0 > "/dev/stderr"; exit 1 } }
' "$file" >"$edited" || die "$kustomization: the images: entries of gpu-analytics-processor and -producer, each with a newTag line, were not found"

if cmp -s "$file" "$edited"; then
  changed=false
  echo "promote: $cluster already runs $tag ($kustomization unchanged)"
else
  changed=true
  # cat, not mv: the file keeps its mode and inode.
  cat "$edited" >"$file"
  echo "promote: $cluster: gpu-analytics-processor and gpu-analytics-producer -> $tag ($kustomization)"
fi
if [ -n "${GITHUB_OUTPUT:-}" ]; then echo "changed=$changed" >>"$GITHUB_OUTPUT"; fi

[ -n "${KUSTOMIZE:-}" ] || exit 0
rendered=$("$KUSTOMIZE" build "$root/clusters/$cluster/pipeline") || die "kustomize build clusters/$cluster/pipeline failed"
for image in processor producer; do
  awk -v name="gpu-analytics-$image" -v tag="$tag" '
    $1 == "image:" || $2 == "image:" {
      ref = $NF; n = split(ref, part, "/"); split(part[n], nt, ":")
      if (nt[1] == name) { seen++; if (nt[2] != tag) bad = bad " " ref }
    }
    END {
      if (!seen) { print "promote: error: " name ": no container uses it" > "/dev/stderr"; exit 1 }
      if (bad) { print "promote: error: " name ": still at" bad > "/dev/stderr"; exit 1 }
    }
  ' <<<"$rendered"
done
echo "promote: kustomize build clusters/$cluster/pipeline renders both images at $tag"
