#!/usr/bin/env bash
# Runs every test: unit tests, the sandbox's fidelity test against recorded kube-apiserver
# answers, the CLI tests that run the plugin through real kubectl against the sandbox, and
# the tests against real PostgreSQL, MariaDB and Redis servers (installed from Debian's
# packages when missing, started on loopback in temp dirs), and the completion scripts in
# real bash, zsh and fish (zsh and fish installed the same way).
set -euo pipefail
cd "$(dirname "$0")/.."
kubectl_dir="$(bash scripts/ensure-kubectl.sh)"
bash scripts/ensure-test-packages.sh
export PATH="$kubectl_dir:$PATH"
echo "kubectl: $(command -v kubectl) ($(kubectl version --client 2>/dev/null | head -1))"
cargo test --workspace --all-targets "$@"
