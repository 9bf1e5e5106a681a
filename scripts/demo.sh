#!/usr/bin/env bash
# The demo: start the sandbox cluster (KubeDB + Arc simulated), then rotate and roll back
# credentials with `kubectl rotate`, and inspect the result (prev, history, status, list),
# showing kubectl-style tables. No password is printed (prev masks them).
set -euo pipefail
cd "$(dirname "$0")/.."
kubectl_dir="$(bash scripts/ensure-kubectl.sh)"
cargo build --release --quiet --workspace --bins
work="$(mktemp -d)"
# NB: a bin dir of its own: cargo's target/release/kubectl-rotate.d would make
# `kubectl plugin list` warn about a non-executable "plugin" and exit 1.
mkdir "$work/bin"
cp target/release/kubectl-rotate target/release/rotate-sandbox "$work/bin/"
export PATH="$work/bin:$kubectl_dir:$PATH"
export KUBECONFIG="$work/kubeconfig"
rotate-sandbox serve --kubeconfig "$KUBECONFIG" --fixtures demo --operator-delay 300ms >"$work/sandbox.out" 2>&1 &
sandbox=$!
trap 'kill $sandbox 2>/dev/null; wait $sandbox 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do grep -q '^ready ' "$work/sandbox.out" && break; sleep 0.1; done
echo "# sandbox: $(cat "$work/sandbox.out")"
run() { echo; echo "\$ $*"; "$@"; }
run kubectl plugin list
run kubectl get sqlmi,mssqlservers,postgreses -n demo
run kubectl rotate auth sqlmi/sqlmi-demo -n demo --wait
run kubectl rotate rollback sqlmi/sqlmi-demo -n demo --wait
run kubectl rotate auth pg/pg-demo -n demo --wait
run kubectl rotate rollback pg/pg-demo -n demo --wait
run kubectl rotate auth ms/mssql-demo -n demo --wait
run kubectl get postgresopsrequests,mssqlserveropsrequests -n demo
run kubectl rotate prev pg/pg-demo -n demo
run kubectl rotate history pg/pg-demo -n demo
run kubectl rotate status sqlmi/sqlmi-demo -n demo
run kubectl rotate list -n demo
