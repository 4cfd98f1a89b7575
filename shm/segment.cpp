#include "shm/segment.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include <boost/interprocess/shared_memory_object.hpp>

#include "shm/names.hpp"
#include "shm/process.hpp"

namespace bip = boost::interprocess;

namespace bloccs::shm {
namespace {

std::string octal(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

Error from_boost(const bip::interprocess_exception& e, const std::string& name, const char* doing) {
  const int err = e.get_native_error();
  std::string what = std::string(doing) + " /dev/shm/" + name + ": " + e.what();
  switch (e.get_error_code()) {
    case bip::already_exists_error:
      return {Errc::already_exists, what +
                                        "; another process holds this name. Pick another "
                                        "name or remove the old segment (shmctl rm)"};
    case bip::not_found_error:
      return {Errc::not_found, what +
                                   "; nothing by that name exists. Check the namespace "
                                   "(BLOCCS_NAMESPACE) and that its owner has started"};
    case bip::security_error:
      return {Errc::permission_denied, what +
                                           "; you may not access it. Run as its owner or "
                                           "have the owner create it with group access"};
    default:
      return {Errc::system_error, what + " (errno " + std::to_string(err) + ")"};
  }
}

bool in_group(gid_t gid) {
  if (getegid() == gid) return true;
  int n = getgroups(0, nullptr);
  if (n <= 0) return false;
  std::vector<gid_t> groups(static_cast<std::size_t>(n));
  n = getgroups(n, groups.data());
  for (int i = 0; i < n; ++i)
    if (groups[static_cast<std::size_t>(i)] == gid) return true;
  return false;
}

// Trust checks on the object before mapping it: who owns it and who else may write it.
Status check_stat(const struct stat& st, const std::string& name) {
  const std::string where = "/dev/shm/" + name;
  if (st.st_mode & 0007)
    return Error{Errc::permission_denied,
                 where + " has mode " + octal(st.st_mode) +
                     ", which lets any user write it; bloccs refuses it. Remove it (shmctl rm) "
                     "and recreate it with mode 0600 or 0660"};
  if (st.st_uid != geteuid() && !((st.st_mode & 0060) == 0060 && in_group(st.st_gid)))
    return Error{Errc::permission_denied,
                 where + " belongs to uid " + std::to_string(st.st_uid) + ", not to you (uid " +
                     std::to_string(geteuid()) +
                     "); run as its owner, or have it created with group access (mode 0660) "
                     "for a group you are in"};
  if (st.st_size == 0)
    return Error{Errc::not_ready, where +
                                      " is empty: its creator has not sized it yet; retry "
                                      "shortly (if no process is creating it, remove it "
                                      "with shmctl rm)"};
  if (static_cast<std::size_t>(st.st_size) < sizeof(SegmentHeader))
    return Error{Errc::segment_invalid,
                 where + " is " + std::to_string(st.st_size) +
                     " bytes, too small for a bloccs header: it is not a bloccs segment or its "
                     "creator died while creating it; remove it (shmctl rm)"};
  return {};
}

// Checks on the mapped header. Nothing in it is trusted until each field passed.
Status check_header(const SegmentHeader& h, const struct stat& st, SegmentKind kind,
                    const std::string& name) {
  const std::string where = "/dev/shm/" + name;
  // acquire: pairs with publish()'s release store, so the body the creator wrote is visible.
  // Until then the creator may be mid-way through the header, and any field may look wrong.
  if (h.ready.load(std::memory_order_acquire) != kReady) {
    if (h.magic == 0)
      return Error{Errc::not_ready, where +
                                        " has no header yet: its creator is still writing it; "
                                        "retry shortly (if no process is creating it, remove "
                                        "it with shmctl rm)"};
    if (h.magic == kMagic)
      return Error{Errc::not_ready,
                   where + " is still being initialised by pid " + std::to_string(h.creator_pid) +
                       "; retry shortly (if that process is gone, remove it with shmctl rm)"};
  }
  if (h.magic != kMagic)
    return Error{Errc::segment_invalid,
                 where +
                     " has no bloccs magic number: it is not a bloccs segment or its header "
                     "was overwritten; remove it (shmctl rm)"};
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
  if (h.ready.load(std::memory_order_relaxed) != kReady)  // relaxed: checked with acquire above
    return Error{Errc::segment_invalid, where +
                                            " has a bloccs header but a damaged ready word; "
                                            "remove it (shmctl rm)"};
  return {};
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

Result<Segment> Segment::create(std::string_view ns, std::string_view name, SegmentKind kind,
                                std::size_t size, CreateOptions options) {
  auto full = segment_name(ns, name);
  if (!full) return std::move(full).error();
  if (size < sizeof(SegmentHeader))
    return Error{Errc::bad_config, "segment size " + std::to_string(size) +
                                       " is smaller than its 64-byte header; ask for more"};
  if (options.mode & 0007)
    return Error{Errc::bad_config, "segment mode " + octal(options.mode) +
                                       " grants access to every user; use 0600 or 0660"};
  try {
    bip::permissions perm;
    perm.set_permissions(static_cast<int>(options.mode & 0770));
    bip::shared_memory_object shm(bip::create_only, full->c_str(), bip::read_write, perm);
    try {
      shm.truncate(static_cast<bip::offset_t>(size));
      // Reserve the pages now: tmpfs hands them out lazily, and a full /dev/shm would otherwise
      // surface later as SIGBUS in whichever process first touches one. (Filesystems that
      // cannot reserve keep the lazy behaviour.)
      if (const int rc = ::posix_fallocate(shm.get_mapping_handle().handle, 0,
                                           static_cast<off_t>(size));
          rc == ENOSPC) {
        bip::shared_memory_object::remove(full->c_str());
        return Error{Errc::out_of_memory,
                     "/dev/shm has no room for the " + std::to_string(size) + " bytes of " +
                         *full + "; free some (consume queued messages, remove dead ports "
                         "with shmctl gc) or enlarge it (mount -o remount,size=... /dev/shm)"};
      }
      bip::mapped_region region(shm, bip::read_write);
      Segment seg(std::move(full).value(), std::move(region), true);
      seg.creator_pid_ = getpid();
      struct stat st {};
      if (::fstat(shm.get_mapping_handle().handle, &st) == 0) seg.inode_ = st.st_ino;
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
    } catch (...) {
      bip::shared_memory_object::remove(full->c_str());
      throw;
    }
  } catch (const bip::interprocess_exception& e) {
    return from_boost(e, *full, "creating");
  }
}

Result<Segment> Segment::open(std::string_view ns, std::string_view name, SegmentKind kind,
                              OpenOptions options) {
  auto full = segment_name(ns, name);
  if (!full) return std::move(full).error();
  try {
    const auto mode = options.read_only ? bip::read_only : bip::read_write;
    bip::shared_memory_object shm(bip::open_only, full->c_str(), mode);
    struct stat st {};
    if (::fstat(shm.get_mapping_handle().handle, &st) != 0)
      return Error{Errc::system_error,
                   "fstat of /dev/shm/" + *full + " failed: " + std::strerror(errno)};
    if (auto ok = check_stat(st, *full); !ok) return std::move(ok).error();
    bip::mapped_region region(shm, mode, 0, static_cast<std::size_t>(st.st_size));
    Segment seg(std::move(full).value(), std::move(region), false);
    seg.inode_ = st.st_ino;
    if (auto ok = check_header(seg.header(), st, kind, seg.name()); !ok)
      return std::move(ok).error();
    return seg;
  } catch (const bip::interprocess_exception& e) {
    return from_boost(e, *full, "opening");
  }
}

Status Segment::remove(std::string_view ns, std::string_view name) {
  auto full = segment_name(ns, name);
  if (!full) return std::move(full).error();
  if (::shm_unlink(("/" + *full).c_str()) != 0) {
    if (errno == ENOENT)
      return Error{Errc::not_found, "/dev/shm/" + *full + " does not exist; nothing to remove"};
    return Error{Errc::system_error,
                 "removing /dev/shm/" + *full + " failed: " + std::strerror(errno)};
  }
  return {};
}

std::size_t Segment::remove_family(std::string_view ns, std::string_view name) {
  auto full = segment_name(ns, name);
  if (!full) return 0;
  std::size_t removed = 0;
  std::vector<std::string> doomed;
  if (DIR* d = ::opendir("/dev/shm")) {
    while (const dirent* e = ::readdir(d)) {
      const std::string_view entry(e->d_name);
      if (entry.starts_with(*full) &&
          (entry.size() == full->size() || entry[full->size()] == '.'))
        doomed.emplace_back(entry);
    }
    ::closedir(d);
  }
  for (const auto& n : doomed) removed += ::shm_unlink(("/" + n).c_str()) == 0;
  return removed;
}

bool Segment::remove_if_abandoned(std::string_view ns, std::string_view name,
                                  std::chrono::milliseconds empty_grace) {
  auto full = segment_name(ns, name);
  if (!full) return false;
  const std::string path = "/" + *full;
  const int fd = ::shm_open(path.c_str(), O_RDONLY, 0);
  if (fd < 0) return false;
  struct stat st {};
  bool abandoned = false;
  if (::fstat(fd, &st) == 0) {
    const auto created = std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::seconds(st.st_ctim.tv_sec) +
            std::chrono::nanoseconds(st.st_ctim.tv_nsec)));
    // A live creator sizes the segment and writes its header within microseconds; one that
    // has not done so after `empty_grace` died doing it.
    const bool stale = std::chrono::system_clock::now() - created > empty_grace;
    if (static_cast<std::size_t>(st.st_size) < sizeof(SegmentHeader)) {
      abandoned = stale;
    } else if (void* p = ::mmap(nullptr, sizeof(SegmentHeader), PROT_READ, MAP_SHARED, fd, 0);
               p != MAP_FAILED) {
      const auto& h = *static_cast<const SegmentHeader*>(p);
      // acquire: as in check_header; a published segment is never abandoned.
      if (h.ready.load(std::memory_order_acquire) == kReady)
        abandoned = false;
      else if (h.magic != kMagic || h.checksum != header_checksum(h))
        abandoned = stale;  // the header is still being written: its creator's pid may be 0
      else
        abandoned = !is_alive({h.creator_pid, h.creator_start_time});
      ::munmap(p, sizeof(SegmentHeader));
    }
  }
  // Unlink only the object we judged: if the name now names another one, leave it.
  struct stat now {};
  if (abandoned && ::stat(("/dev/shm" + path).c_str(), &now) == 0 && now.st_ino == st.st_ino)
    abandoned = ::shm_unlink(path.c_str()) == 0;
  else
    abandoned = false;
  ::close(fd);
  return abandoned;
}

bool Segment::remove_if_still_named() const {
  struct stat now {};
  return inode_ != 0 && ::stat(("/dev/shm/" + name_).c_str(), &now) == 0 && now.st_ino == inode_ &&
         ::shm_unlink(("/" + name_).c_str()) == 0;
}

Segment& Segment::operator=(Segment&& other) noexcept {
  if (this != &other) {
    Segment dying(std::move(*this));  // unlinks (if ours) when it goes out of scope
    name_ = std::move(other.name_);
    region_ = std::move(other.region_);
    creator_pid_ = other.creator_pid_;
    inode_ = other.inode_;
    unlink_on_close_ = std::exchange(other.unlink_on_close_, false);
  }
  return *this;
}

Segment::~Segment() {
  if (unlink_on_close_ && !name_.empty() && creator_pid_ == getpid())
    bip::shared_memory_object::remove(name_.c_str());
}

void Segment::publish() noexcept {
  auto* h = reinterpret_cast<SegmentHeader*>(base());
  // release: everything the creator wrote into the body happens-before an opener's acquire.
  h->ready.store(kReady, std::memory_order_release);
}

}  // namespace bloccs::shm
