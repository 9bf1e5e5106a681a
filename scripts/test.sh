#!/usr/bin/env bash
# Runs every test: unit tests, the sandbox's fidelity test against recorded kube-apiserver
# answers, and the CLI tests that run the plugin through real kubectl against the sandbox.
set -euo pipefail
cd "$(dirname "$0")/.."
kubectl_dir="$(bash scripts/ensure-kubectl.sh)"
export PATH="$kubectl_dir:$PATH"
echo "kubectl: $(command -v kubectl) ($(kubectl version --client 2>/dev/null | head -1))"
cargo test --workspace --all-targets "$@"
