// SPDX-License-Identifier: Apache-2.0
// bloccs-logs-read: the pipeline's source. Emits each line of a log file on output `lines`
// (meta "line": its number; "cut": its full length, when it was longer than kMaxLineBytes and
// was cut), parking while the parse node's port is full, then exits 0. Stops early when the
// launcher stops it.
//
// A restart after a crash resumes after the lines already sent: the node's counters live in the
// launcher's shared block and survive the crash. A line whose push completed just before the
// crash, but not its count, is sent again: at least once, at most one line twice.
#include <cstdio>
#include <string>

#include "options.hpp"

#include "bloccs/node.hpp"
#include "line_source.hpp"

int main(int argc, char** argv) {
  using namespace bloccs;
  std::string file;
  if (int rc = examples::parse_options(
          argc, argv, "bloccs logs example: the source node, one message per line of a log file",
          {{"--in", "the log file (a relative path is taken from the working directory)", &file,
            true}});
      rc >= 0)
    return rc;

  auto node = Node::from_environment();
  if (!node) return Node::fail(node.error());
  const OutputSpec* out = node->spec().output("lines");
  if (!out || out->targets.empty())
    return Node::fail({Errc::bad_config,
                       "output 'lines' is not wired: add outputs.lines = "
                       "\"parse.in\" to this node in the pipeline file"});
  // Every line goes to each target once, and counts once per target.
  const std::uint64_t resume_after = node->counters().emitted / out->targets.size();
  if (resume_after > 0)
    std::fprintf(stderr, "read: restarted; resuming after line %llu\n",
                 static_cast<unsigned long long>(resume_after));

  const auto start = Clock::now();
  std::uint64_t sent = 0;
  Status failed;
  Status read = logs::for_each_line(file, [&](const logs::Line& line) {
    if (node->stopping()) return false;
    if (line.number <= resume_after) return true;
    Meta meta;
    meta.set("line", std::to_string(line.number));
    if (line.full_length != line.text.size()) meta.set("cut", std::to_string(line.full_length));
    failed = node->emit("lines", line.text, meta);
    sent += failed.ok();
    return failed.ok();
  });
  if (!read) return Node::fail(read.error());
  if (!failed) return Node::fail(failed.error());
  const double s = std::chrono::duration<double>(Clock::now() - start).count();
  std::fprintf(stderr, "read: sent %llu lines of %s in %.2f s%s\n",
               static_cast<unsigned long long>(sent), file.c_str(), s,
               node->stopping() ? " (stopped early)" : "");
  return 0;
}
