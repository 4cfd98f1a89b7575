# SPDX-License-Identifier: Apache-2.0
# Runs one fuzz target for SECONDS from its corpus (CORPUS, kept in the repo, never written)
# with new inputs in WORK, and prints how many inputs it ran. Fails on any crash, leak, timeout
# or sanitizer report (libFuzzer exits non-zero and leaves crash-*, leak-* or timeout-* in
# WORK), and if the target left its namespace in /dev/shm.
foreach(v FUZZER CORPUS WORK SECONDS MAX_LEN NAMESPACE)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "run_fuzzer.cmake needs -D${v}=...")
  endif()
endforeach()
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/new)
execute_process(
  COMMAND ${CMAKE_COMMAND} -E env BLOCCS_FUZZ_NAMESPACE=${NAMESPACE}
          ${FUZZER} -max_total_time=${SECONDS} -max_len=${MAX_LEN} -timeout=10
          -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=${WORK}/
          ${WORK}/new ${CORPUS}
  WORKING_DIRECTORY ${WORK}
  RESULT_VARIABLE result
  OUTPUT_VARIABLE out ERROR_VARIABLE out)
string(REGEX MATCH "stat::number_of_executed_units: *([0-9]+)" runs "${out}")
set(runs ${CMAKE_MATCH_1})
string(REGEX MATCH "DONE +cov: *[0-9]+" cov_line "${out}")
string(REPLACE "DONE " "" cov_line "${cov_line}")
file(GLOB new_inputs ${WORK}/new/*)
list(LENGTH new_inputs new_count)
if(EXISTS /dev/shm/bloccs.${NAMESPACE})
  file(REMOVE_RECURSE /dev/shm/bloccs.${NAMESPACE})
  set(leftover TRUE)
endif()
if(NOT result EQUAL 0)
  file(GLOB artifacts ${WORK}/crash-* ${WORK}/leak-* ${WORK}/timeout-* ${WORK}/oom-*)
  string(LENGTH "${out}" len)
  math(EXPR from "${len} - 6000")
  if(from LESS 0)
    set(from 0)
  endif()
  string(SUBSTRING "${out}" ${from} -1 tail)
  message(FATAL_ERROR "${FUZZER} failed (${result}) after ${runs} runs; the input that broke "
                      "it: ${artifacts}\n(replay it: ${FUZZER} <file>)\n${tail}")
endif()
if(leftover)
  message(FATAL_ERROR "${FUZZER} left /dev/shm/bloccs.${NAMESPACE} behind (removed now)")
endif()
message(STATUS "${FUZZER}: ${runs} runs in ${SECONDS} s, ${cov_line}, ${new_count} new inputs "
               "(not kept: merge them into ${CORPUS} with -merge=1 if coverage grew)")
