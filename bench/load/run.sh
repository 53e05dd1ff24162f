#!/usr/bin/env bash
# Load comparison in one run on 127.0.0.1: csenvoy vs nginx, HAProxy and bare YARP, each in front of the same Kestrel
# "hello" backend, driven by the same load (wrk for HTTP/1.1, h2load for h2c and gRPC unary), alternating targets to
# cancel drift. The backend and the proxy share core 1; the load generator runs alone on core 0 (taskset).
# h2c and gRPC go to a csenvoy listener with codec_type HTTP2, as they go to HAProxy's "proto h2" frontends and
# nginx's "http2" servers; HTTP/1.1 to the codec AUTO listener.
#
#   bench/load/run.sh                 # full run (warm-up 25 s per .NET target, 10 s per measurement, 2 rounds)
#   WARMUP=5 DURATION=5 ROUNDS=1 bench/load/run.sh   # quick look
#   EXTRAS=0 bench/load/run.sh        # without tls.sh and footprint.sh, which otherwise follow
#   SATURATED=0 EXTRAS=0 bench/load/run.sh   # only the fixed-rate case
#
# After the saturated rounds comes the fixed-rate case, how Istio reports sidecar cost: 1,000 req/s over 16 HTTP/1.1
# keep-alive connections for 20 s per target (RATE, RATE_CONNS, RATE_DURATION), driven by our constant-rate generator
# (bench/CSharpEnvoy.LoadGenerator: open loop, latency counted from each request's due time as wrk2 does), which also
# reads the target's CPU over exactly the measured window.
#
# Writes bench/results/<UTC timestamp>.md and prints the same tables.
source "$(dirname "$0")/common.sh"
WARMUP=${WARMUP:-25}
WARM_CYCLES=${WARM_CYCLES:-5}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-2}
CONNS=${CONNS:-32}
SATURATED=${SATURATED:-1}
RATE=${RATE:-1000}
RATE_CONNS=${RATE_CONNS:-16}
RATE_DURATION=${RATE_DURATION:-20}
RATE_WARMUP=${RATE_WARMUP:-3}
RATE_ROUNDS=${RATE_ROUNDS:-1}

need wrk wrk; need h2load nghttp2-client; need nginx nginx-light; need haproxy haproxy; need taskset util-linux; need python3 python3
build bench/CSharpEnvoy.HelloBackend bench/CSharpEnvoy.YarpBaseline bench/CSharpEnvoy.LoadGenerator
publish_csenvoy

B1=18080; B2=18081          # backend HTTP/1.1, h2c
CS=18100; CSA=18190; CS2=18101   # csenvoy (AUTO: HTTP/1.1 + h2c), admin, HTTP2-only listener (h2c and gRPC loads)
NG1=18200; NG2=18201; NGG=18202
HA1=18300; HA2=18301; HAG=18302
YA1=18400; YA2=18401; YAG=18402

start_backend $B1 $B2

csenvoy_mixed_yaml $CS $CSA $B1 $B2 $CS2 >"$TMP/csenvoy.yaml"
T0=$(date +%s%N)
start csenvoy "${CSENVOY[@]}" -c "$TMP/csenvoy.yaml" -l warning
wait_ready $CSA
STARTUP_MS=$(( ($(date +%s%N) - T0) / 1000000 ))
IDLE_RSS_KB=$(awk '/VmRSS/ {print $2}' /proc/$PID_csenvoy/status)

cat >"$TMP/nginx.conf" <<NGINX
worker_processes 1;
user root;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000000;   # nginx closes h2 connections after 1000 requests by default; h2load does not reconnect
  client_body_temp_path $TMP; proxy_temp_path $TMP; fastcgi_temp_path $TMP; uwsgi_temp_path $TMP; scgi_temp_path $TMP;
  upstream b1 { server 127.0.0.1:$B1; keepalive 64; }
  upstream b2 { server 127.0.0.1:$B2; keepalive 64; }
  server { listen 127.0.0.1:$NG1; location / { proxy_pass http://b1; proxy_http_version 1.1; proxy_set_header Connection ""; } }
  server { listen 127.0.0.1:$NG2 http2; location / { proxy_pass http://b1; proxy_http_version 1.1; proxy_set_header Connection ""; } }
  server { listen 127.0.0.1:$NGG http2; location / { grpc_pass grpc://b2; } }
}
NGINX
start nginx nginx -c "$TMP/nginx.conf" -g 'daemon off;'
NGINX_WORKER=$(nginx_worker "$PID_nginx")

haproxy_cfg $HA1 $HA2 $HAG $B1 $B2 >"$TMP/haproxy.cfg"
start haproxy haproxy -f "$TMP/haproxy.cfg" -db

start yarp1 dotnet bench/CSharpEnvoy.YarpBaseline/bin/Release/net10.0/CSharpEnvoy.YarpBaseline.dll $YA1 "http://127.0.0.1:$B1" h1 h1
start yarp2 dotnet bench/CSharpEnvoy.YarpBaseline/bin/Release/net10.0/CSharpEnvoy.YarpBaseline.dll $YA2 "http://127.0.0.1:$B1" h2c h1
start yarpg dotnet bench/CSharpEnvoy.YarpBaseline/bin/Release/net10.0/CSharpEnvoy.YarpBaseline.dll $YAG "http://127.0.0.1:$B2" h2c h2c
for p in $NG1 $NG2 $NGG $HA1 $HA2 $HAG $YA1 $YA2 $YAG; do wait_port $p; done


# run_load <kind> <port> <seconds> -> prints "rps p50_ms p99_ms p999_ms"
run_load() {
  local kind=$1 port=$2 secs=$3
  case $kind in
    h1)
      echo "$(wrk_h1 "$port" "$secs") -" ;;
    h2c)
      h2_load h2c "$port" "$secs" >"$TMP/out"
      awk '/finished in/ {for (i=1;i<=NF;i++) if ($i ~ /req\/s/) rps=$(i-1)} /time for request/ {mean=$6} END {gsub(",","",rps); print rps, mean, "-", "-"}' "$TMP/out" | sed -E 's/([0-9.]+)us/\1e-3/g; s/([0-9.]+)ms/\1/g' ;;
    grpc)
      h2_load grpc "$port" "$secs" >"$TMP/out"
      awk '/finished in/ {for (i=1;i<=NF;i++) if ($i ~ /req\/s/) rps=$(i-1)} /time for request/ {mean=$6} END {gsub(",","",rps); print rps, mean, "-", "-"}' "$TMP/out" | sed -E 's/([0-9.]+)us/\1e-3/g; s/([0-9.]+)ms/\1/g' ;;
  esac
}

declare -A RSS
measure() { # label kind port pid(or empty for direct)
  local label=$1 kind=$2 port=$3 pid=${4:-}
  local c0=0 c1=0 ticks=
  [ -n "$pid" ] && c0=$(cpu_ticks "$pid")
  read -r rps p50 p99 _ < <(run_load "$kind" "$port" "$DURATION")
  [ -n "$pid" ] && c1=$(cpu_ticks "$pid") && ticks=$((c1 - c0))
  local key="$kind/$label"
  tally "$key" "${rps:-0}" "$p50" "$p99" "$ticks"
  [ -n "$pid" ] && RSS[$key]=$(awk '/VmHWM/ {print int($2/1024)}' "/proc/$pid/status")
  printf '%-8s %-10s %10.0f req/s  p50 %s ms  p99 %s ms  cpu %s us/req\n' "$kind" "$label" "${rps:-0}" "${p50:--}" "${p99:--}" "$ROUND_US" >&2
}

echo "warming up .NET targets for ${WARMUP}s each..." >&2
# In WARM_CYCLES loads of fresh connections: code that runs once per connection (accept, connection setup and close)
# reaches the JIT's optimized tier only after enough connections, and otherwise is still being recompiled in the
# background during the first measured rounds (~3% of the CPU samples of a profile after one 25-60 s warm-up load).
for port in $CS $YA1; do for _ in $(seq "$WARM_CYCLES"); do run_load h1 $port "$(( (WARMUP + WARM_CYCLES - 1) / WARM_CYCLES ))" >/dev/null; done; done
if [ "$SATURATED" = 1 ]; then
  for port in $CS2 $YA2; do run_load h2c $port "$((WARMUP / 2 + 1))" >/dev/null; done
  for port in $CS2 $YAG; do run_load grpc $port "$((WARMUP / 2 + 1))" >/dev/null; done
else
  ROUNDS=0
fi

for round in $(seq 1 "$ROUNDS"); do
  echo "round $round" >&2
  measure direct h1 $B1
  measure csenvoy h1 $CS "$PID_csenvoy"
  measure nginx h1 $NG1 "$NGINX_WORKER"
  measure haproxy h1 $HA1 "$PID_haproxy"
  measure yarp h1 $YA1 "$PID_yarp1"
  measure direct h2c $B2
  measure csenvoy h2c $CS2 "$PID_csenvoy"
  measure nginx h2c $NG2 "$NGINX_WORKER"
  measure haproxy h2c $HA2 "$PID_haproxy"
  measure yarp h2c $YA2 "$PID_yarp2"
  measure direct grpc $B2
  measure csenvoy grpc $CS2 "$PID_csenvoy"
  measure nginx grpc $NGG "$NGINX_WORKER"
  measure haproxy grpc $HAG "$PID_haproxy"
  measure yarp grpc $YAG "$PID_yarpg"
done

# fixed_rate <label> <port> <pid> -> "label rps p50 p99 p999 service_p99 lag_p99 failed cpu_us gen_cpu_us" (latencies in ms).
# The generator warms up for RATE_WARMUP s at the same rate first, then measures; the pid's CPU is read over the
# measured window only. For the direct row the pid is the backend's: the cost of the same requests without a proxy.
GEN=bench/CSharpEnvoy.LoadGenerator/bin/Release/net10.0/CSharpEnvoy.LoadGenerator.dll
fixed_rate() {
  local label=$1 port=$2 pid=$3
  taskset -c "$LOADCPU" dotnet "$GEN" "http://127.0.0.1:$port/" --rate "$RATE" --connections "$RATE_CONNS" \
    --duration "$RATE_DURATION" --warmup "$RATE_WARMUP" --cpu-pid "$pid" >"$TMP/rate.json" 2>"$TMP/rate.err" || true
  python3 - "$label" "$TMP/rate.json" <<'PY' || echo "$label 0 - - - - - - - -"
import json, sys
d = json.load(open(sys.argv[2]))
due, sent, lag = d["latency_us"], d["service_us"], d["send_lag_us"]
ms = lambda us: "%.3f" % (us / 1000)
print(sys.argv[1], round(d["achieved_rps"]), ms(due["p50"]), ms(due["p99"]), ms(due["p999"]), ms(sent["p99"]), ms(lag["p99"]),
      d["errors"] + d["non_2xx"] + d["unsent"], d["target_cpu_us_per_request"], d["generator_cpu_us_per_request"])
PY
}

RATE_ROWS=()
echo "fixed rate: ${RATE} req/s over ${RATE_CONNS} connections, ${RATE_DURATION}s per target after ${RATE_WARMUP}s, ${RATE_ROUNDS} round(s)" >&2
for round in $(seq 1 "$RATE_ROUNDS"); do
  for t in direct:$B1:$PID_backend csenvoy:$CS:$PID_csenvoy nginx:$NG1:$NGINX_WORKER haproxy:$HA1:$PID_haproxy yarp:$YA1:$PID_yarp1; do
    IFS=: read -r label port pid <<<"$t"
    row=$(fixed_rate "$label" "$port" "$pid"); RATE_ROWS+=("$row"); echo "  $row" >&2
  done
done

OUT="bench/results/$(date -u +%Y-%m-%dT%H%M%SZ).md"
{
  echo "# Load comparison $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "csenvoy ($CSENVOY_BUILD build) startup to /ready: ${STARTUP_MS} ms; idle RSS: $((IDLE_RSS_KB / 1024)) MB"
  if [ "$SATURATED" = 1 ]; then
    echo
    echo "$(nproc) cores; load generator on core $LOADCPU, backend and proxy on core $PROXYCPU; $CONNS connections; ${DURATION}s x $ROUNDS rounds after ${WARMUP}s warm-up."
    echo "h2c and gRPC: h2load with 10 streams per connection; HTTP/1.1: wrk. CPU is the proxy process's user+system time per request."
    echo "Over the rounds: req/s is the mean, CPU per request the total CPU over the total requests, p50 and p99 the median."
    echo
    echo "| load | target | req/s | vs direct | vs nginx | vs haproxy | vs yarp | p50 ms | p99 ms | CPU µs/req | peak RSS MB |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    for kind in h1 h2c grpc; do
      for t in direct csenvoy nginx haproxy yarp; do
        k="$kind/$t"; r=$(echo "${TOTAL_RPS[$k]:-0} / ${RUNS[$k]:-1}" | bc -l)
        ratio() { local o; o=$(echo "${TOTAL_RPS[$kind/$1]:-0} / ${RUNS[$kind/$1]:-1}" | bc -l); [ "$(echo "$o > 0" | bc)" = 1 ] && printf '%.2f' "$(echo "$r / $o" | bc -l)" || echo -; }
        printf '| %s | %s | %.0f | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$kind" "$t" "$r" "$(ratio direct)" "$(ratio nginx)" "$(ratio haproxy)" "$(ratio yarp)" "${P50[$k]:--}" "${P99[$k]:--}" "${CPU_US[$k]:--}" "${RSS[$k]:--}"
      done
    done
  fi
  echo
  echo "## Fixed rate: $RATE req/s, $RATE_CONNS HTTP/1.1 connections (constant-rate generator)"
  echo
  echo "${RATE_DURATION}s per target after ${RATE_WARMUP}s at the same rate, targets alternating, ${RATE_ROUNDS} round(s). Latency is counted from"
  echo "each request's due time on the schedule (open loop, so stalls are not hidden); \"service p99\" counts from the send;"
  echo "\"send lag p99\" is how late requests went out (all connections busy, or the generator itself descheduled)."
  echo "Added p99 = target p99 - direct p99 of the same round. CPU is the target process's user+system time per request over"
  echo "the measured window (direct: the backend's own); the generator's own CPU is given for reference."
  echo
  echo "| target | req/s | p50 ms | p99 ms | p99.9 ms | added p99 ms | service p99 ms | send lag p99 ms | failed | CPU µs/req | generator CPU µs/req |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  D99=0
  for row in "${RATE_ROWS[@]}"; do
    read -r label rps p50 p99 p999 sp99 lag failed cpu gen <<<"$row"
    [ "$label" = direct ] && D99=$p99
    added=$([ "$label" = direct ] || [ "$p99" = - ] || [ "$D99" = - ] && echo - || printf '%.3f' "$(echo "$p99 - $D99" | bc -l)")
    echo "| $label | $rps | $p50 | $p99 | $p999 | $added | $sp99 | $lag | $failed | $cpu | $gen |"
  done
} | tee "$OUT"

# The TLS comparison and the footprint figures (idle connections, clusters) go in the same file.
if [ "${EXTRAS:-1}" = 1 ]; then
  cleanup; trap - EXIT   # free the ports and the proxy core first
  { echo; bash bench/load/tls.sh; echo; bash bench/load/footprint.sh; } | tee -a "$OUT"
fi
echo "written to $OUT" >&2
