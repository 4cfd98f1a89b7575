// SPDX-License-Identifier: Apache-2.0
// The C API (bloccs/bloccs.h) between real processes: a C owner with C++ pushers and the
// reverse, loans, meta both ways, and each error a C caller can meet as its code with a message.
#include "bloccs/bloccs.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "bloccs/port.hpp"
#include "bloccs/version.hpp"
#include "port_test_support.hpp"

namespace bloccs::test {
extern "C" const char* c_api_test_name_of_int(int raw);  // c_api_any_int.c

namespace {

constexpr bloccs_key kCKey = {"net", "node", "in"};  // key() of port_test_support
constexpr std::int64_t kSecond = 1'000'000'000;

bloccs_port_options c_options(const TestNamespace& ns, std::uint32_t buffer = 64) {
  bloccs_port_options o;
  bloccs_port_options_init(&o);
  o.ns = ns.name().c_str();
  o.buffer = buffer;
  return o;
}

std::string payload(const bloccs_message* m) {
  return {static_cast<const char*>(bloccs_message_data(m)), bloccs_message_size(m)};
}

TEST(CApi, ACOwnerReceivesFromCppPushersWithTheirMetaCopiedAndInPlace) {
  TestNamespace ns;
  Reaper reap;
  const bloccs_port_options o = c_options(ns);
  bloccs_port* port = nullptr;
  ASSERT_EQ(bloccs_port_start(&kCKey, &o, &port), BLOCCS_OK) << bloccs_last_error();

  const pid_t pusher = reap(spawn([&] {
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    Meta meta;
    meta.attempt = 3;
    meta.set("trace", "abc");
    for (int i = 0; i < 10; ++i)
      if (auto st = p->push(key(), bytes("m" + std::to_string(i)), meta); !st)
        return fail(3, "push", st);
    return 0;
  }));
  ASSERT_EQ(exit_code(wait_child(pusher)), 0);

  // One copied out, with its meta...
  bloccs_message* m = nullptr;
  ASSERT_EQ(bloccs_port_receive(port, 10 * kSecond, &m), BLOCCS_OK) << bloccs_last_error();
  EXPECT_EQ(payload(m), "m0");
  EXPECT_EQ(bloccs_message_attempt(m), 3u);
  ASSERT_EQ(bloccs_message_meta_size(m), 1u);
  bloccs_meta_pair pair{};
  ASSERT_EQ(bloccs_message_meta_pair(m, 0, &pair), BLOCCS_OK);
  EXPECT_EQ(std::string(pair.key, pair.key_len), "trace");
  EXPECT_EQ(std::string(pair.value, pair.value_len), "abc");
  EXPECT_EQ(bloccs_message_meta_pair(m, 1, &pair), BLOCCS_BAD_ARGUMENT);
  EXPECT_NE(std::string(bloccs_last_error()).find("past the 1 pairs"), std::string::npos);
  bloccs_message_free(m);

  // ...the other nine in place, in order, in batches.
  struct Seen {
    std::vector<std::string> payloads;
    bool meta_ok = true;
  } seen;
  auto visit = [](void* ctx, const bloccs_message_view* v) {
    auto& s = *static_cast<Seen*>(ctx);
    s.payloads.emplace_back(static_cast<const char*>(v->payload), v->size);
    bloccs_meta_pair p{};
    s.meta_ok = s.meta_ok && v->attempt == 3 && v->n_pairs == 1 &&
                bloccs_view_meta_pair(v, 0, &p) == BLOCCS_OK &&
                std::string(p.value, p.value_len) == "abc" &&
                bloccs_view_meta_pair(v, 1, &p) == BLOCCS_BAD_ARGUMENT;
  };
  while (seen.payloads.size() < 9) {
    std::size_t n = 0;
    ASSERT_EQ(bloccs_port_receive_batch(port, visit, &seen, 4, 10 * kSecond, &n), BLOCCS_OK)
        << bloccs_last_error();
    EXPECT_LE(n, 4u);
  }
  for (int i = 1; i < 10; ++i) EXPECT_EQ(seen.payloads[i - 1], "m" + std::to_string(i));
  EXPECT_TRUE(seen.meta_ok);

  bloccs_port_stats stats{};
  ASSERT_EQ(bloccs_port_stats_get(port, &stats), BLOCCS_OK);
  EXPECT_EQ(stats.depth, 0u);
  EXPECT_EQ(stats.links, 1u);
  EXPECT_EQ(stats.queue_count, 10u);  // every message, stamped by the C pusher
  EXPECT_GE(stats.queue_max_ns, stats.queue_p50_ns);
  EXPECT_GE(stats.queue_total_ns, stats.queue_max_ns);
  EXPECT_EQ(stats.pushes_waited, 0u);
  bloccs_port_stop(port);
  EXPECT_SHM_CLEAN(ns);
}

TEST(CApi, CPushersAndLoansReachACppOwnerAndAnAbortedLoanNothing) {
  TestNamespace ns;
  Reaper reap;
  auto port = Port::start(key(), {.buffer = 64, .ns = ns.name()});
  ASSERT_TRUE(port) << describe(port);

  const pid_t pusher = reap(spawn([&] {
    bloccs_pusher* p = nullptr;
    if (bloccs_pusher_open(ns.name().c_str(), &p) != BLOCCS_OK) return 2;
    const bloccs_meta_pair pair = {"k", 1, "value", 5};
    const bloccs_meta meta = {7, &pair, 1};
    if (bloccs_pusher_push(p, &kCKey, "pushed", 6, &meta, 10 * kSecond) != BLOCCS_OK) return 3;
    // An aborted loan publishes nothing; a committed one its first `used` bytes.
    bloccs_loan* loan = nullptr;
    void* room = nullptr;
    if (bloccs_pusher_loan(p, &kCKey, 32, nullptr, -1, &loan, &room) != BLOCCS_OK) return 4;
    std::memcpy(room, "never seen", 10);
    bloccs_loan_abort(loan);
    if (bloccs_pusher_loan(p, &kCKey, 32, &meta, -1, &loan, &room) != BLOCCS_OK) return 5;
    std::memcpy(room, "loaned and more", 15);
    if (bloccs_loan_commit(loan, 6) != BLOCCS_OK) return 6;
    // A commit past the loan's size is refused, and the loan is gone with it.
    if (bloccs_pusher_loan(p, &kCKey, 8, nullptr, -1, &loan, &room) != BLOCCS_OK) return 7;
    if (bloccs_loan_commit(loan, 9) != BLOCCS_BAD_LOAN) return 8;
    if (bloccs_pusher_push_after(p, &kCKey, "later", 5, nullptr, 50) != BLOCCS_OK) return 9;
    bloccs_pusher_close(p);
    return 0;
  }));
  ASSERT_EQ(exit_code(wait_child(pusher)), 0);

  std::vector<Message> got;
  while (got.size() < 3) {
    auto m = port->receive(in(10s));
    ASSERT_TRUE(m) << describe(m);
    got.push_back(std::move(*m));
  }
  EXPECT_EQ(str(got[0].payload), "pushed");
  EXPECT_EQ(got[0].meta.attempt, 7u);
  EXPECT_EQ(got[0].meta.get("k"), "value");
  EXPECT_EQ(str(got[1].payload), "loaned");
  EXPECT_EQ(got[1].meta.attempt, 7u);
  EXPECT_EQ(str(got[2].payload), "later");
  auto none = port->try_receive();
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none) << "the aborted and the over-committed loans must publish nothing";
  port->stop();
  EXPECT_SHM_CLEAN(ns);
}

// Every error a C caller meets comes back as its code, with a message that says what to do.
TEST(CApi, ErrorsAreCodesWithMessages) {
  TestNamespace ns;
  const bloccs_port_options o = c_options(ns, 1);
  bloccs_port* port = nullptr;

  EXPECT_EQ(bloccs_port_start(nullptr, &o, &port), BLOCCS_BAD_ARGUMENT);
  EXPECT_NE(std::string(bloccs_last_error()).find("key"), std::string::npos);
  EXPECT_EQ(port, nullptr);
  const bloccs_key bad = {"net", "no/de", "in"};
  EXPECT_EQ(bloccs_port_start(&bad, &o, &port), BLOCCS_BAD_NAME);
  EXPECT_STRNE(bloccs_last_error(), "");

  ASSERT_EQ(bloccs_port_start(&kCKey, &o, &port), BLOCCS_OK) << bloccs_last_error();
  bloccs_port* twice = nullptr;
  EXPECT_EQ(bloccs_port_start(&kCKey, &o, &twice), BLOCCS_ALREADY_EXISTS);

  bloccs_message* m = nullptr;
  EXPECT_EQ(bloccs_port_receive(port, 0, &m), BLOCCS_TIMEOUT);
  EXPECT_EQ(bloccs_port_receive(port, 20'000'000, &m), BLOCCS_TIMEOUT);  // 20 ms
  EXPECT_EQ(m, nullptr);

  bloccs_pusher* p = nullptr;
  ASSERT_EQ(bloccs_pusher_open(ns.name().c_str(), &p), BLOCCS_OK);
  const std::vector<char> big(o.max_payload + 1, 'x');
  EXPECT_EQ(bloccs_pusher_push(p, &kCKey, big.data(), big.size(), nullptr, -1),
            BLOCCS_PAYLOAD_TOO_LARGE);
  EXPECT_EQ(bloccs_pusher_push(p, &kCKey, "a", 1, nullptr, -1), BLOCCS_OK);
  EXPECT_EQ(bloccs_pusher_push(p, &kCKey, "b", 1, nullptr, 20'000'000), BLOCCS_TIMEOUT)
      << "a full port (buffer 1) within 20 ms";
  const bloccs_key other = {"net", "nobody", "in"};
  EXPECT_EQ(bloccs_pusher_push(p, &other, "a", 1, nullptr, -1), BLOCCS_NO_PRODUCER);
  EXPECT_NE(std::string(bloccs_last_error()).find("nobody"), std::string::npos)
      << bloccs_last_error();
  EXPECT_EQ(bloccs_pusher_push(p, &kCKey, nullptr, 3, nullptr, -1), BLOCCS_BAD_ARGUMENT);
  EXPECT_EQ(bloccs_pusher_push(nullptr, &kCKey, "a", 1, nullptr, -1), BLOCCS_BAD_ARGUMENT);
  bloccs_meta_pair too_long = {"k", 1, big.data(), 300};
  const bloccs_meta bad_meta = {0, &too_long, 1};
  EXPECT_EQ(bloccs_pusher_push(p, &kCKey, "a", 1, &bad_meta, 0), BLOCCS_BAD_META);
  bloccs_pusher_close(p);
  bloccs_port_stop(port);

  // The names are the C++ API's, one for one.
  EXPECT_STREQ(bloccs_errc_name(BLOCCS_OK), "ok");
  for (int c = BLOCCS_TIMEOUT; c <= BLOCCS_BAD_LOAN; ++c)
    EXPECT_STREQ(bloccs_errc_name(static_cast<bloccs_errc>(c)),
                 errc_name(static_cast<Errc>(c - 1)));
  EXPECT_STREQ(bloccs_errc_name(BLOCCS_BAD_ARGUMENT), "bad_argument");
  // An int that is no code, passed from C (c_api_any_int.c).
  EXPECT_STREQ(c_api_test_name_of_int(999), "unknown");
  EXPECT_STREQ(c_api_test_name_of_int(-1), "unknown");
  EXPECT_STREQ(bloccs_version(), version());
  EXPECT_SHM_CLEAN(ns);
}

}  // namespace
}  // namespace bloccs::test
