#!/usr/bin/env bash
# Measures the data plane over HTTP on loopback with wrk: echo.json through
# the Langflow-compatible /api/v1/run, sequential (1 connection) and with 64
# connections, 10 s each: as exported (Chat Input and Chat Output store each
# message in the chat history, as Langflow does) and with storing turned off
# by tweaks. With LANGFLOW=1 it also installs Langflow 1.13 from PyPI into a
# venv, serves the same flow and measures it the same way.
#
#   scripts/bench/http.sh            # Sandflow only
#   LANGFLOW=1 scripts/bench/http.sh # side by side
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v wrk >/dev/null || { apt-get update && apt-get install -y wrk; }
source scripts/bench/lib.sh
duration=${DURATION:-10s}
work=$(mktemp -d)
# Langflow's workers outlive their parent: stop them by name too.
trap 'kill $(jobs -p) 2>/dev/null || true; pkill -f "langflow run --host 127.0.0.1 --port 7871" || true; rm -rf "$work"' EXIT

# How fast the machine hands work between threads, to compare runs made on
# different machines: a pipe round trip between two processes on two cores
# (it wakes an idle core, which a virtual machine may do slowly) and on one.
if command -v perf >/dev/null && command -v taskset >/dev/null; then
  pipe() { "$@" perf bench sched pipe -l 20000 2>/dev/null | awk '/usecs\/op/ {printf "%.1f", $1}'; }
  echo "machine: pipe round trip across cores $(pipe) µs, on one core $(pipe taskset -c 0) µs"
fi

# --workspace: the same feature set as `cargo bench --workspace`, so the two share one build.
cargo build --release --locked --workspace --bin sandflow
serve_echo target/release/sandflow "$work/data" "$work/serve.log"
echo_request "$work/post.lua" 1
echo_request "$work/nostore.lua" 0

measure() { # name url [script]
  script=${3:-$work/post.lua}
  # A 30 s timeout: wrk's default (2 s) would drop Langflow's slow answers
  # at 64 connections from its count instead of timing them.
  echo "== $1: 1 connection"
  API_KEY=$key wrk -t1 -c1 -d"$duration" --timeout 30s --latency -s "$script" "$2" | grep -E 'Latency|50%|90%|99%|Requests/sec|Non-2xx|timeout'
  echo "== $1: 64 connections"
  API_KEY=$key wrk -t2 -c64 -d"$duration" --timeout 30s --latency -s "$script" "$2" | grep -E 'Latency|50%|90%|99%|Requests/sec|Non-2xx|timeout'
}

measure sandflow http://127.0.0.1:7870/api/v1/run/echo
measure "sandflow, messages not stored" http://127.0.0.1:7870/api/v1/run/echo "$work/nostore.lua"
echo "sandflow RSS: $(ps -o rss= -p "$server_pid") KiB"

if [ "${LANGFLOW:-0}" = 1 ]; then
  venv=${LANGFLOW_VENV:-$work/venv}   # reuse an installed one with LANGFLOW_VENV=/path
  if [ ! -x "$venv/bin/langflow" ]; then
    python3 -m venv "$venv"
    # pip's resolver spins on Langflow's dependency tree; uv resolves it in about a minute.
    "$venv/bin/pip" install -q uv
    "$venv/bin/uv" pip install -q --python "$venv/bin/python" langflow==1.13.0
  fi
  LANGFLOW_AUTO_LOGIN=true LANGFLOW_SKIP_AUTH_AUTO_LOGIN=true LANGFLOW_CONFIG_DIR="$work/lf" \
    "$venv/bin/langflow" run --host 127.0.0.1 --port 7871 --backend-only > "$work/langflow.log" 2>&1 &
  for _ in $(seq 600); do curl -sf http://127.0.0.1:7871/health >/dev/null && break; sleep 0.2; done
  token=$(curl -sf http://127.0.0.1:7871/api/v1/auto_login | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  key=$(curl -sf -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d '{"name": "bench"}' http://127.0.0.1:7871/api/v1/api_key/ | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
  flow_id=$(curl -sf -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    --data @"$bench_flows/echo.json" http://127.0.0.1:7871/api/v1/flows/ | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  measure langflow "http://127.0.0.1:7871/api/v1/run/$flow_id"
  echo "langflow RSS: $(ps -o rss= -p "$(pgrep -f 'langflow run' | head -1)") KiB"
fi
