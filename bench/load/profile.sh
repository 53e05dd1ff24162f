#!/usr/bin/env bash
# Where csenvoy's CPU per HTTP/1.1 request goes: perf (kernel and managed frames), system calls per request and
# threads, on the published proxy under wrk after a warm-up. Same pinning as run.sh (backend + proxy on core 1,
# wrk on core 0). Needs perf (Debian: linux-perf) and strace.
#
#   bench/load/profile.sh                 # 30 s warm-up, 8 s perf, 3 s strace
#   WARMUP=10 bench/load/profile.sh
#
# Writes bench/results/<UTC timestamp>-profile.txt and prints it.
source "$(dirname "$0")/common.sh"
WARMUP=${WARMUP:-30}
CONNS=${CONNS:-32}
need wrk wrk; need perf linux-perf; need strace strace; need taskset util-linux
build bench/CSharpEnvoy.HelloBackend
CSENVOY_AOT=0 publish_csenvoy   # perf maps need the JIT: ReadyToRun

B1=18580; B2=18581; CS=18590; CSA=18599
start_backend $B1 $B2
csenvoy_yaml $CS $CSA 1 $B1 >"$TMP/csenvoy.yaml"
# Perf maps name the JIT's code; W^X off so perf sees the code where the map says it is.
DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0 start csenvoy "${CSENVOY[@]}" -c "$TMP/csenvoy.yaml" -l warning
wait_ready $CSA
P=$PID_csenvoy
load() { taskset -c "$LOADCPU" wrk -t1 -c"$CONNS" -d"$1s" "http://127.0.0.1:$CS/" >"$TMP/wrk.out" 2>&1; }
rq() { curl -s "http://127.0.0.1:$CSA/stats" | awk '/http.bench.downstream_rq_total/ {print $2}'; }
threads() { for t in /proc/$P/task/*; do echo "$(basename "$t") $(tr ' ' _ <"$t/comm") $(awk '/^voluntary_ctxt/ {v=$2} /nonvoluntary_ctxt/ {n=$2} END {print v, n}' "$t/status") $(awk '{print $14+$15}' "$t/stat")"; done | LC_ALL=C sort; }

echo "warming up for ${WARMUP}s..." >&2
load "$WARMUP"
OUT=bench/results/$(date -u +%Y-%m-%dT%H%M%SZ)-profile.txt
{
  echo "# csenvoy HTTP/1.1 profile, wrk -c$CONNS, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  load 12 & W=$!; sleep 1
  n0=$(rq); threads >"$TMP/t0"; c0=$(cpu_ticks "$P")
  perf record -F 999 -g -p "$P" -o "$TMP/perf.data" -- sleep 8 >/dev/null 2>&1
  n1=$(rq); threads >"$TMP/t1"; c1=$(cpu_ticks "$P")
  wait $W
  echo; echo "## CPU: $(echo "($c1 - $c0) * 1000000 / $HZ / ($n1 - $n0)" | bc -l | xargs printf '%.1f') us per request over $((n1 - n0)) requests"
  echo; echo "## perf: by object"
  perf report -i "$TMP/perf.data" --no-children --sort dso -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -15 || true
  echo; echo "## perf: top symbols"
  perf report -i "$TMP/perf.data" --no-children --sort sym -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -40 | cut -c1-200 || true
  echo; echo "## threads (voluntary / involuntary context switches per request, CPU ticks)"
  LC_ALL=C join "$TMP/t0" "$TMP/t1" | awk -v n=$((n1 - n0)) '{dv=$7-$3; dn=$8-$4; dt=$9-$5; if (dv+dn+dt>0) printf "%-20s vol %.3f  invol %.3f  ticks %d\n", $2, dv/n, dn/n, dt}' || true
  load 6 & W=$!; sleep 1
  n0=$(rq)
  timeout -s INT 3 strace -c -f -p "$P" -o "$TMP/strace.txt" >/dev/null 2>&1 || true
  n1=$(rq)
  wait $W
  echo; echo "## system calls over ~$((n1 - n0)) requests (strace slows the proxy; read them per request)"
  head -20 "$TMP/strace.txt" || true
} >"$OUT"
cat "$OUT"
