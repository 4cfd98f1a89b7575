// SPDX-License-Identifier: Apache-2.0
// shmctl top: a live, sorted view of every port of a namespace (or of all of them): rates in and
// out, depth against the buffer, parked pushers, and the time in queue of the last interval.
//
// TopModel turns successive looks (inspect.hpp) into rows; render_* draw them as text for a
// terminal of a given size; run_top drives a terminal (raw keys, the alternate screen, plain
// ANSI escapes: it works under tmux and over ssh), or prints one look for scripts.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tools/shmctl/inspect.hpp"

namespace bloccs::shmctl {

struct TopRow {
  std::string ns;
  PortView view;            // as last seen
  double in_per_s = 0;      // pushed, over the last interval
  double out_per_s = 0;     // received, over the last interval
  port::QueueTimeSnapshot interval;  // time in queue of what was received in the last interval
  bool has_interval = false;         // seen in the look before too (rates and interval are known)

  std::string id() const;  // "<ns> <key>": what a selection follows
  double fill() const;     // depth / buffer (0 for an unbounded port)
};

enum class TopColumn { key, owner, in, out, depth, parked, p50, p99, max };
inline constexpr int kTopColumns = 9;
const char* column_name(TopColumn c);
std::optional<TopColumn> column_named(const std::string& name);

class TopModel {
 public:
  // A new look at `at`: rates and intervals are against the look before.
  void update(std::vector<Looked> looked, std::chrono::steady_clock::time_point at);
  const std::vector<TopRow>& rows() const noexcept { return rows_; }
  double interval_s() const noexcept { return interval_s_; }

  void sort_by(TopColumn c, bool descending);
  void next_column(int step);  // `<` and `>`
  void reverse() { sort_by(column_, !descending_); }
  TopColumn column() const noexcept { return column_; }
  bool descending() const noexcept { return descending_; }

  // The selection follows a port by its id through re-sorts; none until the keys move it.
  void move_selection(int step);
  int selected() const;  // index into rows(), or -1
  const TopRow* selected_row() const;
  void select_first_if_none();

 private:
  void sort();
  std::vector<TopRow> rows_;
  std::vector<Looked> before_;
  std::chrono::steady_clock::time_point before_at_{};
  double interval_s_ = 0;
  TopColumn column_ = TopColumn::in;
  bool descending_ = true;
  std::string selected_id_;
};

// The table, `width` x `height` characters at most (the selected row marked with '>').
std::string render_table(const TopModel& model, bool all_namespaces, const std::string& where,
                         int width, int height);
// One port: its numbers, and its time in queue drawn as a bar chart, one bar per power of two.
std::string render_detail(const TopRow& row, int width, int height);
// What --json prints: every row with its numbers.
nlohmann::json top_json(const TopModel& model);

struct TopOptions {
  std::vector<std::string> namespaces;  // looked at each interval (re-listed with -A)
  bool all_namespaces = false;
  std::string where;  // for the title: the namespace, or "all namespaces"
  std::chrono::milliseconds interval{1000};
  bool once = false;
  bool json = false;
  TopColumn sort = TopColumn::in;
  bool descending = true;
};
// Runs top; returns the exit code (2 if it needs a terminal it does not have).
int run_top(const TopOptions& options);

}  // namespace bloccs::shmctl
