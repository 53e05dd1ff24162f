# Shared by the load scripts (sourced): a temp dir cleaned on exit, processes started pinned to the proxy core,
# waiting for ports, CPU ticks of a process, and the hello backend.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
LOADCPU=${LOADCPU:-0}
PROXYCPU=${PROXYCPU:-1}
TMP=$(mktemp -d /tmp/csenvoy-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT
HZ=$(getconf CLK_TCK)
export DOTNET_TieredPGO=1 DOTNET_gcServer=0

need() { command -v "$1" >/dev/null 2>&1 || { echo "missing $1: apt-get install -y $2" >&2; exit 1; }; }

build() { # projects...
  echo "building (Release)..." >&2
  for p in "$@"; do dotnet build -c Release -v q "$p" >/dev/null; done
}

# csenvoy as it would be deployed, run as "${CSENVOY[@]}" <args>. Two publishes (docs/performance.md, "Native AOT"):
#   ReadyToRun: precompiled, hot code re-jitted with profile guidance: a few µs per request cheaper once warm, so the
#               default for the throughput scripts (run.sh, tls.sh);
#   Native AOT: no JIT, full speed from the first request, less than half the memory and a third of the startup: the
#               default for footprint.sh (it sets CSENVOY_AOT_DEFAULT=1), when the toolchain is there (clang or
#               clang-14, zlib1g-dev).
# CSENVOY_AOT=1 or 0 overrides either; CSENVOY_AOT=0 CSENVOY_R2R=0 runs the plain JIT build.
CSENVOY=()
aot_toolchain() { { command -v clang >/dev/null 2>&1 || command -v clang-14 >/dev/null 2>&1; } && [ -e /usr/include/zlib.h ]; }
publish_aot() { # output dir
  echo "publishing csenvoy (Release, Native AOT)..." >&2
  dotnet publish src/CSharpEnvoy.Host -c Release -r linux-x64 -p:PublishAot=true -o "$1" -v q >/dev/null
}
publish_r2r() { # output dir
  echo "publishing csenvoy (Release, ReadyToRun)..." >&2
  dotnet publish src/CSharpEnvoy.Host -c Release -r linux-x64 --self-contained false -p:PublishReadyToRun=true -o "$1" -v q >/dev/null
}
publish_csenvoy() {
  if [ "${CSENVOY_AOT:-${CSENVOY_AOT_DEFAULT:-0}}" = 1 ] && aot_toolchain; then
    publish_aot "$ROOT/bench/.out/csenvoy-aot"
    CSENVOY=("$ROOT/bench/.out/csenvoy-aot/csenvoy"); CSENVOY_BUILD=aot
  elif [ "${CSENVOY_R2R:-1}" = 1 ]; then
    publish_r2r "$ROOT/bench/.out/csenvoy"
    CSENVOY=(dotnet "$ROOT/bench/.out/csenvoy/csenvoy.dll"); CSENVOY_BUILD=r2r
  else
    build src/CSharpEnvoy.Host
    CSENVOY=(dotnet "$ROOT/src/CSharpEnvoy.Host/bin/Release/net10.0/csenvoy.dll"); CSENVOY_BUILD=jit
  fi
}

start() { # name, command...: runs on the proxy core, output in $TMP/<name>.log, pid in PID_<name>
  local name=$1; shift
  taskset -c "$PROXYCPU" "$@" >"$TMP/$name.log" 2>&1 &
  PIDS+=($!); eval "PID_$name=$!"
}

wait_port() { for _ in $(seq 1 400); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }

wait_ready() { # admin port: polls csenvoy's /ready
  for _ in $(seq 1 6000); do curl -sf "http://127.0.0.1:$1/ready" >/dev/null 2>&1 && return 0; sleep 0.01; done
  echo "csenvoy on admin port $1 never became ready" >&2; exit 1
}

# wrk_h1 <port> <seconds> -> "rps p50_ms p99_ms": HTTP/1.1 keep-alive load from the load core ($CONNS connections).
wrk_h1() {
  taskset -c "$LOADCPU" wrk -t1 -c"${CONNS:-32}" -d"${2}s" --latency "http://127.0.0.1:$1/" >"$TMP/wrk.out" 2>&1 || true
  awk '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} END {print rps, p50, p99}' "$TMP/wrk.out" |
    sed -E 's/([0-9.]+)us/\1e-3/g; s/([0-9.]+)ms/\1/g; s/([0-9.]+)s( |$)/\1e3\2/g'
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
sys_ticks() { awk '{print $15}' "/proc/$1/stat"; }
# tally <key> <req/s> <p50> <p99> [cpu ticks]: adds one measured round ($DURATION s) to the per-target figures
# run.sh and tls.sh print: req/s the mean of the rounds (TOTAL_RPS / RUNS), CPU_US the total CPU over the total
# requests, P50 and P99 the median of the rounds; ROUND_US is this round's CPU µs per request ("-" without ticks).
# Runs in the calling shell (not in $(...)), so the arrays keep what it adds.
declare -A TOTAL_RPS RUNS CPU_US P50 P99 TICKS REQS P50S P99S
tally() {
  local key=$1 rps=${2:-0} p50=${3:--} p99=${4:--} ticks=${5:-}
  TOTAL_RPS[$key]=$(echo "${TOTAL_RPS[$key]:-0} + $rps" | bc -l)
  RUNS[$key]=$(( ${RUNS[$key]:-0} + 1 ))
  P50S[$key]="${P50S[$key]:-} $p50"; P99S[$key]="${P99S[$key]:-} $p99"
  P50[$key]=$(echo "${P50S[$key]}" | median_of); P99[$key]=$(echo "${P99S[$key]}" | median_of)
  ROUND_US=-
  if [ -z "$ticks" ] || ! [ "${rps%.*}" -gt 0 ] 2>/dev/null; then return; fi
  TICKS[$key]=$(( ${TICKS[$key]:-0} + ticks ))
  REQS[$key]=$(echo "${REQS[$key]:-0} + $rps * $DURATION" | bc -l)
  CPU_US[$key]=$(printf '%.1f' "$(echo "${TICKS[$key]} * 1000000 / $HZ / ${REQS[$key]}" | bc -l)")
  ROUND_US=$(printf '%.1f' "$(echo "$ticks * 1000000 / $HZ / ($rps * $DURATION)" | bc -l)")
}
# median_of: the median of the space-separated numbers on stdin ("-" entries skipped; "-" when none is left)
median_of() { tr ' ' '\n' | { grep -v -e '^$' -e '^-$' || true; } | sort -g | awk '{a[NR]=$1} END {if (!NR) {print "-"; exit} if (NR % 2) print a[(NR+1)/2]; else printf "%.3g\n", (a[NR/2] + a[NR/2+1]) / 2}'; }
rss_mb() { awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$1/status"; }
hwm_mb() { awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$1/status"; }

start_backend() { # http1-port h2c-port
  start backend dotnet bench/CSharpEnvoy.HelloBackend/bin/Release/net10.0/CSharpEnvoy.HelloBackend.dll "$1" "$2"
  wait_port "$1"
}

# A csenvoy cluster named $1 with one endpoint at 127.0.0.1:$2 (a YAML list item, indented for static_resources).
cluster_yaml() {
  echo "  - name: $1"
  echo "    load_assignment: { cluster_name: $1, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: $2 } } } }] }] }"
}

# csenvoy_yaml <listener port> <admin port> <clusters> <backend port>: one plain HTTP listener routing everything to
# cluster c0, plus <clusters>-1 others; every cluster has the one endpoint 127.0.0.1:<backend port>.
csenvoy_yaml() {
  cat <<YAML
admin: { address: { socket_address: { address: 127.0.0.1, port_value: $2 } } }
static_resources:
  listeners:
  - name: bench
    address: { socket_address: { address: 127.0.0.1, port_value: $1 } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route: { cluster: c0 }
  clusters:
YAML
  for i in $(seq 0 $(($3 - 1))); do cluster_yaml "c$i" "$4"; done
}

nginx_worker() { # master pid -> the (single) worker's pid, once forked
  local w
  for _ in $(seq 1 200); do w=$(pgrep -P "$1" | head -1 || true); [ -n "$w" ] && { echo "$w"; return 0; }; sleep 0.05; done
  echo "nginx never started a worker" >&2; exit 1
}

# csenvoy_mixed_yaml <listener port> <admin port> <backend HTTP/1.1 port> <backend h2c port> [<HTTP/2 listener port>]:
# one listener (codec AUTO: HTTP/1.1 and h2c) routing gRPC requests to the backend's h2c port over HTTP/2 and everything
# else to its HTTP/1.1 port; with a fifth argument a second listener, codec_type HTTP2 (h2c only), with the same routes
# and stat prefix: what HAProxy's "proto h2" frontends and nginx's "http2" servers are.
csenvoy_mixed_yaml() {
  cat <<YAML
admin: { address: { socket_address: { address: 127.0.0.1, port_value: $2 } } }
static_resources:
  listeners:
YAML
  csenvoy_bench_listener bench "$1" AUTO
  [ -n "${5:-}" ] && csenvoy_bench_listener bench_h2 "$5" HTTP2
  cat <<YAML
  clusters:
  - name: backend
    load_assignment: { cluster_name: backend, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: $3 } } } }] }] }
  - name: backend_h2
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: { http2_protocol_options: {} }
    load_assignment: { cluster_name: backend_h2, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: $4 } } } }] }] }
YAML
}
csenvoy_bench_listener() { # name port codec_type
  cat <<YAML
  - name: $1
    address: { socket_address: { address: 127.0.0.1, port_value: $2 } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
          codec_type: $3
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: { prefix: "/", grpc: {} }
                route: { cluster: backend_h2, timeout: 0s }
              - match: { prefix: "/" }
                route: { cluster: backend }
YAML
}

# haproxy_cfg <HTTP/1.1 port> <h2c port> <gRPC port> <backend HTTP/1.1 port> <backend h2c port>: the same three jobs,
# one thread; h2c goes to the HTTP/1.1 backend, gRPC to the h2c one over HTTP/2.
haproxy_cfg() {
  cat <<HAP
global
  nbthread 1
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend f1
  bind 127.0.0.1:$1
  default_backend b1
frontend f2
  bind 127.0.0.1:$2 proto h2
  default_backend b1
frontend fg
  bind 127.0.0.1:$3 proto h2
  default_backend b2
backend b1
  server s1 127.0.0.1:$4
backend b2
  server s2 127.0.0.1:$5 proto h2
HAP
}

# h2_load <h2c|grpc> <port> <seconds>: h2load from the load core, $CONNS connections x 10 streams; gRPC unary sends a
# 5-byte frame carrying an empty message. Prints h2load's output.
h2_load() {
  [ -e "$TMP/grpc.bin" ] || printf '\x00\x00\x00\x00\x00' >"$TMP/grpc.bin"
  case $1 in
    h2c) taskset -c "$LOADCPU" h2load -t1 -c"${CONNS:-32}" -m10 -D "$3" "http://127.0.0.1:$2/" 2>&1 || true ;;
    grpc) taskset -c "$LOADCPU" h2load -t1 -c"${CONNS:-32}" -m10 -D "$3" -d "$TMP/grpc.bin" -H 'content-type: application/grpc' \
            -H 'te: trailers' "http://127.0.0.1:$2/bench.Echo/Unary" 2>&1 || true ;;
  esac
}
