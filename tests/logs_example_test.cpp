// SPDX-License-Identifier: Apache-2.0
// The logs example (examples/logs) as a user runs it: a generated access log through the real
// launcher and the read -> parse -> filter -> aggregate programs. The pipeline's report must
// equal the single-process reference's byte for byte, every malformed line must reach the
// dead letters with the reference's reason, and nothing may be left in /dev/shm. Also the
// parts both share (the parser, the report's percentiles), and the shipped sample and
// pipeline file.
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "aggregate.hpp"
#include "log_record.hpp"
#include "port_test_support.hpp"

namespace bloccs::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// Runs `program args...` with its stdout and stderr in `log`; its exit code (exit_code()).
int run(const char* program, const std::vector<std::string>& args, const fs::path& log,
        std::chrono::milliseconds limit) {
  return exit_code(wait_child(start_program(program, args, log), limit));
}

// The pipeline of examples/logs/logs.toml, with the test's absolute paths in its args.
fs::path write_pipeline(const TempDir& dir) {
  std::ofstream(dir / "logs.toml") << R"([pipeline]
network = "logs"
restart = { base_ms = 50, factor = 2.0, cap_ms = 500, max_restarts = 2 }

[nodes.read]
program = "bloccs-logs-read"
args = ["--in", ")" << (dir / "access.log").string()
                                   << R"("]
outputs.lines = "parse.in"

[nodes.parse]
program = "bloccs-logs-parse"
inputs.in = { buffer = 512 }
outputs.records = "filter.in"
retry = { max_attempts = 1 }

[nodes.filter]
program = "bloccs-logs-filter"
args = ["--min-status", "400", "--slow-ms", "1000"]
inputs.in = { buffer = 512 }
outputs.kept = "aggregate.in"

[nodes.aggregate]
program = "bloccs-logs-aggregate"
args = ["--out", ")" << (dir / "report.tsv").string()
                                   << R"("]
inputs.in = { buffer = 512 }
)";
  return dir / "logs.toml";
}

// The test's own namespace, t-<run>-logs-<pid>; whatever a failed run left in it goes at the end.
struct LogsNamespace {
  std::string name = test_namespace_prefix() + "logs-" + std::to_string(getpid());
  std::vector<std::string> leftovers() const { return shm_entries(name); }
  ~LogsNamespace() { remove_namespace(name); }
};

// The reference's --rejects file: line number -> {reason, line as sent}.
struct Reject {
  std::string reason, text;
  friend bool operator==(const Reject&, const Reject&) = default;
};
std::map<std::uint64_t, Reject> reference_rejects(const fs::path& file) {
  std::map<std::uint64_t, Reject> out;
  std::ifstream in(file, std::ios::binary);
  for (std::string line; std::getline(in, line);) {
    const std::size_t tab = line.find('\t');  // the reason holds no tab; the text may
    const std::uint64_t number = std::stoull(line.substr(5));  // "line <n>: ..."
    out[number] = {line.substr(0, tab), line.substr(tab + 1)};
  }
  return out;
}

TEST(LogsExample, ThePipelinesReportEqualsTheReferenceAndEveryMalformedLineIsDeadLettered) {
  const LogsNamespace ns;
  TempDir dir;
  const std::uint64_t lines = scaled(20'000);
  ASSERT_EQ(run(LOGS_GENERATE_PATH,
                {"--lines", std::to_string(lines), "--seed", "42", "--malformed-percent", "1",
                 "--out", (dir / "access.log").string()},
                dir / "generate.log", 30s),
            0)
      << read_file(dir / "generate.log");
  ASSERT_EQ(
      run(LOGS_REFERENCE_PATH,
          {"--in", (dir / "access.log").string(), "--out", (dir / "reference.tsv").string(),
           "--rejects", (dir / "rejects.tsv").string(), "--min-status", "400", "--slow-ms", "1000"},
          dir / "reference.log", 30s),
      0)
      << read_file(dir / "reference.log");

  const int rc =
      run(BLOCCS_CLI_PATH,
          {"run", write_pipeline(dir).string(), "--program-dir", LOGS_PROGRAM_DIR, "--namespace",
           ns.name, "--status-interval", "0", "--summary-json", (dir / "summary.json").string(),
           "--dead-letters", (dir / "dead.jsonl").string()},
          dir / "bloccs.log", 90s);
  const std::string log = read_file(dir / "bloccs.log");
  ASSERT_EQ(rc, 0) << log;

  // The distributed report is the single-process one, and it says something.
  const std::string report = read_file(dir / "report.tsv");
  EXPECT_EQ(report, read_file(dir / "reference.tsv")) << log;
  EXPECT_EQ(report.find("total\t0\n"), std::string::npos) << report;
  EXPECT_NE(report.find("\n/api/products/{id}\t"), std::string::npos) << report;

  // Every malformed line is a dead letter from parse, with the reference's reason, as read.
  const auto rejects = reference_rejects(dir / "rejects.tsv");
  ASSERT_GT(rejects.size(), 0u) << "the generator wrote no malformed line";
  std::map<std::uint64_t, Reject> dead;
  std::ifstream in(dir / "dead.jsonl", std::ios::binary);
  for (std::string line; std::getline(in, line);) {
    const json j = json::parse(line);
    ASSERT_TRUE(j.contains("error") && j.contains("payload")) << line;
    EXPECT_EQ(j["node"], "parse") << line;
    EXPECT_EQ(j["attempt"], 1) << "max_attempts = 1: never retried: " << line;
    const std::uint64_t number = std::stoull(j["meta"]["line"].get<std::string>());
    EXPECT_FALSE(dead.contains(number)) << "line " << number << " dead-lettered twice";
    dead[number] = {j["error"].get<std::string>(), j["payload"].get<std::string>()};
  }
  EXPECT_EQ(dead.size(), rejects.size());
  for (const auto& [number, reject] : rejects) {
    ASSERT_TRUE(dead.contains(number)) << "malformed line " << number << " is no dead letter";
    EXPECT_EQ(dead[number], reject)
        << "line " << number << ": dead letter says '" << dead[number].reason << "'";
  }

  // The launcher's counts tell the same story.
  const json s = json::parse(read_file(dir / "summary.json"));
  EXPECT_EQ(s["nodes"]["read"]["emitted"], lines) << s.dump(2);
  EXPECT_EQ(s["nodes"]["parse"]["handled"], lines - rejects.size()) << s.dump(2);
  EXPECT_EQ(s["nodes"]["parse"]["dead_lettered"], rejects.size()) << s.dump(2);
  EXPECT_EQ(s["dead_lettered"], rejects.size()) << s.dump(2);
  EXPECT_EQ(s["lost"], 0) << s.dump(2);
  EXPECT_EQ(s["restarts"], 0) << s.dump(2);

  EXPECT_TRUE(ns.leftovers().empty()) << "left in /dev/shm: " << join(ns.leftovers());
}

TEST(LogsExample, AWellFormedLineBecomesARecordInUtcWithIdsFoldedIntoItsRoute) {
  auto r = logs::parse_line(
      R"log(2001:db8::7 - alice [10/Mar/2024:01:30:00 +0100] "GET /api/users/42/orders/0123456789abcdef0123?page=2 HTTP/1.1" 404 - "-" "Mozilla/5.0 (compatible; \"X\")" 37)log");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->client, "2001:db8::7");
  EXPECT_EQ(r->time, 1710030600);  // 2024-03-10T00:30:00Z
  EXPECT_EQ(r->method, "GET");
  EXPECT_EQ(r->route, "/api/users/{id}/orders/{id}");
  EXPECT_EQ(r->status, 404u);
  EXPECT_EQ(r->bytes, 0u);
  EXPECT_EQ(r->latency_ms, 37u);
  // What travels between the nodes comes back the same.
  auto back = logs::decode(logs::encode(*r));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, *r);
  EXPECT_FALSE(logs::decode("not\ta record"));
}

TEST(LogsExample, EachKindOfMalformedLineIsRefusedWithItsReasonAndColumn) {
  const std::string good =
      R"(192.0.2.1 - - [10/Mar/2024:01:00:00 +0100] "GET / HTTP/1.1" 200 512 "-" "curl/8.4.0" 12)";
  ASSERT_TRUE(logs::parse_line(good));
  auto reason = [](const std::string& line) {
    auto r = logs::parse_line(line);
    return r ? std::string("parsed") : r.error().message;
  };
  auto with = [&good](std::string_view from, std::string_view to) {
    std::string line = good;
    line.replace(line.find(from), from.size(), to);
    return line;
  };
  EXPECT_EQ(reason(""), "empty line");
  EXPECT_EQ(reason(good.substr(0, good.rfind(' '))),
            "expected ' ' before the latency, found the end of the line (column 85)");
  EXPECT_EQ(reason(with("200", "2O0")),
            "status '2O0' is not an HTTP status (100..599) (column 61)");
  EXPECT_EQ(reason(with("Mar", "Mrz")),
            "timestamp '10/Mrz/2024:01:00:00 +0100' names no month (Jan..Dec); expected "
            "dd/Mon/yyyy:hh:mm:ss +hhmm (column 16)");
  EXPECT_EQ(reason(with("10/Mar", "31/Apr")).find("is not a calendar date"), 39u);
  EXPECT_EQ(reason(with("curl", "cu\trl")), "control character 0x09 (column 76)");
  EXPECT_EQ(reason(with("GET / HTTP/1.1", "\\x16\\x03")),
            "request '\\x16\\x03' is not 'METHOD /path HTTP/x.y' (column 45)");
  EXPECT_EQ(reason(with("192.0.2.1", "192.0.2.300")),
            "client '192.0.2.300' is not an IPv4 or IPv6 address (column 1)");
  EXPECT_EQ(reason(with(" 12", " -")), "latency '-' is not a whole number of ms (column 86)");
  EXPECT_EQ(reason(with("\"curl/8.4.0\"", "\"curl/8.4.0")),
            "the user agent has no closing '\"' (column 73)");
  EXPECT_EQ(reason(good + " x"), "unexpected text after the latency (column 88)");
  // A line the reader had to cut: its full length decides.
  EXPECT_EQ(logs::parse_line(good, logs::kMaxLineBytes + 1).error().message,
            "line of 2049 bytes is longer than the limit of 2048");
}

TEST(LogsExample, TheReportsPercentilesAreNearestRankOverEachRoute) {
  logs::Aggregate a;
  for (std::uint32_t ms = 100; ms >= 1; --ms)  // in reverse: the order must not matter
    a.add({"192.0.2.1", 1710028800, "GET", "/r", ms % 7 == 0 ? 503u : 404u, 10, ms});
  a.add({"192.0.2.1", 1710032400, "GET", "/one", 500, 0, 7});
  EXPECT_EQ(a.report(),
            "# bloccs-logs report\n"
            "total\t101\n"
            "route\trequests\t4xx\t5xx\tbytes\tp50_ms\tp99_ms\tmax_ms\n"
            "/one\t1\t0\t1\t0\t7\t7\t7\n"
            "/r\t100\t86\t14\t1000\t50\t99\t100\n"
            "status\trequests\n"
            "404\t86\n"
            "500\t1\n"
            "503\t14\n"
            "hour_utc\trequests\t5xx\n"
            "2024-03-10T00\t100\t14\n"
            "2024-03-10T01\t1\t1\n");
}

TEST(LogsExample, TheShippedSampleIsTheGeneratorsOutputAndThePipelineFileChecks) {
  TempDir dir;
  // The command examples/logs/README.md gives for access.log.
  ASSERT_EQ(run(LOGS_GENERATE_PATH,
                {"--lines", "600", "--seed", "1", "--malformed-percent", "2", "--out",
                 (dir / "access.log").string()},
                dir / "generate.log", 30s),
            0)
      << read_file(dir / "generate.log");
  EXPECT_EQ(read_file(dir / "access.log"), read_file(fs::path(LOGS_SOURCE_DIR) / "access.log"));
  EXPECT_EQ(run(BLOCCS_CLI_PATH,
                {"check", (fs::path(LOGS_SOURCE_DIR) / "logs.toml").string(), "--program-dir",
                 LOGS_PROGRAM_DIR},
                dir / "check.log", 30s),
            0)
      << read_file(dir / "check.log");
}

}  // namespace
}  // namespace bloccs::test
