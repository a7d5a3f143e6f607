#!/bin/sh
# The fleet tables of bench/RESULTS.md (issue 15), as they were run. Needs root (the lab uses
# network namespaces) and tests/setup-system.sh's packages; ~45 min on a 2-core machine.
#
#   sudo sh bench/fleet.sh            # both tables, then render
#   sudo sh bench/fleet.sh quiet      # the quiet-machine rows at the top of RESULTS.md (~8 min)
#   sudo sh bench/fleet.sh render     # re-render RESULTS tables from the JSON files only
#
# The benchmark runs from a `git archive HEAD` snapshot (bench/.work/snap), so that edits in
# the working tree cannot change the measured code between or during rows; commit first.
# pyinfra and matplotlib live in bench/.work/peers, apart from the project's .venv.
set -eu
cd "$(dirname "$0")/.."
REPO=$(pwd)
PY=${PY:-$REPO/.venv/bin/python}
PEERS=$REPO/bench/.work/peers
DEADLINE=${DEADLINE:-}

render() {
    "$PEERS/bin/python" bench/render.py --plot bench/fleet-wall.png \
        bench/results-fleet-0ms.json bench/results-fleet-150ms.json
    "$PEERS/bin/python" bench/render.py bench/results-fleet-quiet-1000b.json \
        bench/results-fleet-quiet-1000c.json bench/results-fleet-quiet-150ms.json
}

if [ "${1:-}" = render ]; then render; exit 0; fi

[ -x "$PEERS/bin/pyinfra" ] || { python3 -m venv "$PEERS" && "$PEERS/bin/pip" install -q pyinfra matplotlib; }

# The quiet rows (session 9): run on an otherwise idle machine, from the working tree's commit.
# 1,000 hosts twice (the machine's noise decides which side of 60 s a run lands), pyinfra at
# 200 hosts, then 200 hosts at 150 ms RTT against pyinfra.
if [ "${1:-}" = quiet ]; then
    uptime
    "$PY" bench/fleet_bench.py --sizes 1000,200 --rtts 0 --tools nodecheck,pyinfra --skip pyinfra@1000 \
        --peers-bin "$PEERS/bin" --tool-timeout 400 --no-local --json "$REPO/bench/results-fleet-quiet-1000b.json"
    "$PY" bench/fleet_bench.py --sizes 200 --rtts 150 --tools nodecheck,pyinfra \
        --peers-bin "$PEERS/bin" --tool-timeout 400 --no-local --json "$REPO/bench/results-fleet-quiet-150ms.json"
    "$PY" bench/fleet_bench.py --sizes 1000 --rtts 0 --tools nodecheck --tool-timeout 400 --no-local \
        --json "$REPO/bench/results-fleet-quiet-1000c.json"
    render
    exit 0
fi
rm -rf bench/.work/snap && mkdir -p bench/.work/snap
git archive HEAD | tar -x -C bench/.work/snap
git rev-parse HEAD > bench/.work/snap/COMMIT
cd bench/.work/snap
dl=${DEADLINE:+--deadline $DEADLINE}
uptime
# 150 ms RTT: nodecheck and pyinfra at 200 and 500 hosts, Ansible pipelining + curve25519 at
# 200 (killed at the limit: see RESULTS.md). (The recorded run started a 1,000-host lab and was
# stopped before its 1,000-host row, for time; the idle sshds of a bigger lab cost nothing.)
"$PY" bench/fleet_bench.py --sizes 200,500 --rtts 150 --tools nodecheck,pyinfra,ansible-kex,ansible \
    --skip ansible@200,ansible@500,ansible-kex@500 --tool-timeout 600 \
    --peers-bin "$PEERS/bin" --no-local $dl --json "$REPO/bench/results-fleet-150ms.json"
uptime
# 0 ms RTT, largest first so the 1,000-host nodecheck row is never the one the budget cuts:
# nodecheck at every size, pyinfra at 500 and 200, both Ansible variants at 200.
"$PY" bench/fleet_bench.py --sizes 1000,500,200 --rtts 0 --tools nodecheck,pyinfra,ansible-kex,ansible \
    --skip pyinfra@1000,ansible-kex@1000,ansible@1000,ansible-kex@500,ansible@500 --tool-timeout 240 \
    --peers-bin "$PEERS/bin" --no-local $dl --json "$REPO/bench/results-fleet-0ms.json"
uptime
cd "$REPO"
render
