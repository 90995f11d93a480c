#!/usr/bin/env bash
# The whole test suite: starts moto on 127.0.0.1, builds the workspace, runs every test, and
# stops moto. Extra arguments go to `cargo test` (for example a test name filter).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export MOTO_PORT="${MOTO_PORT:-5056}"

# A server that was already running on the port is used and left running.
if scripts/moto.sh running; then
    echo "using the moto server already running on 127.0.0.1:$MOTO_PORT" >&2
else
    scripts/moto.sh start
    trap 'scripts/moto.sh stop' EXIT
fi
export CONTAIN_TEST_MOTO_URL
CONTAIN_TEST_MOTO_URL=$(scripts/moto.sh url)
# Nothing in the tests may look for credentials or regions on the instance metadata address.
export AWS_EC2_METADATA_DISABLED=true

# The end-to-end tests run the contain binary, so build it before the tests.
# The crash tests need the test-only crash points (see crates/core/src/crash.rs).
cargo build --workspace --bins --locked --features contain-cli/crash-points
cargo test --workspace --locked "$@"
# Skipped for a filtered run: the API against its own OpenAPI document, with generated requests,
# and smoke sizes of benchmark scenarios S1, S2 and S3 (BENCHMARKS.md), not timed, which must
# contain every target (contain-bench exits 1 otherwise).
if [ "$#" -eq 0 ]; then
    bash scripts/schemathesis.sh
    target_dir="${CARGO_TARGET_DIR:-$root/target}"
    CONTAIN_BIN="$target_dir/debug/contain" "$target_dir/debug/contain-bench" 10 100 >/dev/null
    CONTAIN_BIN="$target_dir/debug/contain" "$target_dir/debug/contain-bench" s2 20 100 >/dev/null
    CONTAIN_BIN="$target_dir/debug/contain" "$target_dir/debug/contain-bench" s3 20 100 >/dev/null
fi
