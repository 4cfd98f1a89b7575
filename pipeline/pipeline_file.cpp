// SPDX-License-Identifier: Apache-2.0
// Reading a pipeline file: TOML (toml++) into a checked PipelineSpec (the format is drawn in
// bloccs/pipeline.hpp). toml++ throws at a syntax error; everything after that is a value.
//
// The checks run in this order, each error naming its line, so the first one a user meets is
// the most basic: TOML syntax; each table's keys (a typo is an error, not a silent default) and
// values, nodes in file order (toml++ keeps tables ordered by key); the wires, each target port
// becoming an input of its node; no cycle of bounded ports; then, if asked, the programs.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <sstream>

#include <toml++/toml.h>

#include "bloccs/pipeline.hpp"
#include "bloccs/port.hpp"
#include "bloccs/port_key.hpp"
#include "shm/names.hpp"

namespace bloccs {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

// The ring's own limits (lockfree/ring_layout.hpp), checked here so the file names the line:
// at most 2^23 - 1 queued messages, and a payload plus its record header within 64 MiB.
constexpr std::int64_t kMaxBuffer = (std::int64_t{1} << 23) - 1;
constexpr std::int64_t kMaxPayload = kMaxPortPayload;
// Delays beyond a day are mistakes, and the bound keeps RetryPolicy::delay's arithmetic finite.
constexpr std::int64_t kMaxMs = 24 * 3600 * 1000;
constexpr std::int64_t kMaxBatch = 65536;
constexpr std::int64_t kMaxU32 = std::numeric_limits<std::uint32_t>::max();

int line_of(const toml::node& n) {
  return static_cast<int>(n.source().begin.line);
}
int line_of(const toml::key& k) {
  return static_cast<int>(k.source().begin.line);
}

// "an integer", "a string", ...: what the file holds where something else was wanted.
std::string kind_of(const toml::node& v) {
  switch (v.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a floating-point number";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    default:
      return "a date or time";
  }
}

// A value as one would write it in the file, or its kind for tables and arrays.
std::string show(const toml::node& v) {
  if (const auto* s = v.as_string()) return "\"" + s->get() + "\"";  // toml++ would use '...'
  std::ostringstream out;
  v.visit([&](const auto& x) {
    if constexpr (toml::is_value<decltype(x)>)
      out << x;
    else
      out << kind_of(v);
  });
  return out.str();
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

// One target of one output, kept with its line for the wiring and cycle errors.
struct Wire {
  std::size_t from;  // index into PipelineSpec::nodes
  std::string output;
  Target to;
  int line;
};

// Where a program is looked for, in order: with a '/', a path (relative to the pipeline
// file's directory); else a name, in `dirs`, then in $PATH (an empty entry is the cwd).
std::vector<fs::path> program_candidates(const fs::path& program, const fs::path& file_dir,
                                         const std::vector<fs::path>& dirs) {
  if (program.native().find('/') != std::string::npos)
    return {program.is_absolute() ? program : file_dir / program};
  std::vector<fs::path> out;
  const auto add = [&](const fs::path& dir) {
    if (std::find(out.begin(), out.end(), dir / program) == out.end()) out.push_back(dir / program);
  };
  for (const auto& dir : dirs) add(dir);
  const char* env = std::getenv("PATH");
  for (std::string_view rest = env ? env : ""; !rest.empty();) {
    const auto colon = rest.find(':');
    const std::string_view dir = rest.substr(0, colon);
    add(dir.empty() ? fs::path(".") : fs::path(dir));
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  return out;
}

// std::nullopt if `p` is a regular file this process may use as `mode` says (X_OK: execute
// it; R_OK: read it, a script); else why not, as a suffix for the list of paths tried ("" when
// it simply does not exist).
std::optional<std::string> why_not_usable(const fs::path& p, int mode) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0)
    return errno == ENOENT ? "" : std::string(" (") + std::strerror(errno) + ")";
  if (!S_ISREG(st.st_mode)) return " (not a regular file)";
  if (::access(p.c_str(), mode) != 0) return mode == X_OK ? " (not executable)" : " (not readable)";
  return std::nullopt;
}

// Depth-first search for a cycle over the wires `out[node]` leaving each node.
class CycleSearch {
 public:
  CycleSearch(const std::map<std::string_view, std::size_t>& index,
              const std::vector<std::vector<const Wire*>>& out)
      : index_(index), out_(out), state_(out.size(), State::unseen) {}

  // The wire closing a cycle reachable from `node`, or nullptr; path() then holds the cycle's
  // wires in order, the closing one last.
  const Wire* from(std::size_t node) {
    if (state_[node] != State::unseen) return nullptr;
    state_[node] = State::open;
    for (const Wire* w : out_[node]) {
      const std::size_t to = index_.at(w->to.node);
      path_.push_back(w);
      if (state_[to] == State::open) {  // back to a node on the current path: a cycle
        path_.erase(path_.begin(), std::find_if(path_.begin(), path_.end(),
                                                [&](const Wire* p) { return p->from == to; }));
        return w;
      }
      if (const Wire* closing = from(to)) return closing;
      path_.pop_back();
    }
    state_[node] = State::done;
    return nullptr;
  }
  const std::vector<const Wire*>& path() const { return path_; }

 private:
  enum class State { unseen, open, done };
  const std::map<std::string_view, std::size_t>& index_;
  const std::vector<std::vector<const Wire*>>& out_;
  std::vector<State> state_;
  std::vector<const Wire*> path_;
};

class Reader {
 public:
  Reader(const fs::path& file, const LoadOptions& options) : file_(file), options_(options) {}

  Result<PipelineSpec> read(std::string_view text) {
    toml::table top;
    try {
      top = toml::parse(text, std::string_view(file_.native()));
    } catch (const toml::parse_error& e) {
      const auto& at = e.source().begin;
      return error(static_cast<int>(at.line),
                   "column " + std::to_string(at.column) + ": this is not valid TOML (" +
                       std::string(e.description()) +
                       "); fix that line: every entry is `key = value`, strings in double "
                       "quotes, tables as [name] (README.md, \"The pipeline file\", shows one)");
    }
    PipelineSpec spec;
    std::error_code ec;
    spec.file = fs::absolute(file_, ec).lexically_normal();
    if (auto st = known_keys(top, "", {"pipeline", "hosts", "nodes"}); !st)
      return std::move(st).error();
    if (auto st = read_pipeline(top, spec); !st) return std::move(st).error();
    if (auto st = read_hosts(top, spec); !st) return std::move(st).error();
    if (auto st = read_nodes(top, spec); !st) return std::move(st).error();
    if (auto st = connect(spec); !st) return std::move(st).error();
    if (auto st = placed(spec); !st) return std::move(st).error();
    if (auto st = no_bounded_cycle(spec); !st) return std::move(st).error();
    if (options_.check_programs)
      for (std::size_t i = 0; i < spec.nodes.size(); ++i)
        if (auto st = resolve_program(spec, spec.nodes[i], program_lines_[i]); !st)
          return std::move(st).error();
    return spec;
  }

 private:
  Error error(int line, const std::string& what) const {
    return Error{Errc::bad_config, file_.string() + ":" + std::to_string(line) + ": " + what};
  }

  // Every key of `t` must be one of `allowed`: a misspelt key would otherwise be ignored.
  Status known_keys(const toml::table& t, const std::string& path,
                    std::initializer_list<std::string_view> allowed) const {
    for (auto&& [k, v] : t) {
      if (std::find(allowed.begin(), allowed.end(), k.str()) != allowed.end()) continue;
      std::vector<std::string> names(allowed.begin(), allowed.end());
      return error(line_of(k), "unknown key '" + std::string(k.str()) + "'" +
                                   (path.empty() ? "" : " in " + path) +
                                   "; allowed here: " + join(names));
    }
    return {};
  }

  // The table at `t[key]`, nullptr if absent, an error if it is something else.
  Result<const toml::table*> table(const toml::table& t, std::string_view key,
                                   const std::string& path) const {
    const toml::node* v = t.get(key);
    if (!v) return static_cast<const toml::table*>(nullptr);
    if (const toml::table* sub = v->as_table()) return sub;
    return error(line_of(*v), path + " is " + kind_of(*v) + "; it must be a table");
  }

  // A name that becomes part of a port key: node ids, port names (and output names, which
  // read alike). '.' is the separator of a wire's "node.port", so none may contain one.
  Status name(std::string_view what, const std::string& value, int line) const {
    if (auto st = shm::validate_part(what, value, kKeyPartMax); !st)
      return error(line, st.error().message);
    if (value.find('.') != std::string::npos)
      return error(line, std::string(what) + " '" + value +
                             "' contains '.', which separates node and port in a wire "
                             "(\"node.port\"); rename it without '.'");
    return {};
  }

  Result<std::int64_t> integer(const toml::node& v, const std::string& path, std::int64_t lo,
                               std::int64_t hi, const std::string& extra = "") const {
    const std::string range =
        "use an integer from " + std::to_string(lo) + " to " + std::to_string(hi) + extra;
    const auto* i = v.as_integer();
    if (!i) return error(line_of(v), path + " = " + show(v) + " is " + kind_of(v) + "; " + range);
    if (i->get() < lo || i->get() > hi)
      return error(line_of(v), path + " = " + show(v) + " is out of range; " + range);
    return i->get();
  }

  // An integer or a float, finite, in [lo, hi] (hi infinite: no upper bound).
  Result<double> number(const toml::node& v, const std::string& path, double lo, double hi) const {
    std::ostringstream range;
    range << "use a number " << (std::isinf(hi) ? ">= " : "from ") << lo;
    if (!std::isinf(hi)) range << " to " << hi;
    std::optional<double> x;
    if (const auto* f = v.as_floating_point()) x = f->get();
    if (const auto* i = v.as_integer()) x = static_cast<double>(i->get());
    if (!x)
      return error(line_of(v), path + " = " + show(v) + " is " + kind_of(v) + "; " + range.str());
    if (!std::isfinite(*x) || *x < lo || *x > hi)
      return error(line_of(v), path + " = " + show(v) + " is out of range; " + range.str());
    return *x;
  }

  // A ring's bound: 1..kMaxBuffer messages, or "unbounded" (std::nullopt).
  Result<std::optional<std::uint32_t>> buffer(const toml::node& v, const std::string& path) const {
    if (const auto* s = v.as_string(); s && s->get() == "unbounded")
      return std::optional<std::uint32_t>{};
    auto n = integer(v, path, 1, kMaxBuffer, ", or \"unbounded\"");
    if (!n) return std::move(n).error();
    return std::optional<std::uint32_t>(static_cast<std::uint32_t>(*n));
  }

  // base_ms, factor and cap_ms, shared by retry and restart; cap_ms >= base_ms.
  Status backoff(const toml::table& t, const std::string& path, milliseconds& base, double& factor,
                 milliseconds& cap) const {
    if (const toml::node* v = t.get("base_ms")) {
      auto n = integer(*v, path + ".base_ms", 0, kMaxMs);
      if (!n) return std::move(n).error();
      base = milliseconds(*n);
    }
    if (const toml::node* v = t.get("factor")) {
      auto x = number(*v, path + ".factor", 1.0, std::numeric_limits<double>::infinity());
      if (!x) return std::move(x).error();
      factor = *x;
    }
    if (const toml::node* v = t.get("cap_ms")) {
      auto n = integer(*v, path + ".cap_ms", 0, kMaxMs);
      if (!n) return std::move(n).error();
      cap = milliseconds(*n);
    }
    if (cap < base) {
      const toml::node* at = t.get("cap_ms") ? t.get("cap_ms") : t.get("base_ms");
      return error(line_of(*at), path + ".cap_ms = " + std::to_string(cap.count()) +
                                     (t.get("cap_ms") ? "" : " (the default)") +
                                     " is less than base_ms = " + std::to_string(base.count()) +
                                     "; make cap_ms >= base_ms");
    }
    return {};
  }

  Status read_pipeline(const toml::table& top, PipelineSpec& spec) const {
    auto p = table(top, "pipeline", "pipeline");
    if (!p) return std::move(p).error();
    if (!*p) return error(1, "no [pipeline] table; add one with network = \"<name>\"");
    const toml::table& t = **p;
    if (auto st = known_keys(t, "[pipeline]", {"network", "restart", "dead_letter", "conserved"});
        !st)
      return st;
    const toml::node* network = t.get("network");
    if (!network) return error(line_of(t), "[pipeline] has no network; add network = \"<name>\"");
    if (!network->is_string())
      return error(line_of(*network), "pipeline.network = " + show(*network) + " is " +
                                          kind_of(*network) + "; it must be a string");
    spec.network = network->as_string()->get();
    if (auto st = shm::validate_part("network", spec.network, kKeyPartMax); !st)
      return error(line_of(*network), st.error().message);
    if (const toml::node* c = t.get("conserved")) {
      if (!c->is_boolean())
        return error(line_of(*c), "pipeline.conserved = " + show(*c) + " is " + kind_of(*c) +
                                      "; use true or false");
      spec.conserved = c->as_boolean()->get();
    }
    if (auto st = read_restart(t, spec.restart); !st) return st;
    auto dl = table(t, "dead_letter", "pipeline.dead_letter");
    if (!dl) return std::move(dl).error();
    if (*dl) {
      if (auto st = known_keys(**dl, "pipeline.dead_letter", {"buffer"}); !st) return st;
      if (const toml::node* v = (*dl)->get("buffer")) {
        auto b = buffer(*v, "pipeline.dead_letter.buffer");
        if (!b) return std::move(b).error();
        spec.dead_letter.buffer = *b;
      }
    }
    return {};
  }

  Status read_restart(const toml::table& pipeline, RestartPolicy& r) const {
    auto t = table(pipeline, "restart", "pipeline.restart");
    if (!t) return std::move(t).error();
    if (!*t) return {};
    const std::string path = "pipeline.restart";
    if (auto st = known_keys(**t, path, {"base_ms", "factor", "cap_ms", "max_restarts"}); !st)
      return st;
    if (auto st = backoff(**t, path, r.base, r.factor, r.cap); !st) return st;
    if (const toml::node* v = (*t)->get("max_restarts")) {
      auto n = integer(*v, path + ".max_restarts", 0, kMaxU32);
      if (!n) return std::move(n).error();
      r.max_restarts = static_cast<std::uint32_t>(*n);
    }
    return {};
  }

  // [nodes.<id>] tables, in file order (toml++ iterates them by key).
  Status read_nodes(const toml::table& top, PipelineSpec& spec) {
    auto nodes = table(top, "nodes", "nodes");
    if (!nodes) return std::move(nodes).error();
    if (!*nodes || (*nodes)->empty())
      return error(1, "no nodes; add a [nodes.<id>] table with program = \"...\" for each");
    struct Entry {
      const toml::key* id;
      const toml::node* node;
    };
    std::vector<Entry> entries;
    for (auto&& [k, v] : **nodes) entries.push_back({&k, &v});
    std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
      const auto& x = a.id->source().begin;
      const auto& y = b.id->source().begin;
      return x.line != y.line ? x.line < y.line : x.column < y.column;
    });
    for (const Entry& e : entries) {
      const std::string id(e.id->str());
      if (auto st = name("node id", id, line_of(*e.id)); !st) return st;
      if (id == kDeadLetterNode)
        return error(line_of(*e.id),
                     "node id 'dead_letter' is reserved for the dead-letter port "
                     "{network, dead_letter, in}, which the launcher keeps; "
                     "rename the node");
      const toml::table* t = e.node->as_table();
      if (!t)
        return error(line_of(*e.node), "nodes." + id + " is " + kind_of(*e.node) +
                                           "; it must be a table ([nodes." + id + "])");
      spec.nodes.emplace_back();
      spec.nodes.back().id = id;
      spec.nodes.back().line = line_of(*e.id);
      if (auto st = read_node(*t, spec.nodes.size() - 1, spec.nodes.back()); !st) return st;
    }
    return {};
  }

  Status read_node(const toml::table& t, std::size_t index, NodeSpec& n) {
    const std::string path = "nodes." + n.id;
    if (auto st = known_keys(t, "[" + path + "]",
                             {"program", "python", "args", "inputs", "outputs", "retry", "batch",
                              "host"});
        !st)
      return st;
    if (const toml::node* h = t.get("host")) {
      if (!h->is_string() || h->as_string()->get().empty())
        return error(line_of(*h), path + ".host = " + show(*h) +
                                      " is not a host name; give one of the file's [hosts.NAME]");
      n.host = h->as_string()->get();
      host_lines_[n.id] = line_of(*h);
    }
    const toml::node* program = t.get("program");
    if (!program)
      return error(n.line, "node '" + n.id + "' has no program; add program = \"<path or name>\"");
    if (!program->is_string() || program->as_string()->get().empty())
      return error(line_of(*program), path + ".program = " + show(*program) +
                                          " is not a program; give a path or a name");
    n.program = program->as_string()->get();
    program_lines_.push_back(line_of(*program));
    // A Python node: program "x.py", or any program with a `python = ` interpreter.
    if (const toml::node* python = t.get("python")) {
      if (!python->is_string() || python->as_string()->get().empty())
        return error(line_of(*python), path + ".python = " + show(*python) +
                                           " is not an interpreter; give a path or a name");
      n.interpreter = python->as_string()->get();
    } else if (n.program.extension() == ".py") {
      n.interpreter = "python3";
    }
    if (auto st = read_args(t, path, n); !st) return st;
    if (auto st = read_inputs(t, path, n); !st) return st;
    if (auto st = read_outputs(t, path, index, n); !st) return st;
    if (auto st = read_retry(t, path, n.retry); !st) return st;
    if (const toml::node* v = t.get("batch")) {
      auto b = integer(*v, path + ".batch", 1, kMaxBatch);
      if (!b) return std::move(b).error();
      n.batch = static_cast<std::uint32_t>(*b);
    }
    return {};
  }

  Status read_args(const toml::table& t, const std::string& path, NodeSpec& n) const {
    const toml::node* v = t.get("args");
    if (!v) return {};
    const toml::array* args = v->as_array();
    if (!args)
      return error(line_of(*v),
                   path + ".args is " + kind_of(*v) + "; it must be a list of strings");
    for (std::size_t i = 0; i < args->size(); ++i) {
      const toml::node& a = *args->get(i);
      if (!a.is_string())
        return error(line_of(a), path + ".args[" + std::to_string(i) + "] = " + show(a) + " is " +
                                     kind_of(a) + "; write it as a string (\"...\")");
      n.args.push_back(a.as_string()->get());
    }
    return {};
  }

  Status read_inputs(const toml::table& t, const std::string& path, NodeSpec& n) const {
    auto inputs = table(t, "inputs", path + ".inputs");
    if (!inputs) return std::move(inputs).error();
    if (!*inputs) return {};
    for (auto&& [k, v] : **inputs) {
      InputSpec in{.name = std::string(k.str()), .line = line_of(k)};
      const std::string at = path + ".inputs." + in.name;
      if (auto st = name("port name", in.name, in.line); !st) return st;
      const toml::table* opts = v.as_table();
      if (!opts)
        return error(line_of(v), at + " is " + kind_of(v) + "; it must be a table, e.g. " + at +
                                     " = { buffer = 256 }");
      if (auto st = known_keys(*opts, at,
                               {"buffer", "max_payload", "typical_payload", "latency_histogram"});
          !st)
        return st;
      if (const toml::node* b = opts->get("buffer")) {
        auto bound = buffer(*b, at + ".buffer");
        if (!bound) return std::move(bound).error();
        in.buffer = *bound;
      }
      if (const toml::node* m = opts->get("max_payload")) {
        auto max = integer(*m, at + ".max_payload", 1, kMaxPayload);
        if (!max) return std::move(max).error();
        in.max_payload = static_cast<std::uint32_t>(*max);
      }
      if (const toml::node* t = opts->get("typical_payload")) {
        auto typical = integer(*t, at + ".typical_payload", 0, kMaxPayload);
        if (!typical) return std::move(typical).error();
        in.typical_payload = static_cast<std::uint32_t>(*typical);
      }
      if (const toml::node* h = opts->get("latency_histogram")) {
        if (!h->is_boolean())
          return error(line_of(*h), at + ".latency_histogram = " + show(*h) + " is " +
                                        kind_of(*h) + "; use true or false");
        in.latency_histogram = h->as_boolean()->get();
      }
      n.inputs.push_back(std::move(in));
    }
    return {};
  }

  // outputs.<name> = "node.port" or ["node.port", ...]: the wires, checked later in connect().
  Status read_outputs(const toml::table& t, const std::string& path, std::size_t index,
                      NodeSpec& n) {
    auto outputs = table(t, "outputs", path + ".outputs");
    if (!outputs) return std::move(outputs).error();
    if (!*outputs) return {};
    for (auto&& [k, v] : **outputs) {
      OutputSpec out{.name = std::string(k.str()), .targets = {}, .line = line_of(k)};
      const std::string at = path + ".outputs." + out.name;
      if (auto st = name("output name", out.name, out.line); !st) return st;
      std::vector<const toml::node*> targets;
      if (const toml::array* list = v.as_array())
        for (const toml::node& e : *list) targets.push_back(&e);
      else
        targets.push_back(&v);
      if (targets.empty())
        return error(line_of(v), at + " is an empty list; give at least one \"node.port\"");
      for (const toml::node* e : targets) {
        auto target = read_target(*e, at);
        if (!target) return std::move(target).error();
        if (std::find(out.targets.begin(), out.targets.end(), *target) != out.targets.end())
          return error(line_of(*e),
                       at + " names " + show(*e) + " twice; every message would go there twice");
        out.targets.push_back(*target);
        wires_.push_back({index, out.name, *target, line_of(*e)});
      }
      n.outputs.push_back(std::move(out));
    }
    return {};
  }

  Result<Target> read_target(const toml::node& v, const std::string& at) const {
    if (!v.is_string())
      return error(line_of(v), at + " = " + show(v) + " is " + kind_of(v) +
                                   "; a target is a string \"node.port\"");
    const std::string& s = v.as_string()->get();
    const auto dot = s.find('.');
    if (dot == std::string::npos)
      return error(line_of(v), at + " = \"" + s +
                                   "\" is not \"node.port\"; name the node and "
                                   "its input port, e.g. \"" +
                                   s + ".in\"");
    Target target{s.substr(0, dot), s.substr(dot + 1)};
    if (auto st = name("node id", target.node, line_of(v)); !st) return std::move(st).error();
    if (auto st = name("port name", target.port, line_of(v)); !st) return std::move(st).error();
    return target;
  }

  Status read_retry(const toml::table& t, const std::string& node_path, RetryPolicy& r) const {
    const std::string path = node_path + ".retry";
    auto retry = table(t, "retry", path);
    if (!retry) return std::move(retry).error();
    if (!*retry) return {};
    const toml::table& rt = **retry;
    if (auto st = known_keys(rt, path, {"max_attempts", "base_ms", "factor", "cap_ms", "jitter"});
        !st)
      return st;
    if (const toml::node* v = rt.get("max_attempts")) {
      auto n = integer(*v, path + ".max_attempts", 1, kMaxU32);
      if (!n) return std::move(n).error();
      r.max_attempts = static_cast<std::uint32_t>(*n);
    }
    if (auto st = backoff(rt, path, r.base, r.factor, r.cap); !st) return st;
    if (const toml::node* v = rt.get("jitter")) {
      auto x = number(*v, path + ".jitter", 0.0, 1.0);
      if (!x) return std::move(x).error();
      r.jitter = *x;
    }
    return {};
  }

  // [hosts.NAME]: nats = "nats://host:4222" or a list of URLs (a cluster), credentials = "file".
  Status read_hosts(const toml::table& top, PipelineSpec& spec) const {
    auto hosts = table(top, "hosts", "hosts");
    if (!hosts) return std::move(hosts).error();
    if (!*hosts) return {};
    for (auto&& [k, v] : **hosts) {
      HostSpec h{.name = std::string(k.str()), .nats = {}, .credentials = {}, .line = line_of(k)};
      const std::string at = "hosts." + h.name;
      if (auto st = name("host name", h.name, h.line); !st) return st;
      const toml::table* t = v.as_table();
      if (!t)
        return error(line_of(v), at + " is " + kind_of(v) + "; it must be a table ([" + at +
                                     "] with nats = \"nats://HOST:4222\")");
      if (auto st = known_keys(*t, "[" + at + "]", {"nats", "credentials"}); !st) return st;
      if (const toml::node* n = t->get("nats")) {
        std::vector<const toml::node*> urls;
        if (const toml::array* list = n->as_array())
          for (const toml::node& e : *list) urls.push_back(&e);
        else
          urls.push_back(n);
        if (urls.empty())
          return error(line_of(*n), at + ".nats is an empty list; give the engine's URL, "
                                         "\"nats://HOST:4222\", or leave nats out");
        for (const toml::node* u : urls) {
          if (auto st = engine_url(*u, at + ".nats"); !st) return st;
          h.nats.push_back(u->as_string()->get());
        }
      }
      if (const toml::node* c = t->get("credentials")) {
        if (!c->is_string() || c->as_string()->get().empty())
          return error(line_of(*c), at + ".credentials = " + show(*c) +
                                        " is not a file; give the path of a NATS .creds file");
        h.credentials = c->as_string()->get();
        if (h.credentials.is_relative()) h.credentials = spec.file.parent_path() / h.credentials;
      }
      spec.hosts.push_back(std::move(h));
    }
    std::sort(spec.hosts.begin(), spec.hosts.end(),
              [](const HostSpec& a, const HostSpec& b) { return a.line < b.line; });
    return {};
  }

  // "nats://HOST:PORT" (or tls://, or without a port: 4222): what the NATS client takes.
  Status engine_url(const toml::node& u, const std::string& at) const {
    if (!u.is_string())
      return error(line_of(u), at + " = " + show(u) + " is " + kind_of(u) +
                                   "; give a URL string, \"nats://HOST:4222\"");
    const std::string& url = u.as_string()->get();
    const std::size_t scheme = url.find("://");
    const std::string rest = scheme == std::string::npos ? "" : url.substr(scheme + 3);
    const bool known = url.starts_with("nats://") || url.starts_with("tls://");
    const std::size_t colon = rest.rfind(':');
    const std::string port = colon == std::string::npos ? "4222" : rest.substr(colon + 1);
    const bool port_ok = !port.empty() && port.size() <= 5 &&
                         port.find_first_not_of("0123456789") == std::string::npos &&
                         std::stoi(port) > 0 && std::stoi(port) <= 65535;
    if (!known || rest.empty() || rest.front() == ':' || !port_ok)
      return error(line_of(u), at + " = \"" + url +
                                   "\" is not a NATS URL; write it nats://HOST:PORT (tls:// for "
                                   "TLS), e.g. \"nats://10.0.0.5:4222\"");
    return {};
  }

  // Placement: in a file with [hosts], every node names one of them; a wire between two hosts
  // needs both to reach the engine that carries it.
  Status placed(const PipelineSpec& spec) const {
    std::vector<std::string> names;
    for (const HostSpec& h : spec.hosts) names.push_back(h.name);
    for (const NodeSpec& n : spec.nodes) {
      if (n.host.empty()) {
        if (spec.hosts.empty()) continue;
        return error(n.line, "node '" + n.id + "' has no host, but this file places its nodes on "
                                 "hosts (" + join(names) + "); add host = \"<one of them>\" to "
                                 "[nodes." + n.id + "]");
      }
      if (!spec.host(n.host))
        return error(host_lines_.at(n.id),
                     "nodes." + n.id + ".host = \"" + n.host + "\" names no [hosts." + n.host +
                         "]; " +
                         (spec.hosts.empty() ? "declare it, with nats = \"nats://HOST:4222\""
                                             : "declare it, or place the node on one of: " +
                                                   join(names)));
    }
    for (const Wire& w : wires_) {
      const NodeSpec& from = spec.nodes[w.from];
      const NodeSpec& to = *spec.node(w.to.node);
      if (from.host == to.host) continue;
      for (const NodeSpec* end : {&from, &to})
        if (spec.host(end->host)->nats.empty())
          return error(w.line, "nodes." + from.id + ".outputs." + w.output + " wires " +
                                   from.id + " (on host " + from.host + ") to " + to.id + "." +
                                   w.to.port + " (on host " + to.host + "), and host " +
                                   end->host + " has no engine to carry it; add nats = "
                                   "\"nats://HOST:4222\" to [hosts." + end->host + "]");
    }
    return {};
  }

  // Each wire's target port becomes an input of its node (with the defaults if undeclared).
  Status connect(PipelineSpec& spec) const {
    std::map<std::string, std::size_t, std::less<>> index;
    for (std::size_t i = 0; i < spec.nodes.size(); ++i) index[spec.nodes[i].id] = i;
    for (const Wire& w : wires_) {
      const std::string at = "nodes." + spec.nodes[w.from].id + ".outputs." + w.output;
      if (w.to.node == kDeadLetterNode)
        return error(w.line, at + " wires to the dead-letter port; the node runtime sends a "
                                  "message there itself after retry.max_attempts failures");
      const auto it = index.find(w.to.node);
      if (it == index.end()) {
        std::vector<std::string> known;
        for (const auto& n : spec.nodes) known.push_back(n.id);
        return error(w.line, at + " wires to node '" + w.to.node +
                                 "', which is not in this file; nodes: " + join(known));
      }
      NodeSpec& target = spec.nodes[it->second];
      if (!target.input(w.to.port))
        target.inputs.push_back(InputSpec{.name = w.to.port, .line = w.line});
    }
    for (auto& n : spec.nodes) {
      std::sort(n.inputs.begin(), n.inputs.end(),
                [](const auto& a, const auto& b) { return a.name < b.name; });
      std::sort(n.outputs.begin(), n.outputs.end(),
                [](const auto& a, const auto& b) { return a.name < b.name; });
    }
    return {};
  }

  // A cycle whose every port is bounded can fill all its rings and then wait on itself for
  // ever; one unbounded port on it breaks the wait. So: look for a cycle among bounded wires.
  Status no_bounded_cycle(const PipelineSpec& spec) const {
    std::map<std::string_view, std::size_t> index;
    for (std::size_t i = 0; i < spec.nodes.size(); ++i) index[spec.nodes[i].id] = i;
    std::vector<std::vector<const Wire*>> bounded(spec.nodes.size());
    for (const Wire& w : wires_) {
      const std::size_t to = index.at(w.to.node);
      if (spec.nodes[to].input(w.to.port)->buffer) bounded[w.from].push_back(&w);
    }
    CycleSearch search(index, bounded);
    for (std::size_t i = 0; i < spec.nodes.size(); ++i) {
      const Wire* closing = search.from(i);
      if (!closing) continue;
      std::string nodes, ports;
      for (const Wire* w : search.path()) {
        nodes += spec.nodes[w->from].id + " -> ";
        ports += (ports.empty() ? "" : ", ") + w->to.node + "." + w->to.port;
      }
      nodes += search.path().back()->to.node;
      return error(closing->line, "the cycle " + nodes + " has only bounded ports (" + ports +
                                      "): it could deadlock when every ring on it is full; make "
                                      "one of its ports unbounded (buffer = \"unbounded\")");
    }
    return {};
  }

  Status resolve_program(const PipelineSpec& spec, NodeSpec& n, int line) const {
    // A script run by an interpreter needs to be readable, the interpreter executable.
    const bool script = !n.interpreter.empty();
    if (auto st = resolve(spec, n, n.program, script ? "script" : "program", !script, line); !st)
      return st;
    if (script)
      return resolve(spec, n, n.interpreter, "interpreter (python)", true, line);
    return {};
  }

  Status resolve(const PipelineSpec& spec, const NodeSpec& n, fs::path& what, const char* role,
                 bool executable, int line) const {
    const bool is_path = what.native().find('/') != std::string::npos;
    std::vector<std::string> tried;
    auto candidates = program_candidates(what, spec.file.parent_path(), options_.program_dirs);
    if (!executable && !is_path)  // a script is looked for beside the pipeline file first
      candidates.insert(candidates.begin(), spec.file.parent_path() / what);
    for (const auto& c : candidates) {
      const auto why = why_not_usable(c, executable ? X_OK : R_OK);
      if (!why) {
        std::error_code ec;
        what = fs::absolute(c, ec).lexically_normal();
        return {};
      }
      tried.push_back(c.string() + *why);
    }
    return error(line,
                 std::string(role) + " '" + what.string() + "' of node '" + n.id +
                     "' was not found as " + (executable ? "an executable" : "a readable") +
                     " file; looked at: " +
                     (tried.empty() ? "nothing ($PATH is empty)" : join(tried)) +
                     (is_path ? "" : "; add its directory with --program-dir, or give a path"));
  }

  const fs::path& file_;
  const LoadOptions& options_;
  std::vector<Wire> wires_;
  std::vector<int> program_lines_;  // per node, in file order
  std::map<std::string, int> host_lines_;  // node id -> the line of its host = ...
};

}  // namespace

Result<PipelineSpec> parse_pipeline(std::string_view text, const std::filesystem::path& file,
                                    const LoadOptions& options) {
  return Reader(file, options).read(text);
}

Result<PipelineSpec> load_pipeline(const std::filesystem::path& file, const LoadOptions& options) {
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(file.c_str(), "rb"),
                                                          &std::fclose);
  std::string text;
  if (f) {
    char chunk[65536];
    for (std::size_t n; (n = std::fread(chunk, 1, sizeof chunk, f.get())) > 0;)
      text.append(chunk, n);
  }
  if (!f || std::ferror(f.get()))  // fopen succeeds on a directory; fread then sets EISDIR
    return Error{Errc::not_found,
                 file.string() + ": cannot read the pipeline file: " + std::strerror(errno)};
  return parse_pipeline(text, file, options);
}

}  // namespace bloccs
