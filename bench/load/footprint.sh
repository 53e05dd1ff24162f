#!/usr/bin/env bash
# What a sidecar costs when it is not saturated, on 127.0.0.1:
#   fixed rate: 1,000 req/s over 16 HTTP/1.1 connections (h2load --rps, per-request latencies from its log),
#               direct to the backend, through csenvoy and through nginx: CPU per request and the added p50/p99/p99.9
#   idle connections: RSS with 10,000 idle keep-alive connections (csenvoy and nginx)
#   clusters: startup to /ready and RSS with 1,000 and 10,000 static clusters loaded (per-cluster cost, stats included)
#
#   bench/load/footprint.sh            # full run (20 s at the fixed rate), csenvoy published with Native AOT
#   CSENVOY_AOT=0 bench/load/footprint.sh   # the same with the ReadyToRun publish
#   DURATION=5 IDLE=2000 bench/load/footprint.sh
#
# Prints a markdown section on stdout; progress on stderr.
source "$(dirname "$0")/common.sh"
DURATION=${DURATION:-20}
RATE_CONNS=${RATE_CONNS:-16}
RATE=${RATE:-1000}
IDLE=${IDLE:-10000}
WARMUP=${WARMUP:-10}

need h2load nghttp2-client; need wrk wrk; need nginx nginx-light; need python3 python3; need taskset util-linux
build bench/CSharpEnvoy.HelloBackend
CSENVOY_AOT_DEFAULT=1 publish_csenvoy   # the deployed sidecar's footprint: Native AOT unless CSENVOY_AOT=0
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

B1=20080; B2=20081; CS=20100; CSA=20190; NG=20200
start_backend $B1 $B2

csenvoy_yaml $CS $CSA 1 >"$TMP/csenvoy.yaml"
start csenvoy "${CSENVOY[@]}" -c "$TMP/csenvoy.yaml" -l warning
wait_ready $CSA

cat >"$TMP/nginx.conf" <<NGINX
worker_processes 1;
worker_rlimit_nofile 65536;
user root;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log;
events { worker_connections 30000; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 600s;
  client_body_temp_path $TMP; proxy_temp_path $TMP; fastcgi_temp_path $TMP; uwsgi_temp_path $TMP; scgi_temp_path $TMP;
  upstream b1 { server 127.0.0.1:$B1; keepalive 64; }
  server { listen 127.0.0.1:$NG; location / { proxy_pass http://b1; proxy_http_version 1.1; proxy_set_header Connection ""; } }
}
NGINX
start nginx nginx -c "$TMP/nginx.conf" -g 'daemon off;'
wait_port $NG
NGINX_WORKER=$(nginx_worker "$PID_nginx")

echo "warming up csenvoy for ${WARMUP}s..." >&2
taskset -c "$LOADCPU" wrk -t1 -c16 -d"${WARMUP}s" "http://127.0.0.1:$CS/" >/dev/null 2>&1 || true

# fixed_rate <label> <port> <pid or empty> -> "rps p50 p99 p999 cpu_us" (latencies in ms)
fixed_rate() {
  local label=$1 port=$2 pid=${3:-} c0=0 c1=0
  local per_client; per_client=$(echo "$RATE / $RATE_CONNS" | bc -l)
  [ -n "$pid" ] && c0=$(cpu_ticks "$pid")
  rm -f "$TMP/lat.log"
  taskset -c "$LOADCPU" h2load --h1 -t1 -c"$RATE_CONNS" --rps "$per_client" -D "$DURATION" --log-file "$TMP/lat.log" \
    "http://127.0.0.1:$port/" >"$TMP/out" 2>&1 || true
  [ -n "$pid" ] && c1=$(cpu_ticks "$pid")
  local n; n=$(awk '$2 == 200' "$TMP/lat.log" | wc -l)
  local rps; rps=$(echo "$n / $DURATION" | bc -l)
  local cpu="-"; [ -n "$pid" ] && [ "$n" -gt 0 ] && cpu=$(printf '%.1f' "$(echo "($c1 - $c0) * 1000000 / $HZ / $n" | bc -l)")
  awk '$2 == 200 {print $3}' "$TMP/lat.log" | sort -n >"$TMP/sorted"
  pct() { awk -v p="$1" -v n="$n" 'NR == int(n * p + 0.999999) {printf "%.3f", $1 / 1000}' "$TMP/sorted"; }
  printf '%s %s %s %s %s %s\n' "$label" "$(printf '%.0f' "$rps")" "$(pct 0.5)" "$(pct 0.99)" "$(pct 0.999)" "$cpu"
}

echo "fixed rate ${RATE} req/s, ${RATE_CONNS} connections, ${DURATION}s each..." >&2
RATE_ROWS=()
for t in direct:$B1: csenvoy:$CS:$PID_csenvoy nginx:$NG:$NGINX_WORKER; do
  IFS=: read -r label port pid <<<"$t"
  row=$(fixed_rate "$label" "$port" "$pid"); RATE_ROWS+=("$row"); echo "  $row" >&2
done
read -r _ _ D50 D99 D999 _ <<<"${RATE_ROWS[0]}"

# idle_rss <port> <pid>: RSS before and with $IDLE idle keep-alive connections
idle_rss() {
  local port=$1 pid=$2 before after
  before=$(rss_mb "$pid")
  coproc HOLD { taskset -c "$LOADCPU" python3 bench/load/idle_connections.py "$port" "$IDLE"; }
  read -r line <&"${HOLD[0]}"
  after=$(rss_mb "$pid")
  eval "exec ${HOLD[1]}>&-"; wait "$HOLD_PID" 2>/dev/null || true
  echo "$before $after ${line#ready }"
}
echo "idle connections: $IDLE..." >&2
read -r CS_BEFORE CS_IDLE CS_N < <(idle_rss $CS "$PID_csenvoy")
read -r NG_BEFORE NG_IDLE NG_N < <(idle_rss $NG "$NGINX_WORKER")
echo "  csenvoy $CS_BEFORE -> $CS_IDLE MB ($CS_N), nginx $NG_BEFORE -> $NG_IDLE MB ($NG_N)" >&2

# clusters <n>: sets CL_MS (startup to /ready) and CL_RSS (MB after one request) for a csenvoy with <n> clusters
clusters() {
  local n=$1 port=20300 admin=20390
  csenvoy_yaml $port $admin "$n" >"$TMP/clusters-$n.yaml"
  local t0; t0=$(date +%s%N)
  start "clusters$n" "${CSENVOY[@]}" -c "$TMP/clusters-$n.yaml" -l warning
  wait_ready $admin
  CL_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
  curl -sf "http://127.0.0.1:$port/" >/dev/null
  local pid; eval "pid=\$PID_clusters$n"
  CL_RSS=$(rss_mb "$pid")
  kill "$pid"; wait "$pid" 2>/dev/null || true
}
echo "clusters..." >&2
clusters 1; MS1=$CL_MS; RSS1=$CL_RSS
clusters 1000; MS1K=$CL_MS; RSS1K=$CL_RSS
clusters 10000; MS10K=$CL_MS; RSS10K=$CL_RSS
echo "  1: $MS1 ms $RSS1 MB; 1000: $MS1K ms $RSS1K MB; 10000: $MS10K ms $RSS10K MB" >&2

echo "## Footprint ($(date -u '+%Y-%m-%d %H:%M UTC'), csenvoy $CSENVOY_BUILD build)"
echo
echo "Fixed rate: h2load --h1, $RATE_CONNS connections at $RATE req/s in all for ${DURATION}s; latencies from h2load's per-request log"
echo "(h2load paces each connection in bursts, so the direct p99 is the burst's queueing, not the backend's time)."
echo
echo "| target | req/s | p50 ms | p99 ms | p99.9 ms | added p99 ms | CPU µs/req |"
echo "|---|---|---|---|---|---|---|"
for row in "${RATE_ROWS[@]}"; do
  read -r label rps p50 p99 p999 cpu <<<"$row"
  added=$([ "$label" = direct ] && echo - || printf '%.3f' "$(echo "$p99 - $D99" | bc -l)")
  echo "| $label | $rps | $p50 | $p99 | $p999 | $added | $cpu |"
done
echo
echo "| memory | csenvoy | nginx |"
echo "|---|---|---|"
echo "| RSS idle (after warm-up) | $CS_BEFORE MB | $NG_BEFORE MB |"
echo "| RSS with $CS_N idle keep-alive connections | $CS_IDLE MB | $NG_IDLE MB |"
echo "| per idle connection | $(echo "scale=1; ($CS_IDLE - $CS_BEFORE) * 1024 / $CS_N" | bc) KB | $(echo "scale=1; ($NG_IDLE - $NG_BEFORE) * 1024 / $NG_N" | bc) KB |"
echo
echo "| static clusters | startup to /ready | RSS after one request | per cluster (vs 1) |"
echo "|---|---|---|---|"
echo "| 1 | $MS1 ms | $RSS1 MB | - |"
echo "| 1,000 | $MS1K ms | $RSS1K MB | $(echo "($RSS1K - $RSS1) * 1024 / 999" | bc) KB |"
echo "| 10,000 | $MS10K ms | $RSS10K MB | $(echo "($RSS10K - $RSS1) * 1024 / 9999" | bc) KB |"
