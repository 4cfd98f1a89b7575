// SPDX-License-Identifier: Apache-2.0
// bloccs-logs-generate: writes a web server's access log (log_record.hpp's format) for a shop:
// pages, static files, a JSON API with ids in its paths, a slow report export, a login that
// rate-limits, and scanners probing for /wp-login.php. A share of the lines is malformed the
// ways real logs are: cut short by a crash, a status typo, a logger with a German month, a
// TLS handshake sent to the HTTP port, a raw tab, a scanner's huge URL, lines of an older
// format without the latency, and a latency of '-'.
//
// The output is a function of --lines, --seed and --malformed-percent only (its own integer
// generator, no <random> distributions, whose results differ between standard libraries).
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "options.hpp"

#include "log_time.hpp"

namespace {

// splitmix64: small, fast, and the same everywhere.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  std::uint64_t below(std::uint64_t n) { return next() % n; }  // bias < n / 2^64: negligible
  bool per_mille(std::uint64_t p) { return below(1000) < p; }

 private:
  std::uint64_t state_;
};

struct Outcome {
  unsigned status, per_mille;
};

// One kind of request. Path placeholders: {n} a numeric id, {h} a 24-digit hex id, {q} a query.
struct Endpoint {
  std::string_view method, path;
  unsigned weight;                // relative frequency
  unsigned base_ms;               // typical latency
  unsigned size;                  // typical response body, bytes
  unsigned ok;                    // the usual status
  std::array<Outcome, 3> others;  // other statuses, each with its chance in 1000
};

constexpr std::array<Endpoint, 16> kEndpoints{{
    {"GET", "/", 60, 12, 5400, 200, {{{304, 150}}}},
    {"GET", "/static/js/app.3f9a2c1e.js", 120, 3, 182000, 200, {{{304, 400}}}},
    {"GET", "/static/css/site.css", 100, 3, 24000, 200, {{{304, 400}}}},
    {"GET", "/favicon.ico", 40, 2, 1150, 200, {{{404, 100}}}},
    {"GET", "/api/products?{q}", 150, 40, 8200, 200, {{{400, 10}, {500, 4}}}},
    {"GET", "/api/products/{n}", 200, 25, 1900, 200, {{{404, 60}, {500, 3}}}},
    {"GET", "/api/users/{n}/orders", 80, 60, 3100, 200, {{{401, 30}, {403, 10}, {500, 5}}}},
    {"POST", "/api/orders", 40, 120, 420, 201, {{{400, 40}, {422, 30}, {503, 10}}}},
    {"GET", "/api/orders/{h}", 60, 30, 980, 200, {{{404, 40}}}},
    {"PUT", "/api/orders/{h}", 15, 80, 980, 200, {{{409, 50}, {500, 10}}}},
    {"DELETE", "/api/orders/{h}", 5, 50, 0, 204, {{{404, 100}}}},
    {"POST", "/api/login", 30, 200, 310, 200, {{{401, 150}, {429, 40}}}},
    {"GET", "/api/reports/{n}/export", 8, 1200, 650000, 200, {{{504, 80}, {500, 20}}}},
    {"GET", "/health", 100, 1, 15, 200, {{{503, 2}}}},
    {"GET", "/wp-login.php", 10, 4, 162, 404, {}},
    {"GET", "/.env", 5, 3, 162, 404, {}},
}};

constexpr std::array<std::string_view, 6> kAgents{
    "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "curl/8.4.0",
    "python-requests/2.31.0",
    "Googlebot/2.1 (+http://www.google.com/bot.html)",
    R"(Mozilla/5.0 (compatible; \"SiteAuditor\" 3.1))",  // an escaped quote, as Apache writes it
};
constexpr std::array<std::string_view, 4> kUsers{"alice", "bob", "carol", "dave"};
constexpr std::array<std::string_view, 4> kQueries{"q=shoes", "q=red+shoes&page=2",
                                                   "category=garden&sort=price", "q=%22lamp%22"};
constexpr std::int64_t kStart = 1710028800;  // 2024-03-10T00:00:00Z
constexpr int kOffsetMinutes = 60;           // the server logs in UTC+01:00

std::string client(Rng& rng) {
  // A few clients make most requests: the lower of two draws skews towards small indexes.
  const std::uint64_t a = rng.below(300), b = rng.below(300), i = a < b ? a : b;
  if (i % 20 == 19) return "2001:db8::" + std::to_string(i);
  static constexpr std::array<std::string_view, 3> kNets{"198.51.100.", "203.0.113.", "192.0.2."};
  return std::string(kNets[i % 3]) + std::to_string(1 + i / 3 % 254);
}

std::string hex_id(Rng& rng) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 24; ++i) out.push_back(kHex[rng.below(16)]);
  return out;
}

std::string target(Rng& rng, std::string_view path) {
  std::string out;
  for (std::size_t i = 0; i < path.size(); ++i) {
    const std::string_view at = path.substr(i, 3);
    if (at == "{n}")
      out += std::to_string(1 + rng.below(5000));
    else if (at == "{h}")
      out += hex_id(rng);
    else if (at == "{q}")
      out += kQueries[rng.below(kQueries.size())];
    else {
      out.push_back(path[i]);
      continue;
    }
    i += 2;
  }
  return out;
}

const Endpoint& endpoint(Rng& rng) {
  static const unsigned total = [] {
    unsigned t = 0;
    for (const Endpoint& e : kEndpoints) t += e.weight;
    return t;
  }();
  unsigned pick = static_cast<unsigned>(rng.below(total));
  for (const Endpoint& e : kEndpoints) {
    if (pick < e.weight) return e;
    pick -= e.weight;
  }
  return kEndpoints.back();
}

struct Fields {
  std::string client, user, time, method, target, status, size, referer, agent, latency;
  std::string line() const {
    return client + " - " + user + " [" + time + "] \"" + method + " " + target + " HTTP/1.1\" " +
           status + " " + size + " \"" + referer + "\" \"" + agent + "\" " + latency;
  }
};

Fields request(Rng& rng, std::int64_t now) {
  const Endpoint& e = endpoint(rng);
  unsigned status = e.ok;
  unsigned roll = static_cast<unsigned>(rng.below(1000));
  for (const Outcome& o : e.others) {  // unused entries have a chance of 0
    if (roll < o.per_mille) {
      status = o.status;
      break;
    }
    roll -= o.per_mille;
  }
  std::uint64_t latency = e.base_ms / 2 + rng.below(e.base_ms + 1);
  if (rng.per_mille(15)) latency += 500 + rng.below(4000);  // a slow tail: GC, a cold cache
  if (status == 504) latency = 30000 + rng.below(50);       // the gateway gave up at 30 s
  const bool body = status < 300 && status != 204;
  const std::uint64_t size = body ? e.size - e.size / 10 + rng.below(e.size / 5 + 1)
                                  : (status == 204 || status == 304 ? 0 : 120 + rng.below(300));
  Fields f;
  f.client = client(rng);
  f.user = rng.per_mille(100) ? std::string(kUsers[rng.below(kUsers.size())]) : "-";
  f.time = bloccs::logs::format_log_time(now, kOffsetMinutes);
  f.method = e.method;
  f.target = target(rng, e.path);
  f.status = std::to_string(status);
  f.size = size == 0 ? "-" : std::to_string(size);
  f.referer =
      rng.per_mille(400) ? "https://shop.example.com" + target(rng, "/api/products/{n}") : "-";
  f.agent = kAgents[rng.below(kAgents.size())];
  f.latency = std::to_string(latency);
  return f;
}

// A line spoilt one of the ways real logs are.
std::string malformed(Rng& rng, Fields f) {
  switch (rng.below(8)) {
    case 0: {  // the writer crashed mid-line: cut before the latency's space, so it is missing
      const std::string line = f.line();
      return line.substr(0, 1 + rng.below(line.rfind(' ')));
    }
    case 1:  // a typo'd status (letter O for zero)
      f.status = "2O0";
      return f.line();
    case 2:  // a logger with a German locale
      f.time.replace(3, 3, "Mrz");
      return f.line();
    case 3:  // a TLS handshake sent to the HTTP port, as nginx escapes it
      f.method = R"(\x16\x03\x01\x02\x00\x01\x00\x01\xFC\x03\x03)";
      f.target = "";
      return f.client + " - - [" + f.time + "] \"" + f.method + "\" 400 157 \"-\" \"-\" 1";
    case 4:  // a logger that does not escape: a raw tab in the user agent
      f.agent.insert(f.agent.size() / 2, "\t");
      return f.line();
    case 5:  // a scanner's huge URL
      f.target = "/search?q=" + std::string(2100 + rng.below(900), 'A');
      return f.line();
    case 6: {  // a line of the older format, before the latency was logged
      const std::string line = f.line();
      return line.substr(0, line.rfind(' '));
    }
    default:  // the upstream never answered
      f.latency = "-";
      return f.line();
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t lines = 1000, seed = 1;
  double malformed_percent = 1.0;
  std::string out;
  if (int rc = bloccs::examples::parse_options(
          argc, argv, "bloccs logs example: writes a deterministic web access log",
          {{"--lines", "how many lines", &lines},
           {"--seed", "the same seed gives the same file", &seed},
           {"--malformed-percent", "share of malformed lines, 0..100", &malformed_percent, false,
            std::pair{0.0, 100.0}},
           {"--out", "the file to write ('-': standard output)", &out, true}});
      rc >= 0)
    return rc;

  std::FILE* f = out == "-" ? stdout : std::fopen(out.c_str(), "w");
  if (!f) {
    std::fprintf(stderr, "bloccs-logs-generate: cannot write %s: %s\n", out.c_str(),
                 std::strerror(errno));
    return 1;
  }
  Rng rng(seed);
  const auto threshold = static_cast<std::uint64_t>(malformed_percent * 100.0);  // per 10,000
  std::int64_t now = kStart;
  std::uint64_t spoilt = 0;
  for (std::uint64_t i = 0; i < lines; ++i) {
    now += static_cast<std::int64_t>(rng.below(3));  // about one request a second
    Fields fields = request(rng, now);
    const bool bad = rng.below(10'000) < threshold;
    const std::string line = bad ? malformed(rng, std::move(fields)) : fields.line();
    spoilt += bad;
    std::fwrite(line.data(), 1, line.size(), f);
    std::fputc('\n', f);
  }
  const bool failed = std::fflush(f) != 0 || std::ferror(f) != 0;
  if (f != stdout) std::fclose(f);
  if (failed) {
    std::fprintf(stderr, "bloccs-logs-generate: writing %s failed: %s\n", out.c_str(),
                 std::strerror(errno));
    return 1;
  }
  std::fprintf(stderr, "bloccs-logs-generate: wrote %llu lines (%llu malformed) to %s\n",
               static_cast<unsigned long long>(lines), static_cast<unsigned long long>(spoilt),
               out.c_str());
  return 0;
}
