#!/usr/bin/env bash
# Validates the OpenAPI document of `contain serve` on 127.0.0.1, then runs schemathesis (both
# from PyPI) against the server, driven by that document: every operation with generated
# requests, and every check (no 5xx, responses that match the document, schema-valid requests
# accepted, invalid ones rejected).
#
# Needs a moto server (scripts/moto.sh start) and the contain binary (cargo build --bins).
# MOTO_PORT picks the moto server; CONTAIN_API_PORT the API's port (default 8761).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
venv="$root/.venv"
version="4.32.5"
validator_version="0.9.0"
port="${CONTAIN_API_PORT:-8761}"
contain="${CARGO_TARGET_DIR:-$root/target}/debug/contain"

if ! "$venv/bin/python" -c "import schemathesis, sys; sys.exit(schemathesis.__version__ != '$version')" 2>/dev/null; then
    echo "Installing schemathesis==$version into $venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
fi
if ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('openapi-spec-validator') != '$validator_version')" 2>/dev/null; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check "openapi-spec-validator==$validator_version"
fi

work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
token=$("$contain" token new --principal schemathesis --roles admin 2>"$work/tokens.yaml")

# The API plans against moto only, with credentials moto accepts.
AWS_ENDPOINT_URL=$(MOTO_PORT="${MOTO_PORT:-5055}" scripts/moto.sh url) \
    AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 \
    AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
    "$contain" --state-dir "$work/state" serve --listen "127.0.0.1:$port" --tokens "$work/tokens.yaml" --playbooks playbooks \
    2>"$work/serve.log" &
server=$!
for _ in $(seq 1 50); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.2
done

# The document itself must be valid OpenAPI (unique operation ids, well-formed schemas).
curl -fsS "http://127.0.0.1:$port/v1/openapi.json" >"$work/openapi.json"
"$venv/bin/openapi-spec-validator" "$work/openapi.json"

"$venv/bin/schemathesis" run "http://127.0.0.1:$port/v1/openapi.json" \
    --header "Authorization: Bearer $token" --checks all --max-examples 50 --seed 20261205 --no-color
