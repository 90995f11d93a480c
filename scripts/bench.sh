#!/usr/bin/env bash
# Runs the benchmark (BENCHMARKS.md) against a moto server on 127.0.0.1 that this script starts
# and stops, with release builds of contain and contain-bench. Not part of the tests.
#
# Usage: scripts/bench.sh [INSTANCES] [SCALE]   (1000 and 10 by default)
#        scripts/bench.sh s2 [SUBNETS] [SCALE]   (200 and 10; needs no moto, but this script starts it)
#        scripts/bench.sh s3 [USERS] [SCALE]     (1000 and 10; the same)
#        scripts/bench.sh s3-iam [KEYS] [SCALE]  (500 and 10)
#        scripts/bench.sh custodian [INSTANCES] [RUNS]  (200 and 5; scripts/custodian-compare.sh
#                                                     installs Cloud Custodian first)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export MOTO_PORT="${MOTO_PORT:-5058}"

if scripts/moto.sh running; then
    echo "using the moto server already running on 127.0.0.1:$MOTO_PORT" >&2
else
    scripts/moto.sh start
    trap 'scripts/moto.sh stop' EXIT
fi
export CONTAIN_TEST_MOTO_URL
CONTAIN_TEST_MOTO_URL=$(scripts/moto.sh url)
export AWS_EC2_METADATA_DISABLED=true
# Lets the benchmark report moto's CPU time. It is empty when moto was started some other way.
export MOTO_PID
MOTO_PID=$(cat "$root/.moto/moto-$MOTO_PORT.pid" 2>/dev/null || true)

cargo build --release --locked --bin contain --bin contain-bench
target_dir="${CARGO_TARGET_DIR:-$root/target}"
CONTAIN_BIN="$target_dir/release/contain" "$target_dir/release/contain-bench" "$@"
