#!/usr/bin/env bash
# The Azure actions end to end, offline. A compromised VM is isolated, an address is blocked in
# an NSG, and an Entra ID user is disabled and revoked. Each is planned, run and rolled back
# against contain-azure-fake (a fake ARM, Graph and token server) on 127.0.0.1, which this
# script starts and stops. The client-secret credential signs in at the fake's token endpoint.
#
# Needs: cargo and python3. Nothing leaves 127.0.0.1.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

section() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

section "Building contain and the fake"
cargo build --quiet --bin contain --bin contain-azure-fake
target_dir="${CARGO_TARGET_DIR:-$root/target}"
contain="$target_dir/debug/contain"

section "Starting contain-azure-fake on 127.0.0.1 with tests/azure-fake/demo/seed.json"
log=$(mktemp)
"$target_dir/debug/contain-azure-fake" --port 0 --seed tests/azure-fake/demo/seed.json >"$log" 2>&1 &
fake_pid=$!
trap 'kill "$fake_pid" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 50); do
    grep -q "listening on" "$log" && break
    sleep 0.1
done
url=$(sed -n 's/^listening on //p' "$log")
case "$url" in
    http://127.0.0.1:*) echo "the fake listens on $url" ;;
    *) echo "the fake did not start: $(cat "$log")" >&2; exit 1 ;;
esac

# The documented overrides point the provider at the fake; the test credentials are public.
export CONTAIN_ARM_ENDPOINT="$url" CONTAIN_GRAPH_ENDPOINT="$url/graph" AZURE_AUTHORITY_HOST="$url/login"
export AZURE_TENANT_ID=7a1c0e5d-0000-4000-8000-00000000fa4e AZURE_CLIENT_ID=c11e0000-0000-4000-8000-00000000c11e
export AZURE_CLIENT_SECRET=contain-azure-fake-client-secret CONTAIN_AZURE_MANAGED_IDENTITY=false
CONTAIN_STATE_DIR=$(mktemp -d)
export CONTAIN_STATE_DIR

rg=/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/prod-web/providers
vm=$rg/Microsoft.Compute/virtualMachines/web-01
nsg=$rg/Microsoft.Network/networkSecurityGroups/web-nsg

# Plans, runs and rolls back one playbook, then plans again to show the state is as before.
round_trip() {
    local playbook=$1
    shift
    local inputs=()
    for input in "$@"; do
        inputs+=(--input "$input")
    done
    section "contain plan $playbook (read-only)"
    "$contain" plan "$playbook" "${inputs[@]}"
    section "contain run --yes"
    local run_id
    run_id=$("$contain" run "$playbook" "${inputs[@]}" --yes -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["run_id"])')
    echo "run $run_id"
    section "contain plan again: nothing left to do"
    "$contain" plan "$playbook" "${inputs[@]}"
    section "contain rollback $run_id --yes"
    "$contain" rollback "$run_id" --yes
}

# The operations the first plan lists, for the comparison at the end.
plan_operations() {
    "$contain" plan playbooks/azure/vm-compromise.yaml --input "vm=$vm" --input incident=INC-2026-042 -o json \
        | python3 -c 'import json,sys; print(json.dumps([t["operations"] for s in json.load(sys.stdin)["plan"]["steps"] for t in s["targets"]], sort_keys=True))'
}
first_plan=$(plan_operations)

round_trip playbooks/azure/vm-compromise.yaml "vm=$vm" incident=INC-2026-042
round_trip playbooks/azure/block-addresses.yaml "nsg=$nsg" addresses=203.0.113.7/32 incident=INC-2026-042
round_trip playbooks/azure/entra-user-compromise.yaml user=alice@contoso.com incident=INC-2026-042

section "The plan after the rollbacks: the VM is as before"
"$contain" plan playbooks/azure/vm-compromise.yaml --input "vm=$vm" --input incident=INC-2026-042
if [ "$(plan_operations)" = "$first_plan" ]; then
    echo "OK: the plan after the rollbacks lists the same changes as the first plan"
else
    echo "FAILED: the plan after the rollbacks differs from the first plan" >&2
    exit 1
fi
