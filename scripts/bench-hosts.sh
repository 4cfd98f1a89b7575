#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A wire between hosts, on loopback: a two-host pipeline (a generator on host a, a sink that
# does no work on host b, each a `bloccs run --host` of its own) through one nats-server, beside
# plain NATS (core publish/subscribe) and JetStream used as a bridge uses it, with the same
# message size, as ratios; and the round trip over two wires (a ping node on a, an echo on b)
# beside a core request/reply and JetStream alone carrying the same way there and back.
# Writes build/bench-hosts/results.md.
#   bash scripts/bench-hosts.sh            # BLOCCS_BENCH_MESSAGES=50000 by default
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target bloccs-cli bloccs-demo-generator bloccs-demo-sink \
  bloccs-bench-plain-nats bloccs-bench-wire-ping >/dev/null
messages=${BLOCCS_BENCH_MESSAGES:-50000}
out=build/bench-hosts
mkdir -p "$out"
tmp=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="nats://127.0.0.1:$port"
nats-server -a 127.0.0.1 -p "$port" -js -sd "$tmp/js" >"$tmp/nats.log" 2>&1 &
nats=$!
trap 'kill $nats 2>/dev/null; wait $nats 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done

{
  echo "# A wire between hosts, on loopback ($(date -u +%Y-%m-%dT%H:%MZ), $messages messages)"
  echo
  echo "| bytes | bloccs wire msgs/s | JetStream publish+ack msgs/s | JetStream pull+ack msgs/s | core pub/sub msgs/s | wire / JetStream publish | wire / core | JetStream publish ack p50 | core request/reply p50 |"
  echo "|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
} >"$out/results.md"

for bytes in 64 4096; do
  plain=$(./build/benchmarks/hosts/bloccs-bench-plain-nats --nats "$url" --messages "$messages" --bytes "$bytes")
  cat >"$tmp/wire.toml" <<TOML
[pipeline]
network = "bench$bytes"
[hosts.a]
nats = "$url"
[hosts.b]
nats = "$url"
[nodes.generator]
program = "bloccs-demo-generator"
host = "a"
args = ["--messages", "$messages", "--bytes", "$bytes"]
outputs.out = "sink.in"
[nodes.sink]
program = "bloccs-demo-sink"
host = "b"
args = ["--work-us", "0"]
inputs.in = { buffer = 1024, max_payload = 8192, typical_payload = $bytes }
TOML
  ./build/tools/bloccs run "$tmp/wire.toml" --host b --program-dir build/examples/demo \
    --status-interval 0 >"$tmp/b.log" 2>&1 &
  b=$!
  ./build/tools/bloccs run "$tmp/wire.toml" --host a --program-dir build/examples/demo \
    --status-interval 0 >"$tmp/a.log" 2>&1
  wait $b
  # The generator's time: it pushes at the wire's pace (its port and the stream are bounded).
  secs=$(sed -n 's/.*emitted [0-9]* messages in \([0-9.]*\) s.*/\1/p' "$tmp/a.log")
  python3 - "$bytes" "$messages" "$secs" "$plain" >>"$out/results.md" <<'PY'
import json, sys
bytes_, n, secs, plain = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), json.loads(sys.argv[4])
wire = n / secs
pub, pull, core = plain["jetstream_publish_msgs_per_s"], plain["jetstream_pull_ack_msgs_per_s"], plain["core_pubsub_msgs_per_s"]
us = lambda ns: f"{ns / 1000:.0f} µs"
print(f"| {bytes_} | {wire:,.0f} | {pub:,.0f} | {pull:,.0f} | {core:,.0f} | {wire / pub:.2f}x | {wire / core:.3f}x | "
      f"{us(plain['jetstream_publish_ack_rtt_p50_ns'])} | {us(plain['core_request_rtt_p50_ns'])} |")
PY
done
# The round trip: ping on a, echo on b, one message in flight, over a wire each way.
rtt_count=${BLOCCS_BENCH_ROUND_TRIPS:-3000}
{
  echo
  echo "Round trips ($rtt_count each, one in flight), µs:"
  echo
  echo "| bytes | bloccs wire p50 | p99 | p99.9 | max | JetStream alone p50 | p99 | core request/reply p50 | p99 | wire / JetStream alone (p50) | wire / core (p50) |"
  echo "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
} >>"$out/results.md"
for bytes in 64 4096; do
  plain=$(./build/benchmarks/hosts/bloccs-bench-plain-nats --nats "$url" --messages 2000 --bytes "$bytes")
  cat >"$tmp/rtt.toml" <<TOML
[pipeline]
network = "rtt$bytes"
[hosts.a]
nats = "$url"
[hosts.b]
nats = "$url"
[nodes.ping]
program = "bloccs-bench-wire-ping"
host = "a"
args = ["ping", "--count", "$rtt_count", "--bytes", "$bytes", "--out", "$tmp/rtt.json"]
inputs.in = { buffer = "unbounded", max_payload = 8192 }
outputs.out = "echo.in"
[nodes.echo]
program = "bloccs-bench-wire-ping"
host = "b"
args = ["echo"]
inputs.in = { buffer = 64, max_payload = 8192 }
outputs.out = "ping.in"
TOML
  rm -f "$tmp/rtt.json"
  ./build/tools/bloccs run "$tmp/rtt.toml" --host b --program-dir build/benchmarks/hosts \
    --status-interval 0 >"$tmp/rb.log" 2>&1 &
  rb=$!
  ./build/tools/bloccs run "$tmp/rtt.toml" --host a --program-dir build/benchmarks/hosts \
    --status-interval 0 >"$tmp/ra.log" 2>&1 &
  ra=$!
  # Ping stops itself after its round trips; the echo's side and the wires run until stopped.
  for _ in $(seq 1200); do [ -s "$tmp/rtt.json" ] && break; sleep 0.1; done
  kill -INT $ra $rb 2>/dev/null || true
  wait $ra $rb || true
  [ -s "$tmp/rtt.json" ] || { cat "$tmp/ra.log" "$tmp/rb.log"; echo "the round trips did not finish"; exit 1; }
  python3 - "$bytes" "$(cat "$tmp/rtt.json")" "$plain" >>"$out/results.md" <<'PY'
import json, sys
bytes_, wire, plain = int(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
us = lambda ns: f"{ns / 1000:,.0f}"
print(f"| {bytes_} | {us(wire['p50_ns'])} | {us(wire['p99_ns'])} | {us(wire['p999_ns'])} | {us(wire['max_ns'])} | "
      f"{us(plain['jetstream_rtt_p50_ns'])} | {us(plain['jetstream_rtt_p99_ns'])} | "
      f"{us(plain['core_rtt_p50_ns'])} | {us(plain['core_rtt_p99_ns'])} | "
      f"{wire['p50_ns'] / plain['jetstream_rtt_p50_ns']:.2f}x | {wire['p50_ns'] / plain['core_rtt_p50_ns']:.1f}x |")
PY
done
cat "$out/results.md"
