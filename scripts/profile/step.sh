#!/bin/bash
# One bench step of the ARI smoke line (one controller, N=320, 40 s held) with the
# controller's CPU per thread over 25 s in the middle of it, then, each in turn:
# CPROF=1, 10 s of cProfile (scripts/profile/cprof); PERF=1, 20 s of perf's CPU
# cycles with native stacks (by shared object in OUT/perf-dso.txt); PYSPY=1, a
# py-spy sample of 20 s (--nonblocking: the controller is never paused, so the step
# is not broken as with `ivr bench --profile`). Runs t51-t54, s1-s4
# (docs/PERFORMANCE.md). Usage, from the repository:
#   scripts/profile/step.sh OUT [more ivr bench arguments]
# writes bench-results/OUT/ (the bench's own files), OUT/threads.txt and, with
# PYSPY=1, OUT/pyspy.collapsed (read it with scripts/profile/analyze.py ... main).
set -euo pipefail
out=$1; shift
dir=bench-results/$out; log=$dir.log
mkdir -p bench-results
(setsid .venv/bin/ivr bench --lines smoke-ari --controllers 1 --steps 320 --hold 40 \
    --out "$dir" "$@" > "$log" 2>&1 < /dev/null &)
for _ in $(seq 1 180); do grep -q "controller idle" "$log" && break; sleep 1; done
pid=$(grep -o "controller up (pid [0-9]*" "$log" | grep -o "[0-9]*$")
sleep 22  # the ramp (N per call length: one call length) and a little more
python3 "$(dirname "$0")/threads.py" "$pid" 25 > "$dir.threads.txt"
if [ -n "${CPROF:-}" ]; then
    # Without the probe's handlers SIGUSR1 would end the controller mid-step.
    [ -n "${CPROF_OUT:-}" ] && [[ "${PYTHONPATH:-}" == *profile/cprof* ]] \
        || { echo "CPROF=1 needs PYTHONPATH=scripts/profile/cprof CPROF_OUT=<file>" >&2; exit 2; }
    kill -USR1 "$pid"; sleep 10; kill -USR2 "$pid"; sleep 2
fi
if [ -n "${PERF:-}" ]; then  # CPU cycles, native stacks: the kernel's and uvloop's share
    perf record -F 499 -g -p "$pid" -o "$dir.perf.data" -- sleep 20 > /dev/null 2>&1
    perf report -i "$dir.perf.data" --no-children --sort dso -g none --stdio 2> /dev/null \
        | grep -v "^#" | grep -v "^$" | head -30 > "$dir.perf-dso.txt"
fi
if [ -n "${PYSPY:-}" ]; then
    .venv/bin/py-spy record --nonblocking --rate 200 -d 20 --format raw -p "$pid" \
        -o "$dir.pyspy.collapsed" > /dev/null 2>&1
fi
for _ in $(seq 1 300); do grep -q "^report:" "$log" && break; sleep 2; done
mv "$dir.threads.txt" "$dir/threads.txt"
[ -f "$dir.pyspy.collapsed" ] && mv "$dir.pyspy.collapsed" "$dir/pyspy.collapsed"
for f in perf.data perf-dso.txt; do [ -f "$dir.$f" ] && mv "$dir.$f" "$dir/$f"; done
mv "$log" "$dir/bench.out"
grep "N=320" "$dir/bench.out"
