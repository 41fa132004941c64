#!/usr/bin/env bash
# A second independent check, closed loop: Debian's mosquitto_pub / mosquitto_sub (C, libmosquitto)
# drive 16 pairs as fast as they can; Mosquitto's CPU comes from GNU time at its exit.
# Compare its "msg per CPU-s" with `npm run bench -- --broker mosquitto --scenario pairs`.
#   bash bench/validate/mosquitto-clients.sh [messages per pair, default 50000]
set -euo pipefail
N=${1:-50000}
PAIRS=16
DIR=$(mktemp -d)
PORT=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
{ cat "$ROOT/bench/brokers/mosquitto.conf"; echo "listener $PORT 127.0.0.1"; } > "$DIR/m.conf"
# 63-byte payloads: mosquitto_pub -l strips each line's newline.
node -e 'process.stdout.write(("x".repeat(63) + "\n").repeat(+process.argv[1]))' "$N" > "$DIR/lines"

taskset -c 0 /usr/bin/time -o "$DIR/time" -f '%U %S' mosquitto -c "$DIR/m.conf" &
TIME_PID=$!
sleep 0.5
BROKER=$(cat /proc/$TIME_PID/task/$TIME_PID/children)
SUBS=()
for i in $(seq -w 0 $((PAIRS - 1))); do
  taskset -c 1 timeout 120 mosquitto_sub -p "$PORT" -h 127.0.0.1 -t "bench/pair/$i" -C "$N" > /dev/null &
  SUBS+=($!)
done
sleep 0.5
START=$(date +%s.%N)
for i in $(seq -w 0 $((PAIRS - 1))); do
  taskset -c 1 timeout 120 mosquitto_pub -p "$PORT" -h 127.0.0.1 -t "bench/pair/$i" -l < "$DIR/lines" &
done
FAILED=0
for p in "${SUBS[@]}"; do wait "$p" || FAILED=$((FAILED + 1)); done
END=$(date +%s.%N)
kill -TERM "$BROKER"
wait "$TIME_PID" || true
read -r USER SYS < <(tail -1 "$DIR/time")
node -e '
const [n, pairs, start, end, user, sys, failed] = process.argv.slice(1).map(Number);
const total = n * pairs, secs = end - start, cpu = user + sys;
console.log(JSON.stringify({ tool: "mosquitto_pub -l / mosquitto_sub -C, 16 pairs, closed loop", messages: total, seconds: +secs.toFixed(2),
  deliveredPerSecond: Math.round(total / secs), mosquittoCpuSeconds: cpu, mosquittoCpuPct: Math.round(cpu / secs * 100),
  messagesPerCpuSecond: Math.round(total / cpu), subscribersTimedOut: failed }, null, 1));
' "$N" "$PAIRS" "$START" "$END" "$USER" "$SYS" "$FAILED"
rm -rf "$DIR"
