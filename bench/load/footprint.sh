#!/usr/bin/env bash
# What a sidecar costs when it is not saturated, on 127.0.0.1 (the fixed-rate case, 1,000 req/s over 16 connections,
# is part of run.sh, which has every peer running):
#   idle connections: RSS with 10,000 idle keep-alive connections (csenvoy and nginx)
#   clusters: startup to /ready and RSS with 1,000 and 10,000 static clusters loaded (per-cluster cost, stats included)
#
#   bench/load/footprint.sh            # full run, csenvoy published with Native AOT
#   CSENVOY_AOT=0 bench/load/footprint.sh   # the same with the ReadyToRun publish
#   IDLE=2000 bench/load/footprint.sh
#   CLUSTERS=0 bench/load/footprint.sh      # idle connections only
#
# Prints a markdown section on stdout; progress on stderr.
source "$(dirname "$0")/common.sh"
IDLE=${IDLE:-10000}
WARMUP=${WARMUP:-10}
SETTLE=${SETTLE:-12}   # seconds idle before "settled" readings: csenvoy's idle memory release checks every 5 s

need wrk wrk; need nginx nginx-light; need python3 python3; need taskset util-linux
build bench/CSharpEnvoy.HelloBackend
CSENVOY_AOT_DEFAULT=1 publish_csenvoy   # the deployed sidecar's footprint: Native AOT unless CSENVOY_AOT=0
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

B1=20080; B2=20081; CS=20100; CSA=20190; NG=20200
start_backend $B1 $B2

csenvoy_yaml $CS $CSA 1 $B1 >"$TMP/csenvoy.yaml"
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

# idle_rss <port> <pid>: RSS right after the warm-up, after $SETTLE s idle, right after $IDLE idle keep-alive
# connections opened and after they sat idle for $SETTLE s
idle_rss() {
  local port=$1 pid=$2 loaded before after settled
  loaded=$(rss_mb "$pid")
  sleep "$SETTLE"
  before=$(rss_mb "$pid")
  coproc HOLD { taskset -c "$LOADCPU" python3 bench/load/idle_connections.py "$port" "$IDLE"; }
  read -r line <&"${HOLD[0]}"
  after=$(rss_mb "$pid")
  sleep "$SETTLE"
  settled=$(rss_mb "$pid")
  eval "exec ${HOLD[1]}>&-"; wait "$HOLD_PID" 2>/dev/null || true
  echo "$loaded $before $after $settled ${line#ready }"
}
echo "idle connections: $IDLE..." >&2
read -r CS_LOADED CS_BEFORE CS_OPENED CS_IDLE CS_N < <(idle_rss $CS "$PID_csenvoy")
echo "warming up nginx for ${WARMUP}s..." >&2
taskset -c "$LOADCPU" wrk -t1 -c16 -d"${WARMUP}s" "http://127.0.0.1:$NG/" >/dev/null 2>&1 || true
read -r NG_LOADED NG_BEFORE NG_OPENED NG_IDLE NG_N < <(idle_rss $NG "$NGINX_WORKER")
echo "  csenvoy $CS_LOADED/$CS_BEFORE -> $CS_OPENED/$CS_IDLE MB ($CS_N), nginx $NG_LOADED/$NG_BEFORE -> $NG_OPENED/$NG_IDLE MB ($NG_N)" >&2

# clusters <n>: sets CL_MS (startup to /ready) and CL_RSS (MB after one request) for a csenvoy with <n> clusters
clusters() {
  local n=$1 port=20300 admin=20390
  csenvoy_yaml $port $admin "$n" $B1 >"$TMP/clusters-$n.yaml"
  local t0; t0=$(date +%s%N)
  start "clusters$n" "${CSENVOY[@]}" -c "$TMP/clusters-$n.yaml" -l warning
  wait_ready $admin
  CL_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
  curl -sf "http://127.0.0.1:$port/" >/dev/null
  local pid; eval "pid=\$PID_clusters$n"
  CL_RSS=$(rss_mb "$pid")
  kill "$pid"; wait "$pid" 2>/dev/null || true
}
if [ "${CLUSTERS:-1}" = 0 ]; then
  echo "## Footprint ($(date -u '+%Y-%m-%d %H:%M UTC'), csenvoy $CSENVOY_BUILD build, load average $(cut -d' ' -f1-3 /proc/loadavg))"
  echo
  echo "RSS after the warm-up load $CS_LOADED MB, after ${SETTLE} s idle $CS_BEFORE MB; with $CS_N idle keep-alive connections $CS_OPENED MB as they opened, $CS_IDLE MB after ${SETTLE} s: $(echo "scale=1; ($CS_IDLE - $CS_BEFORE) * 1024 / $CS_N" | bc) KB each (nginx $NG_LOADED/$NG_BEFORE -> $NG_OPENED/$NG_IDLE MB)"
  exit 0
fi
echo "clusters..." >&2
clusters 1; MS1=$CL_MS; RSS1=$CL_RSS
clusters 1000; MS1K=$CL_MS; RSS1K=$CL_RSS
clusters 10000; MS10K=$CL_MS; RSS10K=$CL_RSS
echo "  1: $MS1 ms $RSS1 MB; 1000: $MS1K ms $RSS1K MB; 10000: $MS10K ms $RSS10K MB" >&2

echo "## Footprint ($(date -u '+%Y-%m-%d %H:%M UTC'), csenvoy $CSENVOY_BUILD build, load average $(cut -d' ' -f1-3 /proc/loadavg))"
echo
echo "| memory | csenvoy | nginx |"
echo "|---|---|---|"
echo "| RSS at the end of the warm-up load | $CS_LOADED MB | $NG_LOADED MB |"
echo "| RSS idle, ${SETTLE} s after the warm-up | $CS_BEFORE MB | $NG_BEFORE MB |"
echo "| RSS with $CS_N idle keep-alive connections, as they opened | $CS_OPENED MB | $NG_OPENED MB |"
echo "| RSS with $CS_N idle keep-alive connections, ${SETTLE} s later | $CS_IDLE MB | $NG_IDLE MB |"
echo "| per idle connection | $(echo "scale=1; ($CS_IDLE - $CS_BEFORE) * 1024 / $CS_N" | bc) KB | $(echo "scale=1; ($NG_IDLE - $NG_BEFORE) * 1024 / $NG_N" | bc) KB |"
echo
echo "| static clusters | startup to /ready | RSS after one request | per cluster (vs 1) |"
echo "|---|---|---|---|"
echo "| 1 | $MS1 ms | $RSS1 MB | - |"
echo "| 1,000 | $MS1K ms | $RSS1K MB | $(echo "($RSS1K - $RSS1) * 1024 / 999" | bc) KB |"
echo "| 10,000 | $MS10K ms | $RSS10K MB | $(echo "($RSS10K - $RSS1) * 1024 / 9999" | bc) KB |"
