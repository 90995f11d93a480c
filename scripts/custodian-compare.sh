#!/usr/bin/env bash
# Compares contain with Cloud Custodian (BENCHMARKS.md, "Side by side with Cloud Custodian"):
# installs c7n into .venv-custodian/, then runs `contain-bench custodian` through
# scripts/bench.sh, which starts moto on 127.0.0.1 (port 5058, or MOTO_PORT) and builds release
# binaries. Run by hand, not in CI. Both tools reach moto only through the benchmark's proxy on
# 127.0.0.1.
#
# Usage: scripts/custodian-compare.sh [INSTANCES] [RUNS]   (200 and 5 by default)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
c7n_version="0.9.53"
venv="$root/.venv-custodian"

if ! "$venv/bin/custodian" version 2>/dev/null | grep -qx "$c7n_version"; then
    echo "Installing c7n==$c7n_version into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "c7n==$c7n_version"
fi

export CUSTODIAN_BIN="$venv/bin/custodian"
exec "$root/scripts/bench.sh" custodian "$@"
