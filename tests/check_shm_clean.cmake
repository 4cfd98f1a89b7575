# SPDX-License-Identifier: Apache-2.0
# Fails if a test of this suite left anything in /dev/shm: every namespace of the suite is
# /dev/shm/bloccs.t-<RUN>-* (RUN is this build tree's, tests/CMakeLists.txt), so other bloccs
# users on the machine, and other suites, are not looked at.
if(NOT RUN)
  message(FATAL_ERROR "pass -DRUN=<the suite's run id>")
endif()
file(GLOB leftovers LIST_DIRECTORIES true "/dev/shm/bloccs.t-${RUN}-*" "/dev/shm/.bloccs.t-${RUN}-*")
if(leftovers)
  set(listed "")
  foreach(dir ${leftovers})
    file(GLOB inside LIST_DIRECTORIES true "${dir}/*" "${dir}/.*")
    list(APPEND listed "${dir}/ ${inside}")
  endforeach()
  list(JOIN listed "\n  " listed)
  message(FATAL_ERROR "tests left these in /dev/shm (a path skips its unlink):\n  ${listed}")
endif()
message(STATUS "/dev/shm holds no segments of this suite (t-${RUN}-*)")
