#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The fuzz targets (fuzz/): builds them with clang, libFuzzer and ASan+UBSan, and runs each for
# BLOCCS_FUZZ_SECONDS (default 10) from its corpus in fuzz/corpus, two at a time. Part of
# scripts/test.sh; run alone to fuzz longer:  BLOCCS_FUZZ_SECONDS=600 bash scripts/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
seconds=${BLOCCS_FUZZ_SECONDS:-10}
echo "=== building build-fuzz (clang, libFuzzer, ASan+UBSan) ==="
cmake -S . -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DBLOCCS_FUZZ=ON \
  -DBLOCCS_SANITIZE=address,undefined -DBLOCCS_WERROR=ON -DBLOCCS_FUZZ_SECONDS="$seconds" >/dev/null
cmake --build build-fuzz
echo "=== fuzzing, ${seconds} s per target ==="
status=0
ctest --test-dir build-fuzz -j2 --output-on-failure -V > build-fuzz/fuzz.log 2>&1 || status=$?
grep -E "runs in|tests passed|tests failed|property broken|ERROR:" build-fuzz/fuzz.log || true
if [ "$status" -ne 0 ]; then
  tail -80 build-fuzz/fuzz.log
  echo "a fuzz target failed: its input is in build-fuzz/fuzz/work/<target>/ (log: build-fuzz/fuzz.log)" >&2
  exit "$status"
fi
