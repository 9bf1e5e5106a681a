#!/usr/bin/env bash
# Package kubectl-rotate for krew and render its Plugin manifest.
#
#   krew/package.sh [--os OS] [--arch ARCH] [--version vX.Y.Z] [--out DIR]
#                   [--manifest PATH] [--package-only] [BINARY]
#   krew/package.sh --render-only [--require-all] [--version vX.Y.Z] [--out DIR]
#                   [--manifest PATH]
#   krew/package.sh --placeholders [--version vX.Y.Z] [--manifest PATH]
#   krew/package.sh --krew-bot-template [--manifest PATH]
#
# Packaging: puts BINARY (default: `cargo build --release --locked`, then
# target/release/kubectl-rotate) and LICENSE at the root of
# DIR/kubectl-rotate_<version>_<os>_<arch>.tar.gz (windows: .zip, the binary named
# kubectl-rotate.exe) and writes its sha256 next to it (<archive>.sha256, sha256sum
# format). Then renders, unless --package-only.
#
# Rendering: fills krew/rotate.yaml.tmpl with the version and, for every supported
# platform whose archive is in DIR, its uri and sha256. Platforms with no archive in DIR
# are left out with a warning, or are an error with --require-all (use it for the
# manifest you submit). --render-only skips packaging.
#
# --placeholders renders all platforms with a sha256 of 64 zeros and packages nothing:
# the committed manifest between a version bump and that version's release.
#
# --krew-bot-template renders the same template for krew-release-bot: the version is
# {{ .TagName }} and each uri and sha256 pair is the bot's {{ addURIAndSha ... }}, which
# it fills from the published archives. Default PATH: .krew.yaml at the repository root.
#
# Defaults: OS/ARCH of this machine, version "v" + Cargo.toml's package version,
# DIR target/krew, manifest DIR/rotate.yaml.
set -euo pipefail

readonly PLATFORMS="linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64"

die() {
  echo "package.sh: $*" >&2
  exit 1
}

usage() {
  sed -n '2,30s/^# \{0,1\}//p' "$0" >&2
  exit "${1:-2}"
}

script_dir=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$script_dir/.." && pwd)

os="" arch="" version="" out="" manifest="" bin=""
mode=package render_after=1 require_all=0
while [ $# -gt 0 ]; do
  case "$1" in
    --os) os=${2:?--os needs a value}; shift 2 ;;
    --arch) arch=${2:?--arch needs a value}; shift 2 ;;
    --version) version=${2:?--version needs a value}; shift 2 ;;
    --out) out=${2:?--out needs a value}; shift 2 ;;
    --manifest) manifest=${2:?--manifest needs a value}; shift 2 ;;
    --package-only) render_after=0; shift ;;
    --render-only) mode=render; shift ;;
    --require-all) require_all=1; shift ;;
    --placeholders) mode=placeholders; shift ;;
    --krew-bot-template) mode=bot; shift ;;
    -h | --help) usage 0 ;;
    -*) echo "package.sh: unknown flag $1" >&2; usage ;;
    *) [ -z "$bin" ] || die "only one BINARY may be given"; bin=$1; shift ;;
  esac
done

# NB: the version comes from the first `version = ` line, which is [package]'s in the
# root Cargo.toml (the [workspace.package] table there sets no version).
if [ -z "$version" ]; then
  cargo_version=$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' "$root/Cargo.toml" | head -n 1)
  [ -n "$cargo_version" ] || die "no package version in $root/Cargo.toml"
  version="v$cargo_version"
fi
case "$version" in
  v[0-9]*.[0-9]*.[0-9]*) ;;
  *) die "version '$version' is not v<semver>" ;;
esac

out=${out:-$root/target/krew}
if [ "$mode" = bot ]; then
  manifest=${manifest:-$root/.krew.yaml}
else
  manifest=${manifest:-$out/rotate.yaml}
fi

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d ' ' -f 1
  else
    shasum -a 256 "$1" | cut -d ' ' -f 1 # macOS
  fi
}

ext_of() { # os
  if [ "$1" = windows ]; then echo zip; else echo tar.gz; fi
}

bin_of() { # os
  if [ "$1" = windows ]; then echo kubectl-rotate.exe; else echo kubectl-rotate; fi
}

archive_name() { # version os arch
  echo "kubectl-rotate_$1_$2_$3.$(ext_of "$2")"
}

package() {
  if [ -z "$os" ]; then
    case "$(uname -s)" in
      Linux) os=linux ;;
      Darwin) os=darwin ;;
      *) die "unsupported OS $(uname -s); pass --os" ;;
    esac
  fi
  if [ -z "$arch" ]; then
    case "$(uname -m)" in
      x86_64 | amd64) arch=amd64 ;;
      aarch64 | arm64) arch=arm64 ;;
      *) die "unsupported machine $(uname -m); pass --arch" ;;
    esac
  fi
  case " $PLATFORMS " in
    *" $os/$arch "*) ;;
    *) die "unsupported platform $os/$arch (supported: $PLATFORMS)" ;;
  esac

  if [ -z "$bin" ]; then
    (cd "$root" && cargo build --release --locked --bin kubectl-rotate)
    bin=$root/target/release/kubectl-rotate
  fi
  [ -f "$bin" ] || die "binary $bin not found"
  mkdir -p "$out"
  [ -f "$root/LICENSE" ] || die "$root/LICENSE not found; krew requires a license in the archive"

  local archive bin_name
  bin_name=$(bin_of "$os")
  # NB: global, not local: the EXIT trap runs after package() has returned.
  stage=$(mktemp -d)
  trap 'rm -rf "$stage"' EXIT
  # NB: whatever BINARY is called, the archive holds the manifest's bin name.
  cp "$bin" "$stage/$bin_name"
  cp "$root/LICENSE" "$stage/LICENSE"
  chmod 0755 "$stage/$bin_name"
  chmod 0644 "$stage/LICENSE"

  archive=$out/$(archive_name "$version" "$os" "$arch")
  # Same inputs, same bytes, where the tools allow it: fixed order, owner and mtime, and
  # no name or timestamp in the gzip header. macOS's bsdtar lacks these flags.
  local mtime=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)}
  if [ "$os" = windows ]; then
    # NB: zip with Python's zipfile (python3 is on every machine that builds here), so
    # the entry order, times and modes are ours to fix, as with GNU tar below.
    python3 - "$archive" "$mtime" "$stage" "$bin_name" LICENSE <<'EOF'
import os, sys, time, zipfile

archive, mtime, stage, *names = sys.argv[1:]
# A zip entry's time is a DOS date: calendar fields (UTC here), no earlier than 1980.
when = time.gmtime(max(int(mtime), 315532800))[:6]
with zipfile.ZipFile(archive, "w") as z:
    for name in sorted(names):
        info = zipfile.ZipInfo(name, date_time=when)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.create_system = 3  # unix: the mode bits below are read by unzip
        mode = 0o755 if name.endswith(".exe") else 0o644
        info.external_attr = (0o100000 | mode) << 16
        with open(os.path.join(stage, name), "rb") as f:
            z.writestr(info, f.read(), compresslevel=9)
EOF
  elif tar --version 2>/dev/null | grep -q 'GNU tar'; then
    tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner \
      --mtime="@$mtime" -cf - "$bin_name" LICENSE | gzip -9n >"$archive"
  else
    tar -C "$stage" -cf - "$bin_name" LICENSE | gzip -9n >"$archive"
  fi
  echo "$(sha256_of "$archive")  $(basename "$archive")" >"$archive.sha256"
  echo "packaged $archive" >&2
}

render() {
  local template=$script_dir/rotate.yaml.tmpl
  local head block platforms="" missing="" tag=$version
  # Template-only lines start with '#' in column 0; the platform block sits between the
  # '#@platform' and '#@end' markers.
  head=$(awk '/^#@platform/{exit} !/^#/' "$template")
  block=$(awk '/^#@platform/{on=1; next} /^#@end/{on=0} on && !/^#/' "$template")

  local p o a archive sha preamble=""
  case "$mode" in
    placeholders)
      preamble="# NB: every sha256 below is a placeholder (64 zeros), valid in form and matching no
# archive: this is krew/rotate.yaml.tmpl rendered for $version before its archives exist.
# Submit the manifest scripts/release.sh renders from the archives (krew/README.md).
"
      ;;
    bot)
      # A Go template comment with trim markers: it and the newline after it vanish.
      preamble="{{- /* krew-release-bot's template, made by krew/package.sh --krew-bot-template
from krew/rotate.yaml.tmpl: edit that file, then run the command again. */ -}}
"
      tag='{{ .TagName }}'
      # NB: the bot's addURIAndSha prints "uri: URL", a newline and "    sha256: SHA": it
      # stands where the uri line stood, and the sha256 line goes.
      block=$(printf '%s' "$block" | sed -e 's|^\( *\)uri: \(.*\)$|\1{{ addURIAndSha "\2" .TagName }}|' \
        -e '/^ *sha256: {{SHA256}}$/d')
      ;;
  esac
  for p in $PLATFORMS; do
    o=${p%/*} a=${p#*/}
    archive=$out/$(archive_name "$version" "$o" "$a")
    if [ "$mode" = placeholders ] || [ "$mode" = bot ]; then
      sha=0000000000000000000000000000000000000000000000000000000000000000
    elif [ -f "$archive" ]; then
      sha=$(sha256_of "$archive")
    else
      missing="$missing $p"
      continue
    fi
    platforms="$platforms$(printf '%s' "$block" | sed -e "s/{{OS}}/$o/g" -e "s/{{ARCH}}/$a/g" \
      -e "s/{{EXT}}/$(ext_of "$o")/g" -e "s/{{BIN}}/$(bin_of "$o")/g" -e "s/{{SHA256}}/$sha/g")
"
  done
  [ -n "$platforms" ] || die "no archive for any platform in $out; nothing to render"
  if [ -n "$missing" ]; then
    [ "$require_all" -eq 0 ] || die "no archive in $out for:$missing"
    echo "package.sh: warning: no archive in $out for:$missing; the manifest leaves them out" >&2
  fi

  mkdir -p "$(dirname "$manifest")"
  printf '%s%s\n%s' "$preamble" "$head" "$platforms" | sed -e "s/{{VERSION}}/$tag/g" >"$manifest"
  echo "rendered $manifest" >&2
}

if [ "$mode" = package ]; then
  package
  [ "$render_after" -eq 0 ] || render
else
  render
fi
