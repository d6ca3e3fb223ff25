#!/usr/bin/env bash
# The crawler's HTTP load figures on a corpus directory made by fritter-crawler-bench --dir:
# serves it with the bench (the crawler's router and server loop, rate limit raised by a
# setting), then runs wrk on mentions and fritter-crawler-load with the mixed load, printing
# the machine's load (uptime) next to each.
#
#   crawler/bench/http-load.sh DIR [PORT]          # from the workspace root
#
# Make DIR once (kept; later runs reuse it):
#   ./target/release/fritter-crawler-bench --archives 1000 --statuses 100000 --dir DIR
# Environment: WRK_ARGS (default "-t2 -c64 -d30s"), LOAD_ARGS (default "--rate 1000
# --duration 60"), MIX (a --mix value, default equal shares), NO_BUILD=1 (use the binaries in
# target/release as they are).
set -euo pipefail
dir=${1:?usage: crawler/bench/http-load.sh DIR [PORT]}
port=${2:-8099}
bin=./target/release
[ -f "$dir/bench-corpus.json" ] || { echo "$dir holds no finished corpus: make it with $bin/fritter-crawler-bench --dir $dir" >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 2; }
[ -n "${NO_BUILD:-}" ] || cargo build --release -p fritter-crawler --bin fritter-crawler-bench --bin fritter-crawler-load
log=$(mktemp)
"$bin/fritter-crawler-bench" --dir "$dir" --requests 0 --serve "127.0.0.1:$port" >"$log" 2>&1 &
server=$!
trap 'kill -INT $server 2>/dev/null; wait $server 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 600); do
  grep -q '^serving on' "$log" && break
  kill -0 $server 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.5
done
cat "$log"
urls=$dir/urls
status=0
echo "== wrk, mentions ($(uptime))"
# shellcheck disable=SC2086
wrk ${WRK_ARGS:--t2 -c64 -d30s} -s crawler/bench/mentions.lua "http://127.0.0.1:$port" -- "$urls/mentions.txt" || status=1
echo "== mixed load ($(uptime))"
# shellcheck disable=SC2086
"$bin/fritter-crawler-load" --target "http://127.0.0.1:$port" ${LOAD_ARGS:---rate 1000 --duration 60} \
  ${MIX:+--mix "$MIX"} \
  --urls "$urls/mentions.txt" --urls "$urls/thread.txt" --urls "$urls/search.txt" --urls "$urls/trending.txt" || status=1
echo "== done ($(uptime))"
exit $status
