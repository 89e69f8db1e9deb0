#!/usr/bin/env bash
# `just compare-node`: seaport-rs beside node seaport 2.0.9, in one run on this machine.
#
#  (a) in-process query: node seaport's own registry `query()` (query.js) against
#      seaport_core::Registry (the query_bench binary), 10^3, 10^4 and 10^5 records;
#  (b) the same node seaport clients (node_load.js) against node's hub (node_hub.js) and
#      against seaport-rs's hub (`seaport listen`, which speaks node's protocol on its
#      port): 100 clients x 100 services, 1 000 clients x 10 services, and a hub SIGKILLed
#      and restarted under 1 000 clients;
#  (c) seaport-rs clients against seaport-rs's hub (the load tool).
# Then prints a table of ratios. Everything is on 127.0.0.1, and every run is bounded
# (BOUND seconds, default 210; a run that hits it reports what it reached).
#
# Environment: BOUND (s), HOLD (s a converged run is watched for timeouts, default 50:
# node clients time out after 45 s), SEAPORT_NODE_MODULE (an installed seaport@2.0.9
# instead of a fresh install), CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BOUND=${BOUND:-210}
HOLD=${HOLD:-50}
HERE=benches/compare-node
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

if [ -n "${SEAPORT_NODE_MODULE:-}" ]; then
    MODULE=$SEAPORT_NODE_MODULE
else
    echo "installing seaport@2.0.9 into $WORK" >&2
    npm install --no-audit --no-fund --no-package-lock --prefix "$WORK" seaport@2.0.9 >/dev/null
    MODULE=$WORK/node_modules/seaport
fi
cargo build --release -p seaport-cli -p seaport-benches --bin seaport --bin load --bin query_bench >&2
SEAPORT=$TARGET/release/seaport
RESULTS=$WORK/results
: > "$RESULTS"

echo "== machine" >&2
{ nproc; uptime; } >&2

echo "== (a) in-process query" >&2
node "$HERE/query.js" "$MODULE" | sed 's/^/node /' | tee -a "$RESULTS" >&2
"$TARGET/release/query_bench" | sed 's/^/rs /' | tee -a "$RESULTS" >&2

# The node driver holds every client in one process, and node clients replicate the
# whole registry: give it room.
drive() { # MODE CLIENTS SERVICES LABEL HUB_COMMAND...
    local mode=$1 clients=$2 services=$3 label=$4
    shift 4
    echo "-- node clients, $label hub: $mode $clients x $services" >&2
    node --max-old-space-size=8192 "$HERE/node_load.js" "$MODULE" "$mode" "$clients" "$services" \
        "$BOUND" "$HOLD" "$label" -- "$@" | tee -a "$RESULTS" >&2
}
echo "== (b) node clients against both hubs" >&2
for workload in "100 100" "1000 10"; do
    set -- $workload
    drive load "$1" "$2" node node "$HERE/node_hub.js" "$MODULE" '{PORT}'
    drive load "$1" "$2" rs "$SEAPORT" listen '{PORT}' --bind 127.0.0.1
done
drive restart 1000 1 node node "$HERE/node_hub.js" "$MODULE" '{PORT}'
drive restart 1000 1 rs "$SEAPORT" listen '{PORT}' --bind 127.0.0.1

echo "== (c) seaport-rs clients against seaport-rs's hub" >&2
ours() { # LABEL ARGS...
    local label=$1
    shift
    echo "-- load $*" >&2
    "$TARGET/release/load" --seaport "$SEAPORT" --timeout "$BOUND" "$@" | tee "$WORK/load.out" >&2 || true
    sed -n "s/^result /load $label /p" "$WORK/load.out" >> "$RESULTS"
}
ours 100x100 -c 100 -s 100
ours 1000x10 -c 1000 -s 10
ours 1000x100 -c 1000 -s 100
ours 100x1000 -c 100 -s 1000
ours 100x1000-signed -c 100 -s 1000 --signed
ours 1000x100-client -c 1000 -s 100 --client
ours 10000x1 -c 10000 -s 1
ours 10000x1-client -c 10000 -s 1 --client
ours restart-10000 --restart -c 10000

echo >&2
node "$HERE/table.js" "$RESULTS"
