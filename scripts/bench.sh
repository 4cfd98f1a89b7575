#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The benchmarks, one command: installs what is missing, builds optimised, runs the
# cross-process suite (bloccs-bench, about 5 minutes on 2 cores) and the in-process
# micro-benchmarks, and leaves everything in bench-results/:
#   results.json  every figure (docs/BENCHMARKS.md describes its shape)
#   results.md    every figure beside the floor and the best peer, and the targets
#   rtt.png, throughput.png, backpressure.png, rtt-by-size.png (log-log, 64 B to 4 MiB)
#   data-path.txt loans, copies and their floors from 64 B to 4 MiB beside iceoryx (its RouDi
#                 started and stopped by the run); batched streaming
#   micro-*.json  Google Benchmark's output for push/pop, the port API and the registry
#   python.txt    what a message costs through the Python binding
# Arguments go to bloccs-bench, e.g. --quick (seconds) or --only floor-spin,bloccs-spsc,pipe.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-bench --target bloccs-bench bloccs-bench-push-pop bloccs-bench-port-push \
  bloccs-bench-registry bloccs-bench-data-path
out=bench-results
mkdir -p "$out"
./build-bench/benchmarks/suite/bloccs-bench --out "$out" "$@"
echo
echo "=== the data path: loans, copies, batches (bloccs-bench-data-path) ==="
./build-bench/benchmarks/suite/bloccs-bench-data-path --iceoryx --plot "$out" | tee "$out/data-path.txt"
(cd "$out" && gnuplot rtt-by-size.gp)
echo
echo "=== in-process micro-benchmarks (Google Benchmark) ==="
for micro in push-pop port-push registry; do
  ./build-bench/benchmarks/bloccs-bench-$micro --benchmark_min_time=0.2 \
    --benchmark_out="$out/micro-$micro.json" --benchmark_out_format=json 2>/dev/null
done
echo
echo "=== the Python binding: 64-byte push + receive, and a round trip (benchmarks/python) ==="
cmake --build build-bench --target bloccs_python
PYTHONPATH=build-bench/python /usr/bin/python3 benchmarks/python/round_trip.py | tee "$out/python.txt"
