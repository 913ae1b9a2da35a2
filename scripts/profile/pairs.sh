#!/bin/bash
# The CPU per call ratio of the ARI smoke line to plain dialplan, K times, each from
# one pair of steps run back to back (plain, then ARI with one controller, at N up):
# the machine's drift between runs moves both lines of a pair alike, so the spread of
# the pairs' ratios is the ratio's own (docs/PERFORMANCE.md, runs r2). Usage, from the
# repository:  scripts/profile/pairs.sh OUT K [N [more ivr bench arguments]]
# writes bench-results/OUT-<i>/ (the bench's own files) and prints one line per pair
# and the median, with scripts/profile/pairs.py.
set -euo pipefail
out=$1; pairs=$2; n=${3:-320}; shift; shift; [ $# -gt 0 ] && shift
mkdir -p bench-results
dirs=()
for i in $(seq 1 "$pairs"); do
    dirs+=("bench-results/$out-$i")
    .venv/bin/ivr bench --lines smoke-dialplan,smoke-ari --controllers 1 --steps "$n" \
        --out "bench-results/$out-$i" "$@" > "bench-results/$out-$i.log" 2>&1 < /dev/null \
        || echo "pair $i: ivr bench failed, see bench-results/$out-$i.log"
done
.venv/bin/python "$(dirname "$0")/pairs.py" "${dirs[@]}"
