// SPDX-License-Identifier: Apache-2.0
// The launcher's supervisor: starts every node of a pipeline as a process, restarts the ones
// that crash, and stops the graph from the sources down.
//
//   start     each node gets a shared block for its counters (it outlives restarts), then the
//             nodes start sinks first, each once the nodes it feeds have their ports up, so that
//             no source pushes into a port that is not there yet.
//   crash     a node that dies by a signal or exits non-zero while not asked to stop is started
//             again after the pipeline's restart backoff; the new process takes over its ports'
//             keys and the messages queued in them (see bloccs/port.hpp, "take-over"). After
//             max_restarts the pipeline is stopped and the run fails. A node that ends for good
//             is marked `over` in its block, so that the nodes feeding it stop waiting for it.
//   stop      when every source has finished (exited 0), or on SIGINT/SIGTERM, the nodes are
//             asked to stop (SIGTERM) one at a time, sources first: each drains its ports and its
//             retries before it exits, so what is queued reaches the end. The drain limit is the
//             budget of the whole stop, not of each node: a node still running at its end (plus
//             2 s) is killed. A signal also ends every restart, pending or later. A second
//             SIGINT kills every node at once.
//   env       each node gets $BLOCCS_PIPELINE, $BLOCCS_NODE, $BLOCCS_NAMESPACE,
//             $BLOCCS_DRAIN_LIMIT_MS and $BLOCCS_RUN_ID (the same for every node of the run).
//   end       the dead-letter port is drained and stopped, and every segment of the run is
//             removed (ports of dead owners included).
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bloccs/node.hpp"
#include "shm/segment.hpp"
#include "tools/bloccs/dead_letters.hpp"
#include "tools/bloccs/status.hpp"

namespace bloccs::launcher {

struct RunOptions {
  std::string ns;  // resolved namespace
  std::string dead_letter_file;
  std::chrono::milliseconds status_interval{1000};  // 0: no live status
  std::chrono::milliseconds drain_limit{30'000};    // for the whole stop
  bool quiet = false;                               // no status, no summary (errors only)
  std::string summary_json;                         // write the final snapshot here
  // Called with a fresh snapshot every 250 ms while the run lasts, and with the last one at its
  // end (the metrics endpoint publishes the nodes' counters from it).
  std::function<void(const Snapshot&)> observer;
  // A placed pipeline's wires as the engine sees them (wire_watch.hpp): the last look, or with
  // `fresh` a new one (the summary's).
  std::function<std::vector<WireView>(bool fresh)> wires;
};

// Blocks the signals Supervisor::run takes with sigtimedwait (SIGINT, SIGTERM, SIGCHLD) in the
// calling thread. Call it before starting any thread of the launcher (the metrics server, the
// wire watch, a client library's): threads inherit the mask, and a thread that left SIGINT
// unblocked would have it kill the launcher instead of stopping the pipeline.
void block_launcher_signals();

class Supervisor {
 public:
  Supervisor(PipelineSpec pipeline, RunOptions options);
  ~Supervisor();

  // Runs the pipeline to its end: 0 if every node finished and (for a conserved pipeline) the
  // ledger adds up; 1 otherwise.
  int run();

 private:
  struct Child;
  Status prepare();
  bool spawn(Child& c);
  void reap();
  void restart_due();
  void stop_next();
  void begin_stop();
  Snapshot snapshot() const;
  void cleanup();
  void say(const std::string& line) const;
  bool all_sources_done() const;
  bool all_done() const;

  PipelineSpec pipeline_;
  RunOptions options_;
  std::vector<std::unique_ptr<Child>> children_;  // pipeline file order
  std::vector<Child*> stop_order_;                 // sources first
  std::unique_ptr<DeadLetters> dead_letters_;
  enum class Phase { running, stopping, killing } phase_ = Phase::running;
  bool signalled_ = false;       // SIGINT or SIGTERM asked for the stop: nothing is restarted
  Clock::time_point stop_by_{};  // once stopping: when every node must be done (drain limit)
  bool failed_ = false;
  Clock::time_point started_;
  // This run's id, random, in every node's $BLOCCS_RUN_ID: the bridges' message ids carry it,
  // so that a later run's messages are never taken for this one's duplicates.
  std::string run_id_;
};

}  // namespace bloccs::launcher
