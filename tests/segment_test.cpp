#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fcntl.h>

#include <gtest/gtest.h>

#include "shm/segment.hpp"
#include "test_support.hpp"

using bloccs::Errc;
using namespace bloccs::shm;
using bloccs::test::TestNamespace;

namespace {

std::string path(const TestNamespace& ns, const char* name) {
  return "/dev/shm/bloccs." + ns.name() + "." + name;
}

// Opens the raw object and lets `edit` change its header, as a damaged or foreign writer would.
template <class F>
void tamper(const TestNamespace& ns, const char* name, F edit) {
  const int fd = ::open(path(ns, name).c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  void* p = mmap(nullptr, sizeof(SegmentHeader), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ASSERT_NE(p, MAP_FAILED);
  edit(*static_cast<SegmentHeader*>(p));
  munmap(p, sizeof(SegmentHeader));
  ::close(fd);
}

bloccs::Result<Segment> make(const TestNamespace& ns, const char* name, std::size_t size = 4096) {
  auto s = Segment::create(ns.name(), name, SegmentKind::ring, size);
  if (s) s->publish();
  return s;
}

}  // namespace

TEST(Segment, CreateIsExclusiveOwnerOnlyAndRemovedOnClose) {
  TestNamespace ns;
  {
    auto seg = make(ns, "a");
    ASSERT_TRUE(seg) << seg.error().message;
    struct stat st {};
    ASSERT_EQ(stat(path(ns, "a").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    EXPECT_EQ(st.st_size, 4096);
    auto again = make(ns, "a");
    ASSERT_FALSE(again);
    EXPECT_EQ(again.code(), Errc::already_exists);
    EXPECT_NE(again.error().message.find("shmctl rm"), std::string::npos);

    auto opened = Segment::open(ns.name(), "a", SegmentKind::ring);
    ASSERT_TRUE(opened) << opened.error().message;
    EXPECT_EQ(opened->size(), 4096u);
    EXPECT_EQ(opened->header().creator_pid, static_cast<std::uint32_t>(getpid()));
    EXPECT_EQ(opened->header().creator_uid, geteuid());
  }
  EXPECT_TRUE(ns.leftovers().empty());
}

TEST(Segment, GroupModeOnRequestButNeverWorldAccess) {
  TestNamespace ns;
  auto g = Segment::create(ns.name(), "g", SegmentKind::ring, 4096, {.mode = 0660});
  ASSERT_TRUE(g);
  struct stat st {};
  ASSERT_EQ(stat(path(ns, "g").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  auto w = Segment::create(ns.name(), "w", SegmentKind::ring, 4096, {.mode = 0666});
  ASSERT_FALSE(w);
  EXPECT_EQ(w.code(), Errc::bad_config);
}

TEST(Segment, OpenMissingSaysWhereToLook) {
  TestNamespace ns;
  auto r = Segment::open(ns.name(), "nope", SegmentKind::ring);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), Errc::not_found);
  EXPECT_NE(r.error().message.find("BLOCCS_NAMESPACE"), std::string::npos) << r.error().message;
}

TEST(Segment, BadNamesAreRefusedBeforeTouchingTheSystem) {
  TestNamespace ns;
  EXPECT_EQ(Segment::create(ns.name(), "bad name", SegmentKind::ring, 4096).code(), Errc::bad_name);
  EXPECT_EQ(Segment::open("bad ns", "x", SegmentKind::ring).code(), Errc::bad_name);
}

TEST(Segment, EachDamageHasItsOwnError) {
  TestNamespace ns;
  auto seg = make(ns, "s");
  ASSERT_TRUE(seg);
  auto expect_open = [&](Errc code, const char* words) {
    auto r = Segment::open(ns.name(), "s", SegmentKind::ring);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.code(), code) << r.error().message;
    EXPECT_NE(r.error().message.find(words), std::string::npos) << r.error().message;
  };
  SegmentHeader saved{};
  tamper(ns, "s", [&](SegmentHeader& h) { std::memcpy(static_cast<void*>(&saved), &h, sizeof h); });
  auto restore = [&] {
    tamper(ns, "s",
           [&](SegmentHeader& h) { std::memcpy(static_cast<void*>(&h), &saved, sizeof h); });
  };

  tamper(ns, "s", [](SegmentHeader& h) { h.magic = 42; });
  expect_open(Errc::segment_invalid, "magic");
  restore();
  tamper(ns, "s", [](SegmentHeader& h) { std::memset(static_cast<void*>(&h), 0, sizeof h); });
  expect_open(Errc::not_ready, "no header yet");
  restore();
  tamper(ns, "s", [](SegmentHeader& h) {
    h.version = kLayoutVersion + 1;
    h.checksum = header_checksum(h);
  });
  expect_open(Errc::version_mismatch, "layout version");
  restore();
  tamper(ns, "s", [](SegmentHeader& h) { h.total_size = 1u << 20; });
  expect_open(Errc::segment_invalid, "checksum");
  restore();
  tamper(ns, "s", [](SegmentHeader& h) {
    h.total_size = 1u << 20;
    h.checksum = header_checksum(h);
  });
  expect_open(Errc::segment_invalid, "truncated or resized");
  restore();
  tamper(ns, "s", [](SegmentHeader& h) {
    h.creator_uid += 1;
    h.checksum = header_checksum(h);
  });
  expect_open(Errc::segment_invalid, "do not trust it");
  restore();
  tamper(ns, "s", [](SegmentHeader& h) { h.ready.store(0); });
  expect_open(Errc::not_ready, "still being initialised");
  restore();
  // Mid-creation: magic written, checksum not yet, not ready. An opener must wait, not give up.
  tamper(ns, "s", [](SegmentHeader& h) {
    h.ready.store(0);
    h.checksum = 0;
  });
  expect_open(Errc::not_ready, "still being initialised");
  restore();

  auto wrong = Segment::open(ns.name(), "s", SegmentKind::registry);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.code(), Errc::wrong_kind);
  ASSERT_TRUE(Segment::open(ns.name(), "s", SegmentKind::ring));  // restored: opens again
}

TEST(Segment, RefusesTooSmallWorldWritableAndForeignObjects) {
  TestNamespace ns;
  auto seg = make(ns, "s");
  ASSERT_TRUE(seg);
  ASSERT_EQ(truncate(path(ns, "s").c_str(), 10), 0);
  auto small = Segment::open(ns.name(), "s", SegmentKind::ring);
  EXPECT_EQ(small.code(), Errc::segment_invalid);
  EXPECT_NE(small.error().message.find("too small"), std::string::npos);
  ASSERT_EQ(truncate(path(ns, "s").c_str(), 0), 0);  // created, not sized yet
  EXPECT_EQ(Segment::open(ns.name(), "s", SegmentKind::ring).code(), Errc::not_ready);

  auto seg2 = make(ns, "w");
  ASSERT_TRUE(seg2);
  ASSERT_EQ(chmod(path(ns, "w").c_str(), 0666), 0);
  auto world = Segment::open(ns.name(), "w", SegmentKind::ring);
  EXPECT_EQ(world.code(), Errc::permission_denied);
  EXPECT_NE(world.error().message.find("any user"), std::string::npos);

  if (geteuid() == 0) {  // only root can hand a file to another user
    auto seg3 = make(ns, "f");
    ASSERT_TRUE(seg3);
    ASSERT_EQ(chown(path(ns, "f").c_str(), 65534, 65534), 0);
    auto foreign = Segment::open(ns.name(), "f", SegmentKind::ring);
    EXPECT_EQ(foreign.code(), Errc::permission_denied);
    EXPECT_NE(foreign.error().message.find("belongs to uid 65534"), std::string::npos)
        << foreign.error().message;
  }
}

TEST(Segment, RemoveReportsMissing) {
  TestNamespace ns;
  auto seg = make(ns, "r");
  ASSERT_TRUE(seg);
  seg->disown();
  EXPECT_TRUE(Segment::remove(ns.name(), "r"));
  EXPECT_EQ(Segment::remove(ns.name(), "r").code(), Errc::not_found);
}

TEST(Segment, AForkedChildNeverUnlinksItsParentsSegment) {
  TestNamespace ns;
  auto seg = make(ns, "p");
  ASSERT_TRUE(seg);
  const pid_t kid = bloccs::test::spawn([&] {
    { Segment inherited = std::move(seg).value(); }  // destroyed in the child
    return 0;
  });
  ASSERT_TRUE(bloccs::test::exited_ok(bloccs::test::wait_child(kid)));
  EXPECT_TRUE(Segment::open(ns.name(), "p", SegmentKind::ring));
}
