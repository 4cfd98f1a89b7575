// SPDX-License-Identifier: Apache-2.0
// Pipeline files (bloccs/pipeline.hpp): what a good file reads as, and every error naming its
// exact line and the offending name. Most tests parse text with check_programs off; the program
// lookup tests write small scripts into a fresh directory.
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "bloccs/pipeline.hpp"
#include "test_support.hpp"

namespace bloccs {
namespace {

namespace fs = std::filesystem;
using test::TempDir;
using std::chrono::milliseconds;

const LoadOptions kNoPrograms{.program_dirs = {}, .check_programs = false};

Result<PipelineSpec> parse(std::string_view text, const LoadOptions& o = kNoPrograms) {
  return parse_pipeline(text, "p.toml", o);
}

// The parse failed with bad_config, its message starts "p.toml:<line>: " and names each of
// `mentions`.
::testing::AssertionResult fails_at(const Result<PipelineSpec>& r, int line,
                                    const std::vector<std::string>& mentions,
                                    std::string_view file = "p.toml") {
  if (r) return ::testing::AssertionFailure() << "parsed, expected an error at line " << line;
  const std::string& m = r.error().message;
  if (r.code() != Errc::bad_config)
    return ::testing::AssertionFailure() << errc_name(r.code()) << ": " << m;
  const std::string prefix = std::string(file) + ":" + std::to_string(line) + ": ";
  if (m.rfind(prefix, 0) != 0)
    return ::testing::AssertionFailure() << "does not start with \"" << prefix << "\": " << m;
  for (const auto& s : mentions)
    if (m.find(s) == std::string::npos)
      return ::testing::AssertionFailure() << "does not mention \"" << s << "\": " << m;
  return ::testing::AssertionSuccess() << m;
}


// A pipeline whose one node `a` (program "x") takes lines 1 to 4; `rest` starts on line 5.
std::string node_a(std::string_view rest) {
  return "[pipeline]\nnetwork = \"n\"\n[nodes.a]\nprogram = \"x\"\n" + std::string(rest);
}

std::vector<std::string> ids(const std::vector<const NodeSpec*>& nodes) {
  std::vector<std::string> out;
  for (const NodeSpec* n : nodes) out.push_back(n->id);
  return out;
}

// The example of bloccs/pipeline.hpp, line for line.
constexpr std::string_view kExample = R"([pipeline]
network = "demo"
restart = { base_ms = 100, factor = 2.0, cap_ms = 5000, max_restarts = 10 }
dead_letter = { buffer = 1024 }
conserved = true

[nodes.generator]
program = "bloccs-demo-generator"
args = ["--messages", "20000"]
outputs.out = "transform.in"

[nodes.transform]
program = "bloccs-demo-transform"
inputs.in = { buffer = 256 }
outputs.out = ["sink.in"]
retry = { max_attempts = 4, base_ms = 20, factor = 2.0, cap_ms = 500, jitter = 0.25 }

[nodes.sink]
program = "bloccs-demo-sink"
)";

TEST(PipelineFile, TheHeaderExampleReadsAsWritten) {
  auto r = parse(kExample);
  ASSERT_TRUE(r) << r.error().message;
  const PipelineSpec& p = *r;
  EXPECT_EQ(p.file, fs::current_path() / "p.toml");
  EXPECT_EQ(p.network, "demo");
  EXPECT_EQ(p.restart.base, milliseconds(100));
  EXPECT_EQ(p.restart.factor, 2.0);
  EXPECT_EQ(p.restart.cap, milliseconds(5000));
  EXPECT_EQ(p.restart.max_restarts, 10u);
  EXPECT_EQ(p.dead_letter.buffer, 1024u);
  EXPECT_TRUE(p.conserved);

  ASSERT_EQ(p.nodes.size(), 3u);  // file order, not the key order toml++ keeps
  const NodeSpec& gen = p.nodes[0];
  const NodeSpec& tr = p.nodes[1];
  const NodeSpec& sink = p.nodes[2];
  EXPECT_EQ(gen.id, "generator");
  EXPECT_EQ(tr.id, "transform");
  EXPECT_EQ(sink.id, "sink");
  EXPECT_EQ(gen.line, 7);
  EXPECT_EQ(tr.line, 12);
  EXPECT_EQ(sink.line, 18);

  EXPECT_EQ(gen.program, "bloccs-demo-generator");  // check_programs off: as written
  EXPECT_EQ(gen.args, (std::vector<std::string>{"--messages", "20000"}));
  EXPECT_TRUE(gen.is_source());
  ASSERT_EQ(gen.outputs.size(), 1u);
  EXPECT_EQ(gen.outputs[0].name, "out");
  EXPECT_EQ(gen.outputs[0].line, 10);
  EXPECT_EQ(gen.outputs[0].targets, (std::vector<Target>{{"transform", "in"}}));
  EXPECT_EQ(gen.retry.max_attempts, 3u);  // the defaults
  EXPECT_EQ(gen.retry.base, milliseconds(10));
  EXPECT_EQ(gen.retry.cap, milliseconds(1000));
  EXPECT_EQ(gen.retry.jitter, 0.2);
  EXPECT_EQ(gen.batch, 64u);

  ASSERT_EQ(tr.inputs.size(), 1u);
  EXPECT_EQ(tr.inputs[0].name, "in");
  EXPECT_EQ(tr.inputs[0].buffer, 256u);
  EXPECT_EQ(tr.inputs[0].max_payload, 4096u);
  EXPECT_EQ(tr.inputs[0].line, 14);
  EXPECT_FALSE(tr.is_source());
  ASSERT_NE(tr.output("out"), nullptr);
  EXPECT_EQ(tr.output("out")->targets, (std::vector<Target>{{"sink", "in"}}));
  EXPECT_EQ(tr.retry.max_attempts, 4u);
  EXPECT_EQ(tr.retry.base, milliseconds(20));
  EXPECT_EQ(tr.retry.factor, 2.0);
  EXPECT_EQ(tr.retry.cap, milliseconds(500));
  EXPECT_EQ(tr.retry.jitter, 0.25);

  // sink.in exists only because transform wires to it: the defaults, and the wire's line.
  ASSERT_EQ(sink.inputs.size(), 1u);
  EXPECT_EQ(sink.inputs[0].name, "in");
  EXPECT_EQ(sink.inputs[0].buffer, 1024u);
  EXPECT_EQ(sink.inputs[0].max_payload, 4096u);
  EXPECT_EQ(sink.inputs[0].line, 15);
  EXPECT_TRUE(sink.outputs.empty());
  EXPECT_TRUE(sink.args.empty());
}

TEST(PipelineFile, FanOutUnboundedPortsAndSortedPorts) {
  auto r = parse(R"([pipeline]
network = "fan.out-1"

[nodes.zeta]
program = "./z"
batch = 8
outputs.out = [
  "alpha.in",
  "mid.data",
]
outputs.log = "mid.aux"

[nodes.alpha]
program = "a"
inputs.in = { buffer = "unbounded", max_payload = 100, typical_payload = 60, latency_histogram = false }
inputs.spare = {}

[nodes.mid]
program = "m"
retry = { factor = 3, jitter = 0 }
)");
  ASSERT_TRUE(r) << r.error().message;
  const PipelineSpec& p = *r;
  EXPECT_EQ(p.network, "fan.out-1");
  EXPECT_FALSE(p.conserved);
  EXPECT_EQ(p.restart.max_restarts, 10u);
  EXPECT_EQ(p.dead_letter.buffer, 1024u);
  ASSERT_EQ(p.nodes.size(), 3u);
  EXPECT_EQ(p.nodes[0].id, "zeta");
  EXPECT_EQ(p.nodes[1].id, "alpha");
  EXPECT_EQ(p.nodes[2].id, "mid");

  const NodeSpec& z = p.nodes[0];
  EXPECT_EQ(z.batch, 8u);
  ASSERT_EQ(z.outputs.size(), 2u);  // sorted by name
  EXPECT_EQ(z.outputs[0].name, "log");
  EXPECT_EQ(z.outputs[1].name, "out");
  EXPECT_EQ(z.outputs[1].targets, (std::vector<Target>{{"alpha", "in"}, {"mid", "data"}}));

  const NodeSpec& a = p.nodes[1];
  ASSERT_EQ(a.inputs.size(), 2u);
  EXPECT_EQ(a.inputs[0].name, "in");
  EXPECT_EQ(a.inputs[0].buffer, std::nullopt);
  EXPECT_EQ(a.inputs[0].max_payload, 100u);
  EXPECT_EQ(a.inputs[0].typical_payload, 60u);
  EXPECT_FALSE(a.inputs[0].latency_histogram);
  EXPECT_EQ(a.inputs[1].name, "spare");  // declared, wired to by nothing: allowed
  EXPECT_EQ(a.inputs[1].buffer, 1024u);
  EXPECT_TRUE(a.inputs[1].latency_histogram);

  const NodeSpec& m = p.nodes[2];
  ASSERT_EQ(m.inputs.size(), 2u);  // both created by wires, sorted by name
  EXPECT_EQ(m.inputs[0].name, "aux");
  EXPECT_EQ(m.inputs[0].line, 11);
  EXPECT_EQ(m.inputs[1].name, "data");
  EXPECT_EQ(m.inputs[1].line, 9);  // the line of that element of the list
  EXPECT_EQ(m.retry.factor, 3.0);  // an integer is a number too
  EXPECT_EQ(m.retry.jitter, 0.0);
}

TEST(PipelineFile, RestartAndDeadLetterAsTables) {
  auto r = parse(R"([pipeline]
network = "n"
[pipeline.restart]
max_restarts = 0
factor = 1
[pipeline.dead_letter]
buffer = "unbounded"
[nodes.only]
program = "x"
)");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->restart.max_restarts, 0u);
  EXPECT_EQ(r->restart.factor, 1.0);
  EXPECT_EQ(r->restart.base, milliseconds(100));
  EXPECT_EQ(r->dead_letter.buffer, std::nullopt);
  EXPECT_TRUE(r->nodes[0].is_source());
}

// Item 17 of the reliability review: toml++'s own words, and then what to do about them.
TEST(PipelineFile, ATomlSyntaxErrorNamesItsLineAndSaysWhatToDo) {
  EXPECT_TRUE(fails_at(parse("[pipeline]\nnetwork = \"n\"\n\n[nodes.a]\nprogram = \n"), 5,
                       {"column 11", "not valid TOML", "fix that line", "key = value"}));
  EXPECT_TRUE(fails_at(parse("[pipeline]\nnetwork = \"n\"\nnetwork = \"m\"\n"), 3,
                       {"network", "not valid TOML", "fix that line"}));
  EXPECT_TRUE(fails_at(parse("[pipeline\nnetwork = \"n\"\n"), 1, {"not valid TOML"}));
}

TEST(PipelineFile, UnknownKeysAreErrorsListingTheAllowedOnes) {
  EXPECT_TRUE(fails_at(parse("[pipeline]\nnetwork = \"n\"\n\n[pipelines]\nx = 1\n"), 4,
                       {"'pipelines'", "pipeline, hosts, nodes"}));
  EXPECT_TRUE(fails_at(parse("[pipeline]\nnetwork = \"n\"\nrestarts = { base_ms = 1 }\n"), 3,
                       {"'restarts'", "network, restart, dead_letter, conserved"}));
  EXPECT_TRUE(fails_at(parse("[pipeline]\nnetwork = \"n\"\nrestart = { bas_ms = 1 }\n"), 3,
                       {"'bas_ms'", "base_ms, factor, cap_ms, max_restarts"}));
  EXPECT_TRUE(fails_at(parse(node_a(R"(retries = { max_attempts = 2 }
)")),
                       5,
                       {"'retries'", "[nodes.a]", "program, python, args, inputs, outputs, retry, batch"}));
  EXPECT_TRUE(fails_at(parse(node_a(R"(
inputs.in = { bufer = 2 }
)")),
                       6,
                       {"'bufer'", "nodes.a.inputs.in",
                        "buffer, max_payload, typical_payload, latency_histogram"}));
  EXPECT_TRUE(fails_at(parse(node_a(R"([nodes.a.retry]
max_attempts = 2
jiter = 0.1
)")),
                       7, {"'jiter'", "max_attempts, base_ms, factor, cap_ms, jitter"}));
}

TEST(PipelineFile, AWireToAnUnknownNodeNamesItAndTheKnownOnes) {
  auto r = parse(node_a(R"(outputs.out = [
  "b.in",
  "nowhere.in",
]
[nodes.b]
program = "y"
)"));
  EXPECT_TRUE(fails_at(r, 7, {"nodes.a.outputs.out", "'nowhere'", "nodes: a, b"}));
}

TEST(PipelineFile, DeadLetterIsReserved) {
  EXPECT_TRUE(fails_at(parse(node_a(R"(outputs.failed = "dead_letter.in"
)")),
                       5, {"nodes.a.outputs.failed", "dead-letter"}));
  EXPECT_TRUE(fails_at(parse(node_a(R"(
[nodes.dead_letter]
program = "y"
)")),
                       6, {"'dead_letter'", "reserved"}));
}

TEST(PipelineFile, MissingOrMistypedEntries) {
  EXPECT_TRUE(fails_at(parse("[pipeline]\nnetwork = \"n\"\n\n[nodes.a]\nargs = []\n"), 4,
                       {"'a'", "no program"}));
  EXPECT_TRUE(fails_at(parse("[pipeline]\nnetwork = \"n\"\n[nodes.a]\nprogram = 5\n"), 4,
                       {"nodes.a.program = 5"}));
  EXPECT_TRUE(
      fails_at(parse(node_a("args = [\"--n\",\n 5]\n")), 6, {"nodes.a.args[1] = 5", "an integer"}));
  EXPECT_TRUE(fails_at(parse(node_a("outputs.out = []\n")), 5, {"nodes.a.outputs.out", "empty"}));
  EXPECT_TRUE(fails_at(parse(node_a("outputs.out = \"a\"\n")), 5, {"\"a\"", "node.port"}));
  EXPECT_TRUE(fails_at(parse(node_a("inputs.in = 5\n")), 5, {"nodes.a.inputs.in", "table"}));
  EXPECT_TRUE(
      fails_at(parse("[pipeline]\nnetwork = \"n\"\nconserved = 1\n[nodes.a]\nprogram = \"x\"\n"), 3,
               {"conserved", "true or false"}));
  EXPECT_TRUE(fails_at(parse("\n[pipeline]\nrestart = {}\n[nodes.a]\nprogram = \"x\"\n"), 2,
                       {"no network"}));
  EXPECT_TRUE(fails_at(parse("[nodes.a]\nprogram = \"x\"\n"), 1, {"[pipeline]"}));
  EXPECT_TRUE(fails_at(parse("[pipeline]\nnetwork = \"n\"\n"), 1, {"no nodes"}));
  EXPECT_TRUE(fails_at(parse("[pipeline]\nnetwork = \"a/b\"\n[nodes.a]\nprogram = \"x\"\n"), 2,
                       {"network 'a/b'"}));
}

// Each bad number: the line, the key, the value and the range allowed.
struct BadNumber {
  const char* entry;  // goes on line 5, in [nodes.a] (or [pipeline] if it starts with "pipeline:")
  std::vector<std::string> mentions;
};

void PrintTo(const BadNumber& b, std::ostream* os) {
  *os << b.entry;
}

class BadNumbers : public ::testing::TestWithParam<BadNumber> {};

TEST_P(BadNumbers, NameTheLineKeyValueAndRange) {
  const BadNumber& b = GetParam();
  const std::string entry = b.entry;
  const bool in_pipeline = entry.rfind("pipeline:", 0) == 0;
  const std::string text = in_pipeline ? "[pipeline]\nnetwork = \"n\"\n\n\n" + entry.substr(9) +
                                             "\n[nodes.a]\nprogram = \"x\"\n"
                                       : node_a(entry + "\n");
  EXPECT_TRUE(fails_at(parse(text), 5, b.mentions)) << text;
}

INSTANTIATE_TEST_SUITE_P(
    PipelineFile, BadNumbers,
    ::testing::Values(
        BadNumber{"inputs.in = { buffer = 0 }",
                  {"nodes.a.inputs.in.buffer = 0", "out of range", "1 to 8388607", "unbounded"}},
        BadNumber{"inputs.in = { buffer = -1 }", {"buffer = -1", "1 to 8388607"}},
        BadNumber{"inputs.in = { buffer = 8388608 }", {"buffer = 8388608", "out of range"}},
        BadNumber{"inputs.in = { buffer = \"lots\" }",
                  {"buffer = \"lots\"", "is a string", "1 to 8388607, or \"unbounded\""}},
        BadNumber{"inputs.in = { buffer = 2.5 }", {"buffer = 2.5", "floating-point"}},
        BadNumber{"inputs.in = { max_payload = 0 }", {"max_payload = 0", "1 to 33553896"}},
        BadNumber{"inputs.in = { max_payload = 33553905 }", {"max_payload = 33553905"}},
        BadNumber{"inputs.in = { typical_payload = -1 }", {"typical_payload = -1"}},
        BadNumber{"inputs.in = { latency_histogram = 1 }",
                  {"latency_histogram = 1 is an integer", "use true or false"}},
        BadNumber{"retry = { max_attempts = 0 }",
                  {"nodes.a.retry.max_attempts = 0", "from 1 to 4294967295"}},
        BadNumber{"retry = { factor = 0.5 }", {"nodes.a.retry.factor = 0.5", ">= 1"}},
        BadNumber{"retry = { factor = nan }", {"factor = nan", ">= 1"}},
        BadNumber{"retry = { factor = \"2\" }", {"factor = \"2\"", "is a string"}},
        BadNumber{"retry = { jitter = 1.5 }", {"nodes.a.retry.jitter = 1.5", "from 0 to 1"}},
        BadNumber{"retry = { jitter = -0.1 }", {"jitter = -0.1", "from 0 to 1"}},
        BadNumber{"retry = { base_ms = 20, cap_ms = 10 }",
                  {"nodes.a.retry.cap_ms = 10", "base_ms = 20", "cap_ms >= base_ms"}},
        BadNumber{"retry = { base_ms = 2000 }", {"cap_ms = 1000 (the default)", "base_ms = 2000"}},
        BadNumber{"retry = { base_ms = -5 }", {"base_ms = -5", "0 to 86400000"}},
        BadNumber{"batch = 0", {"nodes.a.batch = 0", "1 to 65536"}},
        BadNumber{"batch = 65537", {"batch = 65537", "1 to 65536"}},
        BadNumber{"pipeline:restart = { max_restarts = -1 }",
                  {"pipeline.restart.max_restarts = -1", "0 to 4294967295"}},
        BadNumber{"pipeline:restart = { factor = 0 }", {"pipeline.restart.factor = 0", ">= 1"}},
        BadNumber{"pipeline:restart = { cap_ms = 50 }", {"cap_ms = 50", "base_ms = 100"}},
        BadNumber{"pipeline:dead_letter = { buffer = 0 }",
                  {"pipeline.dead_letter.buffer = 0", "1 to 8388607"}}));

TEST(PipelineFile, ADuplicateTargetIsAnError) {
  EXPECT_TRUE(fails_at(parse(node_a(R"(outputs.out = ["b.in",
               "b.other",
               "b.in"]
[nodes.b]
program = "y"
)")),
                       7, {"nodes.a.outputs.out", "\"b.in\" twice"}));
}

TEST(PipelineFile, NamesMayNotContainADot) {
  EXPECT_TRUE(fails_at(parse(R"([pipeline]
network = "n"

[nodes."a.b"]
program = "x"
)"),
                       4, {"node id 'a.b'", "'.'"}));
  EXPECT_TRUE(fails_at(parse(node_a(R"(outputs.out = "b.in.x"
[nodes.b]
program = "y"
)")),
                       5, {"port name 'in.x'", "'.'"}));
  EXPECT_TRUE(fails_at(parse(node_a(R"(inputs."in.1" = {}
)")),
                       5, {"port name 'in.1'"}));
  EXPECT_TRUE(fails_at(parse(node_a(R"(outputs."o.1" = "a.in"
)")),
                       5, {"output name 'o.1'"}));
  EXPECT_TRUE(fails_at(parse(node_a(R"(outputs.out = "b.in"
[nodes.b]
program = "y"
inputs.a-very-long-port-name-over-31-chars = {}
)")),
                       8, {"port name 'a-very-long-port-name-over-31-chars'", "1 to 31"}));
}

// a -> b -> c -> a, with c.in bounded or not.
std::string triangle(const std::string& c_in) {
  return R"([pipeline]
network = "n"
[nodes.a]
program = "x"
inputs.in = { buffer = 4 }
outputs.out = "b.in"
[nodes.b]
program = "x"
outputs.out = "c.in"
[nodes.c]
program = "x"
inputs.in = { buffer = )" +
         c_in + R"( }
outputs.out = "a.in"
)";
}

TEST(PipelineFile, ACycleOfBoundedPortsIsRefused) {
  // Found from a, the first node in the file; the line is that of the wire closing it.
  EXPECT_TRUE(fails_at(parse(triangle("16")), 13,
                       {"the cycle a -> b -> c -> a", "(b.in, c.in, a.in)",
                        "could deadlock when every ring on it is full", "buffer = \"unbounded\""}));
}

TEST(PipelineFile, ACycleThroughAnUnboundedPortIsAllowed) {
  auto r = parse(triangle("\"unbounded\""));
  ASSERT_TRUE(r) << r.error().message;
  // No source: sources_first keeps file order within the cycle.
  EXPECT_EQ(ids(r->sources_first()), (std::vector<std::string>{"a", "b", "c"}));
}

TEST(PipelineFile, ASelfLoopIsACycle) {
  EXPECT_TRUE(fails_at(parse(R"([pipeline]
network = "n"
[nodes.retry_later]
program = "x"
outputs.again = "retry_later.in"
)"),
                       5, {"the cycle retry_later -> retry_later", "retry_later.in"}));
  EXPECT_TRUE(parse(R"([pipeline]
network = "n"
[nodes.retry_later]
program = "x"
inputs.in = { buffer = "unbounded" }
outputs.again = "retry_later.in"
)"));
}

TEST(PipelineFile, SourcesComeFirst) {
  // File order: sink, mid, src2, src1; wires src1 -> mid, src2 -> mid, mid -> sink, src1 -> sink.
  auto r = parse(R"([pipeline]
network = "n"
[nodes.sink]
program = "x"
[nodes.mid]
program = "x"
outputs.out = "sink.in"
[nodes.src2]
program = "x"
outputs.out = "mid.in"
[nodes.src1]
program = "x"
outputs.out = ["mid.in", "sink.side"]
)");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->node("src1")->is_source());
  EXPECT_TRUE(r->node("src2")->is_source());
  EXPECT_FALSE(r->node("mid")->is_source());
  EXPECT_EQ(r->node("sink")->inputs.size(), 2u);
  EXPECT_EQ(ids(r->sources_first()), (std::vector<std::string>{"src2", "src1", "mid", "sink"}));
}

TEST(PipelineFile, RetryDelayGrowsUpToTheCapWithJitter) {
  const RetryPolicy p{.max_attempts = 5,
                      .base = milliseconds(10),
                      .factor = 2.0,
                      .cap = milliseconds(50),
                      .jitter = 0.5};
  EXPECT_EQ(p.delay(1, 0.0), milliseconds(10));
  EXPECT_EQ(p.delay(2, 0.0), milliseconds(20));
  EXPECT_EQ(p.delay(3, 0.0), milliseconds(40));
  EXPECT_EQ(p.delay(4, 0.0), milliseconds(50));  // capped
  EXPECT_EQ(p.delay(1000, 0.0), milliseconds(50));
  EXPECT_EQ(p.delay(1, 0.5), milliseconds(13));  // 10 * 1.25, rounded up
  EXPECT_EQ(p.delay(4, 0.999), milliseconds(75));
  for (double u = 0; u < 1; u += 0.01) {
    EXPECT_GE(p.delay(2, u), milliseconds(20));
    EXPECT_LE(p.delay(2, u), milliseconds(30));
  }
  const RetryPolicy flat{.max_attempts = 2,
                         .base = milliseconds(7),
                         .factor = 1.0,
                         .cap = milliseconds(7),
                         .jitter = 0.0};
  EXPECT_EQ(flat.delay(1, 0.9), milliseconds(7));
  EXPECT_EQ(flat.delay(9, 0.9), milliseconds(7));
}

TEST(PipelineFile, LoadReadsAFileAndNamesItAsGiven) {
  TempDir dir;
  const fs::path file = dir.write("ok.toml", std::string(kExample));
  auto r = load_pipeline(file, kNoPrograms);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->file, file);
  EXPECT_EQ(r->nodes.size(), 3u);

  const fs::path bad = dir.write("bad.toml", "[pipeline]\nnetwork = \"n\"\nbogus = 1\n");
  EXPECT_TRUE(fails_at(load_pipeline(bad, kNoPrograms), 3, {"'bogus'"}, bad.string()));

  auto missing = load_pipeline(dir.path() / "missing.toml");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.code(), Errc::not_found);
  EXPECT_NE(missing.error().message.find("missing.toml"), std::string::npos);
  EXPECT_NE(missing.error().message.find("No such file or directory"), std::string::npos);

  auto directory = load_pipeline(dir.path());
  ASSERT_FALSE(directory);
  EXPECT_EQ(directory.code(), Errc::not_found);
  EXPECT_NE(directory.error().message.find("Is a directory"), std::string::npos);
}

// Programs: paths relative to the file, names in program_dirs then $PATH.
class Programs : public ::testing::Test {
 protected:
  void SetUp() override {
    script_ = "#!/bin/sh\nexit 0\n";
    dir_.write("pipe/bin/rel", script_, 0755);
    dir_.write("first/tool", script_, 0755);
    dir_.write("second/tool", script_, 0755);
    dir_.write("second/other", script_, 0755);
    dir_.write("onpath/pathtool", script_, 0755);
    dir_.write("first/plain", script_, 0644);
    fs::create_directories(dir_.path() / "first" / "adir");
    if (const char* p = std::getenv("PATH")) saved_path_ = p;
    ::setenv("PATH", (dir_.path() / "onpath").c_str(), 1);
  }
  void TearDown() override { ::setenv("PATH", saved_path_.c_str(), 1); }

  Result<PipelineSpec> load(const std::string& program) {
    const std::string text = "[pipeline]\nnetwork = \"n\"\n[nodes.a]\nprogram = \"" + program +
                             "\"\n[nodes.b]\nprogram = \"" + program + "\"\n";
    return parse_pipeline(
        text, dir_.path() / "pipe" / "p.toml",
        {.program_dirs = {dir_.path() / "first", dir_.path() / "second"}, .check_programs = true});
  }
  std::string file() const { return (dir_.path() / "pipe" / "p.toml").string(); }

  TempDir dir_;
  std::string script_;
  std::string saved_path_;
};

TEST_F(Programs, APathIsTakenFromThePipelineFilesDirectory) {
  auto r = load("bin/../bin/rel");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->nodes[0].program, dir_.path() / "pipe" / "bin" / "rel");
  auto abs = load((dir_.path() / "second" / "other").string());
  ASSERT_TRUE(abs) << abs.error().message;
  EXPECT_EQ(abs->nodes[1].program, dir_.path() / "second" / "other");
}

TEST_F(Programs, ANameIsLookedUpInProgramDirsThenPath) {
  auto first = load("tool");
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(first->nodes[0].program, dir_.path() / "first" / "tool");  // first dir wins
  auto second = load("other");
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(second->nodes[0].program, dir_.path() / "second" / "other");
  auto on_path = load("pathtool");
  ASSERT_TRUE(on_path) << on_path.error().message;
  EXPECT_EQ(on_path->nodes[0].program, dir_.path() / "onpath" / "pathtool");
}

TEST_F(Programs, AMissingOrNonExecutableProgramNamesThePathsTried) {
  const std::string first = (dir_.path() / "first").string();
  const std::string second = (dir_.path() / "second").string();
  const std::string onpath = (dir_.path() / "onpath").string();
  EXPECT_TRUE(
      fails_at(load("nope"), 4,
               {"program 'nope' of node 'a'",
                first + "/nope, " + second + "/nope, " + onpath + "/nope;", "--program-dir"},
               file()));
  EXPECT_TRUE(fails_at(load("plain"), 4, {first + "/plain (not executable)"}, file()));
  EXPECT_TRUE(fails_at(load("adir"), 4, {first + "/adir (not a regular file)"}, file()));
  EXPECT_TRUE(fails_at(load("bin/missing"), 4,
                       {(dir_.path() / "pipe" / "bin" / "missing").string()}, file()));
}

// A Python node: "x.py" is a script (readable, looked for beside the file first), run by
// python3 from $PATH or by the interpreter a `python = ` key names.
TEST_F(Programs, APythonScriptIsRunByItsInterpreter) {
  dir_.write("pipe/node.py", "print()\n", 0644);        // readable, not executable: fine
  dir_.write("onpath/python3", script_, 0755);
  auto found = load("node.py");
  ASSERT_TRUE(found) << found.error().message;
  EXPECT_EQ(found->nodes[0].program, dir_.path() / "pipe" / "node.py");
  EXPECT_EQ(found->nodes[0].interpreter, dir_.path() / "onpath" / "python3");

  const std::string with_key = "[pipeline]\nnetwork = \"n\"\n[nodes.a]\nprogram = \"node.py\"\n"
                               "python = \"" + (dir_.path() / "second" / "other").string() + "\"\n";
  auto keyed = parse_pipeline(with_key, dir_.path() / "pipe" / "p.toml",
                              {.program_dirs = {}, .check_programs = true});
  ASSERT_TRUE(keyed) << keyed.error().message;
  EXPECT_EQ(keyed->nodes[0].interpreter, dir_.path() / "second" / "other");

  EXPECT_TRUE(fails_at(load("missing.py"), 4,
                       {"script 'missing.py' of node 'a'", "readable",
                        (dir_.path() / "pipe" / "missing.py").string()},
                       file()));
  ::setenv("PATH", (dir_.path() / "second").c_str(), 1);  // no python3 there
  EXPECT_TRUE(fails_at(load("node.py"), 4, {"interpreter (python) 'python3'"}, file()));
  EXPECT_TRUE(fails_at(parse(node_a("python = 3\n")), 5, {"python = 3", "is not an interpreter"}));
}

TEST_F(Programs, CheckProgramsOffKeepsThemAsWritten) {
  auto r = parse_pipeline("[pipeline]\nnetwork = \"n\"\n[nodes.a]\nprogram = \"nope\"\n",
                          dir_.path() / "p.toml", kNoPrograms);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->nodes[0].program, "nope");
}

}  // namespace

// ---- placement on hosts (issue 17) -------------------------------------------------------

namespace {
// Two hosts; a generator and a transform on a, a sink on b. `b_host` is [hosts.b]'s body.
std::string two_hosts(std::string_view b_host = "nats = \"nats://127.0.0.1:4223\"\n") {
  return "[pipeline]\n"                                                    // 1
         "network = \"n\"\n"                                               // 2
         "[hosts.a]\n"                                                     // 3
         "nats = [\"nats://127.0.0.1:4222\", \"tls://10.0.0.7\"]\n"        // 4
         "credentials = \"a.creds\"\n"                                     // 5
         "[hosts.b]\n" +                                                   // 6
         std::string(b_host) +                                             // 7
         "[nodes.gen]\n"                                                   // 8
         "program = \"g\"\n"                                               // 9
         "host = \"a\"\n"                                                  // 10
         "outputs.out = \"transform.in\"\n"                                // 11
         "[nodes.transform]\n"                                             // 12
         "program = \"t\"\n"                                               // 13
         "host = \"a\"\n"                                                  // 14
         "outputs.out = \"sink.in\"\n"                                     // 15
         "[nodes.sink]\n"                                                  // 16
         "program = \"s\"\n"                                               // 17
         "host = \"b\"\n";                                                 // 18
}
}  // namespace

TEST(PipelineHosts, NodesArePlacedOnDeclaredHostsWithTheirEngineUrls) {
  auto r = parse(two_hosts());
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->hosts.size(), 2u);
  EXPECT_EQ(r->hosts[0].name, "a");
  EXPECT_EQ(r->hosts[0].nats,
            (std::vector<std::string>{"nats://127.0.0.1:4222", "tls://10.0.0.7"}));
  EXPECT_EQ(r->hosts[0].credentials.filename(), "a.creds");
  EXPECT_TRUE(r->hosts[0].credentials.is_absolute());  // next to the pipeline file
  EXPECT_EQ(r->hosts[1].nats, (std::vector<std::string>{"nats://127.0.0.1:4223"}));
  EXPECT_EQ(r->node("gen")->host, "a");
  EXPECT_EQ(r->node("sink")->host, "b");
  EXPECT_EQ(r->host("b")->line, 6);
  EXPECT_EQ(r->host("c"), nullptr);
  // A file without hosts places nothing: every node runs where the launcher does.
  auto plain = parse(node_a(""));
  ASSERT_TRUE(plain) << plain.error().message;
  EXPECT_TRUE(plain->hosts.empty());
  EXPECT_EQ(plain->nodes[0].host, "");
}

TEST(PipelineHosts, BadPlacementIsRefusedNamingTheLine) {
  // A wire from a (which has an engine) to b (which has none; its table is one line shorter).
  EXPECT_TRUE(fails_at(parse(two_hosts("")), 14,
                       {"wires transform (on host a) to sink.in (on host b)",
                        "host b has no engine", "add nats = \"nats://HOST:4222\" to [hosts.b]"}));
  // A host no [hosts.NAME] declares.
  std::string text = two_hosts();
  text.replace(text.find("host = \"b\""), 10, "host = \"c\"");
  EXPECT_TRUE(fails_at(parse(text), 18, {"nodes.sink.host = \"c\" names no [hosts.c]", "a, b"}));
  // A node without a host in a file that places its nodes.
  text = two_hosts();
  text.erase(text.find("host = \"b\"\n"), 11);
  EXPECT_TRUE(fails_at(parse(text), 16, {"node 'sink' has no host", "hosts (a, b)"}));
  // A host in a file without [hosts].
  EXPECT_TRUE(fails_at(parse(node_a("host = \"x\"\n")), 5,
                       {"names no [hosts.x]", "declare it, with nats ="}));
  // Malformed URLs and keys.
  for (const char* bad : {"nats = \"127.0.0.1:4222\"\n", "nats = \"http://h:4222\"\n",
                          "nats = \"nats://h:99999\"\n", "nats = \"nats://:4222\"\n",
                          "nats = 4222\n", "nats = []\n"})
    EXPECT_TRUE(fails_at(parse(two_hosts(bad)), 7, {"hosts.b.nats"})) << bad;
  EXPECT_TRUE(fails_at(parse(two_hosts("nat = \"nats://h\"\n")), 7,
                       {"unknown key 'nat'", "nats, credentials"}));
  EXPECT_TRUE(fails_at(parse(two_hosts("credentials = 3\n")), 7, {"hosts.b.credentials"}));
}

}  // namespace bloccs
