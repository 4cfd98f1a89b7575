#!/usr/bin/env bash
# Quick start, first command: install what is missing, build, run the port demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target bloccs-demo
./build/examples/bloccs-demo "$@"
