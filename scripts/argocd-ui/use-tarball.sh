#!/usr/bin/env bash
# use-tarball.sh PNPM-LOCK TARBALL: point the one argo-ui resolution of Argo CD's UI lockfile,
# a tarball on GitHub, at a local tarball of the same package (build.sh, ARGO_UI_TARBALL).
# Exits 1, changing nothing, unless exactly one resolution names GitHub.
set -euo pipefail
lock=${1:?usage: use-tarball.sh PNPM-LOCK TARBALL}
tarball=${2:?usage: use-tarball.sh PNPM-LOCK TARBALL}
pattern='^(    resolution: \{tarball: )https://codeload\.github\.com/argoproj/argo-ui/tar\.gz/[0-9a-f]{40}\}$'
found=$(grep -cE "$pattern" "$lock" || true)
if [ "$found" != 1 ]; then
  printf 'use-tarball.sh: expected one argo-ui tarball resolution on GitHub in %s, found %s\n' "$lock" "$found" >&2
  exit 1
fi
sed -i -E "s#$pattern#\\1file:$tarball}#" "$lock"
