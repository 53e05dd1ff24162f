#!/usr/bin/env bash
# The Native AOT csenvoy does what the JIT build does. Publishes it (timed), then:
#   1. serves configs/quickstart.yaml plus a regex route: a direct response, a request proxied through a cluster, and
#      the admin endpoints (/ready, /stats with a regex filter, /stats?format=json, /stats/prometheus, /config_dump,
#      /clusters, /listeners, /server_info);
#   2. validates every YAML file of ../shared/envoy-configs with --mode validate, expecting the JIT build's exit code
#      and output, byte for byte;
#   3. runs the integration tests that start the executable (command line, quickstart, ADS against the test control
#      plane, filesystem xDS, the cross-region TLS pair) against the AOT binary (CSENVOY_EXE).
#
#   bench/load/aot_smoke.sh               # builds what it needs
#   NO_BUILD=1 bench/load/aot_smoke.sh    # after `dotnet build CSharpEnvoy.sln -c Release` (as .ci/run does)
#
# Exits non-zero on the first difference. Needs clang (or clang-14) and zlib1g-dev.
source "$(dirname "$0")/common.sh"
need curl curl; need python3 python3
aot_toolchain || { echo "Native AOT needs clang (or clang-14) and zlib1g-dev" >&2; exit 1; }

AOT_DIR=$ROOT/bench/.out/csenvoy-aot
JIT_DLL=$ROOT/src/CSharpEnvoy.Host/bin/Release/net10.0/csenvoy.dll
if [ "${NO_BUILD:-0}" != 1 ]; then
  build src/CSharpEnvoy.Host tests/CSharpEnvoy.IntegrationTests
fi
t0=$(date +%s)
publish_aot "$AOT_DIR"
echo "AOT publish: $(( $(date +%s) - t0 )) s; binary $(( $(stat -c %s "$AOT_DIR/csenvoy") / 1048576 )) MB" >&2
AOT=$AOT_DIR/csenvoy

fail() { echo "aot_smoke: FAIL: $*" >&2; exit 1; }

# ---- 1. quickstart + a regex route ----
# Ports the kernel hands out now (this runs in CI beside other work; fixed ports could collide).
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
LP=$(free_port); AP=$(free_port); RP=$(free_port)
sed -e "s/port_value: 10000/port_value: $LP/" -e "s/port_value: 9901/port_value: $AP/" configs/quickstart.yaml >"$TMP/quickstart.yaml"
# RE2 semantics (Envoy's safe_regex): a full match, no lookaround.
cat >"$TMP/regex.yaml" <<YAML
static_resources:
  listeners:
  - name: regex
    address: { socket_address: { address: 127.0.0.1, port_value: $RP } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: regex
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: { safe_regex: { regex: "/items/[0-9]+" } }
                direct_response: { status: 201, body: { inline_string: "item" } }
              - match: { prefix: "/" }
                direct_response: { status: 404 }
YAML
start aot "$AOT" -c "$TMP/quickstart.yaml" --config-yaml "$(cat "$TMP/regex.yaml")" -l warning
wait_ready $AP

expect() { # url expected-status [substring]
  local code; code=$(curl -s -o "$TMP/body" -w '%{http_code}' "$1")
  [ "$code" = "$2" ] || fail "$1: HTTP $code, expected $2: $(head -c 300 "$TMP/body")"
  [ -z "${3:-}" ] || grep -qF -- "$3" "$TMP/body" || fail "$1: no '$3' in: $(head -c 500 "$TMP/body")"
}
expect "http://127.0.0.1:$LP/" 200 "Hello from CSharpEnvoy"
expect "http://127.0.0.1:$LP/admin/server_info" 200 '"state": "LIVE"'
expect "http://127.0.0.1:$RP/items/42" 201 item
expect "http://127.0.0.1:$RP/items/42x" 404
expect "http://127.0.0.1:$RP/x/items/42" 404
expect "http://127.0.0.1:$AP/ready" 200 LIVE
expect "http://127.0.0.1:$AP/stats" 200 "cluster.admin.upstream_rq_total: 1"
expect "http://127.0.0.1:$AP/stats?filter=%5Ecluster%5C.admin%5C.upstream_rq_2xx%24" 200 "cluster.admin.upstream_rq_2xx: 1"
[ "$(wc -l <"$TMP/body")" = 1 ] || fail "/stats?filter matched more than one stat: $(cat "$TMP/body")"
expect "http://127.0.0.1:$AP/stats?format=json" 200 '"stats"'
python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$TMP/body" || fail "/stats?format=json is not JSON"
expect "http://127.0.0.1:$AP/stats/prometheus" 200 'envoy_cluster_upstream_rq_total{envoy_cluster_name="admin"} 1'
expect "http://127.0.0.1:$AP/config_dump" 200 '"@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"'
grep -qF '"stat_prefix": "ingress_http"' "$TMP/body" || fail "/config_dump lacks the connection manager's fields"
python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$TMP/body" || fail "/config_dump is not JSON"
expect "http://127.0.0.1:$AP/clusters" 200 "admin::127.0.0.1:$AP::rq_total::1"
expect "http://127.0.0.1:$AP/clusters?format=json" 200 '"name": "admin"'
expect "http://127.0.0.1:$AP/listeners" 200 "listener_0::127.0.0.1:$LP"
kill "$PID_aot"; wait "$PID_aot" 2>/dev/null || true
echo "quickstart and admin endpoints: OK" >&2

# ---- 2. the corpus, validated by both builds ----
[ -d ../shared/envoy-configs ] || fail "../shared/envoy-configs not found"
n=0; ok=0
while IFS= read -r f; do
  n=$((n + 1))
  set +e
  dotnet "$JIT_DLL" --mode validate -c "$f" >"$TMP/jit.out" 2>&1; jit=$?
  "$AOT" --mode validate -c "$f" >"$TMP/aot.out" 2>&1; aot=$?
  set -e
  [ "$jit" = "$aot" ] || fail "$f: exit code $aot under AOT, $jit under JIT"
  cmp -s "$TMP/jit.out" "$TMP/aot.out" || { diff "$TMP/jit.out" "$TMP/aot.out" | head -20 >&2; fail "$f: output differs"; }
  [ "$jit" = 0 ] && ok=$((ok + 1))
done < <(find ../shared/envoy-configs -name '*.yaml' -o -name '*.yml' | sort)
echo "corpus: $n files validated alike by both builds ($ok load, $((n - ok)) refused)" >&2

# ---- 3. the executable's integration tests (xDS included) against the AOT binary ----
set +e
CSENVOY_EXE=$AOT dotnet test tests/CSharpEnvoy.IntegrationTests -c Release --no-build \
  --filter "FullyQualifiedName~CSharpEnvoy.IntegrationTests.Host.|FullyQualifiedName~CrossRegionTests" >"$TMP/test.log" 2>&1
rc=$?
set -e
grep -E "^(Passed|Failed)!|^ +Failed " "$TMP/test.log" >&2 || tail -20 "$TMP/test.log" >&2
[ "$rc" = 0 ] || fail "integration tests against the AOT binary"
echo "aot_smoke: OK" >&2
