#!/usr/bin/env bash
# The two ways csenvoy is published, side by side on 127.0.0.1: Native AOT and ReadyToRun. For each: startup to /ready
# (started alone), idle RSS, then HTTP/1.1 keep-alive through the same route (wrk, 32 connections) in alternating
# rounds with a direct run to the backend in each round: req/s, ratio to direct, CPU µs per request, peak RSS.
# The backend and the proxies share core 1; the load generator runs alone on core 0.
#
#   bench/load/builds.sh                                # warm-up 25 s each, 10 s per measurement, 3 rounds
#   WARMUP=5 DURATION=5 ROUNDS=2 bench/load/builds.sh
#
# Prints a markdown section on stdout; progress on stderr.
source "$(dirname "$0")/common.sh"
WARMUP=${WARMUP:-25}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-32}

need wrk wrk; need taskset util-linux
aot_toolchain || { echo "Native AOT needs clang (or clang-14) and zlib1g-dev" >&2; exit 1; }
build bench/CSharpEnvoy.HelloBackend
publish_aot "$ROOT/bench/.out/csenvoy-aot"
publish_r2r "$ROOT/bench/.out/csenvoy"

B1=23080; B2=23081
start_backend $B1 $B2

declare -A CMD PORT ADMIN STARTUP IDLE
CMD[aot]="$ROOT/bench/.out/csenvoy-aot/csenvoy"; PORT[aot]=23100; ADMIN[aot]=23190
CMD[r2r]="dotnet $ROOT/bench/.out/csenvoy/csenvoy.dll"; PORT[r2r]=23200; ADMIN[r2r]=23290

for b in aot r2r; do
  csenvoy_yaml "${PORT[$b]}" "${ADMIN[$b]}" 1 $B1 >"$TMP/$b.yaml"
  t0=$(date +%s%N)
  # shellcheck disable=SC2086 # CMD holds a command and its arguments
  start "$b" ${CMD[$b]} -c "$TMP/$b.yaml" -l warning
  wait_ready "${ADMIN[$b]}"
  STARTUP[$b]=$(( ($(date +%s%N) - t0) / 1000000 ))
  eval "IDLE[$b]=\$(rss_mb \$PID_$b)"
  echo "  $b: startup ${STARTUP[$b]} ms, idle RSS ${IDLE[$b]} MB" >&2
done

echo "warming up each build for ${WARMUP}s..." >&2
for b in aot r2r; do wrk_h1 "${PORT[$b]}" "$WARMUP" >/dev/null; done

declare -A SUM N CPU
for round in $(seq 1 "$ROUNDS"); do
  read -r d _ _ < <(wrk_h1 $B1 "$DURATION")
  SUM[direct]=$(echo "${SUM[direct]:-0} + $d" | bc -l)
  for b in aot r2r; do
    eval "pid=\$PID_$b"
    c0=$(cpu_ticks "$pid")
    read -r rps _ _ < <(wrk_h1 "${PORT[$b]}" "$DURATION")
    c1=$(cpu_ticks "$pid")
    us=$(echo "($c1 - $c0) * 1000000 / $HZ / ($rps * $DURATION)" | bc -l)
    SUM[$b]=$(echo "${SUM[$b]:-0} + $rps" | bc -l)
    CPU[$b]="${CPU[$b]:-}$(printf '%.1f' "$us") "
    printf '  round %s: %s %.0f req/s (direct %.0f), %.1f µs/req\n' "$round" "$b" "$rps" "$d" "$us" >&2
  done
done

echo "## Native AOT vs ReadyToRun ($(date -u '+%Y-%m-%d %H:%M UTC'))"
echo
echo "HTTP/1.1 keep-alive, wrk -c$CONNS, $ROUNDS alternating rounds of ${DURATION}s after ${WARMUP}s warm-up each; CPU per request per round."
echo
echo "| build | startup to /ready | idle RSS | req/s (mean) | vs direct | CPU µs/req per round | peak RSS |"
echo "|---|---|---|---|---|---|---|"
for b in aot r2r; do
  eval "pid=\$PID_$b"
  r=$(echo "${SUM[$b]} / $ROUNDS" | bc -l); d=$(echo "${SUM[direct]} / $ROUNDS" | bc -l)
  printf '| %s | %s ms | %s MB | %.0f | %.2f | %s| %s MB |\n' "$b" "${STARTUP[$b]}" "${IDLE[$b]}" "$r" "$(echo "$r / $d" | bc -l)" "${CPU[$b]}" "$(hwm_mb "$pid")"
done
