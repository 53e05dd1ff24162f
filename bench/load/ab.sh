#!/usr/bin/env bash
# A/B of csenvoy variants under one load, in alternating rounds: each variant is the published ReadyToRun csenvoy
# (or another publish) started with its own environment; per round, CPU µs per request and req/s of each.
# Same pinning as run.sh. Optionally HAProxy as a reference row (PEER=1), and for h1 the floor proxy (FLOOR=1:
# bench/CSharpEnvoy.FloorProxy, the least a .NET proxy does per request).
#
#   bench/load/ab.sh <h1|h2c|grpc> '<label>:<VAR=value ...>' ...
#   bench/load/ab.sh grpc 'base:' 'no-inline:CSENVOY_INLINE_SCHEDULING=0'
#   bench/load/ab.sh h2c 'old:DIR=bench/.out/csenvoy-old' 'new:'      # DIR= runs another publish's csenvoy.dll
#   bench/load/ab.sh grpc 'auto:' 'h2:CODEC=HTTP2'   # CODEC=HTTP2 loads the codec_type HTTP2 listener, not the AUTO one
#   bench/load/ab.sh h1 'fresh:' 'mixed:PRELOAD=h2c,grpc'   # PRELOAD= first loads the variant's HTTP2 listener
#   WARMUP=20 DURATION=8 ROUNDS=4 PUBLISH=0 PEER=1 bench/load/ab.sh grpc ...
#
# Prints one line per round and target and a markdown summary (median and range per variant) on stdout.
source "$(dirname "$0")/common.sh"
MODE=${1:?usage: $0 <h1|h2c|grpc> '<label>:<VAR=value ...>' ...}; shift
WARMUP=${WARMUP:-25}
WARM_CYCLES=${WARM_CYCLES:-5}
DURATION=${DURATION:-8}
ROUNDS=${ROUNDS:-4}
CONNS=${CONNS:-32}
PEER=${PEER:-0}
need wrk wrk; need h2load nghttp2-client; need taskset util-linux
build bench/CSharpEnvoy.HelloBackend
if [ "${PUBLISH:-1}" = 1 ]; then CSENVOY_AOT=0 publish_csenvoy; fi

B1=19580; B2=19581; HA1=19591; HA2=19592; HAG=19593
start_backend $B1 $B2
wait_port $B2

LABELS=(); declare -A PORT PIDOF PRE H2PORT
i=0
for v in "$@"; do
  label=${v%%:*}; spec=${v#*:}; dir=$ROOT/bench/.out/csenvoy; envs=(); h2only=0
  for kv in $spec; do case $kv in DIR=*) dir=$ROOT/${kv#DIR=} ;; CODEC=HTTP2) h2only=1 ;; *) envs+=("$kv") ;; esac; done
  port=$((19600 + i * 10)); i=$((i + 1))
  csenvoy_mixed_yaml $port $((port + 9)) $B1 $B2 $((port + 1)) >"$TMP/$label.yaml"
  start "cs$i" env "${envs[@]}" dotnet "$dir/csenvoy.dll" -c "$TMP/$label.yaml" -l warning
  wait_ready $((port + 9))
  LABELS+=("$label"); PORT[$label]=$((port + h2only)); H2PORT[$label]=$((port + 1)); eval "PIDOF[\$label]=\$PID_cs$i"
done
if [ "$PEER" = 1 ]; then
  need haproxy haproxy
  haproxy_cfg $HA1 $HA2 $HAG $B1 $B2 >"$TMP/haproxy.cfg"
  start haproxy haproxy -f "$TMP/haproxy.cfg" -db
  wait_port $HA2
  LABELS+=(haproxy); PIDOF[haproxy]=$PID_haproxy
  case $MODE in h1) PORT[haproxy]=$HA1 ;; h2c) PORT[haproxy]=$HA2 ;; grpc) PORT[haproxy]=$HAG ;; esac
fi

if [ "${FLOOR:-0}" = 1 ] && [ "$MODE" = h1 ]; then
  build bench/CSharpEnvoy.FloorProxy
  start floor dotnet bench/CSharpEnvoy.FloorProxy/bin/Release/net10.0/CSharpEnvoy.FloorProxy.dll 19594 $B1
  wait_port 19594
  LABELS+=(floor); PIDOF[floor]=$PID_floor; PORT[floor]=19594
fi

# one <port> <seconds> -> "req/s served" and, for h1, "p99 ms" (wrk's)
one() {
  if [ "$MODE" = h1 ]; then read -r rps _ p99 < <(wrk_h1 "$1" "$2"); echo "$rps $p99"
  else h2_load "$MODE" "$1" "$2" | awk -v s="$2" '/^requests:/ {print $8 / s, "-"}'; fi
}

echo "warming up each variant for ${WARMUP}s..." >&2
for l in "${LABELS[@]}"; do
  # As run.sh's warm-up does for csenvoy: h2c and gRPC on its HTTP2 listener before the measured load.
  for m in $(echo "${PRE[$l]:-}" | tr ',' ' '); do h2_load "$m" "${H2PORT[$l]}" "$WARMUP" >/dev/null; done
  # In WARM_CYCLES loads of fresh connections, as run.sh: the per-connection code reaches its optimized tier too.
  for _ in $(seq "$WARM_CYCLES"); do one "${PORT[$l]}" "$(( (WARMUP + WARM_CYCLES - 1) / WARM_CYCLES ))" >/dev/null; done
done

declare -A CPU RPS SYS LAT
for round in $(seq 1 "$ROUNDS"); do
  for l in "${LABELS[@]}"; do
    pid=${PIDOF[$l]}
    c0=$(cpu_ticks "$pid"); k0=$(sys_ticks "$pid"); read -r rps p99 < <(one "${PORT[$l]}" "$DURATION"); c1=$(cpu_ticks "$pid"); k1=$(sys_ticks "$pid")
    us=$(echo "($c1 - $c0) * 1000000 / $HZ / ($rps * $DURATION)" | bc -l)
    sys=$(echo "($k1 - $k0) * 1000000 / $HZ / ($rps * $DURATION)" | bc -l)
    CPU[$l]="${CPU[$l]:-} $(printf '%.1f' "$us")"; RPS[$l]="${RPS[$l]:-} $(printf '%.0f' "$rps")"; SYS[$l]="${SYS[$l]:-} $(printf '%.1f' "$sys")"
    LAT[$l]="${LAT[$l]:-} $p99"
    printf '  round %s: %-12s %8.0f req/s  %6.1f us/req (system %4.1f)  p99 %s ms\n' "$round" "$l" "$rps" "$us" "$sys" "$p99" >&2
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {m = NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%s (%s–%s)", m, a[1], a[NR]}'; }
echo "## A/B $MODE ($(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg))"
echo
echo "$ROUNDS alternating rounds of ${DURATION}s after ${WARMUP}s warm-up each; $CONNS connections$([ "$MODE" = h1 ] || echo ' x 10 streams')."
echo
echo "| variant | CPU µs/req median (range) | of it system (kernel) µs/req | req/s median (range) | p99 ms median (range) | per round µs |"
echo "|---|---|---|---|---|---|"
for l in "${LABELS[@]}"; do
  p99s="-"; [ "$MODE" = h1 ] && p99s=$(echo "${LAT[$l]}" | median)
  echo "| $l | $(echo "${CPU[$l]}" | median) | $(echo "${SYS[$l]}" | median) | $(echo "${RPS[$l]}" | median) | $p99s |${CPU[$l]} |"
done
