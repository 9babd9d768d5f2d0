#!/usr/bin/env bash
# Lets `make setup` fetch promtool on GitHub's Ubuntu runners.
#
# scripts/setup.sh takes promtool from Debian bookworm's `prometheus` package: it runs
# `apt-get download prometheus=<pinned version>` and unpacks the .deb into .tools/ (nothing is
# installed system-wide). Ubuntu's archive has no such version, so this adds Debian bookworm as
# a download-only source: pinned at priority -1, apt never installs anything from it, while an
# explicit `apt-get download package=version` still resolves.
# https://manpages.debian.org/bookworm/apt/apt_preferences.5.en.html
set -euo pipefail

sources=/etc/apt/sources.list.d/debian-bookworm.sources
preferences=/etc/apt/preferences.d/debian-bookworm-download-only

sudo apt-get update -q=2
sudo apt-get install -q=2 -y --no-install-recommends debian-archive-keyring >/dev/null

keyring=
for candidate in /usr/share/keyrings/debian-archive-keyring.gpg \
  /usr/share/keyrings/debian-archive-keyring.pgp; do
  if [ -f "$candidate" ]; then keyring=$candidate && break; fi
done
[ -n "$keyring" ] || { echo "::error::no Debian archive keyring under /usr/share/keyrings" >&2; exit 1; }

sudo tee "$preferences" >/dev/null <<PREFS
Package: *
Pin: origin deb.debian.org
Pin-Priority: -1
PREFS

sudo tee "$sources" >/dev/null <<SOURCES
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Architectures: $(dpkg --print-architecture)
Signed-By: $keyring
SOURCES

sudo apt-get update -q=2
apt-cache policy prometheus
