#!/usr/bin/env bash
# The serving suite (tests/serving) on another KServe SDK than the pinned one, in a venv of its own.
#
#   bash scripts/serving_compat.sh KSERVE_VERSION [pytest args...]
#   SERVING_COMPAT_TESTS=tests/serving/test_serving_kserve.py bash scripts/serving_compat.sh 0.20.0   # one file
#
# The venv holds the project's dependencies (runtime and dev) pinned by requirements.lock, with
# kserve and kserve-storage at KSERVE_VERSION instead; neither spamops nor spamops-dev is installed
# in it: the tests import this checkout's src/ and dev/ (PYTHONPATH), so a cached venv never
# serves stale code.
# It is cached under $SPAMOPS_CACHE (default ~/.cache/spamops) keyed by the version and a hash of
# requirements.lock and the requirements read from pyproject.toml, so a warm run installs nothing
# (other edits to pyproject.toml keep the venv); a stale key is removed.
# Never install a second KServe into the project's own .venv: every other test relies on the pin.
set -euo pipefail
cd "$(dirname "$0")/.."

version="${1:?usage: serving_compat.sh KSERVE_VERSION [pytest args...]}"
shift
python="${PYTHON:-python3}"
cache="${SPAMOPS_CACHE:-$HOME/.cache/spamops}/serving-compat"
# What the project needs: spamops's dependencies and dev extra, and spamops-dev's (dev/) but spamops.
requirements="$("$python" - <<'EOF'
import tomllib

product = tomllib.load(open("pyproject.toml", "rb"))["project"]
dev = tomllib.load(open("dev/pyproject.toml", "rb"))["project"]
wanted = product["dependencies"] + product["optional-dependencies"]["dev"] + dev["dependencies"]
print("\n".join(r for r in wanted if r != "spamops"))
EOF
)"
key="$( (cat requirements.lock; echo "$requirements") | sha256sum | cut -c1-12)"
venv="$cache/kserve-$version-$key"

if [ ! -e "$venv/.complete" ]; then
  echo "serving-compat: building $venv (kserve $version)" >&2
  rm -rf "$cache"/kserve-"$version"-*
  mkdir -p "$cache"
  "$python" -m venv "$venv"
  constraints="$venv/constraints.txt"
  # The lock with kserve's two distributions moved to the version under test.
  sed -E "s/^(kserve|kserve-storage)==.*/\1==$version/" requirements.lock >"$constraints"
  echo "$requirements" >"$venv/requirements.txt"
  "$venv/bin/pip" install --quiet --upgrade pip
  "$venv/bin/pip" install --quiet -c "$constraints" -r "$venv/requirements.txt"
  installed="$("$venv/bin/python" -c 'from importlib.metadata import version; print(version("kserve"))')"
  [ "$installed" = "$version" ] || { echo "serving-compat: pip installed kserve $installed, not $version" >&2; exit 1; }
  touch "$venv/.complete"
fi

tests="${SERVING_COMPAT_TESTS:-tests/serving}"
echo "serving-compat: $tests on kserve $version ($venv)" >&2
export PYTHONPATH="$PWD/src:$PWD/dev${PYTHONPATH:+:$PYTHONPATH}"
# shellcheck disable=SC2086 # a list of test paths
exec "$venv/bin/python" -m pytest $tests -p no:cacheprovider "$@"
