# Fails if any test left a segment behind: every test namespace starts with "t-".
file(GLOB leftovers "/dev/shm/bloccs.t-*")
if(leftovers)
  list(JOIN leftovers "\n  " listed)
  message(FATAL_ERROR "tests left these segments in /dev/shm (a path skips its unlink):\n  ${listed}")
endif()
message(STATUS "/dev/shm holds no test segments")
