#!/usr/bin/env bash
# The test base image: Debian bookworm (minbase) with Debian's python3, built by
# mmdebstrap, because no public registry (python:3.11-slim) is reachable here.
# The root filesystem tarball is cached by version (versions.env), so it is made
# once per machine; `docker import` turns it into an image on the daemon that
# DOCKER_HOST names (skipped when the image is already there).
#
# Usage: scripts/images/base.sh tarball   # make/reuse the tarball, print its path
#        scripts/images/base.sh image     # ... and import it, print the image name
#        scripts/images/base.sh name      # print the image name only
# Needs mmdebstrap (apt-get install mmdebstrap) for the tarball, docker for the image.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

version="$BASE_SUITE-r$BASE_REVISION"
name="spamops-base/debian-python3:$version"
cache="${SPAMOPS_CACHE:-$HOME/.cache/spamops}/images"
tarball="$cache/debian-python3-$version.tar"
DOCKER="${DOCKER:-docker}"
log() { printf '[base-image %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

make_tarball() {
  [[ -s "$tarball" ]] && return 0
  mkdir -p "$cache"
  exec 9>"$cache/.base.lock"
  flock 9
  [[ -s "$tarball" ]] && return 0
  command -v mmdebstrap >/dev/null || { log "error: mmdebstrap is missing: apt-get install -y mmdebstrap"; exit 1; }
  local start=$SECONDS
  log "bootstrapping Debian $BASE_SUITE with $BASE_PACKAGES (first time only, about a minute)"
  # No documentation, man pages or locales: nothing in the image reads them.
  mmdebstrap --variant=minbase --format=tar --include="$BASE_PACKAGES" --quiet \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/*' \
    "$BASE_SUITE" "$tarball.tmp" \
    "deb $BASE_MIRROR $BASE_SUITE main" \
    "deb $BASE_MIRROR $BASE_SUITE-updates main" \
    "deb $BASE_SECURITY_MIRROR $BASE_SUITE-security main"
  mv "$tarball.tmp" "$tarball"
  log "base tarball $(du -h "$tarball" | cut -f1) in $((SECONDS - start)) s: $tarball"
}

import_image() {
  if "$DOCKER" image inspect "$name" >/dev/null 2>&1; then return 0; fi
  make_tarball
  log "docker import $tarball as $name"
  "$DOCKER" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    --message "Debian $BASE_SUITE minbase + $BASE_PACKAGES (scripts/images/base.sh)" \
    "$tarball" "$name" >/dev/null
}

case "${1:-}" in
  tarball) make_tarball; printf '%s\n' "$tarball" ;;
  image) import_image; printf '%s\n' "$name" ;;
  name) printf '%s\n' "$name" ;;
  *) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
