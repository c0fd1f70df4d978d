#!/usr/bin/env bash
# Compares sandflow builds over HTTP, in alternation: each round serves
# echo.json from each build in turn and loads it with wrk, so a machine
# whose speed drifts over minutes (a shared virtual machine can swing by
# 20%) drifts for every build alike. Judge a change by its rounds side by
# side, not by one run.
#
#   cp target/release/sandflow /tmp/before   # build, then change and build again
#   scripts/bench/ab.sh /tmp/before target/release/sandflow
#
# Per build and round it prints requests/s, p50/p90/p99, and the server's
# CPU time per request; with THREADS=1 also, per request and thread name
# (tokio workers, run lanes, the memory writer), CPU time, waits (voluntary
# context switches: the thread slept and had to be woken) and preemptions,
# which tells where a change moved the work.
#
# ROUNDS (3), DURATION (8s), CONNECTIONS (64), STORE=0 (tweaks turn
# chat-history storing off), THREADS=1. A build may be a wrapper script
# that sets environment variables and execs a binary.
set -euo pipefail
[ $# -ge 1 ] || { sed -n '2,/^set/p' "$0" | sed '$d'; exit 2; }
command -v wrk >/dev/null || { apt-get update && apt-get install -y wrk; }
source "$(dirname "$0")/lib.sh"
rounds=${ROUNDS:-3} duration=${DURATION:-8s} connections=${CONNECTIONS:-64}
wrk_threads=$((connections < 2 ? 1 : 2))
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

echo_request "$work/post.lua" "${STORE:-1}"

# thread name, CPU ticks, voluntary and involuntary context switches: one
# line per thread of $1.
threads() {
  for task in /proc/"$1"/task/*; do
    printf '%s %s %s\n' "$(tr ' ' _ < "$task/comm")" "$(awk '{print $14 + $15}' "$task/stat")" \
      "$(awk '/^voluntary_ctxt/ {v = $2} /^nonvoluntary_ctxt/ {n = $2} END {print v, n}' "$task/status")"
  done
}
# Per thread name: CPU ticks, voluntary and involuntary switches of a `threads` file.
by_name() { awk '{c[$1] += $2; v[$1] += $3; i[$1] += $4} END {for (t in c) print t, c[t], v[t], i[t]}' "$1" | sort; }
ticks() { awk '{t += $2} END {print t}' "$1"; }
percentile() { awk -v p="$1" '$1 == p {print $2}' <<< "$out"; }   # of the last `load`
hz=$(getconf CLK_TCK)
load() { # duration
  API_KEY=$key wrk -t"$wrk_threads" -c"$connections" -d"$1" --latency -s "$work/post.lua" http://127.0.0.1:7870/api/v1/run/echo
}

for round in $(seq "$rounds"); do
  build=0
  for bin in "$@"; do
    build=$((build + 1))
    data="$work/data-$round-$build"
    serve_echo "$bin" "$data" "$work/serve.log"
    load 2s > /dev/null   # warm-up
    threads "$server_pid" > "$work/before"
    out=$(load "$duration")
    threads "$server_pid" > "$work/after"
    requests=$(awk '/requests in/ {print $1}' <<< "$out")
    cpu=$(awk -v a="$(ticks "$work/after")" -v b="$(ticks "$work/before")" -v n="$requests" -v hz="$hz" \
      'BEGIN {printf "%.1f", (a - b) * 1e6 / hz / n}')
    printf 'round %s  build %s  %8s req/s  p50 %-8s p90 %-8s p99 %-8s  %s µs CPU/request  %s\n' "$round" "$build" \
      "$(awk '/Requests\/sec/ {print $2}' <<< "$out")" "$(percentile 50%)" "$(percentile 90%)" "$(percentile 99%)" "$cpu" \
      "$(awk '/Non-2xx/ {print "non-2xx: " $NF}' <<< "$out")"
    if [ "${THREADS:-0}" = 1 ]; then
      join <(by_name "$work/before") <(by_name "$work/after") | awk -v n="$requests" -v hz="$hz" \
        '$5 > $2 {printf "    %-16s %7.1f µs CPU  %5.2f waits  %5.2f preemptions per request\n", $1,
          ($5 - $2) * 1e6 / hz / n, ($6 - $3) / n, ($7 - $4) / n}'
    fi
    kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
    rm -rf "$data"
  done
done
echo "builds: $(i=0; for bin in "$@"; do i=$((i + 1)); printf '%s=%s ' "$i" "$bin"; done)"
