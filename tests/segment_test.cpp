// SPDX-License-Identifier: Apache-2.0
// Segments: made whole, named in a namespace directory nobody else may write, validated on open,
// removed only when bloccs made them.
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fcntl.h>

#include <gtest/gtest.h>

#include "shm/namespace_dir.hpp"
#include "shm/segment.hpp"
#include "test_support.hpp"

using bloccs::Errc;
using namespace bloccs::shm;
using bloccs::test::TestNamespace;

namespace {

// Opens the raw object and lets `edit` change its header, as a damaged or foreign writer would.
template <class F>
void tamper(const TestNamespace& ns, const char* name, F edit) {
  const int fd = ::open(ns.path(name).c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  void* p = mmap(nullptr, sizeof(SegmentHeader), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ASSERT_NE(p, MAP_FAILED);
  edit(*static_cast<SegmentHeader*>(p));
  munmap(p, sizeof(SegmentHeader));
  ::close(fd);
}

bloccs::Result<Segment> make(const TestNamespace& ns, const char* name, std::size_t size = 4096,
                             CreateOptions options = {}) {
  auto s = Segment::create(ns.name(), name, SegmentKind::ring, size, options);
  if (!s) return s;
  if (auto st = s->publish(); !st) return std::move(st).error();
  return s;
}

std::string dir_of(const TestNamespace& ns) {
  return "/dev/shm/bloccs." + ns.name();
}

// A file planted in the namespace's directory by hand (as another user, or another program).
void plant(const TestNamespace& ns, const char* name, uid_t uid, mode_t mode) {
  const int fd = ::open(ns.path(name).c_str(), O_CREAT | O_EXCL | O_RDWR, mode);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 4096), 0);
  ASSERT_EQ(fchown(fd, uid, uid), 0);
  ASSERT_EQ(fchmod(fd, mode), 0);
  ::close(fd);
}

}  // namespace

TEST(Segment, CreateIsExclusiveOwnerOnlyAndRemovedOnClose) {
  TestNamespace ns;
  {
    auto seg = make(ns, "a");
    ASSERT_TRUE(seg) << seg.error().message;
    struct stat st {};
    ASSERT_EQ(stat(ns.path("a").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    EXPECT_EQ(st.st_size, 4096);
    ASSERT_EQ(stat(dir_of(ns).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0700u) << "a namespace is private unless it is shared";
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
  EXPECT_TRUE(ns.leftovers().empty()) << "the directory goes with the namespace's last segment: "
                                      << bloccs::test::join(ns.leftovers());
}

TEST(Segment, ANameAppearsOnlyOnceTheSegmentIsComplete) {
  TestNamespace ns;
  auto seg = Segment::create(ns.name(), "whole", SegmentKind::ring, 4096);
  ASSERT_TRUE(seg) << seg.error().message;
  EXPECT_FALSE(seg->published());
  EXPECT_EQ(Segment::open(ns.name(), "whole", SegmentKind::ring).code(), Errc::not_found)
      << "an opener never sees a segment whose creator is still writing it";
  const auto before = ns.leftovers();
  ASSERT_EQ(before.size(), 1u);
  EXPECT_NE(before[0].find("/.new."), std::string::npos) << before[0];
  ASSERT_TRUE(seg->publish());
  EXPECT_TRUE(Segment::open(ns.name(), "whole", SegmentKind::ring));

  // A second segment of that name is made whole too, then refused at its naming; it leaves
  // nothing behind, and the first is untouched.
  auto rival = Segment::create(ns.name(), "whole", SegmentKind::ring, 8192);
  ASSERT_TRUE(rival);
  auto named = rival->publish();
  ASSERT_FALSE(named);
  EXPECT_EQ(named.code(), Errc::already_exists);
  rival = Segment::create(ns.name(), "other", SegmentKind::ring, 4096);  // drops the refused one
  EXPECT_EQ(ns.leftovers().size(), 2u) << bloccs::test::join(ns.leftovers());
  EXPECT_EQ(Segment::open(ns.name(), "whole", SegmentKind::ring)->size(), 4096u);
}

TEST(Segment, GroupModeNeedsASharedNamespaceAndNeverWorldAccess) {
  TestNamespace ns;
  auto refused = make(ns, "g", 4096, {.mode = 0660, .sharing = Sharing{}});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.code(), Errc::bad_config);
  EXPECT_NE(refused.error().message.find("BLOCCS_NAMESPACE_GROUP"), std::string::npos)
      << refused.error().message;

  TestNamespace shared;
  const gid_t group = getegid();
  auto g = make(shared, "g", 4096, {.mode = 0660, .sharing = Sharing{group}});
  ASSERT_TRUE(g) << g.error().message;
  struct stat st {};
  ASSERT_EQ(stat(shared.path("g").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  EXPECT_EQ(st.st_gid, group);
  ASSERT_EQ(stat(dir_of(shared).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 02770u) << "setgid: segments take the namespace's group";
  auto w = Segment::create(shared.name(), "w", SegmentKind::ring, 4096, {.mode = 0666});
  ASSERT_FALSE(w);
  EXPECT_EQ(w.code(), Errc::bad_config);
}

TEST(Segment, ANamespacesSharingIsDeliberateAndChecked) {
  TestNamespace ns;
  const gid_t group = getegid();
  auto first = make(ns, "a", 4096, {.mode = 0600, .sharing = Sharing{}});
  ASSERT_TRUE(first);
  // Made private: a process that asks for it shared is told, whatever it creates.
  auto asks = make(ns, "b", 4096, {.mode = 0600, .sharing = Sharing{group}});
  ASSERT_FALSE(asks);
  EXPECT_EQ(asks.code(), Errc::bad_config);
  EXPECT_NE(asks.error().message.find("is private"), std::string::npos) << asks.error().message;
  auto dir = NamespaceDir::open_or_create(ns.name(), Sharing{group});
  ASSERT_FALSE(dir);
  EXPECT_EQ(dir.code(), Errc::bad_config);

  TestNamespace shared;
  auto a = make(shared, "a", 4096, {.mode = 0600, .sharing = Sharing{group}});
  ASSERT_TRUE(a);
  auto b = make(shared, "b", 4096, {.mode = 0600, .sharing = Sharing{}});
  EXPECT_TRUE(b) << "a process that asks nothing takes the namespace as it is";
  auto other = make(shared, "c", 4096, {.mode = 0600, .sharing = Sharing{group + 1}});
  ASSERT_FALSE(other);
  EXPECT_NE(other.error().message.find("same BLOCCS_NAMESPACE_GROUP"), std::string::npos)
      << other.error().message;
}

TEST(Segment, OpenMissingSaysWhereToLook) {
  TestNamespace ns;
  auto r = Segment::open(ns.name(), "nope", SegmentKind::ring);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), Errc::not_found);
  EXPECT_NE(r.error().message.find("BLOCCS_NAMESPACE"), std::string::npos) << r.error().message;
  auto seg = make(ns, "here");
  ASSERT_TRUE(seg);
  auto in_dir = Segment::open(ns.name(), "nope", SegmentKind::ring);
  EXPECT_EQ(in_dir.code(), Errc::not_found);
}

TEST(Segment, BadNamesAreRefusedBeforeTouchingTheSystem) {
  TestNamespace ns;
  EXPECT_EQ(Segment::create(ns.name(), "bad name", SegmentKind::ring, 4096).code(), Errc::bad_name);
  EXPECT_EQ(Segment::create(ns.name(), "a/b", SegmentKind::ring, 4096).code(), Errc::bad_name);
  EXPECT_EQ(Segment::open("bad ns", "x", SegmentKind::ring).code(), Errc::bad_name);
  EXPECT_TRUE(ns.leftovers().empty());
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
  // A zeroed header is damage, never "still being made": names appear only once complete.
  tamper(ns, "s", [](SegmentHeader& h) { std::memset(static_cast<void*>(&h), 0, sizeof h); });
  expect_open(Errc::segment_invalid, "overwritten");
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
  expect_open(Errc::segment_invalid, "ready word");
  restore();

  auto wrong = Segment::open(ns.name(), "s", SegmentKind::registry);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.code(), Errc::wrong_kind);
  ASSERT_TRUE(Segment::open(ns.name(), "s", SegmentKind::ring));  // restored: opens again
}

TEST(Segment, RefusesTooSmallWorldAccessibleAndForeignObjects) {
  TestNamespace ns;
  auto seg = make(ns, "s");
  ASSERT_TRUE(seg);
  ASSERT_EQ(truncate(ns.path("s").c_str(), 10), 0);
  auto small = Segment::open(ns.name(), "s", SegmentKind::ring);
  EXPECT_EQ(small.code(), Errc::segment_invalid);
  EXPECT_NE(small.error().message.find("too small"), std::string::npos);
  ASSERT_EQ(truncate(ns.path("s").c_str(), 0), 0);
  EXPECT_EQ(Segment::open(ns.name(), "s", SegmentKind::ring).code(), Errc::segment_invalid);

  auto seg2 = make(ns, "w");
  ASSERT_TRUE(seg2);
  ASSERT_EQ(chmod(ns.path("w").c_str(), 0666), 0);
  auto world = Segment::open(ns.name(), "w", SegmentKind::ring);
  EXPECT_EQ(world.code(), Errc::permission_denied);
  EXPECT_NE(world.error().message.find("any user"), std::string::npos);

  ASSERT_EQ(symlink(ns.path("w").c_str(), ns.path("link").c_str()), 0);
  EXPECT_EQ(Segment::open(ns.name(), "link", SegmentKind::ring).code(), Errc::segment_invalid);
  unlink(ns.path("link").c_str());

  if (geteuid() == 0) {  // only root can hand a file to another user
    auto seg3 = make(ns, "f");
    ASSERT_TRUE(seg3);
    ASSERT_EQ(chown(ns.path("f").c_str(), 65534, 65534), 0);
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
  EXPECT_TRUE(ns.leftovers().empty());
}

// Item 13 of the reliability review: even root never removes what another user planted, nor a
// file bloccs did not make; it refuses, naming the owner.
TEST(Segment, NobodyRemovesWhatBloccsDidNotMakeOrAnotherUserOwns) {
  if (geteuid() != 0) GTEST_SKIP() << "planting another user's file needs root";
  TestNamespace ns;
  auto keep = make(ns, "keep");  // the namespace's directory, ours
  ASSERT_TRUE(keep);
  plant(ns, "port.1.2.net.node.in", 65534, 0644);
  plant(ns, "port.1.2.net.node.in.due", 0, 0600);  // ours by uid, but not a bloccs segment
  auto r = Segment::remove(ns.name(), "port.1.2.net.node.in");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), Errc::permission_denied);
  EXPECT_NE(r.error().message.find("uid 65534"), std::string::npos) << r.error().message;
  EXPECT_EQ(Segment::remove_family(ns.name(), "port.1.2.net.node.in"), 1u)
      << "only root's own file of the family goes";
  struct stat st {};
  EXPECT_EQ(stat(ns.path("port.1.2.net.node.in").c_str(), &st), 0) << "the planted file stays";
  EXPECT_EQ(Segment::open(ns.name(), "port.1.2.net.node.in", SegmentKind::port).code(),
            Errc::permission_denied);
}

// Item 9: a namespace whose directory another user made (a squatter) is refused with a clear
// error that names the squatter and says what to do; nothing in it is used or removed.
TEST(Segment, ASquattedNamespaceIsRefusedNamingItsOwner) {
  if (geteuid() != 0) GTEST_SKIP() << "playing another user needs root";
  TestNamespace ns;
  ASSERT_EQ(mkdir(dir_of(ns).c_str(), 0755), 0);
  ASSERT_EQ(chown(dir_of(ns).c_str(), 65534, 65534), 0);
  auto r = make(ns, "x");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), Errc::permission_denied);
  EXPECT_NE(r.error().message.find("belongs to uid 65534"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("another namespace"), std::string::npos) << r.error().message;
  EXPECT_EQ(Segment::open(ns.name(), "x", SegmentKind::ring).code(), Errc::permission_denied);
  rmdir(dir_of(ns).c_str());

  // A world-writable directory is refused even if it is ours, and so is a file in its place.
  ASSERT_EQ(mkdir(dir_of(ns).c_str(), 0700), 0);
  ASSERT_EQ(chmod(dir_of(ns).c_str(), 0777), 0);
  auto world = make(ns, "x");
  EXPECT_EQ(world.code(), Errc::permission_denied);
  EXPECT_NE(world.error().message.find("every user"), std::string::npos) << world.error().message;
  rmdir(dir_of(ns).c_str());
  const int fd = ::open(dir_of(ns).c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  ASSERT_GE(fd, 0);
  ::close(fd);
  auto file = make(ns, "x");
  EXPECT_EQ(file.code(), Errc::segment_invalid);
  EXPECT_NE(file.error().message.find("not a directory"), std::string::npos)
      << file.error().message;
  unlink(dir_of(ns).c_str());
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
