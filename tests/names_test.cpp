// SPDX-License-Identifier: Apache-2.0
#include <cstdlib>

#include <gtest/gtest.h>

#include "shm/names.hpp"

using bloccs::Errc;
using namespace bloccs::shm;

TEST(Names, NamespaceComesFromOptionThenEnvironmentThenDefault) {
  unsetenv("BLOCCS_NAMESPACE");
  EXPECT_EQ(resolve_namespace().value(), "default");
  setenv("BLOCCS_NAMESPACE", "from-env", 1);
  EXPECT_EQ(resolve_namespace().value(), "from-env");
  EXPECT_EQ(resolve_namespace("explicit_1").value(), "explicit_1");
  unsetenv("BLOCCS_NAMESPACE");
}

TEST(Names, BadNamespaceIsAClearError) {
  for (const char* bad : {"has space", "dot.ted", "slash/", "\xc3\xa9t\xc3\xa9"}) {
    auto r = resolve_namespace(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.code(), Errc::bad_name);
    EXPECT_NE(r.error().message.find("contains a character"), std::string::npos)
        << r.error().message;
  }
  auto long_ns = resolve_namespace(std::string(kMaxNamespaceLength + 1, 'a'));
  ASSERT_FALSE(long_ns);
  EXPECT_NE(long_ns.error().message.find("use 1 to 48"), std::string::npos)
      << long_ns.error().message;
  setenv("BLOCCS_NAMESPACE", "bad ns", 1);
  EXPECT_EQ(resolve_namespace().code(), Errc::bad_name);
  unsetenv("BLOCCS_NAMESPACE");
}

TEST(Names, SegmentNamesCarryPrefixAndNamespace) {
  EXPECT_EQ(segment_name("ns1", "port.a-1").value(), "bloccs.ns1/port.a-1");
  EXPECT_EQ(segment_name("ns1", "").code(), Errc::bad_name);
  EXPECT_EQ(segment_name("ns1", ".hidden").code(), Errc::bad_name);
  EXPECT_EQ(segment_name("ns1", "a/b").code(), Errc::bad_name);
  EXPECT_EQ(segment_name("ns1", std::string(kMaxNameLength + 1, 'x')).code(), Errc::bad_name);
  EXPECT_TRUE(segment_name("ns1", std::string(kMaxNameLength, 'x')));
}

TEST(Names, AnEmptyNamespaceMeansTheEnvironmentsOrTheDefault) {
  setenv("BLOCCS_NAMESPACE", "envns", 1);
  EXPECT_EQ(segment_name("", "r").value(), "bloccs.envns/r");
  unsetenv("BLOCCS_NAMESPACE");
  EXPECT_EQ(segment_name("", "r").value(), "bloccs.default/r");
}
