#!/usr/bin/env bash
# TLS termination in one run on 127.0.0.1: csenvoy beside nginx and HAProxy, each terminating TLS with the same
# certificate (ECDSA P-256, made here) and proxying plain HTTP/1.1 to the same Kestrel hello backend.
#   keep-alive: wrk over 32 kept-alive TLS connections (handshakes amortised away)
#   handshake:  wrk with "Connection: close", so every request is a new TCP connection and a full TLS handshake
#   h2:         h2load over TLS with ALPN h2, 10 streams per connection
# The backend and the proxy share core 1; the load generator runs alone on core 0.
#
#   bench/load/tls.sh                          # full run (warm-up 15 s per load, 10 s per measurement, 2 rounds)
#   WARMUP=3 DURATION=5 ROUNDS=1 bench/load/tls.sh
#
# Prints a markdown section (the table) on stdout; progress on stderr.
source "$(dirname "$0")/common.sh"
WARMUP=${WARMUP:-15}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-2}
CONNS=${CONNS:-32}

need wrk wrk; need h2load nghttp2-client; need nginx nginx-light; need haproxy haproxy; need openssl openssl; need taskset util-linux
build bench/CSharpEnvoy.HelloBackend
publish_csenvoy

B1=19080; B2=19081
CS=19100; CSA=19190; NG=19200; HA=19300

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null
cat "$TMP/cert.pem" "$TMP/key.pem" >"$TMP/haproxy.pem"

start_backend $B1 $B2

cat >"$TMP/csenvoy.yaml" <<YAML
admin: { address: { socket_address: { address: 127.0.0.1, port_value: $CSA } } }
static_resources:
  listeners:
  - name: tls
    address: { socket_address: { address: 127.0.0.1, port_value: $CS } }
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          common_tls_context:
            alpn_protocols: [h2, http/1.1]
            tls_certificates:
            - certificate_chain: { filename: $TMP/cert.pem }
              private_key: { filename: $TMP/key.pem }
      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: tls
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route: { cluster: backend }
  clusters:
$(cluster_yaml backend $B1)
YAML
start csenvoy "${CSENVOY[@]}" -c "$TMP/csenvoy.yaml" -l warning
wait_ready $CSA

cat >"$TMP/nginx.conf" <<NGINX
worker_processes 1;
user root;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000000;
  client_body_temp_path $TMP; proxy_temp_path $TMP; fastcgi_temp_path $TMP; uwsgi_temp_path $TMP; scgi_temp_path $TMP;
  upstream b1 { server 127.0.0.1:$B1; keepalive 64; }
  server {
    listen 127.0.0.1:$NG ssl http2;
    ssl_certificate $TMP/cert.pem;
    ssl_certificate_key $TMP/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / { proxy_pass http://b1; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
NGINX
start nginx nginx -c "$TMP/nginx.conf" -g 'daemon off;'

cat >"$TMP/haproxy.cfg" <<HAP
global
  nbthread 1
  tune.ssl.default-dh-param 2048
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend f
  bind 127.0.0.1:$HA ssl crt $TMP/haproxy.pem alpn h2,http/1.1
  default_backend b1
backend b1
  server s1 127.0.0.1:$B1
HAP
start haproxy haproxy -f "$TMP/haproxy.cfg" -db
for p in $NG $HA; do wait_port $p; done

# run_load <kind> <port> <seconds> -> prints "rps p50_ms p99_ms"
run_load() {
  local kind=$1 port=$2 secs=$3
  case $kind in
    keepalive|handshake)
      local close=(); [ "$kind" = handshake ] && close=(-H "Connection: close")
      taskset -c "$LOADCPU" wrk -t1 -c"$CONNS" -d"${secs}s" --latency "${close[@]}" "https://127.0.0.1:$port/" >"$TMP/out" 2>&1 || true
      awk '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} END {print rps, p50, p99}' "$TMP/out" | sed -E 's/([0-9.]+)us/\1e-3/g; s/([0-9.]+)ms/\1/g; s/([0-9.]+)s( |$)/\1e3\2/g' ;;
    h2)
      taskset -c "$LOADCPU" h2load -t1 -c"$CONNS" -m10 -D "$secs" "https://127.0.0.1:$port/" >"$TMP/out" 2>&1 || true
      awk '/finished in/ {for (i=1;i<=NF;i++) if ($i ~ /req\/s/) rps=$(i-1)} /time for request/ {mean=$6} END {gsub(",","",rps); print rps, mean, "-"}' "$TMP/out" | sed -E 's/([0-9.]+)us/\1e-3/g; s/([0-9.]+)ms/\1/g' ;;
  esac
}

measure() { # label kind port pid
  local label=$1 kind=$2 port=$3 pid=$4 c0 c1 rps p50 p99
  c0=$(cpu_ticks "$pid")
  read -r rps p50 p99 < <(run_load "$kind" "$port" "$DURATION")
  c1=$(cpu_ticks "$pid")
  tally "$kind/$label" "${rps:-0}" "$p50" "$p99" $((c1 - c0))
  printf '%-10s %-8s %10.0f req/s  p50 %s ms  p99 %s ms  cpu %s us/req\n' "$kind" "$label" "${rps:-0}" "${p50:--}" "${p99:--}" "$ROUND_US" >&2
}

echo "warming up csenvoy for ${WARMUP}s per load..." >&2
for kind in keepalive handshake h2; do run_load $kind $CS "$WARMUP" >/dev/null; done
NGINX_WORKER=$(nginx_worker "$PID_nginx")
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round" >&2
  for kind in keepalive handshake h2; do
    measure csenvoy $kind $CS "$PID_csenvoy"
    measure nginx $kind $NG "$NGINX_WORKER"
    measure haproxy $kind $HA "$PID_haproxy"
  done
done

echo "## TLS termination ($(date -u '+%Y-%m-%d %H:%M UTC'))"
echo
echo "Same ECDSA P-256 certificate for all, TLS 1.3 (the load generators' default), plain HTTP/1.1 to the backend."
echo "keep-alive: wrk, $CONNS connections; handshake: wrk with \`Connection: close\` (req/s = full handshakes/s); h2: h2load, $CONNS connections x 10 streams."
echo "${DURATION}s x $ROUNDS rounds after ${WARMUP}s warm-up per load; CPU is the proxy's user+system time per request; over the rounds req/s is the mean, CPU the total over the total requests, p50 and p99 the median."
echo
echo "| load | target | req/s | vs nginx | vs haproxy | p50 ms | p99 ms | CPU µs/req | peak RSS MB |"
echo "|---|---|---|---|---|---|---|---|---|"
for kind in keepalive handshake h2; do
  for t in csenvoy nginx haproxy; do
    k="$kind/$t"; r=$(echo "${TOTAL_RPS[$k]:-0} / ${RUNS[$k]:-1}" | bc -l)
    ratio() { local o; o=$(echo "${TOTAL_RPS[$kind/$1]:-0} / ${RUNS[$kind/$1]:-1}" | bc -l); [ "$(echo "$o > 0" | bc)" = 1 ] && printf '%.2f' "$(echo "$r / $o" | bc -l)" || echo -; }
    case $t in csenvoy) pid=$PID_csenvoy;; nginx) pid=$NGINX_WORKER;; haproxy) pid=$PID_haproxy;; esac
    printf '| %s | %s | %.0f | %s | %s | %s | %s | %s | %s |\n' "$kind" "$t" "$r" "$(ratio nginx)" "$(ratio haproxy)" "${P50[$k]:--}" "${P99[$k]:--}" "${CPU_US[$k]:--}" "$(hwm_mb "$pid")"
  done
done
