// SPDX-License-Identifier: Apache-2.0
// bloccs-logs-reference: the pipeline's computation in one process, with no ports: the same
// line reading, parser, filter and aggregate, called in a loop. Its report must equal the
// pipeline's byte for byte; --rejects lists the malformed lines as the dead-letter port gets
// them ("<reason>\t<line as sent>", in file order).
#include <cstdio>
#include <memory>
#include <string>

#include "aggregate.hpp"
#include "filter.hpp"
#include "line_source.hpp"

int main(int argc, char** argv) {
  using namespace bloccs;
  std::string in, out, rejects_file;
  logs::FilterOptions options;
  std::vector<examples::Option> args{
      {"--in", "the log file", &in, true},
      {"--out", "where to write the report", &out, true},
      {"--rejects", "where to list the malformed lines", &rejects_file}};
  for (auto& o : logs::filter_options(options)) args.push_back(std::move(o));
  if (int rc = examples::parse_options(
          argc, argv, "bloccs logs example: the same report as the pipeline, in a single process",
          args);
      rc >= 0)
    return rc;

  std::unique_ptr<std::FILE, int (*)(std::FILE*)> rejects(nullptr, &std::fclose);
  if (!rejects_file.empty()) {
    rejects.reset(std::fopen(rejects_file.c_str(), "w"));
    if (!rejects) {
      std::perror(("bloccs-logs-reference: cannot write " + rejects_file).c_str());
      return 1;
    }
  }
  logs::Aggregate aggregate;
  std::uint64_t lines = 0, malformed = 0;
  Status read = logs::for_each_line(in, [&](const logs::Line& line) {
    ++lines;
    auto record = logs::parse_line(line.text, line.full_length);
    if (!record) {
      ++malformed;
      if (rejects) {
        const std::string entry =
            logs::reject_reason(line.number, record.error()) + "\t" + std::string(line.text) + "\n";
        std::fwrite(entry.data(), 1, entry.size(), rejects.get());  // the line may hold NULs
      }
      return true;
    }
    if (logs::keep(*record, options)) aggregate.add(*record);
    return true;
  });
  if (!read) {
    std::fprintf(stderr, "bloccs-logs-reference: %s\n", read.error().message.c_str());
    return 1;
  }
  if (rejects && (std::fflush(rejects.get()) != 0 || std::ferror(rejects.get()))) {
    std::perror(("bloccs-logs-reference: cannot write " + rejects_file).c_str());
    return 1;
  }
  if (Status st = aggregate.write(out); !st) {
    std::fprintf(stderr, "bloccs-logs-reference: %s\n", st.error().message.c_str());
    return 1;
  }
  std::fprintf(stderr, "reference: %llu lines, %llu malformed, %llu kept: report in %s\n",
               static_cast<unsigned long long>(lines), static_cast<unsigned long long>(malformed),
               static_cast<unsigned long long>(aggregate.requests()), out.c_str());
  return 0;
}
