#!/usr/bin/env bash
# What metrics and logging at their defaults cost the message path: saturated QoS 0 pairs and
# QoS 1 pairs, msg per broker CPU-second, with everything on as shipped ("on": --log-level info,
# JSON to stdout, /metrics with its latency timers, scraped once a second as Prometheus would)
# against everything off ("off": --log-level silent --metrics false, no HTTP listener).
# Rounds alternate the order (on/off, then off/on) so that a drift of the machine falls on
# both; the two modes' CSVs are then compared cell by cell (compare.ts: medians, change, noise).
#
#   npm run build && bash bench/obs-cost.sh              # 6 rounds x 2 modes x 2 scenarios
#   ROUNDS=10 DURATION=5 WORKERS=1 bash bench/obs-cost.sh
#
# The target: "on" at most 2% below "off" in msg/s per core. Counters in shared memory are not
# switched off by any flag ($SYS reads them); they are part of both modes.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-6}
DURATION=${DURATION:-4}
WORKERS=${WORKERS:-1}
SCENARIOS=${SCENARIOS:-pairs,qos1-pairs}
HTTP_PORT=${HTTP_PORT:-9883}
OUT="bench/results/obs-cost-$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
ON_ARGS="--durability none --http-port $HTTP_PORT"
OFF_ARGS="--durability none --log-level silent --metrics false --http-port -1"

scraper=""
stop_scraper() { if [ -n "$scraper" ]; then kill "$scraper" 2>/dev/null || true; wait "$scraper" 2>/dev/null || true; scraper=""; fi; }
trap stop_scraper EXIT

run_mode() { # mode round
  local mode=$1 round=$2 args
  if [ "$mode" = on ]; then
    args=$ON_ARGS
    # Prometheus' side: one scrape a second while the broker runs (the main thread's cost).
    ( while true; do curl -s -o /dev/null "http://127.0.0.1:$HTTP_PORT/metrics" || true; sleep 1; done ) &
    scraper=$!
  else
    args=$OFF_ARGS
  fi
  node dist/bench/run.js --broker fleetmq --workers "$WORKERS" --scenario "$SCENARIOS" --repeat 1 \
    --duration "$DURATION" --label "obs-$mode" --out "$OUT/$mode-$round" --fleetmq-args "$args"
  stop_scraper
}

for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then run_mode on "$r"; run_mode off "$r"; else run_mode off "$r"; run_mode on "$r"; fi
done

# One CSV per mode (the header once), then the comparison: off is the base, on the candidate.
for mode in on off; do
  files=("$OUT"/"$mode"-*/*.csv)
  { head -n 1 "${files[0]}"; for f in "${files[@]}"; do tail -n +2 "$f"; done; } > "$OUT/obs-$mode.csv"
done
node dist/bench/compare.js "$OUT/obs-off.csv" "$OUT/obs-on.csv" | tee "$OUT/compare.md"
