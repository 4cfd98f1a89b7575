#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the Debian 12 packages bloccs builds with, if any is missing (apt-get update once).
set -euo pipefail

packages=(
  g++ cmake ninja-build          # compiler and build
  libboost-dev                   # Boost.Interprocess: named shared-memory segments
  libgtest-dev                   # GoogleTest: the test suite
  libbenchmark-dev               # Google Benchmark: the latency benchmarks
  libcli11-dev                   # CLI11: command-line parsing for the demo and tools
  nlohmann-json3-dev             # nlohmann-json: shmctl's --json output, the benchmarks' results.json
  gnuplot-nox                    # gnuplot: the benchmark plots (PNG)
  libtomlplusplus-dev            # toml++: pipeline files (bloccs run pipeline.toml)
  clang libclang-rt-14-dev       # clang and libFuzzer: the fuzz targets (fuzz/, scripts/fuzz.sh)
  libzmq3-dev pkg-config         # ZeroMQ: a peer in the benchmarks (bloccs-bench's zmq-ipc);
                                 # pkg-config also builds the example that uses bloccs.pc
  man-db                         # man: CI checks that `man shmctl` finds the installed page
  python3-dev pybind11-dev       # the Python binding (bindings/python)
  python3-pytest python3-numpy   # its tests (tests/python): pytest, and numpy arrays in and out
  iceoryx libiceoryx-posh-dev    # iceoryx and its RouDi: the zero-copy peer (data-path bench)
  tmux                           # the test that drives `shmctl top` in a terminal
  libcpp-httplib-dev             # cpp-httplib: the metrics endpoint (shmctl metrics, bloccs run)
  prometheus                     # the test that scrapes it (and promtool, which checks it)
  libnats-dev                    # the NATS C client: wires between hosts on JetStream (bridge/)
  nats-server                    # the JetStream servers the bridge tests start on loopback
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
