# Shared by the HTTP benchmarks (sourced): echo.json served by a sandflow
# build on 127.0.0.1:7870, and wrk's request for it.

bench_flows="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/../shared/flows"

# serve_echo BIN DATA_DIR LOG: serves echo.json as agent `echo` of tenant
# `bench` in the background, with a dev key and no practical rate limit;
# once it serves, sets `server_pid` and `key` (the tenant's API key).
serve_echo() {
  SANDFLOW_DATA_DIR="$2" "$1" serve --role runtime --listen 127.0.0.1:7870 --dev-keys --tenant-rpm 100000000 \
    --agent "echo=$bench_flows/echo.json@bench" > "$3" 2>&1 &
  server_pid=$!
  for _ in $(seq 300); do
    grep -q "serving" "$3" 2>/dev/null && break
    kill -0 "$server_pid" 2>/dev/null || break   # it ended
    sleep 0.1
  done
  key=$(sed -n 's/^key for tenant bench: //p' "$3")
  if [ -z "$key" ]; then
    echo "error: $1 did not start serving; its log:" >&2
    cat "$3" >&2
    return 1
  fi
}

# echo_request FILE STORE: writes wrk's script for one run of the flow, the
# key from $API_KEY; with STORE=0, tweaks turn storing the chat messages off.
echo_request() {
  local body='{"input_value": "hello world", "session_id": "bench"'
  if [ "$2" = 0 ]; then
    body+=', "tweaks": {"ChatInput-b6UCc": {"should_store_message": false}, "ChatOutput-yK0AU": {"should_store_message": false}}'
  fi
  cat > "$1" <<LUA
wrk.method = "POST"
wrk.body = '$body}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["x-api-key"] = os.getenv("API_KEY")
LUA
}
