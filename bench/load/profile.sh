#!/usr/bin/env bash
# Where csenvoy's CPU per request goes: perf (kernel and managed frames), system calls, context switches and threads,
# on the published proxy under load after a warm-up. Same pinning as run.sh (backend + proxy on core 1, the load
# generator on core 0). Needs perf (Debian: linux-perf) and strace.
#
#   bench/load/profile.sh [h1|h2c|grpc]   # HTTP/1.1 with wrk (default); h2c or gRPC unary with h2load (-m10)
#   WARMUP=10 bench/load/profile.sh h2c   # 30 s warm-up by default, 8 s perf, 3 s strace
#   PEER=0 bench/load/profile.sh grpc     # without the HAProxy comparison that h2c and grpc add
#   LISTENER=auto bench/load/profile.sh grpc   # h2c/gRPC on the codec AUTO listener, not the HTTP2 one
#
# h2c goes to the backend over HTTP/1.1, gRPC over HTTP/2 (as in run.sh). For h2c and grpc the same system call,
# context switch and upstream connection counts are taken on HAProxy (one thread) under the same load.
# Writes bench/results/<UTC timestamp>-profile[-<mode>].txt and prints it.
source "$(dirname "$0")/common.sh"
MODE=${1:-h1}
WARMUP=${WARMUP:-30}
CONNS=${CONNS:-32}
case $MODE in h1) PEER=0 ;; h2c|grpc) PEER=${PEER:-1} ;; *) echo "usage: $0 [h1|h2c|grpc]" >&2; exit 2 ;; esac
need wrk wrk; need h2load nghttp2-client; need perf linux-perf; need strace strace; need taskset util-linux
[ "$PEER" = 1 ] && need haproxy haproxy
build bench/CSharpEnvoy.HelloBackend
CSENVOY_AOT=0 publish_csenvoy   # perf maps need the JIT: ReadyToRun

B1=18580; B2=18581; CS=18590; CSA=18599; HA1=18591; HA2=18592; HAG=18593
start_backend $B1 $B2
wait_port $B2
CS2=18594   # the codec_type HTTP2 listener: h2c and gRPC go there (as in run.sh) unless LISTENER=auto
csenvoy_mixed_yaml $CS $CSA $B1 $B2 $CS2 >"$TMP/csenvoy.yaml"
# Perf maps name the JIT's code; W^X off so perf sees the code where the map says it is.
DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0 start csenvoy "${CSENVOY[@]}" -c "$TMP/csenvoy.yaml" -l warning
wait_ready $CSA
P=$PID_csenvoy
if [ "$PEER" = 1 ]; then
  haproxy_cfg $HA1 $HA2 $HAG $B1 $B2 >"$TMP/haproxy.cfg"
  start haproxy haproxy -f "$TMP/haproxy.cfg" -db
  wait_port $HA2
fi
UPSTREAM=$B1; [ "$MODE" = grpc ] && UPSTREAM=$B2

# load <port> <seconds>: the mode's load; h2load's or wrk's output in $TMP/load.out
load() {
  if [ "$MODE" = h1 ]; then taskset -c "$LOADCPU" wrk -t1 -c"$CONNS" -d"$2s" "http://127.0.0.1:$1/" >"$TMP/load.out" 2>&1
  else h2_load "$MODE" "$1" "$2" >"$TMP/load.out"; fi
}
served() { # requests the last load() completed
  if [ "$MODE" = h1 ]; then awk '/requests in/ {print $1}' "$TMP/load.out"
  else awk '/^requests:/ {print $8}' "$TMP/load.out"; fi
}
rq() { curl -s "http://127.0.0.1:$CSA/stats" | awk '/http.bench.downstream_rq_total/ {print $2}'; }
threads() { for t in /proc/$P/task/*; do echo "$(basename "$t") $(tr ' ' _ <"$t/comm") $(awk '/^voluntary_ctxt/ {v=$2} /nonvoluntary_ctxt/ {n=$2} END {print v, n}' "$t/status") $(awk '{print $14+$15}' "$t/stat")"; done | LC_ALL=C sort; }
ctxsw() { cat /proc/"$1"/task/*/status | awk '/^voluntary_ctxt/ {v+=$2} /nonvoluntary_ctxt/ {n+=$2} END {print v, n}'; }
upstream_cx() { ss -Htnp state established "( dport = :$UPSTREAM )" 2>/dev/null | grep -c "pid=$1," || true; }

# counts <pid> <port>: over one 10 s load, CPU µs, voluntary and involuntary context switches per request, req/s,
# and the established connections the process holds to the backend at the end.
counts() {
  local pid=$1 port=$2 c0 c1 v0 n0 v1 n1 n secs=10
  c0=$(cpu_ticks "$pid"); read -r v0 n0 < <(ctxsw "$pid")
  load "$port" "$secs"
  c1=$(cpu_ticks "$pid"); read -r v1 n1 < <(ctxsw "$pid")
  n=$(served)
  printf 'CPU %.1f us/req, context switches per request: voluntary %.3f, involuntary %.3f; %.0f req/s; upstream connections %s\n' \
    "$(echo "($c1 - $c0) * 1000000 / $HZ / $n" | bc -l)" "$(echo "($v1 - $v0) / $n" | bc -l)" "$(echo "($n1 - $n0) / $n" | bc -l)" \
    "$(echo "$n / $secs" | bc -l)" "$(upstream_cx "$pid")"
}
# syscalls <pid> <port>: strace -c -f over a 3 s load; prints the table and the calls per request
syscalls() {
  local pid=$1 port=$2 s n
  strace -c -f -p "$pid" -o "$TMP/strace.txt" >/dev/null 2>&1 & s=$!
  sleep 1
  load "$port" 3
  kill -INT $s 2>/dev/null || true; wait $s 2>/dev/null || true
  n=$(served)
  echo "over $n requests (strace slows the process; read them per request):"
  awk -v n="$n" '/^[ ]*[0-9]/ && NF >= 5 {c=$4; name=$NF; if (name != "total") printf "  %-16s %8d  %.3f per request\n", name, c, c/n} /total/ {printf "  %-16s %8d  %.3f per request\n", "total", $3, $3/n}' "$TMP/strace.txt" | head -16
}

# components: perf report lines (dso,sym) -> share per component
components() {
  awk '/%/ && !/^#/ {
    pct = $1; sub("%", "", pct); c = "other managed (unresolved JIT code, stubs)"
    if ($0 ~ /\[kernel\.kallsyms\]/) c = "kernel"
    else if ($0 ~ /libc\.so|libSystem\.Native|ld-linux|\[vdso\]/) c = "libc, System.Native (syscall stubs, memset/memcpy)"
    else if ($0 ~ /libcoreclr\.so/) c = "runtime (libcoreclr: allocation, GC, casts, stubs)"
    else if ($0 ~ /libclrjit\.so/) c = "JIT"
    else if ((i = index($0, "[.] ")) && match(sym = substr($0, i + 4), /\[[A-Za-z0-9_.]+\] /)) {
      a = substr(sym, RSTART + 1, RLENGTH - 3)
      if (a ~ /^Microsoft\.AspNetCore\.Server\.Kestrel/) c = "Kestrel"
      else if (a ~ /^Microsoft\.AspNetCore/) c = "ASP.NET Core (other)"
      else if (a == "System.Net.Http") c = "SocketsHttpHandler (System.Net.Http)"
      else if (a ~ /^Yarp/) c = "YARP"
      else if (a ~ /^CSharpEnvoy/) c = "csenvoy"
      else if (a == "System.Net.Sockets") c = "System.Net.Sockets"
      else if (a == "System.IO.Pipelines") c = "System.IO.Pipelines"
      else if (a == "System.Private.CoreLib") c = "CoreLib (async machinery, collections, strings)"
      else c = "other managed (" a ")"
    }
    share[c] += pct
  } END { for (c in share) printf "  %6.2f%%  %s\n", share[c], c }' | sort -rn
}

PORT=$CS; HAPORT=$HA1; [ "$MODE" = h2c ] && HAPORT=$HA2; [ "$MODE" = grpc ] && HAPORT=$HAG
[ "$MODE" != h1 ] && [ "${LISTENER:-h2}" = h2 ] && PORT=$CS2
echo "warming up for ${WARMUP}s..." >&2
load $PORT "$WARMUP"
[ "$PEER" = 1 ] && load $HAPORT 5
SUFFIX=""; [ "$MODE" = h1 ] || SUFFIX="-$MODE"
OUT=bench/results/$(date -u +%Y-%m-%dT%H%M%SZ)-profile$SUFFIX.txt
{
  echo "# csenvoy $MODE profile, $CONNS connections$([ "$MODE" = h1 ] || echo ' x 10 streams'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  load $PORT 12 & W=$!; sleep 1
  n0=$(rq); threads >"$TMP/t0"; c0=$(cpu_ticks "$P")
  perf record -F 999 -g -p "$P" -o "$TMP/perf.data" -- sleep 8 >/dev/null 2>&1
  n1=$(rq); threads >"$TMP/t1"; c1=$(cpu_ticks "$P")
  wait $W || true
  echo; echo "## CPU: $(echo "($c1 - $c0) * 1000000 / $HZ / ($n1 - $n0)" | bc -l | xargs printf '%.1f') us per request over $((n1 - n0)) requests (under perf)"
  echo; echo "## perf: by object"
  perf report -i "$TMP/perf.data" --no-children --sort dso -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -15 || true
  echo; echo "## perf: by component (self time; managed code by the assembly of its method)"
  perf report -i "$TMP/perf.data" --no-children --sort dso,sym -g none 2>/dev/null | components || true
  echo; echo "## perf: top symbols"
  perf report -i "$TMP/perf.data" --no-children --sort sym -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -60 | cut -c1-200 || true
  echo; echo "## threads (voluntary / involuntary context switches per request, CPU ticks)"
  LC_ALL=C join "$TMP/t0" "$TMP/t1" | awk -v n=$((n1 - n0)) '{dv=$7-$3; dn=$8-$4; dt=$9-$5; if (dv+dn+dt>0) printf "%-20s vol %.3f  invol %.3f  ticks %d\n", $2, dv/n, dn/n, dt}' || true
  echo; echo "## csenvoy: $(counts "$P" $PORT)"
  [ "$PEER" = 1 ] && echo "## HAProxy: $(counts "$PID_haproxy" $HAPORT)"
  echo; echo "## system calls, csenvoy"
  syscalls "$P" $PORT
  if [ "$PEER" = 1 ]; then echo; echo "## system calls, HAProxy"; syscalls "$PID_haproxy" $HAPORT; fi
} >"$OUT"
# The recording stays for a closer look (perf report -i ...; the perf map /tmp/perf-<pid>.map names the JIT's code).
cp "$TMP/perf.data" "/tmp/csenvoy-profile-$MODE.perf.data" && echo "perf data: /tmp/csenvoy-profile-$MODE.perf.data" >&2
cat "$OUT"
