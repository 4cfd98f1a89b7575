#!/usr/bin/env bash
# Quick start, first command: install what is missing, build, run the port demo, and look at it
# with shmctl while it runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target bloccs-demo shmctl
ns="demo-$$"
./build/examples/bloccs-demo --namespace "$ns" "$@" &
demo=$!
sleep 0.3
echo "--- shmctl ls, while the demo runs:"
./build/tools/shmctl --namespace "$ns" ls || true
echo "---"
wait "$demo"
