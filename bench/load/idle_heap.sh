#!/usr/bin/env bash
# What one idle HTTP/1.1 keep-alive connection holds in csenvoy's managed heap: live objects by type (walked from the
# GC roots with ClrMD) before and with $IDLE idle connections that each served one request, the difference divided by
# the connections. Needs the JIT or ReadyToRun build (ClrMD cannot read a Native AOT process).
#
#   bench/load/idle_heap.sh                # 10,000 connections, the JIT build
#   IDLE=2000 CSENVOY_R2R=1 bench/load/idle_heap.sh
source "$(dirname "$0")/common.sh"
IDLE=${IDLE:-10000}

need python3 python3; need taskset util-linux
build bench/CSharpEnvoy.HelloBackend bench/CSharpEnvoy.Benchmarks
CSENVOY_AOT=0 CSENVOY_R2R=${CSENVOY_R2R:-0} publish_csenvoy
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
HEAP=(dotnet "$ROOT/bench/CSharpEnvoy.Benchmarks/bin/Release/net10.0/CSharpEnvoy.Benchmarks.dll")

B1=21080; B2=21081; CS=21100; CSA=21190
start_backend $B1 $B2
csenvoy_yaml $CS $CSA 1 $B1 >"$TMP/csenvoy.yaml"
start csenvoy "${CSENVOY[@]}" -c "$TMP/csenvoy.yaml" -l warning
wait_ready $CSA
# Each pass opens and closes the connections once, so what the first connections leave behind (pools, JIT) is in
# the baseline.
taskset -c "$LOADCPU" python3 bench/load/idle_connections.py $CS 500 </dev/null >/dev/null

rss0=$(rss_mb "$PID_csenvoy"); mem0=$(curl -s "http://127.0.0.1:$CSA/memory" | tr -d '\n')
"${HEAP[@]}" heap "$PID_csenvoy" >"$TMP/before.tsv"
coproc HOLD { taskset -c "$LOADCPU" python3 bench/load/idle_connections.py "$CS" "$IDLE"; }
read -r line <&"${HOLD[0]}"
rss=$(rss_mb "$PID_csenvoy"); mem=$(curl -s "http://127.0.0.1:$CSA/memory" | tr -d '\n')
"${HEAP[@]}" heap "$PID_csenvoy" >"$TMP/after.tsv"
eval "exec ${HOLD[1]}>&-"; wait "$HOLD_PID" 2>/dev/null || true
echo "## Live objects per idle connection ($(date -u '+%Y-%m-%d %H:%M UTC'), csenvoy $CSENVOY_BUILD build, ${line#ready } connections, RSS $rss0 → $rss MB)"
echo
echo "/memory before: $mem0"
echo
echo "/memory with the connections: $mem"
echo
"${HEAP[@]}" heap-diff "$TMP/before.tsv" "$TMP/after.tsv" "${line#ready }"
[ -n "${KEEP:-}" ] && cp "$TMP/before.tsv" "$TMP/after.tsv" "$KEEP"/ || true
