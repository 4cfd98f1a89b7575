// SPDX-License-Identifier: Apache-2.0
#include "shm/namespace_dir.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "shm/names.hpp"

namespace bloccs::shm {
namespace {

constexpr mode_t kPrivateMode = 0700;
constexpr mode_t kSharedMode = 02770;

std::string octal(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

std::string user_text(uid_t uid) {
  std::string s = "uid " + std::to_string(uid);
  passwd pw{}, *found = nullptr;
  char buf[1024];
  if (getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found)
    s += " (" + std::string(found->pw_name) + ")";
  return s;
}

std::string group_text(gid_t gid) {
  std::string s = "group " + std::to_string(gid);
  group gr{}, *found = nullptr;
  char buf[4096];
  if (getgrgid_r(gid, &gr, buf, sizeof buf, &found) == 0 && found)
    s += " (" + std::string(found->gr_name) + ")";
  return s;
}

int open_root() {
  return ::open(std::string(kShmRoot).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

Error root_error() {
  return {Errc::system_error, "cannot open " + std::string(kShmRoot) + ": " + std::strerror(errno) +
                                  "; bloccs needs a tmpfs mounted there (POSIX shared memory)"};
}

std::string where(std::string_view ns) {
  return std::string(kShmRoot) + "/" + namespace_dir_name(ns);
}

}  // namespace

bool in_group(gid_t gid) {
  if (getegid() == gid) return true;
  int n = getgroups(0, nullptr);
  if (n <= 0) return false;
  std::vector<gid_t> groups(static_cast<std::size_t>(n));
  n = getgroups(n, groups.data());
  return std::find(groups.begin(), groups.begin() + std::max(n, 0), gid) !=
         groups.begin() + std::max(n, 0);
}

Result<gid_t> parse_group(std::string_view text) {
  unsigned long number = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec == std::errc() && end == text.data() + text.size() && number < 0xffffffffu)
    return static_cast<gid_t>(number);
  group gr{}, *found = nullptr;
  char buf[4096];
  const std::string name(text);
  if (getgrnam_r(name.c_str(), &gr, buf, sizeof buf, &found) == 0 && found) return found->gr_gid;
  return Error{Errc::bad_config, "there is no group '" + name +
                                     "' to share the namespace with; name an existing group "
                                     "(or its number) in BLOCCS_NAMESPACE_GROUP"};
}

Result<Sharing> sharing_from_environment() {
  const char* env = std::getenv("BLOCCS_NAMESPACE_GROUP");
  if (!env || !*env) return Sharing{};
  auto gid = parse_group(env);
  if (!gid) return std::move(gid).error();
  return Sharing{*gid};
}

namespace {

// Why a namespace directory `st` of another user may not be used by this process.
Error not_yours(const std::string& ns, const struct stat& st) {
  const bool shared = (st.st_mode & 0070) == 0070;
  return Error{Errc::permission_denied,
               "namespace '" + ns + "' belongs to " + user_text(st.st_uid) +
                   (shared ? ", shared with " + group_text(st.st_gid) + ", which you are not in"
                           : " and is not shared") +
                   " (" + where(ns) + ", mode " + octal(st.st_mode) +
                   "); bloccs never uses another user's namespace: pick another namespace "
                   "(BLOCCS_NAMESPACE), or have its owner share it with a group of yours "
                   "(BLOCCS_NAMESPACE_GROUP) or remove it"};
}

}  // namespace

NamespaceDir::NamespaceDir(NamespaceDir&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      ns_(std::move(other.ns_)),
      owner_(other.owner_),
      group_(other.group_),
      shared_(other.shared_) {}

NamespaceDir& NamespaceDir::operator=(NamespaceDir&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    ns_ = std::move(other.ns_);
    owner_ = other.owner_;
    group_ = other.group_;
    shared_ = other.shared_;
  }
  return *this;
}

NamespaceDir::~NamespaceDir() {
  if (fd_ >= 0) ::close(fd_);
}

std::string NamespaceDir::path() const {
  return where(ns_);
}

Status NamespaceDir::check(DirUse use) {
  struct stat st {};
  if (::fstat(fd_, &st) != 0)
    return Error{Errc::system_error, "fstat of " + path() + " failed: " + std::strerror(errno)};
  owner_ = st.st_uid;
  group_ = st.st_gid;
  shared_ = (st.st_mode & 0070) == 0070;
  if (!S_ISDIR(st.st_mode))  // O_DIRECTORY makes this unreachable; kept as the rule's statement
    return Error{Errc::segment_invalid, path() + " is not a directory; remove it"};
  if (st.st_mode & 0002)
    return Error{Errc::permission_denied,
                 path() + " has mode " + octal(st.st_mode) +
                     ", which lets every user write in it; bloccs refuses it. Ask " +
                     user_text(st.st_uid) + " to remove it, or use another namespace"};
  if (use == DirUse::inspect) return {};
  if (st.st_uid == geteuid()) return {};
  if (shared_ && in_group(st.st_gid)) return {};
  return not_yours(ns_, st);
}

Status NamespaceDir::check_sharing(const Sharing& sharing) const {
  if (!sharing.group) return {};
  if (shared_ && group_ == *sharing.group) return {};
  return Error{Errc::bad_config,
               "namespace '" + ns_ + "' is " +
                   (shared_ ? "shared with " + group_text(group_) : std::string("private")) +
                   " (made by " + user_text(owner_) +
                   "), but this process asks for it to be "
                   "shared with " +
                   group_text(*sharing.group) +
                   "; give every process of a namespace the same BLOCCS_NAMESPACE_GROUP, or "
                   "use another namespace (a namespace's sharing is fixed when its first "
                   "segment is made, and ends when its last one is removed)"};
}

Result<NamespaceDir> NamespaceDir::open(std::string_view ns, DirUse use) {
  auto resolved = resolve_namespace(ns);
  if (!resolved) return std::move(resolved).error();
  const int root = open_root();
  if (root < 0) return root_error();
  const int fd = ::openat(root, namespace_dir_name(*resolved).c_str(),
                          O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  const int err = errno;
  ::close(root);
  if (fd < 0) {
    const std::string at = where(*resolved);
    switch (err) {
      case ENOENT:
        return Error{Errc::not_found, "namespace '" + *resolved + "' has no segments (" + at +
                                          " does not exist); check the namespace "
                                          "(BLOCCS_NAMESPACE) and that its owner has started"};
      case ENOTDIR:
      case ELOOP:
        return Error{Errc::segment_invalid,
                     at + " is not a directory (a file or link of an older bloccs, or of "
                          "another program); remove it, or use another namespace"};
      case EACCES: {
        struct stat st {};
        if (::stat(at.c_str(), &st) == 0) return not_yours(*resolved, st);
        return Error{Errc::permission_denied,
                     at + " may not be read by you; it is another user's namespace: use "
                          "another namespace (BLOCCS_NAMESPACE)"};
      }
      default:
        return Error{Errc::system_error, "opening " + at + " failed: " + std::strerror(err)};
    }
  }
  NamespaceDir dir(fd, *resolved);
  if (auto st = dir.check(use); !st) return std::move(st).error();
  return dir;
}

Result<NamespaceDir> NamespaceDir::open_or_create(std::string_view ns, const Sharing& sharing) {
  auto resolved = resolve_namespace(ns);
  if (!resolved) return std::move(resolved).error();
  static std::atomic<std::uint32_t> counter{0};
  for (int attempt = 0;; ++attempt) {
    auto existing = open(*resolved);
    if (existing) {
      if (auto st = existing->check_sharing(sharing); !st) return std::move(st).error();
      return existing;
    }
    if (existing.code() != Errc::not_found || attempt == 8) return existing;

    // Made whole under a temporary name, then renamed into place: nobody sees it half made.
    const int root = open_root();
    if (root < 0) return root_error();
    const std::string tmp = ".bloccs." + *resolved + ".new." + std::to_string(getpid()) + "." +
                            std::to_string(counter.fetch_add(1));  // relaxed: a unique number
    auto fail = [&](const std::string& doing) {
      const int err = errno;
      ::unlinkat(root, tmp.c_str(), AT_REMOVEDIR);
      ::close(root);
      return Error{err == EPERM ? Errc::permission_denied : Errc::system_error,
                   doing + " for namespace '" + *resolved + "' failed: " + std::strerror(err)};
    };
    if (::mkdirat(root, tmp.c_str(), kPrivateMode) != 0) return fail("creating a directory");
    const int fd = ::openat(root, tmp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return fail("opening the new directory");
    if (sharing.group && ::fchown(fd, static_cast<uid_t>(-1), *sharing.group) != 0) {
      ::close(fd);
      Error e = fail("giving the directory its group");
      e.message += " (" + group_text(*sharing.group) +
                   "; you may share a namespace only with a "
                   "group you are a member of)";
      return e;
    }
    // chmod, not mkdir's mode: the umask must not take the group's bits away.
    if (::fchmod(fd, sharing.group ? kSharedMode : kPrivateMode) != 0) {
      ::close(fd);
      return fail("setting the directory's mode");
    }
    ::close(fd);
    const int renamed = ::renameat2(root, tmp.c_str(), root, namespace_dir_name(*resolved).c_str(),
                                    RENAME_NOREPLACE);
    const int err = errno;
    if (renamed != 0) ::unlinkat(root, tmp.c_str(), AT_REMOVEDIR);
    ::close(root);
    if (renamed != 0 && err != EEXIST)
      return Error{Errc::system_error,
                   "creating " + where(*resolved) + " failed: " + std::strerror(err)};
    // Ours, or another process's that won the race: open it and check it like any other.
  }
}

std::vector<std::string> NamespaceDir::list(std::string_view prefix) const {
  std::vector<std::string> out;
  const int fd = ::dup(fd_);  // fdopendir takes the descriptor over
  if (fd < 0) return out;
  DIR* d = ::fdopendir(fd);
  if (!d) {
    ::close(fd);
    return out;
  }
  ::rewinddir(d);
  while (const dirent* e = ::readdir(d)) {
    const std::string_view name(e->d_name);
    if (name.empty() || name.front() == '.') continue;  // ".", "..", temporary ".new.*"
    if (name.starts_with(prefix)) out.emplace_back(name);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

void NamespaceDir::remove_if_empty() const {
  const int root = open_root();
  if (root < 0) return;
  // Fails (ENOTEMPTY) while anything is left in it; a process that is about to create a segment
  // in it then finds it gone and makes it anew (NamespaceDir::open_or_create).
  ::unlinkat(root, namespace_dir_name(ns_).c_str(), AT_REMOVEDIR);
  ::close(root);
}

namespace {

// The directories in /dev/shm whose name `keep(name, stat)` accepts, sorted.
template <class Keep>
std::vector<std::string> root_dirs(Keep&& keep) {
  std::vector<std::string> out;
  const int root = open_root();
  if (root < 0) return out;
  DIR* d = ::fdopendir(root);
  if (!d) {
    ::close(root);
    return out;
  }
  while (const dirent* e = ::readdir(d)) {
    struct stat st {};
    if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode))
      continue;
    if (keep(std::string_view(e->d_name), st)) out.emplace_back(e->d_name);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::vector<std::string> list_namespaces() {
  std::vector<std::string> out;
  for (const std::string& name : root_dirs([](std::string_view name, const struct stat&) {
         return name.starts_with(kPrefix) && name.size() > kPrefix.size() &&
                resolve_namespace(name.substr(kPrefix.size()));
       }))
    out.push_back(name.substr(kPrefix.size()));
  return out;
}

std::vector<std::string> unfinished_namespace_dirs(const std::string& ns,
                                                   std::chrono::seconds min_age) {
  const std::string prefix = "." + std::string(kPrefix) + ns + ".new.";
  const auto now = std::chrono::system_clock::now();
  return root_dirs([&](std::string_view name, const struct stat& st) {
    // ctime: the chmod and chown of a making under way bump it.
    const std::chrono::system_clock::time_point changed{std::chrono::seconds(st.st_ctim.tv_sec)};
    return name.starts_with(prefix) && now - changed >= min_age;
  });
}

Status remove_unfinished_namespace_dir(const std::string& name) {
  if (!name.starts_with("." + std::string(kPrefix)) || name.find('/') != std::string::npos)
    return Error{Errc::bad_name, "'" + name + "' is not an unfinished namespace directory"};
  const int root = open_root();
  if (root < 0) return root_error();
  const int rc = ::unlinkat(root, name.c_str(), AT_REMOVEDIR);
  const int err = errno;
  ::close(root);
  if (rc != 0 && err != ENOENT)
    return Error{err == EACCES || err == EPERM ? Errc::permission_denied : Errc::system_error,
                 "removing /dev/shm/" + name + " failed: " + std::strerror(err) +
                     (err == ENOTEMPTY ? " (it holds files: look at them, then remove it by hand)"
                                       : "")};
  return {};
}

}  // namespace bloccs::shm
