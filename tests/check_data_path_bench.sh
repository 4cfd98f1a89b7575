#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bloccs-bench-data-path --quick --plot DIR as a user runs it: every peer is measured beside
# bloccs at every size it can carry, a size one cannot carry says why, the plot's data holds
# every transport at every size, and nothing is left behind.
set -uo pipefail
bench="$1"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
out=$("$bench" --quick --plot "$dir" 2>&1)
rc=$?
echo "$out"
[ $rc -eq 0 ] || { echo "FAIL: the benchmark exited with $rc"; exit 1; }
fail() { echo "FAIL: $*"; exit 1; }
peers="boost-mq posix-mq uds pipe zmq-ipc"
# The peers' round-trip table: a row per size, a figure or '-' per peer; up to 4 KiB every
# peer carries the message.
table=$(sed -n "/the peers' round trips/,/^$/p" <<<"$out")
for size in 64 512 4096 65536 1048576 4194304; do
  row=$(grep -E "^ +$size " <<<"$table") || fail "no peers' round-trip row for $size bytes"
  cells=$(awk '{print NF}' <<<"$row")
  [ "$cells" -ge 6 ] || fail "the $size-byte row has $cells cells: $row"
  if [ "$size" -le 4096 ] && grep -q ' - ' <<<"$row "; then fail "a peer did not carry $size bytes: $row"; fi
done
# Each peer that has a '-' says why, once.
header=$(grep -E '^ +size +boost-mq' <<<"$table")
col=2
for peer in $peers; do
  if awk -v c=$col 'NR>2 && $c=="-" {found=1} END {exit !found}' <<<"$table"; then
    grep -qE "^  $peer, where '-': .+" <<<"$out" || fail "$peer misses a size without saying why"
  fi
  col=$((col + 1))
done
# Streams: every peer at 64 B and from 512 B on.
for peer in $peers; do
  n=$(grep -cE " $peer ([0-9.]+|-)" <<<"$(sed -n '/^streaming 64 B/,$p' <<<"$out")")
  [ "$n" -ge 6 ] || fail "$peer streams at $n of 6 sizes"
done
# The streaming target is judged against the system-call peers, boost-mq printed apart.
grep -qE "target bloccs-spsc-batch >= 10x the best system-call peer: (PASS|MISS) \([0-9.]+x; boost-mq" <<<"$out" ||
  fail "no batched streaming target against the system-call peers"
# The 1-4 MiB summary agrees with the lines it sums up.
large=$(sed -n '/^ 1048576 /,/^$/p' <<<"$out" | grep 'target')
if grep -q MISS <<<"$large"; then
  grep -q '1-4 MiB loan targets: not all met' <<<"$out" || fail "a 1-4 MiB target missed, the summary says otherwise"
else
  grep -q '1-4 MiB loan targets: all met' <<<"$out" || fail "every 1-4 MiB target met, the summary says otherwise"
fi
# The plot's data: 6 sizes, 10 columns, NaN only where not measured.
dat="$dir/rtt-by-size.dat"
[ -s "$dat" ] || fail "no $dat"
rows=$(grep -vc '^#' "$dat")
[ "$rows" -eq 6 ] || fail "$dat has $rows rows, not 6"
awk '!/^#/ && NF != 10 {exit 1}' "$dat" || fail "a row of $dat has not 10 columns"
[ -s "$dir/rtt-by-size.gp" ] || fail "no gnuplot script"
echo "ok: every peer beside bloccs at every size it carries, and the plot's data"
