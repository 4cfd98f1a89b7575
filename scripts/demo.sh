#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Quick start, first command: install what is missing, build, and run the pipeline demo:
# a generator -> a transform that fails a fifth of its attempts -> a slow sink, started and
# supervised by `bloccs run`, with a live status block and a summary that must add up.
# Arguments go to `bloccs run` (e.g. --status-interval 250, --dead-letters dead.jsonl).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target bloccs-cli bloccs-demo-generator bloccs-demo-transform \
  bloccs-demo-sink shmctl
./build/tools/bloccs run examples/demo/demo.toml --program-dir build/examples/demo \
  --status-interval 500 "$@"
