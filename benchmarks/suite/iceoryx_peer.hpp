// SPDX-License-Identifier: Apache-2.0
// iceoryx, the zero-copy peer (Debian iceoryx + libiceoryx-posh-dev 2.0.3), for
// bloccs-bench-data-path's round trips: its own daemon, RouDi, started for the run and stopped
// after, and round trips through untyped publishers and subscribers with loans, the way its
// users pass big messages between two processes.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <sys/types.h>

namespace bloccs::bench {

// An iox-roudi process with a memory config for messages up to 4 MiB, its config and log in a
// temporary directory of its own. Stopped (SIGINT: it removes its /dev/shm segments) and the
// directory removed when this goes, in the process that started it only (a forked child that
// leaves with exit() must not stop it). RouDi is one per machine: start() fails with a message
// if another one runs.
class RouDi {
 public:
  // "" on success, else what went wrong and what to do.
  std::string start();
  ~RouDi();
  bool running() const { return pid_ > 0; }

 private:
  pid_t pid_ = -1;
  pid_t starter_ = -1;
  std::string dir_;
};

// `n` round trips of a `size`-byte message (after a warm-up): a process pinned to CPU 0 loans a
// chunk, writes every byte, publishes; one pinned to CPU 1 takes it, reads every byte in place,
// releases it and answers with a loaned 8-byte chunk. Both busy-poll take(), as bloccs's
// consumers spin. Each call uses a service of its own (`index`) and two fresh processes (a
// process may init the iceoryx runtime once). The samples in ns, or empty with `error` set.
std::vector<double> iceoryx_round_trips(std::size_t size, std::size_t n, unsigned index,
                                        std::string& error);

// Streaming for about `seconds`: one process (CPU 1) loans `size`-byte chunks, writes every
// byte and publishes, as fast as it can (waiting, never dropping, when the subscriber's queue is
// full); the other (CPU 0) takes each, reads every byte in place and releases it. Messages per
// second at the subscriber, or 0 with `error` set.
double iceoryx_stream(std::size_t size, double seconds, unsigned index, std::string& error);

}  // namespace bloccs::bench
