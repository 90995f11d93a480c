#!/usr/bin/env bash
# The main job end to end: a compromised EC2 instance is planned, isolated and rolled back with
# the shipped playbook, against a moto server on 127.0.0.1 that this script starts and stops.
#
# Needs: cargo, python3 (for the moto venv) and curl. Nothing leaves 127.0.0.1.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export MOTO_PORT="${MOTO_PORT:-5055}"

section() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
json_field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d' + sys.argv[1]))" "$1"; }

# moto starts first, so a port already in use is reported before the build.
section "Starting moto on 127.0.0.1:$MOTO_PORT"
# A server that was already running on the port is used and left running.
if scripts/moto.sh running; then
    echo "using the moto server already running on 127.0.0.1:$MOTO_PORT" >&2
else
    scripts/moto.sh start
    trap 'scripts/moto.sh stop' EXIT
fi
url=$(scripts/moto.sh url)

section "Building contain"
cargo build --quiet --bins
target_dir="${CARGO_TARGET_DIR:-$root/target}"
contain="$target_dir/debug/contain"
estate="$target_dir/debug/contain-estate"

# The demo works in an AWS account of its own inside moto, with a state directory of its own.
export CONTAIN_TEST_MOTO_URL="$url" AWS_ENDPOINT_URL="$url" AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
account=$("$estate" account)
AWS_ACCESS_KEY_ID=$(json_field '["access_key_id"]' <<<"$account")
AWS_SECRET_ACCESS_KEY=$(json_field '["secret_access_key"]' <<<"$account")
AWS_SESSION_TOKEN=$(json_field '["session_token"]' <<<"$account")
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
CONTAIN_STATE_DIR=$(mktemp -d)
export CONTAIN_STATE_DIR

section "Building the estate: a VPC, two subnets, four security groups, two instances"
built=$("$estate" build)
instance=$(json_field '["double"]["instance_id"]' <<<"$built")
echo "The compromised instance is $instance, with two network interfaces in two subnets."

show_instance() {
    "$estate" describe | python3 scripts/show_instance.py "$instance"
}
show_instance
"$estate" describe >"$CONTAIN_STATE_DIR/before.json"

section "contain plan: what would change (read-only)"
"$contain" plan playbooks/aws/ec2-instance-compromise.yaml --input "instance=$instance" --input incident=INC-2026-042

section "contain run --yes: plan again, then apply"
"$contain" run playbooks/aws/ec2-instance-compromise.yaml --input "instance=$instance" --input incident=INC-2026-042 --yes | sed -n '/^Run /,$p'
run_id=$("$contain" runs list --output json | json_field '[0]["run_id"]')

section "The isolated instance"
show_instance

section "The journal of $run_id"
"$contain" runs show "$run_id"

section "contain rollback --yes"
"$contain" rollback "$run_id" --yes

section "The restored instance"
show_instance
"$estate" describe >"$CONTAIN_STATE_DIR/after.json"
if cmp -s "$CONTAIN_STATE_DIR/before.json" "$CONTAIN_STATE_DIR/after.json"; then
    echo "The full EC2 description after rollback is identical to the one before the run."
else
    echo "The EC2 description after rollback differs from the one before the run:" >&2
    diff "$CONTAIN_STATE_DIR/before.json" "$CONTAIN_STATE_DIR/after.json" >&2 || true
    exit 1
fi
