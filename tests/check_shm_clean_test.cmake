# SPDX-License-Identifier: Apache-2.0
# Tests check_shm_clean.cmake itself (item 22 of the reliability review): it once looked at all
# of /dev/shm and failed whenever another bloccs user ran beside the suite. Against a run id of
# its own (never the suite's, which shm_left_clean checks meanwhile) it plants namespaces and
# checks that the check ignores other users' and other runs', and catches the run's own, with
# temporary names (".bloccs...") and files inside the directory named.
if(NOT RUN OR NOT CHECK)
  message(FATAL_ERROR "pass -DRUN=<a run id not in use> -DCHECK=<path of check_shm_clean.cmake>")
endif()

set(others "/dev/shm/bloccs.someone-else" "/dev/shm/bloccs.t-${RUN}x-1"
           "/dev/shm/bloccs.t-x${RUN}-1" "/dev/shm/bloccs.t-${RUN}")
set(own_dir "/dev/shm/bloccs.t-${RUN}-4242-0")
set(own_temp "/dev/shm/.bloccs.t-${RUN}-4242-1")
set(failures "")

function(run_check out_result out_output)
  execute_process(COMMAND ${CMAKE_COMMAND} -DRUN=${RUN} -P ${CHECK}
                  RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE output)
  set(${out_result} ${result} PARENT_SCOPE)
  set(${out_output} "${output}" PARENT_SCOPE)
endfunction()

foreach(dir ${others})
  file(WRITE "${dir}/port.1.2.net.node.in" "planted")
endforeach()

# Other namespaces only: clean.
run_check(result output)
if(NOT result EQUAL 0)
  list(APPEND failures "failed on other users' and other runs' namespaces:\n${output}")
endif()

# The run's own namespace with a segment in it, and a temporary one: caught, each named.
file(WRITE "${own_dir}/port.1.2.net.node.in" "left behind")
file(MAKE_DIRECTORY "${own_temp}")
run_check(result output)
if(result EQUAL 0)
  list(APPEND failures "passed although ${own_dir} holds a segment")
endif()
foreach(name "bloccs.t-${RUN}-4242-0" "port.1.2.net.node.in" ".bloccs.t-${RUN}-4242-1")
  string(FIND "${output}" "${name}" at)
  if(at EQUAL -1)
    list(APPEND failures "its report does not name ${name}:\n${output}")
  endif()
endforeach()
foreach(dir ${others})
  string(FIND "${output}" "${dir}/" at)
  if(NOT at EQUAL -1)
    list(APPEND failures "its report names ${dir}, which is not the run's:\n${output}")
  endif()
endforeach()

file(REMOVE_RECURSE ${others} "${own_dir}" "${own_temp}")
if(failures)
  list(JOIN failures "\n  " listed)
  message(FATAL_ERROR "check_shm_clean.cmake:\n  ${listed}")
endif()
message(STATUS "check_shm_clean.cmake ignores other namespaces and catches the run's own")
