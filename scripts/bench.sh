#!/usr/bin/env bash
# Every benchmark of BENCHMARKS.md in one run on this machine: builds the release binaries,
# then prints the figures and their ratios (list -A vs kubectl vs the floor at two sizes and
# two latencies, cold start, each verb's requests and round trips, bulk parallel vs serial,
# peak RSS). Not part of the tests: figures depend on the machine, ratios are what to read.
# Arguments go to bench_list: `bash scripts/bench.sh 500 3` for a quick run.
set -euo pipefail
cd "$(dirname "$0")/.."
kubectl_dir="$(bash scripts/ensure-kubectl.sh)"
export PATH="$kubectl_dir:$PATH"
cargo build --release --bin kubectl-rotate --examples
target/release/examples/bench_list "$@"
echo
target/release/examples/bench_bulk --databases 40 --namespaces 4 --delay-ms 200 --parallel 8
