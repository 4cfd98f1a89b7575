// SPDX-License-Identifier: Apache-2.0
#include "shm/segment.hpp"

#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "shm/fence.hpp"
#include "shm/liveness.hpp"
#include "shm/names.hpp"
#include "shm/process.hpp"
#include "shm/test_hooks.hpp"

namespace bip = boost::interprocess;

namespace bloccs::shm {
namespace {

std::string octal(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

// A file descriptor as Boost.Interprocess maps one (its MemoryMappable concept).
struct FdMapping {
  int fd;
  bip::mapping_handle_t get_mapping_handle() const noexcept {
    bip::mapping_handle_t h;
    h.handle = fd;
    h.is_xsi = false;
    return h;
  }
};

// Maps `size` bytes of `fd`; Errc::system_error if the kernel refuses.
Result<bip::mapped_region> map(int fd, std::size_t size, bool read_only, const std::string& name) {
  try {
    return bip::mapped_region(FdMapping{fd}, read_only ? bip::read_only : bip::read_write, 0, size);
  } catch (const bip::interprocess_exception& e) {
    return Error{Errc::system_error, "mapping /dev/shm/" + name + " failed: " + e.what()};
  }
}

// Trust checks on the object before mapping it: what it is, who owns it and who else may write it.
Status check_stat(const struct stat& st, const std::string& name, bool inspect) {
  const std::string where = "/dev/shm/" + name;
  if (!S_ISREG(st.st_mode))
    return Error{Errc::segment_invalid, where +
                                            " is not a regular file; it is not a bloccs "
                                            "segment. Remove it (shmctl rm)"};
  // Another user's file first: what to do about it is that user's to do, not ours.
  const bool mine = st.st_uid == geteuid();
  if (!inspect && !mine && !((st.st_mode & 0067) == 0060 && in_group(st.st_gid)))
    return Error{Errc::permission_denied,
                 where + " belongs to uid " + std::to_string(st.st_uid) + ", not to you (uid " +
                     std::to_string(geteuid()) + "; mode " + octal(st.st_mode) +
                     "); bloccs neither uses nor removes another user's file: ask its owner to "
                     "remove it, or use another namespace. To share ports, have them created "
                     "with group access (mode 0660) in a namespace shared with a group you are "
                     "in"};
  if (st.st_mode & 0007)
    return Error{Errc::permission_denied,
                 where + " has mode " + octal(st.st_mode) +
                     ", which lets any user access it; bloccs refuses it. " +
                     (mine ? std::string("Remove it (shmctl rm)")
                           : "Ask its owner, uid " + std::to_string(st.st_uid) + ", to remove it") +
                     " and recreate it with mode 0600 or 0660"};
  if (static_cast<std::size_t>(st.st_size) < sizeof(SegmentHeader))
    return Error{Errc::segment_invalid,
                 where + " is " + std::to_string(st.st_size) +
                     " bytes, too small for a bloccs header: it was truncated, or it is not a "
                     "bloccs segment; remove it (shmctl rm) and restart its owner"};
  return {};
}

// Checks on the mapped header. Nothing in it is trusted until each field passed. A segment
// under its name was published whole, so every failure here is damage (or another program's).
Status check_header(const SegmentHeader& h, const struct stat& st, SegmentKind kind,
                    const std::string& name) {
  const std::string where = "/dev/shm/" + name;
  if (h.magic != kMagic)
    return Error{Errc::segment_invalid,
                 where +
                     " has no bloccs magic number: its header was overwritten, or it is not a "
                     "bloccs segment; remove it (shmctl rm) and restart its owner"};
  if (h.version != kLayoutVersion)
    return Error{Errc::version_mismatch,
                 where + " has layout version " + std::to_string(h.version) +
                     ", this library reads version " + std::to_string(kLayoutVersion) +
                     "; use the same bloccs version on both sides, or restart its owner"};
  if (h.checksum != header_checksum(h))
    return Error{Errc::segment_invalid,
                 where +
                     " fails its header checksum: the header was damaged; remove it "
                     "(shmctl rm) and restart its owner"};
  if (h.total_size != static_cast<std::uint64_t>(st.st_size))
    return Error{Errc::segment_invalid, where + " is " + std::to_string(st.st_size) +
                                            " bytes but its header says " +
                                            std::to_string(h.total_size) +
                                            ": it was truncated or resized; remove it (shmctl rm)"};
  if (h.creator_uid != st.st_uid)
    return Error{Errc::segment_invalid, where + " says it was created by uid " +
                                            std::to_string(h.creator_uid) + " but belongs to uid " +
                                            std::to_string(st.st_uid) +
                                            "; do not trust it, remove it (shmctl rm)"};
  if (h.kind != static_cast<std::uint32_t>(kind))
    return Error{Errc::wrong_kind, where + " holds a segment of kind " + std::to_string(h.kind) +
                                       ", expected " +
                                       std::to_string(static_cast<std::uint32_t>(kind)) +
                                       "; check the name you asked for"};
  // acquire: pairs with publish()'s release store, so the body the creator wrote is visible.
  if (h.ready.load(std::memory_order_acquire) != kReady)
    return Error{Errc::segment_invalid, where +
                                            " has a bloccs header but a damaged ready word; "
                                            "remove it (shmctl rm) and restart its owner"};
  return {};
}

// May this process remove the file `leaf` of `dir`? Its own, or (in a shared namespace, or as
// root collecting garbage) a bloccs segment whose header names the file's owner as its maker.
Status may_remove(const NamespaceDir& dir, const std::string& leaf, const std::string& name,
                  const RemoveOptions& options) {
  struct stat st {};
  if (::fstatat(dir.fd(), leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
    return Error{errno == ENOENT ? Errc::not_found : Errc::system_error,
                 "/dev/shm/" + name +
                     (errno == ENOENT ? " does not exist; nothing to remove"
                                      : ": " + std::string(std::strerror(errno)))};
  if (!S_ISREG(st.st_mode))
    return Error{Errc::permission_denied, "/dev/shm/" + name +
                                              " is not a regular file: bloccs did not make it "
                                              "and leaves it alone; remove it by hand"};
  if (st.st_uid == geteuid()) return {};
  const bool others_allowed = dir.shared() || (options.any_owner && geteuid() == 0);
  bool bloccs_made = false;
  if (others_allowed && static_cast<std::size_t>(st.st_size) >= sizeof(SegmentHeader)) {
    const int fd = ::openat(dir.fd(), leaf.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
      SegmentHeader h{};
      bloccs_made = ::pread(fd, &h, sizeof h, 0) == static_cast<ssize_t>(sizeof h) &&
                    h.magic == kMagic && h.checksum == header_checksum(h) &&
                    h.creator_uid == st.st_uid;
      ::close(fd);
    }
  }
  if (bloccs_made) return {};
  return Error{Errc::permission_denied,
               "/dev/shm/" + name + " belongs to uid " + std::to_string(st.st_uid) +
                   (others_allowed ? " and is not a bloccs segment" : "") +
                   "; bloccs removes only what it made, and never another user's file: ask its "
                   "owner to remove it" +
                   (geteuid() == 0 ? " (or run `shmctl gc` as root)" : "")};
}

std::string temporary_name(std::string_view leaf) {
  static std::atomic<std::uint32_t> counter{0};
  // relaxed: only uniqueness matters.
  return ".new." + std::to_string(getpid()) + "." + std::to_string(counter.fetch_add(1)) + "." +
         std::string(leaf);
}

}  // namespace

std::uint64_t header_checksum(const SegmentHeader& h) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(&h);
  std::uint64_t x = 0xcbf29ce484222325ull;
  for (std::size_t i = 0; i < offsetof(SegmentHeader, checksum); ++i) {
    x ^= p[i];
    x *= 0x100000001b3ull;
  }
  return x;
}

Segment::Segment(std::string ns, std::string leaf, bip::mapped_region region, bool unlink_on_close)
    : ns_(std::move(ns)),
      leaf_(std::move(leaf)),
      name_(namespace_dir_name(ns_) + "/" + leaf_),
      region_(std::move(region)),
      unlink_on_close_(unlink_on_close),
      fence_slot_(fence_register(region_.get_address(), region_.get_size(),
                                 region_.get_mode() == bip::read_write)),
      damaged_flag_(&fence_flag(fence_slot_)) {}

bool Segment::intact() const noexcept {
  if (damaged()) return false;
  if (!tmp_.empty() || leaf_.empty()) return true;
  struct stat st {};
  const std::string path = std::string(kShmRoot) + "/" + name_;
  if (::stat(path.c_str(), &st) != 0 || st.st_ino != inode_) return true;  // not ours any more
  if (static_cast<std::size_t>(st.st_size) >= size()) return true;
  fence_mark(base());
  return false;
}

Error Segment::damage_error() const {
  return {Errc::segment_invalid,
          "/dev/shm/" + name_ +
              " was cut short under this process (another process with write access truncated "
              "it): its pages read as zeros here from now on, and nothing written to it reaches "
              "anyone. It is damaged: its owner must stop and start the port again (for a dead "
              "owner's, shmctl rm)"};
}

Segment::Segment(Segment&& other) noexcept
    : ns_(std::move(other.ns_)),
      leaf_(std::move(other.leaf_)),
      name_(std::move(other.name_)),
      tmp_(std::move(other.tmp_)),
      dir_fd_(std::exchange(other.dir_fd_, -1)),
      region_(std::move(other.region_)),
      creator_pid_(other.creator_pid_),
      inode_(other.inode_),
      unlink_on_close_(std::exchange(other.unlink_on_close_, false)),
      admin_(other.admin_),
      fence_slot_(std::exchange(other.fence_slot_, -1)),
      damaged_flag_(std::exchange(other.damaged_flag_, &fence_flag(-1))) {}

Result<Segment> Segment::create(std::string_view ns, std::string_view name, SegmentKind kind,
                                std::size_t size, CreateOptions options) {
  auto full = segment_name(ns, name);
  if (!full) return std::move(full).error();
  auto resolved = resolve_namespace(ns);
  if (size < sizeof(SegmentHeader))
    return Error{Errc::bad_config, "segment size " + std::to_string(size) +
                                       " is smaller than its 64-byte header; ask for more"};
  if (options.mode & 0007)
    return Error{Errc::bad_config, "segment mode " + octal(options.mode) +
                                       " grants access to every user; use 0600 or 0660"};
  if (!options.sharing) {
    auto env = sharing_from_environment();
    if (!env) return std::move(env).error();
    options.sharing = *env;
  }
  for (int attempt = 0;; ++attempt) {
    auto dir = NamespaceDir::open_or_create(*resolved, *options.sharing);
    if (!dir) return std::move(dir).error();
    if ((options.mode & 0060) && !dir->shared())
      return Error{Errc::bad_config,
                   "/dev/shm/" + *full + " asks for group access (mode " + octal(options.mode) +
                       ") but namespace '" + *resolved +
                       "' is private; share the namespace with a group: set "
                       "BLOCCS_NAMESPACE_GROUP (or the group option) in the process that makes "
                       "its first segment, or use mode 0600"};
    const std::string tmp = temporary_name(name);
    const int fd =
        ::openat(dir->fd(), tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno == ENOENT && attempt < 8) continue;  // the empty directory was just removed
    if (fd < 0)
      return Error{errno == EACCES ? Errc::permission_denied : Errc::system_error,
                   "creating /dev/shm/" + *full + " failed: " + std::strerror(errno)};
    auto fail = [&](Error e) {
      ::unlinkat(dir->fd(), tmp.c_str(), 0);
      ::close(fd);
      return e;
    };
    // chmod, not open's mode: the umask must not take the group's bits away. The group comes
    // from the (setgid) directory.
    if (::fchmod(fd, options.mode & 0770) != 0 || ::ftruncate(fd, static_cast<off_t>(size)) != 0)
      return fail(
          {Errc::system_error, "sizing /dev/shm/" + *full + " failed: " + std::strerror(errno)});
    // Reserve the pages now: tmpfs hands them out lazily, and a full /dev/shm would otherwise
    // surface later as SIGBUS in whichever process first touches one. (Filesystems that cannot
    // reserve keep the lazy behaviour.)
    if (::posix_fallocate(fd, 0, static_cast<off_t>(size)) == ENOSPC)
      return fail({Errc::out_of_memory,
                   "/dev/shm has no room for the " + std::to_string(size) + " bytes of " + *full +
                       "; free some (consume queued messages, remove dead ports with shmctl "
                       "gc) or enlarge it (mount -o remount,size=... /dev/shm)"});
    auto region = map(fd, size, false, *full);
    if (!region) return fail(std::move(region).error());
    struct stat st {};
    ::fstat(fd, &st);
    ::close(fd);
    Segment seg(*resolved, std::string(name), std::move(region).value(), true);
    seg.tmp_ = tmp;
    seg.dir_fd_ = ::dup(dir->fd());
    seg.creator_pid_ = getpid();
    seg.inode_ = st.st_ino;
    // ftruncate zero-fills, so the body starts as zeros; only the header needs writing.
    auto* h = reinterpret_cast<SegmentHeader*>(seg.base());
    const ProcessId me = self_process();
    h->magic = kMagic;
    h->version = kLayoutVersion;
    h->kind = static_cast<std::uint32_t>(kind);
    h->total_size = size;
    h->creator_uid = geteuid();
    h->creator_pid = me.pid;
    h->creator_start_time = me.start_time;
    h->reserved = 0;
    h->checksum = header_checksum(*h);
    return seg;
  }
}

Result<Segment> Segment::open(std::string_view ns, std::string_view name, SegmentKind kind,
                              OpenOptions options) {
  auto full = segment_name(ns, name);
  if (!full) return std::move(full).error();
  const bool admin = options.any_owner && geteuid() == 0;
  auto dir = NamespaceDir::open(ns, options.read_only || admin ? DirUse::inspect : DirUse::write);
  if (!dir) {
    if (dir.code() != Errc::not_found) return std::move(dir).error();
    return Error{Errc::not_found, "opening /dev/shm/" + *full +
                                      ": nothing by that name exists. Check the namespace "
                                      "(BLOCCS_NAMESPACE) and that its owner has started"};
  }
  const int fd = ::openat(dir->fd(), std::string(name).c_str(),
                          (options.read_only ? O_RDONLY : O_RDWR) | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    switch (errno) {
      case ENOENT:
        return Error{Errc::not_found, "opening /dev/shm/" + *full +
                                          ": nothing by that name exists. Check the namespace "
                                          "(BLOCCS_NAMESPACE) and that its owner has started"};
      case EACCES:
        return Error{Errc::permission_denied,
                     "opening /dev/shm/" + *full +
                         ": you may not access it. Run as its owner, or have the owner create "
                         "it with group access (mode 0660) in a namespace shared with you"};
      case ELOOP:
        return Error{Errc::segment_invalid, "/dev/shm/" + *full +
                                                " is a symbolic link, not a bloccs segment; "
                                                "remove it"};
      default:
        return Error{Errc::system_error,
                     "opening /dev/shm/" + *full + " failed: " + std::strerror(errno)};
    }
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return Error{Errc::system_error,
                 "fstat of /dev/shm/" + *full + " failed: " + std::strerror(err)};
  }
  if (auto ok = check_stat(st, *full, options.read_only || admin); !ok) {
    ::close(fd);
    return std::move(ok).error();
  }
  auto region = map(fd, static_cast<std::size_t>(st.st_size), options.read_only, *full);
  ::close(fd);
  if (!region) return std::move(region).error();
  Segment seg(dir->ns(), std::string(name), std::move(region).value(), false);
  seg.inode_ = st.st_ino;
  seg.admin_ = admin;
  if (auto ok = check_header(seg.header(), st, kind, seg.name()); !ok) return std::move(ok).error();
  return seg;
}

Status Segment::remove(std::string_view ns, std::string_view name, RemoveOptions options) {
  auto full = segment_name(ns, name);
  if (!full) return std::move(full).error();
  auto dir = NamespaceDir::open(ns, options.any_owner ? DirUse::inspect : DirUse::write);
  if (!dir) {
    if (dir.code() == Errc::not_found)
      return Error{Errc::not_found, "/dev/shm/" + *full + " does not exist; nothing to remove"};
    return std::move(dir).error();
  }
  const std::string leaf(name);
  if (auto st = may_remove(*dir, leaf, *full, options); !st) return st;
  if (::unlinkat(dir->fd(), leaf.c_str(), 0) != 0)
    return Error{errno == ENOENT ? Errc::not_found : Errc::system_error,
                 "removing /dev/shm/" + *full + " failed: " + std::strerror(errno)};
  dir->remove_if_empty();
  return {};
}

std::size_t Segment::remove_family(std::string_view ns, std::string_view name,
                                   RemoveOptions options) {
  auto full = segment_name(ns, name);
  if (!full) return 0;
  auto dir = NamespaceDir::open(ns, options.any_owner ? DirUse::inspect : DirUse::write);
  if (!dir) return 0;
  std::size_t removed = 0;
  for (const std::string& leaf : dir->list(name)) {
    if (leaf.size() != name.size() && leaf[name.size()] != '.') continue;
    const std::string shown = namespace_dir_name(dir->ns()) + "/" + leaf;
    if (may_remove(*dir, leaf, shown, options))
      removed += ::unlinkat(dir->fd(), leaf.c_str(), 0) == 0;
  }
  dir->remove_if_empty();
  return removed;
}

Result<bool> Segment::lock_held(std::string_view ns, std::string_view name, std::size_t offset) {
  auto full = segment_name(ns, name);
  if (!full) return std::move(full).error();
  auto dir = NamespaceDir::open(ns, DirUse::inspect);
  if (!dir) return std::move(dir).error();
  const int fd = ::openat(dir->fd(), std::string(name).c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return Error{errno == ENOENT ? Errc::not_found : Errc::permission_denied,
                 "opening /dev/shm/" + *full + " failed: " + std::strerror(errno)};
  LivenessLock lock{};
  const ssize_t n = ::pread(fd, &lock, sizeof lock, static_cast<off_t>(offset));
  ::close(fd);
  if (n != static_cast<ssize_t>(sizeof lock))
    return Error{Errc::segment_invalid, "/dev/shm/" + *full + " is too small to hold its lock"};
  return held(lock);
}

Status Segment::publish() {
  auto* h = reinterpret_cast<SegmentHeader*>(base());
  // release: everything the creator wrote into the body happens-before an opener's acquire.
  h->ready.store(kReady, std::memory_order_release);
  if (tmp_.empty()) return {};
  test_hook("segment.publish");  // complete, not yet named: nobody may take it for anything
  const int renamed = ::renameat2(dir_fd_, tmp_.c_str(), dir_fd_, leaf_.c_str(), RENAME_NOREPLACE);
  const int err = errno;
  if (renamed != 0) {
    ::unlinkat(dir_fd_, tmp_.c_str(), 0);
    tmp_.clear();
    unlink_on_close_ = false;  // the name is someone else's
    close_dir();
    if (err == EEXIST)
      return Error{Errc::already_exists,
                   "/dev/shm/" + name_ +
                       " already exists; another process holds this name. Pick another name, "
                       "or remove the old segment (shmctl rm)"};
    return Error{Errc::system_error, "naming /dev/shm/" + name_ + " failed: " + std::strerror(err)};
  }
  tmp_.clear();
  close_dir();
  return {};
}

void Segment::close_dir() noexcept {
  if (dir_fd_ >= 0) ::close(dir_fd_);
  dir_fd_ = -1;
}

bool Segment::remove_if_still_named() const {
  if (inode_ == 0 || !tmp_.empty()) return false;
  auto dir = NamespaceDir::open(ns_, admin_ ? DirUse::inspect : DirUse::write);
  if (!dir) return false;
  struct stat now {};
  const bool ours = ::fstatat(dir->fd(), leaf_.c_str(), &now, AT_SYMLINK_NOFOLLOW) == 0 &&
                    now.st_ino == inode_ && ::unlinkat(dir->fd(), leaf_.c_str(), 0) == 0;
  if (ours) dir->remove_if_empty();
  return ours;
}

Segment& Segment::operator=(Segment&& other) noexcept {
  if (this != &other) {
    Segment dying(std::move(*this));  // unlinks (if ours) when it goes out of scope
    ns_ = std::move(other.ns_);
    leaf_ = std::move(other.leaf_);
    name_ = std::move(other.name_);
    tmp_ = std::move(other.tmp_);
    dir_fd_ = std::exchange(other.dir_fd_, -1);
    region_ = std::move(other.region_);
    creator_pid_ = other.creator_pid_;
    inode_ = other.inode_;
    unlink_on_close_ = std::exchange(other.unlink_on_close_, false);
    admin_ = other.admin_;
    fence_slot_ = std::exchange(other.fence_slot_, -1);
    damaged_flag_ = std::exchange(other.damaged_flag_, &fence_flag(-1));
  }
  return *this;
}

Segment::~Segment() {
  fence_unregister(fence_slot_);  // before the region goes: the fence never names a hole
  if (unlink_on_close_ && creator_pid_ == getpid()) {
    if (!tmp_.empty() && dir_fd_ >= 0)
      ::unlinkat(dir_fd_, tmp_.c_str(), 0);  // never published
    else
      remove_if_still_named();
  }
  close_dir();
}

}  // namespace bloccs::shm
