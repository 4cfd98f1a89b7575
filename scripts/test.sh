#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Quick start, second command (and CI): build and run the whole test suite:
#   1. ThreadSanitizer (the lock-free code's memory orders, every process's threads), half the
#      message counts; not the tests whose processes run no threads of ours to watch;
#   2. AddressSanitizer + UndefinedBehaviorSanitizer (clang), every C++ test but the benchmark
#      suite's at full size;
#   3. the fuzz targets (clang, libFuzzer, ASan+UBSan), 10 s each from their corpora;
#   4. optimised, warnings as errors: a short benchmark run, an example project built against
#      the installed package, and the tests only this build runs (the Python binding's suite,
#      the data path benchmark beside iceoryx, the benchmark suite's own tests). Its other C++
#      test programs are not built (BLOCCS_TEST_PROGRAMS=optimised; the sanitizer builds ran
#      them), which keeps CI near its 20 minutes on two cores;
#      `cmake -B build -DBLOCCS_TEST_PROGRAMS=all` brings them back.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

build() {  # build dir, extra cmake args...
  local dir=$1
  shift
  echo "=== building $dir ==="
  cmake -S . -B "$dir" -G Ninja -DBLOCCS_WERROR=ON "$@" >/dev/null
  cmake --build "$dir"
}

run_suite() {  # build dir, scale, extra cmake args...
  local dir=$1 scale=$2
  shift 2
  build "$dir" "$@"
  echo "=== testing $dir (BLOCCS_TEST_SCALE=$scale) ==="
  BLOCCS_TEST_SCALE=$scale ctest --test-dir "$dir" -j2 --output-on-failure
}

run_suite build-tsan 0.5 -DBLOCCS_SANITIZE=thread -DBLOCCS_BENCHMARKS=OFF
# clang: with both sanitizers it compiles a file in 60% of GCC's time (7.7 s against 12.9 s for
# tests/node_test.cpp), and this build is the longest.
run_suite build-asan 1 -DBLOCCS_SANITIZE=address,undefined -DBLOCCS_BENCHMARKS=OFF \
  -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang
bash scripts/fuzz.sh
# A short benchmark run keeps the driver working (seconds); it prints the ratios and the
# targets and never fails on them: this machine is noisy. The full suite is scripts/bench.sh.
build build -DCMAKE_BUILD_TYPE=Release -DBLOCCS_TEST_PROGRAMS=optimised
./build/benchmarks/suite/bloccs-bench --quick --out build/bench-quick | tail -12
# Another project builds against the installed package, not this build tree.
echo "=== installed package: examples/installed ==="
cmake --install build --prefix "$PWD/build/install" >/dev/null
cmake -S examples/installed -B build/installed-example -G Ninja \
  -DCMAKE_PREFIX_PATH="$PWD/build/install" >/dev/null
cmake --build build/installed-example
bash scripts/check-installed-headers.sh build/install
# A project that wants ports only needs nothing of toml++ (the pipeline component does).
if grep -q tomlplusplus build/install/lib/cmake/bloccs/bloccsTargets*.cmake; then
  echo "FAIL: bloccs::bloccs depends on toml++"; exit 1
fi
# A program built with nothing but pkg-config (its rpath: the prefix is not a system one).
pc() { PKG_CONFIG_PATH="$PWD/build/install/lib/pkgconfig" pkg-config "$@"; }
g++ examples/installed/pusher.cpp $(pc --cflags --libs bloccs) \
  -Wl,-rpath,"$(pc --variable=libdir bloccs)" -o build/installed-example/pusher-pkg-config
test "$(./build/install/bin/shmctl --version)" = "shmctl $(pc --modversion bloccs)"
test "$(./build/install/bin/bloccs --version)" = "bloccs $(pc --modversion bloccs)"
MANPATH="$PWD/build/install/share/man" man -w shmctl | grep -q "build/install/share/man/man1/shmctl.1"
(
  export BLOCCS_NAMESPACE="example-$$"
  for pusher in bloccs-example-pusher bloccs-example-pusher-static pusher-pkg-config; do
    ./build/installed-example/bloccs-example-owner &
    owner=$!
    ./build/installed-example/$pusher
    wait "$owner"
  done
  # The C API from a C program (examples/installed/c_app.c): an owner and its forked pusher.
  ./build/installed-example/bloccs-example-c
  # The Python package, installed into the prefix's site directory, with Debian's python3.
  PYTHONPATH="$(echo "$PWD"/build/install/lib/python3*/dist-packages)" /usr/bin/python3 \
    examples/installed/hello.py
  # A pipeline of the installed package's node, run by the installed launcher.
  ./build/install/bin/bloccs run examples/installed/hello.toml \
    --program-dir build/installed-example --status-interval 0 | tee build/installed-example/hello.out
  test "$(grep -c '^printer: "hello' build/installed-example/hello.out)" = 4
)
run_suite build 1 -DCMAKE_BUILD_TYPE=Release -DBLOCCS_TEST_PROGRAMS=optimised
