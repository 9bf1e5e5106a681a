#!/usr/bin/env bash
# Builds, packages and renders a release of kubectl-rotate for krew, in one command:
#
#   scripts/release.sh [--version vX.Y.Z] [--out DIR] [--only OS/ARCH[,OS/ARCH...]]
#                      [--profile NAME] [--manifest PATH] [--render-only]
#
# For each platform (all five unless --only), builds kubectl-rotate with
#   cargo zigbuild --locked --profile NAME --target TRIPLE --bin kubectl-rotate
# (zig is the C compiler and linker, so each target cross-builds from Linux), then
# krew/package.sh puts the binary and LICENSE in
# DIR/kubectl-rotate_<version>_<os>_<arch>.tar.gz (windows: .zip, kubectl-rotate.exe)
# with its .sha256. Last, krew/package.sh renders the krew manifest of the archives in DIR
# into PATH. Without --only, every platform's archive must be there.
# --render-only builds nothing and renders from the archives already in DIR (the release
# workflow builds each platform in a job of its own, then renders once).
#
#   linux/amd64    x86_64-unknown-linux-musl    static
#   linux/arm64    aarch64-unknown-linux-musl   static
#   darwin/amd64   x86_64-apple-darwin          needs a macOS SDK, see below
#   darwin/arm64   aarch64-apple-darwin         needs a macOS SDK, see below
#   windows/amd64  x86_64-pc-windows-gnu
#
# darwin links Apple's Security and CoreFoundation frameworks (kube's TLS stack reads
# the system's trust store), and zig ships no macOS SDK: on macOS the native toolchain
# builds them (cargo build), elsewhere set SDKROOT to a MacOSX.sdk, or they fail at once.
#
# Installs what it needs when missing: each target's std (rustup target add), and
# cargo-zigbuild and zig from PyPI into a venv (scripts/ensure-pytools.sh).
# Binaries carry no path of the build machine (--remap-path-prefix); archives are
# reproducible with GNU tar (SOURCE_DATE_EPOCH, default: the last commit's time).
# A platform that fails to build is named at the end, and the command exits 1 after
# packaging and rendering the others.
#
# Defaults: version "v" + Cargo.toml's (another --version is an error: the binary reports
# Cargo.toml's, so a tag that disagrees must not be released), DIR target/krew, profile
# release, PATH DIR/rotate.yaml.
set -euo pipefail

readonly PLATFORMS="linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64"
# NB: tested together; another zig may not link what this one links.
readonly ZIG_TOOLS="cargo-zigbuild==0.24.1 ziglang==0.17.1"

die() {
  echo "release.sh: $*" >&2
  exit 1
}

usage() {
  sed -n '2,37s/^# \{0,1\}//p' "$0" >&2
  exit "${1:-2}"
}

root=$(cd "$(dirname "$0")/.." && pwd)

version="" out="" only="" profile=release manifest="" render_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --version) version=${2:?--version needs a value}; shift 2 ;;
    --out) out=${2:?--out needs a value}; shift 2 ;;
    --only) only=${2:?--only needs a value}; shift 2 ;;
    --profile) profile=${2:?--profile needs a value}; shift 2 ;;
    --manifest) manifest=${2:?--manifest needs a value}; shift 2 ;;
    --render-only) render_only=1; shift ;;
    -h | --help) usage 0 ;;
    *) echo "release.sh: unknown argument $1" >&2; usage ;;
  esac
done

cargo_version=$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' "$root/Cargo.toml" | head -n 1)
[ -n "$cargo_version" ] || die "no package version in $root/Cargo.toml"
if [ -n "$version" ] && [ "$version" != "v$cargo_version" ]; then
  die "--version $version, but Cargo.toml says $cargo_version: set [package] version first"
fi
version="v$cargo_version"

mkdir -p "${out:=$root/target/krew}"
out=$(cd "$out" && pwd)
manifest=${manifest:-$out/rotate.yaml}

selected=$PLATFORMS
if [ -n "$only" ]; then
  selected=""
  for p in ${only//,/ }; do
    case " $PLATFORMS " in
      *" $p "*) ;;
      *) die "unknown platform $p (known: $PLATFORMS)" ;;
    esac
    selected="$selected $p"
  done
fi

triple_of() { # os/arch
  case "$1" in
    linux/amd64) echo x86_64-unknown-linux-musl ;;
    linux/arm64) echo aarch64-unknown-linux-musl ;;
    darwin/amd64) echo x86_64-apple-darwin ;;
    darwin/arm64) echo aarch64-apple-darwin ;;
    windows/amd64) echo x86_64-pc-windows-gnu ;;
  esac
}

# How to build os/arch here: "zig", "cargo" (darwin on macOS) or "no-sdk".
builder_of() {
  case "$1" in
    darwin/*)
      if [ "$(uname -s)" = Darwin ]; then
        echo cargo
      elif [ -n "${SDKROOT:-}" ]; then
        echo zig
      else
        echo no-sdk
      fi
      ;;
    *) echo zig ;;
  esac
}

build() { # os/arch -> the built binary's path on stdout
  local p=$1 triple builder dir bin start
  triple=$(triple_of "$p")
  builder=$(builder_of "$p")
  case "$builder" in
    no-sdk)
      echo "release.sh: $p: no macOS SDK here: $triple links Apple's Security and" \
        "CoreFoundation frameworks, and zig ships none; build on macOS or set SDKROOT" >&2
      return 1
      ;;
    zig) set -- zigbuild ;;
    cargo) set -- build ;;
  esac
  start=$(date +%s)
  echo "release.sh: $p: cargo $1 --profile $profile --target $triple" >&2
  (cd "$root" && cargo "$1" --locked --profile "$profile" --target "$triple" --bin kubectl-rotate >&2) ||
    return 1
  echo "release.sh: $p: built in $(($(date +%s) - start)) s" >&2
  case "$profile" in
    dev) dir=debug ;;
    *) dir=$profile ;;
  esac
  bin=$target_dir/$triple/$dir/kubectl-rotate
  [ "${p%/*}" != windows ] || bin=$bin.exe
  [ -f "$bin" ] || { echo "release.sh: $p: cargo made no $bin" >&2; return 1; }
  echo "$bin"
}

failed=""
if [ "$render_only" -eq 0 ]; then
  command -v python3 >/dev/null 2>&1 || die "python3 is needed (the zig venv, the windows .zip)"
  target_dir=$(cd "$root" && cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')

  # Each target's std, from rustup.
  if command -v rustup >/dev/null 2>&1; then
    installed=$(rustup target list --installed)
    for p in $selected; do
      t=$(triple_of "$p")
      grep -qx "$t" <<<"$installed" || rustup target add "$t" >&2
    done
  else
    echo "release.sh: no rustup: the toolchain must have the targets' std already" >&2
  fi
  # cargo-zigbuild and zig, when a platform is built with them.
  for p in $selected; do
    if [ "$(builder_of "$p")" = zig ]; then
      # shellcheck disable=SC2086 # the list is one word a package
      PATH="$(bash "$root/scripts/ensure-pytools.sh" $ZIG_TOOLS):$PATH"
      export PATH
      break
    fi
  done

  # No path of this machine in the binaries: the sources, the registry's sources and the
  # target dir (build scripts' OUT_DIR) are named by fixed prefixes instead.
  cargo_home=${CARGO_HOME:-$HOME/.cargo}
  for d in "$root" "$cargo_home" "$target_dir"; do
    case "$d" in
      *[[:space:]]*) die "the path '$d' has white space, which RUSTFLAGS cannot carry" ;;
    esac
  done
  RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }--remap-path-prefix=$cargo_home=/cargo"
  RUSTFLAGS="$RUSTFLAGS --remap-path-prefix=$root=/kubectl-rotate"
  RUSTFLAGS="$RUSTFLAGS --remap-path-prefix=$target_dir=/kubectl-rotate/target"
  export RUSTFLAGS
  SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)}
  export SOURCE_DATE_EPOCH

  for p in $selected; do
    if bin=$(build "$p"); then
      bash "$root/krew/package.sh" --package-only --os "${p%/*}" --arch "${p#*/}" \
        --version "$version" --out "$out" "$bin"
    else
      failed="$failed $p"
    fi
  done
fi

render=(--render-only --version "$version" --out "$out" --manifest "$manifest")
[ -n "$only" ] || [ -n "$failed" ] || render+=(--require-all)
bash "$root/krew/package.sh" "${render[@]}"
[ -z "$failed" ] || die "not built:$failed (the messages above say why)"
