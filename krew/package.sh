#!/usr/bin/env bash
# Package kubectl-rotate for krew and render its Plugin manifest.
#
#   krew/package.sh [--os OS] [--arch ARCH] [--version vX.Y.Z] [--out DIR]
#                   [--manifest PATH] [--render-only] [--require-all] [BINARY]
#   krew/package.sh --placeholders [--version vX.Y.Z] [--manifest PATH]
#
# Packaging: puts BINARY (default: `cargo build --release --locked`, then
# target/release/kubectl-rotate) and LICENSE at the root of
# DIR/kubectl-rotate_<version>_<os>_<arch>.tar.gz and writes its sha256 next to it
# (<archive>.sha256, sha256sum format).
#
# Rendering: fills krew/rotate.yaml.tmpl with the version and, for every supported
# platform whose archive is in DIR, its uri and sha256. Platforms with no archive in DIR
# are left out with a warning, or are an error with --require-all (use it for the
# manifest you submit). --render-only skips packaging: a release job collects the
# archives built on each OS into one DIR and renders once.
#
# --placeholders renders all platforms with a sha256 of 64 zeros and packages nothing:
# the committed manifest between a version bump and that version's release.
#
# Defaults: OS/ARCH of this machine, version "v" + Cargo.toml's package version,
# DIR target/krew, manifest DIR/rotate.yaml.
set -euo pipefail

readonly PLATFORMS="linux/amd64 linux/arm64 darwin/amd64 darwin/arm64"

die() {
  echo "package.sh: $*" >&2
  exit 1
}

usage() {
  sed -n '2,23s/^# \{0,1\}//p' "$0" >&2
  exit "${1:-2}"
}

script_dir=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$script_dir/.." && pwd)

os="" arch="" version="" out="" manifest="" bin="" render_only=0 require_all=0 placeholders=0
while [ $# -gt 0 ]; do
  case "$1" in
    --os) os=${2:?--os needs a value}; shift 2 ;;
    --arch) arch=${2:?--arch needs a value}; shift 2 ;;
    --version) version=${2:?--version needs a value}; shift 2 ;;
    --out) out=${2:?--out needs a value}; shift 2 ;;
    --manifest) manifest=${2:?--manifest needs a value}; shift 2 ;;
    --render-only) render_only=1; shift ;;
    --require-all) require_all=1; shift ;;
    --placeholders) placeholders=1; shift ;;
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
manifest=${manifest:-$out/rotate.yaml}

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d ' ' -f 1
  else
    shasum -a 256 "$1" | cut -d ' ' -f 1 # macOS
  fi
}

archive_name() { # os arch
  echo "kubectl-rotate_${version}_$1_$2.tar.gz"
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

  local archive
  # NB: global, not local: the EXIT trap runs after package() has returned.
  stage=$(mktemp -d)
  trap 'rm -rf "$stage"' EXIT
  # NB: whatever BINARY is called, krew's manifest says bin: kubectl-rotate.
  cp "$bin" "$stage/kubectl-rotate"
  cp "$root/LICENSE" "$stage/LICENSE"
  chmod 0755 "$stage/kubectl-rotate"
  chmod 0644 "$stage/LICENSE"

  archive=$out/$(archive_name "$os" "$arch")
  # Same inputs, same bytes, where GNU tar allows it: fixed order, owner and mtime, and
  # no name or timestamp in the gzip header. macOS's bsdtar lacks these flags.
  local mtime=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)}
  if tar --version 2>/dev/null | grep -q 'GNU tar'; then
    tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner \
      --mtime="@$mtime" -cf - kubectl-rotate LICENSE | gzip -9n >"$archive"
  else
    tar -C "$stage" -cf - kubectl-rotate LICENSE | gzip -9n >"$archive"
  fi
  echo "$(sha256_of "$archive")  $(basename "$archive")" >"$archive.sha256"
  echo "packaged $archive" >&2
}

render() {
  local template=$script_dir/rotate.yaml.tmpl
  local head block platforms="" missing=""
  # Template-only lines start with '#' in column 0; the platform block sits between the
  # '#@platform' and '#@end' markers.
  head=$(awk '/^#@platform/{exit} !/^#/' "$template")
  block=$(awk '/^#@platform/{on=1; next} /^#@end/{on=0} on && !/^#/' "$template")

  local p o a archive sha preamble=""
  if [ "$placeholders" -eq 1 ]; then
    preamble="# NB: every sha256 below is a placeholder (64 zeros) until $version's archives are
# built and published: valid in form, matching no archive. See krew/README.md; the
# release gate \`cargo test --test krew_manifest -- --ignored\` fails until then.
"
  fi
  for p in $PLATFORMS; do
    o=${p%/*} a=${p#*/}
    archive=$out/$(archive_name "$o" "$a")
    if [ "$placeholders" -eq 1 ]; then
      sha=0000000000000000000000000000000000000000000000000000000000000000
    elif [ -f "$archive" ]; then
      sha=$(sha256_of "$archive")
    else
      missing="$missing $p"
      continue
    fi
    platforms="$platforms$(printf '%s' "$block" | sed -e "s/{{OS}}/$o/g" -e "s/{{ARCH}}/$a/g" -e "s/{{SHA256}}/$sha/g")
"
  done
  [ -n "$platforms" ] || die "no archive for any platform in $out; nothing to render"
  if [ -n "$missing" ]; then
    [ "$require_all" -eq 0 ] || die "no archive in $out for:$missing"
    echo "package.sh: warning: no archive in $out for:$missing; the manifest leaves them out" >&2
  fi

  mkdir -p "$(dirname "$manifest")"
  printf '%s%s\n%s' "$preamble" "$head" "$platforms" | sed -e "s/{{VERSION}}/$version/g" >"$manifest"
  echo "rendered $manifest" >&2
}

if [ "$render_only" -eq 0 ] && [ "$placeholders" -eq 0 ]; then
  package
fi
render
