#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bloccs-bench-data-path --quick --iceoryx as a user runs it: the round trips and streams beside
# iceoryx are measured and printed, and RouDi, started and stopped by the run, leaves nothing behind.
# Exit 77 (ctest: skipped) where it cannot run here: another RouDi is up, or /dev/shm is too
# small for RouDi's segments.
set -uo pipefail
bench="$1"
if [ -e /dev/shm/iceoryx_mgmt ]; then
  echo "skipped: a RouDi already runs on this machine (/dev/shm/iceoryx_mgmt exists)"
  exit 77
fi
free_kb=$(df -k --output=avail /dev/shm | tail -1)
if [ "$free_kb" -lt 150000 ]; then
  echo "skipped: /dev/shm has ${free_kb} KB free; RouDi's segments take about 110 MB"
  exit 77
fi
before=$(ls -d /tmp/bloccs-bench-iceoryx-* 2>/dev/null | sort)  # other runs' are not ours
out=$("$bench" --quick --iceoryx 2>&1)
rc=$?
echo "$out"
[ $rc -eq 0 ] || { echo "FAIL: the benchmark exited with $rc"; exit 1; }
for want in "iceoryx-loan" "target 64 B p50 >= 8x below iceoryx's" \
            "target loan no slower than iceoryx's loan"; do
  grep -qF "$want" <<<"$out" || { echo "FAIL: no '$want' in the output"; exit 1; }
done
# Every size has an iceoryx figure: a p50 cell and a loan/iceoryx ratio on each size's row.
rows=$(grep -cE '^ +(64|512|4096|65536|1048576|4194304) .*[0-9.]+x +[0-9]+ / .*[0-9.]+x$' <<<"$out")
[ "$rows" -eq 6 ] || { echo "FAIL: $rows of 6 sizes have an iceoryx figure"; exit 1; }
# And its streams: 64 B and each size from 512 B to 1 MiB.
streams=$(grep -cE 'iceoryx-loan [0-9.]+ \((bloccs-spsc|loan) [0-9.]+x' <<<"$out")
[ "$streams" -eq 5 ] || { echo "FAIL: $streams of 5 streams have an iceoryx figure"; exit 1; }
after=$(ls -d /tmp/bloccs-bench-iceoryx-* 2>/dev/null | sort)
left="$(ls /dev/shm/iceoryx_mgmt /tmp/roudi.lock 2>/dev/null) $(comm -13 <(echo "$before") <(echo "$after"))"
left=$(echo $left)
[ -z "$left" ] || { echo "FAIL: RouDi left behind: $left"; exit 1; }
echo "ok: iceoryx measured at every size, nothing left behind"
