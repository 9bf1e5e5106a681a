#!/usr/bin/env bash
# Prints the bin directory of a venv holding the given PyPI packages at the given versions,
#   scripts/ensure-pytools.sh NAME==VERSION...
# installing whichever are missing or at another version (pip, into a venv under ~/.cache,
# as scripts/ensure-kubectl.sh does for kubectl). The release command takes cargo-zigbuild
# and ziglang from here, .ci/run takes actionlint and shellcheck.
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 NAME==VERSION..." >&2; exit 2; }
for spec in "$@"; do
  case "$spec" in
    *?==?*) ;;
    *) echo "ensure-pytools.sh: '$spec' is not NAME==VERSION" >&2; exit 2 ;;
  esac
done

venv="${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-rotate/pytools"
# Exit status 0 when every NAME==VERSION is installed in the venv at exactly that version.
have_all() {
  [ -x "$venv/bin/python" ] || return 1
  "$venv/bin/python" - "$@" <<'EOF'
import importlib.metadata as md, sys
for spec in sys.argv[1:]:
    name, version = spec.split("==", 1)
    try:
        if md.version(name) != version:
            sys.exit(1)
    except md.PackageNotFoundError:
        sys.exit(1)
EOF
}

if ! have_all "$@"; then
  echo "installing $* from PyPI into $venv" >&2
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$@" >&2
  have_all "$@" || { echo "ensure-pytools.sh: $* not installed in $venv" >&2; exit 1; }
fi
echo "$venv/bin"
