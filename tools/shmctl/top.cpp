// SPDX-License-Identifier: Apache-2.0
// shmctl top: the model, what it draws, and the terminal it runs in (top.hpp).
#include "tools/shmctl/top.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <map>
#include <thread>

#include "port/port_stats.hpp"
#include "shm/namespace_dir.hpp"
#include "tools/shmctl/format.hpp"

namespace bloccs::shmctl {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kColumnNames[kTopColumns] = {"key", "owner", "in",  "out", "depth",
                                                   "parked", "p50", "p99", "max"};

std::uint64_t p50_of(const TopRow& r) {
  return r.interval.percentile(0.5);
}
std::uint64_t p99_of(const TopRow& r) {
  return r.interval.percentile(0.99);
}

// Text cut or padded to exactly `w` columns (ASCII: every byte one column).
std::string cell(const std::string& s, std::size_t w, bool right = false) {
  if (s.size() >= w) return s.substr(0, w);
  const std::string pad(w - s.size(), ' ');
  return right ? pad + s : s + pad;
}

std::string fit(std::string line, int width) {
  if (width > 0 && line.size() > static_cast<std::size_t>(width)) line.resize(width);
  return line;
}

std::string key_of(const TopRow& r) {
  return key_text(r.view.entry.key);
}

std::string owner_of(const TopRow& r) {
  return std::to_string(r.view.entry.owner.pid) + (r.view.owner_alive ? " alive" : " dead");
}

std::string depth_of(const TopRow& r) {
  if (r.view.error) return "?";
  std::string s = std::to_string(r.view.depth);
  if (r.view.buffer == 0) return s + " (unbounded)";
  char pct[16];
  std::snprintf(pct, sizeof pct, " %3.0f%%", r.fill() * 100);
  return s + "/" + std::to_string(r.view.buffer) + pct;
}

// A time-in-queue cell of the last interval: "-" if nothing was received in it, "off" if the
// port keeps no histogram.
std::string queue_cell(const TopRow& r, std::uint64_t ns) {
  if (r.view.error) return "?";
  if (!r.view.histogram) return "off";
  if (!r.has_interval || r.interval.count() == 0) return "-";
  return duration_text(ns);
}

}  // namespace

std::string TopRow::id() const {
  return ns + " " + key_of(*this);
}

double TopRow::fill() const {
  return view.buffer ? static_cast<double>(view.depth) / view.buffer : 0.0;
}

const char* column_name(TopColumn c) {
  return kColumnNames[static_cast<int>(c)];
}

std::optional<TopColumn> column_named(const std::string& name) {
  for (int i = 0; i < kTopColumns; ++i)
    if (name == kColumnNames[i]) return static_cast<TopColumn>(i);
  return std::nullopt;
}

void TopModel::update(std::vector<Looked> looked, Clock::time_point at) {
  // The look before, by port and owner: a port restarted by another owner starts afresh.
  std::map<std::string, const PortView*> previous;
  for (const Looked& l : before_)
    for (const PortView& v : l.ports)
      previous[l.ns + " " + key_text(v.entry.key) + " " + std::to_string(v.entry.owner.pid)] = &v;
  const double seconds = before_.empty() ? 0 : std::chrono::duration<double>(at - before_at_).count();
  rows_.clear();
  for (const Looked& l : looked)
    for (const PortView& v : l.ports) {
      TopRow r{l.ns, v, 0, 0, {}, false};
      auto it = previous.find(l.ns + " " + key_text(v.entry.key) + " " +
                              std::to_string(v.entry.owner.pid));
      if (it != previous.end() && seconds > 0 && !v.error && !it->second->error) {
        const PortView& b = *it->second;
        auto per_s = [&](std::uint64_t x, std::uint64_t y) {
          return y > x ? static_cast<double>(y - x) / seconds : 0.0;
        };
        r.in_per_s = per_s(b.counters.pushed, v.counters.pushed);
        r.out_per_s = per_s(b.counters.received, v.counters.received);
        r.interval = v.time_in_queue.since(b.time_in_queue);
        r.has_interval = true;
      }
      rows_.push_back(std::move(r));
    }
  before_ = std::move(looked);
  before_at_ = at;
  interval_s_ = seconds;
  sort();
}

void TopModel::sort_by(TopColumn c, bool descending) {
  column_ = c;
  descending_ = descending;
  sort();
}

void TopModel::next_column(int step) {
  const int c = (static_cast<int>(column_) + step + kTopColumns) % kTopColumns;
  // Names sort up, numbers down, as one mostly wants them.
  sort_by(static_cast<TopColumn>(c), c > static_cast<int>(TopColumn::owner));
}

void TopModel::sort() {
  auto number = [&](const TopRow& r) -> double {
    switch (column_) {
      case TopColumn::in: return r.in_per_s;
      case TopColumn::out: return r.out_per_s;
      case TopColumn::depth: return r.view.buffer ? r.fill() : static_cast<double>(r.view.depth);
      case TopColumn::parked: return r.view.parked_pushers;
      case TopColumn::p50: return static_cast<double>(p50_of(r));
      case TopColumn::p99: return static_cast<double>(p99_of(r));
      case TopColumn::max: return static_cast<double>(r.interval.max_ns);
      default: return 0;
    }
  };
  std::stable_sort(rows_.begin(), rows_.end(), [&](const TopRow& a, const TopRow& b) {
    if (column_ == TopColumn::key || column_ == TopColumn::owner) {
      const auto ka = column_ == TopColumn::key ? a.id() : owner_of(a) + a.id();
      const auto kb = column_ == TopColumn::key ? b.id() : owner_of(b) + b.id();
      return descending_ ? kb < ka : ka < kb;
    }
    const double x = number(a), y = number(b);
    if (x != y) return descending_ ? x > y : x < y;
    return a.id() < b.id();  // ties in a stable order, not by who came first
  });
}

int TopModel::selected() const {
  if (selected_id_.empty()) return -1;
  for (std::size_t i = 0; i < rows_.size(); ++i)
    if (rows_[i].id() == selected_id_) return static_cast<int>(i);
  return -1;
}

const TopRow* TopModel::selected_row() const {
  const int i = selected();
  return i < 0 ? nullptr : &rows_[static_cast<std::size_t>(i)];
}

void TopModel::select_first_if_none() {
  if (selected() < 0 && !rows_.empty()) selected_id_ = rows_.front().id();
}

void TopModel::move_selection(int step) {
  if (rows_.empty()) return;
  const int i = selected();
  if (i < 0) {
    selected_id_ = rows_.front().id();
    return;
  }
  const int n = static_cast<int>(rows_.size());
  selected_id_ = rows_[static_cast<std::size_t>(std::clamp(i + step, 0, n - 1))].id();
}

std::string render_table(const TopModel& model, bool all_namespaces, const std::string& where,
                         int width, int height) {
  const auto& rows = model.rows();
  std::size_t key_w = 24, ns_w = 0;
  for (const TopRow& r : rows) {
    key_w = std::max(key_w, key_of(r).size());
    ns_w = std::max(ns_w, r.ns.size());
  }
  key_w = std::min<std::size_t>(key_w, 40);
  ns_w = all_namespaces ? std::min<std::size_t>(std::max<std::size_t>(ns_w, 9), 24) : 0;

  std::string out;
  char title[256];
  std::uint64_t parked = 0;
  double in = 0, out_rate = 0;
  for (const TopRow& r : rows) {
    parked += r.view.parked_pushers;
    in += r.in_per_s;
    out_rate += r.out_per_s;
  }
  std::snprintf(title, sizeof title,
                "shmctl top - %s - %zu ports, in %s/s, out %s/s, %llu pushers parked - every %.1f s",
                where.c_str(), rows.size(), rate_text(in).c_str(), rate_text(out_rate).c_str(),
                static_cast<unsigned long long>(parked), model.interval_s());
  out += fit(title, width) + "\n";
  out += fit("sorted by " + std::string(column_name(model.column())) +
                 (model.descending() ? " (down)" : " (up)") +
                 "   < > sort  r reverse  up/down select  Enter detail  q quit",
             width) +
         "\n\n";

  auto header = [&](TopColumn c, const char* text, std::size_t w, bool right) {
    std::string t = text;
    if (model.column() == c) t += model.descending() ? "v" : "^";
    return cell(t, w, right);
  };
  std::string head = "  ";
  if (ns_w) head += cell("NAMESPACE", ns_w) + " ";
  head += header(TopColumn::key, "KEY", key_w, false) + " " +
          header(TopColumn::owner, "OWNER", 12, false) + " " +
          header(TopColumn::in, "IN/s", 8, true) + " " + header(TopColumn::out, "OUT/s", 8, true) +
          " " + header(TopColumn::depth, "DEPTH", 20, true) + " " +
          header(TopColumn::parked, "PARKED", 7, true) + " " +
          header(TopColumn::p50, "P50", 9, true) + " " + header(TopColumn::p99, "P99", 9, true) +
          " " + header(TopColumn::max, "MAX", 9, true);
  out += fit(head, width) + "\n";

  const int sel = model.selected();
  const int room = std::max(1, height - 5);
  // Keep the selection on the screen: scroll so that it is on the last line if it is below.
  const int first = sel >= room ? sel - room + 1 : 0;
  if (rows.empty()) out += "  (no ports)\n";
  for (int i = first; i < static_cast<int>(rows.size()) && i < first + room; ++i) {
    const TopRow& r = rows[static_cast<std::size_t>(i)];
    std::string line = i == sel ? "> " : "  ";
    if (ns_w) line += cell(r.ns, ns_w) + " ";
    line += cell(key_of(r), key_w) + " " + cell(owner_of(r), 12) + " " +
            cell(r.has_interval ? rate_text(r.in_per_s) : "-", 8, true) + " " +
            cell(r.has_interval ? rate_text(r.out_per_s) : "-", 8, true) + " " +
            cell(depth_of(r), 20, true) + " " +
            cell(r.view.error ? "?" : std::to_string(r.view.parked_pushers), 7, true) + " " +
            cell(queue_cell(r, p50_of(r)), 9, true) + " " +
            cell(queue_cell(r, p99_of(r)), 9, true) + " " +
            cell(queue_cell(r, r.interval.max_ns), 9, true);
    out += fit(line, width) + "\n";
  }
  return out;
}

std::string render_detail(const TopRow& r, int width, int height) {
  const PortView& v = r.view;
  std::string out;
  auto line = [&](const std::string& s) { out += fit(s, width) + "\n"; };
  line("port " + key_of(r) + " in namespace " + r.ns + "   (Esc, b or left: back; q: quit)");
  line("");
  line("owner       " + owner_of(r));
  if (v.error) {
    line("error       " + *v.error);
    return out;
  }
  line(std::string("kind        ") + (v.spsc ? "spsc" : "mpsc") + ", buffer " +
       (v.buffer ? std::to_string(v.buffer) : "unbounded") + ", max_payload " +
       std::to_string(v.max_payload));
  line("depth       " + depth_of(r) + ", " + std::to_string(v.bytes_used) + " of " +
       std::to_string(v.capacity) + " bytes");
  line("rates       in " + rate_text(r.in_per_s) + "/s, out " + rate_text(r.out_per_s) + "/s");
  line("pushed      " + std::to_string(v.counters.pushed) + ", received " +
       std::to_string(v.counters.received) + ", push_after pending " +
       std::to_string(v.pending_after));
  line("parked      " + std::to_string(v.parked_pushers) + " now; " +
       std::to_string(v.pushes_waited) + " pushes parked, " +
       duration_text(static_cast<std::uint64_t>(v.waited.count())) + " in all, longest " +
       duration_text(static_cast<std::uint64_t>(v.longest_wait.count())) + "; timed out " +
       std::to_string(v.counters.timed_out));
  if (!v.histogram) {
    line("in queue    not kept (the port started with latency_histogram off)");
    return out;
  }
  const port::QueueTimeSnapshot& all = v.time_in_queue;
  line("in queue    since start: p50 " + duration_text(all.percentile(0.5)) + ", p99 " +
       duration_text(all.percentile(0.99)) + ", p99.9 " + duration_text(all.percentile(0.999)) +
       ", max " + duration_text(all.count() ? all.max_ns : 0) + " (" +
       std::to_string(all.count()) + " messages)");
  if (r.has_interval && r.interval.count())
    line("            last interval: p50 " + duration_text(r.interval.percentile(0.5)) +
         ", p99 " + duration_text(r.interval.percentile(0.99)) + ", max " +
         duration_text(r.interval.max_ns) + " (" + std::to_string(r.interval.count()) +
         " messages)");
  line("");
  // The histogram since start, one bar per power of two (16 buckets each).
  std::vector<std::pair<unsigned, std::uint64_t>> bars;  // first bucket, count
  for (unsigned b = 0; b < port::kQueueBuckets;) {
    const unsigned end = b < port::kLinearBuckets ? port::kLinearBuckets
                         : b >= port::kOverflowBucket ? b + 1
                                                      : b + port::kPerOctave;
    std::uint64_t n = 0;
    for (unsigned i = b; i < end; ++i) n += all.buckets[i];
    bars.emplace_back(b, n);
    b = end;
  }
  std::size_t lo = 0, hi = bars.size();
  while (lo < hi && bars[lo].second == 0) ++lo;
  while (hi > lo && bars[hi - 1].second == 0) --hi;
  if (lo == hi) {
    line("time in queue: no message received yet");
    return out;
  }
  line("time in queue since start (one bar per power of two):");
  std::uint64_t most = 0;
  for (std::size_t i = lo; i < hi; ++i) most = std::max(most, bars[i].second);
  const double total = static_cast<double>(all.count());
  const int bar_w = std::max(10, width - 48);
  const int room = std::max(1, height - static_cast<int>(std::count(out.begin(), out.end(), '\n')));
  for (std::size_t i = lo; i < hi && static_cast<int>(i - lo) < room; ++i) {
    const auto [b, n] = bars[i];
    const std::uint64_t top = i + 1 < bars.size() ? port::bucket_low(bars[i + 1].first) : 0;
    const std::string range = cell(duration_text(port::bucket_low(b)), 9, true) + " - " +
                              cell(top ? duration_text(top) : "beyond", 9);
    const int len = static_cast<int>(static_cast<double>(n) / static_cast<double>(most) * bar_w);
    char tail[48];
    std::snprintf(tail, sizeof tail, " %llu (%.1f%%)", static_cast<unsigned long long>(n),
                  100.0 * static_cast<double>(n) / total);
    line(range + " |" + std::string(static_cast<std::size_t>(len), '#') +
         std::string(static_cast<std::size_t>(bar_w - len), ' ') + "|" + tail);
  }
  return out;
}

json top_json(const TopModel& model) {
  json ports = json::array();
  for (const TopRow& r : model.rows()) {
    json p = {{"namespace", r.ns},
              {"key", key_of(r)},
              {"owner_pid", r.view.entry.owner.pid},
              {"owner_alive", r.view.owner_alive}};
    if (r.view.error) {
      p["error"] = *r.view.error;
      ports.push_back(p);
      continue;
    }
    p["in_per_s"] = r.in_per_s;
    p["out_per_s"] = r.out_per_s;
    p["depth"] = r.view.depth;
    p["buffer"] = r.view.buffer ? json(r.view.buffer) : json(nullptr);
    p["parked_pushers"] = r.view.parked_pushers;
    p["pushed"] = r.view.counters.pushed;
    p["received"] = r.view.counters.received;
    if (r.view.histogram) {
      const port::QueueTimeSnapshot& t = r.interval;
      p["time_in_queue_interval"] = {{"count", t.count()},
                                     {"p50_ns", t.percentile(0.5)},
                                     {"p99_ns", t.percentile(0.99)},
                                     {"max_ns", t.max_ns}};
      const QueueTimes all = port::queue_times(r.view.time_in_queue);
      p["time_in_queue"] = {{"count", all.count},
                            {"p50_ns", all.p50.count()},
                            {"p99_ns", all.p99.count()},
                            {"max_ns", all.max.count()}};
    } else {
      p["time_in_queue_interval"] = nullptr;
      p["time_in_queue"] = nullptr;
    }
    ports.push_back(p);
  }
  return {{"interval_s", model.interval_s()},
          {"sort", column_name(model.column())},
          {"descending", model.descending()},
          {"ports", ports}};
}

// ---- the terminal ---------------------------------------------------------------------------

namespace {

std::atomic<bool> g_quit{false};
void on_quit(int) {
  g_quit.store(true);
}

// Raw keys, no echo, the alternate screen and no cursor while it lives; all restored after.
class Terminal {
 public:
  Terminal() {
    if (tcgetattr(STDIN_FILENO, &saved_) == 0) {
      termios raw = saved_;
      raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
      raw.c_cc[VMIN] = 0;
      raw.c_cc[VTIME] = 0;
      restore_ = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
    }
    std::fputs("\x1b[?1049h\x1b[?25l", stdout);
  }
  ~Terminal() {
    std::fputs("\x1b[?25h\x1b[?1049l", stdout);
    std::fflush(stdout);
    if (restore_) tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }
  Terminal(const Terminal&) = delete;
  Terminal& operator=(const Terminal&) = delete;

  static std::pair<int, int> size() {
    winsize w{};
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &w) == 0 && w.ws_col > 0 && w.ws_row > 0)
      return {w.ws_col, w.ws_row};
    return {80, 24};
  }
  // Draws a frame over the last: each line cleared to its end, the rest of the screen after.
  static void draw(const std::string& frame) {
    std::string out = "\x1b[H";
    std::size_t at = 0;
    while (at < frame.size()) {
      const std::size_t nl = frame.find('\n', at);
      out += frame.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
      out += "\x1b[K\r\n";
      if (nl == std::string::npos) break;
      at = nl + 1;
    }
    out += "\x1b[J";
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
  }

 private:
  termios saved_{};
  bool restore_ = false;
};

enum class Key { none, quit, up, down, left, right, enter, back, sort_prev, sort_next, reverse };

// The keys waiting on stdin (a burst may hold several, and arrows are 3 bytes each).
std::vector<Key> read_keys() {
  char buf[64];
  const ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
  std::vector<Key> keys;
  for (ssize_t i = 0; i < n; ++i) {
    const char c = buf[i];
    if (c == '\x1b') {
      if (i + 2 < n && (buf[i + 1] == '[' || buf[i + 1] == 'O')) {
        const char k = buf[i + 2];
        i += 2;
        keys.push_back(k == 'A' ? Key::up : k == 'B' ? Key::down : k == 'C' ? Key::right
                       : k == 'D' ? Key::left : Key::none);
      } else {
        keys.push_back(Key::back);  // Esc alone
      }
      continue;
    }
    switch (c) {
      case 'q': case 'Q': keys.push_back(Key::quit); break;
      case 'k': keys.push_back(Key::up); break;
      case 'j': keys.push_back(Key::down); break;
      case '\r': case '\n': keys.push_back(Key::enter); break;
      case 'b': keys.push_back(Key::back); break;
      case '<': case ',': keys.push_back(Key::sort_prev); break;
      case '>': case '.': keys.push_back(Key::sort_next); break;
      case 'r': keys.push_back(Key::reverse); break;
      default: break;
    }
  }
  return keys;
}

std::vector<std::string> namespaces_of(const TopOptions& o) {
  return o.all_namespaces ? shm::list_namespaces() : o.namespaces;
}

}  // namespace

int run_top(const TopOptions& o) {
  TopModel model;
  model.sort_by(o.sort, o.descending);
  if (o.once || o.json) {  // two looks an interval apart: rates and intervals need both
    model.update(look_at(namespaces_of(o)), Clock::now());
    std::this_thread::sleep_for(o.interval);
    model.update(look_at(namespaces_of(o)), Clock::now());
    if (o.json) {
      json j = top_json(model);
      j["namespaces"] = o.all_namespaces ? json("all") : json(o.namespaces);
      std::puts(j.dump(2, ' ', false, json::error_handler_t::replace).c_str());
    } else {
      std::fputs(render_table(model, o.all_namespaces, o.where, 0, 1 << 20).c_str(), stdout);
    }
    return model.rows().empty() ? 1 : 0;
  }
  if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
    std::fprintf(stderr,
                 "shmctl: top needs a terminal for its live view; use --once or --json in a "
                 "script\n");
    return 2;
  }
  struct sigaction sa {};
  sa.sa_handler = on_quit;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);

  Terminal term;
  bool detail = false;
  auto next_look = Clock::now();
  while (!g_quit.load()) {
    if (Clock::now() >= next_look) {
      model.update(look_at(namespaces_of(o)), Clock::now());
      next_look = Clock::now() + o.interval;
    }
    const auto [width, height] = Terminal::size();
    const TopRow* row = detail ? model.selected_row() : nullptr;
    if (detail && !row) detail = false;  // the port went away
    Terminal::draw(row ? render_detail(*row, width, height)
                       : render_table(model, o.all_namespaces, o.where, width, height));
    const auto wait =
        std::chrono::duration_cast<std::chrono::milliseconds>(next_look - Clock::now());
    pollfd p{STDIN_FILENO, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(std::max<std::int64_t>(wait.count(), 0))) <= 0) continue;
    for (Key k : read_keys()) {
      switch (k) {
        case Key::quit: g_quit.store(true); break;
        case Key::up: model.move_selection(-1); break;
        case Key::down: model.move_selection(1); break;
        case Key::enter:
        case Key::right:
          model.select_first_if_none();
          detail = model.selected_row() != nullptr;
          break;
        case Key::back:
        case Key::left: detail = false; break;
        case Key::sort_prev: model.next_column(-1); break;
        case Key::sort_next: model.next_column(1); break;
        case Key::reverse: model.reverse(); break;
        case Key::none: break;
      }
    }
  }
  return 0;
}

}  // namespace bloccs::shmctl
