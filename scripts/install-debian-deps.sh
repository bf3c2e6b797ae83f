#!/usr/bin/env bash
# Debian packages the tests start for real; installs only what is missing (CI runs it from a clean clone).
# One line per package: "<command it provides> <package>".
set -euo pipefail
PACKAGES="
promtool prometheus
prometheus-alertmanager prometheus-alertmanager
amtool prometheus-alertmanager
"
missing=()
while read -r cmd pkg; do
  [ -n "$cmd" ] || continue
  command -v "$cmd" >/dev/null || missing+=("$pkg")
done <<<"$PACKAGES"
[ ${#missing[@]} -eq 0 ] && exit 0
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
echo "installing Debian packages: ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
