// SPDX-License-Identifier: Apache-2.0
// The metrics endpoint (issue 16): the exposition's text; `shmctl metrics` serving real ports
// of other processes, checked by promtool; clear errors for a bad --listen and a port in use;
// scrapes while ports come and go; and a real Prometheus (Debian's, started here on loopback
// with a scrape config written here) scraping `shmctl metrics` and `bloccs run --metrics`
// while the demo runs, then asked through its HTTP API for the rates, the histogram, and which
// port has the worst p99 time in queue.
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <httplib.h>

#include "bloccs/port.hpp"
#include "net_support.hpp"
#include "busy_ports_support.hpp"
#include "port_test_support.hpp"
#include "shmctl_test_support.hpp"
#include "tools/metrics/exposition.hpp"

using bloccs::Port;
using bloccs::Pusher;
using namespace bloccs::test;
namespace fs = std::filesystem;

namespace {

struct Got {
  int status = -1;
  std::string body;
};

Got get(int port, const std::string& path, const httplib::Params& params = {}) {
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(2);
  c.set_read_timeout(10);
  auto r = params.empty() ? c.Get(path.c_str()) : c.Get(path.c_str(), params, httplib::Headers{});
  if (!r) return {};
  return {r->status, r->body};
}

// promtool's verdict on an exposition: "" if it accepts it, else what it said.
std::string promtool_check(const std::string& text) {
  TempDir dir;
  const fs::path in = dir / "exposition.txt", out = dir / "promtool.txt";
  std::ofstream(in) << text;
  const std::string cmd =
      "promtool check metrics < " + in.string() + " > " + out.string() + " 2>&1";
  const int rc = std::system(cmd.c_str());
  return rc == 0 ? "" : "promtool: " + read_file(out) + "\n" + text.substr(0, 2000);
}

// The value of the sample `name{...labels...}` (labels given as they appear, in order).
std::optional<double> sample(const std::string& text, const std::string& prefix) {
  const auto at = text.find("\n" + prefix);
  if (at == std::string::npos) return std::nullopt;
  const auto end = text.find('\n', at + 1);
  const std::string line = text.substr(at + 1, end - at - 1);
  return std::stod(line.substr(line.rfind(' ') + 1));
}

bloccs::shmctl::PortView port_view(const std::string& node, std::uint64_t received) {
  bloccs::shmctl::PortView v;
  v.entry.key = {"net", node, "in"};
  v.owner_alive = true;
  v.buffer = 64;
  v.depth = 3;
  v.counters.pushed = received + 3;
  v.counters.received = received;
  v.histogram = true;
  return v;
}

}  // namespace

TEST(MetricsExposition, FamiliesOnceHistogramsCumulativeLabelsEscaped) {
  auto a = port_view("a", 100);
  // 60 at ~1 us, 30 at ~1 ms, 10 past the last finite bucket (137 s).
  a.time_in_queue.buckets[bloccs::port::bucket_of(1'000)] = 60;
  a.time_in_queue.buckets[bloccs::port::bucket_of(1'000'000)] = 30;
  a.time_in_queue.buckets[bloccs::port::kOverflowBucket] = 10;
  a.time_in_queue.sum_ns = 2'000'000'000;
  auto b = port_view("b\"quoted\\", 5);
  b.histogram = false;
  bloccs::metrics::Exposition e;
  e.add_ports({{"ns-1", {a, b}}});
  bloccs::metrics::NodeSample n{"ns-1", "net", "sink", true, 2, {}};
  n.counters.handled = 7;
  e.add_nodes({n});
  const std::string t = e.text();

  EXPECT_EQ(promtool_check(t), "");
  // One HELP and TYPE per family, before its samples.
  std::size_t helps = 0;
  for (std::size_t at = 0; (at = t.find("# TYPE bloccs_port_received_total ", at)) != t.npos; ++at)
    ++helps;
  EXPECT_EQ(helps, 1u) << t;
  const std::string la = R"(namespace="ns-1",network="net",node="a",port="in")";
  EXPECT_EQ(sample(t, "bloccs_port_received_total{" + la + "}"), 100) << t;
  EXPECT_EQ(sample(t, "bloccs_port_depth{" + la + "}"), 3) << t;
  EXPECT_EQ(sample(t, "bloccs_port_buffer{" + la + "}"), 64) << t;
  // Cumulative: 0 below 512 ns, 60 from 1.024 us, 90 from 1.048576 ms, 100 at +Inf.
  EXPECT_EQ(sample(t, "bloccs_port_time_in_queue_seconds_bucket{" + la + R"(,le="5.12e-07"})"), 0);
  EXPECT_EQ(sample(t, "bloccs_port_time_in_queue_seconds_bucket{" + la + R"(,le="1.024e-06"})"),
            60) << t;
  EXPECT_EQ(sample(t, "bloccs_port_time_in_queue_seconds_bucket{" + la + R"(,le="0.001048576"})"),
            90) << t;
  EXPECT_EQ(sample(t, "bloccs_port_time_in_queue_seconds_bucket{" + la + R"(,le="137.438953472"})"),
            90) << t;
  EXPECT_EQ(sample(t, "bloccs_port_time_in_queue_seconds_bucket{" + la + R"(,le="+Inf"})"), 100);
  EXPECT_EQ(sample(t, "bloccs_port_time_in_queue_seconds_count{" + la + "}"), 100);
  EXPECT_EQ(sample(t, "bloccs_port_time_in_queue_seconds_sum{" + la + "}"), 2);
  // The port without a histogram has its counters, and no histogram; its label is escaped.
  const std::string lb = R"(namespace="ns-1",network="net",node="b\"quoted\\",port="in")";
  EXPECT_EQ(sample(t, "bloccs_port_received_total{" + lb + "}"), 5) << t;
  EXPECT_EQ(t.find("bloccs_port_time_in_queue_seconds_count{" + lb), std::string::npos) << t;
  const std::string ln = R"(namespace="ns-1",network="net",node="sink")";
  EXPECT_EQ(sample(t, "bloccs_node_handled_total{" + ln + "}"), 7) << t;
  EXPECT_EQ(sample(t, "bloccs_node_restarts_total{" + ln + "}"), 2) << t;
  EXPECT_EQ(sample(t, "bloccs_node_up{" + ln + "}"), 1) << t;
}

namespace {

// `shmctl metrics` on a free loopback port, once it says it serves.
struct MetricsProcess {
  int port = free_loopback_port();
  ShmctlProcess p;
  MetricsProcess(const TestNamespace& ns, std::vector<std::string> extra = {})
      : p(ns.name(), with(extra, "127.0.0.1:" + std::to_string(port))) {}
  static std::vector<std::string> with(std::vector<std::string> extra, const std::string& at) {
    std::vector<std::string> args{"metrics", "--listen", at};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  bool serving() {
    return p.read_until([](const std::string& out) { return out.find("serving") != out.npos; },
                        10s);
  }
  ShmctlRun stop() {
    kill(p.pid(), SIGTERM);
    return p.finish(10s);
  }
};

}  // namespace

TEST(ShmctlMetrics, ServesEveryPortOfItsNamespaceAndPromtoolAcceptsIt) {
  BusyPorts t;
  ASSERT_NO_FATAL_FAILURE(t.start());
  MetricsProcess m(t.ns);
  ASSERT_TRUE(m.serving()) << m.p.out() << m.p.err();
  EXPECT_NE(m.p.out().find("http://127.0.0.1:" + std::to_string(m.port) + "/metrics"),
            std::string::npos)
      << m.p.out();
  const Got g = get(m.port, "/metrics");
  ASSERT_EQ(g.status, 200);
  EXPECT_EQ(promtool_check(g.body), "");
  const std::string la = "{namespace=\"" + t.ns.name() + R"(",network="net",node="a",port="in")";
  const std::string lb = "{namespace=\"" + t.ns.name() + R"(",network="net",node="b",port="in")";
  EXPECT_EQ(sample(g.body, "bloccs_port_pushed_total" + la + "}"), 300) << g.body;
  EXPECT_EQ(sample(g.body, "bloccs_port_received_total" + la + "}"), 100) << g.body;
  EXPECT_EQ(sample(g.body, "bloccs_port_depth" + la + "}"), 200) << g.body;
  EXPECT_EQ(sample(g.body, "bloccs_port_depth" + lb + "}"), 40) << g.body;
  EXPECT_EQ(sample(g.body, "bloccs_port_time_in_queue_seconds_count" + la + "}"), 100) << g.body;
  EXPECT_EQ(sample(g.body, "bloccs_port_time_in_queue_seconds_count" + lb + "}"), 0) << g.body;
  EXPECT_EQ(get(m.port, "/nothing").status, 404);
  const ShmctlRun r = m.stop();
  EXPECT_EQ(r.code, 0) << r;
  t.a.reset();
  t.b.reset();
  EXPECT_SHM_CLEAN(t.ns);
}

TEST(ShmctlMetrics, ABadListenAddressAndAPortInUseAreClearErrors) {
  TestNamespace ns;
  for (const auto& [listen, says] : std::vector<std::pair<std::string, std::string>>{
           {"9464", "has no port"},
           {"127.0.0.1:http", "has no port number"},
           {"127.0.0.1:70000", "has a port past 65535"},
           {"[::1:9464", "unclosed ["},
           {"203.0.113.9:9464", "no interface of this machine has that address"},
           {"no-such-host.invalid:9464", "cannot listen on no-such-host.invalid:9464"}}) {
    const ShmctlRun r = shmctl(ns, {"metrics", "--listen", listen});
    EXPECT_EQ(r.code, 2) << r;
    EXPECT_NE(r.err.find(says), std::string::npos) << r;
  }
  // A port another process listens on: refused (4), with what to do.
  const int busy = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(bind(busy, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(busy, 1), 0);
  ASSERT_EQ(getsockname(busy, reinterpret_cast<sockaddr*>(&a), &len), 0);
  const std::string at = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  const ShmctlRun r = shmctl(ns, {"metrics", "--listen", at});
  EXPECT_EQ(r.code, 4) << r;
  EXPECT_NE(r.err.find("cannot listen on " + at + ": the port is in use"), std::string::npos) << r;
  json doc;
  const ShmctlRun j = shmctl_json(ns, {"metrics", "--listen", at}, doc);
  EXPECT_EQ(j.code, 4) << j;
  EXPECT_EQ(doc.value("code", ""), "already_exists") << j;
  close(busy);
  EXPECT_SHM_CLEAN(ns);
}

// A process starts and stops ports as fast as it can while shmctl metrics is scraped again and
// again: every scrape answers, and promtool accepts what it says.
TEST(ShmctlMetrics, ScrapesWhilePortsComeAndGoAllAnswerAndNothingIsLeftBehind) {
  TestNamespace ns;
  Shared<std::atomic<int>> stop;
  const pid_t churn = spawn([&] {
    for (int i = 0; !stop->load(); ++i) {
      auto p = Port::start({"net", "n" + std::to_string(i % 7), "in"},
                           {.buffer = 16, .ns = ns.name()});
      if (!p) continue;  // its name was taken a moment ago: fine
      (void)bloccs::push({"net", "n" + std::to_string(i % 7), "in"}, num(i));
    }
    return 0;
  });
  MetricsProcess m(ns);
  ASSERT_TRUE(m.serving()) << m.p.out() << m.p.err();
  int answered = 0, checked = 0;
  for (int i = 0; i < 60; ++i) {
    const Got g = get(m.port, "/metrics");
    EXPECT_EQ(g.status, 200);
    if (g.status == 200) ++answered;
    if (i % 15 == 0) {
      EXPECT_EQ(promtool_check(g.body), "");
      ++checked;
    }
  }
  stop->store(1);
  EXPECT_EQ(exit_code(wait_child(churn)), 0);
  EXPECT_EQ(answered, 60);
  const ShmctlRun r = m.stop();
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_SHM_CLEAN(ns);
}

namespace {

// Prometheus from Debian, on a free loopback port, its store in `dir`, scraping `targets`
// (job -> port) every second.
class Prometheus {
 public:
  Prometheus(const TempDir& dir, const std::vector<std::pair<std::string, int>>& targets)
      : port_(free_loopback_port()) {
    std::ofstream cfg(dir / "prometheus.yml");
    cfg << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n";
    for (const auto& [job, port] : targets)
      cfg << "  - job_name: " << job << "\n    static_configs:\n      - targets: ['127.0.0.1:"
          << port << "']\n";
    cfg.close();
    pid_ = start_program("/usr/bin/prometheus",
                         {"--config.file=" + (dir / "prometheus.yml").string(),
                          "--storage.tsdb.path=" + (dir / "data").string(),
                          "--web.listen-address=127.0.0.1:" + std::to_string(port_)},
                         dir / "prometheus.log");
  }
  ~Prometheus() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      wait_child(pid_, 30s);
    }
  }
  bool ready() const {
    return eventually([&] { return get(port_, "/-/ready").status == 200; }, 60s);
  }
  // The instant query's result vector (empty if none, or on an error).
  json query(const std::string& q) const {
    const Got g = get(port_, "/api/v1/query", {{"query", q}});
    if (g.status != 200) return json::array();
    const json j = json::parse(g.body, nullptr, false);
    if (j.is_discarded() || j.value("status", "") != "success") return json::array();
    return j["data"]["result"];
  }

 private:
  int port_;
  pid_t pid_ = -1;
};

double value_of(const json& sample) {
  return std::stod(sample["value"][1].get<std::string>());
}

}  // namespace

TEST(Prometheus, ScrapesShmctlAndTheLauncherWhileTheDemoRunsAndFindsTheWorstP99) {
  if (std::system("test -x /usr/bin/prometheus && command -v promtool >/dev/null") != 0)
    GTEST_FAIL() << "prometheus is missing: scripts/install-deps.sh installs it";
  TestNamespace ns;
  TempDir dir;
  MetricsProcess shmctl_metrics(ns);
  ASSERT_TRUE(shmctl_metrics.serving()) << shmctl_metrics.p.err();
  const int launcher_port = free_loopback_port();
  Prometheus prom(dir, {{"shmctl", shmctl_metrics.port}, {"launcher", launcher_port}});
  ASSERT_TRUE(prom.ready()) << read_file(dir / "prometheus.log");
  // Its first scrape of shmctl metrics done: the demo's whole run is seen.
  ASSERT_TRUE(eventually([&] { return !prom.query("up{job=\"shmctl\"} == 1").empty(); }, 30s))
      << read_file(dir / "prometheus.log");

  // The demo, with twice its messages: about 10 s at the sink's 4,000 a second.
  std::string demo = read_file(DEMO_FILE);
  const auto at = demo.find("\"20000\"");
  ASSERT_NE(at, std::string::npos) << demo;
  demo.replace(at, 7, "\"40000\"");
  std::ofstream(dir / "demo.toml") << demo;
  const pid_t run = start_program(
      BLOCCS_CLI_PATH,
      {"run", (dir / "demo.toml").string(), "--program-dir", DEMO_PROGRAM_DIR, "--namespace",
       ns.name(),
       "--status-interval", "0", "--metrics", "127.0.0.1:" + std::to_string(launcher_port)},
      dir / "run.log");

  // While the demo runs, ask until every answer is in.
  const std::string worst_p99 =
      "topk(1, histogram_quantile(0.99, sum by (le, network, node, port) "
      "(rate(bloccs_port_time_in_queue_seconds_bucket{job=\"shmctl\"}[3s]))))";
  // Asked once both ports on the demo's path have had messages through them for a few
  // scrapes (a p99 each), so that the answer compares them, not whichever came first.
  const std::string p99s =
      "histogram_quantile(0.99, sum by (le, node) "
      "(rate(bloccs_port_time_in_queue_seconds_bucket{job=\"shmctl\",node=~\"transform|sink\"}[3s])))";
  json rates, handled, worst, buckets, both;
  const bool answered = eventually(
      [&] {
        rates = prom.query("sum by (node) (rate(bloccs_port_received_total{job=\"shmctl\"}[3s]) > 0)");
        handled = prom.query("rate(bloccs_node_handled_total{job=\"launcher\",node=\"sink\"}[3s])");
        buckets = prom.query("bloccs_port_time_in_queue_seconds_bucket{job=\"launcher\",le=\"+Inf\"}");
        both = prom.query(p99s + " > 0");
        if (rates.size() < 2 || handled.size() != 1 || value_of(handled[0]) <= 500 ||
            buckets.empty() || both.size() < 2)
          return false;
        std::this_thread::sleep_for(3s);  // a full window of both at their steady pace
        worst = prom.query(worst_p99);
        return worst.size() == 1 && value_of(worst[0]) > 0;
      },
      60s);
  const int status = wait_child(run, 120s);
  EXPECT_TRUE(exited_ok(status)) << read_file(dir / "run.log");
  ASSERT_TRUE(answered) << "rates " << rates << "\nboth p99s " << both << "\nsink handled "
                        << handled << "\nbuckets "
                        << buckets << "\nworst " << worst << "\n"
                        << read_file(dir / "prometheus.log");
  for (const json& r : rates)
    std::printf("received/s at %s: %.0f\n", r["metric"].value("node", "?").c_str(), value_of(r));
  std::printf("sink handled/s (from bloccs run --metrics): %.0f\n", value_of(handled[0]));
  std::printf("%s\n  -> %s/%s/%s, p99 %.1f ms\n", worst_p99.c_str(),
              worst[0]["metric"].value("network", "?").c_str(),
              worst[0]["metric"].value("node", "?").c_str(),
              worst[0]["metric"].value("port", "?").c_str(), value_of(worst[0]) * 1e3);
  // The transform's input waits behind the slow sink's back-pressure with 256 places: the
  // worst p99 is its, not the sink's 64-place port nor the dead-letter port.
  EXPECT_EQ(worst[0]["metric"].value("node", ""), "transform") << worst;
  const ShmctlRun r = shmctl_metrics.stop();
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_SHM_CLEAN(ns);
}
