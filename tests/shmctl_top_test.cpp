// SPDX-License-Identifier: Apache-2.0
// shmctl top (issue 16): the model's rates, sorting and selection against looks made by hand;
// `top --once` and `--json` against what pushers in other processes pushed and the owner
// received; and the live view driven under tmux (send-keys, capture-pane): it redraws, sorts,
// drills into a port and draws its histogram, goes back, and quits leaving the terminal as it
// was.
#include <sys/wait.h>

#include <thread>

#include <gtest/gtest.h>

#include "bloccs/port.hpp"
#include "busy_ports_support.hpp"
#include "port_test_support.hpp"
#include "shmctl_test_support.hpp"
#include "tools/shmctl/top.hpp"

using bloccs::Port;
using bloccs::Pusher;
using namespace bloccs::test;
namespace sc = bloccs::shmctl;

namespace {

sc::PortView view(const std::string& key, std::uint64_t pushed, std::uint64_t received,
                  std::uint64_t depth, std::uint32_t buffer = 100) {
  sc::PortView v;
  v.entry.key = sc::parse_key(key).value();
  v.entry.owner.pid = 42;
  v.owner_alive = true;
  v.buffer = buffer;
  v.depth = depth;
  v.counters.pushed = pushed;
  v.counters.received = received;
  v.histogram = true;
  return v;
}

// Adds `n` times of `ns` to a view's histogram.
void record(sc::PortView& v, std::uint64_t ns, std::uint64_t n) {
  v.time_in_queue.buckets[bloccs::port::bucket_of(ns)] += n;
  v.time_in_queue.sum_ns += ns * n;
  v.time_in_queue.max_ns = std::max(v.time_in_queue.max_ns, ns);
}

std::vector<std::string> keys(const sc::TopModel& m) {
  std::vector<std::string> out;
  for (const auto& r : m.rows()) out.push_back(sc::key_text(r.view.entry.key));
  return out;
}

}  // namespace

TEST(TopModel, RatesAndTheIntervalsTimeInQueueComeFromTwoLooks) {
  sc::TopModel m;
  const auto t0 = std::chrono::steady_clock::now();
  auto a0 = view("n/a/in", 100, 100, 0), b0 = view("n/b/in", 0, 0, 0);
  record(a0, 1'000'000, 100);  // 1 ms each, before the interval
  m.update({{"ns", {a0, b0}}}, t0);
  ASSERT_EQ(m.rows().size(), 2u);
  EXPECT_FALSE(m.rows()[0].has_interval);  // one look: no rates yet

  auto a1 = view("n/a/in", 300, 250, 50), b1 = view("n/b/in", 1000, 1000, 0);
  a1.time_in_queue = a0.time_in_queue;
  record(a1, 20'000'000, 150);  // 20 ms each, in the interval
  record(b1, 5'000, 1000);
  m.update({{"ns", {a1, b1}}}, t0 + std::chrono::milliseconds(500));
  ASSERT_EQ(keys(m), (std::vector<std::string>{"n/b/in", "n/a/in"}));  // by in/s, largest first
  const sc::TopRow& a = m.rows()[1];
  EXPECT_TRUE(a.has_interval);
  EXPECT_DOUBLE_EQ(a.in_per_s, 400);
  EXPECT_DOUBLE_EQ(a.out_per_s, 300);
  EXPECT_EQ(a.interval.count(), 150u);  // the interval's messages only
  EXPECT_NEAR(static_cast<double>(a.interval.percentile(0.5)), 20e6, 20e6 * 0.032);
  EXPECT_DOUBLE_EQ(a.fill(), 0.5);

  m.sort_by(sc::TopColumn::p99, true);
  EXPECT_EQ(keys(m), (std::vector<std::string>{"n/a/in", "n/b/in"}));
  m.reverse();
  EXPECT_EQ(keys(m), (std::vector<std::string>{"n/b/in", "n/a/in"}));
  m.sort_by(sc::TopColumn::depth, true);
  EXPECT_EQ(keys(m), (std::vector<std::string>{"n/a/in", "n/b/in"}));
  m.next_column(-1);
  EXPECT_EQ(m.column(), sc::TopColumn::out);
  m.next_column(+2);
  EXPECT_EQ(m.column(), sc::TopColumn::parked);

  const std::string table = sc::render_table(m, false, "namespace ns", 200, 40);
  EXPECT_NE(table.find("2 ports"), std::string::npos) << table;
  EXPECT_NE(table.find("50/100  50%"), std::string::npos) << table;
  // a's p50, p99 and max: its bucket's middle is 20.9 ms, but never past the longest, 20 ms.
  EXPECT_NE(table.find("    20 ms     20 ms     20 ms"), std::string::npos) << table;
}

TEST(TopModel, TheSelectionFollowsItsPortThroughResortsAndAPortThatWentAwayDropsIt) {
  sc::TopModel m;
  const auto t0 = std::chrono::steady_clock::now();
  m.update({{"ns", {view("n/a/in", 0, 0, 1), view("n/b/in", 0, 0, 2), view("n/c/in", 0, 0, 3)}}},
           t0);
  m.sort_by(sc::TopColumn::key, false);
  EXPECT_EQ(m.selected(), -1);
  m.move_selection(1);  // the first press selects the top row
  EXPECT_EQ(m.selected(), 0);
  m.move_selection(1);
  ASSERT_NE(m.selected_row(), nullptr);
  EXPECT_EQ(sc::key_text(m.selected_row()->view.entry.key), "n/b/in");
  m.sort_by(sc::TopColumn::key, true);  // c, b, a: b is still selected, now in the middle
  EXPECT_EQ(sc::key_text(m.selected_row()->view.entry.key), "n/b/in");
  m.move_selection(10);  // clamped at the last row
  EXPECT_EQ(sc::key_text(m.selected_row()->view.entry.key), "n/a/in");
  m.update({{"ns", {view("n/b/in", 0, 0, 2)}}}, t0 + std::chrono::seconds(1));
  EXPECT_EQ(m.selected_row(), nullptr);
  const std::string table = sc::render_table(m, true, "all namespaces", 200, 40);
  EXPECT_NE(table.find("NAMESPACE"), std::string::npos) << table;
}

TEST(TopModel, TheDetailDrawsTheHistogramAsBarsOnePerPowerOfTwo) {
  sc::TopModel m;
  auto v = view("n/a/in", 300, 300, 0);
  record(v, 3'000, 100);      // 2.05 us - 4.1 us
  record(v, 40'000, 200);     // 32.8 us - 65.5 us
  record(v, 5'000'000, 10);   // 4.19 ms - 8.39 ms
  m.update({{"ns", {v}}}, std::chrono::steady_clock::now());
  const std::string d = sc::render_detail(m.rows()[0], 100, 60);
  EXPECT_NE(d.find("port n/a/in in namespace ns"), std::string::npos) << d;
  EXPECT_NE(d.find("(310 messages)"), std::string::npos) << d;
  // The longest bar is the 200's, as wide as the bars get; the 100's half as wide.
  const auto bar_of = [&](const std::string& count) {
    const auto at = d.find("| " + count + " (");
    if (at == std::string::npos) return std::string::npos;
    const auto start = d.rfind('|', at - 1);
    return static_cast<std::size_t>(std::count(d.begin() + static_cast<long>(start),
                                               d.begin() + static_cast<long>(at), '#'));
  };
  EXPECT_EQ(bar_of("200"), 52u) << d;  // 100 columns - 48
  EXPECT_EQ(bar_of("100"), 26u) << d;
  EXPECT_EQ(bar_of("10"), 2u) << d;
  EXPECT_NE(d.find("0 (0.0%)"), std::string::npos) << d;  // empty powers between are drawn too
}


TEST(ShmctlTop, OnceAndJsonGiveWhatWasPushedReceivedAndQueued) {
  BusyPorts t;
  ASSERT_NO_FATAL_FAILURE(t.start());
  json doc;
  const ShmctlRun j = shmctl_json(t.ns, {"top", "--interval", "100"}, doc);
  ASSERT_EQ(j.code, 0) << j;
  ASSERT_TRUE(doc.contains("ports") && doc["ports"].size() == 2) << j;
  for (const json& p : doc["ports"]) {
    const bool is_a = p.value("key", "") == "net/a/in";
    EXPECT_EQ(p.value("pushed", -1), is_a ? 300 : 40) << p;
    EXPECT_EQ(p.value("received", -1), is_a ? 100 : 0) << p;
    EXPECT_EQ(p.value("depth", -1), is_a ? 200 : 40) << p;
    EXPECT_EQ(p.value("buffer", -1), is_a ? 512 : 64) << p;
    EXPECT_EQ(p["time_in_queue"].value("count", -1), is_a ? 100 : 0) << p;
    // Nothing moved in the interval.
    EXPECT_EQ(p.value("in_per_s", -1.0), 0.0) << p;
    EXPECT_EQ(p["time_in_queue_interval"].value("count", -1), 0) << p;
  }
  EXPECT_EQ(doc.value("sort", ""), "in");

  const ShmctlRun r = shmctl(t.ns, {"top", "--once", "--interval", "100", "--sort", "depth"});
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_NE(r.out.find("2 ports"), std::string::npos) << r;
  const auto a_at = r.out.find("net/a/in"), b_at = r.out.find("net/b/in");
  ASSERT_NE(a_at, std::string::npos) << r;
  ASSERT_NE(b_at, std::string::npos) << r;
  EXPECT_LT(b_at, a_at) << "b is fuller (40 of 64) than a (200 of 512): first by depth\n" << r;
  EXPECT_NE(r.out.find("200/512  39%"), std::string::npos) << r;
  EXPECT_NE(r.out.find("40/64  62%"), std::string::npos) << r;
  EXPECT_EQ(r.out.find("\x1b"), std::string::npos) << "no escapes in --once output";

  const ShmctlRun usage = shmctl(t.ns, {"top", "--sort", "colour"});
  EXPECT_EQ(usage.code, 2) << usage;
  const ShmctlRun no_tty = shmctl(t.ns, {"top"});  // stdin is /dev/null here
  EXPECT_EQ(no_tty.code, 2) << no_tty;
  EXPECT_NE(no_tty.err.find("use --once or --json"), std::string::npos) << no_tty;
  t.a.reset();
  t.b.reset();
  EXPECT_SHM_CLEAN(t.ns);
}

namespace {

// A tmux server of its own (its own socket), running one command in a 160 x 40 window.
class Tmux {
 public:
  explicit Tmux(const std::string& command)
      : socket_("bloccs-top-" + std::to_string(getpid())) {
    ok_ = run({"new-session", "-d", "-s", "top", "-x", "160", "-y", "40", command}) == 0;
  }
  ~Tmux() { run({"kill-server"}); }
  bool ok() const { return ok_; }
  int run(const std::vector<std::string>& args, std::string* out = nullptr) const {
    std::string cmd = "tmux -L " + socket_;
    for (const auto& a : args) cmd += " '" + a + "'";
    cmd += " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return -1;
    char buf[4096];
    std::string text;
    while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) text.append(buf, n);
    const int status = pclose(p);
    if (out) *out = text;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  std::string screen() const {
    std::string s;
    run({"capture-pane", "-p", "-t", "top"}, &s);
    return s;
  }
  void keys(const std::vector<std::string>& k) const {
    std::vector<std::string> args{"send-keys", "-t", "top"};
    args.insert(args.end(), k.begin(), k.end());
    run(args);
  }
  // Waits until the screen holds `text`.
  bool shows(const std::string& text, std::chrono::milliseconds limit = 10s) const {
    return eventually([&] { return screen().find(text) != std::string::npos; }, limit);
  }
  bool alive() const { return run({"has-session", "-t", "top"}) == 0; }

 private:
  std::string socket_;
  bool ok_ = false;
};

}  // namespace

TEST(ShmctlTop, UnderTmuxItRedrawsSortsDrillsInAndQuits) {
  if (std::system("command -v tmux >/dev/null 2>&1") != 0)
    GTEST_FAIL() << "tmux is missing: scripts/install-deps.sh installs it";
  BusyPorts t;
  ASSERT_NO_FATAL_FAILURE(t.start());
  // When top quits, the window's shell says so and stays, so the screen after can be read.
  Tmux tmux(std::string(SHMCTL_PATH) + " --namespace " + t.ns.name() +
            " top --interval 200; echo top-exited-$?; sleep 30");
  ASSERT_TRUE(tmux.ok());
  ASSERT_TRUE(tmux.shows("2 ports")) << tmux.screen();
  EXPECT_TRUE(tmux.shows("IN/sv")) << tmux.screen();  // sorted by in, largest first

  // It redraws: 50 more received show in a's row within a look or two.
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(t.a->receive(in(5s)));
  EXPECT_TRUE(tmux.shows("150/512")) << tmux.screen();

  tmux.keys({">"});  // sort by out
  EXPECT_TRUE(tmux.shows("OUT/sv")) << tmux.screen();
  tmux.keys({">", ">"});  // parked, then... depth comes before parked: back one
  tmux.keys({"<"});
  EXPECT_TRUE(tmux.shows("DEPTHv")) << tmux.screen();
  {
    const std::string s = tmux.screen();
    EXPECT_LT(s.find("net/b/in"), s.find("net/a/in")) << s;  // 62% before 29%
  }
  tmux.keys({"r"});
  EXPECT_TRUE(tmux.shows("DEPTH^")) << tmux.screen();

  tmux.keys({"Down", "Enter"});  // the first row is a now (smallest depth first)
  ASSERT_TRUE(tmux.shows("port net/a/in in namespace " + t.ns.name())) << tmux.screen();
  EXPECT_TRUE(tmux.shows("(150 messages)")) << tmux.screen();
  EXPECT_TRUE(tmux.shows("|#")) << tmux.screen();  // a bar of the histogram
  tmux.keys({"Escape"});
  EXPECT_TRUE(tmux.shows("sorted by depth")) << tmux.screen();
  tmux.keys({"q"});
  EXPECT_TRUE(tmux.shows("top-exited-0")) << tmux.screen();
  // The alternate screen is gone: what top drew is not left on the shell's screen.
  EXPECT_EQ(tmux.screen().find("sorted by"), std::string::npos) << tmux.screen();
  t.a.reset();
  t.b.reset();
  EXPECT_SHM_CLEAN(t.ns);
}
