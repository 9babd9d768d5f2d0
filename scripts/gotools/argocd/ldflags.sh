#!/usr/bin/env bash
# ldflags.sh vX.Y.Z: the -ldflags of an Argo CD build, so that `argocd version` reports the
# release as a release build does (gitTag needs a commit and a clean tree to be shown).
# Used by scripts/setup.sh and scripts/argocd-ui/build.sh.
set -euo pipefail
version=${1:?usage: ldflags.sh vX.Y.Z}
pkg=github.com/argoproj/argo-cd/v3/common
printf '%s\n' "-X $pkg.version=${version#v} -X $pkg.gitTag=$version -X $pkg.gitCommit=module-$version -X $pkg.gitTreeState=clean"
